//! Per-connection, per-direction TCP state: what each side has sent and what
//! the other side has acknowledged.
//!
//! Trusts the [`Segment`] fields as decoded; sequence numbers are
//! attacker-controlled, so every comparison wraps at 2^32 (RFC 9293 3.4).

mod seq;

use std::hash::{Hash, Hasher};
use std::net::SocketAddr;

pub use seq::{seq_after, seq_at_or_after};

use crate::wire::{flags, Endpoint, Segment, VlanTags};

/// Microseconds since the Unix epoch, as capture timestamps give them.
pub type Micros = i64;

/// A connection: its two endpoints in canonical order plus its VLAN tags.
///
/// Packed into 48 bytes and hashed as three words, because every segment
/// looks it up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowKey {
    lo_addr: u128,
    hi_addr: u128,
    lo_port: u16,
    hi_port: u16,
    pub vlan: VlanTags,
}

impl Hash for FlowKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u128(self.lo_addr);
        state.write_u128(self.hi_addr);
        let [v0, v1] = self.vlan;
        let rest = u64::from(self.lo_port)
            | u64::from(self.hi_port) << 16
            | u64::from(v0) << 32
            | u64::from(v1) << 48;
        state.write_u64(rest);
    }
}

/// Which endpoint of a [`FlowKey`] sent a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Lo = 0,
    Hi = 1,
}

impl Side {
    pub fn other(self) -> Side {
        match self {
            Side::Lo => Side::Hi,
            Side::Hi => Side::Lo,
        }
    }
}

impl FlowKey {
    /// The connection a segment belongs to, and which end sent it.
    pub fn of(seg: &Segment) -> (FlowKey, Side) {
        let (src, dst) = (seg.src, seg.dst);
        let (lo, hi, side) = if src <= dst {
            (src, dst, Side::Lo)
        } else {
            (dst, src, Side::Hi)
        };
        let key = FlowKey {
            lo_addr: lo.ip,
            hi_addr: hi.ip,
            lo_port: lo.port,
            hi_port: hi.port,
            vlan: seg.vlan,
        };
        (key, side)
    }

    pub fn endpoint(&self, side: Side) -> SocketAddr {
        match side {
            Side::Lo => Endpoint {
                ip: self.lo_addr,
                port: self.lo_port,
            }
            .socket_addr(),
            Side::Hi => Endpoint {
                ip: self.hi_addr,
                port: self.hi_port,
            }
            .socket_addr(),
        }
    }
}

/// The identity of a segment as a capture would repeat it byte for byte.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fingerprint {
    seq: u32,
    ack: u32,
    len: u32,
    window: u16,
    ip_id: u16,
    flags: u8,
    tsval: Option<u32>,
}

impl Fingerprint {
    pub fn of(seg: &Segment) -> Fingerprint {
        Fingerprint {
            seq: seg.seq,
            ack: seg.ack,
            len: seg.payload_len,
            window: seg.window,
            ip_id: seg.ip_id,
            flags: seg.flags,
            tsval: seg.tsval,
        }
    }
}

/// What one direction of a connection has shown so far.
#[derive(Clone, Debug, Default)]
pub struct Half {
    /// Highest seq + len sent (SYN and FIN count one), or what the peer has
    /// acknowledged if that is higher (segments the capture missed).
    pub next_seq: Option<u32>,
    /// Highest ACK number this side has sent.
    pub ack: Option<u32>,
    /// Latest window this side advertised.
    pub window: Option<u16>,
    /// This side has sent a FIN.
    pub fin: bool,
    /// This side has sent an RST.
    pub rst: bool,
    /// This side's last segment: when, and its fingerprint (to spot copies).
    pub last_time: Option<Micros>,
    pub last_print: Fingerprint,
    /// When this side last sent a segment that was not a probe.
    pub last_nonprobe: Option<Micros>,
    /// Data segments resent since the peer's ACK last moved forward.
    pub resent_since_ack: u32,
    /// When data from this side was first resent without the peer's ACK moving.
    pub resending_since: Option<Micros>,
    /// The last unacceptable segment from this side (end of its sequence
    /// space, its ACK), until an acceptable one comes.
    pub doubt: Option<(u32, u32)>,
    /// This side's last segment carried a timestamp option: a stack that
    /// negotiated timestamps puts one on every segment but RSTs (RFC 7323
    /// 3.2), so one without did not come from that stack.
    pub timestamps: bool,
}

impl Half {
    /// Record a segment this side sent; `probe` says the rules took it for a
    /// keepalive or zero-window probe.
    pub fn sent(&mut self, seg: &Segment, now: Micros, probe: bool) {
        let end = seg.seq.wrapping_add(seg.seq_len());
        match self.next_seq {
            Some(next) if !seq_after(end, next) => {
                // Data (or a FIN) that does not reach past what was already
                // sent is a retransmission, unless it is a 1-byte probe.
                if !probe && (seg.payload_len > 0 || seg.has(flags::FIN)) {
                    self.resent_since_ack += 1;
                    self.resending_since.get_or_insert(now);
                }
            }
            _ => self.next_seq = Some(end),
        }
        if seg.has(flags::ACK) {
            match self.ack {
                Some(a) if !seq_after(seg.ack, a) => {}
                _ => self.ack = Some(seg.ack),
            }
        }
        // An RST's window field means nothing (RFC 9293 3.10.7.1 ignores it).
        if !seg.has(flags::RST) {
            self.window = Some(seg.window);
        }
        if !seg.has(flags::RST) {
            self.timestamps = seg.tsval.is_some();
        }
        self.fin |= seg.has(flags::FIN);
        self.rst |= seg.has(flags::RST);
        self.last_time = Some(now);
        self.last_print = Fingerprint::of(seg);
        if !probe {
            self.last_nonprobe = Some(now);
        }
    }

    /// The peer acknowledged up to `ack`: what this side sent reaches at least
    /// that far, and any resending ends once the ACK moves forward.
    pub fn acked(&mut self, ack: u32, moved: bool) {
        match self.next_seq {
            Some(next) if !seq_after(ack, next) => {}
            _ => self.next_seq = Some(ack),
        }
        if moved {
            self.resent_since_ack = 0;
            self.resending_since = None;
        }
    }

    /// Bytes this side sent that the peer has not acknowledged, if known.
    pub fn outstanding(&self, peer: &Half) -> Option<u32> {
        Some(self.next_seq?.wrapping_sub(peer.ack?)).filter(|n| (*n as i32) > 0)
    }
}

/// Both directions of one connection.
#[derive(Clone, Debug, Default)]
pub struct Flow {
    pub half: [Half; 2],
    /// Who sent the first SYN without ACK: the client.
    pub syn_from: Option<Side>,
}

impl Flow {
    pub fn half(&self, side: Side) -> &Half {
        &self.half[side as usize]
    }

    pub fn half_mut(&mut self, side: Side) -> &mut Half {
        &mut self.half[side as usize]
    }

    /// Apply a segment's effect on sequence state (after the rules looked at
    /// the state as it was before it).
    pub fn update(&mut self, side: Side, seg: &Segment, now: Micros, probe: bool) {
        if seg.has(flags::SYN) && !seg.has(flags::ACK) && self.syn_from.is_none() {
            self.syn_from = Some(side);
        }
        let before = self.half(side).ack;
        self.half_mut(side).sent(seg, now, probe);
        if seg.has(flags::ACK) {
            let moved = before.is_some_and(|b| seq_after(seg.ack, b));
            self.half_mut(side.other()).acked(seg.ack, moved);
        }
    }

    /// Both sides have closed (FIN each way) or either has reset.
    /// Forget what `side` and its ACKs established, so that `seg` (which
    /// `keepalive::is_resync` found continuing a stream the state
    /// contradicts) sets it anew in the `update` that follows.
    pub fn rebase(&mut self, side: Side, seg: &Segment) {
        let half = self.half_mut(side);
        half.next_seq = None;
        half.doubt = None;
        // The peer's ACKs were numbers in the space being replaced.
        self.half_mut(side.other()).ack = None;
        if seg.has(flags::ACK) {
            // And so were this side's ACKs of the peer's space, which the
            // segment's ACK now sets.
            self.half_mut(side).ack = None;
            self.half_mut(side.other()).next_seq = None;
        }
    }

    pub fn closed(&self) -> bool {
        let [a, b] = &self.half;
        a.rst || b.rst || (a.fin && b.fin)
    }
}
