//! Malformed captures, generated here from the captures in captures/: cut at
//! every record boundary and inside records, bit flips, a wrong link type, an
//! empty file, not a capture, a record claiming a 2 GB length, pcapng with an
//! unknown block. Every case must end in a clean run, or in the results so far
//! plus one clear error line and exit 2; never a panic, and never more memory
//! than a small bound.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

mod common;
use common::temp;

fn capture(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("captures")
            .join(name),
    )
    .unwrap()
}

/// Run `kaprobe analyze --json` on `bytes` with the address space capped at
/// 1 GiB, so unbounded allocation fails the test instead of the machine.
fn analyze(name: &str, bytes: &[u8]) -> Output {
    analyze_with("", name, bytes)
}

/// [`analyze`] with the options `args`. A run that has not ended after a
/// minute is killed (exit 137), so that a loop fails the test instead of
/// hanging it: a hang guard, not a measure of speed (each run takes
/// milliseconds).
fn analyze_with(args: &str, name: &str, bytes: &[u8]) -> Output {
    let path = temp(name);
    std::fs::write(&path, bytes).unwrap();
    let script = format!(
        "ulimit -v 1048576; exec timeout -s KILL 60 '{}' analyze --json {args} '{}'",
        env!("CARGO_BIN_EXE_kaprobe"),
        path.display()
    );
    Command::new("sh").args(["-c", &script]).output().unwrap()
}

/// The contract for bad input; returns the summary line.
fn assert_handled(case: &str, out: &Output) -> Value {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{case}: panic: {err}");
    match out.status.code() {
        Some(0) => assert!(err.is_empty(), "{case}: clean run wrote to stderr: {err}"),
        Some(2) => {
            assert_eq!(err.lines().count(), 1, "{case}: {err}");
            assert!(err.starts_with("kaprobe: "), "{case}: {err}");
        }
        other => panic!("{case}: exit {other:?}, stderr {err}"),
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{case}: not JSON ({e}): {l}")))
        .collect();
    let summary = lines
        .last()
        .unwrap_or_else(|| panic!("{case}: no output"))
        .clone();
    assert_eq!(summary["type"], "summary", "{case}");
    summary
}

/// Offsets where each record of a classic pcap file starts, and the end.
fn record_starts(pcap: &[u8]) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut at = 24;
    while at + 16 <= pcap.len() {
        starts.push(at);
        let caplen = u32::from_le_bytes(pcap[at + 8..at + 12].try_into().unwrap()) as usize;
        at += 16 + caplen;
    }
    starts.push(pcap.len());
    starts
}

const PCAPS: [&str; 5] = [
    "alive.pcap",
    "dead-peer.pcap",
    "any-sll2.pcap",
    "ipv6.pcap",
    "windows-probes.pcap",
];

#[test]
fn cut_at_every_record_boundary_keeps_the_records_before_it() {
    for name in PCAPS {
        let pcap = capture(name);
        let starts = record_starts(&pcap);
        for (complete, &cut) in starts.iter().enumerate() {
            let case = format!("{name} cut after {complete} records");
            let summary = assert_handled(&case, &analyze("cut.pcap", &pcap[..cut]));
            assert_eq!(summary["frames"], complete as u64, "{case}");
        }
    }
}

#[test]
fn cut_inside_records_keeps_the_records_before_it() {
    for name in PCAPS {
        let pcap = capture(name);
        let starts = record_starts(&pcap);
        for (complete, pair) in starts.windows(2).enumerate() {
            for inside in [7, 16 + 5] {
                let cut = pair[0] + inside;
                if cut >= pair[1] {
                    continue;
                }
                let case = format!("{name} cut {inside} bytes into record {}", complete + 1);
                let out = analyze("inside.pcap", &pcap[..cut]);
                let summary = assert_handled(&case, &out);
                assert_eq!(
                    out.status.code(),
                    Some(2),
                    "{case}: a cut record is an error"
                );
                assert_eq!(summary["frames"], complete as u64, "{case}");
                assert!(
                    String::from_utf8_lossy(&out.stderr).contains("truncated"),
                    "{case}"
                );
            }
        }
    }
}

/// xorshift64*: deterministic, so a failing case can be reproduced.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[test]
fn random_bit_flips_never_crash() {
    let mut rng = Rng(0x6b61_7072_6f62_6521);
    for name in [
        "alive.pcap",
        "windows-probes.pcap",
        "alive.pcapng",
        "any-sll2.pcap",
        "zero-window.pcap",
    ] {
        let original = capture(name);
        for round in 0..60 {
            let mut bytes = original.clone();
            for _ in 0..1 + round % 4 {
                let at = (rng.next() % bytes.len() as u64) as usize;
                bytes[at] ^= 1 << (rng.next() % 8);
            }
            assert_handled(
                &format!("{name} flip round {round}"),
                &analyze("flip", &bytes),
            );
            assert_handled(
                &format!("{name} flip round {round}, --as-live"),
                &analyze_with("--as-live", "flip", &bytes),
            );
        }
    }
}

#[test]
fn wrong_link_types_in_the_header() {
    let pcap = capture("alive.pcap");
    let with_link = |dlt: u32| {
        let mut b = pcap.clone();
        b[20..24].copy_from_slice(&dlt.to_le_bytes());
        b
    };
    let out = analyze("user0.pcap", &with_link(147));
    assert_handled("link type 147", &out);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("link type 147"));
    // Ethernet frames read as raw IP or SLL are garbage, not a crash.
    for dlt in [101, 113, 276, 0] {
        let out = analyze("relabelled.pcap", &with_link(dlt));
        let summary = assert_handled(&format!("Ethernet relabelled as {dlt}"), &out);
        assert_eq!(summary["keepalives"], 0, "link type {dlt}");
    }
}

#[test]
fn empty_file_and_not_a_capture() {
    for (case, bytes) in [
        ("empty", &b""[..]),
        ("text", &b"GET / HTTP/1.1\r\n\r\n"[..]),
        ("gzip", &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0][..]),
    ] {
        let out = analyze(case, bytes);
        assert_handled(case, &out);
        assert_eq!(out.status.code(), Some(2), "{case}");
    }
}

#[test]
fn record_claiming_two_gigabytes() {
    let mut pcap = capture("alive.pcap");
    let third = record_starts(&pcap)[2];
    pcap[third + 8..third + 12].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
    pcap[third + 12..third + 16].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
    let out = analyze("huge.pcap", &pcap);
    let summary = assert_handled("2 GB caplen", &out);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(summary["frames"], 2);
}

#[test]
fn pcapng_with_an_unknown_block_reads_as_without() {
    let ng = capture("alive.pcapng");
    // Section header block length, then the interface block's length.
    let shb_len = u32::from_le_bytes(ng[4..8].try_into().unwrap()) as usize;
    let idb_len = u32::from_le_bytes(ng[shb_len + 4..shb_len + 8].try_into().unwrap()) as usize;
    let at = shb_len + idb_len;
    let mut unknown = Vec::new();
    unknown.extend_from_slice(&0x0bad_0bad_u32.to_le_bytes());
    unknown.extend_from_slice(&20u32.to_le_bytes());
    unknown.extend_from_slice(b"kapr");
    unknown.extend_from_slice(&20u32.to_le_bytes());
    unknown.extend_from_slice(&[0; 4]);
    unknown[16..20].copy_from_slice(&20u32.to_le_bytes());
    let mut bytes = ng[..at].to_vec();
    bytes.extend_from_slice(&unknown[..20]);
    bytes.extend_from_slice(&ng[at..]);
    let plain = assert_handled("pcapng as is", &analyze("plain.pcapng", &ng));
    let out = analyze("unknown.pcapng", &bytes);
    let summary = assert_handled("pcapng with an unknown block", &out);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(summary["keepalives"], plain["keepalives"]);
    assert_eq!(summary["frames"], plain["frames"]);
}

/// Found by the `capture_file` fuzz target: a pcapng interface counting in
/// whole seconds, one packet stamped ~1.7e19 of them after 1970. The idle
/// time and the duration were subtractions that overflowed.
#[test]
fn timestamp_far_out_of_range_is_analyzed_without_overflow() {
    let bytes = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/corpus/capture_file/idle-time-overflow-on-out-of-range-timestamp.pcapng"),
    )
    .unwrap();
    let out = analyze("far-timestamp.pcapng", &bytes);
    let summary = assert_handled("far timestamp", &out);
    assert_eq!(summary["frames"], 3);
}

/// Found by the `capture_file` fuzz target: two packets 57,000 years apart.
/// `--as-live` ran the capture's clock through every minute between them,
/// one sweep for silent connections each (and did not see SIGTERM). Now
/// only probes and resending sides waiting for a judgement stop the clock.
#[test]
fn as_live_crosses_a_clock_jump_of_millennia_at_once() {
    let bytes = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/corpus/capture_file/as-live-clock-jump-of-millennia.pcapng"),
    )
    .unwrap();
    let out = analyze_with("--as-live", "millennia.pcapng", &bytes);
    let summary = assert_handled("clock jump", &out);
    assert_eq!(summary["frames"], 2);
    assert_eq!(summary["judged"]["unanswered"], 0);
}

/// `pcap` as if captured with snapshot length `snap`: each record keeps its
/// first `snap` bytes and its length on the wire.
fn with_snaplen(pcap: &[u8], snap: usize) -> Vec<u8> {
    let mut out = pcap[..24].to_vec();
    out[16..20].copy_from_slice(&(snap as u32).to_le_bytes());
    let starts = record_starts(pcap);
    for pair in starts.windows(2) {
        let (header, data) = pcap[pair[0]..pair[1]].split_at(16);
        let kept = &data[..data.len().min(snap)];
        out.extend_from_slice(&header[..8]);
        out.extend_from_slice(&(kept.len() as u32).to_le_bytes());
        out.extend_from_slice(&header[12..16]);
        out.extend_from_slice(kept);
    }
    out
}

/// The JSON lines of `analyze --json` on `bytes`, without the file names.
fn analyzed_lines(case: &str, bytes: &[u8]) -> Vec<Value> {
    let out = analyze(case, bytes);
    assert_handled(case, &out);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).unwrap();
            let o = v.as_object_mut().unwrap();
            o.remove("file");
            o.remove("files");
            v
        })
        .collect()
}

/// A capture made with a small snapshot length (`tcpdump -s 64`, the
/// headers-only habit) reads as the whole capture as soon as the fixed
/// headers are in: TCP options cut off are read as far as they go. One byte
/// less and every frame is undecodable, and said to be cut short.
#[test]
fn captures_cut_short_by_the_snapshot_length() {
    // Link header + IP header + the 20 fixed bytes of TCP.
    for (name, fixed) in [
        ("alive.pcap", 14 + 20 + 20),
        ("dead-peer.pcap", 14 + 20 + 20),
        ("any-sll2.pcap", 20 + 20 + 20),
        ("ipv6.pcap", 14 + 40 + 20),
    ] {
        let pcap = capture(name);
        let whole = analyzed_lines(name, &pcap);
        let headers = analyzed_lines(&format!("{fixed}-{name}"), &with_snaplen(&pcap, fixed));
        assert_eq!(headers, whole, "{name} at -s {fixed}");
        let cut = with_snaplen(&pcap, fixed - 1);
        let summary = analyzed_lines(&format!("{}-{name}", fixed - 1), &cut)
            .pop()
            .unwrap();
        let frames = whole.last().unwrap()["frames"].clone();
        assert_eq!(summary["undecodable"], frames, "{name}: {summary}");
        assert_eq!(summary["cut_short"], frames, "{name}: {summary}");
        assert_eq!(summary["keepalives"], 0, "{name}: {summary}");
    }
    // Windows' 1-byte probes with their byte cut off: the same probes.
    let pcap = capture("windows-probes.pcap");
    let whole = analyzed_lines("windows-probes.pcap", &pcap);
    let headers = analyzed_lines("54-windows-probes.pcap", &with_snaplen(&pcap, 54));
    let events = |lines: &[Value]| -> Vec<Value> {
        lines
            .iter()
            .filter(|v| v["type"] != "connection")
            .cloned()
            .collect()
    };
    assert_eq!(events(&headers), events(&whole));
    let verdict = |lines: &[Value]| {
        lines.iter().find(|v| v["type"] == "connection").unwrap()["verdict"].clone()
    };
    assert_eq!(verdict(&headers), verdict(&whole));
    // The text report says why the frames were left out.
    let path = temp("53-alive-text.pcap");
    std::fs::write(&path, with_snaplen(&capture("alive.pcap"), 53)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kaprobe"))
        .arg("analyze")
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let expected = "18 undecodable frames (18 cut short by the snapshot length)";
    assert!(text.contains(expected), "{text}");
}
