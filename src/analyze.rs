//! `kaprobe analyze`: capture files -> engine -> report. The only I/O here is
//! opening the files and writing to the streams the caller hands in.

use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use indicatif::{ProgressBar, ProgressStyle};

use crate::capture::{choose_filter, CaptureError, FileCapture, Prefetch};
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
/// `stop` (Ctrl-C, SIGTERM) ends the reading; what was read is reported.
pub fn run(args: &AnalyzeArgs, stop: &AtomicBool, out: &mut dyn Write) -> io::Result<RunEnd> {
    let (files, words) = args.files_and_filter();
    let filter = match choose_filter(words, args.filter_file.as_deref()) {
        Ok(filter) => filter,
        Err(e) => return Ok(RunEnd { errors: vec![e] }),
    };
    let names = files.iter().map(|f| f.display().to_string()).collect();
    let mut reporter = Reporter::new(&args.output, names, out);
    let live = args.live();
    let mut engine = match live {
        Some(live) => {
            reporter.judge_live();
            Engine::live(live)
        }
        None => Engine::new(),
    };
    // With --as-live, the capture's clock: where the last packet left it.
    let mut clock = Micros::MIN;
    let mut errors = Vec::new();
    for (index, path) in files.iter().enumerate() {
        let progress = progress_bar(path, args.no_progress);
        let source = Source {
            file: index,
            path,
            filter: filter.as_deref(),
            as_live: live.is_some(),
        };
        let read = read_file(
            &mut engine,
            &mut reporter,
            &source,
            &progress,
            stop,
            &mut clock,
        );
        progress.finish_and_clear();
        match read {
            Ok(Read::Whole) => {}
            // Ctrl-C is how a stream from a remote tcpdump ends; a file
            // stopped part way is reported as such.
            Ok(Read::Stopped { stream: true, .. }) => break,
            Ok(Read::Stopped { last_record, .. }) => {
                errors.push(format!(
                    "{}: interrupted after record {last_record}: the report covers what was read up to it",
                    path.display()
                ));
                break;
            }
            // The same filter would fail on every file: stop here.
            Err(e @ CaptureError::Filter { .. }) => {
                errors.push(e.to_string());
                break;
            }
            Err(e) => errors.push(e.to_string()),
        }
        reporter.check()?;
    }
    // As when sniff stops: probes younger than the grace period are in
    // flight. Without --as-live, every probe has had its chance.
    let end = if live.is_some() { clock } else { Micros::MAX };
    engine.finish(end, &mut |o| reporter.output(o));
    reporter.finish(&engine.totals, &errors)?;
    Ok(RunEnd { errors })
}

/// One capture of the run: its index in the list, its path, the filter.
struct Source<'a> {
    file: usize,
    path: &'a Path,
    filter: Option<&'a str>,
    as_live: bool,
}

/// How the reading of one capture ended, short of an error.
enum Read {
    Whole,
    Stopped { stream: bool, last_record: u64 },
}

fn read_file(
    engine: &mut Engine,
    reporter: &mut Reporter,
    source: &Source,
    progress: &ProgressBar,
    stop: &AtomicBool,
    clock: &mut Micros,
) -> Result<Read, CaptureError> {
    let cap = FileCapture::open(source.path, source.filter)?;
    let link = cap.link();
    let stream = cap.is_stream();
    let file = source.file;
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
            f.wire_len,
            f.record_len,
        )
    });
    let mut last_record = 0;
    while let Some(batch) = reader.next_batch(stop) {
        let batch = batch?;
        let mut bytes = 0;
        let ends = batch
            .items
            .iter()
            .skip(1)
            .map(|i| i.1)
            .chain([batch.data.len()]);
        for (&(at, start, wire_len, record_len), end) in batch.items.iter().zip(ends) {
            if source.as_live {
                engine.advance(at.time, &mut |o| reporter.output(o));
                *clock = (*clock).max(at.time);
            }
            engine.frame(at, link, &batch.data[start..end], wire_len, &mut |o| {
                reporter.output(o)
            });
            bytes += record_len;
            last_record = at.frame;
        }
        progress.inc(bytes);
        reader.recycle(batch);
        // What a stream brought is shown before it brings more.
        if stream {
            reporter.flush();
        }
        if reporter.failed() {
            break;
        }
    }
    if stop.load(std::sync::atomic::Ordering::Relaxed) {
        return Ok(Read::Stopped {
            stream,
            last_record,
        });
    }
    Ok(Read::Whole)
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
