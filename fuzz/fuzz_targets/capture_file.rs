//! A whole capture file through the analyze pipeline: libpcap's reader, the
//! prefetch thread, decode, rules and reports (text and JSON).
#![no_main]

use std::io::Write;

use kaprobe::analyze;
use kaprobe::cli::{AnalyzeArgs, ColorChoice, OutputArgs};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::env::temp_dir().join(format!("kaprobe-fuzz-{}.pcap", std::process::id()));
    let Ok(mut file) = std::fs::File::create(&path) else {
        return;
    };
    if file.write_all(data).is_err() {
        return;
    }
    drop(file);
    // Text as analyze prints it, and JSON with sniff's judgements on the
    // file's clock (`--as-live`).
    for (json, as_live) in [(false, false), (true, true)] {
        let args = AnalyzeArgs {
            output: OutputArgs {
                json,
                verbose: true,
                quiet: false,
                all: true,
                color: ColorChoice::Never,
                numeric: 0,
            },
            no_progress: true,
            read: Vec::new(),
            filter_file: None,
            as_live,
            grace: 1.0,
            stall_after: 5.0,
            idle_timeout: 10800.0,
            words: vec![path.display().to_string()],
        };
        let _ = analyze::run(
            &args,
            &std::sync::atomic::AtomicBool::new(false),
            &mut std::io::sink(),
        );
    }
    // Removed after every run: libFuzzer ends its process with exit() at
    // -max_total_time, and a file kept for the next run would outlive it.
    let _ = std::fs::remove_file(&path);
});
