#!/usr/bin/env bash
# Two builds of kaprobe side by side on the same live traffic, with tcpdump as
# the yardstick: a before/after of a change to `sniff` that the run-to-run
# spread of bench/sniff.sh would hide (its figures for one build move by 10 ns
# a packet from one run to the next at 10k packets/s).
#
# Run as root from anywhere:   sudo bash bench/sniff-ab.sh OLD_BINARY NEW_BINARY
#
# Creates a network namespace (kp-bench-ab-PID) with only `lo` up; starts
#   OLD sniff -i lo, NEW sniff -i lo (default text output, into pipes), and
#   tcpdump -i lo -s 128 -w /dev/null
# there; runs examples/loadgen.rs (as bench/sniff.sh does) for WARMUP + DURATION
# seconds; then measures each process's CPU time (`perf stat -e task-clock -p`)
# over DURATION seconds and the packets on lo over the same window. Prints one
# line: CPU ns per packet of OLD, NEW and tcpdump. Swap the two binaries on the
# next run: whichever starts first may be favoured.
#
# Traffic is on 127.0.0.1 inside the namespace only: nothing is sent anywhere else.
#
# Knobs (environment): RATE=10000 (packets/s on the wire)  CHURN=4  WARMUP=35
#   DURATION=20  CONNS=64  IDLE=32  KAPROBE_ARGS="" (extra sniff options, both)
set -euo pipefail
export LC_ALL=C

cd "$(dirname "$0")/.."
[ $# = 2 ] || { echo "usage: sudo bash bench/sniff-ab.sh OLD_BINARY NEW_BINARY" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "needs root (network namespace, live capture)" >&2; exit 1; }
for tool in ip tcpdump perf; do
    command -v "$tool" >/dev/null || { echo "$tool not found (apt-get install iproute2 tcpdump linux-perf)" >&2; exit 1; }
done
OLD=$1 NEW=$2
RATE=${RATE:-10000} CHURN=${CHURN:-4} WARMUP=${WARMUP:-35} DURATION=${DURATION:-20}
CONNS=${CONNS:-64} IDLE=${IDLE:-32} KAPROBE_ARGS=${KAPROBE_ARGS:-}
LOADGEN=target/release/examples/loadgen
cargo build --release --quiet --example loadgen
NS=kp-bench-ab-$$
OUT=$(mktemp -d)

pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done
    ip netns del "$NS" 2>/dev/null || true
    rm -rf "$OUT"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns add "$NS"
ip -n "$NS" link set lo up
lo_tx() { ip netns exec "$NS" cat /sys/class/net/lo/statistics/tx_packets; }

# shellcheck disable=SC2086
ip netns exec "$NS" "$OLD" sniff -i lo $KAPROBE_ARGS > >(cat >/dev/null) 2>"$OUT/old.err" &
pids+=($!)
# shellcheck disable=SC2086
ip netns exec "$NS" "$NEW" sniff -i lo $KAPROBE_ARGS > >(cat >/dev/null) 2>"$OUT/new.err" &
pids+=($!)
ip netns exec "$NS" tcpdump -i lo -s 128 -w /dev/null 2>"$OUT/tcpdump.err" &
pids+=($!)
sleep 1
ip netns exec "$NS" "$LOADGEN" --rate "$RATE" --duration "$((WARMUP + DURATION + 5))" --conns "$CONNS" \
    --churn "$CHURN" --idle "$IDLE" --payload 32 --senders 2 >/dev/null &
gen=$!
sleep "$WARMUP"
tx0=$(lo_tx)
stats=()
for p in "${pids[@]}"; do
    perf stat -e task-clock -x, -p "$p" -o "$OUT/$p.stat" -- sleep "$DURATION" &
    stats+=($!)
done
wait "${stats[@]}"
tx1=$(lo_tx)
wait "$gen"
packets=$((tx1 - tx0))
line="rate $RATE churn $CHURN: $packets packets; CPU ns a packet:"
for who in 0 1 2; do
    ms=$(awk -F, '/task-clock/ { print $1 }' "$OUT/${pids[$who]}.stat")
    ns=$(awk -v ms="$ms" -v n="$packets" 'BEGIN { printf "%.0f", ms * 1e6 / n }')
    line="$line $(echo old new tcpdump | cut -d' ' -f$((who + 1)))=$ns"
done
echo "$line"
