//! kaprobe as an ordinary user: with file capabilities it captures and
//! pokes, without them it says which capability is missing and how to give
//! it; `analyze` needs none. Both ends and kaprobe run in namespaces made by
//! the test (tests/common/mod.rs).
//!
//! By hand: `sudo -E cargo test --test privilege -- --nocapture` (needs
//! `setcap`, Debian package libcap2-bin, and `setpriv` from util-linux).

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};

use common::*;

/// A copy of the binary, with the given file capabilities (or none), named
/// for this process (a second run of the suite at the same time would find
/// its own copy in use) and removed when the test is done with it.
fn binary(name: &str, caps: Option<&str>) -> Binary {
    let file = format!("{name}-{}", std::process::id());
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(file);
    std::fs::copy(kaprobe(), &path).expect("copy kaprobe");
    let copy = Binary(path);
    if let Some(caps) = caps {
        let ok = Command::new("setcap")
            .args([caps, copy.to_str().unwrap()])
            .status()
            .expect("setcap (Debian package libcap2-bin)");
        assert!(ok.success(), "setcap {caps}");
    }
    copy
}

struct Binary(PathBuf);

impl std::ops::Deref for Binary {
    type Target = PathBuf;
    fn deref(&self) -> &PathBuf {
        &self.0
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Run `bin args` in namespace `ns` as the user nobody, no inherited caps.
///
/// Tried again while the exec fails with ETXTBSY: the copy `binary` just
/// wrote can still be open for writing in a child that another test's thread
/// forked during the copy and that has not reached its own exec yet.
fn as_nobody(net: &Net, ns: &str, bin: &PathBuf, args: &[&str]) -> Output {
    for _ in 0..20 {
        let out = net
            .cmd(ns, "setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "--inh-caps=-all",
                "--",
            ])
            .arg(bin)
            .args(args)
            .output()
            .expect("setpriv (util-linux)");
        if !(out.status.code() == Some(126) && stderr(&out).contains("Text file busy")) {
            return out;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("{} stayed busy (ETXTBSY) for a second", bin.display());
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn without_capabilities_sniff_and_poke_say_what_is_missing() {
    if !privileged("without_capabilities_sniff_and_poke_say_what_is_missing") {
        return;
    }
    let net = Net::new();
    let plain = binary("kaprobe-plain", None);
    let out = as_nobody(
        &net,
        &net.a,
        &plain,
        &["sniff", "-i", "lo", "--duration", "1"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("missing CAP_NET_RAW and CAP_NET_ADMIN"),
        "{err}"
    );
    assert!(err.contains("setcap cap_net_raw,cap_net_admin+ep"), "{err}");

    let _server = net.peer(&net.b, &["server", B4, "7000"]);
    let _client = net.peer(&net.a, &["client", B4, "7000", "--hold", "3"]);
    let out = as_nobody(&net, &net.a, &plain, &["poke", &format!("{B4}:7000")]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("no permission to open a raw socket"), "{err}");
    assert!(err.contains("missing CAP_NET_RAW"), "{err}");
}

#[test]
fn with_file_capabilities_sniff_and_poke_work_as_an_ordinary_user() {
    if !privileged("with_file_capabilities_sniff_and_poke_work_as_an_ordinary_user") {
        return;
    }
    let net = Net::new();
    let capable = binary("kaprobe-caps", Some("cap_net_raw,cap_net_admin+ep"));
    let out = as_nobody(
        &net,
        &net.a,
        &capable,
        &["sniff", "-i", "lo", "--duration", "1"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("listening on lo"), "{}", stderr(&out));

    let _server = net.peer(&net.b, &["server", B4, "7000"]);
    let _client = net.peer(&net.a, &["client", B4, "7000", "--hold", "3"]);
    let out = as_nobody(&net, &net.a, &capable, &["poke", &format!("{B4}:7000")]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    assert!(text.contains(" alive "), "{text}");
}

/// `-Z` changes user only from root: with file capabilities there is no
/// root to leave, and kaprobe says so rather than capture as it is.
#[test]
fn sniff_z_without_root_is_one_clear_line() {
    if !privileged("sniff_z_without_root_is_one_clear_line") {
        return;
    }
    let net = Net::new();
    let capable = binary("kaprobe-caps-z", Some("cap_net_raw,cap_net_admin+ep"));
    let out = as_nobody(
        &net,
        &net.a,
        &capable,
        &["sniff", "-i", "lo", "-Z", "nobody", "--duration", "1"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("-Z nobody needs kaprobe started as root, and it runs as uid 65534"),
        "{err}"
    );
}

#[test]
fn analyze_needs_no_privilege() {
    if !privileged("analyze_needs_no_privilege") {
        return;
    }
    let net = Net::new();
    let plain = binary("kaprobe-analyze", None);
    let capture = root().join("captures/dead-peer.pcap");
    let out = as_nobody(
        &net,
        &net.a,
        &plain,
        &["analyze", capture.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("dead"));
}
