//! What a user checks on each capture in captures/ (made from real Linux
//! stacks by captures/make-captures.sh; captures/README.md describes them):
//! the verdict, who probes, the inferred settings, the frames flagged.

use std::process::Command;

use serde_json::Value;

mod common;
use common::{analyze_json_with, temp, Temp};

struct Report {
    lines: Vec<Value>,
}

impl Report {
    fn of(name: &str) -> Report {
        Report::filtered(name, &[])
    }

    /// The report of `name` read through the filter `words`.
    fn filtered(name: &str, words: &[&str]) -> Report {
        Report::with(&[], name, words)
    }

    /// The report of `name` with the options `args`, through the filter `words`.
    fn with(args: &[&str], name: &str, words: &[&str]) -> Report {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("captures")
            .join(name);
        let out = Command::new(env!("CARGO_BIN_EXE_kaprobe"))
            .args(["analyze", "--json"])
            .args(args)
            .arg(&path)
            .args(words)
            .output()
            .expect("run kaprobe");
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        Report {
            lines: text
                .lines()
                .map(|l| serde_json::from_str(l).expect("JSON line"))
                .collect(),
        }
    }

    fn frames(&self, kind: &str) -> Vec<u64> {
        self.lines
            .iter()
            .filter(|v| v["type"] == kind)
            .map(|v| v["frame"].as_u64().unwrap())
            .collect()
    }

    fn events(&self, kind: &str) -> Vec<&Value> {
        self.lines.iter().filter(|v| v["type"] == kind).collect()
    }

    fn summary(&self) -> &Value {
        let last = self.lines.last().expect("a summary line");
        assert_eq!(last["type"], "summary");
        last
    }

    fn connection(&self) -> &Value {
        let conns: Vec<&Value> = self
            .lines
            .iter()
            .filter(|v| v["type"] == "connection")
            .collect();
        assert_eq!(conns.len(), 1, "one connection per capture");
        conns[0]
    }

    fn prober(&self, role: &str) -> &Value {
        let probers = self.connection()["probers"].as_array().unwrap();
        probers
            .iter()
            .find(|p| p["role"] == role)
            .unwrap_or_else(|| panic!("no {role} prober"))
    }
}

fn near(v: &Value, expected: f64) -> bool {
    v.as_f64().is_some_and(|x| (x - expected).abs() < 0.15)
}

/// The plain alive scenario, the same on every link type and file format.
fn assert_alive(name: &str) {
    let r = Report::of(name);
    assert_eq!(r.frames("keepalive"), [8, 10, 12, 14], "{name}");
    assert_eq!(r.frames("keepalive_ack"), [9, 11, 13, 15], "{name}");
    let c = r.connection();
    assert_eq!(c["verdict"], "alive", "{name}");
    assert_eq!(c["syn_seen"], true);
    let p = r.prober("client");
    assert_eq!(
        (p["probes"].as_u64(), p["acked"].as_u64()),
        (Some(4), Some(4)),
        "{name}"
    );
    assert_eq!(
        p["probe_len"],
        serde_json::json!([0]),
        "Linux probes are 0-byte"
    );
    assert!(near(&p["idle_s"], 1.0), "TCP_KEEPIDLE 1 s: {p}");
    assert_eq!(p["idle_from"], "peer", "{p}");
}

/// One direction only (a `src host` filter, one leg of asymmetric routing):
/// the idle before the first probe is timed from the prober's own last
/// segment, at most a round trip plus a delayed ACK from the peer's.
#[test]
fn one_direction_times_the_idle_from_the_probers_own_segments() {
    let both = Report::of("alive.pcap");
    let one = Report::filtered("alive.pcap", &["src", "host", "192.0.2.1"]);
    let (p, q) = (one.prober("client"), both.prober("client"));
    assert_eq!(p["idle_from"], "prober", "{p}");
    let (own, peer) = (p["idle_s"].as_f64().unwrap(), q["idle_s"].as_f64().unwrap());
    assert!((own - peer).abs() < 0.001, "{own} against {peer}");
    let hints = one.connection()["hints"].to_string();
    assert!(
        hints.contains("TCP_KEEPIDLE ~1 s (timed from its own last segment"),
        "{hints}"
    );
}

#[test]
fn alive_on_ethernet() {
    assert_alive("alive.pcap");
}

#[test]
fn alive_in_pcapng() {
    assert_alive("alive.pcapng");
}

#[test]
fn alive_over_ipv6() {
    assert_alive("ipv6.pcap");
    let r = Report::of("ipv6.pcap");
    assert!(r.connection()["client"]
        .as_str()
        .unwrap()
        .starts_with("[2001:db8::1]:"));
}

#[test]
fn alive_on_loopback_with_offloaded_checksums() {
    assert_alive("loopback.pcap");
}

#[test]
fn alive_on_any_interface_sll2() {
    assert_alive("any-sll2.pcap");
}

#[test]
fn dead_peer_three_unanswered_then_rst() {
    let r = Report::of("dead-peer.pcap");
    assert_eq!(r.frames("keepalive"), [8, 10, 12, 13, 14]);
    assert_eq!(r.frames("keepalive_ack"), [9, 11]);
    let c = r.connection();
    assert_eq!(c["verdict"], "dead");
    let p = r.prober("client");
    assert_eq!(p["count_before_rst"], 3, "TCP_KEEPCNT 3");
    assert_eq!(p["unanswered"], 3);
    assert!(near(&p["interval_s"], 1.0), "TCP_KEEPINTVL 1 s: {p}");
}

/// TCP_USER_TIMEOUT 3.5 s with TCP_KEEPCNT 9: the RST after 3 unanswered
/// probes is the timeout's, and the report gives the window it lies in.
#[test]
fn a_user_timeout_ends_probing_before_the_count() {
    let r = Report::of("user-timeout.pcap");
    let client = r.prober("client");
    assert_eq!(client["count_before_rst"], 3, "{client}");
    let window = &client["user_timeout_s"];
    let above = window["above"].as_f64().unwrap();
    let at_most = window["at_most"].as_f64().unwrap();
    assert!(above < 3.5 && 3.5 <= at_most, "{window}");
    assert!(
        at_most - above < 1.1,
        "one keepalive interval wide: {window}"
    );
    assert_eq!(r.connection()["verdict"], "dead");
    let hints = r.connection()["hints"].to_string();
    assert!(
        hints.contains("or a TCP_USER_TIMEOUT of 3.1-4.1 s"),
        "{hints}"
    );
}

#[test]
fn peer_that_forgot_answers_with_rst() {
    let r = Report::of("peer-reset.pcap");
    assert_eq!(r.frames("keepalive"), [8]);
    assert_eq!(r.frames("keepalive_rst"), [9]);
    assert_eq!(r.connection()["verdict"], "reset");
    assert!(near(&r.prober("client")["idle_s"], 2.0));
}

#[test]
fn resending_data_starves_keepalive() {
    let r = Report::of("retransmit-starved.pcap");
    assert_eq!(
        r.frames("keepalive"),
        [8, 10],
        "probes only while nothing is in flight"
    );
    let c = r.connection();
    assert_eq!(c["verdict"], "retransmitting");
    assert_eq!(c["resending"]["bytes"], 100);
    assert!(c["hints"].to_string().contains("TCP_USER_TIMEOUT"));
}

/// The server ACKs everything and the client resends it anyway: the capture
/// shows what the client's TCP never got.
#[test]
fn resending_what_the_peer_acknowledged_is_named() {
    let r = Report::of("acks-lost.pcap");
    let c = r.connection();
    assert_eq!(c["verdict"], "retransmitting", "{c}");
    let resending = &c["resending"];
    assert_eq!(resending["endpoint"], c["client"], "the client resends");
    assert_eq!(resending["bytes"], 0, "nothing unacknowledged: {c}");
    assert_eq!(resending["peer_acked"], true, "{c}");
    assert_eq!(resending["resends"], 5, "frames 10 to 18");
    assert!(
        c["hints"].to_string().contains("do not reach its TCP"),
        "{c}"
    );
}

#[test]
fn zero_window_probes_are_not_keepalives() {
    let r = Report::of("zero-window.pcap");
    assert!(
        r.frames("keepalive").is_empty(),
        "tshark calls these keep-alives; they are not"
    );
    assert_eq!(r.frames("zero_window_probe"), [12, 14, 15, 17]);
    assert_eq!(r.frames("zero_window_probe_ack"), [13, 16, 18]);
    assert_eq!(r.connection()["verdict"], "no_keepalive");
}

#[test]
fn both_sides_probe_on_their_own_timers() {
    let r = Report::of("both-probe.pcap");
    let client = r.prober("client");
    let server = r.prober("server");
    assert!(near(&client["idle_s"], 1.0), "{client}");
    assert!(near(&server["idle_s"], 2.0), "{server}");
    assert_eq!(client["probes"], client["acked"]);
    assert_eq!(server["probes"], server["acked"]);
    assert_eq!(r.connection()["verdict"], "alive");
}

/// A half-closed client (its FIN sent, its socket open) probes from its FIN's
/// own number; its last ACK, at FIN + 1, is not a probe.
#[test]
fn half_closed_side_probes_from_its_fin() {
    let r = Report::of("half-closed.pcap");
    assert_eq!(r.frames("keepalive"), [10, 12, 14, 16]);
    assert_eq!(r.frames("keepalive_ack"), [11, 13, 15, 17]);
    let client = r.prober("client");
    assert!(near(&client["idle_s"], 1.0), "{client}");
    assert_eq!(r.connection()["verdict"], "alive");
}

#[test]
fn capture_starting_mid_idle_learns_from_the_peer() {
    // Frame 1 opens the capture: nothing seen before it tells its sender's
    // next seq, so it is not judged; the peer's ACK of it lets the rest be.
    let r = Report::of("mid-idle.pcap");
    assert_eq!(r.frames("keepalive"), [3, 5, 7]);
    assert_eq!(r.frames("keepalive_ack"), [4, 6, 8]);
    let c = r.connection();
    assert_eq!(c["syn_seen"], false);
    assert_eq!(c["verdict"], "alive");
}

#[test]
fn windows_style_one_byte_probes() {
    let r = Report::of("windows-probes.pcap");
    assert_eq!(r.frames("keepalive"), [8, 10, 12, 14, 15, 16, 17, 18]);
    assert_eq!(r.frames("keepalive_ack"), [9, 11, 13]);
    let p = r.prober("client");
    assert_eq!(p["probe_len"], serde_json::json!([1]));
    assert_eq!(p["probe_byte"], 0);
    assert!(near(&p["interval_s"], 1.0));
    assert_eq!(r.connection()["verdict"], "dead");
    assert!(r.connection()["hints"].to_string().contains("Windows"));
}

/// Microseconds since the epoch of a JSON time field.
fn micros(v: &Value, field: &str) -> i64 {
    let text = v[field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field}: {v}"));
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .timestamp_micros()
}

/// `--as-live` makes sniff's judgements on the capture's clock: each of the
/// three probes that go unanswered is judged one grace period (1 s) after it
/// was sent, before the next probe, and the client's RST is `dead`.
#[test]
fn as_live_judges_a_dead_peer_as_sniff_would() {
    let plain = Report::of("dead-peer.pcap");
    let live = Report::with(&["--as-live"], "dead-peer.pcap", &[]);
    assert_eq!(live.frames("unanswered"), [12, 13, 14]);
    let times: Vec<i64> = live.lines[..live.lines.len() - 2]
        .iter()
        .map(|v| micros(v, "time"))
        .collect();
    assert!(times.is_sorted(), "events in the order of time: {times:?}");
    for (n, e) in live.events("unanswered").iter().enumerate() {
        assert_eq!(e["unanswered"], n as u64 + 1, "{e}");
        let probe = live
            .events("keepalive")
            .into_iter()
            .find(|k| k["frame"] == e["probe_frame"])
            .expect("the probe");
        assert_eq!(micros(e, "time") - micros(probe, "time"), 1_000_000, "{e}");
    }
    let dead = live.events("dead");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["frame"], 15, "the client's RST: {}", dead[0]);
    assert_eq!(dead[0]["src"], live.connection()["client"]);
    assert_eq!(dead[0]["unanswered"], 3, "TCP_KEEPCNT 3");
    assert!(near(&dead[0]["interval_s"], 1.0), "{}", dead[0]);
    assert!(near(&dead[0]["idle_s"], 1.0), "{}", dead[0]);
    let judged = &live.summary()["judged"];
    assert_eq!(judged["unanswered"], 3, "{judged}");
    assert_eq!(judged["dead"], 1, "{judged}");

    // The rest is what analyze says without it.
    assert!(plain.events("unanswered").is_empty() && plain.events("dead").is_empty());
    assert!(plain.summary()["judged"].is_null());
    assert_eq!(live.connection(), plain.connection());
    assert_eq!(live.frames("keepalive"), plain.frames("keepalive"));
    assert_eq!(live.frames("keepalive_ack"), plain.frames("keepalive_ack"));
}

/// The capture's clock stops at its last packet: a probe sent less than the
/// grace period before it is in flight, as at the end of a sniff.
#[test]
fn as_live_leaves_the_last_probe_in_flight() {
    let no_rst = ["tcp[tcpflags] & tcp-rst == 0"];
    let plain = Report::filtered("dead-peer.pcap", &no_rst);
    let live = Report::with(&["--as-live"], "dead-peer.pcap", &no_rst);
    assert_eq!(
        live.frames("unanswered"),
        [12, 13],
        "not 14, the last frame"
    );
    assert!(live.events("dead").is_empty(), "no RST, no dead");
    let p = live.prober("client");
    assert_eq!(p["in_flight"], true, "{p}");
    assert_eq!(p["unanswered"], 2, "{p}");
    assert_eq!(plain.prober("client")["unanswered"], 3);
}

/// Data resent with no ACK for `--stall-after` seconds is `stalled`: the
/// client of this capture resends for 3.8 s, so 1 s finds it and the
/// default 5 s does not.
#[test]
fn as_live_reports_a_stall_after_the_time_given() {
    let name = "retransmit-starved.pcap";
    let live = Report::with(&["--as-live", "--stall-after", "1"], name, &[]);
    let stalled = live.events("stalled");
    assert_eq!(stalled.len(), 1, "one run of resending");
    let e = stalled[0];
    assert_eq!(e["src"], live.connection()["client"], "{e}");
    assert_eq!(e["peer_silent"], true, "{e}");
    assert_eq!(e["len"], 100, "the 100 bytes in flight: {e}");
    assert_eq!(micros(e, "time") - micros(e, "since"), 1_000_000, "{e}");
    assert_eq!(live.summary()["judged"]["stalled"], 1);

    let default = Report::with(&["--as-live"], name, &[]);
    assert!(default.events("stalled").is_empty());
    assert_eq!(default.summary()["judged"]["stalled"], 0);
}

/// Read after another capture, the judgements name the file their frames
/// are in.
#[test]
fn as_live_judgements_name_their_file() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("captures");
    let (first, second) = (dir.join("alive.pcap"), dir.join("dead-peer.pcap"));
    let out = Command::new(env!("CARGO_BIN_EXE_kaprobe"))
        .args(["analyze", "--json", "--as-live"])
        .args([&first, &second])
        .output()
        .expect("run kaprobe");
    assert!(out.status.success());
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let judged: Vec<&Value> = lines
        .iter()
        .filter(|v| v["type"] == "unanswered" || v["type"] == "dead")
        .collect();
    assert_eq!(judged.len(), 4, "three unanswered, then dead");
    for e in judged {
        assert_eq!(e["file"], second.to_str().unwrap(), "{e}");
    }
}

/// `captures/NAME` cut in two after frame `at`, as a rotating capture (`-C`,
/// `-G`) would: `A.pcap` holds frames 1..=at, `B.pcap` the rest, each
/// numbered from 1. The paths of both, in a directory that goes when the
/// returned `Temp` is dropped.
fn cut(name: &str, at: usize) -> (Temp, [std::path::PathBuf; 2]) {
    let first = temp("A.pcap");
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("captures")
        .join(name);
    let mut input = pcap::Capture::from_file(path).unwrap();
    let parts = [first.to_path_buf(), first.with_file_name("B.pcap")];
    let mut out = [&parts[0], &parts[1]].map(|p| input.savefile(p).unwrap());
    let mut n = 0;
    while let Ok(packet) = input.next_packet() {
        n += 1;
        out[usize::from(n > at)].write(&packet);
    }
    (first, parts)
}

/// A probe at the end of one file and what judges it in the next: the
/// answer says which file its probe is in, and a probe judged unanswered at
/// the prober's next probe is named by its own file and frame.
#[test]
fn a_probe_and_its_answer_in_two_files_name_each_file() {
    let (_dir, [a, b]) = cut("alive.pcap", 8);
    let lines = analyze_json_with(&["-v"], &[a.clone(), b.clone()]);
    let ack = lines.iter().find(|v| v["type"] == "keepalive_ack").unwrap();
    assert_eq!(ack["file"], b.to_str().unwrap(), "{ack}");
    assert_eq!(ack["frame"], 1, "{ack}");
    assert_eq!(ack["probe_frame"], 8, "{ack}");
    assert_eq!(ack["probe_file"], a.to_str().unwrap(), "{ack}");
    let later = lines.iter().filter(|v| v["type"] == "keepalive_ack").nth(1);
    assert!(
        later.unwrap().get("probe_file").is_none(),
        "same file: not named"
    );

    let (_dir, [a, b]) = cut("dead-peer.pcap", 12);
    let lines = analyze_json_with(&["--as-live", "--grace", "2"], &[a.clone(), b.clone()]);
    let judged = lines.iter().find(|v| v["type"] == "unanswered").unwrap();
    assert_eq!(judged["file"], a.to_str().unwrap(), "{judged}");
    assert_eq!(judged["frame"], 12, "{judged}");
}

/// A grace period shorter than the round trip (here 10 us against 43-70 us)
/// reports each probe `unanswered` before its ACK comes: the ACK is then
/// marked late, the summary counts it, and the report still counts the
/// probe answered.
#[test]
fn as_live_marks_answers_after_the_grace_period_late() {
    let r = Report::with(&["--as-live", "--grace", "0.00001"], "alive.pcap", &[]);
    assert_eq!(r.frames("unanswered"), [8, 10, 12, 14]);
    let acks = r.events("keepalive_ack");
    assert_eq!(acks.len(), 4);
    assert!(acks.iter().all(|a| a["late"] == true), "{acks:?}");
    let judged = &r.summary()["judged"];
    assert_eq!(judged["unanswered"], 4, "{judged}");
    assert_eq!(judged["answered_late"], 4, "{judged}");
    assert_eq!(r.connection()["verdict"], "alive");
    assert_eq!(r.prober("client")["acked"], 4);

    let in_time = Report::with(&["--as-live"], "alive.pcap", &[]);
    assert!(in_time
        .events("keepalive_ack")
        .iter()
        .all(|a| a["late"].is_null()));
    assert_eq!(in_time.summary()["judged"]["answered_late"], 0);
}

/// A grace period longer than the prober's interval (2 s against 1 s): each
/// probe is judged when the prober sends the next one, and the last when it
/// sends its RST, since it stopped waiting then.
#[test]
fn as_live_with_a_grace_longer_than_the_interval_judges_at_the_next_probe() {
    let r = Report::with(&["--as-live", "--grace", "2"], "dead-peer.pcap", &[]);
    assert_eq!(r.frames("unanswered"), [12, 13, 14]);
    let at = |frame: u64| {
        let v = r.lines.iter().find(|v| v["frame"] == frame).unwrap();
        micros(v, "time")
    };
    let judged = r.events("unanswered");
    for (e, next) in judged.iter().zip([13, 14, 15]) {
        assert_eq!(micros(e, "time"), at(next), "{e}");
    }
    assert_eq!(judged[2]["unanswered"], 3);
    assert_eq!(r.events("dead").len(), 1);
}

/// `-q` prints only the events that need attention; the rest are counted.
#[test]
fn quiet_prints_only_what_needs_attention() {
    let kinds = |r: &Report| -> Vec<String> {
        let events = r.lines.iter().filter(|v| v.get("src").is_some());
        events
            .map(|v| v["type"].as_str().unwrap().to_owned())
            .collect()
    };
    let dead = Report::with(&["-q", "--as-live"], "dead-peer.pcap", &[]);
    let expected = ["unanswered", "unanswered", "unanswered", "dead"];
    assert_eq!(kinds(&dead), expected);
    assert_eq!(dead.summary()["keepalives"], 5, "counted, not printed");
    assert_eq!(dead.connection()["verdict"], "dead");

    let reset = Report::with(&["-q"], "peer-reset.pcap", &[]);
    assert_eq!(kinds(&reset), ["keepalive_rst"]);

    // Late answers end an `unanswered` that was printed: they are printed too.
    let late = Report::with(
        &["-q", "--as-live", "--grace", "0.00001"],
        "alive.pcap",
        &[],
    );
    let late_kinds = kinds(&late);
    assert_eq!(late_kinds.len(), 8, "{late_kinds:?}");
    assert!(late.events("keepalive").is_empty());
    assert_eq!(late.events("keepalive_ack").len(), 4);

    assert!(kinds(&Report::with(&["-q"], "alive.pcap", &[])).is_empty());
}
