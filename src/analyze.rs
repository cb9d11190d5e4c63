//! `kaprobe analyze`: capture files -> engine -> report. The only I/O here is
//! opening the files and writing to the streams the caller hands in.

use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};

use crate::capture::{CaptureError, FileCapture, Prefetch};
use crate::cli::AnalyzeArgs;
use crate::engine::{Engine, FrameRef};
use crate::flow::Micros;
use crate::report::Reporter;

/// Files smaller than this finish before a progress bar would help.
const PROGRESS_MIN_BYTES: u64 = 64 << 20;

/// What a run ended with: the errors met (each one line), if any.
pub struct RunEnd {
    pub errors: Vec<String>,
}

/// Analyze every file in turn through one engine: connections continue from
/// one file into the next, as with a capture rotated by `tcpdump -C/-G`.
pub fn run(args: &AnalyzeArgs, out: &mut dyn Write) -> io::Result<RunEnd> {
    let (files, filter) = args.files_and_filter();
    let names = files.iter().map(|f| f.display().to_string()).collect();
    let mut reporter = Reporter::new(&args.output, names, out);
    let mut engine = Engine::new();
    let mut errors = Vec::new();
    for (index, path) in files.iter().enumerate() {
        let progress = progress_bar(path, args.no_progress);
        match read_file(
            &mut engine,
            &mut reporter,
            index,
            path,
            filter.as_deref(),
            &progress,
        ) {
            Ok(()) => {}
            // The same filter would fail on every file: stop here.
            Err(e @ CaptureError::Filter { .. }) => {
                errors.push(e.to_string());
                break;
            }
            Err(e) => errors.push(e.to_string()),
        }
        progress.finish_and_clear();
        reporter.check()?;
    }
    engine.finish(Micros::MAX, &mut |o| reporter.output(o));
    reporter.finish(&engine.totals, &errors)?;
    Ok(RunEnd { errors })
}

fn read_file(
    engine: &mut Engine,
    reporter: &mut Reporter,
    file: usize,
    path: &Path,
    filter: Option<&str>,
    progress: &ProgressBar,
) -> Result<(), CaptureError> {
    let cap = FileCapture::open(path, filter)?;
    let link = cap.link();
    // The reader thread copies frames out of libpcap; decoding and the rules
    // run here. That splits the work about evenly between two cores.
    let mut reader = Prefetch::start(cap, move |f, data| {
        let start = data.len();
        data.extend_from_slice(f.data);
        (
            FrameRef {
                file,
                frame: f.number,
                time: f.time,
            },
            start,
            f.record_len,
        )
    });
    while let Some(batch) = reader.next_batch() {
        let batch = batch?;
        let mut bytes = 0;
        let ends = batch
            .items
            .iter()
            .skip(1)
            .map(|i| i.1)
            .chain([batch.data.len()]);
        for (&(at, start, record_len), end) in batch.items.iter().zip(ends) {
            engine.frame(at, link, &batch.data[start..end], &mut |o| {
                reporter.output(o)
            });
            bytes += record_len;
        }
        progress.inc(bytes);
        reader.recycle(batch);
        if reporter.failed() {
            break;
        }
    }
    Ok(())
}

fn progress_bar(path: &Path, disabled: bool) -> ProgressBar {
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    if disabled || size < PROGRESS_MIN_BYTES || !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(size);
    let style = ProgressStyle::with_template(
        "{msg} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style.progress_chars("=> "));
    bar.set_message(
        PathBuf::from(path.file_name().unwrap_or_default())
            .display()
            .to_string(),
    );
    bar
}
