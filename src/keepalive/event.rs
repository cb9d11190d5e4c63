//! The events the rules produce: the vocabulary of every output.

use std::net::SocketAddr;

use crate::flow::Micros;

/// What happened. The names are the `type` field of the JSON Lines output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    Keepalive,
    KeepaliveAck,
    KeepaliveRst,
    ZeroWindowProbe,
    ZeroWindowProbeAck,
    /// Live only: a probe still unanswered after the grace period.
    Unanswered,
    /// Live only: the prober reset the connection after unanswered probes.
    Dead,
    /// Live only: one side has kept resending data the peer does not
    /// acknowledge. Keepalive cannot fire meanwhile, so no probe will show it.
    Stalled,
    /// Live only: the peer of a `stalled` side acknowledged its data at last.
    Resumed,
}

impl EventKind {
    /// How many kinds there are (the last one's index, plus one).
    pub const COUNT: usize = EventKind::Resumed as usize + 1;

    pub fn name(self) -> &'static str {
        match self {
            EventKind::Keepalive => "keepalive",
            EventKind::KeepaliveAck => "keepalive_ack",
            EventKind::KeepaliveRst => "keepalive_rst",
            EventKind::ZeroWindowProbe => "zero_window_probe",
            EventKind::ZeroWindowProbeAck => "zero_window_probe_ack",
            EventKind::Unanswered => "unanswered",
            EventKind::Dead => "dead",
            EventKind::Stalled => "stalled",
            EventKind::Resumed => "resumed",
        }
    }
}

/// One classified segment.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub kind: EventKind,
    /// Index of the capture file the frame came from (into the list given).
    pub file: usize,
    /// 1-based record number in that file, as tshark numbers frames.
    pub frame: u64,
    pub time: Micros,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub seq: u32,
    pub ack: u32,
    pub len: u32,
    /// For answers: time since the probe, and the probe's frame.
    pub rtt: Option<Micros>,
    pub probe_frame: Option<u64>,
    /// The probe's file, for an answer in another file than its probe's (a
    /// capture rotated between the two; see `probe_frame`).
    pub probe_file: Option<usize>,
    /// For `unanswered` and `dead`: unanswered probes so far, and the idle
    /// and interval inferred from them.
    pub unanswered: Option<u32>,
    pub idle: Option<Micros>,
    pub interval: Option<Micros>,
    /// For `stalled` and `resumed`: segments resent since the peer's ACK
    /// last moved, and when the first of them was sent.
    pub resends: Option<u32>,
    pub since: Option<Micros>,
    /// For `stalled`: nothing came from the peer since the first resend (a
    /// peer gone, or a path dropping everything), rather than segments that
    /// do not acknowledge the data (loss the peer keeps reporting).
    pub peer_silent: Option<bool>,
    /// For `unanswered`, `dead` and `stalled`: whether any packet from the
    /// peer was captured on the connection. None was: the peer has been silent since
    /// before the capture began, or the capture misses that direction (a
    /// `src host` filter, another path), and then the probes may well be
    /// answered out of sight.
    pub peer_captured: Option<bool>,
    /// For `stalled`: whether the peer's ACK in the capture covers all that
    /// was resent (then its ACKs are lost between the capture point and the
    /// sender's TCP); unknown with no packet from the peer captured.
    pub peer_acked: Option<bool>,
    /// For `stalled`: the sender's FIN is among what is unacknowledged (it
    /// counts one in `len`, as sequence numbers count it).
    pub fin: Option<bool>,
    /// Live, for an answer: its probe was reported `unanswered` before it
    /// came (a round trip longer than `--grace`).
    pub late: bool,
}

impl Event {
    /// Whether the event says that something is wrong, or was: what `-q`
    /// prints. An answer that comes late ends an `unanswered` it printed.
    pub fn needs_attention(&self) -> bool {
        use EventKind::*;
        match self.kind {
            KeepaliveRst | Unanswered | Dead | Stalled | Resumed => true,
            KeepaliveAck => self.late,
            Keepalive | ZeroWindowProbe | ZeroWindowProbeAck => false,
        }
    }

    /// A `kind` event from `src` to `dst`, with every number 0 and every
    /// optional field empty: the caller fills in what its kind carries.
    pub fn new(kind: EventKind, src: SocketAddr, dst: SocketAddr) -> Event {
        Event {
            kind,
            file: 0,
            frame: 0,
            time: 0,
            src,
            dst,
            seq: 0,
            ack: 0,
            len: 0,
            rtt: None,
            probe_frame: None,
            probe_file: None,
            unanswered: None,
            idle: None,
            interval: None,
            resends: None,
            since: None,
            peer_silent: None,
            peer_captured: None,
            peer_acked: None,
            fin: None,
            late: false,
        }
    }
}
