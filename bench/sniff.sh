#!/usr/bin/env bash
# Live benchmark of `kaprobe sniff` against tcpdump, on loopback in a network namespace.
#
# Run as root from anywhere (it moves to the repository root):   sudo bash bench/sniff.sh
#
# Creates a network namespace (kp-bench-sniff-PID) with only `lo` up, and for each
# rate in RATES (packets/s on the wire; 0 = as fast as the generator goes):
#   1. starts, inside the namespace and at the same time,
#        kaprobe sniff -i lo --json            (stdout to a file: its summary line has the counters)
#        tcpdump -i lo -s 128 -w /dev/null
#      and waits until both say they are listening;
#   2. runs examples/loadgen.rs in the namespace for DURATION seconds: data connections
#      sending small segments at the rate, connections opening and closing, and idle
#      connections with kernel keepalive every 1 s;
#   3. waits a second for both to drain, reads each one's CPU time (/proc/PID/schedstat:
#      time on CPU, user + system, in ns), stops both with SIGINT and reads their closing
#      counters (packets captured, dropped by kernel).
# Prints a table (also written to target/bench/sniff-results.txt) and removes the namespace.
#
# Traffic is on 127.0.0.1 inside the namespace only: nothing is sent anywhere else.
#
# Knobs (environment):
#   RATES="10000 50000 100000 150000 200000 0"  DURATION=10  CONNS=64  CHURN=4  IDLE=32
#   PAYLOAD=32  SENDERS=2  KAPROBE_ARGS=""  (extra `kaprobe sniff` options)
#   BUFFER_KIB=""  kernel capture buffer for both (kaprobe -B, tcpdump -B); empty: libpcap's 2 MiB
set -euo pipefail
export LC_ALL=C

cd "$(dirname "$0")/.."

RATES=${RATES:-"10000 50000 100000 150000 200000 0"}
DURATION=${DURATION:-10}
CONNS=${CONNS:-64}
CHURN=${CHURN:-4}
IDLE=${IDLE:-32}
PAYLOAD=${PAYLOAD:-32}
SENDERS=${SENDERS:-2}
KAPROBE_ARGS=${KAPROBE_ARGS:-}
BUFFER_KIB=${BUFFER_KIB:-}
BUF_ARGS=${BUFFER_KIB:+-B $BUFFER_KIB}
OUT=target/bench/sniff
RESULTS=target/bench/sniff-results.txt
NS=kp-bench-sniff-$$

KAPROBE=target/release/kaprobe
LOADGEN=target/release/examples/loadgen

say() { printf '==> %s\n' "$*" >&2; }

[ "$(id -u)" = 0 ] || { echo "needs root (network namespace, live capture): sudo bash bench/sniff.sh" >&2; exit 1; }
for tool in ip tcpdump cargo; do
    command -v "$tool" >/dev/null || { echo "$tool not found (apt-get install iproute2 tcpdump; rustup)" >&2; exit 1; }
done

say "building kaprobe and loadgen (release)"
cargo build --release --quiet
cargo build --release --quiet --example loadgen
mkdir -p "$OUT"

pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done
    ip netns del "$NS" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns add "$NS"
ip -n "$NS" link set lo up

in_ns() { ip netns exec "$NS" "$@"; }
lo_tx() { in_ns cat /sys/class/net/lo/statistics/tx_packets; }
# time on CPU so far, in ns (first field of schedstat: user + system)
cpu_ns() { cut -d' ' -f1 "/proc/$1/schedstat"; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
wait_listening() { # FILE PID
    for _ in $(seq 100); do
        grep -q 'listening on' "$1" 2>/dev/null && return 0
        kill -0 "$2" 2>/dev/null || { cat "$1" >&2; return 1; }
        sleep 0.1
    done
    echo "timed out waiting for: $1" >&2
    return 1
}
# tcpdump's closing line "N packets <what>"
td_count() { sed -n "s/^\([0-9]*\) packets* $2.*/\1/p" "$1" | head -n1; }
# a number field of kaprobe's JSON summary (the last line of its stdout)
kp_field() { tail -n1 "$1" | grep -o "\"$2\":[0-9]*" | head -n1 | cut -d: -f2; }

header=$(printf '%-5s %9s %7s | %9s %8s %6s %6s | %9s %8s %6s | %-17s %s' \
    rate offered pps kp_capt kp_drop kp_ns/p kp_ka td_capt td_drop td_ns/p verdict 'load before / after')
rows=()

for rate in $RATES; do
    label=$rate
    [ "$rate" = 0 ] && label=max
    say "rate $label: starting kaprobe and tcpdump in $NS"
    kp_out=$OUT/kaprobe-$label.json kp_err=$OUT/kaprobe-$label.err td_err=$OUT/tcpdump-$label.err
    load_before=$(loadavg)
    # `ip netns exec` execs the command, so $! is the capturing process itself
    # (not through in_ns: a function run with & would be a subshell)
    # shellcheck disable=SC2086
    ip netns exec "$NS" "$KAPROBE" sniff -i lo --json $BUF_ARGS $KAPROBE_ARGS >"$kp_out" 2>"$kp_err" &
    kp=$!
    # shellcheck disable=SC2086
    ip netns exec "$NS" tcpdump -i lo -s 128 $BUF_ARGS -w /dev/null 2>"$td_err" &
    td=$!
    pids=("$kp" "$td")
    wait_listening "$kp_err" "$kp"
    wait_listening "$td_err" "$td"
    for p in "$kp" "$td"; do
        grep -qE '^(kaprobe|tcpdump)$' "/proc/$p/comm" || { echo "pid $p is not the capture process" >&2; exit 1; }
    done
    sleep 0.5
    kp_cpu0=$(cpu_ns "$kp") td_cpu0=$(cpu_ns "$td") tx0=$(lo_tx)

    gen_line=$(in_ns "$LOADGEN" --rate "$rate" --duration "$DURATION" --conns "$CONNS" \
        --churn "$CHURN" --idle "$IDLE" --payload "$PAYLOAD" --senders "$SENDERS")
    echo "$gen_line" >"$OUT/loadgen-$label.txt"
    sleep 1

    kp_cpu1=$(cpu_ns "$kp") td_cpu1=$(cpu_ns "$td") tx1=$(lo_tx)
    kill -INT "$kp" "$td"
    wait "$kp" "$td" || true
    pids=()
    load_after=$(loadavg)

    offered=$((tx1 - tx0))
    secs=$(sed -n 's/.*seconds=\([0-9.]*\).*/\1/p' <<<"$gen_line")
    pps=$(awk -v p="$offered" -v s="$secs" 'BEGIN { printf "%.0f", p / s }')
    kp_capt=$(kp_field "$kp_out" frames)
    kp_drop=$(kp_field "$kp_out" dropped)
    kp_events=$(grep -c '"type":"keepalive' "$kp_out" || true)
    td_capt=$(td_count "$td_err" captured)
    td_drop=$(td_count "$td_err" "dropped by kernel")
    kp_ns=$(awk -v c="$((kp_cpu1 - kp_cpu0))" -v n="$kp_capt" 'BEGIN { printf "%.0f", n ? c / n : 0 }')
    td_ns=$(awk -v c="$((td_cpu1 - td_cpu0))" -v n="$td_capt" 'BEGIN { printf "%.0f", n ? c / n : 0 }')
    verdict_drop=$([ "$kp_drop" -le "$td_drop" ] && echo ok || echo MORE)
    verdict_cpu=$([ "$kp_ns" -le "$td_ns" ] && echo ok || echo MORE)
    row=$(printf '%-5s %9s %7s | %9s %8s %6s %6s | %9s %8s %6s | %-17s %s' \
        "$label" "$offered" "$pps" "$kp_capt" "$kp_drop" "$kp_ns" "$kp_events" \
        "$td_capt" "$td_drop" "$td_ns" "drop:$verdict_drop,cpu:$verdict_cpu" \
        "$load_before / $load_after")
    rows+=("$row")
    say "$row"
done

{
    echo "kaprobe sniff vs tcpdump, live on loopback in a network namespace ($(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1))"
    echo "kaprobe:  $KAPROBE (git $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src || echo ' + uncommitted changes in src/')) sniff -i lo --json $BUF_ARGS $KAPROBE_ARGS"
    echo "tcpdump:  $(tcpdump --version 2>&1 | head -n1), $(tcpdump --version 2>&1 | sed -n 2p); tcpdump -i lo -s 128 $BUF_ARGS -w /dev/null"
    echo "load:     $DURATION s per rate; $CONNS data connections ($PAYLOAD-byte segments, $SENDERS sender threads), $CHURN churn loops, $IDLE idle keepalive connections (1 s)"
    echo "offered:  packets on lo (tx counter) while both captured; captured/dropped: each tool's closing counters; ns/p: CPU (user+sys) per captured packet; kp_ka: keepalive events kaprobe reported"
    echo
    echo "$header"
    printf '%s\n' "${rows[@]}"
} | tee "$RESULTS"
say "written to $RESULTS"
