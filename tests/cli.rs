//! The command line as a user meets it: bad input gets one clear line on
//! stderr and exit status 2, never a panic, and what was read is still
//! reported.

use std::path::Path;
use std::process::{Command, Output};

use pcap::{Capture, Linktype, Packet, PacketHeader};

mod common;
use common::temp;

fn kaprobe(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kaprobe"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run kaprobe")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn capture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("captures")
        .join(name)
        .display()
        .to_string()
}

/// One clear line on stderr, exit 2, no panic.
fn assert_one_line_error(out: &Output, needle: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("kaprobe: ") && err.contains(needle),
        "{err}"
    );
}

#[test]
fn missing_file() {
    let out = kaprobe(&["analyze", "/nonexistent/trace.pcap"]);
    assert_one_line_error(&out, "no such file");
}

#[test]
fn a_directory_names_the_files_to_give() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures");
    let out = kaprobe(&["analyze", &format!("{}/", dir.display())]);
    let expected = format!(
        "a directory, not a capture (name the files in it: {}/*.pcap)",
        dir.display()
    );
    assert_one_line_error(&out, &expected);
}

#[test]
fn not_a_capture() {
    let path = temp("text.pcap");
    std::fs::write(&path, "this is not a capture\n").unwrap();
    let out = kaprobe(&["analyze", path.to_str().unwrap()]);
    assert_one_line_error(&out, "not a pcap or pcapng capture");
}

/// A capture compressed by `sniff -z gzip`: the error says how to read it,
/// and that way works.
#[test]
fn a_gzipped_capture_says_how_to_read_it() {
    let capture = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures/alive.pcap");
    let path = temp("alive.pcap.gz");
    let gz = Command::new("gzip")
        .arg("-c")
        .arg(&capture)
        .output()
        .unwrap();
    std::fs::write(&path, gz.stdout).unwrap();
    let out = kaprobe(&["analyze", path.to_str().unwrap()]);
    let how = format!("zcat {} | kaprobe analyze -", path.display());
    assert_one_line_error(
        &out,
        &format!("gzip-compressed, which libpcap cannot read: {how}"),
    );
    let piped = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "zcat {} | {} analyze -",
            path.display(),
            env!("CARGO_BIN_EXE_kaprobe")
        ))
        .output()
        .unwrap();
    let plain = kaprobe(&["analyze", capture.to_str().unwrap()]);
    assert_eq!(piped.status.code(), Some(0));
    assert_eq!(piped.stdout, plain.stdout);
}

#[test]
fn unknown_link_type_is_named() {
    let path = temp("user0.pcap");
    let dead = Capture::dead(Linktype(147)).unwrap();
    let mut save = dead.savefile(&path).unwrap();
    let header = PacketHeader {
        ts: libc_timeval(),
        caplen: 4,
        len: 4,
    };
    save.write(&Packet::new(&header, &[1, 2, 3, 4]));
    drop(save);
    let out = kaprobe(&["analyze", path.to_str().unwrap()]);
    assert_one_line_error(&out, "link type 147");
}

fn libc_timeval() -> libc::timeval {
    libc::timeval {
        tv_sec: 1,
        tv_usec: 0,
    }
}

#[test]
fn truncated_capture_keeps_what_was_read() {
    let full = std::fs::read(capture("alive.pcap")).unwrap();
    let path = temp("cut.pcap");
    std::fs::write(&path, &full[..full.len() - 7]).unwrap();
    let out = kaprobe(&["analyze", "--json", path.to_str().unwrap()]);
    assert_one_line_error(&out, "truncated");
    let text = stdout(&out);
    let summary = text.lines().last().expect("a summary line");
    let v: serde_json::Value = serde_json::from_str(summary).unwrap();
    assert_eq!(v["type"], "summary");
    assert!(v["frames"].as_u64().unwrap() > 5, "{summary}");
    assert!(v["keepalives"].as_u64().unwrap() > 0, "{summary}");
}

#[test]
fn bad_filter() {
    let out = kaprobe(&["analyze", &capture("alive.pcap"), "port", "nosuchport"]);
    assert_one_line_error(&out, "bad filter 'port nosuchport'");
}

#[test]
fn filter_keeps_file_frame_numbers() {
    let all = stdout(&kaprobe(&["analyze", "--json", &capture("alive.pcap")]));
    let filtered = stdout(&kaprobe(&[
        "analyze",
        "--json",
        &capture("alive.pcap"),
        "tcp",
    ]));
    let frames = |text: &str| -> Vec<u64> {
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["type"] == "keepalive")
            .filter_map(|v| v["frame"].as_u64())
            .collect()
    };
    assert!(!frames(&all).is_empty());
    assert_eq!(frames(&all), frames(&filtered));
}

/// Filter words that name directories where kaprobe runs (`src` in a
/// source tree) are still filter words.
#[test]
fn filter_words_that_name_directories_are_a_filter() {
    let dir = temp("dirs");
    for d in ["src", "host", "port"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    let out = Command::new(env!("CARGO_BIN_EXE_kaprobe"))
        .args([
            "analyze",
            "--json",
            &capture("alive.pcap"),
            "src",
            "host",
            "192.0.2.1",
        ])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let summary: serde_json::Value =
        serde_json::from_str(stdout(&out).lines().last().unwrap()).unwrap();
    // The client's 4 probes; the server's answers are filtered out.
    assert_eq!(summary["keepalives"], 4, "{summary}");
    assert_eq!(summary["frames"], 10, "{summary}");
}

#[test]
fn filter_that_matches_nothing_reports_nothing() {
    let out = kaprobe(&["analyze", "--json", &capture("alive.pcap"), "udp"]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    let v: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(v["keepalives"], 0);
    assert_eq!(v["connections"], 0);
}

#[test]
fn later_files_are_read_after_a_bad_one() {
    let out = kaprobe(&[
        "analyze",
        "--json",
        "/nonexistent.pcap",
        &capture("alive.pcap"),
    ]);
    assert_one_line_error(&out, "no such file");
    assert!(stdout(&out).contains("\"type\":\"keepalive\""));
}

#[test]
fn closed_pipe_is_not_an_error() {
    use std::io::Read;
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_kaprobe"))
        .args(["analyze", "--json", &capture("alive.pcap")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(!err.contains("panicked"), "{err}");
    assert!(status.code() == Some(0), "status {status:?}, stderr {err}");
}

#[test]
fn poke_with_a_bad_port_names_the_argument_and_exits_2() {
    let out = kaprobe(&["poke", "192.0.2.2:http"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("'192.0.2.2:http' is not HOST, HOST:PORT or [IPV6]:PORT"));
}

#[test]
fn poke_interval_below_one_second_is_refused() {
    let out = kaprobe(&["poke", "192.0.2.2:5432", "--interval", "0.2"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--interval 0.2 is below 1 s"));
}

#[test]
fn sniff_and_poke_times_must_be_seconds() {
    // sniff's waits and limits must be above 0: a grace of 0 would call
    // every probe unanswered before its ACK could come.
    let above_zero = "a number of seconds above 0";
    for (cmd, flag, value, expected) in [
        ("sniff", "--grace", "nan", above_zero),
        ("sniff", "--grace", "0", above_zero),
        ("sniff", "--stall-after", "-1", above_zero),
        ("sniff", "--stall-after", "0", above_zero),
        ("sniff", "--idle-timeout", "inf", above_zero),
        ("sniff", "--idle-timeout", "0.0", above_zero),
        ("sniff", "--duration", "soon", above_zero),
        ("sniff", "--duration", "0", above_zero),
        (
            "poke",
            "--interval",
            "NaN",
            "a number of seconds, 0 or more",
        ),
    ] {
        let arg = format!("{flag}={value}");
        let out = kaprobe(&[cmd, &arg, "192.0.2.2:5432"]);
        assert_eq!(out.status.code(), Some(2), "{cmd} {arg}");
        let err = stderr(&out);
        let first = err.lines().next().unwrap_or_default();
        assert!(
            first.contains(&format!("'{value}' for '{flag}")) && first.contains(expected),
            "{cmd} {arg}: {err}"
        );
    }
}

/// analyze takes sniff's times only with `--as-live`, which judges by them,
/// and by the same rule: above 0.
#[test]
fn analyze_takes_the_live_times_with_as_live() {
    let alive = capture("alive.pcap");
    for flag in ["--grace", "--stall-after", "--idle-timeout"] {
        let out = kaprobe(&["analyze", flag, "2", &alive]);
        assert_eq!(out.status.code(), Some(2), "{flag}");
        let err = stderr(&out);
        assert!(err.contains("--as-live"), "{flag}: {err}");
        let out = kaprobe(&["analyze", "--as-live", flag, "0", &alive]);
        assert_eq!(out.status.code(), Some(2), "{flag} 0");
        assert!(stderr(&out).contains("a number of seconds above 0"));
        let out = kaprobe(&["analyze", "--as-live", flag, "2", &alive]);
        assert!(out.status.success(), "{flag} 2: {}", stderr(&out));
        assert!(stdout(&out).contains("judged live: 0 unanswered"));
    }
}

#[test]
fn sniff_counts_and_sizes_must_be_in_range() {
    // As tcpdump refuses `-c 0`: it would stop before the first packet.
    for (args, flag) in [
        (&["-c", "0"][..], "'0' for '--count <N>'"),
        (&["-c", "2.5"][..], "'2.5' for '--count <N>'"),
        (
            &["-w", "x.pcap", "-G", "0"][..],
            "'0' for '--rotate-seconds <SECONDS>'",
        ),
        (
            &["-w", "x.pcap", "-C", "1", "-W", "0"][..],
            "'0' for '--file-count <N>'",
        ),
    ] {
        assert_refused(args, flag, "expected a whole number, 1 or more");
    }
    // As tcpdump's -B: at least 1 KiB, and no more than libpcap's int holds.
    for (args, flag) in [
        (&["-B", "0"][..], "'0' for '--buffer-size <KIB>'"),
        (
            &["-B", "2097152"][..],
            "'2097152' for '--buffer-size <KIB>'",
        ),
    ] {
        assert_refused(args, flag, "expected a buffer size in KiB, 1 to 2097151");
    }
}

/// `kaprobe sniff ARGS` is one clap error about `flag` that says `expected`.
fn assert_refused(args: &[&str], flag: &str, expected: &str) {
    let out = kaprobe(&[&["sniff"][..], args].concat());
    assert_eq!(out.status.code(), Some(2), "{args:?}");
    let err = stderr(&out);
    let first = err.lines().next().unwrap_or_default();
    assert!(first.contains(flag) && first.contains(expected), "{err}");
}

#[test]
fn poke_needs_a_peer_or_all() {
    let out = kaprobe(&["poke"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("<HOST[:PORT]>"), "{}", stderr(&out));
}

#[test]
fn poke_into_a_missing_namespace_says_which() {
    let out = kaprobe(&["poke", "192.0.2.2:5432", "--netns", "kaprobe-no-such-ns"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("cannot enter network namespace 'kaprobe-no-such-ns'"));
}

#[test]
fn man_pages_document_every_subcommand_and_its_flags() {
    let main = stdout(&kaprobe(&["man"]));
    for sub in ["kaprobe\\-analyze", "kaprobe\\-sniff", "kaprobe\\-poke"] {
        assert!(main.contains(sub), "kaprobe(1) names {sub}");
    }
    // Every page kaprobe(1) refers to can be printed, so installed too.
    let named: Vec<&str> = main
        .split("kaprobe\\-")
        .skip(1)
        .map(|rest| {
            rest.split(|c: char| !c.is_ascii_lowercase())
                .next()
                .unwrap()
        })
        .collect();
    assert!(named.len() >= 5, "{named:?}");
    for sub in named {
        let page = kaprobe(&["man", sub]);
        assert_eq!(
            page.status.code(),
            Some(0),
            "kaprobe man {sub}: {}",
            stderr(&page)
        );
        assert!(stdout(&page).contains(&format!(".TH kaprobe-{sub} 1")));
    }
    let poke = kaprobe(&["man", "poke"]);
    assert_eq!(poke.status.code(), Some(0));
    let page = stdout(&poke);
    assert!(page.contains(".TH kaprobe-poke 1"), "{page}");
    for flag in ["one\\-byte", "netns", "interval", "json"] {
        assert!(page.contains(flag), "kaprobe-poke(1) documents --{flag}");
    }
    assert!(stdout(&kaprobe(&["man", "sniff"])).contains("list\\-interfaces"));
    // Only `kaprobe` itself takes --version; each page still names the version.
    assert!(main.contains("\\-\\-version"), "{main}");
    for sub in ["analyze", "sniff", "poke"] {
        let page = stdout(&kaprobe(&["man", sub]));
        assert!(!page.contains("\\-\\-version"), "kaprobe-{sub}(1): {page}");
        assert!(page.contains(env!("CARGO_PKG_VERSION")), "kaprobe-{sub}(1)");
        let taken = kaprobe(&[sub, "--version"]);
        assert_eq!(taken.status.code(), Some(2), "kaprobe {sub} --version");
    }
}

#[test]
fn completions_for_bash_zsh_and_fish_know_the_subcommands() {
    for shell in ["bash", "zsh", "fish"] {
        let out = kaprobe(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let script = stdout(&out);
        for word in ["analyze", "sniff", "poke", "one-byte"] {
            assert!(script.contains(word), "{shell} completion knows {word}");
        }
    }
}

/// tcpdump's -n and -nn are habits: taken, and the report is the same.
#[test]
fn tcpdump_numeric_flags_are_taken_and_change_nothing() {
    let file = capture("alive.pcap");
    let plain = kaprobe(&["analyze", &file]);
    assert_eq!(plain.status.code(), Some(0), "{}", stderr(&plain));
    for flag in ["-n", "-nn"] {
        let with = kaprobe(&["analyze", flag, &file]);
        assert_eq!(with.status.code(), Some(0), "{flag}: {}", stderr(&with));
        assert_eq!(stdout(&with), stdout(&plain), "{flag}");
    }
}

/// `-` reads the capture from standard input, as `tcpdump -r -` does:
/// `ssh host tcpdump -w - ... | kaprobe analyze -`. Same report as the file.
#[test]
fn dash_reads_the_capture_from_stdin() {
    for name in ["dead-peer.pcap", "alive.pcapng"] {
        let file = capture(name);
        let from_file = kaprobe(&["analyze", "--json", &file, "port", "4242"]);
        assert_eq!(from_file.status.code(), Some(0), "{}", stderr(&from_file));
        let from_stdin = Command::new(env!("CARGO_BIN_EXE_kaprobe"))
            .args(["analyze", "--json", "-", "port", "4242"])
            .stdin(std::fs::File::open(&file).unwrap())
            .output()
            .unwrap();
        assert_eq!(from_stdin.status.code(), Some(0), "{}", stderr(&from_stdin));
        let without_file = |out: &Output| -> Vec<serde_json::Value> {
            stdout(out)
                .lines()
                .map(|l| {
                    let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                    let fields = v.as_object_mut().unwrap();
                    fields.remove("file");
                    fields.remove("files");
                    v
                })
                .collect()
        };
        let lines = without_file(&from_stdin);
        assert!(lines.iter().any(|v| v["type"] == "keepalive"), "{name}");
        assert_eq!(lines, without_file(&from_file), "{name}");
    }
}

/// A capture streamed on standard input (`tcpdump -U -w - | kaprobe
/// analyze -`) shows each event as its packet arrives, not when a batch
/// fills or the stream ends; Ctrl-C then ends it with the report of what
/// came, exit 0, as for sniff.
#[test]
fn a_stream_on_stdin_shows_events_as_they_come_and_ends_on_ctrl_c() {
    use std::io::{BufRead, BufReader, Write};
    use std::process::Stdio;
    use std::sync::mpsc;
    use std::time::Duration;

    let bytes = std::fs::read(capture("dead-peer.pcap")).unwrap();
    // The 24-byte file header, then records 1-9: the first probe (#8) and
    // its ACK (#9). Each record: a 16-byte header whose bytes 8..12 give
    // the captured length (little-endian here), then the bytes.
    let mut end = 24;
    for _ in 0..9 {
        let caplen = u32::from_le_bytes(bytes[end + 8..end + 12].try_into().unwrap());
        end += 16 + caplen as usize;
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_kaprobe"))
        .args(["analyze", "--json", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&bytes[..end]).unwrap();
    stdin.flush().unwrap();
    let (tx, rx) = mpsc::channel();
    let out = BufReader::new(child.stdout.take().unwrap());
    let reader = std::thread::spawn(move || {
        for line in out.lines().map_while(Result::ok) {
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            let _ = tx.send(v);
        }
    });
    let ack = loop {
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(v) if v["type"] == "keepalive_ack" => break v,
            Ok(_) => continue,
            Err(_) => {
                let _ = child.kill();
                panic!("no keepalive_ack within 10 s of its packet, with the stream still open");
            }
        }
    };
    assert_eq!(ack["frame"], 9, "{ack}");
    let pid = child.id().to_string();
    Command::new("kill").args(["-INT", &pid]).status().unwrap();
    let status = child.wait().unwrap();
    drop(stdin);
    reader.join().unwrap();
    let rest: Vec<serde_json::Value> = rx.try_iter().collect();
    assert_eq!(status.code(), Some(0), "{rest:?}");
    let summary = rest.last().expect("a summary after Ctrl-C");
    assert_eq!(summary["type"], "summary", "{summary}");
    assert_eq!(summary["frames"], 9, "{summary}");
    assert_eq!(summary["keepalives"], 1, "{summary}");
    assert!(rest.iter().any(|v| v["type"] == "connection"), "{rest:?}");
}

/// tcpdump habits: `-r FILE` (then every word is filter) and `-F FILE` (the
/// filter from a file, `#` comments and all) give what the plain words give.
#[test]
fn dash_r_and_dash_f_read_as_tcpdump_does() {
    let file = capture("dead-peer.pcap");
    let words = kaprobe(&["analyze", "--json", &file, "port", "4242", "and", "tcp"]);
    assert_eq!(words.status.code(), Some(0), "{}", stderr(&words));
    assert!(stdout(&words).contains("\"keepalive\""));
    let read = kaprobe(&[
        "analyze", "--json", "-r", &file, "port", "4242", "and", "tcp",
    ]);
    assert_eq!(stdout(&read), stdout(&words), "{}", stderr(&read));
    let filter = temp("filter.txt");
    std::fs::write(
        &filter,
        "# the test server\nport 4242 # its port\n  and tcp\n",
    )
    .unwrap();
    let f = filter.to_str().unwrap();
    let from_file = kaprobe(&["analyze", "--json", "-F", f, &file]);
    assert_eq!(stdout(&from_file), stdout(&words), "{}", stderr(&from_file));
    let other = kaprobe(&["analyze", "--json", "-F", f, &file, "port", "1"]);
    assert_one_line_error(&other, "a filter in words and one in -F");
    let missing = kaprobe(&["analyze", "-F", "/nonexistent/kp-filter", &file]);
    assert_one_line_error(&missing, "cannot read filter file /nonexistent/kp-filter");
    let sniff = kaprobe(&["sniff", "-i", "lo", "-F", "/nonexistent/kp-filter"]);
    assert_one_line_error(&sniff, "cannot read filter file /nonexistent/kp-filter");
}

/// Colour as ls and grep do it: on a terminal by default (`auto`), never
/// into a pipe or with NO_COLOR, and as `--color` says when it says.
#[test]
fn colour_on_a_terminal_and_never_into_a_pipe() {
    const ESC: &str = "\u{1b}[";
    let file = capture("dead-peer.pcap");
    let always = kaprobe(&["analyze", "-v", "--color", "always", &file]);
    assert!(stdout(&always).contains(ESC), "{}", stdout(&always));
    for args in [["--color", "never"], ["--color", "auto"]] {
        let out = kaprobe(&["analyze", "-v", args[0], args[1], &file]);
        assert!(!stdout(&out).contains(ESC), "{args:?}: {}", stdout(&out));
    }
    // A terminal: `script` (util-linux) runs kaprobe on a pseudo-terminal.
    let on_terminal = |no_color: Option<&str>| -> Option<String> {
        let line = format!("{} analyze -v {file}", env!("CARGO_BIN_EXE_kaprobe"));
        let mut cmd = Command::new("script");
        cmd.args(["-qec", &line, "/dev/null"])
            .env_remove("NO_COLOR");
        if let Some(v) = no_color {
            cmd.env("NO_COLOR", v);
        }
        let out = cmd.output().ok()?;
        Some(stdout(&out))
    };
    let Some(tty) = on_terminal(None) else {
        println!("skipped the terminal half: no `script` (Debian package bsdutils)");
        return;
    };
    assert!(tty.contains("dead") && tty.contains(ESC), "{tty}");
    let plain = on_terminal(Some("1")).unwrap();
    assert!(plain.contains("dead") && !plain.contains(ESC), "{plain}");
}

/// `analyze -` with the keyboard as standard input says what to do instead
/// of waiting for a pcap header to be typed.
#[test]
fn dash_on_a_terminal_says_to_pipe_a_capture_in() {
    let line = format!("{} analyze -", env!("CARGO_BIN_EXE_kaprobe"));
    let Ok(out) = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .stdin(std::process::Stdio::null())
        .output()
    else {
        println!("skipped: no `script` (Debian package bsdutils) for a pseudo-terminal");
        return;
    };
    // script passes the exit status on and shows stderr on the terminal.
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("standard input is a terminal: pipe a capture in"),
        "{}",
        stdout(&out)
    );
}
