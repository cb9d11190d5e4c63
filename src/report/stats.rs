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

    /// The prober sent an RST; after unanswered probes that is giving up.
    /// Returns whether it gave up just now.
    pub fn prober_reset(&mut self) -> bool {
        let gives_up = self.run > 0 && self.outcome == Outcome::Waiting;
        if gives_up {
            self.gave_up_after = Some(self.run);
            self.outcome = Outcome::GaveUp;
        }
        gives_up
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
