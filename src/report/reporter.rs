//! Routes engine output to the chosen writer (JSON Lines, or text with
//! optional event lines) and remembers the first write error, so a closed
//! pipe stops the run instead of being ignored packet after packet.

use std::io::{self, Write};

use super::json::{JsonWriter, Summary};
use super::text::{event_line, TextReport};
use super::ConnectionReport;
use crate::capture::LiveStats;
use crate::cli::{ColorChoice, OutputArgs};
use crate::engine::{Conn, Output, Totals};
use crate::flow::FlowKey;
use crate::keepalive::Event;

enum Format<'w> {
    Json(JsonWriter<&'w mut dyn Write>),
    Text {
        out: &'w mut dyn Write,
        report: TextReport,
        verbose: bool,
    },
}

pub struct Reporter<'w> {
    format: Format<'w>,
    files: Vec<String>,
    summary: Summary,
    error: Option<io::Error>,
    /// Live: lines were written since the last [`Reporter::flush`].
    unflushed: bool,
    /// `-q`: only the events that need attention get a line.
    quiet: bool,
}

/// Decide colour once for the whole process.
pub fn set_color(choice: ColorChoice, stdout_is_terminal: bool) {
    let on = match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            stdout_is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        }
    };
    colored::control::set_override(on);
}

impl<'w> Reporter<'w> {
    pub fn new(args: &OutputArgs, files: Vec<String>, out: &'w mut dyn Write) -> Reporter<'w> {
        let format = if args.json {
            Format::Json(JsonWriter::new(out, files.clone()))
        } else {
            Format::Text {
                out,
                report: TextReport::new(args.all),
                verbose: args.verbose || args.quiet,
            }
        };
        let summary = Summary::new(files.clone());
        Reporter {
            format,
            summary,
            files,
            error: None,
            unflushed: false,
            quiet: args.quiet,
        }
    }

    /// Whether `e` gets a line (what `-c` counts).
    pub fn shows(&self, e: &Event) -> bool {
        let lines = match self.format {
            Format::Json(_) => true,
            Format::Text { verbose, .. } => verbose,
        };
        lines && (!self.quiet || e.needs_attention())
    }

    /// For live capture: event lines always (the caller flushes them with
    /// [`Reporter::flush`] after each batch of packets).
    pub fn live(args: &OutputArgs, interface: String, out: &'w mut dyn Write) -> Reporter<'w> {
        let mut reporter = Reporter::new(args, Vec::new(), out);
        reporter.judge_live();
        reporter.summary.interface = Some(interface);
        reporter
    }

    /// Make and count the judgements a live capture makes (`analyze
    /// --as-live`): event lines always, as sniff prints them.
    pub fn judge_live(&mut self) {
        if let Format::Text { verbose, .. } = &mut self.format {
            *verbose = true;
        }
        self.summary.judging = true;
    }

    pub fn set_capture_stats(&mut self, stats: LiveStats) {
        self.summary.capture = Some(stats);
    }

    pub fn output(&mut self, o: Output) {
        if self.error.is_some() {
            return;
        }
        let result = match o {
            Output::Event(e) => self.event(e),
            Output::Connection(key, conn) => self.connection(key, conn),
        };
        if let Err(e) = result {
            self.error = Some(e);
        }
    }

    fn event(&mut self, e: &Event) -> io::Result<()> {
        if !self.shows(e) {
            return Ok(());
        }
        let result = match &mut self.format {
            Format::Json(w) => w.event(e),
            Format::Text { out, .. } => {
                let name = |i| self.files.get(i).map(String::as_str).unwrap_or("");
                let file = if self.files.len() > 1 {
                    format!("{} ", name(e.file))
                } else {
                    String::new()
                };
                // An answer in the file after its probe's (a rotated
                // capture) names the probe's file too.
                let probe_file = e
                    .probe_file
                    .map_or(String::new(), |f| format!("{} ", name(f)));
                writeln!(out, "{}", event_line(e, &file, &probe_file))
            }
        };
        self.unflushed = true;
        result
    }

    fn connection(&mut self, key: &FlowKey, conn: &Conn) -> io::Result<()> {
        if let Format::Text { report, .. } = &self.format {
            // Most connections only count in the summary: no report is
            // built for those, unless the table shows every connection.
            if !report.all() && ConnectionReport::quiet(key, conn) {
                self.summary.quiet_connection();
                return Ok(());
            }
        }
        let c = ConnectionReport::new(key, conn);
        self.summary.connection(&c);
        match &mut self.format {
            Format::Json(w) => {
                self.unflushed = true;
                w.connection(&c)
            }
            Format::Text { report, .. } => {
                report.connection(c);
                Ok(())
            }
        }
    }

    /// Hand what was written since the last call to the output, so that a
    /// pipe or a terminal sees a batch's events as soon as it is processed.
    /// One write per batch, not per line: events come in bursts (a probe
    /// and its answer, many connections probing on the same timer).
    pub fn flush(&mut self) {
        if !self.unflushed || self.error.is_some() {
            return;
        }
        self.unflushed = false;
        let result = match &mut self.format {
            Format::Json(w) => w.flush(),
            Format::Text { out, .. } => out.flush(),
        };
        if let Err(e) = result {
            self.error = Some(e);
        }
    }

    /// A write has failed (e.g. the reader of a pipe went away).
    pub fn failed(&self) -> bool {
        self.error.is_some()
    }

    /// Return the first write error, if any.
    pub fn check(&mut self) -> io::Result<()> {
        match self.error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Write the table (text) or the summary line (JSON).
    pub fn finish(mut self, totals: &Totals, errors: &[String]) -> io::Result<()> {
        self.check()?;
        self.summary.totals(totals);
        self.summary.errors = errors.to_vec();
        match &mut self.format {
            Format::Json(w) => w.summary(&self.summary),
            Format::Text { out, report, .. } => report.finish(*out, &self.summary),
        }
    }
}
