//! The keepalive rules: given what a connection has shown so far and one more
//! segment, say what that segment is. Pure functions: no I/O, no clock, so
//! `analyze`, `sniff` and the tests share them exactly.
//!
//! The shape comes from RFC 1122 4.2.3.6: "such a segment generally contains
//! SEG.SEQ = SND.NXT-1 and may or may not contain one garbage octet of data",
//! and the receiver must answer it with an ACK (RFC 9293 3.10.7.4: an
//! unacceptable segment is answered with `<SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>`).
//! Linux sends the 0-byte form (`tcp_write_wakeup` -> `tcp_xmit_probe_skb`,
//! seq = snd_una - 1, which is snd_nxt - 1 since keepalive only fires with
//! nothing in flight); Windows sends 1 byte.
//!
//! Linux uses the very same 0-byte segment to probe a zero window, so the
//! peer's window tells the two apart.

mod event;

pub use event::{Event, EventKind};

use crate::flow::{seq_after, Fingerprint, Half, Micros};
use crate::wire::{flags, Segment};

/// Two identical segments closer than this are one segment captured twice
/// (on two interfaces, or by a mirror port), not a resend. Stacks resend
/// probes at least a second apart (Linux TCP_KEEPINTVL >= 1 s, Windows 1 s),
/// and an IPv6 probe without timestamps does repeat byte for byte.
pub const COPY_WINDOW: Micros = 100_000;

/// What the rules make of one segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// A keepalive probe (RFC 1122 4.2.3.6).
    Keepalive,
    /// A probe of the peer's zero window: not a keepalive.
    ZeroWindowProbe,
    /// The previous segment of this direction, captured again.
    Copy,
    /// A segment its receiver drops unread: its sequence number lies beyond
    /// any window, or it acknowledges data the other side never sent
    /// (RFC 9293 3.10.7.4). It changes no state (see [`Place`]).
    Unacceptable,
    /// Anything else.
    Other,
}

impl Shape {
    pub fn is_probe(self) -> bool {
        matches!(self, Shape::Keepalive | Shape::ZeroWindowProbe)
    }
}

/// Classify `seg`, sent by the side whose state is `sender`, to the side whose
/// state is `peer`; both as they were before `seg`.
pub fn classify(sender: &Half, peer: &Half, seg: &Segment, now: Micros) -> Shape {
    classify_placed(sender, peer, seg, now, place(sender, peer, seg))
}

/// [`classify`], with the segment's [`place`] against the same state
/// already known: the engine needs the place first, to resynchronise.
#[inline]
pub fn classify_placed(
    sender: &Half,
    peer: &Half,
    seg: &Segment,
    now: Micros,
    place: Place,
) -> Shape {
    if is_copy(sender, seg, now) {
        return Shape::Copy;
    }
    if place == Place::Unacceptable {
        return Shape::Unacceptable;
    }
    if seg.payload_len > 1 || seg.has(flags::SYN | flags::FIN | flags::RST) || !seg.has(flags::ACK)
    {
        return Shape::Other;
    }
    // A byte mapped to the MPTCP data stream is data, even when the subflow
    // has already had it acknowledged (the redundant scheduler re-sends).
    if seg.payload_len == 1 && seg.mptcp_data {
        return Shape::Other;
    }
    let peer_window_zero = peer.window() == Some(0);
    if peer_window_zero && is_zero_window_probe(sender, peer, seg) {
        return Shape::ZeroWindowProbe;
    }
    // `next_seq` already reaches the peer's ACK where segments were missed, so
    // it stands in for the peer's ACK when this side was not seen before.
    let Some(next) = sender.next_seq().or(peer.ack()) else {
        return Shape::Other;
    };
    if seg.seq != next.wrapping_sub(1) {
        return Shape::Other;
    }
    // After its FIN a side's next seq is FIN + 1, and "next - 1" is the FIN's
    // own number. Linux keeps probing a half-closed connection from there
    // (FIN_WAIT2 with the socket still open: `tcp_keepalive_timer` runs in
    // every state but CLOSE and SYN_SENT), while its other ACKs carry FIN + 1.
    // A stack that sent those ACKs at the FIN's number would be acknowledging
    // something (the peer's data or FIN); a probe acknowledges nothing new.
    if sender.fin() && sender.ack() != Some(seg.ack) {
        return Shape::Other;
    }
    // The peer must have acknowledged everything: otherwise a 1-byte segment at
    // next - 1 is the resend of a byte the peer never got.
    if peer.ack().is_some_and(|ack| ack != next) {
        return Shape::Other;
    }
    if peer_window_zero {
        return Shape::ZeroWindowProbe;
    }
    Shape::Keepalive
}

/// Linux probes a zero window with 0 bytes at snd_una - 1 (`tcp_xmit_probe_skb`);
/// other stacks push 1 new byte at snd_nxt into the closed window.
fn is_zero_window_probe(sender: &Half, peer: &Half, seg: &Segment) -> bool {
    match seg.payload_len {
        0 => peer.ack() == Some(seg.seq.wrapping_add(1)),
        _ => sender.next_seq() == Some(seg.seq) && peer.ack() == Some(seg.seq),
    }
}

/// Farther than this from where a side stands, a sequence or
/// acknowledgment number is outside any window a receiver offers in
/// practice (64 MiB: Linux's largest default receive buffer is 6 MiB, 32 MiB
/// with tuning).
pub const MAX_AHEAD: u32 = 1 << 26;

/// More than `MAX_AHEAD` from `reference`, either way: ahead is beyond any
/// window, behind is older than anything a stack still resends.
fn far(x: u32, reference: u32) -> bool {
    x.wrapping_sub(reference).min(reference.wrapping_sub(x)) > MAX_AHEAD
}

/// Where a segment stands against its connection's numbers.
///
/// Out of place is a segment whose SEQ is far from its sender's next
/// sequence number, or whose ACK is far from everything the other side
/// sent: the receiver drops it (RFC 9293 3.10.7.4: "If the ACK acks
/// something not yet sent ... drop the segment"), so it says nothing about
/// either side. Such segments are forged (`kaprobe poke` asks our own kernel
/// for its numbers with one, attackers inject them) or belong to a new
/// connection on the same ports.
///
/// A capture with a gap can make a real stream jump far ahead too, so a
/// segment that continues the previous out-of-place one from the same side
/// is taken as the stream's new position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// Near what both sides have sent: nearly every segment.
    InStream,
    /// Out of place, but continuing where the previous unacceptable segment
    /// from this side left off: the state it contradicts is the wrong one (a
    /// forged segment came first, or the capture has a gap), and `flow`
    /// starts this side again from it.
    Resync,
    /// Out of place, and the receiver drops it.
    Unacceptable,
}

/// The segment's [`Place`]. Every segment asks, once.
#[inline]
pub fn place(sender: &Half, peer: &Half, seg: &Segment) -> Place {
    if !out_of_place(sender, peer, seg) {
        Place::InStream
    } else if continues_doubt(sender, seg) {
        Place::Resync
    } else {
        Place::Unacceptable
    }
}

fn out_of_place(sender: &Half, peer: &Half, seg: &Segment) -> bool {
    if seg.has(flags::SYN) {
        return false;
    }
    let seq_far = sender.next_seq().is_some_and(|n| far(seg.seq, n));
    let ack_far = seg.has(flags::ACK) && peer.next_seq().is_some_and(|n| far(seg.ack, n));
    seq_far || ack_far || is_foreign(sender, peer, seg)
}

fn continues_doubt(sender: &Half, seg: &Segment) -> bool {
    sender.doubt().is_some_and(|(end, ack)| {
        !far(seg.seq, end) && (!seg.has(flags::ACK) || !far(seg.ack, ack))
    })
}

/// A segment without timestamps from a side whose stack sends them, at
/// numbers that are not the side's own: someone else's (`kaprobe poke`'s
/// learning ACK, an injected segment). At its own numbers it may well be
/// the stack's: BSD and macOS send keepalive probes (`tcp_respond`) without
/// timestamps, at SND.NXT - 1.
fn is_foreign(sender: &Half, peer: &Half, seg: &Segment) -> bool {
    let seq_own = sender
        .next_seq()
        .is_some_and(|n| seg.seq == n || seg.seq == n.wrapping_sub(1));
    let ack_own = !seg.has(flags::ACK) || peer.next_seq() == Some(seg.ack);
    sender.timestamps() && seg.lacks_timestamp() && !seg.has(flags::RST) && !(seq_own && ack_own)
}

fn is_copy(sender: &Half, seg: &Segment, now: Micros) -> bool {
    sender
        .last_time()
        .is_some_and(|t| now.wrapping_sub(t) < COPY_WINDOW && now >= t)
        && sender.last_print == Fingerprint::of(seg)
}

/// Header prediction (Jacobson's, as in 4.4BSD `tcp_input` and Linux
/// `tcp_rcv_established`): most segments of an open connection are the next
/// in order from a side whose state holds no surprise. For such a segment
/// the rules above can only say `Shape::Other` at `Place::InStream`, and its
/// whole effect is [`crate::flow::Flow::advance`]. True only when that is
/// certain; anything else (a side not seen yet, SYN, FIN, RST, a resend, a
/// 1-byte segment, a zero window, a copy, a segment far from the stream or
/// without the timestamps its side sends) goes through [`place`] and
/// [`classify_placed`], which stay the rules. The engine's property test
/// feeds random conversations through both and requires the same output.
///
/// `print` is `Fingerprint::of(seg)`; the caller needs it for the update too.
#[inline]
pub fn predict(sender: &Half, peer: &Half, seg: &Segment, print: Fingerprint, now: Micros) -> bool {
    let ack_only = flags::SYN | flags::FIN | flags::RST | flags::ACK;
    if seg.flags & ack_only != flags::ACK {
        return false;
    }
    let (Some(next), Some(peer_next)) = (sender.next_seq(), peer.next_seq()) else {
        return false;
    };
    // A resend in progress ends, in state kept off the hot path, when the
    // ACK moves; and new data sent during one is marked there.
    if peer.resending() || sender.resending() {
        return false;
    }
    // `out_of_place`, with `is_foreign` ruled out by the timestamp check.
    if far(seg.seq, next) || far(seg.ack, peer_next) || (sender.timestamps() && seg.tsval.is_none())
    {
        return false;
    }
    let recent = sender
        .last_time()
        .is_some_and(|t| now.wrapping_sub(t) < COPY_WINDOW && now >= t);
    if recent && sender.last_print == print {
        return false;
    }
    match seg.payload_len {
        // A pure ACK, not at next - 1 and not towards a zero window: no probe.
        0 => seg.seq != next.wrapping_sub(1) && peer.window() != Some(0),
        1 => false,
        // New data (reaching past `next`): not a resend.
        n => seq_after(seg.seq.wrapping_add(n), next),
    }
}

/// A probe waiting for its answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pending {
    pub shape: Shape,
    pub seq: u32,
    pub time: Micros,
    /// Where the probe was: its file (an index into the files given) and
    /// frame.
    pub file: usize,
    pub frame: u64,
    /// Live: already reported `unanswered` (its grace period ran out), so
    /// an answer now comes late.
    pub reported: bool,
}

/// How a segment from the peer bears on a pending probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// The keepalive was acknowledged: the peer is there.
    Ack,
    /// The peer answered with an RST: it no longer knows the connection.
    Rst,
    /// The zero-window probe was answered, the window still closed.
    ZeroWindowAck,
    /// The peer's window opened: the zero-window probe needs no answer now.
    WindowOpened,
}

/// Does `seg` (from the peer, shaped `shape`) answer the `pending` probe?
pub fn answer(pending: &Pending, seg: &Segment, shape: Shape) -> Option<Answer> {
    if shape != Shape::Other {
        return None;
    }
    if seg.has(flags::RST) {
        return Some(Answer::Rst);
    }
    if !seg.has(flags::ACK) {
        return None;
    }
    match pending.shape {
        // The receiver answers with ACK = RCV.NXT = probe seq + 1; for a
        // 1-byte probe a D-SACK for that byte may ride along.
        Shape::Keepalive => (seg.ack == pending.seq.wrapping_add(1)).then_some(Answer::Ack),
        _ if seg.window != 0 => Some(Answer::WindowOpened),
        _ if seg.payload_len == 0 && !seq_after(pending.seq, seg.ack) => {
            Some(Answer::ZeroWindowAck)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests;
