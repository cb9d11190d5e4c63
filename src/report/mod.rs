//! Events -> what a person wants to know about each connection: who probes,
//! with what cadence, whether the peer answered, and a verdict.
//!
//! Trusts the engine's tallies; all judgement about what a cadence means lives
//! in [`hints`].

mod hints;
pub mod json;
mod reporter;
mod stamp;
mod stats;
pub mod text;

use std::net::SocketAddr;

pub use reporter::{set_color, Reporter};
pub use stats::{median, Idle, IdleFrom, Outcome, ProberStats};

use crate::engine::Conn;
use crate::flow::{FlowKey, Micros, Side, Stuck};
use crate::wire::VlanTags;

/// The one-word answer per connection. The names are a contract (JSON
/// `verdict`, documented in the README).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    Alive,
    Dead,
    Reset,
    Unanswered,
    Retransmitting,
    NoKeepalive,
}

impl Verdict {
    pub const ALL: [Verdict; 6] = [
        Verdict::Alive,
        Verdict::Dead,
        Verdict::Reset,
        Verdict::Unanswered,
        Verdict::Retransmitting,
        Verdict::NoKeepalive,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Verdict::Alive => "alive",
            Verdict::Dead => "dead",
            Verdict::Reset => "reset",
            Verdict::Unanswered => "unanswered",
            Verdict::Retransmitting => "retransmitting",
            Verdict::NoKeepalive => "no_keepalive",
        }
    }
}

/// One side's probing, summarised.
#[derive(Clone, Debug)]
pub struct ProberReport {
    pub endpoint: SocketAddr,
    /// "client" or "server".
    pub role: &'static str,
    pub stats: ProberStats,
}

impl ProberReport {
    pub fn idle(&self) -> Option<Micros> {
        self.stats.first_idle()
    }

    /// Whose segment [`ProberReport::idle`] was timed from, when known.
    pub fn idle_from(&self) -> Option<IdleFrom> {
        self.idle().map(|_| self.stats.first_idle_from)
    }

    pub fn interval(&self) -> Option<Micros> {
        median(&self.stats.intervals)
    }

    /// Every probe that got no answer (lost and resent ones too), but not one
    /// still in flight when a live capture stopped.
    pub fn unanswered_total(&self) -> u32 {
        let st = &self.stats;
        st.probes - st.acked - st.reset - u32::from(st.in_flight)
    }
}

/// Data one side had in flight and kept resending when the capture ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resending {
    pub endpoint: SocketAddr,
    /// How it is stuck: what the capture shows of the peer's ACK (the
    /// bytes unacknowledged, `Stuck::bytes`).
    pub stuck: Stuck,
    /// The side's FIN is among what the peer has not acknowledged (it
    /// counts one in the bytes, as sequence numbers count it).
    pub fin: bool,
    pub resends: u32,
    pub since: Micros,
}

/// Everything reported about one connection.
#[derive(Clone, Debug)]
pub struct ConnectionReport {
    pub stream: u64,
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub syn_seen: bool,
    pub vlan: VlanTags,
    pub first_file: usize,
    pub first_frame: u64,
    pub first_time: Micros,
    pub last_time: Micros,
    pub packets: u64,
    /// "open", "closed" (FIN both ways) or "reset".
    pub state: &'static str,
    pub zero_window_probes: u32,
    pub probers: Vec<ProberReport>,
    pub resending: Option<Resending>,
    pub verdict: Verdict,
    /// An endpoint of which no packet was captured (the first such, client
    /// side first): silent since before the capture, or out of its sight.
    pub unheard: Option<SocketAddr>,
    pub hints: Vec<String>,
}

impl ConnectionReport {
    pub fn new(key: &FlowKey, conn: &Conn) -> ConnectionReport {
        let client_side = conn.flow.syn_from().unwrap_or_else(|| guess_client(key));
        let role = |side: Side| {
            if side == client_side {
                "client"
            } else {
                "server"
            }
        };
        let probers: Vec<ProberReport> = [client_side, client_side.other()]
            .into_iter()
            .filter_map(|side| {
                let stats = conn.probers()[side as usize].as_deref()?;
                (stats.probes > 0).then(|| ProberReport {
                    endpoint: key.endpoint(side),
                    role: role(side),
                    stats: stats.clone(),
                })
            })
            .collect();
        let zero_window_probes = conn
            .probers()
            .iter()
            .flatten()
            .map(|s| s.zero_window_probes)
            .sum();
        let [a, b] = &conn.flow.half;
        let state = match (conn.flow.reset(), a.fin() && b.fin()) {
            (true, _) => "reset",
            (false, true) => "closed",
            _ => "open",
        };
        let resending = resending(key, conn);
        let verdict = verdict(&probers, resending.as_ref());
        let unheard = [client_side, client_side.other()]
            .into_iter()
            .find(|&side| !conn.flow.half(side).heard())
            .map(|side| key.endpoint(side));
        let mut report = ConnectionReport {
            stream: conn.stream(),
            client: key.endpoint(client_side),
            server: key.endpoint(client_side.other()),
            syn_seen: conn.flow.syn_from().is_some(),
            vlan: key.vlan,
            first_file: conn.first().file,
            first_frame: conn.first().frame,
            first_time: conn.first().time,
            last_time: conn.last_time,
            packets: conn.packets(),
            state,
            zero_window_probes,
            probers,
            resending,
            verdict,
            unheard,
            hints: Vec::new(),
        };
        report.hints = hints::hints(&report);
        report
    }

    /// Whether `conn`'s report would say nothing but that it was there: no
    /// keepalive or zero-window probe from either side and no data being
    /// resent, hence verdict `no_keepalive`, no hints, and not
    /// [`noteworthy`](Self::noteworthy). Cheap, so that the text table can
    /// count such connections without building their reports.
    pub fn quiet(key: &FlowKey, conn: &Conn) -> bool {
        conn.probers().iter().all(Option::is_none) && resending(key, conn).is_none()
    }

    /// Any keepalive activity.
    pub fn has_keepalive(&self) -> bool {
        !self.probers.is_empty()
    }

    /// Worth a row in the default table: keepalive or zero-window probing,
    /// or a verdict other than `no_keepalive` (a connection stuck resending).
    pub fn noteworthy(&self) -> bool {
        self.has_keepalive() || self.zero_window_probes > 0 || self.verdict != Verdict::NoKeepalive
    }
}

/// Without a SYN, the side on the higher port is most likely the client
/// (ephemeral ports sit high, services low).
fn guess_client(key: &FlowKey) -> Side {
    if key.endpoint(Side::Lo).port() >= key.endpoint(Side::Hi).port() {
        Side::Lo
    } else {
        Side::Hi
    }
}

/// A side that ends the capture with unacknowledged data it has resent:
/// keepalive cannot fire then (Linux `tcp_keepalive_timer` re-arms while
/// `packets_out` is non-zero), only TCP_USER_TIMEOUT or tcp_retries2 end it.
fn resending(key: &FlowKey, conn: &Conn) -> Option<Resending> {
    [Side::Lo, Side::Hi].into_iter().find_map(|side| {
        let stuck = conn.flow.stuck(side)?;
        Some(Resending {
            endpoint: key.endpoint(side),
            stuck,
            fin: conn.flow.fin_outstanding(side),
            resends: conn.flow.half(side).resent_since_ack,
            since: conn.resending_since(side).unwrap_or(conn.last_time),
        })
    })
}

/// The latest probing side decides: its last probe answered, reset, given up
/// on, or still waiting.
fn verdict(probers: &[ProberReport], resending: Option<&Resending>) -> Verdict {
    if resending.is_some() {
        return Verdict::Retransmitting;
    }
    let Some(latest) = probers.iter().max_by_key(|p| p.stats.last_probe) else {
        return Verdict::NoKeepalive;
    };
    match latest.stats.outcome {
        Outcome::Acked => Verdict::Alive,
        Outcome::Reset => Verdict::Reset,
        Outcome::GaveUp => Verdict::Dead,
        Outcome::Waiting => Verdict::Unanswered,
    }
}
