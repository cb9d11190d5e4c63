//! One line per poked connection: text for people, JSON Lines for scripts.

use std::io::{self, Write};
use std::net::IpAddr;

use colored::Colorize;
use serde::Serialize;

use super::session::{Learned, Sent, Session, Verdict};
use super::table::TcpSocket;

pub struct Writer<'w> {
    json: bool,
    out: &'w mut dyn Write,
}

#[derive(Serialize)]
struct PokeLine<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    time: String,
    local: String,
    remote: String,
    verdict: &'static str,
    probes: u32,
    rtt_ms: Option<f64>,
    note: Option<&'a str>,
    state: &'static str,
    data_outstanding: bool,
    send_queue: u32,
    srtt_ms: Option<f64>,
    icmp: Option<IcmpLine>,
    learned: Option<Learned>,
    sent: &'a [Sent],
    interface: &'a str,
    /// Whether the interface holding the local address has carrier.
    carrier: Option<bool>,
}

#[derive(Serialize)]
struct IcmpLine {
    reporter: String,
    what: String,
}

impl<'w> Writer<'w> {
    pub fn new(json: bool, out: &'w mut dyn Write) -> Writer<'w> {
        Writer { json, out }
    }

    pub fn write(&mut self, s: &Session, socket: &TcpSocket, interface: &str) -> io::Result<()> {
        let outcome = s.outcome.clone();
        let verdict = outcome.as_ref().map_or(Verdict::Unknown, |o| o.verdict);
        let carrier = carrier(socket.local.socket_addr().ip());
        let line = PokeLine {
            kind: "poke",
            time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            local: s.local.to_string(),
            remote: s.remote.to_string(),
            verdict: verdict.name(),
            probes: s.probes(),
            rtt_ms: outcome
                .as_ref()
                .and_then(|o| o.rtt)
                .map(|d| d.as_micros() as f64 / 1e3),
            note: outcome.as_ref().and_then(|o| o.note.as_deref()),
            state: socket.state_name(),
            data_outstanding: socket.data_outstanding(),
            send_queue: socket.send_queue,
            srtt_ms: socket.info.map(|i| f64::from(i.srtt_us) / 1e3),
            icmp: outcome
                .as_ref()
                .and_then(|o| o.icmp.as_ref())
                .map(|e| IcmpLine {
                    reporter: e.reporter.to_string(),
                    what: e.what.clone(),
                }),
            learned: s.learned,
            sent: &s.sent,
            interface,
            carrier: carrier.as_ref().map(|(_, up)| *up),
        };
        if self.json {
            serde_json::to_writer(&mut *self.out, &line)?;
            return writeln!(self.out);
        }
        let mut text = format!("{} > {}  {}", line.local, line.remote, paint(verdict));
        if let Some(ms) = line.rtt_ms {
            text.push_str(&format!("  rtt {}", rtt_text(ms)));
        }
        text.push_str(&format!(
            "  {} probe{}",
            line.probes,
            if line.probes == 1 { "" } else { "s" }
        ));
        if let Some(note) = line.note {
            text.push_str(&format!("  ({note})"));
        }
        if let Some((name, false)) = carrier {
            if verdict != Verdict::Alive {
                text.push_str(&format!("  [our link {name} has no carrier]"));
            }
        }
        writeln!(self.out, "{text}")
    }

    pub fn finish(self) -> io::Result<()> {
        self.out.flush()
    }
}

fn paint(v: Verdict) -> colored::ColoredString {
    match v {
        Verdict::Alive => v.name().green().bold(),
        Verdict::Unknown => v.name().yellow().bold(),
        _ => v.name().red().bold(),
    }
}

fn rtt_text(ms: f64) -> String {
    if ms < 1.0 {
        format!("{:.0} us", ms * 1e3)
    } else {
        format!("{ms:.2} ms")
    }
}

/// The interface that holds `local`, and whether its link is up
/// (IFF_LOWER_UP: carrier, as `ip link` shows it).
fn carrier(local: IpAddr) -> Option<(String, bool)> {
    use nix::net::if_::InterfaceFlags;
    let addrs = nix::ifaddrs::getifaddrs().ok()?;
    for a in addrs {
        let ip = a.address.as_ref().and_then(|s| {
            s.as_sockaddr_in()
                .map(|v4| IpAddr::V4(v4.ip()))
                .or_else(|| s.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip())))
        });
        let same = ip.is_some_and(|ip| match (ip, local) {
            (IpAddr::V6(v6), IpAddr::V4(v4)) | (IpAddr::V4(v4), IpAddr::V6(v6)) => {
                v6.to_ipv4_mapped() == Some(v4)
            }
            (a, b) => a == b,
        });
        if same {
            let up = a.flags.contains(InterfaceFlags::IFF_LOWER_UP)
                || a.flags.contains(InterfaceFlags::IFF_LOOPBACK);
            return Some((a.interface_name, up));
        }
    }
    None
}
