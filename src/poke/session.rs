//! One poke of one connection, as a state machine: learn the numbers, send a
//! probe, await the answer, and decide. Pure: it is fed segments, ICMP errors
//! and the time, and answers with segments to send; `poke::run` does the I/O.
//!
//! How the numbers are learned. No kernel interface tells a socket's
//! sequence numbers, so poke asks the kernel itself: it sends our own kernel
//! a 0-byte ACK that claims to come from the peer, at a random sequence
//! number. Such a segment is almost surely outside the receive window, and
//! RFC 9293 3.10.7.4 (Linux: `tcp_validate_incoming` -> `tcp_send_dupack`)
//! answers it with an ACK to the peer that carries SND.NXT, RCV.NXT, the
//! window and the current timestamps: exactly the numbers a keepalive needs.
//! That answer goes to the peer as an ordinary duplicate ACK, so the peer's
//! out-of-window budget (`tcp_invalid_ratelimit`, one answer per 500 ms) is
//! left for the probe. A spoof that lands inside the window by chance is a
//! pure ACK with a random acknowledgment number, which the kernel drops; the
//! second try then goes half the sequence space away, outside any window.
//!
//! When our kernel answers neither try (a firewall here that drops
//! out-of-window segments, as `ct state invalid drop` on input does), poke
//! asks the peer instead: a 0-byte ACK of ours at a random sequence number,
//! again twice half the sequence space apart. The peer answers it with an
//! ACK, as out-of-window (this does spend its 500 ms budget), or with an RST
//! if it lost the connection. Either answer decides; silence does not, since
//! a peer may also drop segments it cannot verify: that is "cannot tell".
//!
//! The probe (RFC 1122 4.2.3.6) is the kernel's own keepalive: SEG.SEQ =
//! SND.NXT - 1, SEG.ACK = RCV.NXT, our kernel's window field, and its latest
//! TSval with the peer's latest TSval as TSecr (a TSval below what the peer
//! last saw is dropped by PAWS, RFC 7323 5.3). The numbers are learned again
//! right before every probe, so they are never stale.

use std::time::{Duration, Instant};

use super::craft::{SegmentSpec, Timestamps};
use super::reply::{IcmpError, TcpReply};
use crate::flow::Micros;
use crate::wire::{flags, Endpoint};

/// How long our own kernel gets to answer the spoofed ACK (it answers in
/// microseconds; the rest is slack for a loaded machine).
const LEARN_WAIT: Duration = Duration::from_millis(200);
/// Linux answers out-of-window segments at most once per 500 ms per socket
/// (`tcp_invalid_ratelimit`): a second learning try waits that long.
const RATE_LIMIT: Duration = Duration::from_millis(510);

/// Data that is fresh when the poke begins is watched at least this long:
/// the kernel's shortest retransmission timeout (200 ms), with room for a
/// loaded machine. With no ACK by then, the kernel is resending it.
const FRESH_WATCH: Duration = Duration::from_secs(1);

/// The data a connection has outstanding when the poke begins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outstanding {
    /// None: the connection can be probed.
    No,
    /// Sent and not resent yet: its ACK may be on its way.
    Fresh,
    /// Being resent, or held back by the peer's closed window.
    Stuck,
}

/// How a poke goes.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// Probes at most; the first answer ends the poke.
    pub count: u32,
    /// Between probes.
    pub interval: Duration,
    /// Each probe awaited this long.
    pub wait: Duration,
    /// 1-byte probes (answered every time, with a D-SACK).
    pub one_byte: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The peer answered.
    Alive,
    /// The peer answered with RST: it no longer knows the connection.
    Reset,
    /// No answer to any probe.
    Silent,
    /// An ICMP error came back for our probe.
    Unreachable,
    /// Nothing could be sent or learned: no verdict on the peer.
    Unknown,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Alive => "alive",
            Verdict::Reset => "reset",
            Verdict::Silent => "silent",
            Verdict::Unreachable => "unreachable",
            Verdict::Unknown => "unknown",
        }
    }
}

/// What our kernel's answer to the spoofed ACK told.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Learned {
    pub snd_nxt: u32,
    pub rcv_nxt: u32,
    pub window: u16,
    pub tsval: Option<u32>,
    pub tsecr: Option<u32>,
}

/// A segment poke sent.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Sent {
    /// `learn` (the spoofed ACK to our own kernel), `probe` (to the peer), or
    /// `ask` (an out-of-window ACK to the peer, when our kernel did not answer).
    pub kind: &'static str,
    pub seq: u32,
    pub ack: u32,
    pub len: u32,
    pub window: u16,
    pub tsval: Option<u32>,
    pub tsecr: Option<u32>,
    /// Capture time of the segment, when the capture saw it leave.
    #[serde(skip)]
    pub wire_time: Option<Micros>,
    #[serde(skip)]
    pub at: Option<Instant>,
}

/// A segment to hand to the raw socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Send(pub SegmentSpec);

#[derive(Clone, Copy, Debug, PartialEq)]
enum Phase {
    Idle,
    Learning {
        deadline: Instant,
        tries: u8,
    },
    Awaiting {
        deadline: Instant,
    },
    /// Until the next learning round (`tries` so far in this round).
    Pausing {
        until: Instant,
        tries: u8,
    },
    Watching {
        until: Instant,
    },
    /// An `ask` awaited.
    Asking {
        deadline: Instant,
    },
    /// Until the next `ask`.
    AskPause {
        until: Instant,
    },
    Done,
}

/// The end of a poke.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    pub verdict: Verdict,
    /// Probe to answer, on the capture's clock when it saw both.
    pub rtt: Option<Duration>,
    pub note: Option<String>,
    pub icmp: Option<IcmpError>,
}

pub struct Session {
    pub local: Endpoint,
    pub remote: Endpoint,
    plan: Plan,
    phase: Phase,
    /// Everything sent, in order.
    pub sent: Vec<Sent>,
    pub learned: Option<Learned>,
    pub outcome: Option<Outcome>,
    /// Watched instead of probed: data was outstanding.
    pub watched: bool,
    /// Interface index for IPv6 link-local addresses (the socket's).
    pub scope: u32,
    random: u64,
}

impl Session {
    pub fn new(local: Endpoint, remote: Endpoint, plan: Plan, seed: u64) -> Session {
        Session {
            local,
            remote,
            plan,
            phase: Phase::Idle,
            sent: Vec::new(),
            learned: None,
            outcome: None,
            watched: false,
            scope: 0,
            random: seed | 1,
        }
    }

    /// Segments sent to the peer: probes, and asks when learning failed.
    pub fn probes(&self) -> u32 {
        self.sent.iter().filter(|s| to_peer(s.kind)).count() as u32
    }

    fn asks(&self) -> u32 {
        self.sent.iter().filter(|s| s.kind == "ask").count() as u32
    }

    pub fn done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// When `on_timer` next has something to do.
    pub fn deadline(&self) -> Option<Instant> {
        match self.phase {
            Phase::Learning { deadline, .. }
            | Phase::Awaiting { deadline }
            | Phase::Asking { deadline } => Some(deadline),
            Phase::Pausing { until, .. }
            | Phase::Watching { until }
            | Phase::AskPause { until } => Some(until),
            Phase::Idle | Phase::Done => None,
        }
    }

    /// Begin: probe an idle connection, or only watch one with data
    /// outstanding (a probe there cannot be told from a retransmission).
    pub fn start(&mut self, now: Instant, outstanding: Outstanding) -> Vec<Send> {
        let at_least = match outstanding {
            Outstanding::No => return self.learn(now, 0),
            // A short --wait must not take an ACK still on its way for none:
            // that is not the peer being silent.
            Outstanding::Fresh => FRESH_WATCH,
            Outstanding::Stuck => Duration::ZERO,
        };
        self.watch(now, at_least);
        Vec::new()
    }

    /// End without sending anything (a connection poke must not touch).
    pub fn refuse(&mut self, note: String) {
        self.finish(Verdict::Unknown, None, Some(note));
    }

    /// Watch for the peer's ACK for the whole poke, and `at_least` that long.
    fn watch(&mut self, now: Instant, at_least: Duration) {
        self.watched = true;
        let span = self.plan.interval * self.plan.count.saturating_sub(1) + self.plan.wait;
        self.phase = Phase::Watching {
            until: now + span.max(at_least),
        };
    }

    fn next_random(&mut self) -> u32 {
        // xorshift64: only needs to be unpredictable enough to land outside
        // the window, seeded from the OS.
        let mut x = self.random;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.random = x;
        (x >> 16) as u32
    }

    /// Send our own kernel the spoofed ACK (see the module header).
    fn learn(&mut self, now: Instant, tries: u8) -> Vec<Send> {
        let (seq, ack) = match self.sent.iter().rev().find(|s| s.kind == "learn") {
            // The second try of a round: the other half of sequence space.
            Some(last) if tries > 0 => (last.seq.wrapping_add(1 << 31), last.ack),
            _ => (self.next_random(), self.next_random()),
        };
        let spec = bare_ack(self.remote, self.local, seq, ack);
        self.record("learn", &spec, now);
        self.phase = Phase::Learning {
            deadline: now + LEARN_WAIT,
            tries: tries + 1,
        };
        vec![Send(spec)]
    }

    /// Ask the peer directly (see the module header): our kernel did not
    /// answer the spoofed ACK.
    fn ask(&mut self, now: Instant) -> Vec<Send> {
        let seq = match self.sent.iter().rev().find(|s| s.kind == "ask") {
            Some(last) => last.seq.wrapping_add(1 << 31),
            None => self.next_random(),
        };
        let ack = self.next_random();
        let spec = bare_ack(self.local, self.remote, seq, ack);
        self.record("ask", &spec, now);
        self.phase = Phase::Asking {
            deadline: now + self.plan.wait,
        };
        vec![Send(spec)]
    }

    fn record(&mut self, kind: &'static str, spec: &SegmentSpec, now: Instant) {
        let ts = spec.timestamps;
        self.sent.push(Sent {
            kind,
            seq: spec.seq,
            ack: spec.ack,
            len: spec.payload.len() as u32,
            window: spec.window,
            tsval: ts.map(|t| t.tsval),
            tsecr: ts.map(|t| t.tsecr),
            wire_time: None,
            at: Some(now),
        });
    }

    fn probe(&mut self, learned: Learned, now: Instant) -> Vec<Send> {
        let timestamps = match (learned.tsval, learned.tsecr) {
            (Some(tsval), Some(tsecr)) => Some(Timestamps { tsval, tsecr }),
            _ => None,
        };
        let spec = SegmentSpec {
            src: self.local,
            dst: self.remote,
            seq: learned.snd_nxt.wrapping_sub(1),
            ack: learned.rcv_nxt,
            window: learned.window,
            timestamps,
            payload: if self.plan.one_byte {
                vec![0]
            } else {
                Vec::new()
            },
        };
        self.record("probe", &spec, now);
        self.phase = Phase::Awaiting {
            deadline: now + self.plan.wait,
        };
        vec![Send(spec)]
    }

    fn finish(&mut self, verdict: Verdict, rtt: Option<Duration>, note: Option<String>) {
        self.outcome = Some(Outcome {
            verdict,
            rtt,
            note,
            icmp: None,
        });
        self.phase = Phase::Done;
    }

    /// One of ours, seen on the wire (the capture shows what we send too).
    fn ours(&mut self, r: &TcpReply) -> Option<&mut Sent> {
        let from_us = r.seg.src == self.local;
        let s = &r.seg;
        self.sent.iter_mut().rev().find(|x| {
            to_peer(x.kind) == from_us
                && x.seq == s.seq
                && x.ack == s.ack
                && x.len == s.payload_len
                && x.window == s.window
                && s.flags & (flags::SYN | flags::FIN | flags::RST) == 0
        })
    }

    /// Whether this session sent the segment. When both ends of a
    /// connection are on this host and both are poked, one session's spoof
    /// looks like the other's own kernel talking: the driver asks first.
    pub fn sent_this(&mut self, r: &TcpReply) -> bool {
        self.ours(r).is_some()
    }

    /// A TCP segment of this connection, either way, at capture time `time`.
    pub fn on_segment(&mut self, r: &TcpReply, time: Micros, now: Instant) -> Vec<Send> {
        if self.done() {
            return Vec::new();
        }
        if let Some(mine) = self.ours(r) {
            mine.wire_time.get_or_insert(time);
            return Vec::new();
        }
        if r.seg.src == self.local {
            self.on_our_kernels_segment(r, now)
        } else {
            self.on_peers_segment(r, time, now);
            Vec::new()
        }
    }

    fn on_our_kernels_segment(&mut self, r: &TcpReply, now: Instant) -> Vec<Send> {
        let s = &r.seg;
        if s.payload_len > 0 && !self.watched {
            // The application is sending: data in flight from now on, its
            // ACK on the way.
            self.watch(now, FRESH_WATCH);
            return Vec::new();
        }
        let pure_ack = s.flags & (flags::SYN | flags::FIN | flags::RST) == 0 && s.has(flags::ACK);
        if !matches!(self.phase, Phase::Learning { .. }) || !pure_ack {
            return Vec::new();
        }
        if r.signed {
            self.finish(
                Verdict::Unknown,
                None,
                Some("the connection is signed (TCP-MD5 or TCP-AO): the peer drops unsigned probes, so none was sent".into()),
            );
            return Vec::new();
        }
        let learned = Learned {
            snd_nxt: s.seq,
            rcv_nxt: s.ack,
            window: s.window,
            tsval: s.tsval,
            tsecr: r.tsecr,
        };
        self.learned = Some(learned);
        self.probe(learned, now)
    }

    fn on_peers_segment(&mut self, r: &TcpReply, time: Micros, now: Instant) {
        let s = &r.seg;
        if s.has(flags::RST) {
            let note = "the peer answered with RST: it no longer knows this connection";
            self.finish(
                Verdict::Reset,
                self.rtt_to(s.seq, time, now),
                Some(note.into()),
            );
            return;
        }
        if matches!(self.phase, Phase::Asking { .. } | Phase::AskPause { .. }) {
            let asked = self.sent.iter().rev().find(|p| p.kind == "ask");
            let rtt = asked.and_then(|p| rtt(p, time, now));
            self.finish(Verdict::Alive, rtt, Some(ASKED.into()));
            return;
        }
        let answer = self
            .sent
            .iter()
            .rev()
            .find(|p| p.kind == "probe" && s.ack == p.seq.wrapping_add(1));
        let rtt = answer.and_then(|p| rtt(p, time, now));
        let note = match (answer, self.watched) {
            (_, true) => Some("the peer acknowledged while our data was outstanding".to_string()),
            (None, false) => Some("the peer sent a segment of its own".to_string()),
            (Some(_), false) => None,
        };
        self.finish(Verdict::Alive, rtt, note);
    }

    /// RTT to an RST: Linux sends it with SEG.SEQ = our SEG.ACK.
    fn rtt_to(&self, rst_seq: u32, time: Micros, now: Instant) -> Option<Duration> {
        self.sent
            .iter()
            .rev()
            .find(|p| to_peer(p.kind) && p.ack == rst_seq)
            .and_then(|p| rtt(p, time, now))
    }

    /// An ICMP error about one of our segments to the peer.
    pub fn on_icmp(&mut self, e: &IcmpError) {
        if self.done() || self.probes() == 0 {
            return;
        }
        let note = format!("ICMP {} from {}", e.what, e.reporter);
        self.finish(Verdict::Unreachable, None, Some(note));
        if let Some(o) = self.outcome.as_mut() {
            o.icmp = Some(e.clone());
        }
    }

    pub fn on_timer(&mut self, now: Instant) -> Vec<Send> {
        match self.phase {
            Phase::Learning { deadline, tries } if now >= deadline => {
                if tries >= 2 {
                    return self.ask(now);
                }
                let started = self.sent.last().and_then(|s| s.at).unwrap_or(now);
                self.phase = Phase::Pausing {
                    until: started + RATE_LIMIT,
                    tries,
                };
                Vec::new()
            }
            Phase::Awaiting { deadline } if now >= deadline => {
                if self.probes() >= self.plan.count {
                    let n = self.probes();
                    let note = format!(
                        "{n} probe{} unanswered, each awaited {} ms",
                        if n == 1 { "" } else { "s" },
                        self.plan.wait.as_millis()
                    );
                    self.finish(Verdict::Silent, None, Some(note));
                    return Vec::new();
                }
                let last = self.sent.last().and_then(|s| s.at).unwrap_or(now);
                self.phase = Phase::Pausing {
                    until: last + self.plan.interval,
                    tries: 0,
                };
                Vec::new()
            }
            Phase::Pausing { until, tries } if now >= until => self.learn(now, tries),
            Phase::Asking { deadline } if now >= deadline => {
                if self.asks() >= self.plan.count.max(2) {
                    let n = self.asks();
                    let note = format!("our kernel did not answer the ACK that asks for the sequence numbers (filtered here, or a connection signed with TCP-MD5/TCP-AO?), and the peer answered none of {n} out-of-window ACKs: it may be gone, or drop what it cannot verify; cannot tell");
                    self.finish(Verdict::Unknown, None, Some(note));
                    return Vec::new();
                }
                let last = self.sent.last().and_then(|s| s.at).unwrap_or(now);
                self.phase = Phase::AskPause {
                    until: last + self.plan.interval,
                };
                Vec::new()
            }
            Phase::AskPause { until } if now >= until => self.ask(now),
            Phase::Watching { until } if now >= until => {
                let note = "data is outstanding and the peer acknowledged nothing: the kernel is \
                            retransmitting, so keepalive cannot fire; only TCP_USER_TIMEOUT (or \
                            tcp_retries2, about 15 minutes) ends this. No probe was sent";
                self.finish(Verdict::Silent, None, Some(note.into()));
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    /// The kernel refused to send our segment (`sendto` failed): nothing
    /// more can be done for this connection.
    pub fn send_failed(&mut self, reason: nix::errno::Errno) {
        // It was recorded when it was made, but it never left.
        let refused = self.sent.pop().map(|s| s.kind);
        let what = match refused {
            Some("learn") => "the ACK that asks our kernel for the sequence numbers",
            Some("ask") => "the ACK that asks the peer",
            _ => "the probe",
        };
        let why = match reason {
            nix::errno::Errno::EPERM => {
                " (a local netfilter rule, such as `ct state invalid drop` on output, dropped it)"
            }
            _ => "",
        };
        let note = format!("this host refused to send {what}: {reason}{why}; cannot tell");
        self.finish(Verdict::Unknown, None, Some(note));
    }

    /// A watched connection judged silent whose data the peer acknowledged
    /// all the same (its ACK came before the capture was open): alive.
    pub fn acked_while_watched(&mut self) {
        let silent = self
            .outcome
            .as_ref()
            .is_some_and(|o| o.verdict == Verdict::Silent);
        if self.watched && silent {
            let note = "the peer acknowledged our outstanding data (tcp_info bytes_acked moved)";
            self.finish(Verdict::Alive, None, Some(note.into()));
        }
    }

    /// Add to the note (what the driver found out afterwards).
    pub fn add_note(&mut self, more: &str) {
        if let Some(o) = self.outcome.as_mut() {
            o.note = Some(match o.note.take() {
                Some(n) => format!("{n}. {more}"),
                None => more.to_string(),
            });
        }
    }

    /// Stop now (Ctrl-C): whatever was not decided is unknown.
    pub fn interrupt(&mut self) {
        if !self.done() {
            self.finish(Verdict::Unknown, None, Some("interrupted".into()));
        }
    }
}

/// The out-of-window segment of `learn` and `ask`: 0 bytes, an ACK at
/// numbers of our choosing, no timestamp (nothing for PAWS to take in).
fn bare_ack(src: Endpoint, dst: Endpoint, seq: u32, ack: u32) -> SegmentSpec {
    SegmentSpec {
        src,
        dst,
        seq,
        ack,
        window: u16::MAX,
        timestamps: None,
        payload: Vec::new(),
    }
}

/// The note of a peer that answered an `ask`.
const ASKED: &str = "our kernel did not answer the ACK that asks for the sequence numbers (filtered here?), so the peer was asked with an out-of-window ACK, and answered";

/// Whether a kind of segment goes to the peer (the others go to our kernel).
fn to_peer(kind: &str) -> bool {
    kind != "learn"
}

/// Probe to answer: on the capture's clock when it saw the probe leave,
/// else on ours.
fn rtt(probe: &Sent, answered: Micros, now: Instant) -> Option<Duration> {
    match probe.wire_time {
        Some(sent) => u64::try_from(answered.checked_sub(sent)?)
            .ok()
            .map(Duration::from_micros),
        None => probe.at.map(|at| now.saturating_duration_since(at)),
    }
}

#[cfg(test)]
mod tests;
