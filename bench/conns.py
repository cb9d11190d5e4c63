#!/usr/bin/env python3
"""Many idle TCP connections for bench/poke.sh (stdlib only).

  conns.py server ADDR PORT N     accept N connections and hold them
  conns.py client ADDR PORT N     open N connections, print "ready", hold

Both hold until killed. Addresses are those of the benchmark's own network
namespaces; nothing else is contacted.
"""
import resource
import socket
import sys
import time


def raise_fd_limit(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, n + 64))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def main():
    role, addr, port, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    raise_fd_limit(n)
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    held = []
    if role == "server":
        lsock = socket.socket(family, socket.SOCK_STREAM)
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lsock.bind((addr, port))
        lsock.listen(1024)
        print("ready", flush=True)
        while len(held) < n:
            conn, _ = lsock.accept()
            held.append(conn)
    else:
        for _ in range(n):
            held.append(socket.create_connection((addr, port), timeout=5))
        print("ready", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    sys.exit(main())
