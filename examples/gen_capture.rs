//! Deterministic generator of large, realistic TCP captures for benchmarking
//! and sanity-checking `kaprobe analyze`.
//!
//! ```text
//! cargo run --release --example gen_capture -- --out FILE --packets N --concurrent C \
//!     [--connections TOTAL] [--seed S] [--snaplen N] [--profile mixed|short] [--truth FILE]
//! ```
//!
//! The output is a classic little-endian pcap (microsecond timestamps,
//! LINKTYPE_ETHERNET) holding many interleaved TCP connections between hosts in
//! the 198.18.0.0/15 benchmark range (and 2001:db8::/32 for ~10% of them), as
//! seen from a capture point on the client side: handshakes, requests and
//! responses with correct sequence/acknowledgement arithmetic, tail-loss
//! retransmissions, zero-window episodes with Linux-style zero-window probes
//! (0 bytes at snd_una-1, exponential backoff), keepalive probes (0 or 1 byte at
//! snd_nxt-1 after an idle period, normally answered by an ACK; some lost and
//! repeated; some never answered, ending in an RST from the prober), and FIN or
//! RST closes. Frames are cut at `--snaplen` (the IP/TCP length fields stay
//! correct; the payload is zero bytes, and TCP checksums are computed over it).
//!
//! Same arguments, same bytes: the only randomness is a seeded xorshift PRNG.
//!
//! A summary of what was generated (the ground truth) is printed to stderr;
//! `--truth FILE` also writes one tab-separated line per connection.

use etherparse::{
    EtherType, Ethernet2Header, IpNumber, Ipv4Header, Ipv6FlowLabel, Ipv6Header, TcpHeader,
};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::process::exit;
use std::time::Instant;

// ---------------------------------------------------------------- PRNG

/// xorshift64* seeded through splitmix64: tiny, fast, deterministic.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        Rng(if z == 0 { 0x2545_F491_4F6C_DD1D } else { z })
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn u32(&mut self) -> u32 {
        (self.next() >> 32) as u32
    }
    /// Uniform in [0, n).
    fn below(&mut self, n: u64) -> u64 {
        ((self.next() >> 32) * n) >> 32
    }
    /// Uniform in [lo, hi] (inclusive).
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    /// Uniform in [0, 1).
    fn f64(&mut self) -> f64 {
        (self.next() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
    fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }
    /// Exponentially distributed with the given mean.
    fn exp(&mut self, mean: f64) -> f64 {
        -(1.0 - self.f64()).ln() * mean
    }
    /// Log-uniform in [lo, hi].
    fn log_uniform(&mut self, lo: f64, hi: f64) -> f64 {
        (lo.ln() + self.f64() * (hi.ln() - lo.ln())).exp()
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }
}

// ---------------------------------------------------------------- packets

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;

/// What a packet means, for the ground-truth counters (counted when written).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Plain,
    /// A retransmitted segment (SYN or data).
    Retrans,
    /// A keepalive probe that gets an answer.
    KaProbe,
    /// A keepalive probe that gets no answer (lost, or the peer is gone).
    KaProbeLost,
    /// The ACK that answers a keepalive probe.
    KaAck,
    /// A zero-window probe (0 bytes at snd_una-1, peer window is 0).
    Zwp,
    /// The ACK that answers a zero-window probe (still window 0).
    ZwpAck,
    /// The ACK that first advertises window 0.
    ZeroWindow,
    /// The ACK that re-opens the window after a zero-window episode.
    WindowUpdate,
}

#[derive(Clone, Copy)]
struct Pkt {
    t: u64, // microseconds since the capture's epoch
    seq: u32,
    ack: u32,
    win: u16,
    len: u16,
    flags: u8,
    c2s: bool,
    kind: Kind,
}

// ---------------------------------------------------------------- connections

const EPOCH_S: u64 = 1_704_067_200; // 2024-01-01T00:00:00Z
const MS: u64 = 1_000;
const S: u64 = 1_000_000;

/// Raw (unscaled) windows after the handshake; both sides use window scale 7.
const CLIENT_WIN: u16 = 502; // 64256 bytes
const SERVER_WIN: u16 = 509; // 65152 bytes

const SERVER_PORTS: &[u16] = &[
    443, 443, 443, 80, 5432, 6379, 3306, 8443, 9092, 27017, 11211, 5672, 22, 8080,
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Profile {
    Mixed,
    Short,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Stage {
    Handshake,
    Exchange,
    Close,
    Done,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum End {
    Open,
    Fin,
    Rst,
    KeepaliveRst,
}

impl End {
    fn name(self) -> &'static str {
        match self {
            End::Open => "open",
            End::Fin => "fin",
            End::Rst => "rst",
            End::KeepaliveRst => "keepalive-rst",
        }
    }
}

#[derive(Clone, Copy)]
struct Keepalive {
    client_probes: bool,
    idle: u64,
    intvl: u64,
    probes: u32,
    one_byte: bool,
}

#[derive(Clone, Copy, Default)]
struct Counts {
    packets: u64,
    ka_probes: u64,
    ka_answered: u64,
    ka_unanswered: u64,
    ka_acks: u64,
    zwp: u64,
    zwp_acks: u64,
    zero_window: u64,
    window_updates: u64,
    retrans: u64,
}

impl Counts {
    fn add(&mut self, o: &Counts) {
        self.packets += o.packets;
        self.ka_probes += o.ka_probes;
        self.ka_answered += o.ka_answered;
        self.ka_unanswered += o.ka_unanswered;
        self.ka_acks += o.ka_acks;
        self.zwp += o.zwp;
        self.zwp_acks += o.zwp_acks;
        self.zero_window += o.zero_window;
        self.window_updates += o.window_updates;
        self.retrans += o.retrans;
    }
}

struct Conn {
    id: u64,
    v6: bool,
    client: u32, // client host index
    server: u32, // server host index
    cport: u16,
    sport: u16,
    flow_c: u32,
    flow_s: u32,
    ttl_s: u8,
    ipid_c: u16,
    ipid_s: u16,
    // sequence state: next sequence number each side will send
    c_nxt: u32,
    s_nxt: u32,
    mss: u16,
    rtt: u64,
    seg_gap_per_byte_x1000: u64,
    t: u64,        // time of the last generated packet
    last_c2s: u64, // time of the last packet from the client
    last_s2c: u64, // time of the last packet from the server
    stage: Stage,
    exchanges_left: u32,
    ka: Option<Keepalive>,
    end: End,
    counts: Counts,
    queue: VecDeque<Pkt>,
}

struct Params {
    profile: Profile,
}

impl Conn {
    fn blank() -> Conn {
        Conn {
            id: 0,
            v6: false,
            client: 0,
            server: 0,
            cport: 0,
            sport: 0,
            flow_c: 0,
            flow_s: 0,
            ttl_s: 0,
            ipid_c: 0,
            ipid_s: 0,
            c_nxt: 0,
            s_nxt: 0,
            mss: 1448,
            rtt: 0,
            seg_gap_per_byte_x1000: 0,
            t: 0,
            last_c2s: 0,
            last_s2c: 0,
            stage: Stage::Done,
            exchanges_left: 0,
            ka: None,
            end: End::Open,
            counts: Counts::default(),
            queue: VecDeque::new(),
        }
    }

    // -- packet helpers ------------------------------------------------------

    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        t: u64,
        c2s: bool,
        flags: u8,
        seq: u32,
        ack: u32,
        win: u16,
        len: u16,
        kind: Kind,
    ) {
        debug_assert!(t >= self.t);
        self.t = t;
        if c2s {
            self.last_c2s = t;
        } else {
            self.last_s2c = t;
        }
        self.queue.push_back(Pkt {
            t,
            seq,
            ack,
            win,
            len,
            flags,
            c2s,
            kind,
        });
    }

    /// New data (or SYN/FIN) from one side at time `t`; advances that side's snd_nxt.
    fn send(&mut self, t: u64, c2s: bool, flags: u8, len: u16, win: u16) {
        let (seq, ack) = if c2s {
            (self.c_nxt, self.s_nxt)
        } else {
            (self.s_nxt, self.c_nxt)
        };
        let ack = if flags & ACK != 0 { ack } else { 0 };
        let adv = len as u32 + (flags & (SYN | FIN) != 0) as u32;
        if c2s {
            self.c_nxt = self.c_nxt.wrapping_add(adv);
        } else {
            self.s_nxt = self.s_nxt.wrapping_add(adv);
        }
        self.push(t, c2s, flags, seq, ack, win, len, Kind::Plain);
    }

    fn pure_ack(&mut self, t: u64, c2s: bool, win: u16, kind: Kind) {
        let (seq, ack) = if c2s {
            (self.c_nxt, self.s_nxt)
        } else {
            (self.s_nxt, self.c_nxt)
        };
        self.push(t, c2s, ACK, seq, ack, win, 0, kind);
    }

    /// A probe at snd_nxt-1 (keepalive, or Linux zero-window probe where snd_una == snd_nxt).
    fn probe(&mut self, t: u64, c2s: bool, len: u16, win: u16, kind: Kind) {
        let (nxt, ack) = if c2s {
            (self.c_nxt, self.s_nxt)
        } else {
            (self.s_nxt, self.c_nxt)
        };
        self.push(t, c2s, ACK, nxt.wrapping_sub(1), ack, win, len, kind);
    }

    fn win(c2s: bool) -> u16 {
        if c2s {
            CLIENT_WIN
        } else {
            SERVER_WIN
        }
    }

    /// Delay before a reply from the given side is seen at the (client-side) capture point.
    fn reply_delay(&self, rng: &mut Rng, from_client: bool) -> u64 {
        if from_client {
            rng.range(15, 120)
        } else {
            self.rtt + rng.range(5, 60)
        }
    }

    fn seg_gap(&self, len: u16) -> u64 {
        1 + (len as u64 * self.seg_gap_per_byte_x1000) / 1000
    }

    // -- life cycle ----------------------------------------------------------

    fn start(
        &mut self,
        id: u64,
        t: u64,
        rng: &mut Rng,
        p: &Params,
        client_ports: &mut [Vec<u16>; 2],
    ) {
        self.id = id;
        self.v6 = rng.chance(0.10);
        self.client = rng.below(4096) as u32;
        self.server = rng.below(250) as u32;
        let fam = self.v6 as usize;
        let ctr = &mut client_ports[fam][self.client as usize];
        self.cport = *ctr;
        *ctr = if *ctr >= 60999 { 32768 } else { *ctr + 1 };
        self.sport = rng.pick(SERVER_PORTS);
        self.flow_c = rng.u32() & 0xFFFFF;
        self.flow_s = rng.u32() & 0xFFFFF;
        self.ttl_s = 64 - rng.range(3, 20) as u8;
        self.ipid_c = rng.u32() as u16;
        self.ipid_s = rng.u32() as u16;
        self.c_nxt = rng.u32();
        self.s_nxt = rng.u32();
        self.mss = if self.v6 { 1428 } else { 1448 };
        self.rtt = rng.log_uniform(200.0, 250_000.0) as u64;
        // 10 Mbit/s .. 1 Gbit/s: microseconds per byte * 1000
        self.seg_gap_per_byte_x1000 = rng.pick(&[8u64, 80, 80, 800]);
        self.t = t;
        self.last_c2s = t;
        self.last_s2c = t;
        self.stage = Stage::Handshake;
        self.exchanges_left = match p.profile {
            Profile::Mixed => 1 + (rng.exp(8.0) as u32).min(300),
            Profile::Short => 1 + (rng.exp(0.7) as u32).min(20),
        };
        let ka_share = if p.profile == Profile::Mixed {
            0.40
        } else {
            0.15
        };
        self.ka = if rng.chance(ka_share) {
            Some(Keepalive {
                client_probes: rng.chance(0.7),
                idle: rng.pick(&[15u64, 30, 45, 60, 75, 120]) * S,
                intvl: rng.pick(&[5u64, 10, 15, 30, 75]) * S,
                probes: rng.pick(&[3u32, 5, 6, 9]),
                one_byte: rng.chance(0.1),
            })
        } else {
            None
        };
        self.end = End::Open;
        self.counts = Counts::default();
        self.queue.clear();
    }

    /// Generate the next step of the connection into `queue`. Returns false when it is over.
    fn advance(&mut self, rng: &mut Rng, p: &Params) -> bool {
        match self.stage {
            Stage::Handshake => {
                self.handshake(rng);
                self.stage = Stage::Exchange;
            }
            Stage::Exchange => {
                self.exchange(rng, p);
                self.exchanges_left -= 1;
                if self.exchanges_left == 0 {
                    self.stage = Stage::Close;
                } else {
                    self.idle(rng, p, false);
                }
            }
            Stage::Close => {
                self.close(rng, p);
                self.stage = Stage::Done;
            }
            Stage::Done => return false,
        }
        true
    }

    fn handshake(&mut self, rng: &mut Rng) {
        let t0 = self.t;
        self.send(t0, true, SYN, 0, 64240);
        let mut t = t0;
        if rng.chance(0.01) {
            // SYN lost: retransmitted after the 1 s initial RTO
            t += S;
            let isn = self.c_nxt.wrapping_sub(1);
            self.push(t, true, SYN, isn, 0, 64240, 0, Kind::Retrans);
        }
        t += self.reply_delay(rng, false);
        self.send(t, false, SYN | ACK, 0, 65160);
        t += self.reply_delay(rng, true);
        self.send(t, true, ACK, 0, CLIENT_WIN);
    }

    fn exchange(&mut self, rng: &mut Rng, p: &Params) {
        let mss = self.mss;
        // --- request, client -> server
        let nreq = if rng.chance(0.9) {
            1
        } else {
            rng.range(2, 4) as u16
        };
        let mut t = self.t + rng.range(20, 900);
        let mut last_len = 0;
        for i in 0..nreq {
            let len = if i + 1 < nreq {
                mss
            } else {
                rng.range(30, mss as u64) as u16
            };
            let flags = if i + 1 == nreq { ACK | PSH } else { ACK };
            self.send(t, true, flags, len, CLIENT_WIN);
            last_len = len;
            t += self.seg_gap(len);
        }
        if rng.chance(0.015) {
            // tail loss: the last request segment is retransmitted on RTO (with backoff)
            let seq = self.c_nxt.wrapping_sub(last_len as u32);
            let rto = (200 * MS).max(self.rtt + 200 * MS);
            let n = if rng.chance(0.8) { 1 } else { 2 };
            let mut tr = self.t;
            for k in 0..n {
                tr += rto << k;
                self.push(
                    tr,
                    true,
                    ACK | PSH,
                    seq,
                    self.s_nxt,
                    CLIENT_WIN,
                    last_len,
                    Kind::Retrans,
                );
            }
            t = tr;
        }
        // --- server reply (seen at the client side one RTT later)
        let think = if rng.chance(0.1) {
            rng.exp(150_000.0)
        } else {
            rng.exp(5_000.0)
        } as u64;
        let arrive = t + self.rtt;
        if think > 40 * MS {
            self.pure_ack(arrive + 40 * MS, false, SERVER_WIN, Kind::Plain);
        }
        let mut t = arrive + think;
        let nresp: u32 = match p.profile {
            Profile::Mixed => {
                let r = rng.f64();
                if r < 0.5 {
                    1
                } else if r < 0.8 {
                    rng.range(2, 10) as u32
                } else if r < 0.95 {
                    rng.range(11, 100) as u32
                } else {
                    rng.range(101, 1000) as u32
                }
            }
            Profile::Short => {
                if rng.chance(0.7) {
                    1
                } else {
                    rng.range(2, 4) as u32
                }
            }
        };
        let resp_last = rng.range(1, mss as u64) as u16;
        // a zero-window episode: the client stops reading somewhere in a long response
        let mut zw_at = if nresp >= 8 && rng.chance(0.04) {
            Some(rng.range(3, nresp as u64 - 3) as u32)
        } else {
            None
        };
        for i in 0..nresp {
            let last = i + 1 == nresp;
            let len = if last { resp_last } else { mss };
            let flags = if last { ACK | PSH } else { ACK };
            self.send(t, false, flags, len, SERVER_WIN);
            if (i + 1) % 2 == 0 || last {
                // client ACKs every second segment; a lone final segment waits for the delayed ACK
                let delay = if (i + 1) % 2 == 1 {
                    40 * MS
                } else {
                    rng.range(10, 80)
                };
                t += delay;
                if zw_at.is_some_and(|z| i >= z) && !last {
                    zw_at = None;
                    t = self.zero_window(t, rng);
                } else {
                    self.pure_ack(t, true, CLIENT_WIN, Kind::Plain);
                }
            }
            t = t.max(self.t) + self.seg_gap(len);
        }
    }

    /// Zero-window episode starting at time t with the client's ACK advertising window 0.
    /// Returns the time from which the server may send again.
    fn zero_window(&mut self, t: u64, rng: &mut Rng) -> u64 {
        self.pure_ack(t, true, 0, Kind::ZeroWindow);
        let nprobes = rng.pick(&[0u32, 1, 1, 2, 2, 3, 3, 4, 5, 6]);
        let rto = (200 * MS).max(self.rtt + 200 * MS);
        let mut tp = t;
        for k in 0..nprobes {
            tp += (rto << k).min(120 * S);
            self.probe(tp, false, 0, SERVER_WIN, Kind::Zwp);
            tp += rng.range(10, 80);
            self.pure_ack(tp, true, 0, Kind::ZwpAck);
        }
        // the application reads: window update, before the next probe would go out
        let next_probe = (rto << nprobes).min(120 * S);
        let topen = tp + rng.range(MS, next_probe - MS);
        self.pure_ack(topen, true, CLIENT_WIN, Kind::WindowUpdate);
        topen + self.rtt
    }

    /// An idle period after an exchange. With keepalive enabled and a long
    /// enough gap, the prober sends probes every `idle` (each answered; an
    /// occasional lost one is repeated after `intvl`). With `dead_peer`, the
    /// peer vanishes: the probes go unanswered and the prober resets the
    /// connection (returns true in that case).
    fn idle(&mut self, rng: &mut Rng, p: &Params, dead_peer: bool) -> bool {
        let long = if p.profile == Profile::Mixed {
            0.3
        } else {
            0.15
        };
        let gap = match (self.ka, rng.chance(long)) {
            (Some(ka), true) => (ka.idle as f64 * (0.2 + rng.f64() * 3.3)) as u64,
            (None, true) => rng.range(S, 180 * S),
            (_, false) => MS + rng.exp(300_000.0) as u64,
        };
        let Some(ka) = self.ka else {
            self.t += gap;
            return false;
        };
        let c2s = ka.client_probes;
        let plen = ka.one_byte as u16;
        let end = self.t + gap;
        // keepalive idle counts from the last segment the prober received
        let mut mark = if c2s { self.last_s2c } else { self.last_c2s };
        let mut t = self.t;
        while mark + ka.idle < end {
            t = (mark + ka.idle).max(self.t);
            let mut lost = 0;
            while rng.chance(0.05) && lost < 2 {
                self.probe(t, c2s, plen, Self::win(c2s), Kind::KaProbeLost);
                t += ka.intvl;
                lost += 1;
            }
            self.probe(t, c2s, plen, Self::win(c2s), Kind::KaProbe);
            t += self.reply_delay(rng, !c2s);
            self.pure_ack(t, !c2s, Self::win(!c2s), Kind::KaAck);
            mark = t;
        }
        if dead_peer {
            t = (mark + ka.idle).max(self.t);
            for k in 0..ka.probes {
                if k > 0 {
                    t += ka.intvl;
                }
                self.probe(t, c2s, plen, Self::win(c2s), Kind::KaProbeLost);
            }
            t += ka.intvl;
            let (seq, ack) = if c2s {
                (self.c_nxt, self.s_nxt)
            } else {
                (self.s_nxt, self.c_nxt)
            };
            self.push(t, c2s, RST | ACK, seq, ack, 0, 0, Kind::Plain);
            return true;
        }
        self.t = end.max(t);
        false
    }

    fn close(&mut self, rng: &mut Rng, p: &Params) {
        if self.ka.is_some() && rng.chance(0.3) {
            // the peer dies (or a middlebox forgets the flow) while the connection idles
            self.idle(rng, p, true);
            self.end = End::KeepaliveRst;
            return;
        }
        let mut t = self.t + rng.range(50, 5 * MS);
        let from_client = rng.chance(0.6);
        if rng.chance(0.88) {
            let a = from_client;
            self.send(t, a, FIN | ACK, 0, Self::win(a));
            t += self.reply_delay(rng, !a);
            if rng.chance(0.5) {
                self.send(t, !a, FIN | ACK, 0, Self::win(!a));
            } else {
                self.pure_ack(t, !a, Self::win(!a), Kind::Plain);
                t += rng.range(100, 20 * MS);
                self.send(t, !a, FIN | ACK, 0, Self::win(!a));
            }
            t += self.reply_delay(rng, a);
            self.pure_ack(t, a, Self::win(a), Kind::Plain);
            self.end = End::Fin;
        } else {
            let (seq, ack) = if from_client {
                (self.c_nxt, self.s_nxt)
            } else {
                (self.s_nxt, self.c_nxt)
            };
            self.push(t, from_client, RST | ACK, seq, ack, 0, 0, Kind::Plain);
            self.end = End::Rst;
        }
    }

    fn count(&mut self, kind: Kind) {
        let c = &mut self.counts;
        c.packets += 1;
        match kind {
            Kind::Plain => {}
            Kind::Retrans => c.retrans += 1,
            Kind::KaProbe => {
                c.ka_probes += 1;
                c.ka_answered += 1;
            }
            Kind::KaProbeLost => {
                c.ka_probes += 1;
                c.ka_unanswered += 1;
            }
            Kind::KaAck => c.ka_acks += 1,
            Kind::Zwp => c.zwp += 1,
            Kind::ZwpAck => c.zwp_acks += 1,
            Kind::ZeroWindow => c.zero_window += 1,
            Kind::WindowUpdate => c.window_updates += 1,
        }
    }

    fn client_ip4(&self) -> [u8; 4] {
        [
            198,
            18,
            (self.client / 250) as u8,
            (self.client % 250) as u8 + 1,
        ]
    }
    fn server_ip4(&self) -> [u8; 4] {
        [198, 19, 0, self.server as u8 + 1]
    }
    fn client_ip6(&self) -> [u8; 16] {
        let mut a = [0u8; 16];
        a[..6].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0x0c, 0x11]);
        a[14] = (self.client / 250) as u8;
        a[15] = (self.client % 250) as u8 + 1;
        a
    }
    fn server_ip6(&self) -> [u8; 16] {
        let mut a = [0u8; 16];
        a[..6].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0x05, 0xe7]);
        a[15] = self.server as u8 + 1;
        a
    }
    fn client_mac(&self) -> [u8; 6] {
        [
            0x02,
            0x00,
            0xc0,
            0,
            (self.client >> 8) as u8,
            self.client as u8,
        ]
    }

    fn truth_line(&self) -> String {
        let (c, s) = if self.v6 {
            (
                format!("[{}]", std::net::Ipv6Addr::from(self.client_ip6())),
                format!("[{}]", std::net::Ipv6Addr::from(self.server_ip6())),
            )
        } else {
            (
                std::net::Ipv4Addr::from(self.client_ip4()).to_string(),
                std::net::Ipv4Addr::from(self.server_ip4()).to_string(),
            )
        };
        let prober = match self.ka {
            Some(k) if k.client_probes => "client",
            Some(_) => "server",
            None => "-",
        };
        let k = &self.counts;
        format!(
            "{}\t{}:{}\t{}:{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
            self.id,
            c,
            self.cport,
            s,
            self.sport,
            prober,
            k.ka_probes,
            k.ka_answered,
            k.ka_unanswered,
            k.zero_window,
            k.zwp,
            k.retrans,
            k.packets,
            self.end.name()
        )
    }
}

// ---------------------------------------------------------------- pcap writer

const GATEWAY_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];
static ZEROS: [u8; 1500] = [0u8; 1500];

struct PcapOut {
    w: BufWriter<File>,
    snaplen: usize,
    frame: Vec<u8>,
    bytes_on_wire: u64,
}

impl PcapOut {
    fn create(path: &str, snaplen: u32) -> std::io::Result<PcapOut> {
        let mut w = BufWriter::with_capacity(1 << 20, File::create(path)?);
        // classic pcap global header, little-endian, microsecond resolution
        w.write_all(&0xa1b2_c3d4u32.to_le_bytes())?;
        w.write_all(&2u16.to_le_bytes())?;
        w.write_all(&4u16.to_le_bytes())?;
        w.write_all(&0i32.to_le_bytes())?; // thiszone
        w.write_all(&0u32.to_le_bytes())?; // sigfigs
        w.write_all(&snaplen.to_le_bytes())?;
        w.write_all(&1u32.to_le_bytes())?; // LINKTYPE_ETHERNET
        Ok(PcapOut {
            w,
            snaplen: snaplen as usize,
            frame: Vec::with_capacity(2048),
            bytes_on_wire: 0,
        })
    }

    fn write(&mut self, c: &mut Conn, p: &Pkt) -> std::io::Result<()> {
        let f = &mut self.frame;
        f.clear();
        let (smac, dmac) = if p.c2s {
            (c.client_mac(), GATEWAY_MAC)
        } else {
            (GATEWAY_MAC, c.client_mac())
        };
        let eth = Ethernet2Header {
            source: smac,
            destination: dmac,
            ether_type: if c.v6 {
                EtherType::IPV6
            } else {
                EtherType::IPV4
            },
        };
        f.extend_from_slice(&eth.to_bytes());

        let (sport, dport) = if p.c2s {
            (c.cport, c.sport)
        } else {
            (c.sport, c.cport)
        };
        let mut tcp = TcpHeader::new(sport, dport, p.seq, p.win);
        tcp.acknowledgment_number = p.ack;
        tcp.fin = p.flags & FIN != 0;
        tcp.syn = p.flags & SYN != 0;
        tcp.rst = p.flags & RST != 0;
        tcp.psh = p.flags & PSH != 0;
        tcp.ack = p.flags & ACK != 0;
        if tcp.syn {
            // Linux without timestamps: MSS, NOP, NOP, SACK_PERM, NOP, WS=7
            let mss = if c.v6 { 1440u16 } else { 1460 }.to_be_bytes();
            tcp.set_options_raw(&[2, 4, mss[0], mss[1], 1, 1, 4, 2, 1, 3, 3, 7])
                .unwrap();
        }
        let payload = &ZEROS[..p.len as usize];
        let tcp_len = tcp.header_len() + payload.len();
        let pseudo: u64;
        if c.v6 {
            let (src, dst) = if p.c2s {
                (c.client_ip6(), c.server_ip6())
            } else {
                (c.server_ip6(), c.client_ip6())
            };
            let flow = if p.c2s { c.flow_c } else { c.flow_s };
            let ip = Ipv6Header {
                traffic_class: 0,
                flow_label: Ipv6FlowLabel::try_new(flow).unwrap(),
                payload_length: tcp_len as u16,
                next_header: IpNumber::TCP,
                hop_limit: if p.c2s { 64 } else { c.ttl_s },
                source: src,
                destination: dst,
            };
            f.extend_from_slice(&ip.to_bytes());
            pseudo = sum16(&src) + sum16(&dst) + tcp_len as u64 + 6;
        } else {
            let (src, dst) = if p.c2s {
                (c.client_ip4(), c.server_ip4())
            } else {
                (c.server_ip4(), c.client_ip4())
            };
            let mut ip = Ipv4Header::new(
                tcp_len as u16,
                if p.c2s { 64 } else { c.ttl_s },
                IpNumber::TCP,
                src,
                dst,
            )
            .unwrap();
            let id = if p.c2s { &mut c.ipid_c } else { &mut c.ipid_s };
            ip.identification = *id;
            *id = id.wrapping_add(1);
            ip.header_checksum = ip.calc_header_checksum();
            f.extend_from_slice(&ip.to_bytes());
            pseudo = sum16(&src) + sum16(&dst) + tcp_len as u64 + 6;
        }
        // The payload is all zero bytes, so it adds nothing to the one's complement sum:
        // the TCP checksum covers the pseudo-header and the TCP header only.
        let th = f.len();
        f.extend_from_slice(&tcp.to_bytes());
        let ck = fold(pseudo + sum16(&f[th..]));
        f[th + 16..th + 18].copy_from_slice(&ck.to_be_bytes());
        let wire_len = f.len() + payload.len();
        let cap_len = wire_len.min(self.snaplen);
        if cap_len > f.len() {
            f.extend_from_slice(&payload[..cap_len - f.len()]);
        } else {
            f.truncate(cap_len);
        }
        self.bytes_on_wire += wire_len as u64;

        let ts = p.t + EPOCH_S * S;
        let mut rec = [0u8; 16];
        rec[0..4].copy_from_slice(&((ts / S) as u32).to_le_bytes());
        rec[4..8].copy_from_slice(&((ts % S) as u32).to_le_bytes());
        rec[8..12].copy_from_slice(&(cap_len as u32).to_le_bytes());
        rec[12..16].copy_from_slice(&(wire_len as u32).to_le_bytes());
        self.w.write_all(&rec)?;
        self.w.write_all(f)
    }
}

/// Sum of big-endian 16-bit words (even length).
fn sum16(b: &[u8]) -> u64 {
    b.chunks_exact(2)
        .map(|w| u16::from_be_bytes([w[0], w[1]]) as u64)
        .sum()
}

/// Fold a one's complement sum and complement it (RFC 1071).
fn fold(mut s: u64) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

// ---------------------------------------------------------------- main

fn usage() -> ! {
    eprintln!(
        "usage: gen_capture --out FILE [--packets N] [--concurrent C] [--connections TOTAL]\n\
         \x20                  [--seed S] [--snaplen N] [--profile mixed|short] [--truth FILE]\n\
         \n\
         --packets N          stop after N packets (default 1000000, or unlimited with --connections)\n\
         --concurrent C       at most C connections live at once (default 1000)\n\
         --connections TOTAL  open at most TOTAL connections, stop when all have finished\n\
         --seed S             PRNG seed (default 1)\n\
         --snaplen N          bytes captured per frame, >= 86 (default 128)\n\
         --profile P          mixed (default): long-lived connections, large responses;\n\
         \x20                    short: ~1-2 small exchanges per connection (for many connections)\n\
         --truth FILE         write one tab-separated ground-truth line per connection"
    );
    exit(2)
}

fn parse<T: std::str::FromStr>(flag: &str, v: Option<String>) -> T {
    let Some(v) = v else {
        eprintln!("gen_capture: {flag} needs a value");
        usage()
    };
    let digits: String = v.chars().filter(|c| *c != '_').collect();
    digits.parse().unwrap_or_else(|_| {
        eprintln!("gen_capture: bad value for {flag}: {v}");
        usage()
    })
}

fn main() {
    let mut out: Option<String> = None;
    let mut packets: Option<u64> = None;
    let mut concurrent: u64 = 1000;
    let mut connections: Option<u64> = None;
    let mut seed: u64 = 1;
    let mut snaplen: u32 = 128;
    let mut profile = Profile::Mixed;
    let mut truth: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--out" | "-o" => out = Some(parse(&a, args.next())),
            "--packets" => packets = Some(parse(&a, args.next())),
            "--concurrent" => concurrent = parse(&a, args.next()),
            "--connections" => connections = Some(parse(&a, args.next())),
            "--seed" => seed = parse(&a, args.next()),
            "--snaplen" => snaplen = parse(&a, args.next()),
            "--truth" => truth = Some(parse(&a, args.next())),
            "--profile" => {
                profile = match parse::<String>(&a, args.next()).as_str() {
                    "mixed" => Profile::Mixed,
                    "short" => Profile::Short,
                    other => {
                        eprintln!("gen_capture: unknown profile {other}");
                        usage()
                    }
                }
            }
            "-h" | "--help" => usage(),
            other => {
                eprintln!("gen_capture: unknown argument {other}");
                usage()
            }
        }
    }
    let Some(out) = out else { usage() };
    if !(86..=65535).contains(&snaplen) {
        eprintln!(
            "gen_capture: --snaplen must be in 86..=65535 (86 keeps every IPv6 SYN header whole)"
        );
        exit(2);
    }
    if concurrent == 0 {
        eprintln!("gen_capture: --concurrent must be > 0");
        exit(2);
    }
    let max_packets = packets.unwrap_or(if connections.is_some() {
        u64::MAX
    } else {
        1_000_000
    });
    let max_conns = connections.unwrap_or(u64::MAX);

    let started = Instant::now();
    let params = Params { profile };
    let mut rng = Rng::new(seed);
    let mut pcap = PcapOut::create(&out, snaplen).unwrap_or_else(|e| {
        eprintln!("gen_capture: {out}: {e}");
        exit(1)
    });
    let mut truth_w = truth.as_ref().map(|path| {
        let mut w = BufWriter::with_capacity(1 << 20, File::create(path).unwrap_or_else(|e| {
            eprintln!("gen_capture: {path}: {e}");
            exit(1)
        }));
        w.write_all(b"#id\tclient\tserver\tka_prober\tka_probes\tka_answered\tka_unanswered\tzero_window\tzw_probes\tretrans\tpackets\tend\n")
            .unwrap();
        w
    });

    let mut client_ports: [Vec<u16>; 2] = [vec![32768; 4096], vec![32768; 4096]];
    let mut conns: Vec<Conn> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut heap: BinaryHeap<Reverse<(u64, u32)>> = BinaryHeap::new();
    let mut next_id: u64 = 0;
    let mut totals = Counts::default();
    let mut ends = [0u64; 4];
    let mut peak_live = 0usize;
    let mut live = 0usize;
    let mut last_t = 0u64;

    let mut spawn = |t: u64,
                     rng: &mut Rng,
                     conns: &mut Vec<Conn>,
                     free: &mut Vec<usize>,
                     heap: &mut BinaryHeap<Reverse<(u64, u32)>>,
                     next_id: &mut u64| {
        let slot = free.pop().unwrap_or_else(|| {
            conns.push(Conn::blank());
            conns.len() - 1
        });
        let c = &mut conns[slot];
        c.start(*next_id, t, rng, &params, &mut client_ports);
        *next_id += 1;
        c.advance(rng, &params);
        heap.push(Reverse((c.queue.front().unwrap().t, slot as u32)));
    };

    // ramp up: the first connections open over the first two seconds
    for _ in 0..concurrent.min(max_conns) {
        let t = rng.below(2 * S);
        spawn(t, &mut rng, &mut conns, &mut free, &mut heap, &mut next_id);
        live += 1;
    }
    peak_live = peak_live.max(live);

    let mut written: u64 = 0;
    while written < max_packets {
        let Some(Reverse((t, slot))) = heap.pop() else {
            break;
        };
        let slot = slot as usize;
        let c = &mut conns[slot];
        let p = c.queue.pop_front().unwrap();
        debug_assert!(p.t >= last_t && p.t == t);
        last_t = p.t;
        c.count(p.kind);
        if let Err(e) = pcap.write(c, &p) {
            eprintln!("gen_capture: {out}: {e}");
            exit(1);
        }
        written += 1;
        if c.queue.is_empty() {
            c.advance(&mut rng, &params);
        }
        if let Some(front) = c.queue.front() {
            heap.push(Reverse((front.t, slot as u32)));
        } else {
            // finished: account, recycle the slot, open a replacement
            totals.add(&c.counts);
            ends[c.end as usize] += 1;
            if let Some(w) = truth_w.as_mut() {
                w.write_all(c.truth_line().as_bytes()).unwrap();
            }
            free.push(slot);
            live -= 1;
            if next_id < max_conns {
                let t0 = p.t + 1 + rng.exp(2_000.0) as u64;
                spawn(t0, &mut rng, &mut conns, &mut free, &mut heap, &mut next_id);
                live += 1;
                peak_live = peak_live.max(live);
            }
        }
    }
    // connections still open when the capture stops
    for Reverse((_, slot)) in heap.into_vec() {
        let c = &mut conns[slot as usize];
        c.end = End::Open; // its planned close was not written
        totals.add(&c.counts);
        if c.counts.packets > 0 {
            ends[End::Open as usize] += 1;
            if let Some(w) = truth_w.as_mut() {
                w.write_all(c.truth_line().as_bytes()).unwrap();
            }
        }
    }
    pcap.w.flush().unwrap();
    if let Some(mut w) = truth_w {
        w.flush().unwrap();
    }
    let opened = next_id;
    let dur = last_t as f64 / S as f64;
    let el = started.elapsed().as_secs_f64();
    let t = &totals;
    eprintln!("gen_capture: wrote {out}");
    eprintln!("  packets              {}", written);
    eprintln!(
        "  connections          {} opened, {} finished, peak live {}",
        opened,
        ends[End::Fin as usize] + ends[End::Rst as usize] + ends[End::KeepaliveRst as usize],
        peak_live
    );
    eprintln!(
        "  ends                 fin {}  rst {}  keepalive-rst {}  open-at-end {}",
        ends[End::Fin as usize],
        ends[End::Rst as usize],
        ends[End::KeepaliveRst as usize],
        ends[End::Open as usize]
    );
    eprintln!("  capture span         {:.1} s", dur);
    eprintln!("  bytes on wire        {}", pcap.bytes_on_wire);
    eprintln!(
        "  keepalive probes     {} (answered {}, unanswered {}), keepalive ACKs {}",
        t.ka_probes, t.ka_answered, t.ka_unanswered, t.ka_acks
    );
    eprintln!(
        "  zero-window          episodes {}, probes {} (ACKed {}), window updates {}",
        t.zero_window, t.zwp, t.zwp_acks, t.window_updates
    );
    eprintln!("  retransmissions      {}", t.retrans);
    eprintln!(
        "  tshark keep_alive    {} expected (keepalive probes + zero-window probes: tshark calls both keep-alive)",
        t.ka_probes + t.zwp
    );
    eprintln!(
        "  generated in         {:.2} s ({:.1} M packets/s)",
        el,
        written as f64 / el / 1e6
    );
}
