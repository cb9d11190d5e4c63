//! JSON Lines: one object per line, `type` first. The field names are a
//! contract that scripts read; the README documents them.

use std::io::{self, Write};
use std::net::SocketAddr;

use serde::Serialize;

use super::stamp::{self, Style};
use super::{ConnectionReport, IdleFrom, ProberReport, Verdict};
use crate::engine::Totals;
use crate::flow::Micros;
use crate::keepalive::{Event, EventKind};
use crate::wire::AddrText;

/// A time for a JSON field, written without an intermediate `String`.
struct Time(Micros);

impl Serialize for Time {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match stamp::write(self.0, Style::Rfc3339, &mut [0; stamp::LEN]) {
            Some(text) => serializer.serialize_str(text),
            None => serializer.collect_str(&self.0),
        }
    }
}

/// An endpoint for a JSON field, written as [`AddrText`] writes it,
/// without an intermediate `String` (and for IPv4 without `fmt`).
struct Addr(SocketAddr);

impl Serialize for Addr {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            SocketAddr::V4(v4) => serializer.serialize_str(AddrText::v4(v4, &mut [0; 21])),
            SocketAddr::V6(_) => serializer.collect_str(&AddrText(self.0)),
        }
    }
}

fn ms(us: Micros) -> f64 {
    us as f64 / 1000.0
}

fn s(us: Micros) -> f64 {
    us as f64 / 1e6
}

#[derive(Serialize)]
struct EventLine<'a> {
    r#type: &'static str,
    frame: u64,
    time: Time,
    src: Addr,
    dst: Addr,
    len: u32,
    seq: u32,
    ack: u32,
    file: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    rtt_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    probe_frame: Option<u64>,
    /// Only where the probe was in another file than its answer: a capture
    /// rotated between the two.
    #[serde(skip_serializing_if = "Option::is_none")]
    probe_file: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    unanswered: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    idle_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    interval_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resends: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    since: Option<Time>,
    #[serde(skip_serializing_if = "Option::is_none")]
    peer_silent: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    peer_captured: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    peer_acked: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fin: Option<bool>,
    /// Written only when true, so that analyze and sniff lines agree.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    late: bool,
}

#[derive(Serialize)]
struct Rtt {
    min: f64,
    median: f64,
    max: f64,
}

#[derive(Serialize)]
struct ProberLine {
    endpoint: Addr,
    role: &'static str,
    probes: u32,
    acked: u32,
    reset: u32,
    unanswered: u32,
    unanswered_total: u32,
    idle_s: Option<f64>,
    idle_from: Option<&'static str>,
    interval_s: Option<f64>,
    count_before_rst: Option<u32>,
    user_timeout_s: Option<UserTimeout>,
    in_flight: bool,
    rtt_ms: Option<Rtt>,
    probe_len: Vec<u32>,
    probe_byte: Option<u8>,
    first_probe: Time,
    last_probe: Time,
}

/// The TCP_USER_TIMEOUT that would also explain a prober's RST (seconds
/// since it last heard from the peer): above `above`, at most `at_most`.
#[derive(Serialize)]
struct UserTimeout {
    above: Option<f64>,
    at_most: f64,
}

#[derive(Serialize)]
struct ResendingLine {
    endpoint: Addr,
    bytes: Option<u32>,
    peer_acked: Option<bool>,
    fin: bool,
    resends: u32,
    since: Time,
}

#[derive(Serialize)]
struct ConnectionLine<'a> {
    r#type: &'static str,
    stream: u64,
    client: Addr,
    server: Addr,
    syn_seen: bool,
    verdict: &'static str,
    probers: Vec<ProberLine>,
    state: &'static str,
    vlan: Vec<u16>,
    file: &'a str,
    first_frame: u64,
    first_time: Time,
    last_time: Time,
    duration_s: f64,
    packets: u64,
    zero_window_probes: u32,
    resending: Option<ResendingLine>,
    hints: &'a [String],
}

fn prober_line(p: &ProberReport) -> ProberLine {
    let st = &p.stats;
    let rtt = |f: fn(&[Micros]) -> Option<Micros>| f(&st.rtts).map(ms);
    ProberLine {
        endpoint: Addr(p.endpoint),
        role: p.role,
        probes: st.probes,
        acked: st.acked,
        reset: st.reset,
        unanswered: st.run,
        unanswered_total: p.unanswered_total(),
        idle_s: p.idle().map(s),
        idle_from: p.idle_from().map(IdleFrom::name),
        interval_s: p.interval().map(s),
        count_before_rst: st.gave_up_after,
        user_timeout_s: st
            .user_timeout_window()
            .map(|(above, at_most)| UserTimeout {
                above: above.map(s),
                at_most: s(at_most),
            }),
        in_flight: st.in_flight,
        rtt_ms: match (
            rtt(|v| v.iter().min().copied()),
            rtt(super::median),
            rtt(|v| v.iter().max().copied()),
        ) {
            (Some(min), Some(median), Some(max)) => Some(Rtt { min, median, max }),
            _ => None,
        },
        probe_len: (0..2u32).filter(|&l| st.sizes[l as usize] > 0).collect(),
        probe_byte: st.probe_byte,
        first_probe: Time(st.first_probe),
        last_probe: Time(st.last_probe),
    }
}

fn file_name(files: &[String], index: usize) -> &str {
    files.get(index).map(String::as_str).unwrap_or("")
}

/// One line: serialized into `line` (reused, so its capacity stays), then
/// written at once. serde_json writes a field as several small pieces, each
/// dearer through a `BufWriter` than into a `Vec`.
fn write_line<W: Write, T: Serialize>(
    out: &mut W,
    line: &mut Vec<u8>,
    value: &T,
) -> io::Result<()> {
    line.clear();
    serde_json::to_writer(&mut *line, value)?;
    line.push(b'\n');
    out.write_all(line)
}

/// Writes JSON Lines to `out`; `files` names the inputs for the `file` field.
pub struct JsonWriter<W: Write> {
    out: W,
    files: Vec<String>,
    line: Vec<u8>,
}

impl<W: Write> JsonWriter<W> {
    pub fn new(out: W, files: Vec<String>) -> JsonWriter<W> {
        JsonWriter {
            out,
            files,
            line: Vec::with_capacity(1024),
        }
    }

    pub fn event(&mut self, e: &Event) -> io::Result<()> {
        let answer = matches!(
            e.kind,
            EventKind::KeepaliveAck | EventKind::KeepaliveRst | EventKind::ZeroWindowProbeAck
        );
        let judged = matches!(e.kind, EventKind::Unanswered | EventKind::Dead);
        let line = EventLine {
            r#type: e.kind.name(),
            frame: e.frame,
            time: Time(e.time),
            src: Addr(e.src),
            dst: Addr(e.dst),
            len: e.len,
            seq: e.seq,
            ack: e.ack,
            file: file_name(&self.files, e.file),
            rtt_ms: e.rtt.filter(|_| answer).map(ms),
            probe_frame: e.probe_frame,
            probe_file: e.probe_file.map(|f| file_name(&self.files, f)),
            unanswered: e.unanswered,
            idle_s: e.idle.filter(|_| judged).map(s),
            interval_s: e.interval.filter(|_| judged).map(s),
            resends: e.resends,
            since: e.since.map(Time),
            peer_silent: e.peer_silent,
            peer_captured: e.peer_captured,
            peer_acked: e.peer_acked,
            fin: e.fin,
            late: e.late,
        };
        write_line(&mut self.out, &mut self.line, &line)
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    pub fn connection(&mut self, c: &ConnectionReport) -> io::Result<()> {
        let line = ConnectionLine {
            r#type: "connection",
            stream: c.stream,
            client: Addr(c.client),
            server: Addr(c.server),
            syn_seen: c.syn_seen,
            verdict: c.verdict.name(),
            probers: c.probers.iter().map(prober_line).collect(),
            state: c.state,
            vlan: c.vlan.iter().copied().filter(|&v| v != 0).collect(),
            file: file_name(&self.files, c.first_file),
            first_frame: c.first_frame,
            first_time: Time(c.first_time),
            last_time: Time(c.last_time),
            duration_s: s(c.last_time - c.first_time),
            packets: c.packets,
            zero_window_probes: c.zero_window_probes,
            resending: c.resending.as_ref().map(|r| ResendingLine {
                endpoint: Addr(r.endpoint),
                bytes: r.stuck.bytes(),
                peer_acked: r.stuck.peer_acked(),
                fin: r.fin,
                resends: r.resends,
                since: Time(r.since),
            }),
            hints: &c.hints,
        };
        write_line(&mut self.out, &mut self.line, &line)
    }

    pub fn summary(&mut self, sum: &Summary) -> io::Result<()> {
        write_line(&mut self.out, &mut self.line, sum)?;
        self.out.flush()
    }
}

/// The last line: totals over the run, and any errors met.
#[derive(Serialize, Debug, Default)]
pub struct Summary {
    pub r#type: &'static str,
    pub files: Vec<String>,
    pub frames: u64,
    pub tcp_segments: u64,
    pub not_tcp: u64,
    pub undecodable: u64,
    /// Of the undecodable frames, those cut short by the snapshot length.
    pub cut_short: u64,
    pub duplicates: u64,
    /// Segments their receiver drops unread (forged, or far outside any
    /// window): counted, and left out of the analysis.
    pub unacceptable: u64,
    pub connections: u64,
    /// Most connections tracked at once (memory follows this).
    pub peak_open_connections: u64,
    pub keepalive_connections: u64,
    pub keepalives: u64,
    pub keepalive_acks: u64,
    pub keepalive_rsts: u64,
    pub zero_window_probes: u64,
    pub zero_window_probe_acks: u64,
    pub verdicts: std::collections::BTreeMap<&'static str, u64>,
    pub errors: Vec<String>,
    /// Live capture: the interface and libpcap's counters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capture: Option<crate::capture::LiveStats>,
    /// Live capture (or `analyze --as-live`): the judgements only a live
    /// capture makes, counted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub judged: Option<Judged>,
    /// Whether `judged` is counted.
    #[serde(skip)]
    pub judging: bool,
}

/// How many `unanswered`, `dead`, `stalled` and `resumed` events a live
/// capture gave.
#[derive(Serialize, Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Judged {
    pub unanswered: u64,
    /// Of the `unanswered`, those whose answer came after all (`late`).
    pub answered_late: u64,
    pub dead: u64,
    pub stalled: u64,
    pub resumed: u64,
}

impl Summary {
    pub fn new(files: Vec<String>) -> Summary {
        Summary {
            r#type: "summary",
            files,
            ..Default::default()
        }
    }

    /// Count a connection with nothing to report
    /// ([`ConnectionReport::quiet`]): as [`Summary::connection`] would.
    pub fn quiet_connection(&mut self) {
        *self
            .verdicts
            .entry(Verdict::NoKeepalive.name())
            .or_default() += 1;
    }

    /// Count one reported connection.
    pub fn connection(&mut self, c: &ConnectionReport) {
        *self.verdicts.entry(c.verdict.name()).or_default() += 1;
        if c.has_keepalive() {
            self.keepalive_connections += 1;
        }
    }

    /// Take the engine's counters.
    pub fn totals(&mut self, t: &Totals) {
        self.frames = t.frames;
        self.tcp_segments = t.segments;
        self.not_tcp = t.not_tcp;
        self.undecodable = t.undecodable;
        self.cut_short = t.cut_short;
        self.duplicates = t.copies;
        self.unacceptable = t.unacceptable;
        self.connections = t.connections;
        self.peak_open_connections = t.peak_open;
        self.keepalives = t.count(EventKind::Keepalive);
        self.keepalive_acks = t.count(EventKind::KeepaliveAck);
        self.keepalive_rsts = t.count(EventKind::KeepaliveRst);
        self.zero_window_probes = t.count(EventKind::ZeroWindowProbe);
        self.zero_window_probe_acks = t.count(EventKind::ZeroWindowProbeAck);
        if self.judging {
            self.judged = Some(Judged {
                unanswered: t.count(EventKind::Unanswered),
                answered_late: t.late,
                dead: t.count(EventKind::Dead),
                stalled: t.count(EventKind::Stalled),
                resumed: t.count(EventKind::Resumed),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The text of a time field.
    fn rfc3339(us: Micros) -> String {
        let mut buf = [0; stamp::LEN];
        stamp::write(us, Style::Rfc3339, &mut buf).map_or_else(|| us.to_string(), str::to_owned)
    }

    /// A time field is the JSON string of its text, also where chrono has
    /// no date (the microseconds, as a string).
    #[test]
    fn time_fields_are_their_text() {
        for us in [
            0,
            -1,
            1_796_193_566_072_325,
            Micros::MAX,
            Micros::MIN,
            253_402_300_800_000_000,
        ] {
            let field = serde_json::to_string(&Time(us)).unwrap();
            assert_eq!(field, serde_json::to_string(&rfc3339(us)).unwrap(), "{us}");
        }
    }

    fn any_socket_addr() -> impl Strategy<Value = SocketAddr> {
        prop_oneof![
            (any::<[u8; 4]>(), any::<u16>()).prop_map(|(ip, port)| SocketAddr::from((ip, port))),
            (any::<[u8; 16]>(), any::<u16>(), any::<u32>()).prop_map(|(ip, port, scope)| {
                let ip = std::net::Ipv6Addr::from(ip);
                SocketAddr::V6(std::net::SocketAddrV6::new(ip, port, 0, scope % 3))
            }),
        ]
    }

    proptest! {
        /// An endpoint field is the JSON string of the address as std
        /// writes it.
        #[test]
        fn addr_fields_are_std_text(a in any_socket_addr()) {
            let field = serde_json::to_string(&Addr(a)).unwrap();
            prop_assert_eq!(field, serde_json::to_string(&a.to_string()).unwrap());
        }
    }
}
