#!/usr/bin/env python3
"""A real Linux TCP endpoint, driven by a list of steps (stdlib only).

Used by make-captures.sh to produce the capture files in this folder. The
point is that every segment in those captures comes from the Linux kernel's
own TCP stack: this program only opens a socket, sets options on it, and
reads, writes, sleeps or closes when told to.

  endpoint.py server ADDR PORT [options] STEP...
  endpoint.py client ADDR PORT [options] STEP...

The server listens on ADDR:PORT, creates STATE/server-ready, accepts one
connection, closes its listening socket (so that nothing listens on the port
any more) and then runs the steps on the accepted socket. The client connects
to ADDR:PORT and runs the steps.

Options:
  --keepalive IDLE,INTVL,CNT  SO_KEEPALIVE with TCP_KEEPIDLE/KEEPINTVL/KEEPCNT
  --user-timeout MS           TCP_USER_TIMEOUT
  --rcvbuf BYTES              SO_RCVBUF (server: set before listen())
  --state DIR                 directory for the marker files of mark/wait
  --timeout SECONDS           limit for every blocking step (default 30)

Steps:
  send:N           write N bytes (sendall)
  recv:N           read exactly N bytes
  eof              read until the peer's FIN (any data is counted and dropped)
  sleep:SECONDS    do nothing
  mark:NAME        create STATE/NAME
  wait:NAME        wait until STATE/NAME exists
  shutdown         shutdown(SHUT_WR): send our FIN
  close            close() the socket
  abort            SO_LINGER {1, 0} then close(): the kernel sends an RST
  expect:ERRNO     block in recv() until the kernel reports the socket error
                   ERRNO (ETIMEDOUT, ECONNRESET, ...); anything else fails

Every step is logged on stdout with a timestamp. Any unexpected outcome
exits with status 1, so the calling script fails loudly.
"""
import argparse
import errno
import os
import socket
import struct
import sys
import time

T0 = time.monotonic()
ROLE = "endpoint"


def log(msg):
    print(f"[{ROLE:6} {time.monotonic() - T0:7.3f}] {msg}", flush=True)


def die(msg):
    log(f"FAILED: {msg}")
    sys.exit(1)


def touch(state, name):
    path = os.path.join(state, name)
    with open(path, "w"):
        pass
    log(f"mark {name}")


def wait_for(state, name, timeout, poll=None):
    """Wait for STATE/NAME; poll() is called in between (may be None)."""
    path = os.path.join(state, name)
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            die(f"timed out after {timeout}s waiting for marker {name}")
        if poll is not None:
            poll(0.02)
        else:
            time.sleep(0.02)
    log(f"got marker {name}")


def family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def set_options(sock, args):
    if args.keepalive:
        idle, intvl, cnt = (int(x) for x in args.keepalive.split(","))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, idle)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, intvl)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, cnt)
    if args.user_timeout is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, args.user_timeout)
    if args.rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, args.rcvbuf)


def describe(sock):
    opts = []
    if sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE):
        opts.append(
            "keepalive idle=%ds intvl=%ds cnt=%d"
            % (
                sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
                sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
                sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
            )
        )
    else:
        opts.append("keepalive off")
    ut = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT)
    if ut:
        opts.append(f"user_timeout={ut}ms")
    opts.append(f"rcvbuf={sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)}")
    return ", ".join(opts)


def run_steps(sock, steps, args):
    pattern = bytes(range(32, 127))
    for step in steps:
        name, _, arg = step.partition(":")
        log(f"step {step}")
        if name == "send":
            n = int(arg)
            data = (pattern * (n // len(pattern) + 1))[:n]
            sock.sendall(data)
        elif name == "recv":
            want, got = int(arg), 0
            while got < want:
                chunk = sock.recv(min(65536, want - got))
                if not chunk:
                    die(f"peer closed after {got} of {want} bytes")
                got += len(chunk)
        elif name == "eof":
            got = 0
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                got += len(chunk)
            log(f"peer's FIN seen ({got} bytes before it)")
        elif name == "sleep":
            time.sleep(float(arg))
        elif name == "mark":
            touch(args.state, arg)
        elif name == "wait":
            wait_for(args.state, arg, args.timeout)
        elif name == "shutdown":
            sock.shutdown(socket.SHUT_WR)
        elif name == "close":
            sock.close()
        elif name == "abort":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
        elif name == "expect":
            want = getattr(errno, arg)
            try:
                chunk = sock.recv(65536)
            except socket.timeout as e:
                if e.errno is None:  # our own --timeout, not the kernel's
                    die(f"no socket error within {args.timeout}s (wanted {arg})")
                if e.errno != want:
                    die(f"socket error {errno.errorcode.get(e.errno)} (wanted {arg})")
            except OSError as e:
                if e.errno != want:
                    die(f"socket error {errno.errorcode.get(e.errno)} (wanted {arg})")
            else:
                die(f"recv returned {len(chunk)} bytes (wanted socket error {arg})")
            log(f"socket error {arg}, as expected")
        else:
            die(f"unknown step {step!r}")
    log("all steps done")


def main():
    global ROLE
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("role", choices=["server", "client"])
    p.add_argument("addr")
    p.add_argument("port", type=int)
    p.add_argument("--keepalive")
    p.add_argument("--user-timeout", type=int)
    p.add_argument("--rcvbuf", type=int)
    p.add_argument("--state", default=".")
    p.add_argument("--timeout", type=float, default=30.0)
    p.add_argument("steps", nargs="*")
    args = p.parse_intermixed_args()
    ROLE = args.role

    if args.role == "server":
        lsock = socket.socket(family(args.addr), socket.SOCK_STREAM)
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        set_options(lsock, args)  # inherited by the accepted socket
        lsock.bind((args.addr, args.port))
        lsock.listen(1)
        lsock.settimeout(args.timeout)
        touch(args.state, "server-ready")
        log(f"listening on {args.addr} port {args.port}")
        try:
            sock, peer = lsock.accept()
        except socket.timeout:
            die(f"no connection within {args.timeout}s")
        lsock.close()
        set_options(sock, args)
        log(f"accepted {peer[0]} port {peer[1]}; {describe(sock)}")
    else:
        sock = socket.socket(family(args.addr), socket.SOCK_STREAM)
        set_options(sock, args)
        sock.settimeout(args.timeout)
        sock.connect((args.addr, args.port))
        local = sock.getsockname()
        log(f"connected from {local[0]} port {local[1]}; {describe(sock)}")
    sock.settimeout(args.timeout)
    run_steps(sock, args.steps, args)


if __name__ == "__main__":
    main()
