//! The command line, as clap derives it. Flag names are a contract: scripts
//! use them, the README documents them.

use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "kaprobe",
    version,
    about = "Make TCP keepalive visible: find keepalive probes and answers in captures, per connection",
    after_help = "Exit status: 0 done, 2 bad input or error (results so far are still reported)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Read pcap/pcapng files and report every keepalive probe, its answer, and a verdict per connection.
    #[command(
        after_help = "Examples:\n  kaprobe analyze trace.pcap\n  kaprobe analyze -v trace.pcap port 5432\n  kaprobe analyze --json a.pcap b.pcapng | jq 'select(.type==\"connection\")'"
    )]
    Analyze(AnalyzeArgs),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

/// Output options shared by the commands that report connections.
#[derive(Args, Debug, Clone)]
pub struct OutputArgs {
    /// JSON Lines on stdout: one object per event, per connection, and a final summary.
    #[arg(long)]
    pub json: bool,
    /// Also print one line per keepalive event as it is found.
    #[arg(short, long)]
    pub verbose: bool,
    /// Show every TCP connection in the table, not only those with keepalive activity.
    #[arg(long)]
    pub all: bool,
    /// When to colour the text output (NO_COLOR is honoured with auto).
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,
}

#[derive(Args, Debug)]
pub struct AnalyzeArgs {
    #[command(flatten)]
    pub output: OutputArgs,
    /// Never show a progress bar (it is shown on a terminal for large files).
    #[arg(long)]
    pub no_progress: bool,
    /// Capture files, then an optional tcpdump-style filter, e.g. `trace.pcap port 5432`.
    #[arg(value_name = "FILE... [FILTER]", required = true, num_args = 1.., trailing_var_arg = true)]
    pub words: Vec<String>,
}

impl AnalyzeArgs {
    /// Split the words into files and a filter: the first word is a file, and
    /// so is each next word that names an existing path or looks like a
    /// capture file; the first word that does not starts the filter.
    pub fn files_and_filter(&self) -> (Vec<PathBuf>, Option<String>) {
        let mut files = Vec::new();
        let mut words = self.words.iter();
        let mut rest = Vec::new();
        for word in words.by_ref() {
            if word == "--" {
                break;
            }
            if files.is_empty() || looks_like_file(word) {
                files.push(PathBuf::from(word));
            } else {
                rest.push(word.clone());
                break;
            }
        }
        rest.extend(words.cloned());
        let filter = (!rest.is_empty()).then(|| rest.join(" "));
        (files, filter)
    }
}

fn looks_like_file(word: &str) -> bool {
    const EXTENSIONS: [&str; 5] = [".pcap", ".pcapng", ".cap", ".dmp", ".trace"];
    Path::new(word).exists() || word.contains('/') || EXTENSIONS.iter().any(|e| word.ends_with(e))
}
