#!/usr/bin/env bash
# Whole-process time of `kaprobe poke` against a live peer on a veth pair
# between two network namespaces (target < 10 ms), and of `poke --all` over
# 1000 idle connections (target < 5 s). Needs root (namespaces, raw sockets).
#
# Every address is inside the two namespaces this script makes (192.0.2.0/24
# exists only there); nothing is sent anywhere else. Kernel settings are the
# namespaces' defaults: the peer answers one out-of-window segment per 500 ms
# per connection, so single pokes are spaced 0.6 s apart.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-30}
CONNS=${CONNS:-1000}
A=kp-bench-poke-a B=kp-bench-poke-b
cleanup() {
  [ -n "${PIDS:-}" ] && kill $PIDS 2>/dev/null || true
  ip netns del $A 2>/dev/null || true
  ip netns del $B 2>/dev/null || true
}
trap cleanup EXIT
cleanup

command -v hyperfine > /dev/null || apt-get install -y -q hyperfine > /dev/null \
  || { echo "needs hyperfine (Debian package hyperfine)" >&2; exit 1; }
cargo build --release -q
K=$PWD/target/release/kaprobe

ip netns add $A; ip netns add $B
ip link add kpbpa netns $A type veth peer name kpbpb netns $B
ip -n $A addr add 192.0.2.1/24 dev kpbpa; ip -n $B addr add 192.0.2.2/24 dev kpbpb
for ns in $A $B; do ip -n $ns link set lo up; done
ip -n $A link set kpbpa up; ip -n $B link set kpbpb up

wait_ready() { # file
  for _ in $(seq 100); do grep -q ready "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "endpoint did not get ready" >&2; exit 1
}

tmp=$(mktemp -d)
ip netns exec $B python3 bench/conns.py server 192.0.2.2 7000 1 > $tmp/s1 & PIDS="$!"
wait_ready $tmp/s1
ip netns exec $A python3 bench/conns.py client 192.0.2.2 7000 1 > $tmp/c1 & PIDS="$PIDS $!"
wait_ready $tmp/c1

echo "kaprobe poke benchmark  ($(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))"
echo "kaprobe: $K (git $(git rev-parse --short HEAD)$(git diff --quiet || echo ' + uncommitted changes'))"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

# One poke: wall time of the whole process, RUNS times, by hyperfine (no
# shell in between; a run that exits non-zero, i.e. not alive, aborts it).
# `sleep 0.6` before each run is not timed.
timed() { # json-file command...
  local out=$1; shift
  hyperfine -N --style none --prepare 'sleep 0.6' --runs "$RUNS" --export-json "$out" "${*@Q}" > /dev/null
}
ip netns exec $A "$K" poke 192.0.2.2:7000 --json > $tmp/out
grep -q '"verdict":"alive"' $tmp/out || { cat $tmp/out; echo "the peer does not answer" >&2; exit 1; }
timed $tmp/netns.json "$K" poke 192.0.2.2:7000 --netns $A
timed $tmp/single.json ip netns exec $A "$K" poke 192.0.2.2:7000
timed $tmp/exec.json ip netns exec $A /bin/true

stats() { # hyperfine json -> "min median max" in ms
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"][0]; print("%.2f %.2f %.2f" % (r["min"]*1e3, r["median"]*1e3, r["max"]*1e3))' "$1"
}

# Many connections.
ip netns exec $B python3 bench/conns.py server 192.0.2.2 7001 "$CONNS" > $tmp/sN & PIDS="$PIDS $!"
wait_ready $tmp/sN
ip netns exec $A python3 bench/conns.py client 192.0.2.2 7001 "$CONNS" > $tmp/cN & PIDS="$PIDS $!"
wait_ready $tmp/cN
sleep 1
t0=$(date +%s%N)
ip netns exec $A "$K" poke 192.0.2.2:7001 --json > $tmp/all.jsonl || true
t1=$(date +%s%N)
all_ms=$(( (t1 - t0) / 1000000 ))
alive=$(grep -c '"verdict":"alive"' $tmp/all.jsonl || true)
total=$(wc -l < $tmp/all.jsonl)
sleep 0.6
t0=$(date +%s%N)
ip netns exec $A "$K" poke --all --json > $tmp/all2.jsonl || true
t1=$(date +%s%N)
all2_ms=$(( (t1 - t0) / 1000000 ))
total2=$(wc -l < $tmp/all2.jsonl)
alive2=$(grep -c '"verdict":"alive"' $tmp/all2.jsonl || true)

read -r smin smed smax <<<"$(stats $tmp/single.json)"
read -r nmin nmed nmax <<<"$(stats $tmp/netns.json)"
read -r emin emed emax <<<"$(stats $tmp/exec.json)"
echo "load average after:  $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-52s %8s %8s %8s\n' "run ($RUNS each)" "min ms" "median" "max"
printf '%-52s %8s %8s %8s\n' "kaprobe poke 192.0.2.2:7000 --netns A" "$nmin" "$nmed" "$nmax"
printf '%-52s %8s %8s %8s\n' "ip netns exec A kaprobe poke 192.0.2.2:7000" "$smin" "$smed" "$smax"
printf '%-52s %8s %8s %8s\n' "ip netns exec A /bin/true (its own cost)" "$emin" "$emed" "$emax"
printf '%-52s %8s\n' "poke 192.0.2.2:7001 ($total connections, $alive alive)" "$all_ms ms"
printf '%-52s %8s\n' "poke --all ($total2 connections, $alive2 alive)" "$all2_ms ms"
verdict() { awk -v v="$1" -v t="$2" 'BEGIN { print (v < t) ? "PASS" : "MISS" }'; }
echo "single poke median < 10 ms: $(verdict "$nmed" 10) ($nmed ms with --netns, $smed ms through ip netns exec)"
echo "poke --all over $total2 connections < 5 s: $(verdict "$all2_ms" 5000) ($all2_ms ms)"
rm -rf "$tmp"
