#!/usr/bin/env bash
# Live benchmark of `kaprobe sniff` against tcpdump, on loopback in a network namespace.
#
# Run as root from anywhere (it moves to the repository root):   sudo bash bench/sniff.sh
#
# Creates a network namespace (kp-bench-sniff-PID) with only `lo` up, and for each
# rate in RATES (packets/s on the wire; 0 = as fast as the generator goes):
#   1. starts, inside the namespace and at the same time,
#        kaprobe sniff -i lo --json            (stdout into a pipe to awk, which keeps
#                                               the event count and the closing lines)
#        tcpdump -i lo -s 128 -w /dev/null
#      and waits until both say they are listening;
#   2. runs examples/loadgen.rs in the namespace for WARMUP + DURATION seconds: data
#      connections sending small segments at the rate, connections opening and closing,
#      and idle connections with kernel keepalive every 1 s;
#   3. measures only the last DURATION seconds (the window): each tool's CPU time over
#      all its threads (/proc/PID/task/*/schedstat: time on CPU, user + system, in ns)
#      and the packets on lo (tx counter), read at the window's start and end. The
#      warm-up lets the run reach its steady state: connections closed during it have
#      waited out kaprobe's 30 s linger and are being reported and forgotten, as on a
#      host that has been watched for hours;
#   4. stops both with SIGINT and reads their closing counters (packets captured,
#      dropped by the kernel, over the whole run).
# Prints a table (also written to target/bench/sniff-results.txt, or sniff-results-text.txt
# with OUTPUT=text) and removes the namespace.
#
# Traffic is on 127.0.0.1 inside the namespace only: nothing is sent anywhere else.
#
# Knobs (environment):
#   RATES="10000 50000 100000 150000 200000 0"  WARMUP=35  DURATION=10  CONNS=64  CHURN=4
#   IDLE=32  PAYLOAD=32  SENDERS=2  KAPROBE_ARGS=""  (extra `kaprobe sniff` options)
#   OUTPUT=json  kaprobe's output: json (--json: a line per event and per connection) or
#                text (the default output: a line per event, the table at the end)
#   KAPROBE=target/release/kaprobe  the binary to measure (another build, for a before/after)
#   BUFFER_KIB=""  kernel capture buffer for both (kaprobe -B, tcpdump -B); empty: libpcap's 2 MiB
#   REPEAT=1  runs of each rate; with more, a row per run and then, per rate, the
#             medians of both tools' ns/p (use an odd count) and the verdict on those (the ratio of
#             the two moves by ~10% from one run to the next on a 2-core VM)
set -euo pipefail
export LC_ALL=C

cd "$(dirname "$0")/.."

RATES=${RATES:-"10000 50000 100000 150000 200000 0"}
WARMUP=${WARMUP:-35}
DURATION=${DURATION:-10}
CONNS=${CONNS:-64}
CHURN=${CHURN:-4}
IDLE=${IDLE:-32}
PAYLOAD=${PAYLOAD:-32}
SENDERS=${SENDERS:-2}
KAPROBE_ARGS=${KAPROBE_ARGS:-}
BUFFER_KIB=${BUFFER_KIB:-}
OUTPUT=${OUTPUT:-json}
REPEAT=${REPEAT:-1}
case $OUTPUT in
    json) OUT_ARGS=--json ;;
    text) OUT_ARGS= ;;
    *) echo "OUTPUT is json or text, not '$OUTPUT'" >&2; exit 1 ;;
esac
BUF_ARGS=${BUFFER_KIB:+-B $BUFFER_KIB}
OUT=target/bench/sniff
RESULTS=target/bench/sniff-results.txt
[ "$OUTPUT" = json ] || RESULTS=target/bench/sniff-results-$OUTPUT.txt
NS=kp-bench-sniff-$$

KAPROBE=${KAPROBE:-target/release/kaprobe}
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
# time on CPU so far, in ns, summed over the process's threads (first field of
# each schedstat: user + system)
cpu_ns() { cat /proc/"$1"/task/*/schedstat | awk '{ s += $1 } END { printf "%.0f", s }'; }
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
# what awk keeps of kaprobe's stdout: the keepalive event count (JSON "type" or the
# text line's fourth column), then the last three lines
keep_summary() {
    awk '/"type":"keepalive/ || $4 ~ /^keepalive/ { n++ }
         { l1 = l2; l2 = l3; l3 = $0 }
         END { print n + 0; print l1; print l2; print l3 }'
}
# frames analysed and kernel drops, from the JSON summary line or the text closing lines
kp_frames() { grep -oE '"frames":[0-9]+|^[0-9]+ frames?,' "$1" | grep -oE '[0-9]+' | tail -n1; }
kp_dropped() { grep -oE '"dropped":[0-9]+|[0-9]+ dropped by kernel' "$1" | grep -oE '[0-9]+' | tail -n1; }
wait_summary() { # FILE: awk writes it when kaprobe's stdout closes
    for _ in $(seq 50); do
        [ "$(wc -l <"$1")" -ge 4 ] && return 0
        sleep 0.1
    done
    echo "no summary from kaprobe in $1" >&2
    return 1
}

header=$(printf '%-5s %9s %7s | %9s %8s %6s %6s | %9s %8s %6s | %-17s %s' \
    rate offered pps kp_capt kp_drop kp_ns/p kp_ka td_capt td_drop td_ns/p verdict 'load before / after')
rows=()

medians=()
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
for rate in $RATES; do
  kp_runs=() td_runs=()
  for run in $(seq "$REPEAT"); do
    label=$rate
    [ "$rate" = 0 ] && label=max
    [ "$REPEAT" = 1 ] || label=$label#$run
    say "rate $label: starting kaprobe and tcpdump in $NS"
    kp_out=$OUT/kaprobe-$label.$OUTPUT kp_err=$OUT/kaprobe-$label.err td_err=$OUT/tcpdump-$label.err
    load_before=$(loadavg)
    # `ip netns exec` execs the command, so $! is the capturing process itself
    # (not through in_ns: a function run with & would be a subshell). kaprobe
    # writes into a pipe, as when piped to jq or a log shipper, not into a file
    # whose filesystem would bill its CPU for the writes.
    # shellcheck disable=SC2086
    ip netns exec "$NS" "$KAPROBE" sniff -i lo $OUT_ARGS $BUF_ARGS $KAPROBE_ARGS \
        > >(keep_summary >"$kp_out") 2>"$kp_err" &
    kp=$!
    # shellcheck disable=SC2086
    ip netns exec "$NS" tcpdump -i lo -s 128 $BUF_ARGS -w /dev/null 2>"$td_err" &
    td=$!
    pids=("$kp" "$td")
    wait_listening "$kp_err" "$kp"
    wait_listening "$td_err" "$td"
    for p in "$kp" "$td"; do
        case $(readlink "/proc/$p/exe") in
            "$(realpath "$KAPROBE")" | "$(realpath "$(command -v tcpdump)")") ;;
            *) echo "pid $p is not the capture process" >&2; exit 1 ;;
        esac
    done
    sleep 0.5

    in_ns "$LOADGEN" --rate "$rate" --duration "$((WARMUP + DURATION))" --conns "$CONNS" \
        --churn "$CHURN" --idle "$IDLE" --payload "$PAYLOAD" --senders "$SENDERS" \
        >"$OUT/loadgen-$label.txt" &
    gen=$!
    sleep "$WARMUP"
    kp_cpu0=$(cpu_ns "$kp") td_cpu0=$(cpu_ns "$td") tx0=$(lo_tx) t0=$(date +%s.%N)
    sleep "$DURATION"
    kp_cpu1=$(cpu_ns "$kp") td_cpu1=$(cpu_ns "$td") tx1=$(lo_tx) t1=$(date +%s.%N)
    wait "$gen"
    kill -INT "$kp" "$td"
    wait "$kp" "$td" || true
    wait_summary "$kp_out"
    pids=()
    load_after=$(loadavg)

    offered=$((tx1 - tx0))
    pps=$(awk -v p="$offered" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", p / (b - a) }')
    kp_capt=$(kp_frames "$kp_out")
    kp_drop=$(kp_dropped "$kp_out")
    kp_events=$(head -n1 "$kp_out")
    td_capt=$(td_count "$td_err" captured)
    td_drop=$(td_count "$td_err" "dropped by kernel")
    # both tools see every packet of the window (drops are shown beside it)
    kp_ns=$(awk -v c="$((kp_cpu1 - kp_cpu0))" -v n="$offered" 'BEGIN { printf "%.0f", n ? c / n : 0 }')
    td_ns=$(awk -v c="$((td_cpu1 - td_cpu0))" -v n="$offered" 'BEGIN { printf "%.0f", n ? c / n : 0 }')
    verdict_drop=$([ "$kp_drop" -le "$td_drop" ] && echo ok || echo MORE)
    verdict_cpu=$([ "$kp_ns" -le "$td_ns" ] && echo ok || echo MORE)
    row=$(printf '%-5s %9s %7s | %9s %8s %6s %6s | %9s %8s %6s | %-17s %s' \
        "$label" "$offered" "$pps" "$kp_capt" "$kp_drop" "$kp_ns" "$kp_events" \
        "$td_capt" "$td_drop" "$td_ns" "drop:$verdict_drop,cpu:$verdict_cpu" \
        "$load_before / $load_after")
    rows+=("$row")
    say "$row"
    kp_runs+=("$kp_ns") td_runs+=("$td_ns")
  done
  if [ "$REPEAT" != 1 ]; then
    kp_med=$(median "${kp_runs[@]}") td_med=$(median "${td_runs[@]}")
    verdict=$([ "$kp_med" -le "$td_med" ] && echo ok || echo MORE)
    medians+=("$(printf '%-5s  median of %s runs: kaprobe %s ns/p, tcpdump %s ns/p  cpu:%s' \
        "${label%#*}" "$REPEAT" "$kp_med" "$td_med" "$verdict")")
  fi
done

{
    echo "kaprobe sniff vs tcpdump, live on loopback in a network namespace ($(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1))"
    if [ "$KAPROBE" = target/release/kaprobe ]; then
        build="git $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src || echo ' + uncommitted changes in src/')"
    else
        build="given with KAPROBE"
    fi
    echo "kaprobe:  $KAPROBE ($build) sniff -i lo $OUT_ARGS $BUF_ARGS $KAPROBE_ARGS"
    echo "tcpdump:  $(tcpdump --version 2>&1 | head -n1), $(tcpdump --version 2>&1 | sed -n 2p); tcpdump -i lo -s 128 $BUF_ARGS -w /dev/null"
    echo "load:     $WARMUP s warm-up + $DURATION s measured per rate; $CONNS data connections ($PAYLOAD-byte segments, $SENDERS sender threads), $CHURN churn loops, $IDLE idle keepalive connections (1 s)"
    echo "offered/pps: packets on lo (tx counter) in the measured window; ns/p: CPU (user+sys, all threads) in the window per packet offered in it"
    echo "captured/dropped: each tool's closing counters over the whole run (warm-up included); kp_ka: keepalive events kaprobe reported"
    echo
    echo "$header"
    printf '%s\n' "${rows[@]}"
    if [ "${#medians[@]}" -gt 0 ]; then
        echo
        printf '%s\n' "${medians[@]}"
    fi
} | tee "$RESULTS"
say "written to $RESULTS"
