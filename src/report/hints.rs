//! What the evidence suggests: which stack's cadence the probes match, and
//! whether the idle before the first probe outlasts common middlebox timers.
//! Each hint says what was measured, so a reader can judge it.

use super::text::{counted, unacked};
use super::{ConnectionReport, IdleFrom, ProberReport, Verdict};
use crate::flow::{Micros, Stuck};

/// Idle timeouts of common middleboxes, shortest first, in seconds.
const MIDDLEBOXES: [(f64, &str); 3] = [
    (240.0, "Azure Load Balancer (4 min)"),
    (350.0, "AWS NLB / NAT gateway (350 s)"),
    (600.0, "GCP firewall connection tracking (10 min)"),
];

/// Known keepalive cadences: (idle s, interval s, what sets it).
const CADENCES: [(f64, f64, &str); 3] = [
    (7200.0, 75.0, "the Linux defaults (tcp_keepalive_time 7200 s, tcp_keepalive_intvl 75 s, tcp_keepalive_probes 9)"),
    (15.0, 15.0, "Go's default (net.Dialer KeepAlive 15 s idle and interval)"),
    (300.0, 100.0, "Redis (tcp-keepalive 300: 300 s idle, 100 s interval)"),
];

/// A FIN being resent: an application that has closed its socket no longer
/// waits on it, and the kernel gives up sooner (Linux: `tcp_write_timeout`
/// counts `tcp_orphan_retries` for an orphaned socket).
const FIN_HELD: &str = "keepalive cannot fire while it is in flight; only TCP_USER_TIMEOUT, tcp_retries2 or, once the application has closed the socket, tcp_orphan_retries ends this";

pub fn hints(report: &ConnectionReport) -> Vec<String> {
    let mut out = Vec::new();
    let unheard = report.unheard.is_some();
    for p in &report.probers {
        out.extend(cadence(p, unheard));
        out.extend(middlebox(p));
    }
    if let Some(r) = &report.resending {
        let held = "keepalive cannot fire while data is in flight; only TCP_USER_TIMEOUT (or tcp_retries2, about 15 min on Linux) ends this";
        let resent = counted(r.resends, "time");
        out.push(match r.stuck {
            Stuck::AcksLost => format!(
                "{} resent {resent} data that the peer's ACKs in this capture cover: they do not reach its TCP (dropped on its host, by a firewall or conntrack taking them for invalid, or on a path that fails one way past the capture point): {held}",
                r.endpoint
            ),
            Stuck::Unacked(bytes) => format!(
                "{} has {} unacknowledged, resent {resent}: {}",
                r.endpoint,
                unacked(bytes, r.fin),
                if r.fin { FIN_HELD } else { held }
            ),
            Stuck::Unheard => format!(
                "{} resent {resent} and sent nothing new, with no packet from the peer captured: {held}",
                r.endpoint
            ),
        });
    }
    let judged = matches!(report.verdict, Verdict::Dead | Verdict::Unanswered);
    if let Some(peer) = report.unheard.filter(|_| judged) {
        out.push(format!(
            "no packet from {peer} was captured: it has been silent since before the capture began, or the capture misses its direction (a filter such as src host, another path), and the probes may have been answered out of sight"
        ));
    }
    match report.verdict {
        Verdict::Dead => out.extend(report.probers.iter().filter_map(|p| dead(p, unheard))),
        Verdict::Reset => out.push(
            "the peer answered a probe with RST: it no longer knows the connection (restart, failover, or a middlebox that forgot the flow)".into(),
        ),
        _ => {}
    }
    out
}

fn secs(us: Micros) -> f64 {
    us as f64 / 1e6
}

fn near(measured: f64, expected: f64) -> bool {
    (measured - expected).abs() <= expected * 0.05 + 0.2
}

/// `TCP_KEEPCNT n`. With the peer `unheard`, an upper bound: it may have
/// answered earlier probes out of sight, and Linux counts only the probes
/// since the last answer.
fn keepcnt(n: u32, unheard: bool) -> String {
    let fewer = if unheard { " or fewer" } else { "" };
    format!("TCP_KEEPCNT {n}{fewer}")
}

fn cadence(p: &ProberReport, unheard: bool) -> Option<String> {
    let [zero, one] = p.stats.sizes;
    let interval = p.interval().map(secs);
    if one > 0 {
        let windows = interval.is_some_and(|i| near(i, 1.0));
        return Some(if windows {
            format!("{}: 1-byte probes resent 1 s apart match Windows (KeepAliveInterval 1 s, 10 probes)", p.endpoint)
        } else {
            format!(
                "{}: 1-byte probes: not Linux (Linux sends 0-byte probes); Windows sends 1 byte",
                p.endpoint
            )
        });
    }
    if zero == 0 {
        return None;
    }
    let idle = p.idle().map(secs);
    // Every measure the capture gave must fit, and at least one must exist.
    let fits = |measured: Option<f64>, expected: f64| measured.is_none_or(|x| near(x, expected));
    let known = CADENCES.iter().find(|(i, v, _)| {
        (idle.is_some() || interval.is_some()) && fits(idle, *i) && fits(interval, *v)
    });
    if let Some((_, _, who)) = known {
        return Some(format!(
            "{}: 0-byte probes; cadence matches {}",
            p.endpoint, who
        ));
    }
    let mut parts = Vec::new();
    if let Some(i) = idle {
        let own = if p.idle_from() == Some(IdleFrom::Prober) {
            " (timed from its own last segment: none of the peer's is in the capture)"
        } else {
            ""
        };
        parts.push(format!("TCP_KEEPIDLE ~{i:.0} s{own}"));
    }
    if let Some(v) = interval {
        // With the peer unheard, "unanswered" probes may have been answered
        // out of sight, and answered probes come TCP_KEEPIDLE apart.
        let or_idle = if unheard {
            " (or TCP_KEEPIDLE, if they were answered out of sight)"
        } else {
            ""
        };
        parts.push(format!("TCP_KEEPINTVL ~{v:.0} s{or_idle}"));
    }
    if let Some(n) = p.stats.gave_up_after {
        parts.push(keepcnt(n, unheard));
    }
    let settings = if parts.is_empty() {
        String::new()
    } else {
        format!("; settings look like {}", parts.join(", "))
    };
    Some(format!(
        "{}: 0-byte probes (Linux/BSD style){}",
        p.endpoint, settings
    ))
}

fn middlebox(p: &ProberReport) -> Option<String> {
    let idle = secs(p.idle()?);
    let beaten: Vec<&str> = MIDDLEBOXES
        .iter()
        .filter(|(limit, _)| idle > *limit)
        .map(|(_, name)| *name)
        .collect();
    if beaten.is_empty() {
        return None;
    }
    Some(format!(
        "{}: {idle:.0} s idle before the first probe is longer than the idle timeout of {}: through such a device the flow is dropped before keepalive speaks; keep TCP_KEEPIDLE below it",
        p.endpoint,
        beaten.join(", ")
    ))
}

fn dead(p: &ProberReport, unheard: bool) -> Option<String> {
    let n = p.stats.gave_up_after?;
    let interval = p
        .interval()
        .map(|i| format!(" {:.1} s apart", secs(i)))
        .unwrap_or_default();
    // Linux gives up on TCP_USER_TIMEOUT too, when it is set: the same RST.
    let user_timeout = match p.stats.user_timeout_window() {
        Some((above, at_most)) => {
            let range = match above {
                Some(above) => format!("{:.1}-{:.1} s", secs(above), secs(at_most)),
                None => format!("at most {:.1} s", secs(at_most)),
            };
            format!(
                ", or a TCP_USER_TIMEOUT of {range}: the RST came {:.1} s after the peer was last heard",
                secs(at_most)
            )
        }
        None => String::new(),
    };
    Some(format!(
        "{} gave up: {n} unanswered probes{interval}, then its RST ({}{user_timeout})",
        p.endpoint,
        keepcnt(n, unheard)
    ))
}
