#!/usr/bin/env bash
# Memory soak of `kaprobe sniff`: DURATION seconds (default 600) of unpaced
# loopback traffic from examples/loadgen.rs in a network namespace, with
# connections opening and closing all the time, while sniff watches. Its
# resident memory is sampled every INTERVAL seconds (VmRSS from
# /proc/PID/status); the run passes when the last third of the samples stays
# within 10% (and 4 MiB) of the median of the middle third: memory flat, not
# growing with the connections that came and went.
#
#   sudo bash bench/soak.sh            # DURATION=600 INTERVAL=10 CHURN=8
#
# Traffic is on 127.0.0.1 inside the namespace only: nothing is sent anywhere else.
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."

DURATION=${DURATION:-600}
INTERVAL=${INTERVAL:-10}
CHURN=${CHURN:-8}
NS=kp-bench-soak-$$
OUT=target/bench/soak
mkdir -p "$OUT"

[ "$(id -u)" = 0 ] || { echo "needs root: sudo bash bench/soak.sh" >&2; exit 1; }
cargo build --release --quiet
cargo build --release --quiet --example loadgen
K=target/release/kaprobe
L=target/release/examples/loadgen

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  ip netns del "$NS" 2>/dev/null || true
}
trap cleanup EXIT
ip netns add "$NS"
ip -n "$NS" link set lo up

ip netns exec "$NS" "$K" sniff -i lo --json > "$OUT/sniff.jsonl" 2> "$OUT/sniff.err" &
sniff=$!; pids+=("$sniff")
for _ in $(seq 50); do grep -q "listening on" "$OUT/sniff.err" 2>/dev/null && break; sleep 0.1; done
ip netns exec "$NS" "$L" --rate 0 --duration "$DURATION" --conns 64 --churn "$CHURN" --idle 32 \
  > "$OUT/loadgen.out" 2> "$OUT/loadgen.err" &
gen=$!; pids+=("$gen")

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
: > "$OUT/rss.txt"
start=$(date +%s)
while kill -0 "$gen" 2>/dev/null; do
  rss=$(awk '/VmRSS/ {print $2}' /proc/$sniff/status)
  echo "$(( $(date +%s) - start )) $rss" | tee -a "$OUT/rss.txt"
  sleep "$INTERVAL"
done
echo "load average after:  $(cut -d' ' -f1-3 /proc/loadavg)"
kill -INT "$sniff"; wait "$sniff" || true
tail -1 "$OUT/sniff.jsonl" > "$OUT/summary.json"

python3 - "$OUT/rss.txt" "$OUT/summary.json" <<'PY'
import json, statistics, sys
rows = [tuple(map(int, l.split())) for l in open(sys.argv[1]) if l.strip()]
s = json.load(open(sys.argv[2]))
kib = [r[1] for r in rows]
n = len(kib)
mid = statistics.median(kib[n // 3: 2 * n // 3])
last = kib[2 * n // 3:]
limit = max(mid * 0.10, 4096)
flat = all(abs(v - mid) <= limit for v in last)
print(f"samples {n}, RSS first {kib[0]/1024:.1f} MiB, median middle third {mid/1024:.1f} MiB, "
      f"max {max(kib)/1024:.1f} MiB, last {kib[-1]/1024:.1f} MiB")
print(f"frames {s['frames']}, connections {s['connections']}, peak open {s['peak_open_connections']}, "
      f"keepalives {s['keepalives']}, capture {s.get('capture')}")
print("memory flat over the last third:", "PASS" if flat else "FAIL")
sys.exit(0 if flat else 1)
PY
