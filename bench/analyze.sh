#!/usr/bin/env bash
# Throughput and memory benchmark for `kaprobe analyze`.
#
# Run from anywhere (it moves to the repository root):   bash bench/analyze.sh
#
# Builds kaprobe (release), the gen_capture example and the C libpcap read loop;
# generates the benchmark captures under target/bench/ if they are missing;
# then times, in one run:
#   readloop                         C libpcap read loop on the big capture (the floor)
#   kaprobe analyze / --json         on the big capture
#   tshark / kaprobe analyze         on a slice (SLICE_PACKETS packets from the middle of the big capture)
#   kaprobe analyze, 1M connections  peak RSS via /usr/bin/time -v
# and prints a table with packets/s, the ratios and the targets:
#   kaprobe >= 0.75x readloop, kaprobe >= 100x tshark, peak RSS <= 200 MB on 1M connections.
#
# Everything is files on disk: nothing is captured from or sent to a network.
#
# Knobs (environment):
#   BENCH_DIR=target/bench  BIG_PACKETS=20000000  BIG_CONCURRENT=5000
#   CONNS=1000000  CONNS_CONCURRENT=5000  SLICE_PACKETS=1000000  SLICE_START=BIG_PACKETS/2+1
#   SNAPLEN=128  SEED=1  RUNS=3 (best-of for the fast runs)  TSHARK_RUNS=3
set -euo pipefail
export LC_ALL=C

cd "$(dirname "$0")/.."

BENCH_DIR=${BENCH_DIR:-target/bench}
BIG_PACKETS=${BIG_PACKETS:-20000000}
BIG_CONCURRENT=${BIG_CONCURRENT:-5000}
CONNS=${CONNS:-1000000}
CONNS_CONCURRENT=${CONNS_CONCURRENT:-5000}
# 1M packets: on 200k, kaprobe's run lasts ~50 ms and start-up and machine noise
# decided the ratio (61-164x across runs); tshark takes ~35 s per run of 1M.
SLICE_PACKETS=${SLICE_PACKETS:-1000000}
# the middle of the big capture: steady state (~BIG_CONCURRENT live connections, keepalives under way)
# rather than the first second, where every connection is still opening
SLICE_START=${SLICE_START:-$((BIG_PACKETS / 2 + 1))}
SNAPLEN=${SNAPLEN:-128}
SEED=${SEED:-1}
RUNS=${RUNS:-3}
TSHARK_RUNS=${TSHARK_RUNS:-3}

KAPROBE=target/release/kaprobe
GEN=target/release/examples/gen_capture
READLOOP=target/readloop

say() { printf '==> %s\n' "$*" >&2; }

# ------------------------------------------------------------------ tools
have() { command -v "$1" >/dev/null 2>&1; }
need_pkgs=()
have cc || need_pkgs+=(gcc)
[ -e /usr/include/pcap/pcap.h ] || [ -e /usr/include/pcap.h ] || need_pkgs+=(libpcap-dev)
have tshark || need_pkgs+=(tshark)
have editcap || need_pkgs+=(wireshark-common)
[ -x /usr/bin/time ] || need_pkgs+=(time)
if [ ${#need_pkgs[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && have apt-get; then
        say "installing: ${need_pkgs[*]}"
        if ! { apt-get update -qq >/dev/null &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}" >/dev/null; }; then
            say "apt-get install failed; the rows that need ${need_pkgs[*]} are skipped"
        fi
    else
        say "missing (install with apt-get as root): ${need_pkgs[*]}; the rows that need them are skipped"
    fi
fi
have cargo || { echo "cargo not found" >&2; exit 1; }
have cc || { echo "cc not found (apt-get install gcc)" >&2; exit 1; }

# ------------------------------------------------------------------ build
say "building kaprobe, gen_capture and readloop"
cargo build --release --quiet
cargo build --release --quiet --example gen_capture
cc -O2 -o "$READLOOP" bench/readloop.c -lpcap

# ------------------------------------------------------------------ captures
mkdir -p "$BENCH_DIR"
BIG="$BENCH_DIR/big-${BIG_PACKETS}p-${BIG_CONCURRENT}c-s${SEED}-snap${SNAPLEN}.pcap"
CONN1M="$BENCH_DIR/conns-${CONNS}-${CONNS_CONCURRENT}c-s${SEED}-snap${SNAPLEN}.pcap"
SLICE="$BENCH_DIR/slice-${SLICE_START}+${SLICE_PACKETS}-of-$(basename "$BIG")"

if [ ! -s "$BIG" ]; then
    say "generating $BIG"
    "$GEN" --out "$BIG.tmp" --packets "$BIG_PACKETS" --concurrent "$BIG_CONCURRENT" \
        --seed "$SEED" --snaplen "$SNAPLEN" 2> "$BIG.gen.txt"
    mv "$BIG.tmp" "$BIG"
fi
if [ ! -s "$CONN1M" ]; then
    say "generating $CONN1M"
    "$GEN" --out "$CONN1M.tmp" --connections "$CONNS" --concurrent "$CONNS_CONCURRENT" \
        --profile short --seed "$SEED" --snaplen "$SNAPLEN" 2> "$CONN1M.gen.txt"
    mv "$CONN1M.tmp" "$CONN1M"
fi
if [ ! -s "$SLICE" ]; then
    if have editcap; then
        say "cutting $SLICE"
        editcap -F pcap -r "$BIG" "$SLICE" "$SLICE_START-$((SLICE_START + SLICE_PACKETS - 1))"
    else
        say "editcap missing: generating a separate slice capture (not a cut of the big one)"
        "$GEN" --out "$SLICE" --packets "$SLICE_PACKETS" --concurrent "$BIG_CONCURRENT" \
            --seed "$SEED" --snaplen "$SNAPLEN" 2>/dev/null
    fi
fi

# ------------------------------------------------------------------ timing helpers
# best_of N CMD...: runs CMD N times, sets BEST to the smallest wall time in seconds.
best_of() {
    local n=$1 i t0 t1
    shift
    BEST=""
    for ((i = 0; i < n; i++)); do
        t0=$EPOCHREALTIME
        if ! "$@"; then
            BEST=""
            return 1
        fi
        t1=$EPOCHREALTIME
        BEST=$(awk -v a="$t0" -v b="$t1" -v best="$BEST" \
            'BEGIN { d = b - a; if (best == "" || d < best) printf "%.4f", d; else print best }')
    done
}
count_packets() { "$READLOOP" "$1" | sed -n 's/^packets=\([0-9]*\).*/\1/p'; }
run_readloop() { "$READLOOP" "$1" >/dev/null; }
run_kaprobe() { "$KAPROBE" analyze "$@" >/dev/null; }
run_tshark() {
    tshark -r "$1" -o tcp.analyze_sequence_numbers:TRUE -Y tcp.analysis.keep_alive \
        -T fields -e frame.number >/dev/null 2>/dev/null
}
pps() { awk -v p="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.0f", p / s; else print 0 }'; }
human() {
    awk -v x="$1" 'BEGIN {
        if (x >= 1e6) printf "%.2fM", x / 1e6; else if (x >= 1e3) printf "%.1fk", x / 1e3; else printf "%d", x }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

ROWS=()
row() { ROWS+=("$(printf '%-34s %11s %9s %11s' "$1" "$2" "$3" "$4")"); }

# ------------------------------------------------------------------ runs
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
GIT_REV=$(git rev-parse --short HEAD 2>/dev/null || echo "no commit")
if [ -n "$(git status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null)" ]; then
    GIT_REV="$GIT_REV + uncommitted changes in src/"
fi
BIG_N=$(count_packets "$BIG")
SLICE_N=$(count_packets "$SLICE")
CONN1M_N=$(count_packets "$CONN1M")

say "readloop on $BIG ($BIG_N packets), best of $RUNS"
best_of "$RUNS" run_readloop "$BIG"
RL_S=$BEST
RL_PPS=$(pps "$BIG_N" "$RL_S")
row "readloop (C, libpcap)" "$BIG_N" "$RL_S" "$(human "$RL_PPS")"

KA_S=""
KAJ_S=""
say "kaprobe analyze on $BIG, best of $RUNS"
if best_of "$RUNS" run_kaprobe "$BIG"; then
    KA_S=$BEST
    KA_PPS=$(pps "$BIG_N" "$KA_S")
    row "kaprobe analyze" "$BIG_N" "$KA_S" "$(human "$KA_PPS")"
else
    KA_PPS=0
    row "kaprobe analyze" "$BIG_N" "FAILED" "-"
fi
say "kaprobe analyze --json on $BIG, best of $RUNS"
if best_of "$RUNS" run_kaprobe --json "$BIG"; then
    KAJ_S=$BEST
    KAJ_PPS=$(pps "$BIG_N" "$KAJ_S")
    row "kaprobe analyze --json" "$BIG_N" "$KAJ_S" "$(human "$KAJ_PPS")"
else
    KAJ_PPS=0
    row "kaprobe analyze --json" "$BIG_N" "FAILED" "-"
fi

TS_PPS=0
if have tshark; then
    say "tshark on $SLICE ($SLICE_N packets), best of $TSHARK_RUNS"
    best_of "$TSHARK_RUNS" run_tshark "$SLICE"
    TS_S=$BEST
    TS_PPS=$(pps "$SLICE_N" "$TS_S")
    row "tshark keep_alive (slice)" "$SLICE_N" "$TS_S" "$(human "$TS_PPS")"
else
    row "tshark keep_alive (slice)" "$SLICE_N" "skipped" "-"
fi
say "kaprobe analyze on $SLICE, best of $RUNS"
if best_of "$RUNS" run_kaprobe "$SLICE"; then
    KAS_S=$BEST
    KAS_PPS=$(pps "$SLICE_N" "$KAS_S")
    row "kaprobe analyze (slice)" "$SLICE_N" "$KAS_S" "$(human "$KAS_PPS")"
else
    KAS_PPS=0
    row "kaprobe analyze (slice)" "$SLICE_N" "FAILED" "-"
fi

RSS_MB=""
if [ -x /usr/bin/time ]; then
    say "kaprobe analyze on $CONN1M ($CONN1M_N packets, $CONNS connections) under /usr/bin/time -v"
    TLOG="$BENCH_DIR/time-conns.txt"
    if /usr/bin/time -v "$KAPROBE" analyze "$CONN1M" >/dev/null 2>"$TLOG"; then
        RSS_KB=$(sed -n 's/.*Maximum resident set size (kbytes): *//p' "$TLOG")
        RSS_MB=$(awk -v k="$RSS_KB" 'BEGIN { printf "%.1f", k / 1024 }')
        W=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): *//p' "$TLOG")
        W_S=$(awk -v w="$W" 'BEGIN { n = split(w, a, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + a[i]; printf "%.4f", s }')
        row "kaprobe analyze (${CONNS} conns)" "$CONN1M_N" "$W_S" "$(human "$(pps "$CONN1M_N" "$W_S")")"
    else
        row "kaprobe analyze (${CONNS} conns)" "$CONN1M_N" "FAILED" "-"
        tail -5 "$TLOG" >&2
    fi
fi

# ------------------------------------------------------------------ report
verdict() { awk -v v="$1" -v t="$2" -v op="$3" 'BEGIN {
    if (v == "" || v == "n/a") { print "n/a"; exit }
    ok = (op == ">=") ? (v + 0 >= t + 0) : (v + 0 <= t + 0); print ok ? "PASS" : "MISS" }'; }

LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
R_RL=$(ratio "$KA_PPS" "$RL_PPS")
R_RLJ=$(ratio "$KAJ_PPS" "$RL_PPS")
R_TS=$(ratio "$KAS_PPS" "$TS_PPS")
R_TSBIG=$(ratio "$KA_PPS" "$TS_PPS")

report() {
    echo "kaprobe analyze benchmark  ($(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1))"
    echo "kaprobe:       $KAPROBE (git $GIT_REV)"
    echo "load average:  before $LOAD_BEFORE, after $LOAD_AFTER (1/5/15 min; other work on the machine skews timings)"
    echo "big capture:   $BIG"
    echo "slice:         $SLICE"
    echo "connections:   $CONN1M"
    echo
    printf '%-34s %11s %9s %11s\n' "run" "packets" "best s" "packets/s"
    printf '%s\n' "${ROWS[@]}"
    echo
    printf '%-46s %9s  %-12s %s\n' "ratio / figure" "value" "target" "verdict"
    printf '%-46s %9s  %-12s %s\n' "kaprobe / readloop (text)" "${R_RL}x" ">= 0.75x" "$(verdict "$R_RL" 0.75 ">=")"
    printf '%-46s %9s  %-12s %s\n' "kaprobe / readloop (--json)" "${R_RLJ}x" ">= 0.75x" "$(verdict "$R_RLJ" 0.75 ">=")"
    printf '%-46s %9s  %-12s %s\n' "kaprobe / tshark (same slice)" "${R_TS}x" ">= 100x" "$(verdict "$R_TS" 100 ">=")"
    printf '%-46s %9s  %-12s %s\n' "kaprobe big-capture pps / tshark slice pps" "${R_TSBIG}x" "(info)" ""
    printf '%-46s %9s  %-12s %s\n' "kaprobe peak RSS, ${CONNS} connections" "${RSS_MB:-n/a} MB" "<= 200 MB" "$(verdict "${RSS_MB:-n/a}" 200 "<=")"
}
echo
report | tee "$BENCH_DIR/results.txt"
