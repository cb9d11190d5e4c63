#!/usr/bin/env python3
"""Send Windows-style 1-byte TCP keepalive probes on a real Linux connection.

Linux never sends 1-byte keepalive probes (its probes carry no data), but
Windows does: one byte of value 0x00 at sequence number snd_nxt - 1, which the
peer has already received, so a live peer answers with a duplicate ACK (with
a D-SACK block when SACK is in use). To have such probes in a capture with a
real receiver, this program runs in the client's network namespace beside a
real Linux client socket, watches that connection on an AF_PACKET socket to
learn its sequence numbers, and sends the crafted probes through an
IPPROTO_RAW socket. The server that answers them is a real Linux kernel.

  win_probe.py --iface IF --src IP --dst IP --dport PORT --state DIR STEP...

Only IPv4 without TCP options: start the client with TCP timestamps off
(sysctl net.ipv4.tcp_timestamps=0 in its namespace), as a Windows host has
them by default, so that a probe needs no options at all.

Steps:
  wait:NAME        wait for STATE/NAME, watching the connection meanwhile
  mark:NAME        create STATE/NAME
  sleep:SECONDS    wait, watching the connection meanwhile
  probe:N          send N probes, one per --interval seconds (default 1)

The source port is learned from the client's SYN (or any segment from --src
to --dst:--dport), so this program must be started before the client
connects. It refuses to probe unless it has seen the connection established
and the server's data acknowledged (probing an unknown connection would be a
guess).
"""
import argparse
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import endpoint  # noqa: E402  (log, touch, wait_for)

ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
M32 = 0xFFFFFFFF


def after(a, b):
    """a is after b in sequence space (RFC 1982 style)."""
    return a != b and ((a - b) & M32) < 0x80000000


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


class Watcher:
    """Tracks one IPv4 TCP connection from the frames seen on an interface."""

    def __init__(self, iface, src, dst, dport):
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.sock.bind((iface, 0))
        self.sock.setblocking(False)
        self.src = socket.inet_aton(src)
        self.dst = socket.inet_aton(dst)
        self.dport = dport
        self.sport = None
        self.snd_nxt = None  # client's next sequence number
        self.rcv_nxt = None  # server's next sequence number (what the client acks)
        self.client_ack = None
        self.window = None  # the client's last advertised window (raw field)
        self.established = False

    def pump(self, timeout=0.0):
        deadline = time.monotonic() + timeout
        while True:
            try:
                frame = self.sock.recv(65535)
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    return
                time.sleep(0.005)
                continue
            self.frame(frame)

    def frame(self, frame):
        if len(frame) < 14 + 20 + 20 or struct.unpack("!H", frame[12:14])[0] != ETH_P_IP:
            return
        ip = frame[14:]
        ihl = (ip[0] & 0x0F) * 4
        if ip[0] >> 4 != 4 or ip[9] != socket.IPPROTO_TCP:
            return
        total = struct.unpack("!H", ip[2:4])[0]
        tcp = ip[ihl:total]
        sport, dport, seq, ack, off, flags, win = struct.unpack("!HHIIBBH", tcp[:16])
        plen = len(tcp) - (off >> 4) * 4
        syn, fin = flags & 0x02, flags & 0x01
        end = (seq + plen + (1 if syn else 0) + (1 if fin else 0)) & M32
        s, d = ip[12:16], ip[16:20]
        if s == self.src and d == self.dst and dport == self.dport:
            if self.sport is None:
                self.sport = sport
                endpoint.log(f"watching client port {sport}")
            if sport != self.sport:
                return
            if self.snd_nxt is None or after(end, self.snd_nxt):
                self.snd_nxt = end
            if flags & 0x10:
                self.client_ack = ack
                self.window = win
                if self.rcv_nxt is not None and not syn:
                    self.established = True
        elif s == self.dst and d == self.src and sport == self.dport and dport == self.sport:
            if self.rcv_nxt is None or after(end, self.rcv_nxt):
                self.rcv_nxt = end


def send_probe(raw, w, ip_id):
    payload = b"\x00"
    seq = (w.snd_nxt - 1) & M32
    tcp = struct.pack("!HHIIBBHHH", w.sport, w.dport, seq, w.rcv_nxt, 5 << 4, 0x10, w.window, 0, 0)
    pseudo = w.src + w.dst + struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(tcp) + len(payload))
    csum = checksum(pseudo + tcp + payload)
    tcp = tcp[:16] + struct.pack("!H", csum) + tcp[18:]
    total = 20 + len(tcp) + len(payload)
    iph = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, ip_id, 0x4000, 64, socket.IPPROTO_TCP, 0, w.src, w.dst)
    iph = iph[:10] + struct.pack("!H", checksum(iph)) + iph[12:]
    raw.sendto(iph + tcp + payload, (socket.inet_ntoa(w.dst), 0))
    endpoint.log(f"sent 1-byte probe seq={seq} ack={w.rcv_nxt} win={w.window}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--iface", required=True)
    p.add_argument("--src", required=True)
    p.add_argument("--dst", required=True)
    p.add_argument("--dport", type=int, required=True)
    p.add_argument("--state", required=True)
    p.add_argument("--interval", type=float, default=1.0)
    p.add_argument("--timeout", type=float, default=30.0)
    p.add_argument("steps", nargs="*")
    args = p.parse_intermixed_args()
    endpoint.ROLE = "winprb"

    w = Watcher(args.iface, args.src, args.dst, args.dport)
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    endpoint.touch(args.state, "winprobe-ready")
    ip_id = 0x5000
    for step in args.steps:
        name, _, arg = step.partition(":")
        endpoint.log(f"step {step}")
        if name == "wait":
            endpoint.wait_for(args.state, arg, args.timeout, poll=w.pump)
        elif name == "mark":
            endpoint.touch(args.state, arg)
        elif name == "sleep":
            w.pump(float(arg))
        elif name == "probe":
            for i in range(int(arg)):
                w.pump(0)
                if not w.established or w.client_ack != w.rcv_nxt:
                    endpoint.die(
                        f"connection state not known or not idle (established={w.established},"
                        f" client ack={w.client_ack}, server next={w.rcv_nxt})"
                    )
                send_probe(raw, w, ip_id)
                ip_id += 1
                w.pump(args.interval)
        else:
            endpoint.die(f"unknown step {step!r}")
    endpoint.log("all steps done")


if __name__ == "__main__":
    main()
