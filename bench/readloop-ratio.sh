#!/usr/bin/env bash
# The read-loop target of `kaprobe analyze` (>= 0.75x the packets/s of a
# plain C libpcap read loop), measured so that a noisy machine moves both
# sides alike: ROUNDS rounds, each running readloop, `kaprobe analyze` and
# `kaprobe analyze --json` back to back on the big capture, and the ratio
# taken within each round. Prints every round, the median of the per-round
# ratios (the figure docs/PERFORMANCE.md reports) and best against best.
#
# bench/analyze.sh runs first: it builds everything and generates the capture.
# Files only: nothing is captured from or sent to a network.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-9}
BIG=${BIG:-target/bench/big-20000000p-5000c-s1-snap128.pcap}
KAPROBE=${KAPROBE:-target/release/kaprobe}
READLOOP=target/readloop
for f in "$BIG" "$KAPROBE" "$READLOOP"; do
    [ -e "$f" ] || { echo "$f is missing: run bash bench/analyze.sh first" >&2; exit 1; }
done

seconds() { # CMD... -> wall seconds
    local t0 t1
    t0=$(date +%s.%N)
    "$@" > /dev/null
    t1=$(date +%s.%N)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }'
}

echo "readloop ratio, $ROUNDS interleaved rounds on $BIG ($(nproc) cores)"
echo "kaprobe: $KAPROBE (git $(git rev-parse --short HEAD)$(git diff --quiet || echo ' + uncommitted changes'))"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
out=$(mktemp)
for i in $(seq "$ROUNDS"); do
    rl=$(seconds "$READLOOP" "$BIG")
    ka=$(seconds "$KAPROBE" analyze "$BIG")
    kj=$(seconds "$KAPROBE" analyze --json "$BIG")
    echo "$i $rl $ka $kj" | tee -a "$out"
done
echo "load average after:  $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$out" <<'EOF'
import statistics, sys
rows = [list(map(float, l.split()[1:])) for l in open(sys.argv[1])]
rl, ka, kj = zip(*rows)
text = statistics.median(r / k for r, k, _ in rows)
json = statistics.median(r / j for r, _, j in rows)
print(f"median seconds: readloop {statistics.median(rl):.3f}, kaprobe {statistics.median(ka):.3f}, --json {statistics.median(kj):.3f}")
verdict = lambda v: "PASS" if v >= 0.75 else "MISS"
print(f"median of per-round ratios: text {text:.2f}x {verdict(text)}, --json {json:.2f}x {verdict(json)} (target >= 0.75x)")
print(f"best against best: text {min(rl) / min(ka):.2f}x, --json {min(rl) / min(kj):.2f}x")
EOF
rm -f "$out"
