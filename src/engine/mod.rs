//! The pipeline `analyze` and `sniff` share: decoded segments -> flow table ->
//! keepalive rules -> events and per-connection reports.
//!
//! Memory grows with the connections alive at once, not with the capture: a
//! connection that closed (FIN both ways, or RST) is reported and dropped once
//! the capture has moved [`CLOSED_LINGER`] past its close, so the stragglers
//! of a close (the last ACK, an answer to the RST) still land on it. Until
//! then it waits in a table of its own, so that the open connections' table
//! stays small (on a host opening hundreds of connections a second, the
//! closed ones outnumber the open ones many times over, and spreading the
//! open ones across their memory made every lookup a cache miss).

use std::collections::VecDeque;

use crate::flow::{Fingerprint, Flow, FlowKey, Micros, Resend, Side, Stuck};
use crate::keepalive::{self, Answer, Event, EventKind, Pending, Place, Shape};
use crate::report::{Idle, IdleFrom, ProberStats};
use crate::wire::{flags, Segment};

/// How long a closed connection stays in the table (capture time).
pub const CLOSED_LINGER: Micros = 30_000_000;

/// How often a live engine looks for connections gone silent.
const SWEEP_EVERY: Micros = 60_000_000;

/// Judgements only a live capture can make, and how long it may remember.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Live {
    /// A probe still unanswered this long after it was sent is `unanswered`.
    pub grace: Micros,
    /// A connection silent this long leaves the table (and is reported).
    pub idle_timeout: Micros,
    /// Data resent this long with no ACK moving is `stalled`.
    pub stall: Micros,
}

impl Live {
    /// From the command line's seconds.
    pub fn from_seconds(grace: f64, stall: f64, idle_timeout: f64) -> Live {
        let micros = |seconds: f64| (seconds * 1e6) as Micros;
        Live {
            grace: micros(grace),
            idle_timeout: micros(idle_timeout),
            stall: micros(stall),
        }
    }
}

/// A probe waiting for its grace period to run out, or a side that began
/// resending, waiting for the stall time to run out.
#[derive(Clone, Copy, Debug)]
struct Waiting {
    /// When the probe or the first resent segment was sent.
    time: Micros,
    /// When the wait began: `time`, or when a side was last looked at and
    /// is waited for again (see [`Engine::judge_resending`]).
    from: Micros,
    key: FlowKey,
    stream: u64,
    side: Side,
    /// Where the probe or the first resent segment was: the capture file
    /// (`analyze --as-live` of several files) and its frame.
    file: usize,
    frame: u64,
}

/// Live: what a segment's sender and its peer were doing about resending
/// before the rules ran, to see what the segment changed. From the halves'
/// bits, which are in the cache already; the cold box is read only while
/// the peer is stalled.
#[derive(Clone, Copy)]
struct Watch {
    resending: bool,
    /// When the peer's run of resending reported `stalled` began, and its
    /// resends so far.
    peer_stalled: Option<(Micros, u32)>,
}

impl Watch {
    fn before(conn: &Conn, side: Side) -> Watch {
        let peer = conn.flow.half(side.other());
        let since = || conn.resending_since(side.other());
        Watch {
            resending: conn.flow.half(side).resending(),
            peer_stalled: peer
                .stalled()
                .then(since)
                .flatten()
                .map(|since| (since, peer.resent_since_ack)),
        }
    }

    /// The `resumed` event when `seg`'s ACK ended the peer's stalled run.
    fn resumed(
        self,
        conn: &Conn,
        at: FrameRef,
        key: &FlowKey,
        side: Side,
        seg: &Segment,
    ) -> Option<Event> {
        let peer = side.other();
        let (since, resends) = self.peer_stalled?;
        if conn.flow.half(peer).stalled() {
            return None;
        }
        Some(Event {
            since: Some(since),
            resends: Some(resends),
            ..segment_event(EventKind::Resumed, at, key, side, seg)
        })
    }

    /// When `side` began resending, if this segment began it.
    fn began_resending(self, conn: &Conn, side: Side) -> Option<Micros> {
        let began = !self.resending && conn.flow.half(side).resending();
        began.then(|| conn.resending_since(side)).flatten()
    }
}

/// Where a segment came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameRef {
    /// Index of the capture file in the list given.
    pub file: usize,
    /// 1-based record number in that file.
    pub frame: u64,
    pub time: Micros,
}

/// What the engine hands to the writers.
#[derive(Debug)]
pub enum Output<'a> {
    Event(&'a Event),
    /// A connection leaving the table, for its report. Lent rather than
    /// reported: most connections only add to the summary's counts, and
    /// building a report for each of those was most of what closing one
    /// cost (see [`crate::report::ConnectionReport::quiet`]).
    Connection(&'a FlowKey, &'a Conn),
}

/// Everything kept about one connection.
///
/// The table holds this inline, and every segment reads and writes it, so it
/// is only what a segment touches: both halves of the flow, the last time
/// and the packet count (152 bytes; with its key, 192 bytes per entry, three
/// cache lines). What a segment rarely needs (the probers' statistics, the
/// probes waiting for an answer, where the connection began) is behind
/// `cold`.
#[derive(Clone, Debug)]
pub struct Conn {
    pub flow: Flow,
    pub last_time: Micros,
    /// The low 32 bits of the packet count (the rest is in `cold`).
    packets: u32,
    /// Bit `side` set: `cold.pending[side]` holds a probe.
    pending: u8,
    cold: Box<Cold>,
}

/// What a segment of a connection rarely reads or writes.
#[derive(Clone, Debug)]
struct Cold {
    /// 0-based index in order of first appearance (as tshark's tcp.stream).
    stream: u64,
    pending: [Option<Pending>; 2],
    probers: [Option<Box<ProberStats>>; 2],
    first: FrameRef,
    closed_at: Option<Micros>,
    /// When each side began resending (see [`Resend`]).
    resend: [Resend; 2],
    /// The packet count above its low 32 bits.
    packets_high: u32,
}

impl Conn {
    fn new(stream: u64, at: FrameRef) -> Conn {
        Conn {
            flow: Flow::default(),
            last_time: at.time,
            packets: 0,
            pending: 0,
            cold: Box::new(Cold {
                stream,
                pending: [None, None],
                probers: [None, None],
                first: at,
                closed_at: None,
                resend: [None, None],
                packets_high: 0,
            }),
        }
    }

    /// 0-based index in order of first appearance (as tshark's tcp.stream).
    pub fn stream(&self) -> u64 {
        self.cold.stream
    }

    /// Where the connection's first segment was.
    pub fn first(&self) -> FrameRef {
        self.cold.first
    }

    pub fn packets(&self) -> u64 {
        u64::from(self.cold.packets_high) << 32 | u64::from(self.packets)
    }

    fn count_packet(&mut self) {
        self.packets = self.packets.wrapping_add(1);
        if self.packets == 0 {
            self.cold.packets_high += 1;
        }
    }

    /// The keepalive statistics of each side, where it probed.
    pub fn probers(&self) -> &[Option<Box<ProberStats>>; 2] {
        &self.cold.probers
    }

    /// When `side` began resending the data it has outstanding, if it is.
    pub fn resending_since(&self, side: Side) -> Option<Micros> {
        self.cold.resend[side as usize]
    }

    /// The probe from `side` waiting for its answer.
    pub fn pending(&self, side: Side) -> Option<Pending> {
        if self.pending & (1 << side as u8) == 0 {
            return None;
        }
        self.cold.pending[side as usize]
    }

    fn set_pending(&mut self, side: Side, p: Option<Pending>) {
        let b = 1 << side as u8;
        if p.is_none() && self.pending & b == 0 {
            return;
        }
        self.pending = if p.is_some() {
            self.pending | b
        } else {
            self.pending & !b
        };
        self.cold.pending[side as usize] = p;
    }

    fn prober(&mut self, side: Side) -> &mut ProberStats {
        self.cold.probers[side as usize].get_or_insert_with(Default::default)
    }

    /// Apply `seg`'s effect on the flow (see [`Flow::update`]).
    fn update_flow(&mut self, side: Side, seg: &Segment, now: Micros, probe: bool) {
        let resend = &mut self.cold.resend;
        self.flow.update(side, seg, now, probe, resend);
    }
}

/// Counters over the whole run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub frames: u64,
    pub segments: u64,
    pub not_tcp: u64,
    pub undecodable: u64,
    /// Of the undecodable frames, those the capture kept only part of: the
    /// snapshot length ended them inside the link, IP or fixed TCP header.
    pub cut_short: u64,
    pub copies: u64,
    /// Segments their receiver would drop unread (`Shape::Unacceptable`).
    pub unacceptable: u64,
    pub connections: u64,
    /// Most connections held in the table at once.
    pub peak_open: u64,
    pub events: [u64; EventKind::COUNT],
    /// Answers to probes already judged `unanswered` (`Event::late`).
    pub late: u64,
}

impl Totals {
    pub fn count(&self, kind: EventKind) -> u64 {
        self.events[kind as usize]
    }
}

/// The connection table and the rules applied to it.
#[derive(Default)]
pub struct Engine {
    /// Open connections: nearly every segment looks here only.
    conns: Table,
    /// Closed connections waiting out [`CLOSED_LINGER`].
    closing: Table,
    /// Closed connections in order of closing: (close time, key, stream).
    closed: VecDeque<(Micros, FlowKey, u64)>,
    pub totals: Totals,
    live: Option<Live>,
    /// Live: probes in the order sent, to judge them unanswered in time.
    waiting: VecDeque<Waiting>,
    /// Live: sides that began resending, in that order, to judge them
    /// stalled in time.
    resending: VecDeque<Waiting>,
    next_sweep: Micros,
    /// The earliest capture time at which `tick` has anything to do, so the
    /// per-segment check is one comparison.
    due: Micros,
    /// Every segment through the general path, without header prediction:
    /// the tests compare the two.
    general_only: bool,
}

impl Engine {
    pub fn new() -> Engine {
        Engine {
            due: Micros::MIN,
            ..Engine::default()
        }
    }

    /// An engine for live traffic: it also judges probes `unanswered` after
    /// the grace period, reports `dead` probers, and forgets silent
    /// connections so a run of days keeps its memory bounded.
    pub fn live(live: Live) -> Engine {
        Engine {
            live: Some(live),
            ..Engine::default()
        }
    }

    /// The capture time from which [`Engine::tick`] has something to do (a
    /// grace period running out, a closed connection to drop, the sweep for
    /// silent ones): a live capture with no packets can sleep until then.
    pub fn due(&self) -> Micros {
        self.due
    }

    /// Connections currently in the table.
    pub fn table_len(&self) -> usize {
        self.conns.len() + self.closing.len()
    }

    fn find_mut(&mut self, key: &FlowKey) -> Option<&mut Conn> {
        match self.conns.get_mut(key) {
            Some(conn) => Some(conn),
            None => self.closing.get_mut(key),
        }
    }

    fn take(&mut self, key: &FlowKey) -> Option<Conn> {
        self.conns.remove(key).or_else(|| self.closing.remove(key))
    }

    /// Feed one decoded segment.
    pub fn segment(&mut self, at: FrameRef, seg: &Segment, out: &mut dyn FnMut(Output)) {
        self.totals.segments += 1;
        if at.time >= self.due {
            self.tick(at.time, out);
        }
        let (key, side) = FlowKey::of(seg);
        if !self.general_only && self.predicted(&key, side, seg, at.time) {
            return;
        }
        self.general(at, seg, key, side, out);
    }

    /// Header prediction: nearly every segment ends here, with the same
    /// effect as [`Engine::general`] (see `keepalive::predict`). Kept apart
    /// from the general path so that this one stays small.
    #[inline]
    fn predicted(&mut self, key: &FlowKey, side: Side, seg: &Segment, now: Micros) -> bool {
        if seg.flags & (flags::SYN | flags::FIN | flags::RST) != 0 {
            return false;
        }
        let Some(conn) = self.conns.get_mut(key) else {
            return false;
        };
        let print = Fingerprint::of(seg);
        let (sender, peer) = (conn.flow.half(side), conn.flow.half(side.other()));
        if conn.pending != 0 || !keepalive::predict(sender, peer, seg, print, now) {
            return false;
        }
        conn.count_packet();
        conn.last_time = now;
        conn.flow.advance(side, seg, print, now);
        true
    }

    /// Every segment the prediction does not take: the rules in full.
    #[inline(never)]
    fn general(
        &mut self,
        at: FrameRef,
        seg: &Segment,
        key: FlowKey,
        side: Side,
        out: &mut dyn FnMut(Output),
    ) {
        // Only closed connections are in `closing`, and a closed one that
        // sees a new SYN is over: report it and start afresh.
        let mut closed = self.closing.get(&key).is_some();
        if closed && seg.has(flags::SYN) && !seg.has(flags::ACK) {
            if let Some(old) = self.closing.remove(&key) {
                out(Output::Connection(&key, &old));
            }
            closed = false;
        }
        let open = self.table_len() as u64 + 1;
        let totals = &mut self.totals;
        let table = if closed {
            &mut self.closing
        } else {
            &mut self.conns
        };
        let conn = table.get_or_insert_with(key, || {
            totals.connections += 1;
            totals.peak_open = totals.peak_open.max(open);
            Conn::new(totals.connections - 1, at)
        });
        conn.count_packet();
        conn.last_time = at.time;
        let live = self.live.is_some();
        let watch = live.then(|| Watch::before(conn, side));
        let shape = step(conn, &key, side, seg, at, live, &mut |e| {
            totals.events[e.kind as usize] += 1;
            totals.late += u64::from(e.late);
            out(Output::Event(e));
        });
        match shape {
            Shape::Copy => totals.copies += 1,
            Shape::Unacceptable => totals.unacceptable += 1,
            _ => {}
        }
        if live && shape == Shape::Keepalive {
            let stream = conn.stream();
            let probe = Waiting {
                time: at.time,
                from: at.time,
                key,
                stream,
                side,
                file: at.file,
                frame: at.frame,
            };
            self.waiting.push_back(probe);
            self.due = self
                .due
                .min(at.time.saturating_add(self.live.map_or(0, |l| l.grace)));
        }
        if let (Some(watch), Some(live)) = (watch, self.live) {
            if let Some(e) = watch.resumed(conn, at, &key, side, seg) {
                totals.events[e.kind as usize] += 1;
                out(Output::Event(&e));
            }
            if let Some(since) = watch.began_resending(conn, side) {
                let began = Waiting {
                    time: since,
                    from: since,
                    key,
                    stream: conn.stream(),
                    side,
                    file: at.file,
                    frame: at.frame,
                };
                self.resending.push_back(began);
                self.due = self.due.min(since.saturating_add(live.stall));
            }
        }
        if conn.flow.closed() && conn.cold.closed_at.is_none() {
            conn.cold.closed_at = Some(at.time);
            self.closed.push_back((at.time, key, conn.stream()));
            self.due = self.due.min(at.time.saturating_add(CLOSED_LINGER));
            if let Some(conn) = self.conns.remove(&key) {
                self.closing.get_or_insert_with(key, || conn);
            }
        }
    }

    /// Let time pass: drop closed connections and, live, judge probes whose
    /// grace ran out and forget connections gone silent.
    pub fn tick(&mut self, now: Micros, out: &mut dyn FnMut(Output)) {
        self.expire(now, out);
        let mut due = self
            .closed
            .front()
            .map_or(Micros::MAX, |c| c.0.saturating_add(CLOSED_LINGER));
        if let Some(live) = self.live {
            self.judge_waiting(now, live.grace, out);
            self.judge_resending(now, live.stall, out);
            if now >= self.next_sweep {
                self.next_sweep = now.saturating_add(SWEEP_EVERY);
                self.forget_silent(now, live.idle_timeout, out);
            }
            let waiting = next_due(&self.waiting, live.grace);
            let resending = next_due(&self.resending, live.stall);
            due = due.min(waiting).min(resending).min(self.next_sweep);
        }
        self.due = due;
    }

    /// Let a capture's clock run up to `now`, as a live one would have:
    /// everything that falls due before it is judged at the moment it falls
    /// due, not at the next packet, which may come a probe interval later.
    ///
    /// Only the judgements are timed so (the sweep for silent connections
    /// and the drop of closed ones wait for the packet), and each waiting
    /// probe or side at most once a call: a side still resending is looked
    /// at again after every `--stall-after`, which over a jump of years in
    /// a corrupt file's timestamps would be millions of looks at nothing new.
    pub fn advance(&mut self, now: Micros, out: &mut dyn FnMut(Output)) {
        let Some(live) = self.live else {
            return;
        };
        let mut looks = self.waiting.len() + self.resending.len();
        while looks > 0 {
            let waiting = next_due(&self.waiting, live.grace);
            let due = waiting.min(next_due(&self.resending, live.stall));
            if due >= now {
                break;
            }
            self.tick(due, out);
            looks -= 1;
        }
    }

    fn judge_waiting(&mut self, now: Micros, grace: Micros, out: &mut dyn FnMut(Output)) {
        while let Some(w) = pop_due(&mut self.waiting, now, grace) {
            let Some(conn) = self.find_mut(&w.key).filter(|c| c.stream() == w.stream) else {
                continue;
            };
            let Some(p) = conn.pending(w.side).filter(|p| p.frame == w.frame) else {
                continue;
            };
            let probe = FrameRef {
                file: w.file,
                frame: w.frame,
                time: now,
            };
            let Some(e) = unanswered(conn, &w.key, w.side, probe) else {
                continue;
            };
            // An answer that still comes is then said to be late (`step`).
            let reported = Pending {
                reported: true,
                ..p
            };
            conn.set_pending(w.side, Some(reported));
            self.totals.events[e.kind as usize] += 1;
            out(Output::Event(&e));
        }
    }

    /// Sides still resending, without the ACK having moved, `stall` after
    /// they began: one `stalled` event for each such run of resending.
    ///
    /// With no packet from the peer captured, a side that has resent only
    /// once is not stuck yet (see [`Flow::stuck`]); as long as it sends
    /// nothing new it is looked at again after another `stall`, so that a
    /// capture started late in a stall (resends minutes apart) still gets it.
    fn judge_resending(&mut self, now: Micros, stall: Micros, out: &mut dyn FnMut(Output)) {
        let mut again = Vec::new();
        while let Some(w) = pop_due(&mut self.resending, now, stall) {
            let Some(conn) = self.find_mut(&w.key).filter(|c| c.stream() == w.stream) else {
                continue;
            };
            if conn.resending_since(w.side) != Some(w.time) {
                continue;
            }
            let stuck = conn
                .flow
                .stuck(w.side)
                .filter(|&s| s != Stuck::Unheard || !resends_stopped(conn, w.side, now));
            let Some(stuck) = stuck else {
                if conn.flow.may_stick(w.side) {
                    again.push(Waiting { from: now, ..w });
                }
                continue;
            };
            conn.flow.half_mut(w.side).set_stalled();
            let e = stalled(now, &w, conn, stuck);
            self.totals.events[e.kind as usize] += 1;
            out(Output::Event(&e));
        }
        self.resending.extend(again);
    }

    fn forget_silent(&mut self, now: Micros, timeout: Micros, out: &mut dyn FnMut(Output)) {
        let mut silent: Vec<(u64, FlowKey)> = self
            .conns
            .iter()
            .chain(self.closing.iter())
            .filter(|(_, c)| now.saturating_sub(c.last_time) >= timeout)
            .map(|(k, c)| (c.stream(), *k))
            .collect();
        // In order of appearance, as `finish` reports: the table's own order
        // changes from run to run (its hasher is seeded at random).
        silent.sort_unstable_by_key(|&(stream, _)| stream);
        for (_, key) in silent {
            if let Some(conn) = self.take(&key) {
                out(Output::Connection(&key, &conn));
            }
        }
    }

    /// Report and drop connections closed more than [`CLOSED_LINGER`] ago.
    fn expire(&mut self, now: Micros, out: &mut dyn FnMut(Output)) {
        while let Some(&(closed, key, stream)) = self.closed.front() {
            if now.saturating_sub(closed) < CLOSED_LINGER {
                break;
            }
            self.closed.pop_front();
            if self.closing.get(&key).is_some_and(|c| c.stream() == stream) {
                if let Some(conn) = self.closing.remove(&key) {
                    out(Output::Connection(&key, &conn));
                }
            }
        }
        // A burst of connections grows the table; give the memory back once
        // most of them are gone (the map never shrinks by itself).
        for table in [&mut self.conns, &mut self.closing] {
            if table.capacity() > 4 * table.len() + 4096 {
                table.shrink_to(2 * table.len());
            }
        }
    }

    /// Report every connection still in the table, in order of appearance.
    /// `now` is when a live capture stopped: probes sent within the grace
    /// period before it are in flight, not unanswered.
    pub fn finish(&mut self, now: Micros, out: &mut dyn FnMut(Output)) {
        let grace = self.live.map_or(Micros::MIN, |l| l.grace);
        let mut rest: Vec<(FlowKey, Conn)> =
            self.conns.drain().chain(self.closing.drain()).collect();
        for (_, conn) in rest.iter_mut() {
            for side in [Side::Lo, Side::Hi] {
                let young = conn.pending(side).is_some_and(|p| {
                    p.shape == Shape::Keepalive && now.saturating_sub(p.time) < grace
                });
                if young {
                    conn.prober(side).in_flight();
                }
            }
        }
        rest.sort_unstable_by_key(|(_, c)| c.stream());
        for (key, conn) in rest {
            out(Output::Connection(&key, &conn));
        }
        self.closed.clear();
        self.waiting.clear();
        self.resending.clear();
    }
}

/// A side stuck [unheard](Stuck::Unheard) whose resends stopped for longer
/// than its backoff allows: its ACK came out of sight (a loss it recovered
/// from at the end of what it had to send), not a stall. Linux
/// doubles the wait between resends, so the next one is due about the whole
/// span of resending so far after the last, plus one timeout (200 ms at
/// least: a second is allowed).
fn resends_stopped(conn: &Conn, side: Side, now: Micros) -> bool {
    let last = conn.flow.half(side).last_time();
    let (Some(began), Some(last)) = (conn.resending_since(side), last) else {
        return false;
    };
    let span = last.saturating_sub(began);
    now.saturating_sub(last) > span.saturating_mul(2).saturating_add(RESEND_ROOM)
}

/// See [`resends_stopped`].
const RESEND_ROOM: Micros = 1_000_000;

/// The first of `queue` (in order of time) if it is `after` old at `now`.
fn pop_due(queue: &mut VecDeque<Waiting>, now: Micros, after: Micros) -> Option<Waiting> {
    let w = *queue.front()?;
    if now.saturating_sub(w.from) < after {
        return None;
    }
    queue.pop_front()
}

/// When the first of `queue` will be `after` old.
fn next_due(queue: &VecDeque<Waiting>, after: Micros) -> Micros {
    queue
        .front()
        .map_or(Micros::MAX, |w| w.from.saturating_add(after))
}

/// A live judgement about one prober: what it has shown so far.
fn judgement(kind: EventKind, key: &FlowKey, side: Side, stats: &ProberStats) -> Event {
    Event {
        time: stats.last_probe,
        idle: stats.first_idle(),
        interval: crate::report::median(&stats.intervals),
        ..Event::new(kind, key.endpoint(side), key.endpoint(side.other()))
    }
}

/// Whether any packet from the peer of `side` was captured on `conn`.
fn peer_captured(conn: &Conn, side: Side) -> bool {
    conn.flow.half(side.other()).heard()
}

/// The `stalled` event for the side of `conn` that `w` names, `stuck` as it
/// is: `seq` is the first byte the peer has not acknowledged, `len` the bytes
/// from there on.
fn stalled(now: Micros, w: &Waiting, conn: &Conn, stuck: Stuck) -> Event {
    let (me, peer) = (conn.flow.half(w.side), conn.flow.half(w.side.other()));
    let (src, dst) = (w.key.endpoint(w.side), w.key.endpoint(w.side.other()));
    Event {
        file: w.file,
        frame: w.frame,
        time: now,
        seq: peer.ack().unwrap_or(0),
        ack: me.ack().unwrap_or(0),
        len: stuck.bytes().unwrap_or(0),
        resends: Some(me.resent_since_ack),
        since: Some(w.time),
        peer_silent: Some(peer.last_time().is_none_or(|t| t < w.time)),
        peer_captured: Some(peer_captured(conn, w.side)),
        peer_acked: stuck.peer_acked(),
        fin: Some(conn.flow.fin_outstanding(w.side)),
        ..Event::new(EventKind::Stalled, src, dst)
    }
}

/// The event `seg` (sent by `side` of `key`) makes.
///
/// A function rather than a closure in `step`: the closure's captures were
/// stored for every segment, although one in hundreds makes an event.
#[cold]
fn segment_event(kind: EventKind, at: FrameRef, key: &FlowKey, side: Side, seg: &Segment) -> Event {
    Event {
        file: at.file,
        frame: at.frame,
        time: at.time,
        seq: seg.seq,
        ack: seg.ack,
        len: seg.payload_len,
        ..Event::new(kind, key.endpoint(side), key.endpoint(side.other()))
    }
}

/// How long `side` of `flow` had been idle when it sent a probe at `now`.
/// Linux times keepalive from the last segment it received: the peer's
/// last one that was not a probe. With nothing from the peer captured (a
/// capture of one direction), from the prober's own last segment instead,
/// which is at most a round trip plus a delayed ACK away from it.
fn idle_before(flow: &Flow, side: Side, now: Micros) -> Option<Idle> {
    let peer = flow.half(side.other());
    let (last, from) = match peer.last_nonprobe() {
        Some(t) => (t, IdleFrom::Peer),
        None if !peer.heard() => (flow.half(side).last_nonprobe()?, IdleFrom::Prober),
        None => return None,
    };
    Some(Idle {
        micros: now - last,
        from,
    })
}

/// Apply the rules to one segment of `conn` sent by `side`.
fn step(
    conn: &mut Conn,
    key: &FlowKey,
    side: Side,
    seg: &Segment,
    at: FrameRef,
    live: bool,
    emit: &mut dyn FnMut(&Event),
) -> Shape {
    let peer = side.other();
    let mut place = keepalive::place(conn.flow.half(side), conn.flow.half(peer), seg);
    if place == Place::Resync {
        conn.flow.rebase(side, seg);
        // Against the new state the segment is never a resync again (the
        // doubt it continued is gone), but it may still be unacceptable.
        place = keepalive::place(conn.flow.half(side), conn.flow.half(peer), seg);
    }
    let (sender, receiver) = (conn.flow.half(side), conn.flow.half(peer));
    let shape = keepalive::classify_placed(sender, receiver, seg, at.time, place);
    if shape == Shape::Copy {
        return shape;
    }
    if shape == Shape::Unacceptable {
        let end = seg.seq.wrapping_add(seg.seq_len());
        conn.flow.half_mut(side).set_doubt(Some((end, seg.ack)));
        return shape;
    }
    conn.flow.half_mut(side).set_doubt(None);
    let event = |kind| segment_event(kind, at, key, side, seg);
    // Does this segment answer the peer's probe?
    if let Some(p) = conn.pending(peer) {
        if let Some(answer) = keepalive::answer(&p, seg, shape) {
            conn.set_pending(peer, None);
            let rtt = at.time - p.time;
            let kind = match (answer, p.shape) {
                (Answer::Ack, _) => {
                    conn.prober(peer).acked(rtt);
                    Some(EventKind::KeepaliveAck)
                }
                (Answer::Rst, Shape::Keepalive) => {
                    conn.prober(peer).reset(rtt);
                    Some(EventKind::KeepaliveRst)
                }
                (Answer::ZeroWindowAck, _) => Some(EventKind::ZeroWindowProbeAck),
                _ => None,
            };
            if let Some(kind) = kind {
                emit(&Event {
                    rtt: Some(rtt),
                    probe_frame: Some(p.frame),
                    probe_file: Some(p.file).filter(|&f| f != at.file),
                    late: p.reported,
                    ..event(kind)
                });
            }
        }
    }
    match shape {
        Shape::Keepalive => {
            let idle = match conn.pending(side) {
                Some(_) => None,
                None => idle_before(&conn.flow, side, at.time),
            };
            if live {
                judge_given_up(conn, key, side, at, emit);
            }
            let (len, byte) = (seg.payload_len, seg.first_byte);
            conn.prober(side).probe(at.time, idle, len, byte);
            emit(&event(EventKind::Keepalive));
        }
        Shape::ZeroWindowProbe => {
            conn.prober(side).zero_window_probes += 1;
            emit(&event(EventKind::ZeroWindowProbe));
        }
        _ => {
            if seg.has(flags::RST) {
                if live {
                    judge_given_up(conn, key, side, at, emit);
                }
                let captured = peer_captured(conn, side);
                let heard = conn.flow.half(side.other()).last_time();
                if let Some(stats) = conn.cold.probers[side as usize].as_mut() {
                    if stats.prober_reset(at.time, heard) && live {
                        emit(&Event {
                            time: at.time,
                            frame: at.frame,
                            file: at.file,
                            unanswered: stats.gave_up_after,
                            peer_captured: Some(captured),
                            ..judgement(EventKind::Dead, key, side, stats)
                        });
                    }
                }
            }
        }
    }
    conn.set_pending(
        side,
        shape.is_probe().then_some(Pending {
            shape,
            seq: seg.seq,
            time: at.time,
            file: at.file,
            frame: at.frame,
            reported: false,
        }),
    );
    conn.update_flow(side, seg, at.time, shape.is_probe());
    shape
}

/// The prober's next probe, or its RST, says that its pending probe went
/// unanswered. That is judged on the clock after `--grace`, unless the
/// grace is longer than the prober's interval: then it is judged here, when
/// the prober itself stopped waiting.
fn judge_given_up(
    conn: &Conn,
    key: &FlowKey,
    side: Side,
    at: FrameRef,
    emit: &mut dyn FnMut(&Event),
) {
    let waiting = conn.pending(side);
    let Some(p) = waiting.filter(|p| p.shape == Shape::Keepalive && !p.reported) else {
        return;
    };
    let probe = FrameRef {
        file: p.file,
        frame: p.frame,
        time: at.time,
    };
    if let Some(e) = unanswered(conn, key, side, probe) {
        emit(&e);
    }
}

/// The `unanswered` event for the probe of `side` at `probe`'s file and
/// frame, judged at `probe.time`.
fn unanswered(conn: &Conn, key: &FlowKey, side: Side, probe: FrameRef) -> Option<Event> {
    let stats = conn.probers()[side as usize].as_deref()?;
    Some(Event {
        time: probe.time,
        file: probe.file,
        frame: probe.frame,
        unanswered: Some(stats.run),
        probe_frame: Some(probe.frame),
        peer_captured: Some(peer_captured(conn, side)),
        ..judgement(EventKind::Unanswered, key, side, stats)
    })
}

impl Engine {
    /// Decode one captured frame and feed it; frames that are not TCP are
    /// only counted. `wire_len` is the packet's length on the wire, above
    /// `data.len()` when the snapshot length cut it short.
    pub fn frame(
        &mut self,
        at: FrameRef,
        link: crate::wire::LinkType,
        data: &[u8],
        wire_len: u32,
        out: &mut dyn FnMut(Output),
    ) {
        self.totals.frames += 1;
        // Matched by reference: moving the segment out of the result would
        // copy its 96 bytes once more for every frame.
        match &crate::wire::decode(link, data) {
            Ok(Some(seg)) => self.segment(at, seg, out),
            Ok(None) => self.totals.not_tcp += 1,
            Err(_) => self.undecodable(data.len(), wire_len),
        }
    }

    #[cold]
    fn undecodable(&mut self, captured: usize, wire_len: u32) {
        self.totals.undecodable += 1;
        if captured < wire_len as usize {
            self.totals.cut_short += 1;
        }
    }
}

mod table;

use table::Table;

#[cfg(test)]
mod tests;
