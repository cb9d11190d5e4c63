//! `kaprobe sniff` against real Linux TCP stacks in network namespaces made
//! by the test (see tests/common/mod.rs): it must see every probe and answer
//! live, judge silence `unanswered` then `dead`, print the report on SIGINT,
//! and write a pcap that `analyze` reads to the same events.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use serde_json::Value;

/// kaprobe sniff running in a namespace, its JSON lines collected as they come.
struct Sniff {
    child: Child,
    /// Each line, with when it was read (microseconds since the epoch).
    lines: Arc<Mutex<Vec<(Value, i64)>>>,
    reader: Option<thread::JoinHandle<()>>,
    /// stderr after the "listening on" line.
    errors: Arc<Mutex<Vec<String>>>,
    /// The "listening on" line.
    banner: String,
}

impl Sniff {
    fn start(net: &Net, ns: &str, iface: &str, extra: &[&str]) -> Sniff {
        let mut args = vec!["-i", iface];
        args.extend_from_slice(extra);
        Sniff::with(net, ns, &args)
    }

    /// `kaprobe sniff --json --grace 0.5 ARGS` in `ns`, once it listens.
    fn with(net: &Net, ns: &str, args: &[&str]) -> Sniff {
        Sniff::spawned(net.cmd(ns, kaprobe()), args)
    }

    /// `command sniff --json --grace 0.5 ARGS`, once it listens.
    fn spawned(mut command: Command, args: &[&str]) -> Sniff {
        let mut child = command
            .args(["sniff", "--json", "--grace", "0.5"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn kaprobe sniff");
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let mut first = String::new();
        err.read_line(&mut first).unwrap();
        assert!(
            first.contains("listening on"),
            "sniff did not start: {first}"
        );
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let out = BufReader::new(child.stdout.take().unwrap());
        let reader = thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
                let v: Value = serde_json::from_str(&line).expect("sniff --json line is JSON");
                sink.lock().unwrap().push((v, now.as_micros() as i64));
            }
        });
        let errors = Arc::new(Mutex::new(Vec::new()));
        let sink = errors.clone();
        thread::spawn(move || {
            for line in err.lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Sniff {
            child,
            lines,
            reader: Some(reader),
            errors,
            banner: first,
        }
    }

    fn count(&self, kind: &str) -> usize {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|(v, _)| v["type"] == kind)
            .count()
    }

    /// For each `kind` event so far: how long after its packet was captured
    /// the line was read, in milliseconds.
    fn delays_ms(&self, kind: &str) -> Vec<f64> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|(v, _)| v["type"] == kind)
            .map(|(v, read)| delay_ms(v, *read))
            .collect()
    }

    fn wait_for(&self, kind: &str, n: usize, secs: u64) {
        let ok = wait_for(Duration::from_secs(secs), || self.count(kind) >= n);
        assert!(
            ok,
            "no {n} '{kind}' events within {secs} s: {:?}",
            self.lines.lock().unwrap()
        );
    }

    /// Everything it printed, once it has ended by itself (exit 0) within
    /// `secs` seconds.
    fn ended(mut self, secs: u64) -> Vec<Value> {
        let status = exit_within(&mut self.child, secs);
        assert_eq!(status, Some(0), "sniff ended by itself within {secs} s");
        self.reader.take().unwrap().join().unwrap();
        let lines = self.lines.lock().unwrap();
        lines.iter().map(|(v, _)| v.clone()).collect()
    }

    /// SIGINT, then everything it printed.
    fn interrupt(mut self) -> Vec<Value> {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-INT", &pid]).status().unwrap();
        let status = self.child.wait().unwrap();
        assert_eq!(status.code(), Some(0), "sniff exit status after SIGINT");
        self.reader.take().unwrap().join().unwrap();
        let lines = self.lines.lock().unwrap();
        lines.iter().map(|(v, _)| v.clone()).collect()
    }
}

impl Drop for Sniff {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How long after its packet was captured an event's line was read (`read`,
/// in microseconds since the epoch), in milliseconds.
fn delay_ms(event: &Value, read: i64) -> f64 {
    let time = event["time"].as_str().expect("event time");
    let captured = chrono::DateTime::parse_from_rfc3339(time).unwrap();
    (read - captured.timestamp_micros()) as f64 / 1000.0
}

/// A 32-bit field of a pcap file's header at byte `at` (16: snapshot length,
/// 20: link type), little-endian as this host writes it.
fn header_word(pcap: &Path, at: usize) -> u32 {
    let header = std::fs::read(pcap).unwrap();
    u32::from_le_bytes(header[at..at + 4].try_into().unwrap())
}

/// A client in namespace a that probes the server at `addr:port` every
/// second (TCP_KEEPIDLE, TCP_KEEPINTVL 1 s, TCP_KEEPCNT 3) for 30 s.
fn probing_client(net: &Net, addr: &str, port: &str) -> Peer {
    net.peer(
        &net.a,
        &["client", addr, port, "--keepalive", "1,1,3", "--hold", "30"],
    )
}

/// `n` servers in namespace b and a probing client for each, started a third
/// of a second apart so that their probes fall at different points of the
/// kernel's block timer: each probe is a separate sample of the delay.
fn staggered_probing_clients(net: &Net, n: u16) -> Vec<Peer> {
    let mut peers = Vec::new();
    for port in (7100..).take(n.into()).map(|p: u16| p.to_string()) {
        peers.push(net.peer(&net.b, &["server", B4, &port]));
        peers.push(probing_client(net, B4, &port));
        thread::sleep(Duration::from_millis(333));
    }
    peers
}

/// Whether at least three quarters of `delays` (ms) fall under `limit`. A
/// latency test judges the bulk, not every event: on CI's two cores, with the
/// other tests running, a process can wait 0.1 s for a CPU (one probe of
/// eight once came 0.2 s late that way, against under 0.1 s for the rest).
fn mostly_under(delays: &[f64], limit: f64) -> bool {
    let late = delays.iter().filter(|&&d| !(0.0..limit).contains(&d));
    late.count() * 4 <= delays.len()
}

/// Probes and their ACKs as (type, time, src, dst): across several `-w`
/// files frame numbers restart in each file, and the capture times do not.
fn timed_probe_events(lines: &[Value]) -> Vec<(String, String, String, String)> {
    let s = |v: &Value, k: &str| v[k].as_str().unwrap_or("").to_string();
    let kinds = ["keepalive", "keepalive_ack"];
    lines
        .iter()
        .filter(|v| kinds.iter().any(|k| v["type"] == *k))
        .map(|v| (s(v, "type"), s(v, "time"), s(v, "src"), s(v, "dst")))
        .collect()
}

/// `kaprobe analyze --json FILE`, which must succeed: its lines.
fn analyze_json(pcap: &Path) -> Vec<Value> {
    analyze_json_files(&[pcap.to_path_buf()])
}

/// `kaprobe analyze --json FILE...`, which must succeed: its lines.
fn analyze_json_files(files: &[PathBuf]) -> Vec<Value> {
    analyze_json_with(&[], files)
}

/// The probe/answer events, as (type, frame, src, dst).
fn probe_events(lines: &[Value]) -> Vec<(String, u64, String, String)> {
    let kinds = [
        "keepalive",
        "keepalive_ack",
        "keepalive_rst",
        "zero_window_probe",
        "zero_window_probe_ack",
    ];
    lines
        .iter()
        .filter(|v| kinds.iter().any(|k| v["type"] == *k))
        .map(|v| {
            let s = |k: &str| v[k].as_str().unwrap_or("").to_string();
            (
                s("type"),
                v["frame"].as_u64().unwrap_or(0),
                s("src"),
                s("dst"),
            )
        })
        .collect()
}

#[test]
fn sniff_sees_probes_then_silence_then_dead_and_agrees_with_analyze() {
    if !privileged("sniff_sees_probes_then_silence_then_dead_and_agrees_with_analyze") {
        return;
    }
    let net = Net::new();
    let pcap = temp("sniff-dead.pcap");
    let _server = net.peer(&net.b, &["server", B4, "7000"]);
    let sniff = Sniff::start(&net, &net.a, &net.a_if, &["-w", pcap.to_str().unwrap()]);
    // Beside it, one that sees only what the client sends: every probe is
    // unanswered there, and the judgements say that nothing from the
    // server was captured.
    let one_way = Sniff::start(&net, &net.a, &net.a_if, &["src", "host", A4]);
    let client = net.peer(
        &net.a,
        &["client", B4, "7000", "--keepalive", "1,1,3", "--hold", "20"],
    );
    sniff.wait_for("keepalive_ack", 2, 8);
    net.silence_server();
    sniff.wait_for("dead", 1, 12);
    let outcome = client.result();
    assert!(
        outcome.contains("timed out"),
        "the client's kernel gave up: {outcome}"
    );
    let lines = sniff.interrupt();

    let client_ep = format!("{A4}:");
    let first = |kind: &str| lines.iter().position(|v| v["type"] == kind).unwrap();
    assert!(
        first("unanswered") < first("dead"),
        "unanswered comes before dead"
    );
    let dead = &lines[first("dead")];
    assert!(
        dead["src"].as_str().unwrap().starts_with(&client_ep),
        "{dead}"
    );
    assert_eq!(dead["unanswered"], 3, "TCP_KEEPCNT 3: {dead}");
    let interval = dead["interval_s"].as_f64().unwrap();
    assert!((0.9..1.5).contains(&interval), "TCP_KEEPINTVL 1 s: {dead}");

    let conn = lines
        .iter()
        .find(|v| v["type"] == "connection")
        .expect("a connection report");
    assert_eq!(conn["verdict"], "dead", "{conn}");
    assert_eq!(conn["server"], format!("{B4}:7000"));
    let summary = lines.last().unwrap();
    assert_eq!(summary["type"], "summary");
    assert!(
        summary["capture"]["received"].as_u64().unwrap() > 0,
        "{summary}"
    );
    let judged = &summary["judged"];
    assert_eq!(judged["dead"], 1, "{summary}");
    assert_eq!(
        judged["unanswered"].as_u64(),
        Some(sniff_count(&lines, "unanswered") as u64),
        "{summary}"
    );

    let offline = analyze_json(&pcap);
    assert!(!probe_events(&lines).is_empty());
    assert_eq!(
        probe_events(&lines),
        probe_events(&offline),
        "-w then analyze gives the same events"
    );
    let verdict = offline.iter().find(|v| v["type"] == "connection").unwrap();
    assert_eq!(verdict["verdict"], "dead");
    // Replayed on the file's clock, the judgements are sniff's.
    let replayed = analyze_json_with(&["--as-live"], &[pcap.to_path_buf()]);
    let judgements = |lines: &[Value]| -> Vec<(String, u64, String, Value)> {
        let kinds = ["unanswered", "dead"];
        lines
            .iter()
            .filter(|v| kinds.iter().any(|k| v["type"] == *k))
            .map(|v| {
                let s = |k: &str| v[k].as_str().unwrap_or("").to_string();
                let frame = v["frame"].as_u64().unwrap_or(0);
                (s("type"), frame, s("src"), v["unanswered"].clone())
            })
            .collect()
    };
    assert_eq!(judgements(&lines), judgements(&replayed), "--as-live");
    assert_eq!(replayed.last().unwrap()["judged"], summary["judged"]);

    let judged = |lines: &[Value]| -> Vec<Value> {
        let kinds = ["unanswered", "dead"];
        let of = |v: &&Value| kinds.iter().any(|k| v["type"] == *k);
        lines
            .iter()
            .filter(of)
            .map(|v| v["peer_captured"].clone())
            .collect()
    };
    let both_ways = judged(&lines);
    assert!(both_ways.iter().all(|c| c == true), "{both_ways:?}");
    let one_way = one_way.interrupt();
    assert!(
        sniff_count(&one_way, "unanswered") > sniff_count(&lines, "unanswered"),
        "the probes the server answered are unanswered there too"
    );
    assert_eq!(sniff_count(&one_way, "dead"), 1);
    let conn = one_way.iter().find(|v| v["type"] == "connection").unwrap();
    let unheard = format!("no packet from {B4}:7000 was captured");
    let hints = conn["hints"].as_array().unwrap();
    assert!(
        hints
            .iter()
            .any(|h| h.as_str().unwrap().starts_with(&unheard)),
        "{conn}"
    );
    let one_way = judged(&one_way);
    assert!(one_way.iter().all(|c| c == false), "{one_way:?}");
}

/// The events of `lines`, in order (every line with a `src`).
fn event_kinds(lines: &[Value]) -> Vec<&str> {
    let events = lines.iter().filter(|v| v.get("src").is_some());
    events.map(|v| v["type"].as_str().unwrap()).collect()
}

/// `-c 3` ends the capture by itself after the third event, a probe and its
/// answer and the next probe, with the report and exit 0, as tcpdump's -c.
#[test]
fn sniff_stops_after_c_events_with_its_report() {
    if !privileged("sniff_stops_after_c_events_with_its_report") {
        return;
    }
    let net = Net::new();
    let _server = net.peer(&net.b, &["server", B4, "7002"]);
    let sniff = Sniff::start(&net, &net.a, &net.a_if, &["-c", "3"]);
    let _client = net.peer(
        &net.a,
        &["client", B4, "7002", "--keepalive", "1,1,3", "--hold", "20"],
    );
    let lines = sniff.ended(10);
    let kinds = event_kinds(&lines);
    assert_eq!(
        kinds,
        ["keepalive", "keepalive_ack", "keepalive"],
        "{lines:?}"
    );
    let conn = lines.iter().find(|v| v["type"] == "connection").unwrap();
    assert_eq!(conn["server"], format!("{B4}:7002"));
    let summary = lines.last().unwrap();
    assert_eq!(summary["keepalives"], 2, "{summary}");
}

/// `-q -c 1` waits quietly for the first sign of trouble and ends there:
/// the answered probes before it are counted, not printed.
#[test]
fn sniff_q_c_1_ends_at_the_first_sign_of_trouble() {
    if !privileged("sniff_q_c_1_ends_at_the_first_sign_of_trouble") {
        return;
    }
    let net = Net::new();
    let _server = net.peer(&net.b, &["server", B4, "7003"]);
    let sniff = Sniff::start(&net, &net.a, &net.a_if, &["-q", "-c", "1"]);
    let _client = net.peer(
        &net.a,
        &["client", B4, "7003", "--keepalive", "1,1,3", "--hold", "20"],
    );
    // Probes 1 s apart, answered (the summary counts them), printed by
    // nothing; then silence.
    thread::sleep(Duration::from_secs(3));
    assert_eq!(sniff.count("keepalive"), 0, "-q prints no probe");
    net.silence_server();
    let lines = sniff.ended(10);
    assert_eq!(event_kinds(&lines), ["unanswered"], "{lines:?}");
    let summary = lines.last().unwrap();
    assert!(
        summary["keepalive_acks"].as_u64().unwrap() >= 2,
        "{summary}"
    );
    assert_eq!(summary["judged"]["unanswered"], 1, "{summary}");
}

/// Stopped while data flows, sniff still reads what the kernel had captured
/// before the stop, and not what came after: the `-w` file holds exactly the
/// packets sniff analyzed, so `analyze` of it gives the same counts and the
/// same connection reports, not those plus a fraction of a second more.
#[test]
fn sniff_w_file_holds_exactly_what_sniff_analyzed() {
    if !privileged("sniff_w_file_holds_exactly_what_sniff_analyzed") {
        return;
    }
    let net = Net::new();
    let pcap = temp("sniff-exact.pcap");
    let _server = net.peer(&net.b, &["server", B4, "7012"]);
    let sniff = Sniff::start(&net, &net.a, &net.a_if, &["-w", pcap.to_str().unwrap()]);
    let _data = net.peer(
        &net.a,
        &[
            "client",
            B4,
            "7012",
            "--send-every",
            "0.005",
            "--hold",
            "30",
        ],
    );
    thread::sleep(Duration::from_secs(2));
    let lines = sniff.interrupt();
    let offline = analyze_json(&pcap);
    let summary = |v: &[Value]| v.last().cloned().unwrap();
    let (live, file) = (summary(&lines), summary(&offline));
    assert!(live["frames"].as_u64() > Some(200), "{live}");
    for key in ["frames", "tcp_segments", "connections"] {
        assert_eq!(live[key], file[key], "{key}: sniff {live}, analyze {file}");
    }
    let reports = |v: &[Value]| -> Vec<Value> {
        v.iter()
            .filter(|l| l["type"] == "connection")
            .map(|l| {
                let mut l = l.clone();
                l.as_object_mut().unwrap().remove("file");
                l
            })
            .collect()
    };
    assert_eq!(reports(&lines), reports(&offline));
}

/// kaprobe sniff `args` in namespace a, stdout to `stdout`, and the lines of
/// its stderr as they come (with `-w -` the events and report are there).
fn sniff_stderr(net: &Net, args: &[&str], stdout: Stdio) -> (Child, Arc<Mutex<Vec<String>>>) {
    let mut child = net
        .cmd(&net.a, kaprobe())
        .arg("sniff")
        .args(args)
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kaprobe sniff");
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    let err = BufReader::new(child.stderr.take().unwrap());
    thread::spawn(move || {
        for line in err.lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    let listening = || {
        lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("listening on"))
    };
    assert!(
        wait_for(Duration::from_secs(5), listening),
        "sniff did not start"
    );
    (child, lines)
}

/// The exit status of `child` if it ends within `secs` seconds; otherwise
/// it is killed, and `None`.
fn exit_within(child: &mut Child, secs: u64) -> Option<i32> {
    let mut exit = None;
    wait_for(Duration::from_secs(secs), || {
        exit = child.try_wait().unwrap();
        exit.is_some()
    });
    if exit.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    exit.and_then(|e| e.code())
}

/// The JSON lines among `lines` (stderr also has kaprobe's own messages).
fn json_lines(lines: &[String]) -> Vec<Value> {
    lines
        .iter()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

/// `-w -`, as tcpdump's: the packets are a pcap stream on stdout, which
/// `analyze` reads to the probes sniff printed, on stderr, as they came.
#[test]
fn sniff_w_dash_streams_the_packets_on_stdout_and_the_events_on_stderr() {
    if !privileged("sniff_w_dash_streams_the_packets_on_stdout_and_the_events_on_stderr") {
        return;
    }
    let net = Net::new();
    let pcap = temp("sniff-w-dash.pcap");
    let file = std::fs::File::create(&pcap).unwrap();
    let _server = net.peer(&net.b, &["server", B4, "7013"]);
    let args = ["-i", &net.a_if, "--json", "-w", "-"];
    let (mut child, lines) = sniff_stderr(&net, &args, Stdio::from(file));
    let _client = probing_client(&net, B4, "7013");
    let acks = || {
        json_lines(&lines.lock().unwrap())
            .iter()
            .filter(|v| v["type"] == "keepalive_ack")
            .count()
    };
    assert!(
        wait_for(Duration::from_secs(10), || acks() >= 3),
        "{:?}",
        lines.lock().unwrap()
    );
    signal(&child, "-INT");
    assert_eq!(
        exit_within(&mut child, 5),
        Some(0),
        "exit status after SIGINT"
    );
    let live = json_lines(&lines.lock().unwrap());
    assert_eq!(live.last().unwrap()["type"], "summary", "{live:?}");
    let offline = analyze_json(&pcap);
    assert!(probe_events(&live).len() >= 6, "{live:?}");
    assert_eq!(probe_events(&live), probe_events(&offline));
}

/// `-w -` whose reader goes away (`| head -c`, a viewer closed): the capture
/// ends with the report on stderr and exit 0, as a closed pipe ends analyze.
#[test]
fn sniff_w_dash_ends_quietly_when_stdout_closes() {
    if !privileged("sniff_w_dash_ends_quietly_when_stdout_closes") {
        return;
    }
    let net = Net::new();
    let _server = net.peer(&net.b, &["server", B4, "7014"]);
    let args = ["-i", &net.a_if, "--json", "-w", "-"];
    let (mut child, lines) = sniff_stderr(&net, &args, Stdio::piped());
    // Read in a thread: a header never written must fail the test, not
    // hang it. The pipe closes when the thread ends.
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let mut header = [0u8; 24];
        let read = std::io::Read::read_exact(&mut stdout, &mut header);
        let _ = tx.send(read.map(|()| header));
    });
    let header = rx.recv_timeout(Duration::from_secs(5));
    if header.is_err() {
        let _ = child.kill();
    }
    let header = header.expect("the pcap header on stdout at once").unwrap();
    assert_eq!(header[..4], [0xd4, 0xc3, 0xb2, 0xa1], "a pcap header first");
    let _data = net.peer(
        &net.a,
        &[
            "client",
            B4,
            "7014",
            "--send-every",
            "0.005",
            "--hold",
            "30",
        ],
    );
    let exit = exit_within(&mut child, 5);
    assert_eq!(exit, Some(0), "{:?}", lines.lock().unwrap());
    let done = || {
        json_lines(&lines.lock().unwrap())
            .last()
            .is_some_and(|v| v["type"] == "summary")
    };
    assert!(
        wait_for(Duration::from_secs(2), done),
        "{:?}",
        lines.lock().unwrap()
    );
}

/// A capture time field (RFC 3339) in microseconds since the epoch.
fn time_field(v: &Value, field: &str) -> i64 {
    let text = v[field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field}: {v}"));
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap()
        .timestamp_micros()
}

/// The peer goes silent while the client has data in flight: Linux resends
/// it and sends no keepalive probe, however short TCP_KEEPIDLE is, so only
/// the `stalled` event says live that the peer is gone.
#[test]
fn sniff_reports_data_resent_without_an_ack_as_stalled() {
    if !privileged("sniff_reports_data_resent_without_an_ack_as_stalled") {
        return;
    }
    let net = Net::new();
    let _server = net.peer(&net.b, &["server", B4, "7020"]);
    let sniff = Sniff::start(&net, &net.a, &net.a_if, &["--stall-after", "1.5"]);
    // Beside it, one that sees the client's side only, as a `src host`
    // filter or asymmetric routing would have it: no ACK to go by, but the
    // client only resends, and sends nothing new.
    let one_way = ["--all", "--stall-after", "1.5", "src", "host", A4];
    let one_way = Sniff::start(&net, &net.a, &net.a_if, &one_way);
    let client = net.peer(
        &net.a,
        &[
            "client",
            B4,
            "7020",
            "--keepalive",
            "1,1,3",
            "--send-every",
            "0.2",
            "--user-timeout",
            "5000",
            "--hold",
            "20",
        ],
    );
    thread::sleep(Duration::from_secs(2));
    assert_eq!(
        sniff.count("stalled"),
        0,
        "data acknowledged is not stalled"
    );
    let silenced = now_micros();
    net.silence_server();
    sniff.wait_for("stalled", 1, 8);
    let outcome = client.result();
    assert!(outcome.contains("timed out"), "TCP_USER_TIMEOUT: {outcome}");
    let lines = sniff.interrupt();

    // One event for one run of resending.
    let e = one_from_client(&lines, "stalled");
    assert_eq!(e["dst"], format!("{B4}:7020"), "{e}");
    assert!(e["resends"].as_u64().unwrap() >= 1, "{e}");
    assert_eq!(e["peer_silent"], true, "the server is blackholed: {e}");
    assert!(
        e["len"].as_u64().unwrap() >= 5,
        "a line or more in flight: {e}"
    );
    let since = time_field(e, "since");
    assert!(since > silenced, "resending began after the silence: {e}");
    let waited = (time_field(e, "time") - since) as f64 / 1e6;
    assert!((1.5..2.5).contains(&waited), "judged 1.5 s after: {e}");
    assert_eq!(
        sniff_count(&lines, "keepalive"),
        0,
        "no probe while data is unacknowledged"
    );
    let conn = lines.iter().find(|v| v["type"] == "connection").unwrap();
    assert_eq!(conn["verdict"], "retransmitting", "{conn}");
    let summary = lines.last().unwrap();
    assert_eq!(summary["judged"]["stalled"], 1, "{summary}");

    let one_way = one_way.interrupt();
    let e = one_from_client(&one_way, "stalled");
    assert_eq!(e["peer_captured"], false, "{e}");
    assert_eq!(e["len"], 0, "the bytes are not in this capture: {e}");
    let conn = one_way.iter().find(|v| v["type"] == "connection").unwrap();
    assert_eq!(conn["verdict"], "retransmitting", "{conn}");
    assert!(conn["resending"]["bytes"].is_null(), "{conn}");
}

/// The server's namespace drops every tenth segment of the client's data
/// and counts what it dropped. Every tenth, not a tenth at random: a lost
/// segment's resend then always gets through (nine others pass first), so
/// no segment stays lost long enough to be a real stall.
const LOSE_A_TENTH: &str = "table inet kp {
  chain input { type filter hook input priority 0; tcp flags & psh == psh numgen inc mod 10 == 0 counter drop; }
}";

/// Loss on a healthy connection, seen from one direction only: the client
/// resends what was lost, the server's ACKs (out of this capture's sight)
/// reach it, and it goes on with new data. Neither a sniff of both
/// directions nor one of the client's side only calls that stalled.
#[test]
fn sniff_of_one_direction_does_not_take_loss_for_a_stall() {
    if !privileged("sniff_of_one_direction_does_not_take_loss_for_a_stall") {
        return;
    }
    let net = Net::new();
    nft(&net, &net.b, LOSE_A_TENTH);
    let _server = net.peer(&net.b, &["server", B4, "7024"]);
    // Loss at random failed this test about one run in 500: after a
    // timeout the client sends nothing but the lost segment (its window is
    // one segment), so the same segment lost five times in a row is 5 s of
    // resending to a silent server, a real stall by the definition. With
    // ~100 segments a run at a tenth lost, that is 100 * 1e-5 a run.
    let both = Sniff::start(&net, &net.a, &net.a_if, &[]);
    let one_way = ["--all", "src", "host", A4];
    let one_way = Sniff::start(&net, &net.a, &net.a_if, &one_way);
    let client = net.peer(
        &net.a,
        &["client", B4, "7024", "--send-every", "0.05", "--hold", "5"],
    );
    let outcome = client.result();
    assert!(outcome.contains("held"), "the connection lived: {outcome}");
    thread::sleep(Duration::from_millis(3500));
    let both = both.interrupt();
    let one_way = one_way.interrupt();
    let listed = net.cmd(&net.b, "nft").args(["list", "ruleset"]).output();
    let rules = String::from_utf8(listed.unwrap().stdout).unwrap();
    let dropped = rules
        .split_whitespace()
        .skip_while(|w| *w != "packets")
        .nth(1)
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap();
    assert!(dropped > 0, "some data was lost: {rules}");
    let stalls = |lines: &[Value]| -> Vec<Value> {
        let stalled = lines.iter().filter(|v| v["type"] == "stalled");
        stalled.cloned().collect()
    };
    assert_eq!(stalls(&both), Vec::<Value>::new(), "both directions");
    assert_eq!(stalls(&one_way), Vec::<Value>::new(), "one direction");
    let conn = one_way.iter().find(|v| v["type"] == "connection").unwrap();
    assert_ne!(conn["verdict"], "retransmitting", "{conn}");
}

/// For the server's namespace: drop every segment from the client that
/// carries PSH (its data, first sent or resent) and let the rest through (its
/// pure ACKs), so the server gets no data but still hears the client.
const LOSE_CLIENT_DATA: &str = "table inet kp {
  chain input { type filter hook input priority 0; tcp flags & psh == psh drop; }
}";

/// Loss that the peer keeps answering: the server gets none of the client's
/// data, but its keepalive probes still reach the client and the client's
/// ACKs reach it. The client's data is stalled, and the event says that the
/// peer still sends.
#[test]
fn sniff_says_a_stalled_peer_that_still_sends_is_not_silent() {
    if !privileged("sniff_says_a_stalled_peer_that_still_sends_is_not_silent") {
        return;
    }
    let net = Net::new();
    let _server = net.peer(&net.b, &["server", B4, "7022", "--keepalive", "1,1,9"]);
    let sniff = Sniff::start(&net, &net.a, &net.a_if, &["--stall-after", "2"]);
    let client = net.peer(
        &net.a,
        &["client", B4, "7022", "--send-every", "0.2", "--hold", "8"],
    );
    thread::sleep(Duration::from_secs(1));
    nft(&net, &net.b, LOSE_CLIENT_DATA);
    sniff.wait_for("stalled", 1, 8);
    let lines = sniff.interrupt();
    drop(client);

    let e = one_from_client(&lines, "stalled");
    assert_eq!(e["peer_silent"], false, "the server probes meanwhile: {e}");
    let since = time_field(e, "since");
    let server = format!("{B4}:7022");
    let probed = lines
        .iter()
        .any(|v| v["type"] == "keepalive" && v["src"] == server && time_field(v, "time") > since);
    assert!(probed, "the server's probes are what the client heard");
}

/// For the client's namespace: drop everything from the server's port 7025
/// in the input hook, past the point where a capture on the interface sees
/// it (a host firewall, or conntrack taking the packets for invalid).
const DROP_SERVER_AT_CLIENT: &str = "table inet kp {
  chain input { type filter hook input priority 0; ip saddr 192.0.2.2 tcp sport 7025 counter drop; }
}";

/// The server's ACKs arrive on the client's interface, where sniff sees
/// them, and the client's own firewall drops them before its TCP. The
/// client resends what the capture shows acknowledged: sniff says its ACKs
/// do not reach it, which a capture of this host alone can tell.
#[test]
fn sniff_says_when_acks_captured_do_not_reach_the_sender() {
    if !privileged("sniff_says_when_acks_captured_do_not_reach_the_sender") {
        return;
    }
    let net = Net::new();
    let pcap = temp("sniff-acks-lost.pcap");
    let _server = net.peer(&net.b, &["server", B4, "7025"]);
    let args = ["--stall-after", "2", "-w", pcap.to_str().unwrap()];
    let sniff = Sniff::start(&net, &net.a, &net.a_if, &args);
    let client = net.peer(
        &net.a,
        &[
            "client",
            B4,
            "7025",
            "--send-every",
            "0.2",
            "--user-timeout",
            "6000",
            "--hold",
            "20",
        ],
    );
    thread::sleep(Duration::from_secs(1));
    nft(&net, &net.a, DROP_SERVER_AT_CLIENT);
    let outcome = client.result();
    assert!(outcome.contains("timed out"), "TCP_USER_TIMEOUT: {outcome}");
    let lines = sniff.interrupt();

    let from = |who: &str| {
        let all = lines.iter().filter(|v| v["type"] == "stalled");
        all.filter(|v| v["src"].as_str().unwrap().starts_with(&format!("{who}:")))
            .collect::<Vec<_>>()
    };
    let client_stalled = from(A4);
    assert_eq!(client_stalled.len(), 1, "{client_stalled:?}");
    let e = client_stalled[0];
    assert_eq!(e["peer_acked"], true, "{e}");
    assert_eq!(e["len"], 0, "nothing the capture shows unacknowledged: {e}");
    assert_eq!(e["peer_silent"], false, "the server ACKs each resend: {e}");
    assert!(e["resends"].as_u64().unwrap() >= 3, "{e}");
    let conn = lines.iter().find(|v| v["type"] == "connection").unwrap();
    assert_eq!(conn["verdict"], "retransmitting", "{conn}");
    let r = &conn["resending"];
    assert_eq!(
        r["endpoint"].as_str().unwrap().split(':').next(),
        Some(A4),
        "{conn}"
    );
    assert_eq!(r["peer_acked"], true, "{conn}");
    // The server's echoes are dropped too: its data stays unacknowledged,
    // and that is the other kind of stall.
    for e in from(B4) {
        assert_eq!(e["peer_acked"], false, "{e}");
        assert!(e["len"].as_u64().unwrap() > 0, "{e}");
    }
    // The file says the same of the connection.
    let filed = analyze_json(&pcap);
    let again = filed.iter().find(|v| v["type"] == "connection").unwrap();
    assert_eq!(again["verdict"], "retransmitting", "{again}");
    assert_eq!(again["resending"], conn["resending"], "{again}");
    assert_eq!(again["hints"], conn["hints"]);
}

/// What a NAT or a cloud firewall does to an idle flow (AWS NLB and NAT
/// gateway 350 s, Azure 4 min, GCP 10 min), shrunk to seconds: the server's
/// namespace tracks connections, forgets one idle for 2 s, and drops what it
/// no longer knows. The client's keepalive (idle 4 s) comes too late: sniff
/// on the client's side sees every probe go unanswered and the client give up,
/// although the server was there all along.
#[test]
fn sniff_sees_a_firewall_that_forgot_an_idle_flow_kill_it() {
    if !privileged("sniff_sees_a_firewall_that_forgot_an_idle_flow_kill_it") {
        return;
    }
    let net = Net::new();
    nft(&net, &net.b, DROP_INVALID_INPUT);
    let forget = [
        "net.netfilter.nf_conntrack_tcp_timeout_established=2",
        // Without it, conntrack would take a probe up as a new flow.
        "net.netfilter.nf_conntrack_tcp_loose=0",
    ];
    let ok = net.cmd(&net.b, "sysctl").arg("-qw").args(forget).status();
    assert!(ok.unwrap().success(), "sysctl {forget:?}");
    let server = net.peer(&net.b, &["server", B4, "7023"]);
    let sniff = Sniff::start(&net, &net.a, &net.a_if, &[]);
    let client = net.peer(
        &net.a,
        &["client", B4, "7023", "--keepalive", "4,1,3", "--hold", "20"],
    );
    sniff.wait_for("dead", 1, 15);
    let outcome = client.result();
    assert!(
        outcome.contains("timed out"),
        "the client gave up: {outcome}"
    );
    let lines = sniff.interrupt();
    drop(server);

    assert_eq!(sniff_count(&lines, "keepalive"), 3, "TCP_KEEPCNT 3");
    assert_eq!(
        sniff_count(&lines, "keepalive_ack"),
        0,
        "no probe got through"
    );
    assert_eq!(sniff_count(&lines, "unanswered"), 3);
    let dead = one_from_client(&lines, "dead");
    assert_eq!(dead["unanswered"], 3, "{dead}");
    let idle = dead["idle_s"].as_f64().unwrap();
    assert!((3.9..4.5).contains(&idle), "TCP_KEEPIDLE 4 s: {dead}");
    assert_eq!(
        dead["peer_captured"], true,
        "the server answered before: {dead}"
    );
}

/// The silence ends before the client gives up: the server's ACK reaches
/// the client again, and sniff says the stalled data was acknowledged.
#[test]
fn sniff_reports_resumed_when_a_stalled_peer_acknowledges_again() {
    if !privileged("sniff_reports_resumed_when_a_stalled_peer_acknowledges_again") {
        return;
    }
    let net = Net::new();
    let _server = net.peer(&net.b, &["server", B4, "7021"]);
    let sniff = Sniff::start(&net, &net.a, &net.a_if, &["--stall-after", "1"]);
    let client = net.peer(
        &net.a,
        &["client", B4, "7021", "--send-every", "0.2", "--hold", "12"],
    );
    thread::sleep(Duration::from_secs(1));
    net.silence_server();
    sniff.wait_for("stalled", 1, 6);
    net.unsilence_server();
    // Linux resends at doubling intervals: the next may be seconds away.
    sniff.wait_for("resumed", 1, 10);
    let lines = sniff.interrupt();
    drop(client);

    let one = |kind: &str| {
        let all: Vec<&Value> = lines.iter().filter(|v| v["type"] == kind).collect();
        assert_eq!(all.len(), 1, "one {kind} event: {all:?}");
        all[0]
    };
    let (stalled, resumed) = (one("stalled"), one("resumed"));
    assert_eq!(
        resumed["src"],
        format!("{B4}:7021"),
        "the server's ACK: {resumed}"
    );
    assert_eq!(resumed["dst"], stalled["src"], "{resumed}");
    assert_eq!(
        resumed["since"], stalled["since"],
        "the same run of resending"
    );
    assert!(
        resumed["resends"].as_u64() >= stalled["resends"].as_u64(),
        "{stalled} {resumed}"
    );
    assert!(time_field(resumed, "time") > time_field(stalled, "time"));
    let conn = lines.iter().find(|v| v["type"] == "connection").unwrap();
    assert_ne!(
        conn["verdict"], "retransmitting",
        "all acknowledged: {conn}"
    );
    let summary = lines.last().unwrap();
    assert_eq!(summary["judged"]["resumed"], 1, "{summary}");
}

fn sniff_count(lines: &[Value], kind: &str) -> usize {
    lines.iter().filter(|v| v["type"] == kind).count()
}

/// The one `kind` event of `lines`, which must be from the client (`A4`).
fn one_from_client<'a>(lines: &'a [Value], kind: &str) -> &'a Value {
    let all: Vec<&Value> = lines.iter().filter(|v| v["type"] == kind).collect();
    assert_eq!(all.len(), 1, "one {kind} event: {all:?}");
    let e = all[0];
    let src = e["src"].as_str().unwrap();
    assert!(src.starts_with(&format!("{A4}:")), "from the client: {e}");
    e
}

#[test]
fn sniff_over_ipv6_reports_alive_on_sigint() {
    if !privileged("sniff_over_ipv6_reports_alive_on_sigint") {
        return;
    }
    let net = Net::new();
    let _server = net.peer(&net.b, &["server", B6, "7001"]);
    let sniff = Sniff::start(&net, &net.a, &net.a_if, &[]);
    let _client = probing_client(&net, B6, "7001");
    sniff.wait_for("keepalive_ack", 3, 10);
    let lines = sniff.interrupt();
    let probe = lines.iter().find(|v| v["type"] == "keepalive").unwrap();
    assert_eq!(
        probe["src"].as_str().unwrap().split("]:").next(),
        Some("[2001:db8::1")
    );
    assert_eq!(probe["len"], 0, "Linux probes carry no byte");
    let ack = lines.iter().find(|v| v["type"] == "keepalive_ack").unwrap();
    assert!(ack["rtt_ms"].as_f64().unwrap() < 50.0, "{ack}");
    let conn = lines.iter().find(|v| v["type"] == "connection").unwrap();
    assert_eq!(conn["verdict"], "alive", "{conn}");
    let prober = &conn["probers"][0];
    assert_eq!(prober["role"], "client");
    let idle = prober["idle_s"].as_f64().unwrap();
    assert!((0.9..1.6).contains(&idle), "TCP_KEEPIDLE 1 s: {prober}");
}

/// `-i any`: Linux cooked headers v2 (SLL2), as tcpdump takes them, in the
/// events and in the `-w` file; the kernel shows every packet there twice
/// on the way out and in, and each probe still makes one event.
#[test]
fn sniff_on_any_takes_sll2_and_sees_each_probe_once() {
    if !privileged("sniff_on_any_takes_sll2_and_sees_each_probe_once") {
        return;
    }
    let net = Net::new();
    probes_on_any_once(&net, "7010", &[], "LINUX_SLL2 (Linux cooked v2)", 276);
}

/// Sniff on `any` with `args` and `-w FILE`, while a client probes B4:`port`: the
/// banner names `link`, the file's header says `linktype`, each probe is
/// counted once although `any` shows every packet twice, and `analyze` of
/// the file agrees with what sniff printed.
fn probes_on_any_once(net: &Net, port: &str, args: &[&str], link: &str, linktype: u32) {
    let pcap = temp(&format!("sniff-any-{linktype}.pcap"));
    let _server = net.peer(&net.b, &["server", B4, port]);
    let mut args = args.to_vec();
    args.extend(["-w", pcap.to_str().unwrap()]);
    let sniff = Sniff::start(net, &net.a, "any", &args);
    assert!(
        sniff.banner.contains(&format!("link-type {link}")),
        "{}",
        sniff.banner
    );
    let _client = probing_client(net, B4, port);
    sniff.wait_for("keepalive_ack", 3, 10);
    let lines = sniff.interrupt();
    assert_eq!(header_word(&pcap, 20), linktype, "link type in the -w file");
    assert_eq!(
        header_word(&pcap, 16),
        160,
        "snapshot length in the -w file"
    );
    let probes = |kind: &str| lines.iter().filter(|v| v["type"] == kind).count();
    let conn = lines.iter().find(|v| v["type"] == "connection").unwrap();
    let prober = &conn["probers"][0];
    assert_eq!(
        prober["probes"].as_u64(),
        Some(probes("keepalive") as u64),
        "{conn}"
    );
    assert!(probes("keepalive_ack") >= 3);
    assert_eq!(probe_events(&lines), probe_events(&analyze_json(&pcap)));
}

/// `-L` lists what `any` offers, and `-y LINUX_SLL` takes Linux cooked v1
/// instead of v2 (for tools that cannot read SLL2): the banner and the `-w`
/// file say so, and each probe is still seen once and matches `analyze`.
#[test]
fn sniff_y_takes_the_link_type_that_l_lists() {
    if !privileged("sniff_y_takes_the_link_type_that_l_lists") {
        return;
    }
    let net = Net::new();
    let list = net
        .cmd(&net.a, kaprobe())
        .args(["sniff", "-L", "-i", "any"])
        .output()
        .unwrap();
    assert_eq!(list.status.code(), Some(0));
    let list = String::from_utf8_lossy(&list.stdout).into_owned();
    assert!(
        list.starts_with("Data link types for any (use option -y to set):\n"),
        "{list}"
    );
    for line in [
        "  LINUX_SLL (Linux cooked v1)",
        "  LINUX_SLL2 (Linux cooked v2)",
    ] {
        assert!(list.lines().any(|l| l == line), "{line} not in:\n{list}");
    }

    let args = ["-y", "LINUX_SLL"];
    probes_on_any_once(&net, "7011", &args, "LINUX_SLL (Linux cooked v1)", 113);
}

#[test]
fn sniff_y_with_a_type_the_interface_lacks_is_one_clear_line() {
    if !privileged("sniff_y_with_a_type_the_interface_lacks_is_one_clear_line") {
        return;
    }
    let err = one_line_error(&["sniff", "-i", "lo", "-y", "LINUX_SLL"]);
    assert!(
        err.contains("'lo' does not offer link type LINUX_SLL; it offers EN10MB"),
        "{err}"
    );
}

#[test]
fn sniff_y_with_an_unknown_name_is_one_clear_line() {
    let err = one_line_error(&["sniff", "-i", "lo", "-y", "kp-no-such-type"]);
    assert!(err.contains("unknown link type 'kp-no-such-type'"), "{err}");
}

/// `--immediate-mode`: each event is printed as its packet is captured, not
/// when the kernel hands over its block of packets (up to 0.2 s later, any
/// time in between on a quiet link: without it about one probe in four would
/// come within 50 ms, against three in four asked here).
#[test]
fn sniff_immediate_mode_prints_events_as_packets_come() {
    if !privileged("sniff_immediate_mode_prints_events_as_packets_come") {
        return;
    }
    let net = Net::new();
    let sniff = Sniff::start(&net, &net.a, &net.a_if, &["--immediate-mode"]);
    let _peers = staggered_probing_clients(&net, 2);
    sniff.wait_for("keepalive_ack", 12, 15);
    let delays = sniff.delays_ms("keepalive");
    let lines = sniff.interrupt();
    assert!(delays.len() >= 12, "{lines:?}");
    assert!(
        mostly_under(&delays, 50.0),
        "probes printed this long (ms) after their capture: {delays:?}"
    );
}

/// On a terminal the kernel hands blocks over after 0.1 s at most, as tcpdump
/// asks when it prints to one, instead of 0.2 s: probes' lines come within
/// 0.1 s of their capture (plus scheduling). With 0.2 s the delays spread
/// over 0-0.2 s (the kernel's block timer and the probes are not in step),
/// and about half of them would pass 0.11 s.
#[test]
fn sniff_on_a_terminal_prints_events_within_a_tenth_of_a_second() {
    if !privileged("sniff_on_a_terminal_prints_events_within_a_tenth_of_a_second") {
        return;
    }
    let net = Net::new();
    let _peers = staggered_probing_clients(&net, 3);
    // `script` (util-linux) runs sniff on a pseudo-terminal and copies what
    // it shows, flushed as it comes (-f), to its own stdout.
    let command = format!("{} sniff -i {} --json --duration 9", kaprobe(), net.a_if);
    let Ok(mut child) = net
        .cmd(&net.a, "script")
        .args(["-qfec", &command, "/dev/null"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
    else {
        println!("skipped: no `script` (Debian package bsdutils) for a pseudo-terminal");
        return;
    };
    let mut delays = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let Ok(line) = line else {
            break;
        };
        let read = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let Ok(v) = serde_json::from_str::<Value>(line.trim_end()) else {
            continue; // the "listening on" line, on the same terminal
        };
        if v["type"] == "keepalive" {
            delays.push(delay_ms(&v, read.as_micros() as i64));
        }
    }
    assert!(child.wait().unwrap().success());
    assert!(
        delays.len() >= 18,
        "only {} probes: {delays:?}",
        delays.len()
    );
    assert!(
        mostly_under(&delays, 110.0),
        "probes printed this long (ms) after their capture on a terminal: {delays:?}"
    );
}

/// `-l`, as tcpdump's: into a pipe, events come as promptly as on a
/// terminal (see the test above), not up to 0.2 s late.
#[test]
fn sniff_l_hands_events_to_a_pipe_as_to_a_terminal() {
    if !privileged("sniff_l_hands_events_to_a_pipe_as_to_a_terminal") {
        return;
    }
    let net = Net::new();
    let sniff = Sniff::start(&net, &net.a, &net.a_if, &["-l"]);
    let _peers = staggered_probing_clients(&net, 3);
    sniff.wait_for("keepalive", 20, 15);
    let delays = sniff.delays_ms("keepalive");
    assert!(
        mostly_under(&delays, 110.0),
        "probes printed this long (ms) after their capture with -l: {delays:?}"
    );
}

/// On loopback the kernel shows a capture every packet twice, going out and
/// coming in; sniff has it skip the outgoing copy, so each packet passes the
/// ring once (libpcap's `received` equals the frames read) and none is lost.
#[test]
fn sniff_on_loopback_reads_each_packet_once() {
    if !privileged("sniff_on_loopback_reads_each_packet_once") {
        return;
    }
    let net = Net::new();
    let _server = net.peer(&net.a, &["server", "127.0.0.1", "7002"]);
    let sniff = Sniff::start(&net, &net.a, "lo", &[]);
    let _client = net.peer(
        &net.a,
        &[
            "client",
            "127.0.0.1",
            "7002",
            "--keepalive",
            "1,1,3",
            "--hold",
            "30",
        ],
    );
    sniff.wait_for("keepalive_ack", 2, 8);
    let lines = sniff.interrupt();
    let summary = lines.last().unwrap();
    let frames = summary["frames"].as_u64().unwrap();
    // Handshake, one line each way, two probes and their answers at least.
    assert!(frames >= 9, "{summary}");
    assert_eq!(
        summary["capture"]["received"].as_u64(),
        Some(frames),
        "every packet the ring carried was one to read: {summary}"
    );
    assert_eq!(summary["duplicates"], 0, "{summary}");
    let (probes, acks) = (
        summary["keepalives"].as_u64(),
        summary["keepalive_acks"].as_u64(),
    );
    assert!(probes >= Some(2) && probes == acks, "{summary}");
}

/// `-Z nobody`, as tcpdump's: once the capture and the -w file are open,
/// sniff runs as nobody with no capabilities left, and still sees every
/// probe, its answer, and prints the report. The file is nobody's.
#[test]
fn sniff_gives_up_root_with_z_and_still_sees_probes() {
    if !privileged("sniff_gives_up_root_with_z_and_still_sees_probes") {
        return;
    }
    let net = Net::new();
    let _server = net.peer(&net.b, &["server", B4, "7004"]);
    let pcap = temp("sniff-z.pcap");
    let sniff = Sniff::start(
        &net,
        &net.a,
        &net.a_if,
        &["-Z", "nobody", "-w", pcap.to_str().unwrap()],
    );
    let status = std::fs::read_to_string(format!("/proc/{}/status", sniff.child.id())).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.split_whitespace().collect::<Vec<_>>())
            .unwrap_or_default()
    };
    assert_eq!(field("Uid:"), ["65534"; 4], "{status}");
    assert_eq!(field("Gid:"), ["65534"; 4], "{status}");
    assert_eq!(field("CapEff:"), ["0000000000000000"], "{status}");
    assert_eq!(field("CapPrm:"), ["0000000000000000"], "{status}");
    let _client = probing_client(&net, B4, "7004");
    sniff.wait_for("keepalive_ack", 2, 10);
    let lines = sniff.interrupt();
    let summary = lines.last().unwrap();
    assert_eq!(summary["type"], "summary", "{summary}");
    assert!(
        summary["capture"]["received"].as_u64() > Some(0),
        "{summary}"
    );
    let conn = lines.iter().find(|v| v["type"] == "connection").unwrap();
    assert_eq!(conn["verdict"], "alive", "{conn}");
    let offline = analyze_json(&pcap);
    assert_eq!(probe_events(&lines), probe_events(&offline));
    // Opened as root, then given to the user, as tcpdump does.
    use std::os::unix::fs::MetadataExt;
    let owner = std::fs::metadata(&pcap).unwrap();
    assert_eq!((owner.uid(), owner.gid()), (65534, 65534));
}

/// `-Z` with `-C` or `-G`, as tcpdump: the user makes every file, the first
/// too, so a directory it cannot write to is one line and exit 2 before the
/// capture starts (not at the first new file, maybe hours later); so is a
/// `-z` program that user may not run. In a directory of its own, the files
/// are the user's.
#[test]
fn sniff_z_user_makes_every_rotated_file_and_runs_the_z_command() {
    if !privileged("sniff_z_user_makes_every_rotated_file_and_runs_the_z_command") {
        return;
    }
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let net = Net::new();
    let run = |args: &[&str]| {
        let out = net
            .cmd(&net.a, kaprobe())
            .args([
                "sniff",
                "-i",
                "lo",
                "--duration",
                "0.3",
                "-Z",
                "nobody",
                "-C",
                "1k",
            ])
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // The test's directory is root's (0755): nobody cannot make files there.
    let roots = temp("x.pcap");
    let (code, err) = run(&["-w", roots.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("Permission denied") && err.contains("'nobody'"),
        "{err}"
    );
    assert!(!roots.exists());

    let own = new_dir("nobodys");
    std::os::unix::fs::chown(&*own, Some(65534), None).unwrap();
    let file = own.join("y.pcap");
    let (code, err) = run(&["-w", file.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(std::fs::metadata(&file).unwrap().uid(), 65534);

    let script = temp("root-only.sh");
    std::fs::write(&script, "#!/bin/sh\ntrue\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700)).unwrap();
    let (code, err) = run(&["-w", file.to_str().unwrap(), "-z", script.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("user 'nobody' (-Z) may not run"), "{err}");
}

/// The `-w` file is pushed to disk after every batch of packets: `analyze`
/// reads it while sniff still runs and finds the probes sniff has shown.
#[test]
fn sniff_w_file_is_readable_during_the_capture() {
    if !privileged("sniff_w_file_is_readable_during_the_capture") {
        return;
    }
    let net = Net::new();
    let pcap = temp("sniff-during.pcap");
    let _server = net.peer(&net.b, &["server", B4, "7005"]);
    let sniff = Sniff::start(&net, &net.a, &net.a_if, &["-w", pcap.to_str().unwrap()]);
    let _client = probing_client(&net, B4, "7005");
    sniff.wait_for("keepalive_ack", 2, 10);
    let during = analyze_json(&pcap);
    let acks = during
        .iter()
        .filter(|v| v["type"] == "keepalive_ack")
        .count();
    assert!(acks >= 2, "the file so far: {during:?}");
    sniff.interrupt();
}

/// `-w FILE -C 1k`: a new file each time the current one passes 1 KiB, named
/// FILE, FILE1, FILE2, ... as tcpdump names them, which `analyze` reads in
/// that order to the events sniff printed; with `-W 2` only FILE0 and FILE1
/// are kept, each reused in turn.
#[test]
fn sniff_w_splits_files_by_size_and_keeps_a_ring_with_w() {
    if !privileged("sniff_w_splits_files_by_size_and_keeps_a_ring_with_w") {
        return;
    }
    let net = Net::new();
    let split = temp("split.pcap");
    let ring = temp("ring.pcap");
    let _server = net.peer(&net.b, &["server", B4, "7008"]);
    let all = Sniff::start(
        &net,
        &net.a,
        &net.a_if,
        &["-w", split.to_str().unwrap(), "-C", "1k"],
    );
    let two = Sniff::start(
        &net,
        &net.a,
        &net.a_if,
        &["-w", ring.to_str().unwrap(), "-C", "1k", "-W", "2"],
    );
    let _client = probing_client(&net, B4, "7008");
    // Data beside the probes, some 3 KB a second: several files' worth.
    let _data_server = net.peer(&net.b, &["server", B4, "7009"]);
    let _data = net.peer(
        &net.a,
        &["client", B4, "7009", "--send-every", "0.05", "--hold", "30"],
    );
    all.wait_for("keepalive_ack", 3, 15);
    two.wait_for("keepalive_ack", 3, 15);
    let lines = all.interrupt();
    two.interrupt();

    let mut files = vec![split.to_path_buf()];
    for n in 1.. {
        let next = PathBuf::from(format!("{}{n}", split.display()));
        if !next.exists() {
            break;
        }
        files.push(next);
    }
    assert!(files.len() >= 4, "{files:?}");
    for f in &files {
        let size = std::fs::metadata(f).unwrap().len();
        // Over 1 KiB only by the record that crossed it (160-byte snaplen).
        assert!(size <= 1024 + 16 + 160, "{}: {size} bytes", f.display());
        // Each file's header gives the capture's snapshot length, as tcpdump's.
        assert_eq!(header_word(f, 16), 160, "{}", f.display());
    }
    let offline = analyze_json_files(&files);
    assert!(timed_probe_events(&lines).len() >= 6, "{lines:?}");
    assert_eq!(timed_probe_events(&lines), timed_probe_events(&offline));

    let ring_files: Vec<String> = std::fs::read_dir(ring.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("ring.pcap"))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(ring_files, ["ring.pcap0", "ring.pcap1"]);
}

/// A `-z` command for the tests: a script that waits `secs` seconds, then
/// appends its argument (the file) to `log`.
fn name_logger(name: &str, log: &Path, secs: u32) -> Temp {
    use std::os::unix::fs::PermissionsExt;
    let script = temp(name);
    let body = format!(
        "#!/bin/sh\nsleep {secs}\necho \"$1\" >> {}\n",
        log.display()
    );
    std::fs::write(&script, body).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

/// `-C 1k -z COMMAND`, as tcpdump's -z: the command (here a script that
/// takes a second, then logs its argument) runs on each file once sniff has
/// moved on to the next, and on the last one when the capture ends, which
/// tcpdump does not do. sniff returns once they have all run. The Ctrl-C goes
/// to sniff's whole process group, as a terminal sends it, and does not cut
/// the commands short: they have a group of their own.
#[test]
fn sniff_z_runs_the_command_on_every_file_it_wrote() {
    if !privileged("sniff_z_runs_the_command_on_every_file_it_wrote") {
        return;
    }
    let net = Net::new();
    let split = temp("rotated.pcap");
    let log = temp("rotated.log");
    let script = name_logger("log-name.sh", &log, 1);
    let _server = net.peer(&net.b, &["server", B4, "7015"]);
    let args = ["-w", split.to_str().unwrap(), "-C", "1k", "-z"];
    let mut args: Vec<&str> = args.to_vec();
    args.push(script.to_str().unwrap());
    args.extend(["-i", &net.a_if]);
    let mut own_group = net.cmd(&net.a, kaprobe());
    own_group.process_group(0);
    let mut sniff = Sniff::spawned(own_group, &args);
    let _data = net.peer(
        &net.a,
        &["client", B4, "7015", "--send-every", "0.05", "--hold", "30"],
    );
    let name = |n: usize| match n {
        0 => split.display().to_string(),
        n => format!("{}{n}", split.display()),
    };
    let logged = || std::fs::read_to_string(&log).unwrap_or_default();
    let three = || logged().lines().count() >= 3;
    assert!(wait_for(Duration::from_secs(15), three), "{}", logged());
    let group = format!("-{}", sniff.child.id());
    Command::new("kill")
        .args(["-INT", "--", &group])
        .status()
        .unwrap();
    assert_eq!(exit_within(&mut sniff.child, 15), Some(0));
    let written = (0..).take_while(|&n| Path::new(&name(n)).exists()).count();
    // Sorted: two files closed in one block of packets race to the log.
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    let expected = sorted((0..written).map(name).collect());
    assert_eq!(
        sorted(logged().lines().map(String::from).collect()),
        expected,
        "stderr: {:?}",
        sniff.errors.lock().unwrap()
    );
}

/// The `-z` commands are awaited even when the output cannot be written
/// (standard output is /dev/full here, and the first keepalive event fails
/// to go out, which ends the capture): sniff says so, exits 2, and only once
/// every file has had its command.
#[test]
fn sniff_z_commands_are_awaited_when_the_report_cannot_be_written() {
    if !privileged("sniff_z_commands_are_awaited_when_the_report_cannot_be_written") {
        return;
    }
    let net = Net::new();
    let split = temp("full.pcap");
    let log = temp("full.log");
    let script = name_logger("log-full.sh", &log, 1);
    // A file, not a pipe: the commands inherit it, and a pipe would keep the
    // test waiting for them rather than for sniff.
    let errors = temp("full.err");
    let _server = net.peer(&net.b, &["server", B4, "7016"]);
    let _second = net.peer(&net.b, &["server", B4, "7017"]);
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let mut sniff = net
        .cmd(&net.a, kaprobe())
        .args(["sniff", "-i", &net.a_if, "--duration", "6", "-C", "1k"])
        .arg("-w")
        .arg(&split)
        .arg("-z")
        .arg(&script)
        .stdout(full)
        .stderr(std::fs::File::create(&errors).unwrap())
        .spawn()
        .unwrap();
    let _data = net.peer(
        &net.a,
        &["client", B4, "7016", "--send-every", "0.05", "--hold", "30"],
    );
    let _idle = net.peer(
        &net.a,
        &["client", B4, "7017", "--keepalive", "1,1,5", "--hold", "30"],
    );
    let status = exit_within(&mut sniff, 20);
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    let err = std::fs::read_to_string(&errors).unwrap();
    assert_eq!(status, Some(2), "{err}");
    assert!(err.contains("No space left on device"), "{err}");
    let written = (0..)
        .take_while(|&n| match n {
            0 => split.exists(),
            n => Path::new(&format!("{}{n}", split.display())).exists(),
        })
        .count();
    assert!(written >= 2, "{written} files: {err}");
    assert_eq!(logged.lines().count(), written, "{logged}\n{err}");
}

/// A `-z` command that fails is one line on stderr naming the file and its
/// exit status. With no traffic, the one file there is gets it at the end.
#[test]
fn sniff_z_says_when_the_command_fails() {
    if !privileged("sniff_z_says_when_the_command_fails") {
        return;
    }
    let net = Net::new();
    let file = temp("failing-z.pcap");
    let args = [
        "-i",
        "lo",
        "-w",
        file.to_str().unwrap(),
        "-C",
        "1",
        "-z",
        "false",
    ];
    let (mut child, lines) = sniff_stderr(
        &net,
        &[&args[..], &["--duration", "0.5"]].concat(),
        Stdio::null(),
    );
    assert_eq!(exit_within(&mut child, 10), Some(0));
    let said = format!("kaprobe: -z false {}: exit status: 1", file.display());
    let seen = || lines.lock().unwrap().contains(&said);
    assert!(wait_for(Duration::from_secs(5), seen), "{said}: {lines:?}");
}

/// A new empty directory, removed when the `Temp` is dropped.
fn new_dir(name: &str) -> Temp {
    let dir = temp(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The files in `dir`, sorted by name.
fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

/// `-w 'FILE-%H%M%S.pcap' -G 1`: a new file each second, named by the time
/// it starts, as tcpdump's -G; read back in name order they give the events
/// sniff printed.
#[test]
fn sniff_g_starts_a_file_named_by_time_every_interval() {
    if !privileged("sniff_g_starts_a_file_named_by_time_every_interval") {
        return;
    }
    let net = Net::new();
    let dir = new_dir("rotate-g");
    let pattern = dir.join("g-%H%M%S.pcap");
    let _server = net.peer(&net.b, &["server", B4, "7011"]);
    let sniff = Sniff::start(
        &net,
        &net.a,
        &net.a_if,
        &["-w", pattern.to_str().unwrap(), "-G", "1"],
    );
    let _client = probing_client(&net, B4, "7011");
    sniff.wait_for("keepalive_ack", 4, 12);
    let lines = sniff.interrupt();
    let files = files_in(&dir);
    assert!(files.len() >= 3, "{files:?}");
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let digits = name
            .strip_prefix("g-")
            .and_then(|n| n.strip_suffix(".pcap"));
        assert!(
            digits.is_some_and(|d| d.len() == 6 && d.bytes().all(|b| b.is_ascii_digit())),
            "{name}"
        );
    }
    let offline = analyze_json_files(&files);
    assert_eq!(timed_probe_events(&lines), timed_probe_events(&offline));
}

/// `-G 1` on a quiet interface still starts a file every second, as the
/// clock says, not only when a packet comes (tcpdump waits for one): traffic
/// filtered down to keepalives can be one probe in two hours. Each file is a
/// whole pcap that analyze reads.
#[test]
fn sniff_g_starts_files_on_time_without_traffic() {
    if !privileged("sniff_g_starts_files_on_time_without_traffic") {
        return;
    }
    let net = Net::new();
    let dir = new_dir("rotate-g-quiet");
    let pattern = dir.join("q-%H%M%S.pcap");
    let args = ["-i", "lo", "-w", pattern.to_str().unwrap(), "-G", "1"];
    let args = [&args[..], &["--duration", "3.5", "port", "7099"]].concat();
    let (mut child, _) = sniff_stderr(&net, &args, Stdio::null());
    assert_eq!(exit_within(&mut child, 10), Some(0));
    let files = files_in(&dir);
    assert!(files.len() >= 3, "{files:?}");
    for f in &files {
        let out = Command::new(kaprobe())
            .args(["analyze", f.to_str().unwrap()])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{}", f.display());
        assert!(text.contains("0 frames"), "{}: {text}", f.display());
    }
}

/// `-G 2 -W 2`, as tcpdump's: two files of two seconds each, named by their
/// time alone, then the capture ends by itself with its report (exit 0).
/// `-z` ran on both, and the two files read back give the probes and ACKs
/// sniff printed.
#[test]
fn sniff_g_with_w_stops_after_that_many_files() {
    if !privileged("sniff_g_with_w_stops_after_that_many_files") {
        return;
    }
    let net = Net::new();
    let dir = new_dir("rotate-gw");
    let log = temp("rotate-gw.log");
    let script = name_logger("log-gw.sh", &log, 0);
    let pattern = dir.join("w-%H%M%S.pcap");
    let _server = net.peer(&net.b, &["server", B4, "7027"]);
    let _client = probing_client(&net, B4, "7027");
    let args = ["-w", pattern.to_str().unwrap(), "-G", "2", "-W", "2", "-z"];
    let mut args = args.to_vec();
    args.push(script.to_str().unwrap());
    let sniff = Sniff::start(&net, &net.a, &net.a_if, &args);
    let errors = sniff.errors.clone();
    let lines = sniff.ended(10);
    let files = files_in(&dir);
    let names: Vec<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.iter().all(|n| n.ends_with(".pcap")), "{names:?}");
    let line = "kaprobe: -W 2: the last file is complete".to_string();
    let said = || errors.lock().unwrap().contains(&line);
    assert!(wait_for(Duration::from_secs(2), said), "{errors:?}");
    assert_eq!(lines.last().unwrap()["type"], "summary");
    let mut logged: Vec<PathBuf> = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .map(PathBuf::from)
        .collect();
    logged.sort();
    assert_eq!(logged, files);
    let printed = timed_probe_events(&lines);
    assert!(printed.len() >= 2, "{lines:?}");
    assert_eq!(printed, timed_probe_events(&analyze_json_files(&files)));
}

/// `-G 1 -W 3` under steady traffic slices by the packets' own times: the
/// files are consecutive seconds (named `%s`, seconds since 1970, so each
/// name is the last plus one), and every packet is in the file of the second
/// it was captured in, from the first second (when sniff started) on. tcpdump
/// starts the next file when a packet arrives after the period, so the
/// packets still in the kernel's buffer then go into the next file. The last
/// file stops at its period's end, and the three hold exactly the packets
/// sniff analyzed.
#[test]
fn sniff_g_puts_each_packet_in_the_file_of_its_period() {
    if !privileged("sniff_g_puts_each_packet_in_the_file_of_its_period") {
        return;
    }
    let net = Net::new();
    let dir = new_dir("rotate-g-exact");
    let pattern = dir.join("%s.pcap");
    let _server = net.peer(&net.b, &["server", B4, "7031"]);
    let args = [
        "-w",
        pattern.to_str().unwrap(),
        "-G",
        "1",
        "-W",
        "3",
        "port",
        "7031",
    ];
    let sniff = Sniff::start(&net, &net.a, &net.a_if, &args);
    let client = ["client", B4, "7031", "--send-every", "0.01", "--hold", "6"];
    let _client = net.peer(&net.a, &client);
    let lines = sniff.ended(10);
    let files = files_in(&dir);
    let second = |f: &PathBuf| -> i64 { f.file_stem().unwrap().to_str().unwrap().parse().unwrap() };
    let names: Vec<i64> = files.iter().map(second).collect();
    let first = names[0];
    assert_eq!(names, [first, first + 1, first + 2], "{files:?}");
    // Each file's period is [start + i s, start + (i + 1) s), where start,
    // when sniff began, is within the second the first file is named by.
    const SEC: i64 = 1_000_000;
    let (mut latest_start, mut earliest_start) = (first * SEC, (first + 1) * SEC - 1);
    let mut packets = 0;
    for (i, f) in files.iter().enumerate() {
        let times: Vec<i64> = segments(f).iter().map(|(t, _)| *t).collect();
        assert!(!times.is_empty(), "{}: traffic every 10 ms", f.display());
        let offset = i as i64 * SEC;
        let (lo, hi) = (times[0], *times.last().unwrap());
        latest_start = latest_start.max(hi - offset - SEC + 1);
        earliest_start = earliest_start.min(lo - offset);
        packets += times.len();
    }
    assert!(
        latest_start <= earliest_start,
        "no start time puts every packet in its second's file: {latest_start} > {earliest_start}"
    );
    let summary = lines.last().unwrap();
    assert_eq!(summary["frames"], packets as u64, "{summary}");
}

#[test]
fn sniff_w_needs_c_or_g_and_not_both() {
    let alone = one_line_error(&["sniff", "-i", "lo", "-w", "x.pcap", "-W", "2"]);
    assert!(
        alone.contains("-W counts the files that -C or -G start"),
        "{alone}"
    );
    let args = [
        "sniff",
        "-i",
        "lo",
        "-w",
        "x-%S.pcap",
        "-W",
        "2",
        "-C",
        "1",
        "-G",
        "1",
    ];
    let both = one_line_error(&args);
    assert!(both.contains("-W with both -C and -G"), "{both}");
}

#[test]
fn sniff_g_without_a_time_in_the_name_is_one_clear_line() {
    let err = one_line_error(&["sniff", "-i", "lo", "-w", "/tmp/kp-g.pcap", "-G", "60"]);
    assert!(err.contains("each file would overwrite the last"), "{err}");
}

/// A link that goes down and comes back does not end the capture: sniff
/// says so on stderr both times, and the packets after it are seen, since a
/// flap is what someone watching may be waiting for. The interface deleted
/// ends it by itself: one line naming the interface, the report with that
/// error in its summary, exit 2. (A deletion after a flap used to leave
/// sniff waiting for ever, one run in seven: the kernel tells a capture only
/// of the link going down.)
#[test]
fn sniff_rides_out_a_link_flap_and_ends_when_the_interface_goes() {
    if !privileged("sniff_rides_out_a_link_flap_and_ends_when_the_interface_goes") {
        return;
    }
    let net = Net::new();
    let _server = net.peer(&net.b, &["server", B4, "7028"]);
    let mut sniff = Sniff::start(&net, &net.a, &net.a_if, &["port", "7028"]);
    net.ip(&net.a, &["link", "set", &net.a_if, "down"]);
    thread::sleep(Duration::from_millis(500));
    net.ip(&net.a, &["link", "set", &net.a_if, "up"]);
    let flap = [
        format!(
            "kaprobe: {} went down; the capture goes on when it comes back up",
            net.a_if
        ),
        format!("kaprobe: {} is up again", net.a_if),
    ];
    let errors = sniff.errors.clone();
    let told = || errors.lock().unwrap().ends_with(&flap);
    assert!(wait_for(Duration::from_secs(3), told), "{errors:?}");
    let _client = probing_client(&net, B4, "7028");
    sniff.wait_for("keepalive_ack", 1, 15);
    net.ip(&net.a, &["link", "del", &net.a_if]);
    let status = exit_within(&mut sniff.child, 5);
    assert_eq!(status, Some(2), "{:?}", sniff.errors.lock().unwrap());
    sniff.reader.take().unwrap().join().unwrap();
    let said = format!(
        "kaprobe: capture on '{}' failed: The interface disappeared",
        net.a_if
    );
    let stderr_has_it = || errors.lock().unwrap().contains(&said);
    assert!(
        wait_for(Duration::from_secs(2), stderr_has_it),
        "{errors:?}"
    );
    let lines = sniff.lines.lock().unwrap();
    let (summary, _) = lines.last().unwrap();
    assert_eq!(summary["type"], "summary", "{summary}");
    let in_summary = summary["errors"].as_array().unwrap();
    assert!(
        in_summary
            .iter()
            .any(|e| said.ends_with(e.as_str().unwrap())),
        "{summary}"
    );
    assert!(summary["keepalives"].as_u64().unwrap() >= 1, "{summary}");
}

/// An interface that is down at the start: one line that says so and how
/// to bring it up, exit 2 (tcpdump: "That device is not up").
#[test]
fn sniff_on_an_interface_that_is_down_is_one_clear_line() {
    if !privileged("sniff_on_an_interface_that_is_down_is_one_clear_line") {
        return;
    }
    let net = Net::new();
    net.ip(&net.a, &["link", "set", &net.a_if, "down"]);
    let out = net
        .cmd(&net.a, kaprobe())
        .args(["sniff", "-i", &net.a_if, "--duration", "1"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let said = format!(
        "kaprobe: cannot capture on '{0}': it is down (bring it up: ip link set {0} up)\n",
        net.a_if
    );
    assert_eq!(err, said);
}

/// A `-w` file that cannot be written (a full disk: /dev/full) stops the
/// capture with one line and exit 2; the report of what came is printed.
#[test]
fn sniff_stops_when_the_w_file_cannot_be_written() {
    if !privileged("sniff_stops_when_the_w_file_cannot_be_written") {
        return;
    }
    let net = Net::new();
    let _server = net.peer(&net.b, &["server", B4, "7006"]);
    let _client = net.peer(&net.a, &["client", B4, "7006", "--hold", "5"]);
    let out = net
        .cmd(&net.a, kaprobe())
        .args(["sniff", "-i", &net.a_if, "--json", "-w", "/dev/full"])
        .args(["--duration", "10"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let errors: Vec<&str> = err
        .lines()
        .filter(|l| !l.contains("listening on"))
        .collect();
    assert_eq!(
        errors,
        ["kaprobe: cannot write /dev/full: No space left on device"],
        "{err}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(summary["type"], "summary", "{summary}");
    assert!(summary["frames"].as_u64() > Some(0), "{summary}");
}

/// SIGUSR1, as with tcpdump: the counters so far on stderr, and the
/// capture goes on.
#[test]
fn sniff_prints_its_counters_on_sigusr1_and_goes_on() {
    if !privileged("sniff_prints_its_counters_on_sigusr1_and_goes_on") {
        return;
    }
    let net = Net::new();
    let _server = net.peer(&net.b, &["server", B4, "7007"]);
    let sniff = Sniff::start(&net, &net.a, &net.a_if, &[]);
    let _client = probing_client(&net, B4, "7007");
    sniff.wait_for("keepalive_ack", 2, 10);
    let pid = sniff.child.id().to_string();
    Command::new("kill").args(["-USR1", &pid]).status().unwrap();
    let printed = wait_for(Duration::from_secs(5), || {
        !sniff.errors.lock().unwrap().is_empty()
    });
    let errors = sniff.errors.lock().unwrap().clone();
    assert!(printed, "nothing on stderr after SIGUSR1");
    let status = &errors[0];
    assert!(status.starts_with("kaprobe: "), "{status}");
    assert!(
        status.contains("received by filter, 0 dropped by kernel"),
        "{status}"
    );
    assert!(status.contains("1 connection tracked"), "{status}");
    let probes: u64 = status
        .split("; ")
        .nth(2)
        .and_then(|p| p.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no probe count in {status}"));
    assert!(probes >= 2, "{status}");
    // Still capturing: more probes come, and SIGINT ends it as usual.
    sniff.wait_for("keepalive_ack", 3, 10);
    let lines = sniff.interrupt();
    assert_eq!(lines.last().unwrap()["type"], "summary");
}

/// On a quiet interface sniff sleeps, as tcpdump does: no wakeup while
/// nothing is captured and nothing is due (it used to look at its signal
/// flags four times a second). Signals still end the sleep at once: SIGUSR1
/// prints the counters, SIGTERM ends the capture with the report.
#[test]
fn sniff_sleeps_on_a_quiet_interface_and_still_answers_signals() {
    if !privileged("sniff_sleeps_on_a_quiet_interface_and_still_answers_signals") {
        return;
    }
    let net = Net::new();
    let mut sniff = Sniff::start(&net, &net.a, &net.a_if, &[]);
    let pid = sniff.child.id();
    // The main thread's count (the thread group leader's line in status).
    let wakeups = || {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let line = status
            .lines()
            .find(|l| l.starts_with("voluntary_ctxt_switches:"))
            .unwrap()
            .to_string();
        line.split_whitespace()
            .nth(1)
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    thread::sleep(Duration::from_millis(500));
    let before = wakeups();
    thread::sleep(Duration::from_secs(3));
    let slept = wakeups() - before;
    assert!(slept <= 1, "{slept} wakeups in 3 s on a quiet interface");
    let signal = |name: &str| {
        let pid = pid.to_string();
        Command::new("kill").args([name, &pid]).status().unwrap();
    };
    signal("-USR1");
    let printed = wait_for(Duration::from_secs(2), || {
        !sniff.errors.lock().unwrap().is_empty()
    });
    assert!(printed, "nothing on stderr within 2 s of SIGUSR1");
    let status = sniff.errors.lock().unwrap()[0].clone();
    assert!(status.contains("0 connections tracked"), "{status}");
    signal("-TERM");
    let exit = exit_within(&mut sniff.child, 2);
    assert_eq!(exit, Some(0), "2 s after SIGTERM");
    sniff.reader.take().unwrap().join().unwrap();
    let lines = sniff.lines.lock().unwrap();
    assert_eq!(lines.last().unwrap().0["type"], "summary");
}

/// Ctrl-C twice: the first asks for the report, which waits up to 0.4 s for
/// the kernel's last block of packets; the second, within that wait, ends
/// sniff at once, with 130 (the shell's status for SIGINT) and no report.
#[test]
fn sniff_ends_at_once_on_a_second_ctrl_c() {
    if !privileged("sniff_ends_at_once_on_a_second_ctrl_c") {
        return;
    }
    let net = Net::new();
    let mut sniff = Sniff::start(&net, &net.a, &net.a_if, &[]);
    signal(&sniff.child, "-INT");
    thread::sleep(Duration::from_millis(50));
    signal(&sniff.child, "-INT");
    assert_eq!(exit_within(&mut sniff.child, 5), Some(130));
    sniff.reader.take().unwrap().join().unwrap();
    let lines = sniff.lines.lock().unwrap();
    assert!(
        lines.iter().all(|(v, _)| v["type"] != "summary"),
        "{lines:?}"
    );
}

/// Runs kaprobe with `args`, which must fail with one line and exit 2; the line.
fn one_line_error(args: &[&str]) -> String {
    let out = Command::new(kaprobe()).args(args).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(err.lines().count(), 1, "{err}");
    err
}

#[test]
fn sniff_on_a_missing_interface_is_one_clear_line() {
    let err = one_line_error(&["sniff", "-i", "kp-no-such0"]);
    assert!(
        err.contains("no interface named 'kp-no-such0'") || err.contains("no permission"),
        "{err}"
    );
}

#[test]
fn sniff_bad_filter_is_one_clear_line() {
    if !privileged("sniff_bad_filter_is_one_clear_line") {
        return;
    }
    let err = one_line_error(&["sniff", "-i", "lo", "port", "nosuchport"]);
    assert!(err.contains("bad filter 'port nosuchport'"), "{err}");
}

/// `-i 3`, as with tcpdump: the interface numbered 3 in `sniff -D`'s list.
#[test]
fn sniff_takes_an_interface_by_its_number_in_the_list() {
    if !privileged("sniff_takes_an_interface_by_its_number_in_the_list") {
        return;
    }
    let net = Net::new();
    let list = net
        .cmd(&net.a, kaprobe())
        .args(["sniff", "-D"])
        .output()
        .unwrap();
    assert_eq!(list.status.code(), Some(0));
    let list = String::from_utf8_lossy(&list.stdout).into_owned();
    let number = list
        .lines()
        .find_map(|l| l.strip_suffix("[Up, Running, Loopback]"))
        .and_then(|l| l.split_once(".lo "))
        .map(|(n, _)| n.to_string())
        .unwrap_or_else(|| panic!("no lo in the namespace's list:\n{list}"));
    let out = net
        .cmd(&net.a, kaprobe())
        .args(["sniff", "-i", &number, "--duration", "0.5", "--json"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.starts_with("kaprobe: listening on lo,"), "{err}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(summary["interface"], "lo", "{summary}");
}

/// `-D` is tcpdump's list, line for line: the same numbers (which `-i N`
/// takes), names, descriptions and flags, down to `[none, Disconnected]`
/// for the namespace's veth taken down.
#[test]
fn sniff_lists_the_interfaces_as_tcpdump_does() {
    if !privileged("sniff_lists_the_interfaces_as_tcpdump_does") {
        return;
    }
    let net = Net::new();
    net.ip(&net.a, &["link", "set", &net.a_if, "down"]);
    let list = |program: &str, args: &[&str]| {
        let out = net.cmd(&net.a, program).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{program} {args:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let ours = list(kaprobe(), &["sniff", "-D"]);
    assert_eq!(ours, list("tcpdump", &["-D"]));
    assert!(
        ours.contains(&format!(".{} [none, Disconnected]", net.a_if)),
        "{ours}"
    );
    assert!(ours.contains(".lo [Up, Running, Loopback]"), "{ours}");
}

/// No `-i`: as tcpdump, the first interface in `sniff -D`'s list (libpcap
/// puts those up and not loopback first: here the namespace's veth), and the
/// probes on it are seen.
#[test]
fn sniff_without_i_takes_the_first_interface_in_the_list() {
    if !privileged("sniff_without_i_takes_the_first_interface_in_the_list") {
        return;
    }
    let net = Net::new();
    let list = net
        .cmd(&net.a, kaprobe())
        .args(["sniff", "-D"])
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&list.stdout).into_owned();
    let first = list
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("1."))
        .and_then(|l| l.split(' ').next())
        .unwrap_or_else(|| panic!("no first interface in the list:\n{list}"));
    assert_eq!(first, net.a_if, "the veth leads the list:\n{list}");
    let _server = net.peer(&net.b, &["server", B4, "7012"]);
    let sniff = Sniff::with(&net, &net.a, &[]);
    let banner = format!("kaprobe: listening on {first}, link-type EN10MB");
    assert!(sniff.banner.starts_with(&banner), "{}", sniff.banner);
    let _client = probing_client(&net, B4, "7012");
    sniff.wait_for("keepalive_ack", 2, 10);
    let lines = sniff.interrupt();
    let summary = lines.last().unwrap();
    assert_eq!(summary["interface"], first, "{summary}");
}

#[test]
fn sniff_z_without_c_or_g_is_one_clear_line() {
    let args = [
        "sniff",
        "-i",
        "lo",
        "-w",
        "x.pcap",
        "-z",
        "gzip",
        "--duration",
        "1",
    ];
    let err = one_line_error(&args);
    assert!(
        err.contains("-z runs on each file that -C or -G closes"),
        "{err}"
    );
}

/// `-z 'gzip -9'` names a program that does not exist (no shell runs it):
/// refused at the start, not when the first file closes hours later.
#[test]
fn sniff_z_with_no_such_program_is_one_clear_line() {
    let args = [
        "sniff", "-i", "lo", "-w", "x.pcap", "-C", "1", "-z", "gzip -9",
    ];
    let err = one_line_error(&args);
    assert!(
        err.contains("-z: no program 'gzip -9' to run: it runs as COMMAND FILE"),
        "{err}"
    );
    assert!(!Path::new("x.pcap").exists(), "no capture was started");
}

#[test]
fn sniff_w_dash_with_c_is_one_clear_line() {
    let err = one_line_error(&["sniff", "-i", "lo", "-w", "-", "-C", "1", "--duration", "1"]);
    assert!(err.contains("give -w a file name, not '-'"), "{err}");
}

/// `-w -` with standard output on a terminal would fill it with binary:
/// one line and exit 2 instead (`script` gives kaprobe a terminal).
#[test]
fn sniff_w_dash_to_a_terminal_is_one_clear_line() {
    let command = format!("{} sniff -i lo -w - --duration 1", kaprobe());
    let out = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .expect("script (util-linux)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert_eq!(
        text.trim_end(),
        "kaprobe: -w - would write binary pcap to the terminal: pipe it to a reader \
         (| wireshark -k -i -) or give -w a file name"
    );
}

/// tcpdump's habit `-r FILE` points at analyze, which reads files.
#[test]
fn sniff_r_points_at_analyze() {
    let err = one_line_error(&["sniff", "-r", "trace.pcap"]);
    assert!(
        err.contains("to read trace.pcap: kaprobe analyze trace.pcap (with --as-live"),
        "{err}"
    );
}

#[test]
fn sniff_on_a_number_past_the_list_is_one_clear_line() {
    let err = one_line_error(&["sniff", "-i", "99999"]);
    assert!(
        err.contains("no interface number 99999: kaprobe sniff -D lists "),
        "{err}"
    );
}

#[test]
fn sniff_z_with_an_unknown_user_is_one_clear_line() {
    if !privileged("sniff_z_with_an_unknown_user_is_one_clear_line") {
        return;
    }
    let err = one_line_error(&["sniff", "-i", "lo", "-Z", "kp-no-such-user"]);
    assert!(
        err.contains("no user named 'kp-no-such-user' for -Z"),
        "{err}"
    );
}

/// Too small a `-s` for the headers: one line says so as soon as it
/// happens (not only in the report), and the summary counts the frames.
/// Enough for the fixed headers but not the options: the probes are read.
#[test]
fn sniff_says_once_when_the_snapshot_length_cuts_headers() {
    if !privileged("sniff_says_once_when_the_snapshot_length_cuts_headers") {
        return;
    }
    let net = Net::new();
    let _server = net.peer(&net.b, &["server", B4, "7026"]);
    // Ethernet, IPv4 and the fixed TCP header take 54 bytes.
    let args = ["-i", &net.a_if, "-s", "53", "--json", "port", "7026"];
    let (mut child, lines) = sniff_stderr(&net, &args, Stdio::piped());
    // Beside it, 64 bytes: TCP's timestamp option is cut off, and the
    // probes are still read (tcpdump -s 64, the headers-only habit).
    let headers = Sniff::start(&net, &net.a, &net.a_if, &["-s", "64", "port", "7026"]);
    let _client = probing_client(&net, B4, "7026");
    let said = |l: &String| {
        l.contains("packets that the snapshot length (53 bytes) cut short before the end of their")
    };
    let warned = || lines.lock().unwrap().iter().any(said);
    assert!(wait_for(Duration::from_secs(10), warned), "no warning");
    // Two more probes and their ACKs, all cut short too: still one line.
    thread::sleep(Duration::from_millis(2500));
    signal(&child, "-INT");
    assert_eq!(exit_within(&mut child, 5), Some(0));
    let said_lines = lines.lock().unwrap().iter().filter(|l| said(l)).count();
    assert_eq!(said_lines, 1, "{:?}", lines.lock().unwrap());
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut stdout).unwrap();
    let summary: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    let frames = summary["frames"].as_u64().unwrap();
    assert!(frames >= 5, "{summary}");
    assert_eq!(summary["cut_short"].as_u64(), Some(frames), "{summary}");
    assert_eq!(summary["keepalives"], 0, "{summary}");
    let seen = headers.interrupt();
    let acked = seen.iter().filter(|v| v["type"] == "keepalive_ack").count();
    assert!(acked >= 2, "{seen:?}");
    let last = seen.last().unwrap();
    assert_eq!(
        (last["undecodable"].as_u64(), last["cut_short"].as_u64()),
        (Some(0), Some(0)),
        "{last}"
    );
}
