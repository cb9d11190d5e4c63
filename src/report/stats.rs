//! Per-prober tallies, fed one event at a time while the capture streams.

use crate::flow::Micros;

/// How the latest probe of one side ended, so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Outcome {
    /// Waiting for an answer (or none came before the capture ended).
    #[default]
    Waiting,
    Acked,
    Reset,
    /// The prober sent its own RST after unanswered probes: it gave up.
    GaveUp,
}

/// The idle time before a probe, and whose segment it was timed from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Idle {
    pub micros: Micros,
    pub from: IdleFrom,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum IdleFrom {
    /// The peer's last segment that was not a probe, as Linux times it.
    #[default]
    Peer,
    /// The prober's own last segment: nothing from the peer was captured.
    Prober,
}

impl IdleFrom {
    pub fn name(self) -> &'static str {
        match self {
            IdleFrom::Peer => "peer",
            IdleFrom::Prober => "prober",
        }
    }
}

/// What one side's keepalive probes showed.
#[derive(Clone, Debug, Default)]
pub struct ProberStats {
    pub probes: u32,
    pub acked: u32,
    pub reset: u32,
    /// Probes since the last answer: the trailing unanswered run.
    pub run: u32,
    /// Idle before the first probe of each run, where the peer's last
    /// non-probe segment was seen (an estimate of TCP_KEEPIDLE).
    pub idles: Vec<Micros>,
    /// The very first probe came after idle that the capture did not see.
    pub first_idle_unknown: bool,
    /// Whose segment the first idle was timed from.
    pub first_idle_from: IdleFrom,
    /// Time between a probe left unanswered and the next one (TCP_KEEPINTVL).
    pub intervals: Vec<Micros>,
    pub rtts: Vec<Micros>,
    /// Probe sizes seen: index 0 for 0-byte, 1 for 1-byte probes.
    pub sizes: [u32; 2],
    /// The byte a 1-byte probe carried (the first one seen).
    pub probe_byte: Option<u8>,
    /// Unanswered probes before the prober's own RST (TCP_KEEPCNT).
    pub gave_up_after: Option<u32>,
    /// When it gave up, and when it last heard from the peer before that:
    /// Linux also gives up on TCP_USER_TIMEOUT since the peer was heard.
    pub gave_up_at: Option<Micros>,
    pub heard_before_rst: Option<Micros>,
    pub first_probe: Micros,
    pub last_probe: Micros,
    pub outcome: Outcome,
    /// How the probing before the current unanswered run ended.
    pub prev_outcome: Outcome,
    /// Live: the last probe was sent too recently to call it unanswered.
    pub in_flight: bool,
    pub zero_window_probes: u32,
}

impl ProberStats {
    /// A keepalive probe, and the idle before it when known.
    pub fn probe(&mut self, now: Micros, idle: Option<Idle>, len: u32, byte: Option<u8>) {
        if self.probes == 0 {
            self.first_probe = now;
            self.first_idle_unknown = idle.is_none();
            self.first_idle_from = idle.map_or(IdleFrom::Peer, |i| i.from);
        }
        if self.run > 0 {
            self.intervals.push(now - self.last_probe);
        } else if let Some(idle) = idle {
            self.idles.push(idle.micros);
        }
        self.probes += 1;
        self.run += 1;
        self.sizes[usize::from(len > 0)] += 1;
        if len > 0 && self.probe_byte.is_none() {
            self.probe_byte = byte;
        }
        self.last_probe = now;
        if self.outcome != Outcome::Waiting {
            self.prev_outcome = self.outcome;
        }
        self.outcome = Outcome::Waiting;
    }

    /// Live capture ended with the last probe younger than the grace period:
    /// it is in flight, not unanswered.
    pub fn in_flight(&mut self) {
        if self.outcome == Outcome::Waiting && self.run > 0 {
            self.run -= 1;
            self.in_flight = true;
            if self.run == 0 {
                self.outcome = self.prev_outcome;
            }
        }
    }

    pub fn acked(&mut self, rtt: Micros) {
        self.acked += 1;
        self.rtts.push(rtt);
        self.run = 0;
        self.outcome = Outcome::Acked;
    }

    pub fn reset(&mut self, rtt: Micros) {
        self.reset += 1;
        self.rtts.push(rtt);
        self.run = 0;
        self.outcome = Outcome::Reset;
    }

    /// The prober sent an RST at `now`, last having heard from its peer at
    /// `heard`; after unanswered probes that is giving up. Returns whether
    /// it gave up just now.
    pub fn prober_reset(&mut self, now: Micros, heard: Option<Micros>) -> bool {
        let gives_up = self.run > 0 && self.outcome == Outcome::Waiting;
        if gives_up {
            self.gave_up_after = Some(self.run);
            self.gave_up_at = Some(now);
            self.heard_before_rst = heard;
            self.outcome = Outcome::GaveUp;
        }
        gives_up
    }

    /// The TCP_USER_TIMEOUT that would also explain the RST, in microseconds
    /// since the peer was last heard: above the time at the last probe
    /// (Linux would have given up there, had it been reached, unless that
    /// probe was the first of the run) and at most the time at the RST.
    /// Linux checks it only on its keepalive timer, with probes out
    /// (`tcp_keepalive_timer`); 1-byte probes are not Linux's.
    pub fn user_timeout_window(&self) -> Option<(Option<Micros>, Micros)> {
        let (run, at, heard) = (
            self.gave_up_after?,
            self.gave_up_at?,
            self.heard_before_rst?,
        );
        // Out of order (a capture whose clock stepped back): no window.
        if heard >= self.last_probe || at < self.last_probe || self.sizes[1] > 0 {
            return None;
        }
        let above = (run >= 2).then(|| self.last_probe.saturating_sub(heard));
        Some((above, at.saturating_sub(heard)))
    }

    /// Idle before the first probe, if the capture saw the peer's last segment.
    pub fn first_idle(&self) -> Option<Micros> {
        if self.first_idle_unknown {
            None
        } else {
            self.idles.first().copied()
        }
    }
}

/// Median of a list of durations (the lower middle for even counts).
pub fn median(values: &[Micros]) -> Option<Micros> {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    sorted.get(sorted.len().saturating_sub(1) / 2).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Micros = 1_000_000;

    /// Probes at 2, 3 and 4 s, unanswered, the peer last heard at 1 s, the
    /// prober's RST at `rst`.
    fn gave_up(probes: u32, heard: Option<Micros>, rst: Micros) -> ProberStats {
        let mut st = ProberStats::default();
        for i in 0..probes {
            st.probe((2 + Micros::from(i)) * SEC, None, 0, None);
        }
        assert!(st.prober_reset(rst, heard));
        st
    }

    #[test]
    fn user_timeout_lies_between_the_last_probe_and_the_rst() {
        let st = gave_up(3, Some(SEC), 5 * SEC);
        assert_eq!(st.user_timeout_window(), Some((Some(3 * SEC), 4 * SEC)));
    }

    /// At the first probe of a run Linux has no probe out yet, so the
    /// timeout cannot have ended it there: only the upper bound holds.
    #[test]
    fn after_one_probe_only_the_upper_bound_is_known() {
        let st = gave_up(1, Some(SEC), 3 * SEC);
        assert_eq!(st.user_timeout_window(), Some((None, 2 * SEC)));
    }

    #[test]
    fn no_window_without_the_peer_heard_before_the_probes() {
        assert_eq!(gave_up(3, None, 5 * SEC).user_timeout_window(), None);
        assert_eq!(
            gave_up(3, Some(4 * SEC), 5 * SEC).user_timeout_window(),
            None
        );
    }
}
