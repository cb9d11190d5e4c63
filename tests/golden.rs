//! Golden reports: every capture in captures/ has its expected text and JSON
//! report checked in under tests/golden/, so any change in what kaprobe says
//! about a real capture shows up as a diff.
//!
//! After an intended change, rewrite them with
//! `KAPROBE_BLESS=1 cargo test --test golden` and review `git diff tests/golden`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn captures() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("captures"))
        .expect("captures/ exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("pcap" | "pcapng")
            )
        })
        .collect();
    files.sort();
    files
}

/// Run kaprobe from the repo root on `captures/NAME`, so paths in the output
/// do not depend on where the repo is checked out.
fn report(name: &str, extra: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_kaprobe"))
        .current_dir(root())
        .arg("analyze")
        .args(extra)
        .arg(format!("captures/{name}"))
        .env("NO_COLOR", "1")
        .output()
        .expect("run kaprobe");
    assert!(
        out.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

fn check(golden: &Path, actual: &str, failures: &mut Vec<String>) {
    if std::env::var_os("KAPROBE_BLESS").is_some() {
        std::fs::write(golden, actual).expect("write golden file");
        return;
    }
    match std::fs::read_to_string(golden) {
        Ok(expected) if expected == actual => {}
        Ok(expected) => failures.push(format!(
            "{} differs:\n--- expected\n{expected}\n+++ actual\n{actual}",
            golden.display()
        )),
        Err(_) => failures.push(format!(
            "{} is missing (bless to create it)",
            golden.display()
        )),
    }
}

#[test]
fn every_capture_matches_its_golden_reports() {
    let dir = root().join("tests/golden");
    std::fs::create_dir_all(&dir).unwrap();
    let files = captures();
    assert!(
        files.len() >= 10,
        "captures/ should hold the scenario captures"
    );
    let mut failures = Vec::new();
    for path in files {
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        check(
            &dir.join(format!("{name}.txt")),
            &report(&name, &["--all"]),
            &mut failures,
        );
        check(
            &dir.join(format!("{name}.jsonl")),
            &report(&name, &["--json"]),
            &mut failures,
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
