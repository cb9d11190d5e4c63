#!/usr/bin/env python3
"""A real Linux TCP endpoint for kaprobe's privileged tests (stdlib only).

  peer.py server ADDR PORT [--keepalive IDLE,INTVL,CNT]
  peer.py client ADDR PORT [--keepalive IDLE,INTVL,CNT] [--hold SECONDS]
        [--user-timeout MS] [--send-every SECONDS] [--quiet-start] [--md5 KEY]

The server accepts one connection, answers each line it reads with the same
line, and holds the connection open until the peer closes it or it is killed.
The client connects, exchanges one line, then stays idle (kernel keepalive
does the talking) for --hold seconds (or until SIGUSR1; SIGUSR2 turns the
writing off and on; --quiet-start begins with it off), optionally writing a line every
--send-every seconds, and prints one line of JSON about how it ended: the
result, and the bytes it sent and got back after the first exchange.
Both print "ready" on stdout once listening/connected.
"""
import argparse
import errno  # noqa: F401 (errno values appear in results)
import json
import signal
import socket
import struct
import sys
import time


def keepalive(sock, spec):
    if not spec:
        return
    idle, intvl, cnt = (int(x) for x in spec.split(","))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, idle)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, intvl)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, cnt)


def md5_key(sock, peer_addr, key):
    """TCP-MD5 (RFC 2385) for segments to and from `peer_addr`: struct
    tcp_md5sig from linux/tcp.h (sockaddr_storage, flags, prefixlen, keylen,
    ifindex, key[80])."""
    if not key:
        return
    fam = family(peer_addr)
    if fam == socket.AF_INET:
        addr = struct.pack("=H2s4s", socket.AF_INET, b"\0\0", socket.inet_pton(fam, peer_addr))
    else:
        addr = struct.pack("=H2sI16sI", socket.AF_INET6, b"\0\0", 0, socket.inet_pton(fam, peer_addr), 0)
    addr = addr.ljust(128, b"\0")
    raw = key.encode()
    sig = addr + struct.pack("=BBHI", 0, 0, len(raw), 0) + raw.ljust(80, b"\0")
    TCP_MD5SIG = 14
    sock.setsockopt(socket.IPPROTO_TCP, TCP_MD5SIG, sig)


def family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def server(args):
    lsock = socket.socket(family(args.addr), socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    md5_key(lsock, args.md5_peer or args.addr, args.md5)
    lsock.bind((args.addr, args.port))
    lsock.listen(8)
    print("ready", flush=True)
    conn, _ = lsock.accept()
    keepalive(conn, args.keepalive)
    with conn:
        while True:
            try:
                data = conn.recv(4096)
            except OSError:
                break
            if not data:
                break
            conn.sendall(data)


def client(args):
    sock = socket.socket(family(args.addr), socket.SOCK_STREAM)
    md5_key(sock, args.addr, args.md5)
    sock.settimeout(5)
    # getaddrinfo understands a link-local scope (fe80::1%eth0).
    sock.connect(socket.getaddrinfo(args.addr, args.port, family(args.addr), socket.SOCK_STREAM)[0][4])
    sock.settimeout(None)
    keepalive(sock, args.keepalive)
    if args.user_timeout:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, args.user_timeout)
    sock.sendall(b"hello\n")
    sock.recv(4096)
    print("ready", flush=True)
    end = time.monotonic() + args.hold
    # SIGUSR1 ends the hold early (within one --send-every period).
    stop = []
    signal.signal(signal.SIGUSR1, lambda *_: stop.append(True))
    # SIGUSR2 turns the writing off (or on again); once off and every echo
    # is back, one line {"caught_up": true, ...} says so.
    toggles = []
    signal.signal(signal.SIGUSR2, lambda *_: toggles.append(True))
    writing = not args.quiet_start
    told = args.quiet_start
    result = "held"
    next_send = time.monotonic() + args.send_every if args.send_every and writing else None
    sent = received = 0
    while time.monotonic() < end and not stop:
        if toggles:
            toggles.clear()
            writing = not writing
            told = False
            next_send = time.monotonic() if writing and args.send_every else None
        if not writing and not told and received >= sent:
            print(json.dumps({"caught_up": True, "sent": sent}), flush=True)
            told = True
        timeout = end - time.monotonic()
        if next_send:
            timeout = min(timeout, max(0.0, next_send - time.monotonic()))
        # Short waits, so that signals are seen promptly (recv resumes
        # after a handler).
        timeout = min(timeout, 0.05)
        sock.settimeout(max(timeout, 0.01))
        try:
            data = sock.recv(4096)
            if not data:
                result = "closed"
                break
            received += len(data)
        except OSError as e:
            # socket.timeout is TimeoutError, and so is ETIMEDOUT from a
            # keepalive or user timeout: only the errno tells them apart.
            if e.errno is None:
                pass
            else:
                result = "error: " + (e.strerror or str(e))
                break
        if next_send and time.monotonic() >= next_send:
            try:
                sock.sendall(b"ping\n")
                sent += 5
            except OSError as e:
                result = "error: " + (e.strerror or str(e))
                break
            next_send = time.monotonic() + args.send_every
    if result == "held":
        # Echoes of the last lines may still be on their way.
        sock.settimeout(2)
        try:
            while received < sent:
                data = sock.recv(4096)
                if not data:
                    break
                received += len(data)
        except OSError:
            pass
    print(json.dumps({"result": result, "sent": sent, "received": received}), flush=True)
    sock.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("role", choices=["server", "client"])
    ap.add_argument("addr")
    ap.add_argument("port", type=int)
    ap.add_argument("--keepalive")
    ap.add_argument("--hold", type=float, default=5.0)
    ap.add_argument("--user-timeout", type=int)
    ap.add_argument("--send-every", type=float)
    ap.add_argument("--quiet-start", action="store_true")
    ap.add_argument("--md5", help="TCP-MD5 key for the connection")
    ap.add_argument("--md5-peer", help="server: the client address the key is for")
    args = ap.parse_args()
    (server if args.role == "server" else client)(args)


if __name__ == "__main__":
    sys.exit(main())
