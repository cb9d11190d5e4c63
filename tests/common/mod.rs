//! Harness for privileged tests: two network namespaces on a veth pair, real
//! Linux endpoints (tests/support/peer.py) and kaprobe run inside them.
//!
//! Addresses are the documentation ranges 192.0.2.0/24 and 2001:db8::/64,
//! and exist only inside the namespaces the test creates; nothing is sent
//! anywhere else. Namespaces are removed when the `Net` is dropped.
//!
//! By hand: `sudo -E cargo test --test sniff -- --nocapture`. Without root the
//! tests print why they are skipped; under CI (CI set) they must run.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const A4: &str = "192.0.2.1";
pub const B4: &str = "192.0.2.2";
pub const A6: &str = "2001:db8::1";
pub const B6: &str = "2001:db8::2";

/// Whether this process may build namespaces; if not, say why (and fail
/// under CI, which must run these tests).
pub fn privileged(test: &str) -> bool {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false);
    let ip = Command::new("ip").arg("-V").output().is_ok();
    let python = Command::new("python3").arg("-V").output().is_ok();
    let missing = match (root, ip, python) {
        (false, _, _) => Some("needs root (network namespaces, raw capture)"),
        (_, false, _) => Some("needs iproute2 (`ip`)"),
        (_, _, false) => Some("needs python3 for the endpoints"),
        _ => None,
    };
    match missing {
        None => true,
        Some(why) if std::env::var_os("CI").is_some() => {
            panic!("{test}: {why}, and CI must run it")
        }
        Some(why) => {
            eprintln!("skipping {test}: {why}; run `sudo -E cargo test` to include it");
            false
        }
    }
}

fn run(args: &[&str]) {
    let status = Command::new(args[0])
        .args(&args[1..])
        .status()
        .expect("spawn");
    assert!(status.success(), "failed: {}", args.join(" "));
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Two namespaces, `a` (client side) and `b` (server side), joined by veth.
pub struct Net {
    pub a: String,
    pub b: String,
    pub a_if: String,
    pub b_if: String,
}

impl Net {
    pub fn new() -> Net {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let id = format!("{}{}", std::process::id() % 100000, n);
        let net = Net {
            a: format!("kp-test-{id}-a"),
            b: format!("kp-test-{id}-b"),
            a_if: format!("kpa{id}"),
            b_if: format!("kpb{id}"),
        };
        run(&["ip", "netns", "add", &net.a]);
        run(&["ip", "netns", "add", &net.b]);
        run(&[
            "ip", "link", "add", &net.a_if, "netns", &net.a, "type", "veth", "peer", "name",
            &net.b_if, "netns", &net.b,
        ]);
        for (ns, ifname, v4, v6) in [(&net.a, &net.a_if, A4, A6), (&net.b, &net.b_if, B4, B6)] {
            run(&[
                "ip",
                "-n",
                ns,
                "addr",
                "add",
                &format!("{v4}/24"),
                "dev",
                ifname,
            ]);
            run(&[
                "ip",
                "-n",
                ns,
                "addr",
                "add",
                &format!("{v6}/64"),
                "dev",
                ifname,
                "nodad",
            ]);
            run(&["ip", "-n", ns, "link", "set", ifname, "up"]);
            run(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        net
    }

    /// A command to run inside namespace `ns`.
    pub fn cmd(&self, ns: &str, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns, program]);
        c
    }

    /// Run `ip -n NS ...` and require success.
    pub fn ip(&self, ns: &str, args: &[&str]) {
        let mut all = vec!["ip", "-n", ns];
        all.extend_from_slice(args);
        run(&all);
    }

    /// Drop every packet the server side sends to the client (a blackhole
    /// route for the client's addresses): the server goes silent.
    pub fn silence_server(&self) {
        self.ip(&self.b, &["route", "add", "blackhole", &format!("{A4}/32")]);
        self.ip(
            &self.b,
            &["-6", "route", "add", "blackhole", &format!("{A6}/128")],
        );
    }

    /// Undo [`Net::silence_server`]: the server's packets reach the client again.
    pub fn unsilence_server(&self) {
        self.ip(&self.b, &["route", "del", "blackhole", &format!("{A4}/32")]);
        self.ip(
            &self.b,
            &["-6", "route", "del", "blackhole", &format!("{A6}/128")],
        );
    }

    /// Start peer.py in `ns` and wait for it to say "ready".
    pub fn peer(&self, ns: &str, args: &[&str]) -> Peer {
        let script = root().join("tests/support/peer.py");
        let mut child = self
            .cmd(ns, "python3")
            .arg(script)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn peer.py");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).expect("read peer output");
        assert_eq!(line.trim(), "ready", "peer.py {args:?} did not get ready");
        Peer { child, out }
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for ns in [&self.a, &self.b] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

pub struct Peer {
    pub child: Child,
    pub out: BufReader<ChildStdout>,
}

impl Peer {
    /// The client's closing line (JSON), waiting for it to end.
    pub fn result(mut self) -> String {
        let mut line = String::new();
        let _ = self.out.read_line(&mut line);
        let _ = self.child.wait();
        line
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub fn kaprobe() -> &'static str {
    env!("CARGO_BIN_EXE_kaprobe")
}

/// A path `name` in a new directory of its own under the system's temporary
/// one. The directory goes, with whatever the test wrote in it, when the
/// returned `Temp` is dropped: at the end of the test, passed or failed.
pub fn temp(name: &str) -> Temp {
    static TEMPS: AtomicU32 = AtomicU32::new(0);
    let n = TEMPS.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("kaprobe-test-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    Temp { dir, path }
}

pub struct Temp {
    dir: PathBuf,
    path: PathBuf,
}

impl std::ops::Deref for Temp {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<Path> for Temp {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<std::ffi::OsStr> for Temp {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.path.as_os_str()
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Poll until `f` holds or `limit` passes.
pub fn wait_for(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

/// tcpdump in namespace `ns` on every interface, writing `path`; immediate
/// mode, so that the last packets before SIGINT are in the file.
pub fn tcpdump(net: &Net, ns: &str, path: &Path) -> Child {
    let child = net
        .cmd(ns, "tcpdump")
        .args([
            "-i",
            "any",
            "-U",
            "--immediate-mode",
            "-s",
            "256",
            "-w",
            path.to_str().unwrap(),
            "tcp",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("tcpdump (Debian package tcpdump)");
    std::thread::sleep(Duration::from_millis(700));
    child
}

/// Send `sig` (as `kill` names it: "-INT", "-USR1") to a child.
pub fn signal(child: &Child, sig: &str) {
    let pid = child.id().to_string();
    Command::new("kill").args([sig, &pid]).status().unwrap();
}

/// The common host firewall (ufw, firewalld): invalid packets dropped on
/// input only.
pub const DROP_INVALID_INPUT: &str = "table inet kp {
  chain input { type filter hook input priority 0; ct state invalid drop; }
}";

/// Load an nftables ruleset in namespace `ns`.
pub fn nft(net: &Net, ns: &str, ruleset: &str) {
    use std::io::Write;
    let mut child = net
        .cmd(ns, "nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("nft (Debian package nftables)");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(ruleset.as_bytes()).unwrap();
    drop(stdin);
    assert!(child.wait().unwrap().success(), "nft -f: {ruleset}");
}

/// Every TCP segment of a capture file, with its capture time.
pub fn segments(path: &Path) -> Vec<(i64, kaprobe::wire::Segment)> {
    let mut cap = kaprobe::capture::FileCapture::open(path, None).unwrap();
    let link = cap.link();
    let mut all = Vec::new();
    while let Some(frame) = cap.next_frame().unwrap() {
        if let Ok(Some(seg)) = kaprobe::wire::decode(link, frame.data) {
            all.push((frame.time, seg));
        }
    }
    all
}

/// `kaprobe analyze --json ARGS FILE...`, which must succeed: its lines.
pub fn analyze_json_with(args: &[&str], files: &[PathBuf]) -> Vec<Value> {
    let out = Command::new(kaprobe())
        .args(["analyze", "--json"])
        .args(args)
        .args(files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Wall clock in microseconds, as capture timestamps count.
pub fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}
