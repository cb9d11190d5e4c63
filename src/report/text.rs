//! The human report: optional event lines as they happen, then one table of
//! connections and a summary line. Colour is decided by the caller
//! (`colored::control`), so this module only says what is red and what green.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::net::SocketAddr;

use colored::{ColoredString, Colorize};

use super::json::Summary;
use super::stamp::{self, Style};
use super::{median, ConnectionReport, ProberReport, Verdict};
use crate::capture::LiveStats;
use crate::engine::Totals;
use crate::flow::Micros;
use crate::keepalive::{Event, EventKind};
use crate::wire::AddrText;

/// `2026-11-22 18:30:23.123456` (UTC), the way a person reads a log; the
/// microseconds where there is no such date.
fn write_clock(out: &mut String, us: Micros) {
    match stamp::write(us, Style::Log, &mut [0; stamp::LEN]) {
        Some(text) => out.push_str(text),
        None => {
            let _ = write!(out, "{us}");
        }
    }
}

fn duration(us: Option<Micros>) -> String {
    Span(us).to_string()
}

/// A duration as the report writes it: `-`, `850 us`, `1.25 ms`, `75.0 s`.
struct Span(Option<Micros>);

impl std::fmt::Display for Span {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            None => f.write_str("-"),
            Some(us) if us.abs() < 1_000 => write!(f, "{us} us"),
            Some(us) if us.abs() < 1_000_000 => write!(f, "{:.2} ms", us as f64 / 1e3),
            Some(us) => write!(f, "{:.1} s", us as f64 / 1e6),
        }
    }
}

pub fn paint_verdict(v: Verdict) -> ColoredString {
    let name = v.name();
    match v {
        Verdict::Alive => name.green(),
        Verdict::Dead | Verdict::Reset => name.red().bold(),
        Verdict::Unanswered | Verdict::Retransmitting => name.yellow(),
        Verdict::NoKeepalive => name.normal(),
    }
}

/// One line for one event. `file` is put before the frame number (empty for
/// a single capture), `probe_file` before the probe's where that differs.
///
/// Written piece by piece into one string, the numbers and IPv4 addresses
/// without `fmt`: through it, an event cost ~5,300 instructions (callgrind
/// of a live sniff), twice what the engine spends on a packet.
pub fn event_line(e: &Event, file: &str, probe_file: &str) -> String {
    let mut line = String::with_capacity(160);
    write_clock(&mut line, e.time);
    line.push_str("  ");
    line.push_str(file);
    line.push('#');
    push_padded(&mut line, itoa::Buffer::new().format(e.frame), 6);
    line.push(' ');
    push_kind(&mut line, e.kind);
    line.push(' ');
    push_addr(&mut line, e.src);
    line.push_str(" > ");
    push_addr(&mut line, e.dst);
    if !matches!(
        e.kind,
        EventKind::Unanswered | EventKind::Dead | EventKind::Stalled
    ) {
        line.push_str("  len ");
        line.push_str(itoa::Buffer::new().format(e.len));
    }
    let _ = match (e.kind, e.rtt, e.probe_frame) {
        (EventKind::Unanswered, _, Some(probe)) => write!(
            line,
            "  probe #{probe} unanswered ({} in a row)",
            e.unanswered.unwrap_or(1)
        ),
        (EventKind::Dead, _, _) => write!(
            line,
            "  gave up after {} unanswered probes (idle {}, interval {})",
            e.unanswered.unwrap_or(0),
            Span(e.idle),
            Span(e.interval)
        ),
        (EventKind::Stalled, _, _) => {
            let resent = counted(e.resends.unwrap_or(0), "time");
            let span = Span(e.since.map(|t| e.time.saturating_sub(t)));
            let _ = if e.peer_captured == Some(false) {
                write!(line, "  resent {resent} in {span}, nothing new sent")
            } else if e.peer_acked == Some(true) {
                write!(
                    line,
                    "  resent {resent} in {span}, all of it acknowledged by the peer: its ACKs, captured here, do not reach the sender"
                )
            } else {
                let peer = if e.peer_silent == Some(false) {
                    "the peer sends but does not acknowledge"
                } else {
                    "nothing from the peer"
                };
                let bytes = unacked(e.len, e.fin == Some(true));
                write!(
                    line,
                    "  {bytes} unacknowledged, resent {resent} in {span}, {peer}"
                )
            };
            line.push_str(if e.fin == Some(true) {
                " (keepalive is held off: TCP_USER_TIMEOUT, tcp_retries2 or tcp_orphan_retries ends this)"
            } else {
                " (keepalive is held off: TCP_USER_TIMEOUT or tcp_retries2 ends this)"
            });
            Ok(())
        }
        (EventKind::Resumed, _, _) => write!(
            line,
            "  acknowledged after {} of resending ({})",
            Span(e.since.map(|t| e.time.saturating_sub(t))),
            counted(e.resends.unwrap_or(0), "resend"),
        ),
        (_, Some(rtt), Some(probe)) => {
            let late = if e.late {
                ", after it was reported unanswered: --grace is shorter than this round trip"
            } else {
                ""
            };
            let rtt = Span(Some(rtt));
            write!(line, "  rtt {rtt} (probe {probe_file}#{probe}{late})")
        }
        _ => Ok(()),
    };
    if e.peer_captured == Some(false) {
        line.push_str(", no packet from the peer in this capture (silent since before it began, or its direction is not captured)");
    }
    line
}

/// `text` left-aligned in `width` columns (ASCII, `width` at most 21), as
/// `{:<width}` pads it.
fn push_padded(line: &mut String, text: &str, width: usize) {
    const SPACES: &str = "                     ";
    line.push_str(text);
    line.push_str(&SPACES[..width.saturating_sub(text.len()).min(SPACES.len())]);
}

/// The event's name in 21 columns, in its colour when there is colour.
fn push_kind(line: &mut String, kind: EventKind) {
    let name = kind.name();
    if !colored::control::SHOULD_COLORIZE.should_colorize() {
        return push_padded(line, name, 21);
    }
    let painted = match kind {
        EventKind::Keepalive => name.cyan(),
        EventKind::KeepaliveAck | EventKind::Resumed => name.green(),
        EventKind::KeepaliveRst | EventKind::Dead => name.red().bold(),
        _ => name.yellow(),
    };
    let _ = write!(line, "{painted:<21}");
}

fn push_addr(line: &mut String, addr: SocketAddr) {
    match addr {
        SocketAddr::V4(v4) => line.push_str(AddrText::v4(v4, &mut [0; 21])),
        SocketAddr::V6(_) => {
            let _ = write!(line, "{addr}");
        }
    }
}

const HEADER: [&str; 11] = [
    "STREAM",
    "CONNECTION (client > server)",
    "PROBER",
    "PROBES",
    "ACK",
    "RST",
    "UNANS",
    "IDLE",
    "INTERVAL",
    "RTT",
    "VERDICT",
];

fn prober_cells(p: Option<&ProberReport>) -> [String; 7] {
    let Some(p) = p else {
        return ["-", "", "", "", "", "", ""].map(String::from);
    };
    let st = &p.stats;
    [
        p.role.to_string(),
        st.probes.to_string(),
        st.acked.to_string(),
        st.reset.to_string(),
        p.unanswered_total().to_string(),
        duration(p.idle()),
        duration(p.interval()),
    ]
}

/// Rows kept for the table: beyond this a table is no longer read, and
/// keeping every row would make memory grow with the capture.
const MAX_ROWS: usize = 10_000;

/// Collects the rows, then prints the table and summary at the end.
pub struct TextReport {
    rows: Vec<ConnectionReport>,
    all: bool,
    /// Rows left out past [`MAX_ROWS`].
    omitted: u64,
}

impl TextReport {
    pub fn new(all: bool) -> TextReport {
        TextReport {
            rows: Vec::new(),
            all,
            omitted: 0,
        }
    }

    /// Every connection gets a row (`--all`), not only noteworthy ones.
    pub fn all(&self) -> bool {
        self.all
    }

    pub fn connection(&mut self, c: ConnectionReport) {
        if !(self.all || c.noteworthy()) {
            return;
        }
        if self.rows.len() < MAX_ROWS {
            self.rows.push(c);
        } else {
            self.omitted += 1;
        }
    }

    pub fn finish(&mut self, out: &mut dyn Write, summary: &Summary) -> io::Result<()> {
        self.rows.sort_by_key(|c| (c.first_file, c.stream));
        if !self.rows.is_empty() {
            self.table(out)?;
            if self.omitted > 0 {
                let note = format!(
                    "... and {} more connections not shown: the table keeps the first {MAX_ROWS}; --json lists every one",
                    self.omitted
                );
                writeln!(out, "{}", note.dimmed())?;
            }
            writeln!(out)?;
        }
        writeln!(out, "{}", summary_line(summary))?;
        if let Some(c) = &summary.capture {
            writeln!(
                out,
                "{} received by filter, {} dropped by kernel, {} dropped by interface",
                counted(c.received, "packet"),
                c.dropped,
                c.if_dropped
            )?;
        }
        if let Some(j) = &summary.judged {
            let late = match j.answered_late {
                0 => String::new(),
                n => format!(" ({n} answered late)"),
            };
            writeln!(
                out,
                "judged live: {} unanswered{late}, {} dead, {} stalled, {} resumed",
                j.unanswered, j.dead, j.stalled, j.resumed
            )?;
        }
        out.flush()
    }

    fn table(&self, out: &mut dyn Write) -> io::Result<()> {
        let mut lines: Vec<([String; 11], Option<Verdict>, &[String])> = Vec::new();
        for c in &self.rows {
            let conn = format!(
                "{} > {}{}",
                c.client,
                c.server,
                if c.syn_seen { "" } else { " (no SYN)" }
            );
            let probers: Vec<Option<&ProberReport>> = if c.probers.is_empty() {
                vec![None]
            } else {
                c.probers.iter().map(Some).collect()
            };
            for (i, p) in probers.iter().enumerate() {
                let first = i == 0;
                let rtt = p.and_then(|p| median(&p.stats.rtts));
                let [role, probes, ack, rst, unans, idle, intvl] = prober_cells(*p);
                let cells = [
                    if first {
                        c.stream.to_string()
                    } else {
                        String::new()
                    },
                    if first { conn.clone() } else { String::new() },
                    role,
                    probes,
                    ack,
                    rst,
                    unans,
                    idle,
                    intvl,
                    if p.is_some() {
                        duration(rtt)
                    } else {
                        String::new()
                    },
                    String::new(),
                ];
                let last = i + 1 == probers.len();
                lines.push((
                    cells,
                    first.then_some(c.verdict),
                    if last { &c.hints } else { &[] },
                ));
            }
        }
        let mut widths = HEADER.map(str::len);
        for (cells, _, _) in &lines {
            for (w, cell) in widths.iter_mut().zip(cells) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let header: Vec<String> = HEADER
            .iter()
            .zip(widths)
            .map(|(h, w)| format!("{h:<w$}"))
            .collect();
        writeln!(out, "{}", header.join("  ").trim_end().bold())?;
        for (cells, verdict, hints) in lines {
            let mut row: Vec<String> = cells[..10]
                .iter()
                .zip(widths)
                .enumerate()
                .map(|(i, (cell, w))| {
                    if i == 1 || i == 2 {
                        format!("{cell:<w$}")
                    } else {
                        format!("{cell:>w$}")
                    }
                })
                .collect();
            row.push(
                verdict
                    .map(|v| paint_verdict(v).to_string())
                    .unwrap_or_default(),
            );
            writeln!(out, "{}", row.join("  ").trim_end())?;
            for hint in hints {
                writeln!(out, "        {} {}", "-".dimmed(), hint.dimmed())?;
            }
        }
        Ok(())
    }
}

fn summary_line(s: &Summary) -> String {
    let verdicts: Vec<String> = Verdict::ALL
        .iter()
        .filter(|v| **v != Verdict::NoKeepalive)
        .filter_map(|v| {
            s.verdicts
                .get(v.name())
                .map(|n| format!("{n} {}", paint_verdict(*v)))
        })
        .collect();
    let verdicts = if verdicts.is_empty() {
        String::new()
    } else {
        format!(": {}", verdicts.join(", "))
    };
    let mut line = format!(
        "{}, {}, {} with keepalive{}; {}, {} ACKed, {} answered by RST, {}",
        counted(s.frames, "frame"),
        counted(s.connections, "TCP connection"),
        s.keepalive_connections,
        verdicts,
        counted(s.keepalives, "probe"),
        s.keepalive_acks,
        s.keepalive_rsts,
        counted(s.zero_window_probes, "zero-window probe"),
    );
    if s.duplicates > 0 {
        let n = counted(s.duplicates, "duplicate frame");
        line.push_str(&format!(", {n}"));
    }
    if s.undecodable > 0 {
        let n = counted(s.undecodable, "undecodable frame");
        line.push_str(&format!(", {n}"));
        if s.cut_short > 0 {
            let cut = s.cut_short;
            line.push_str(&format!(" ({cut} cut short by the snapshot length)"));
        }
    }
    if s.unacceptable > 0 {
        // Forged or far out of any window: say they were left out.
        let n = counted(s.unacceptable, "segment");
        line.push_str(&format!(", {n} left out (no receiver would accept them)"));
    }
    line
}

/// The line `sniff` prints on stderr at SIGUSR1 (as tcpdump does its
/// counters), without stopping: libpcap's counters so far, then the engine's.
pub fn status_line(t: &Totals, tracked: usize, c: &LiveStats) -> String {
    format!(
        "{} received by filter, {} dropped by kernel, {} dropped by interface; {}, {} tracked; \
         {}, {} ACKed, {} answered by RST, {} unanswered, {} dead, {} stalled, {} resumed",
        counted(c.received, "packet"),
        c.dropped,
        c.if_dropped,
        counted(t.frames, "frame"),
        counted(tracked as u64, "connection"),
        counted(t.count(EventKind::Keepalive), "probe"),
        t.count(EventKind::KeepaliveAck),
        t.count(EventKind::KeepaliveRst),
        t.count(EventKind::Unanswered),
        t.count(EventKind::Dead),
        t.count(EventKind::Stalled),
        t.count(EventKind::Resumed),
    )
}

/// What a side has unacknowledged, `len` in sequence numbers with a FIN
/// among them counting one: "1 byte", "its FIN", "5 bytes and its FIN".
pub(super) fn unacked(len: u32, fin: bool) -> String {
    match (fin, len) {
        (true, 1) => "its FIN".to_string(),
        (true, n) => format!("{} and its FIN", counted(n.saturating_sub(1), "byte")),
        (false, n) => counted(n, "byte"),
    }
}

/// "1 frame", "2 frames", as tcpdump counts its packets.
pub(super) fn counted(n: impl Into<u64>, noun: &str) -> String {
    let n = n.into();
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A summary with every count in the summary line at `n`.
    fn every_count(n: u64) -> Summary {
        Summary {
            frames: n,
            connections: n,
            keepalives: n,
            zero_window_probes: n,
            duplicates: n,
            undecodable: n,
            cut_short: n,
            unacceptable: n,
            ..Summary::default()
        }
    }

    #[test]
    fn the_summary_line_counts_in_singular_and_plural() {
        assert_eq!(
            summary_line(&every_count(1)),
            "1 frame, 1 TCP connection, 0 with keepalive; 1 probe, 0 ACKed, 0 answered by RST, \
             1 zero-window probe, 1 duplicate frame, 1 undecodable frame \
             (1 cut short by the snapshot length), 1 segment left out (no receiver would accept them)"
        );
        assert_eq!(
            summary_line(&every_count(2)),
            "2 frames, 2 TCP connections, 0 with keepalive; 2 probes, 0 ACKed, 0 answered by RST, \
             2 zero-window probes, 2 duplicate frames, 2 undecodable frames \
             (2 cut short by the snapshot length), 2 segments left out (no receiver would accept them)"
        );
        let none = summary_line(&Summary::default());
        assert!(none.starts_with("0 frames, 0 TCP connections,"), "{none}");
    }

    #[test]
    fn only_a_live_capture_ends_with_its_counters_and_judgements() {
        let text = |summary: &Summary| {
            let mut out = Vec::new();
            TextReport::new(false).finish(&mut out, summary).unwrap();
            String::from_utf8(out).unwrap()
        };
        let file = text(&every_count(1));
        assert_eq!(file.lines().count(), 1, "{file}");
        let live = Summary {
            capture: Some(LiveStats {
                received: 15,
                dropped: 0,
                if_dropped: 0,
            }),
            judged: Some(crate::report::json::Judged {
                unanswered: 3,
                answered_late: 0,
                dead: 1,
                stalled: 2,
                resumed: 1,
            }),
            ..every_count(1)
        };
        let lines: Vec<String> = text(&live).lines().map(str::to_owned).collect();
        assert_eq!(
            lines[1..],
            [
                "15 packets received by filter, 0 dropped by kernel, 0 dropped by interface",
                "judged live: 3 unanswered, 1 dead, 2 stalled, 1 resumed"
            ]
        );
        let mut late = live;
        late.judged.as_mut().unwrap().answered_late = 1;
        let lines: Vec<String> = text(&late).lines().map(str::to_owned).collect();
        assert_eq!(
            lines[2],
            "judged live: 3 unanswered (1 answered late), 1 dead, 2 stalled, 1 resumed"
        );
    }

    #[test]
    fn the_status_line_gives_each_count_in_its_place() {
        let mut t = Totals {
            frames: 120,
            ..Totals::default()
        };
        for (kind, n) in [
            (EventKind::Keepalive, 9),
            (EventKind::KeepaliveAck, 5),
            (EventKind::KeepaliveRst, 1),
            (EventKind::Unanswered, 3),
            (EventKind::Dead, 2),
            (EventKind::Stalled, 4),
            (EventKind::Resumed, 8),
        ] {
            t.events[kind as usize] = n;
        }
        let c = LiveStats {
            received: 130,
            dropped: 4,
            if_dropped: 6,
        };
        assert_eq!(
            status_line(&t, 7, &c),
            "130 packets received by filter, 4 dropped by kernel, 6 dropped by interface; \
             120 frames, 7 connections tracked; 9 probes, 5 ACKed, 1 answered by RST, \
             3 unanswered, 2 dead, 4 stalled, 8 resumed"
        );
    }

    /// Each form of event line, as the README shows them: columns padded as
    /// `{:<6}` and `{:<21}` pad them, wider values pushing on, IPv6 in
    /// brackets, and each kind's own ending.
    #[test]
    fn event_lines_are_as_the_readme_shows() {
        colored::control::set_override(false);
        let v4 = |s: &str| s.parse::<SocketAddr>().unwrap();
        let probe = Event {
            frame: 11,
            time: 1_795_375_761_377_705,
            ..Event::new(
                EventKind::Keepalive,
                v4("192.0.2.1:57838"),
                v4("192.0.2.2:5432"),
            )
        };
        let lines = [
            (probe.clone(), "2026-11-22 19:29:21.377705  #11     keepalive             192.0.2.1:57838 > 192.0.2.2:5432  len 0"),
            (
                Event {
                    kind: EventKind::KeepaliveAck,
                    frame: 1_234_567,
                    src: v4("[2001:db8::2]:5432"),
                    dst: v4("[2001:db8::1]:57838"),
                    rtt: Some(1_250),
                    probe_frame: Some(1_234_566),
                    ..probe.clone()
                },
                "2026-11-22 19:29:21.377705  #1234567 keepalive_ack         [2001:db8::2]:5432 > [2001:db8::1]:57838  len 0  rtt 1.25 ms (probe #1234566)",
            ),
            (
                Event {
                    kind: EventKind::KeepaliveAck,
                    frame: 13,
                    src: v4("192.0.2.2:5432"),
                    dst: v4("192.0.2.1:57838"),
                    rtt: Some(1_500_000),
                    probe_frame: Some(12),
                    late: true,
                    ..probe.clone()
                },
                "2026-11-22 19:29:21.377705  #13     keepalive_ack         192.0.2.2:5432 > 192.0.2.1:57838  len 0  rtt 1.5 s (probe #12, after it was reported unanswered: --grace is shorter than this round trip)",
            ),
            (
                Event {
                    kind: EventKind::Unanswered,
                    frame: 12,
                    probe_frame: Some(12),
                    unanswered: Some(1),
                    ..probe.clone()
                },
                "2026-11-22 19:29:21.377705  #12     unanswered            192.0.2.1:57838 > 192.0.2.2:5432  probe #12 unanswered (1 in a row)",
            ),
            (
                Event {
                    kind: EventKind::Unanswered,
                    frame: 13,
                    probe_frame: Some(13),
                    unanswered: Some(2),
                    peer_captured: Some(false),
                    ..probe.clone()
                },
                "2026-11-22 19:29:21.377705  #13     unanswered            192.0.2.1:57838 > 192.0.2.2:5432  probe #13 unanswered (2 in a row), no packet from the peer in this capture (silent since before it began, or its direction is not captured)",
            ),
            (
                Event {
                    kind: EventKind::Dead,
                    frame: 15,
                    unanswered: Some(3),
                    idle: Some(2_000_000),
                    interval: Some(1_000_000),
                    ..probe.clone()
                },
                "2026-11-22 19:29:21.377705  #15     dead                  192.0.2.1:57838 > 192.0.2.2:5432  gave up after 3 unanswered probes (idle 2.0 s, interval 1.0 s)",
            ),
            (
                Event {
                    kind: EventKind::Dead,
                    frame: 16,
                    unanswered: Some(3),
                    interval: Some(1_000_000),
                    peer_captured: Some(false),
                    ..probe.clone()
                },
                "2026-11-22 19:29:21.377705  #16     dead                  192.0.2.1:57838 > 192.0.2.2:5432  gave up after 3 unanswered probes (idle -, interval 1.0 s), no packet from the peer in this capture (silent since before it began, or its direction is not captured)",
            ),
            (
                Event {
                    kind: EventKind::Stalled,
                    frame: 40,
                    len: 48,
                    resends: Some(4),
                    since: Some(1_795_375_756_177_705),
                    peer_silent: Some(true),
                    ..probe.clone()
                },
                "2026-11-22 19:29:21.377705  #40     stalled               192.0.2.1:57838 > 192.0.2.2:5432  48 bytes unacknowledged, resent 4 times in 5.2 s, nothing from the peer (keepalive is held off: TCP_USER_TIMEOUT or tcp_retries2 ends this)",
            ),
            (
                Event {
                    kind: EventKind::Stalled,
                    frame: 41,
                    len: 1,
                    resends: Some(1),
                    since: Some(1_795_375_756_177_705),
                    peer_silent: Some(false),
                    ..probe.clone()
                },
                "2026-11-22 19:29:21.377705  #41     stalled               192.0.2.1:57838 > 192.0.2.2:5432  1 byte unacknowledged, resent 1 time in 5.2 s, the peer sends but does not acknowledge (keepalive is held off: TCP_USER_TIMEOUT or tcp_retries2 ends this)",
            ),
            (
                Event {
                    kind: EventKind::Stalled,
                    frame: 44,
                    len: 6,
                    fin: Some(true),
                    resends: Some(4),
                    since: Some(1_795_375_756_177_705),
                    peer_silent: Some(true),
                    ..probe.clone()
                },
                "2026-11-22 19:29:21.377705  #44     stalled               192.0.2.1:57838 > 192.0.2.2:5432  5 bytes and its FIN unacknowledged, resent 4 times in 5.2 s, nothing from the peer (keepalive is held off: TCP_USER_TIMEOUT, tcp_retries2 or tcp_orphan_retries ends this)",
            ),
            (
                Event {
                    kind: EventKind::Stalled,
                    frame: 42,
                    resends: Some(2),
                    since: Some(1_795_375_756_177_705),
                    peer_silent: Some(true),
                    peer_captured: Some(false),
                    ..probe.clone()
                },
                "2026-11-22 19:29:21.377705  #42     stalled               192.0.2.1:57838 > 192.0.2.2:5432  resent 2 times in 5.2 s, nothing new sent (keepalive is held off: TCP_USER_TIMEOUT or tcp_retries2 ends this), no packet from the peer in this capture (silent since before it began, or its direction is not captured)",
            ),
            (
                Event {
                    kind: EventKind::Stalled,
                    frame: 43,
                    resends: Some(3),
                    since: Some(1_795_375_756_177_705),
                    peer_silent: Some(false),
                    peer_captured: Some(true),
                    peer_acked: Some(true),
                    ..probe.clone()
                },
                "2026-11-22 19:29:21.377705  #43     stalled               192.0.2.1:57838 > 192.0.2.2:5432  resent 3 times in 5.2 s, all of it acknowledged by the peer: its ACKs, captured here, do not reach the sender (keepalive is held off: TCP_USER_TIMEOUT or tcp_retries2 ends this)",
            ),
            (
                Event {
                    kind: EventKind::Resumed,
                    frame: 52,
                    src: v4("192.0.2.2:5432"),
                    dst: v4("192.0.2.1:57838"),
                    resends: Some(7),
                    since: Some(1_795_375_748_977_705),
                    ..probe.clone()
                },
                "2026-11-22 19:29:21.377705  #52     resumed               192.0.2.2:5432 > 192.0.2.1:57838  len 0  acknowledged after 12.4 s of resending (7 resends)",
            ),
        ];
        for (event, line) in &lines {
            assert_eq!(event_line(event, "", ""), *line);
        }
        let named = event_line(&probe, "a.pcap ", "");
        assert!(named.contains("  a.pcap #11     keepalive  "), "{named}");
        let answer = lines
            .iter()
            .find(|(e, _)| e.kind == EventKind::KeepaliveAck);
        let across = event_line(&answer.unwrap().0, "b.pcap ", "a.pcap ");
        assert!(across.ends_with("(probe a.pcap #1234566)"), "{across}");
    }
}
