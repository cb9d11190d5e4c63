#!/usr/bin/env bash
# Regenerate the TCP keepalive captures in this folder from real Linux TCP
# behaviour. See README.md beside this script for what each file shows.
#
#   sudo captures/make-captures.sh [OUTDIR] [SCENARIO...]
#
# OUTDIR defaults to the folder of this script. With SCENARIO names (e.g.
# "alive dead-peer") only those captures are made; the names are the file
# names without extension (alive.pcapng is "alive-pcapng"). A first argument
# that is a scenario name is taken as one, not as OUTDIR.
#
# Needs root, iproute2 (ip), tcpdump and python3; ethtool is used when present
# (to switch off checksum offload, so the captured checksums are the real
# ones); dumpcap (package tshark / wireshark-common) is used for alive.pcapng,
# else tcpdump's capture is converted with editcap.
#
# Network: every packet stays inside network namespaces that this script
# creates (named kap-cap-<pid>-...) and deletes on exit. Inside them the only
# addresses are 192.0.2.1/192.0.2.2, 2001:db8::1/2001:db8::2 (documentation
# ranges) on a veth pair, and 127.0.0.1 on a namespace's own lo. The
# namespaces have no route anywhere else.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ALL=(alive dead-peer peer-reset retransmit-starved zero-window both-probe ipv6 loopback any-sll2
  alive-pcapng mid-idle windows-probes acks-lost half-closed user-timeout)
OUT=$HERE
if [ $# -gt 0 ] && [[ " ${ALL[*]} " != *" $1 "* ]]; then
  OUT=$1
  shift
fi
ONLY=("$@")
export PYTHONDONTWRITEBYTECODE=1 # keep __pycache__ out of the source folder

die() { printf 'make-captures: ERROR: %s\n' "$*" >&2; exit 1; }
say() { printf '\n==> %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }
run() { printf '    + %s\n' "$*"; "$@"; }

[ "$(id -u)" = 0 ] || die "must run as root (it creates network namespaces and captures packets)"
for cmd in ip tcpdump python3; do
  command -v "$cmd" >/dev/null || die "$cmd not found (apt-get install iproute2 tcpdump python3)"
done
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

PORT=4242
C4=192.0.2.1 S4=192.0.2.2
C6=2001:db8::1 S6=2001:db8::2
TAG="kap-cap-$$"
WORK=$(mktemp -d "/tmp/kap-cap.XXXXXX")
NAMESPACES=()
PIDS=()

cleanup() {
  local rc=$?
  set +e
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  done
  for ns in "${NAMESPACES[@]}"; do
    ip netns del "$ns" 2>/dev/null
  done
  if [ "$rc" != 0 ]; then
    for log in "$WORK"/*/*.log "$WORK"/*/*.err; do
      [ -e "$log" ] || continue
      printf -- '--- %s\n' "${log#"$WORK"/}" >&2
      sed 's/^/  | /' "$log" >&2
    done
    printf 'make-captures: FAILED (exit %s); namespaces removed\n' "$rc" >&2
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- helpers

# wait_file PATH [SECONDS [PID]]: wait until PATH exists (and PID, when
# given, is still running).
wait_file() {
  local path=$1 limit=${2:-30} pid=${3:-} i=0
  while [ ! -e "$path" ]; do
    i=$((i + 1))
    [ "$i" -le $((limit * 50)) ] || die "timed out waiting for $path"
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      die "process $pid exited before creating $path"
    fi
    sleep 0.02
  done
}

# forget_pid PID: drop PID from the list that cleanup kills.
forget_pid() {
  local keep=() p
  for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  PIDS=("${keep[@]+"${keep[@]}"}")
}

offload_off() { # offload_off NS DEV
  if command -v ethtool >/dev/null; then
    ip netns exec "$1" ethtool -K "$2" tx off gso off >/dev/null 2>&1 || note "(ethtool could not change offloads on $2)"
  fi
}

# new_ns NAME: create a namespace with lo up, no IPv6 router solicitations.
new_ns() {
  run ip netns add "$1"
  NAMESPACES+=("$1")
  ip netns exec "$1" sysctl -qw net.ipv6.conf.all.accept_ra=0 net.ipv6.conf.default.accept_ra=0 \
    net.ipv6.conf.default.router_solicitations=0 net.ipv6.conf.all.router_solicitations=0 >/dev/null 2>&1 || true
  run ip -n "$1" link set lo up
}

# pair SCENARIO [v6]: client namespace $CNS and server namespace $SNS joined
# by a veth pair (veth-cli in $CNS, veth-srv in $SNS) with the documentation
# addresses; sets CNS, SNS, STATE.
pair() {
  CNS="$TAG-$1-c" SNS="$TAG-$1-s"
  STATE="$WORK/$1"
  mkdir -p "$STATE"
  new_ns "$CNS"
  new_ns "$SNS"
  run ip link add veth-cli netns "$CNS" type veth peer name veth-srv netns "$SNS"
  offload_off "$CNS" veth-cli
  offload_off "$SNS" veth-srv
  if [ "${2:-}" = v6 ]; then
    run ip -n "$CNS" addr add "$C6/64" dev veth-cli nodad
    run ip -n "$SNS" addr add "$S6/64" dev veth-srv nodad
  else
    run ip -n "$CNS" addr add "$C4/24" dev veth-cli
    run ip -n "$SNS" addr add "$S4/24" dev veth-srv
  fi
  run ip -n "$CNS" link set veth-cli up
  run ip -n "$SNS" link set veth-srv up
}

# single SCENARIO: one namespace $CNS (= $SNS) with only lo.
single() {
  CNS="$TAG-$1" SNS="$CNS"
  STATE="$WORK/$1"
  mkdir -p "$STATE"
  new_ns "$CNS"
  offload_off "$CNS" lo
}

# unpair: delete the scenario's namespaces.
unpair() {
  local ns keep=()
  for ns in "$CNS" "$SNS"; do
    ip netns del "$ns" 2>/dev/null || true
  done
  for ns in "${NAMESPACES[@]}"; do
    [ "$ns" = "$CNS" ] || [ "$ns" = "$SNS" ] || keep+=("$ns")
  done
  NAMESPACES=("${keep[@]+"${keep[@]}"}")
}

# capture_start NS FILE TOOL ARGS...: start tcpdump (TOOL=tcpdump) or dumpcap
# in NS writing to FILE; waits until it is capturing. Sets CAP_PID.
capture_start() {
  local ns=$1 file=$2 tool=$3
  shift 3
  CAP_ERR="$STATE/capture.err"
  : >"$CAP_ERR"
  if [ "$tool" = dumpcap ]; then
    note "+ ip netns exec $ns dumpcap $* -w $(basename "$file")"
    ip netns exec "$ns" dumpcap "$@" -w "$file" 2>"$CAP_ERR" &
  else
    note "+ ip netns exec $ns tcpdump $* -w $(basename "$file")"
    ip netns exec "$ns" tcpdump -Z root -U --immediate-mode "$@" -w "$file" 2>"$CAP_ERR" &
  fi
  CAP_PID=$!
  PIDS+=("$CAP_PID")
  local i=0
  until grep -qE 'listening on|Capturing on' "$CAP_ERR"; do
    kill -0 "$CAP_PID" 2>/dev/null || { cat "$CAP_ERR" >&2; die "$tool did not start"; }
    i=$((i + 1))
    [ "$i" -le 500 ] || { cat "$CAP_ERR" >&2; die "$tool not capturing after 10 s"; }
    sleep 0.02
  done
  sleep 0.2 # the socket filter is attached before the message; a little margin anyway
}

capture_stop() {
  sleep 0.3 # let the last segments reach the capture
  kill -INT "$CAP_PID"
  wait "$CAP_PID" || { cat "$CAP_ERR" >&2; die "capture tool failed"; }
  forget_pid "$CAP_PID"
  grep -E 'captured|received|dropped|Packets' "$CAP_ERR" | sed 's/^/    /' || true
  if grep -qE '^[1-9][0-9]* packets? dropped by kernel' "$CAP_ERR"; then
    die "the kernel dropped packets during the capture"
  fi
}

# endpoint NAME NS ROLE ADDR [OPTIONS] STEPS...: start endpoint.py in NS in
# the background (log in $STATE/NAME.log); sets EP_PID.
endpoint() {
  local name=$1 ns=$2 role=$3 addr=$4
  shift 4
  note "+ [$name in $ns] endpoint.py $role $addr $PORT $*"
  ip netns exec "$ns" python3 -u "$HERE/endpoint.py" "$role" "$addr" "$PORT" --state "$STATE" "$@" \
    >"$STATE/$name.log" 2>&1 &
  EP_PID=$!
  PIDS+=("$EP_PID")
}

# finish NAME PID: wait for a background program, show its log, fail if it failed.
finish() {
  local name=$1 pid=$2 rc=0
  wait "$pid" || rc=$?
  forget_pid "$pid"
  sed 's/^/      | /' "$STATE/$name.log"
  [ "$rc" = 0 ] || die "$name exited with status $rc"
}

# publish TMPFILE NAME: move a finished capture into OUT and show it.
publish() {
  local tmp=$1 name=$2 size
  [ -s "$tmp" ] || die "$name: capture is empty"
  install -m 0644 "$tmp" "$OUT/$name"
  size=$(stat -c %s "$OUT/$name")
  note "wrote $OUT/$name ($size bytes)"
  [ "$size" -le 60000 ] || note "WARNING: $name is larger than expected"
  tcpdump -nn -tttt -r "$OUT/$name" 2>/dev/null | sed 's/^/      /' | head -60
}

# check FILE WHAT OP N FILTER: the number of frames of FILE that match the
# tcpdump FILTER must satisfy OP N (OP: eq, ge); fails loudly otherwise.
check() {
  local file=$1 what=$2 op=$3 n=$4 filter=$5 got ok=0
  got=$(tcpdump -nn -r "$OUT/$file" "$filter" 2>"$STATE/check.err" | wc -l) ||
    { cat "$STATE/check.err" >&2; die "tcpdump could not read $file with filter: $filter"; }
  case $op in
    eq) [ "$got" -eq "$n" ] && ok=1 ;;
    ge) [ "$got" -ge "$n" ] && ok=1 ;;
    *) die "check: unknown operator $op" ;;
  esac
  if [ "$ok" = 1 ]; then
    note "check: $what: $got (want $op $n) ok"
  else
    die "$file: $what: $got frames, wanted $op $n (filter: $filter)"
  fi
}
# Filters for IPv4 (BPF's tcp[] does not reach into IPv6).
F_SYN='tcp[tcpflags] & tcp-syn != 0'
F_FIN='tcp[tcpflags] & tcp-fin != 0'
F_RST='tcp[tcpflags] & tcp-rst != 0'

server_ready() { wait_file "$STATE/server-ready" 30 "$EP_PID"; }

blackhole() { # blackhole ADDR: the server namespace drops whatever it sends to ADDR
  run ip -n "$SNS" route add blackhole "$1/32"
}

# ---------------------------------------------------------------- scenarios

# alive-like scenario shared by alive, ipv6, loopback, any-sll2, alive-pcapng.
#   alive_like NAME FILE v4|v6|lo TOOL CAPTURE-ARGS...
alive_like() {
  local name=$1 file=$2 kind=$3 tool=$4
  shift 4
  local caddr=$S4 cdev=veth-cli
  case $kind in
    v4) pair "$name" ;;
    v6) pair "$name" v6; caddr=$S6 ;;
    lo) single "$name"; caddr=127.0.0.1 cdev=lo ;;
  esac
  local args=("$@")
  [ ${#args[@]} -gt 0 ] || args=(-i "$cdev" -nn -s 0 tcp)
  capture_start "$CNS" "$STATE/$file" "$tool" "${args[@]}"
  endpoint server "$SNS" server "$caddr" recv:64 send:64 eof close
  local spid=$EP_PID
  server_ready
  endpoint client "$CNS" client "$caddr" --keepalive 1,1,3 \
    send:64 recv:64 sleep:4.5 shutdown eof close
  local cpid=$EP_PID
  finish client "$cpid"
  finish server "$spid"
  capture_stop
  publish "$STATE/$file" "$file"
  check "$file" "TCP frames" ge 15 tcp
  if [ "$kind" = v6 ]; then
    check "$file" "SYNs" eq 2 'ip6[6] == 6 and ip6[53] & 2 != 0'
    check "$file" "FINs" eq 2 'ip6[6] == 6 and ip6[53] & 1 != 0'
    check "$file" "RSTs" eq 0 'ip6[6] == 6 and ip6[53] & 4 != 0'
  else
    check "$file" "SYNs" eq 2 "$F_SYN"
    check "$file" "FINs" eq 2 "$F_FIN"
    check "$file" "RSTs" eq 0 "$F_RST"
  fi
  unpair
}

sc_alive() {
  say "alive.pcap: client keepalive 1/1/3, data, ~4.5 s idle (probes answered), FIN close"
  alive_like alive alive.pcap v4 tcpdump
}

sc_ipv6() {
  say "ipv6.pcap: as alive.pcap over IPv6 (2001:db8::1 -> 2001:db8::2)"
  alive_like ipv6 ipv6.pcap v6 tcpdump
}

sc_loopback() {
  say "loopback.pcap: as alive.pcap, client and server in one namespace on lo (127.0.0.1)"
  alive_like loopback loopback.pcap lo tcpdump
}

sc_any_sll2() {
  say "any-sll2.pcap: as alive.pcap, captured with tcpdump -i any -y LINUX_SLL2"
  alive_like any-sll2 any-sll2.pcap v4 tcpdump -i any -y LINUX_SLL2 -nn -s 0 tcp
}

sc_alive_pcapng() {
  say "alive.pcapng: as alive.pcap, written as pcapng"
  if command -v dumpcap >/dev/null; then
    alive_like alive-pcapng alive.pcapng v4 dumpcap -q -i veth-cli -f tcp
  elif command -v editcap >/dev/null; then
    alive_like alive-pcapng alive-pcapng.pcap v4 tcpdump
    run editcap -F pcapng "$OUT/alive-pcapng.pcap" "$OUT/alive.pcapng"
    rm -f "$OUT/alive-pcapng.pcap"
  else
    die "alive.pcapng needs dumpcap or editcap (apt-get install tshark)"
  fi
}

# silenced NAME SECONDS CLIENT-OPTIONS...: a client with those socket options
# exchanges data with the server, which goes silent (blackholed) SECONDS
# later; the client's kernel gives up (ETIMEDOUT). Writes NAME.pcap.
silenced() {
  local name=$1 after=$2
  shift 2
  pair "$name"
  capture_start "$CNS" "$STATE/$name.pcap" tcpdump -i veth-cli -nn -s 0 tcp
  endpoint server "$SNS" server "$S4" recv:64 send:64 wait:end close
  local spid=$EP_PID
  server_ready
  endpoint client "$CNS" client "$S4" "$@" send:64 recv:64 mark:exchanged expect:ETIMEDOUT
  local cpid=$EP_PID
  wait_file "$STATE/exchanged"
  sleep "$after"
  blackhole "$C4"
  finish client "$cpid"
  touch "$STATE/end"
  finish server "$spid"
  capture_stop
  publish "$STATE/$name.pcap" "$name.pcap"
  check "$name.pcap" "RSTs from the client" eq 1 "src host $C4 and $F_RST"
  check "$name.pcap" "RSTs from the server" eq 0 "src host $S4 and $F_RST"
}

sc_dead_peer() {
  say "dead-peer.pcap: client keepalive 1/1/3; after 2 answered probes the server's replies are blackholed"
  silenced dead-peer 2.5 --keepalive 1,1,3
  unpair
}

sc_user_timeout() {
  say "user-timeout.pcap: client keepalive 1/1/9 and TCP_USER_TIMEOUT 3500 ms; the server's replies are blackholed after one answered probe"
  silenced user-timeout 1.5 --keepalive 1,1,9 --user-timeout 3500
  # TCP_KEEPCNT 9 would take nine unanswered probes; the user timeout ends it
  # after fewer (3.5 s since the last answer, on the next keepalive tick).
  check user-timeout.pcap "frames" ge 11 tcp
  unpair
}

sc_peer_reset() {
  say "peer-reset.pcap: the server aborts while its packets are blackholed; the client's next probe meets an RST"
  pair peer-reset
  capture_start "$CNS" "$STATE/peer-reset.pcap" tcpdump -i veth-cli -nn -s 0 tcp
  endpoint server "$SNS" server "$S4" recv:64 send:64 sleep:0.3 mark:server-idle wait:go-abort abort mark:server-gone
  local spid=$EP_PID
  server_ready
  endpoint client "$CNS" client "$S4" --keepalive 2,1,3 send:64 recv:64 expect:ECONNRESET
  local cpid=$EP_PID
  wait_file "$STATE/server-idle"
  blackhole "$C4"
  touch "$STATE/go-abort"
  wait_file "$STATE/server-gone"
  finish server "$spid"
  sleep 0.2
  run ip -n "$SNS" route del blackhole "$C4/32"
  finish client "$cpid"
  capture_stop
  publish "$STATE/peer-reset.pcap" peer-reset.pcap
  check peer-reset.pcap "RSTs from the server" eq 1 "src host $S4 and $F_RST"
  check peer-reset.pcap "RSTs from the client" eq 0 "src host $C4 and $F_RST"
  unpair
}

sc_retransmit_starved() {
  say "retransmit-starved.pcap: keepalive 1/1/3 + TCP_USER_TIMEOUT 6000 ms; unacknowledged write, retransmissions until the timeout"
  pair retransmit-starved
  capture_start "$CNS" "$STATE/retransmit-starved.pcap" tcpdump -i veth-cli -nn -s 0 tcp
  endpoint server "$SNS" server "$S4" recv:64 send:64 wait:end close
  local spid=$EP_PID
  server_ready
  endpoint client "$CNS" client "$S4" --keepalive 1,1,3 --user-timeout 6000 \
    send:64 recv:64 mark:exchanged wait:write send:100 expect:ETIMEDOUT
  local cpid=$EP_PID
  wait_file "$STATE/exchanged"
  sleep 2.5
  blackhole "$C4"
  touch "$STATE/write"
  finish client "$cpid"
  touch "$STATE/end"
  finish server "$spid"
  capture_stop
  publish "$STATE/retransmit-starved.pcap" retransmit-starved.pcap
  check retransmit-starved.pcap "100-byte segments (original + retransmissions)" ge 4 \
    "src host $C4 and (ip[2:2] - ((ip[0] & 0xf) << 2) - ((tcp[12] & 0xf0) >> 2)) == 100"
  check retransmit-starved.pcap "RSTs" eq 0 "$F_RST"
  unpair
}

sc_acks_lost() {
  say "acks-lost.pcap: TCP_USER_TIMEOUT 6000 ms; the client's own firewall drops the server's packets after the capture point; the client resends what the server acknowledged"
  command -v nft >/dev/null || die "nft not found (apt-get install nftables)"
  pair acks-lost
  capture_start "$CNS" "$STATE/acks-lost.pcap" tcpdump -i veth-cli -nn -s 0 tcp
  endpoint server "$SNS" server "$S4" recv:64 send:64 recv:100 wait:end close
  local spid=$EP_PID
  server_ready
  endpoint client "$CNS" client "$S4" --user-timeout 6000 \
    send:64 recv:64 mark:exchanged wait:write send:100 expect:ETIMEDOUT
  local cpid=$EP_PID
  wait_file "$STATE/exchanged"
  sleep 1
  # A capture on the interface sees a packet before the input hook does.
  note "+ ip netns exec $CNS nft: drop ip saddr $S4 tcp sport $PORT in the input hook"
  ip netns exec "$CNS" nft -f - <<EOF_NFT
table inet kap {
  chain input { type filter hook input priority 0; ip saddr $S4 tcp sport $PORT drop; }
}
EOF_NFT
  touch "$STATE/write"
  finish client "$cpid"
  # Stopped before the server closes: its FIN would be dropped and resent too.
  capture_stop
  touch "$STATE/end"
  finish server "$spid"
  publish "$STATE/acks-lost.pcap" acks-lost.pcap
  check acks-lost.pcap "100-byte segments (original + retransmissions)" ge 5 \
    "src host $C4 and (ip[2:2] - ((ip[0] & 0xf) << 2) - ((tcp[12] & 0xf0) >> 2)) == 100"
  check acks-lost.pcap "server segments without data (its ACK and one per resend)" ge 5 \
    "src host $S4 and (ip[2:2] - ((ip[0] & 0xf) << 2) - ((tcp[12] & 0xf0) >> 2)) == 0 and not $F_SYN and not $F_FIN"
  check acks-lost.pcap "RSTs" eq 0 "$F_RST"
  unpair
}

sc_zero_window() {
  say "zero-window.pcap: server SO_RCVBUF 2048 stops reading; client (keepalive 1/1/3) sends zero-window probes; server reads after ~6 s"
  pair zero-window
  capture_start "$CNS" "$STATE/zero-window.pcap" tcpdump -i veth-cli -nn -s 0 tcp
  endpoint server "$SNS" server "$S4" --rcvbuf 2048 recv:64 send:64 wait:read recv:16384 eof close
  local spid=$EP_PID
  server_ready
  endpoint client "$CNS" client "$S4" --keepalive 1,1,3 send:64 recv:64 mark:sending send:16384 shutdown eof close
  local cpid=$EP_PID
  wait_file "$STATE/sending"
  sleep 6
  touch "$STATE/read"
  finish client "$cpid"
  finish server "$spid"
  capture_stop
  publish "$STATE/zero-window.pcap" zero-window.pcap
  check zero-window.pcap "server segments advertising window 0" ge 2 \
    "src host $S4 and tcp[14:2] == 0 and not $F_SYN"
  check zero-window.pcap "FINs" eq 2 "$F_FIN"
  unpair
}

sc_both_probe() {
  say "both-probe.pcap: client keepalive 1/1/3 and server keepalive 2/1/3, ~5.5 s idle, FIN close"
  pair both-probe
  capture_start "$CNS" "$STATE/both-probe.pcap" tcpdump -i veth-cli -nn -s 0 tcp
  endpoint server "$SNS" server "$S4" --keepalive 2,1,3 recv:64 send:64 eof close
  local spid=$EP_PID
  server_ready
  endpoint client "$CNS" client "$S4" --keepalive 1,1,3 send:64 recv:64 sleep:5.5 shutdown eof close
  local cpid=$EP_PID
  finish client "$cpid"
  finish server "$spid"
  capture_stop
  publish "$STATE/both-probe.pcap" both-probe.pcap
  check both-probe.pcap "TCP frames" ge 20 tcp
  check both-probe.pcap "FINs" eq 2 "$F_FIN"
  unpair
}

sc_mid_idle() {
  say "mid-idle.pcap: capture starts ~1.5 s into the idle period of a client with keepalive 1/1/3"
  pair mid-idle
  endpoint server "$SNS" server "$S4" recv:64 send:64 eof close
  local spid=$EP_PID
  server_ready
  endpoint client "$CNS" client "$S4" --keepalive 1,1,3 send:64 recv:64 mark:idle sleep:6 shutdown eof close
  local cpid=$EP_PID
  wait_file "$STATE/idle"
  sleep 1.5
  capture_start "$CNS" "$STATE/mid-idle.pcap" tcpdump -i veth-cli -nn -s 0 tcp
  finish client "$cpid"
  finish server "$spid"
  capture_stop
  publish "$STATE/mid-idle.pcap" mid-idle.pcap
  check mid-idle.pcap "SYNs" eq 0 "$F_SYN"
  check mid-idle.pcap "TCP frames" ge 6 tcp
  unpair
}

sc_half_closed() {
  say "half-closed.pcap: client keepalive 1/1/3 sends its FIN and keeps the socket open (FIN_WAIT2); the server stays 4.5 s in CLOSE_WAIT before its FIN"
  pair half-closed
  capture_start "$CNS" "$STATE/half-closed.pcap" tcpdump -i veth-cli -nn -s 0 tcp
  endpoint server "$SNS" server "$S4" recv:64 send:64 eof sleep:4.5 close
  local spid=$EP_PID
  server_ready
  endpoint client "$CNS" client "$S4" --keepalive 1,1,3 send:64 recv:64 shutdown eof close
  local cpid=$EP_PID
  finish client "$cpid"
  finish server "$spid"
  capture_stop
  publish "$STATE/half-closed.pcap" half-closed.pcap
  check half-closed.pcap "FINs" eq 2 "$F_FIN"
  check half-closed.pcap "RSTs" eq 0 "$F_RST"
  # The probes: the client's 0-byte ACKs after its FIN, one every second.
  check half-closed.pcap "TCP frames" ge 16 tcp
  unpair
}

sc_windows_probes() {
  say "windows-probes.pcap: CRAFTED 1-byte probes (0x00 at snd_nxt-1) on a real Linux connection; 3 answered, then 5 unanswered, then the client's RST"
  pair windows-probes
  # A Windows host does not use TCP timestamps by default; without them the
  # crafted probes need no TCP options.
  run ip netns exec "$CNS" sysctl -qw net.ipv4.tcp_timestamps=0
  capture_start "$CNS" "$STATE/windows-probes.pcap" tcpdump -i veth-cli -nn -s 0 tcp
  note "+ [winprobe in $CNS] win_probe.py ..."
  ip netns exec "$CNS" python3 -u "$HERE/win_probe.py" --iface veth-cli --src "$C4" --dst "$S4" \
    --dport "$PORT" --state "$STATE" \
    wait:idle sleep:1 probe:3 mark:answered-done wait:go-unanswered probe:5 mark:probes-done \
    >"$STATE/winprobe.log" 2>&1 &
  local wpid=$!
  PIDS+=("$wpid")
  wait_file "$STATE/winprobe-ready" 30 "$wpid"
  endpoint server "$SNS" server "$S4" recv:64 send:64 wait:end close
  local spid=$EP_PID
  server_ready
  endpoint client "$CNS" client "$S4" send:64 recv:64 sleep:0.3 mark:idle wait:probes-done abort
  local cpid=$EP_PID
  wait_file "$STATE/answered-done" 30
  blackhole "$C4"
  touch "$STATE/go-unanswered"
  finish winprobe "$wpid"
  finish client "$cpid"
  touch "$STATE/end"
  finish server "$spid"
  capture_stop
  publish "$STATE/windows-probes.pcap" windows-probes.pcap
  check windows-probes.pcap "1-byte segments from the client (crafted probes)" eq 8 "src host $C4 and ip[2:2] == 41"
  check windows-probes.pcap "server ACKs with a SACK option (probe answers)" eq 3 \
    "src host $S4 and tcp[12] & 0xf0 > 0x50 and not $F_SYN"
  check windows-probes.pcap "RSTs from the client" eq 1 "src host $C4 and $F_RST"
  unpair
}

# ---------------------------------------------------------------- main

if [ ${#ONLY[@]} -eq 0 ]; then ONLY=("${ALL[@]}"); fi

say "writing captures to $OUT (namespaces $TAG-*, scratch $WORK)"
command -v ethtool >/dev/null || note "ethtool not found: checksums of locally sent packets may show as incorrect"
start=$SECONDS
for s in "${ONLY[@]}"; do
  case $s in
    alive) sc_alive ;;
    dead-peer) sc_dead_peer ;;
    peer-reset) sc_peer_reset ;;
    retransmit-starved) sc_retransmit_starved ;;
    zero-window) sc_zero_window ;;
    both-probe) sc_both_probe ;;
    ipv6) sc_ipv6 ;;
    loopback) sc_loopback ;;
    any-sll2) sc_any_sll2 ;;
    alive-pcapng) sc_alive_pcapng ;;
    mid-idle) sc_mid_idle ;;
    windows-probes) sc_windows_probes ;;
    acks-lost) sc_acks_lost ;;
    half-closed) sc_half_closed ;;
    user-timeout) sc_user_timeout ;;
    *) die "unknown scenario $s (known: ${ALL[*]})" ;;
  esac
done
say "done in $((SECONDS - start)) s"
