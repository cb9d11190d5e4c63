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
/// Packed into 40 bytes (the addresses as two 64-bit words each, so the key
/// needs no 16-byte alignment) and hashed as three words, because every
/// segment looks it up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowKey {
    lo_addr: [u64; 2],
    hi_addr: [u64; 2],
    lo_port: u16,
    hi_port: u16,
    pub vlan: VlanTags,
}

fn split(ip: u128) -> [u64; 2] {
    [(ip >> 64) as u64, ip as u64]
}

fn join([hi, lo]: [u64; 2]) -> u128 {
    u128::from(hi) << 64 | u128::from(lo)
}

impl Hash for FlowKey {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u128(join(self.lo_addr));
        state.write_u128(join(self.hi_addr));
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
    #[inline]
    pub fn of(seg: &Segment) -> (FlowKey, Side) {
        let (src, dst) = (&seg.src, &seg.dst);
        // Endpoint's order (address, then port), written out: the derived
        // comparison goes through `Ordering` for each field.
        let src_lower = src.ip < dst.ip || (src.ip == dst.ip && src.port <= dst.port);
        let (lo, hi, side) = if src_lower {
            (src, dst, Side::Lo)
        } else {
            (dst, src, Side::Hi)
        };
        let key = FlowKey {
            lo_addr: split(lo.ip),
            hi_addr: split(hi.ip),
            lo_port: lo.port,
            hi_port: hi.port,
            vlan: seg.vlan,
        };
        (key, side)
    }

    pub fn endpoint(&self, side: Side) -> SocketAddr {
        match side {
            Side::Lo => Endpoint {
                ip: join(self.lo_addr),
                port: self.lo_port,
            }
            .socket_addr(),
            Side::Hi => Endpoint {
                ip: join(self.hi_addr),
                port: self.hi_port,
            }
            .socket_addr(),
        }
    }
}

/// The identity of a segment as a capture would repeat it byte for byte.
///
/// Packed into three words (24 bytes of the flow table entry), so that
/// comparing two takes three compares: most segments come within
/// `COPY_WINDOW` of their side's previous one and are compared with it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fingerprint([u64; 3]);

impl Fingerprint {
    #[inline]
    pub fn of(seg: &Segment) -> Fingerprint {
        // The TSval goes in as 0 when absent, with a presence bit beside the
        // flags, so that equal fingerprints compare equal.
        let tsval = seg.tsval.unwrap_or(0);
        Fingerprint([
            u64::from(seg.seq) | u64::from(seg.ack) << 32,
            u64::from(seg.payload_len) | u64::from(tsval) << 32,
            u64::from(seg.window)
                | u64::from(seg.ip_id) << 16
                | u64::from(seg.flags) << 32
                | u64::from(seg.tsval.is_some()) << 40,
        ])
    }
}

/// Bits of [`Half::bits`]: which optional fields hold a value, and the
/// side's boolean state.
mod bit {
    pub const NEXT_SEQ: u16 = 1 << 0;
    pub const ACK: u16 = 1 << 1;
    pub const WINDOW: u16 = 1 << 2;
    pub const FIN: u16 = 1 << 3;
    pub const RST: u16 = 1 << 4;
    pub const TIMESTAMPS: u16 = 1 << 5;
    pub const LAST_TIME: u16 = 1 << 6;
    pub const LAST_NONPROBE: u16 = 1 << 7;
    pub const DOUBT: u16 = 1 << 8;
    /// Data resent since the peer's ACK last moved: `resending_since` is
    /// kept outside the half (see [`Resend`]).
    pub const RESENDING: u16 = 1 << 9;
    /// This side sent the connection's first SYN without ACK.
    pub const SYN_FROM: u16 = 1 << 10;
    /// Live: this side's run of resending was reported `stalled`; it ends
    /// with the run.
    pub const STALLED: u16 = 1 << 11;
    /// New data (or a FIN) sent while resending: with no ACK from the peer
    /// in the capture, the sign that the peer does get it after all.
    pub const ADVANCED: u16 = 1 << 12;
}

/// What one direction of a connection has shown so far.
///
/// Every segment reads and writes both halves of its connection, so a half
/// is packed into 64 bytes (one cache line): the optional fields are a value
/// plus a bit in `bits`, read through the accessors. The one rarely used
/// field, when resending began, lives with the connection's cold data and is
/// passed in where it changes.
#[derive(Clone, Debug, Default)]
pub struct Half {
    next_seq: u32,
    ack: u32,
    last_time: Micros,
    last_nonprobe: Micros,
    doubt: (u32, u32),
    /// This side's last segment's fingerprint (to spot copies); its time is
    /// `last_time`.
    pub last_print: Fingerprint,
    window: u16,
    bits: u16,
    /// Data segments resent since the peer's ACK last moved forward.
    pub resent_since_ack: u32,
}

/// The time data from a side was first resent without the peer's ACK
/// moving, kept outside the hot [`Half`]: `None` until it starts.
pub type Resend = Option<Micros>;

impl Half {
    fn has(&self, b: u16) -> bool {
        self.bits & b != 0
    }

    fn set(&mut self, b: u16, on: bool) {
        self.bits = (self.bits & !b) | (u16::from(on) * b);
    }

    fn get<T>(&self, b: u16, value: T) -> Option<T> {
        self.has(b).then_some(value)
    }

    /// Highest seq + len sent (SYN and FIN count one), or what the peer has
    /// acknowledged if that is higher (segments the capture missed).
    pub fn next_seq(&self) -> Option<u32> {
        self.get(bit::NEXT_SEQ, self.next_seq)
    }

    pub fn set_next_seq(&mut self, v: Option<u32>) {
        self.next_seq = v.unwrap_or(0);
        self.set(bit::NEXT_SEQ, v.is_some());
    }

    /// Highest ACK number this side has sent.
    pub fn ack(&self) -> Option<u32> {
        self.get(bit::ACK, self.ack)
    }

    pub fn set_ack(&mut self, v: Option<u32>) {
        self.ack = v.unwrap_or(0);
        self.set(bit::ACK, v.is_some());
    }

    /// Latest window this side advertised.
    pub fn window(&self) -> Option<u16> {
        self.get(bit::WINDOW, self.window)
    }

    /// This side has sent a FIN.
    pub fn fin(&self) -> bool {
        self.has(bit::FIN)
    }

    pub fn set_fin(&mut self, on: bool) {
        self.set(bit::FIN, on);
    }

    /// This side has sent an RST.
    pub fn rst(&self) -> bool {
        self.has(bit::RST)
    }

    /// When this side's last segment was seen (its fingerprint is
    /// `last_print`).
    pub fn last_time(&self) -> Option<Micros> {
        self.get(bit::LAST_TIME, self.last_time)
    }

    /// Any packet from this side was captured.
    pub fn heard(&self) -> bool {
        self.has(bit::LAST_TIME)
    }

    pub fn set_last_time(&mut self, v: Option<Micros>) {
        self.last_time = v.unwrap_or(0);
        self.set(bit::LAST_TIME, v.is_some());
    }

    /// When this side last sent a segment that was not a probe.
    pub fn last_nonprobe(&self) -> Option<Micros> {
        self.get(bit::LAST_NONPROBE, self.last_nonprobe)
    }

    pub fn set_last_nonprobe(&mut self, v: Option<Micros>) {
        self.last_nonprobe = v.unwrap_or(0);
        self.set(bit::LAST_NONPROBE, v.is_some());
    }

    /// The last unacceptable segment from this side (end of its sequence
    /// space, its ACK), until an acceptable one comes.
    pub fn doubt(&self) -> Option<(u32, u32)> {
        self.get(bit::DOUBT, self.doubt)
    }

    pub fn set_doubt(&mut self, v: Option<(u32, u32)>) {
        self.doubt = v.unwrap_or((0, 0));
        self.set(bit::DOUBT, v.is_some());
    }

    /// This side's last segment carried a timestamp option: a stack that
    /// negotiated timestamps puts one on every segment but RSTs (RFC 7323
    /// 3.2), so one without did not come from that stack.
    pub fn timestamps(&self) -> bool {
        self.has(bit::TIMESTAMPS)
    }

    pub fn set_timestamps(&mut self, on: bool) {
        self.set(bit::TIMESTAMPS, on);
    }

    /// Data from this side has been resent since the peer's ACK last moved
    /// (the time it began is the connection's [`Resend`]).
    pub fn resending(&self) -> bool {
        self.has(bit::RESENDING)
    }

    /// This side's current run of resending was reported `stalled`.
    pub fn stalled(&self) -> bool {
        self.has(bit::STALLED)
    }

    /// Mark the current run of resending as reported `stalled`.
    pub fn set_stalled(&mut self) {
        if self.resending() {
            self.set(bit::STALLED, true);
        }
    }

    /// Record a segment this side sent; `probe` says the rules took it for a
    /// keepalive or zero-window probe. `resend` is when this side began
    /// resending, if it has.
    #[inline]
    pub fn sent(&mut self, seg: &Segment, now: Micros, probe: bool, resend: &mut Resend) {
        let end = seg.seq.wrapping_add(seg.seq_len());
        // The bits are gathered here and stored once.
        let mut bits = self.bits;
        if bits & bit::NEXT_SEQ != 0 && !seq_after(end, self.next_seq) {
            // Data (or a FIN) that does not reach past what was already
            // sent is a retransmission, unless it is a 1-byte probe.
            if !probe && (seg.payload_len > 0 || seg.has(flags::FIN)) {
                self.resent_since_ack = self.resent_since_ack.wrapping_add(1);
                if bits & bit::RESENDING == 0 {
                    bits |= bit::RESENDING;
                    *resend = Some(now);
                }
            }
        } else {
            self.next_seq = end;
            bits |= bit::NEXT_SEQ;
            if bits & bit::RESENDING != 0 {
                bits |= bit::ADVANCED;
            }
        }
        if seg.has(flags::ACK) && (bits & bit::ACK == 0 || seq_after(seg.ack, self.ack)) {
            self.ack = seg.ack;
            bits |= bit::ACK;
        }
        // An RST's window field means nothing (RFC 9293 3.10.7.1 ignores it).
        if !seg.has(flags::RST) {
            self.window = seg.window;
            let ts = if seg.tsval.is_some() {
                bit::TIMESTAMPS
            } else if seg.options_cut {
                // Unknown: as the side's last segment said.
                bits & bit::TIMESTAMPS
            } else {
                0
            };
            bits = (bits & !bit::TIMESTAMPS) | bit::WINDOW | ts;
        }
        // FIN and RST are sticky.
        bits |= (u16::from(seg.has(flags::FIN)) * bit::FIN)
            | (u16::from(seg.has(flags::RST)) * bit::RST);
        self.last_time = now;
        bits |= bit::LAST_TIME;
        self.last_print = Fingerprint::of(seg);
        if !probe {
            self.last_nonprobe = now;
            bits |= bit::LAST_NONPROBE;
        }
        self.bits = bits;
    }

    /// The peer acknowledged up to `ack`: what this side sent reaches at least
    /// that far, and any resending ends once the ACK moves forward.
    #[inline]
    pub fn acked(&mut self, ack: u32, moved: bool, resend: &mut Resend) {
        match self.next_seq() {
            Some(next) if !seq_after(ack, next) => {}
            _ => self.set_next_seq(Some(ack)),
        }
        // `resent_since_ack` only grows while `RESENDING` is set, so with the
        // bit clear there is nothing to reset.
        if moved && self.resending() {
            self.resent_since_ack = 0;
            self.bits &= !(bit::RESENDING | bit::STALLED | bit::ADVANCED);
            *resend = None;
        }
    }

    /// Bytes this side sent that the peer has not acknowledged, if known.
    pub fn outstanding(&self, peer: &Half) -> Option<u32> {
        Some(self.next_seq()?.wrapping_sub(peer.ack()?)).filter(|n| (*n as i32) > 0)
    }
}

/// Resends it takes to call a side stuck when nothing from its peer was
/// captured (see [`Flow::stuck`]).
pub const UNHEARD_RESENDS: u32 = 2;

/// Resends it takes to call a side stuck that resends what the peer's ACKs
/// in the capture cover (see [`Flow::stuck`]).
pub const ACKS_LOST_RESENDS: u32 = 3;

/// How a side that keeps resending is stuck (see [`Flow::stuck`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stuck {
    /// The peer's ACK has not moved: this many bytes are unacknowledged.
    Unacked(u32),
    /// The peer acknowledged everything the side sent, in the capture, and
    /// the side goes on resending it: those ACKs do not reach its TCP.
    AcksLost,
    /// Nothing from the peer was captured, and nothing new was sent since the
    /// resending began: how much is unacknowledged is not in the capture.
    Unheard,
}

impl Stuck {
    /// The bytes unacknowledged by the peer's ACK in the capture, when it
    /// has one.
    pub fn bytes(self) -> Option<u32> {
        match self {
            Stuck::Unacked(n) => Some(n),
            Stuck::AcksLost => Some(0),
            Stuck::Unheard => None,
        }
    }

    /// Whether the peer's ACK in the capture covers all that was resent;
    /// unknown with no packet from the peer.
    pub fn peer_acked(self) -> Option<bool> {
        match self {
            Stuck::Unacked(_) => Some(false),
            Stuck::AcksLost => Some(true),
            Stuck::Unheard => None,
        }
    }
}

/// Both directions of one connection.
#[derive(Clone, Debug, Default)]
pub struct Flow {
    pub half: [Half; 2],
}

impl Flow {
    pub fn half(&self, side: Side) -> &Half {
        &self.half[side as usize]
    }

    pub fn half_mut(&mut self, side: Side) -> &mut Half {
        &mut self.half[side as usize]
    }

    /// Whether `side` keeps resending with nothing to show that the peer gets
    /// it. None once either side reset.
    ///
    /// With the peer's ACK short of what the side sent, that decides. Else
    /// the side decides: it is stuck while it sends nothing new (new data
    /// means ACKs reach it) and it has resent enough. That covers two
    /// captures:
    /// - with no packet at all from the peer (a capture started after it fell
    ///   silent, or of one direction only), [`Stuck::Unheard`] after
    ///   [`UNHEARD_RESENDS`]: one resend and then quiet is as often a lost
    ///   segment of a request waiting for its answer;
    /// - with the peer's ACKs of all of it captured, [`Stuck::AcksLost`]
    ///   after [`ACKS_LOST_RESENDS`]: something between the capture point
    ///   and the side's TCP drops them (a firewall on its host, conntrack
    ///   taking them for invalid, a path that fails one way past the
    ///   capture). One resend is often spurious (the ACK crossed the timer),
    ///   and two can be two ACKs lost in a row to ordinary loss.
    pub fn stuck(&self, side: Side) -> Option<Stuck> {
        let (me, peer) = (self.half(side), self.half(side.other()));
        if self.reset() || !me.resending() {
            return None;
        }
        if let Some(bytes) = me.outstanding(peer) {
            return Some(Stuck::Unacked(bytes));
        }
        // New data since the resending began: ACKs reach this side.
        if me.has(bit::ADVANCED) {
            return None;
        }
        let (stuck, needed) = match peer.ack() {
            _ if !peer.heard() => (Stuck::Unheard, UNHEARD_RESENDS),
            Some(_) => (Stuck::AcksLost, ACKS_LOST_RESENDS),
            None => return None,
        };
        (me.resent_since_ack >= needed).then_some(stuck)
    }

    /// `side`'s FIN is among what the peer's ACK in the capture has not
    /// covered (it counts one in [`Stuck::Unacked`]'s bytes).
    pub fn fin_outstanding(&self, side: Side) -> bool {
        let (me, peer) = (self.half(side), self.half(side.other()));
        me.fin() && me.outstanding(peer).is_some()
    }

    /// `side` resends, has sent nothing new since it began and has nothing
    /// unacknowledged by the peer's ACK in the capture, and neither side
    /// reset: more resends alone can make it [stuck](Self::stuck).
    pub fn may_stick(&self, side: Side) -> bool {
        let (me, peer) = (self.half(side), self.half(side.other()));
        let quiet = me.resending() && !me.has(bit::ADVANCED);
        quiet && me.outstanding(peer).is_none() && !self.reset()
    }

    /// Either side sent an RST.
    pub fn reset(&self) -> bool {
        let [a, b] = &self.half;
        a.rst() || b.rst()
    }

    /// Who sent the first SYN without ACK: the client.
    pub fn syn_from(&self) -> Option<Side> {
        [Side::Lo, Side::Hi]
            .into_iter()
            .find(|&s| self.half(s).has(bit::SYN_FROM))
    }

    /// Apply a segment's effect on sequence state (after the rules looked at
    /// the state as it was before it). `resend` holds when each side began
    /// resending (see [`Resend`]).
    #[inline]
    pub fn update(
        &mut self,
        side: Side,
        seg: &Segment,
        now: Micros,
        probe: bool,
        resend: &mut [Resend; 2],
    ) {
        if seg.has(flags::SYN) && !seg.has(flags::ACK) && self.syn_from().is_none() {
            self.half_mut(side).bits |= bit::SYN_FROM;
        }
        let before = self.half(side).ack();
        self.half_mut(side)
            .sent(seg, now, probe, &mut resend[side as usize]);
        if seg.has(flags::ACK) {
            let moved = before.is_some_and(|b| seq_after(seg.ack, b));
            let other = side.other();
            self.half_mut(other)
                .acked(seg.ack, moved, &mut resend[other as usize]);
        }
    }

    /// The effect of a segment that `keepalive::predict` accepted: what
    /// `set_doubt(None)` then [`Flow::update`] do for a segment with ACK and
    /// none of SYN, FIN, RST, that resends nothing, when neither side is
    /// resending and both sides' next sequence numbers are known.
    /// The same stores, without the cases that cannot arise (the engine's
    /// property test compares the two).
    #[inline]
    pub fn advance(&mut self, side: Side, seg: &Segment, print: Fingerprint, now: Micros) {
        let [lo, hi] = &mut self.half;
        let (sender, peer) = match side {
            Side::Lo => (lo, hi),
            Side::Hi => (hi, lo),
        };
        let end = seg.seq.wrapping_add(seg.payload_len);
        if seq_after(end, sender.next_seq) {
            sender.next_seq = end;
        }
        if !sender.has(bit::ACK) || seq_after(seg.ack, sender.ack) {
            sender.ack = seg.ack;
        }
        sender.window = seg.window;
        sender.doubt = (0, 0);
        sender.last_time = now;
        sender.last_nonprobe = now;
        sender.last_print = print;
        let ts = u16::from(seg.tsval.is_some()) * bit::TIMESTAMPS;
        let set = bit::ACK | bit::WINDOW | bit::LAST_TIME | bit::LAST_NONPROBE;
        sender.bits = (sender.bits & !(bit::TIMESTAMPS | bit::DOUBT)) | set | ts;
        if seq_after(seg.ack, peer.next_seq) {
            peer.next_seq = seg.ack;
        }
    }

    /// Forget what `side` and its ACKs established, so that `seg` (a
    /// `keepalive::Place::Resync`: it continues a stream the state
    /// contradicts) sets it anew in the `update` that follows.
    pub fn rebase(&mut self, side: Side, seg: &Segment) {
        let half = self.half_mut(side);
        half.set_next_seq(None);
        half.set_doubt(None);
        // The peer's ACKs were numbers in the space being replaced.
        self.half_mut(side.other()).set_ack(None);
        if seg.has(flags::ACK) {
            // And so were this side's ACKs of the peer's space, which the
            // segment's ACK now sets.
            self.half_mut(side).set_ack(None);
            self.half_mut(side.other()).set_next_seq(None);
        }
    }

    /// Both sides have closed (FIN each way) or either has reset.
    pub fn closed(&self) -> bool {
        let [a, b] = &self.half;
        self.reset() || (a.fin() && b.fin())
    }
}
