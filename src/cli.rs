//! The command line, as clap derives it. Flag names are a contract: scripts
//! use them, the README documents them.

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

use crate::engine::Live;

#[derive(Parser, Debug)]
#[command(
    name = "kaprobe",
    version,
    about = "Make TCP keepalive visible and testable: probes and answers in captures and live traffic, and on-demand probes of idle connections",
    after_help = "Exit status (analyze, sniff): 0 done, 2 bad input or error (results so far are still reported).\nExit status (poke): 0 all alive, 1 at least one not, 2 nothing could be poked."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Read pcap/pcapng files and report every keepalive probe, its answer, and a verdict per connection.
    #[command(
        after_help = "Examples:\n  kaprobe analyze trace.pcap\n  kaprobe analyze -v trace.pcap port 5432\n  kaprobe analyze --json a.pcap b.pcapng | jq 'select(.type==\"connection\")'\n  kaprobe analyze --as-live --stall-after 2 trace.pcap\n  ssh db1 sudo tcpdump -U -w - port 5432 | kaprobe analyze -v -"
    )]
    Analyze(AnalyzeArgs),
    /// Watch live traffic on an interface: keepalive events as they happen, the report at the end.
    #[command(
        after_help = "Examples:\n  sudo kaprobe sniff -i eth0\n  sudo kaprobe sniff -i any port 5432\n  sudo kaprobe sniff -i eth0 --json -w trace.pcap --duration 600\n\nEnds on Ctrl-C, SIGTERM, -c or --duration, then prints the per-connection report and libpcap's counters.\nSIGUSR1 prints the counters so far on stderr and goes on."
    )]
    Sniff(SniffArgs),
    /// Ask an established connection's peer whether it is still there: keepalive on demand, from outside the application.
    #[command(
        after_help = "Examples:\n  sudo kaprobe poke 10.0.0.5:5432\n  sudo kaprobe poke '[2001:db8::5]:443' --json\n  sudo kaprobe poke 10.0.0.5 --local 10.0.0.1:40312\n  sudo kaprobe poke --all --netns my-container\n\nSends only ACK segments: keepalive probes the peer answers and discards (README: kaprobe poke, safety rules).\nExit status: 0 every poked connection alive, 1 at least one not alive, 2 nothing could be poked."
    )]
    Poke(PokeArgs),
    /// Print a shell completion script: `kaprobe completions bash > /etc/bash_completion.d/kaprobe`.
    Completions {
        #[arg(value_enum)]
        shell: Shell,
    },
    /// Print a man page (roff): kaprobe(1), or kaprobe-analyze(1), kaprobe-sniff(1), kaprobe-poke(1), kaprobe-completions(1), kaprobe-man(1).
    #[command(
        after_help = "Install them all:\n  kaprobe man > kaprobe.1\n  for c in analyze sniff poke completions man; do kaprobe man $c > kaprobe-$c.1; done"
    )]
    Man {
        /// The subcommand whose page to print (default: kaprobe(1) itself).
        #[arg(value_parser = ["analyze", "sniff", "poke", "completions", "man"])]
        command: Option<String>,
    },
}

/// Shells `completions` writes for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
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
    /// Also print one line per keepalive event as it is found (sniff always does).
    #[arg(short, long)]
    pub verbose: bool,
    /// Print only the events that need attention (even with -v): probes
    /// answered by RST, `unanswered`, `dead`, `stalled`, `resumed` and late
    /// answers. Probes and their ACKs are only counted (and -c counts the
    /// events printed).
    #[arg(short, long)]
    pub quiet: bool,
    /// Show every TCP connection in the table, not only those with keepalive activity.
    #[arg(long)]
    pub all: bool,
    /// When to colour the text output (NO_COLOR is honoured with auto).
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,
    /// Taken, as tcpdump's -n and -nn, and changes nothing: kaprobe never looks names up.
    #[arg(short = 'n', action = ArgAction::Count)]
    pub numeric: u8,
}

#[derive(Args, Debug)]
pub struct AnalyzeArgs {
    #[command(flatten)]
    pub output: OutputArgs,
    /// Never show a progress bar (it is shown on a terminal for large files).
    #[arg(long)]
    pub no_progress: bool,
    /// Read this capture (as tcpdump's -r; may be given more than once): the
    /// words are then all filter.
    #[arg(short = 'r', long = "read", value_name = "FILE")]
    pub read: Vec<PathBuf>,
    /// Read the filter from this file (as tcpdump's -F; `#` starts a comment).
    #[arg(short = 'F', long, value_name = "FILE")]
    pub filter_file: Option<PathBuf>,
    /// Judge the capture as sniff judges live traffic, on the capture's clock:
    /// also `unanswered`, `dead`, `stalled` and `resumed` events, each line
    /// printed as sniff prints it. The clock stops at the last packet.
    #[arg(long)]
    pub as_live: bool,
    /// With --as-live: a probe still unanswered after this many seconds is `unanswered`.
    #[arg(long, default_value_t = 1.0, value_name = "SECONDS", value_parser = positive_seconds,
          requires = "as_live")]
    pub grace: f64,
    /// With --as-live: data resent this many seconds with no ACK moving is `stalled`.
    #[arg(long, default_value_t = 5.0, value_name = "SECONDS", value_parser = positive_seconds,
          requires = "as_live")]
    pub stall_after: f64,
    /// With --as-live: forget a connection silent for this long, as sniff does.
    #[arg(long, default_value_t = 10800.0, value_name = "SECONDS", value_parser = positive_seconds,
          requires = "as_live")]
    pub idle_timeout: f64,
    /// Capture files (`-` for standard input), then an optional tcpdump-style filter, e.g. `trace.pcap port 5432`.
    #[arg(value_name = "FILE... [FILTER]", required_unless_present = "read", num_args = 1.., trailing_var_arg = true)]
    pub words: Vec<String>,
}

impl AnalyzeArgs {
    /// Split the words into files and a filter: the first word is a file, and
    /// so is each next word that names an existing file (not a directory) or
    /// looks like a capture file; the first word that does not starts the filter.
    pub fn files_and_filter(&self) -> (Vec<PathBuf>, Option<String>) {
        if !self.read.is_empty() {
            let filter = (!self.words.is_empty()).then(|| self.words.join(" "));
            return (self.read.clone(), filter);
        }
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

    /// What `--as-live` judges by, if it was given.
    pub fn live(&self) -> Option<Live> {
        self.as_live
            .then(|| Live::from_seconds(self.grace, self.stall_after, self.idle_timeout))
    }
}

/// A directory is never a capture: in a source tree `src` is a directory
/// and also the first word of `src host X`.
fn looks_like_file(word: &str) -> bool {
    const EXTENSIONS: [&str; 5] = [".pcap", ".pcapng", ".cap", ".dmp", ".trace"];
    word == "-"
        || std::fs::metadata(word).is_ok_and(|m| !m.is_dir())
        || word.contains('/')
        || EXTENSIONS.iter().any(|e| word.ends_with(e))
}

#[derive(Args, Debug)]
pub struct SniffArgs {
    #[command(flatten)]
    pub output: OutputArgs,
    /// Interface to capture on (`any` for all, as Linux cooked SLL2), or its number in the -D list.
    /// Without it, the first in the -D list, as tcpdump chooses.
    #[arg(short, long, value_name = "IFACE")]
    pub interface: Option<String>,
    /// List the interfaces that can be captured on, and exit.
    #[arg(short = 'D', long)]
    pub list_interfaces: bool,
    /// List the link types the -i interface (or the default one) offers (for -y), and exit.
    #[arg(short = 'L', long = "list-data-link-types")]
    pub list_link_types: bool,
    /// Capture with this link type (as tcpdump's -y), e.g. LINUX_SLL on `any`
    /// for a -w file that tools without SLL2 support can read; -L lists them.
    #[arg(short = 'y', long = "linktype", value_name = "TYPE")]
    pub link_type: Option<String>,
    /// Bytes captured per packet: enough for the headers kaprobe reads.
    #[arg(short, long, default_value_t = 160, value_name = "BYTES")]
    pub snaplen: i32,
    /// Kernel capture buffer in KiB (libpcap's default when not given).
    #[arg(short = 'B', long, value_name = "KIB", value_parser = buffer_kib)]
    pub buffer_size: Option<i32>,
    /// Do not put the interface into promiscuous mode.
    #[arg(short = 'p', long)]
    pub no_promiscuous_mode: bool,
    /// Hand each packet over as it is captured: events without the wait for
    /// the kernel's block of packets (up to 0.2 s, 0.1 s on a terminal), for
    /// far more CPU on a busy interface.
    #[arg(long)]
    pub immediate_mode: bool,
    /// Events handed over as promptly as on a terminal (0.1 s) when the output
    /// is a pipe or a file, as tcpdump's -l: for `kaprobe sniff -l | grep dead`.
    #[arg(short = 'l', long)]
    pub line_buffered: bool,
    /// Taken, as tcpdump's -U, and changes nothing: the -w file already gets
    /// each block of packets as soon as it is read.
    #[arg(short = 'U', long)]
    pub packet_buffered: bool,
    /// Also write every captured packet to this pcap file; `-` writes them to
    /// standard output (as tcpdump -w -), and the events and report go to standard error.
    #[arg(short = 'w', long, value_name = "FILE")]
    pub write: Option<PathBuf>,
    /// With -w, start a new file (FILE1, FILE2, ...) when the current one is
    /// over SIZE millions of bytes, or KiB/MiB/GiB with a k/m/g suffix (as tcpdump's -C).
    #[arg(short = 'C', long, value_name = "SIZE", requires = "write",
          value_parser = crate::capture::parse_file_size)]
    pub file_size: Option<u64>,
    /// With -w, start a new file every SECONDS; FILE must hold strftime codes
    /// for the local time the file starts at, e.g. `trace-%Y%m%d-%H%M%S.pcap` (as tcpdump's -G).
    #[arg(short = 'G', long, value_name = "SECONDS", requires = "write",
          value_parser = at_least_one::<u32>)]
    pub rotate_seconds: Option<u32>,
    /// With -C, keep N files at most, FILE0 to FILE(N-1), overwriting the oldest; with -G, stop
    /// once N files have had their whole period (as tcpdump's -W).
    #[arg(short = 'W', long, value_name = "N", requires = "write",
          value_parser = at_least_one::<u32>)]
    pub file_count: Option<u32>,
    /// With -C or -G, run `COMMAND FILE` on each file once it is closed, e.g. `-z gzip`
    /// (as tcpdump's -z): beside the capture, at the lowest priority; the last file too, when
    /// the capture ends, and sniff waits for them all before it exits.
    #[arg(short = 'z', long, value_name = "COMMAND")]
    pub postrotate_command: Option<String>,
    /// Once the capture is open, run as this user, as tcpdump's -Z: packets
    /// are then read without root's privileges. The -w file is handed to the
    /// user; with -C or -G the user makes every file, so it must be able to
    /// write to their directory.
    #[arg(short = 'Z', long, value_name = "USER")]
    pub relinquish_privileges: Option<String>,
    /// Stop after this many events printed (with -q, events that need attention).
    #[arg(short = 'c', long, value_name = "N",
          value_parser = at_least_one::<u64>)]
    pub count: Option<u64>,
    /// Stop after this many seconds.
    #[arg(long, value_name = "SECONDS", value_parser = positive_seconds)]
    pub duration: Option<f64>,
    /// A probe still unanswered after this many seconds is reported `unanswered`.
    #[arg(long, default_value_t = 1.0, value_name = "SECONDS", value_parser = positive_seconds)]
    pub grace: f64,
    /// Data resent this many seconds with no ACK moving is reported `stalled`
    /// (keepalive cannot fire while data is unacknowledged).
    #[arg(long, default_value_t = 5.0, value_name = "SECONDS", value_parser = positive_seconds)]
    pub stall_after: f64,
    /// Forget a connection silent for this long (it is reported when it leaves).
    /// The default outlasts Linux's default keepalive (7200 s + 9 x 75 s).
    #[arg(long, default_value_t = 10800.0, value_name = "SECONDS", value_parser = positive_seconds)]
    pub idle_timeout: f64,
    /// Read the filter from this file (as tcpdump's -F; `#` starts a comment).
    #[arg(short = 'F', long, value_name = "FILE", conflicts_with = "filter")]
    pub filter_file: Option<PathBuf>,
    /// tcpdump's -r, taken so that it can point at analyze, which reads files.
    #[arg(short = 'r', long = "read", value_name = "FILE", hide = true)]
    pub read: Option<PathBuf>,
    /// tcpdump-style filter, ANDed with `tcp`, e.g. `port 5432`.
    #[arg(value_name = "FILTER", trailing_var_arg = true)]
    pub filter: Vec<String>,
}

impl SniffArgs {
    /// `-w -`: the packets take standard output, so the events and the
    /// report go to standard error.
    pub fn packets_to_stdout(&self) -> bool {
        self.write.as_deref() == Some(std::path::Path::new("-"))
    }

    /// `-C` or `-G`: the `-w` file is followed by others.
    pub fn rotates_files(&self) -> bool {
        self.file_size.is_some() || self.rotate_seconds.is_some()
    }

    /// Whether the events are shown on a terminal: stdout, or stderr with `-w -`.
    pub fn events_on_terminal(&self) -> bool {
        use std::io::IsTerminal;
        if self.packets_to_stdout() {
            std::io::stderr().is_terminal()
        } else {
            std::io::stdout().is_terminal()
        }
    }
}

#[derive(Args, Debug)]
pub struct PokeArgs {
    /// The peer: `HOST:PORT`, `[IPV6]:PORT`, or `HOST` for every connection to it.
    #[arg(
        value_name = "HOST[:PORT]",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    pub target: Option<String>,
    /// Poke every established connection of this host (concurrently).
    #[arg(long)]
    pub all: bool,
    /// Only the connection(s) with this local end, `ADDR:PORT` (or `ADDR`).
    #[arg(long, value_name = "ADDR:PORT")]
    pub local: Option<String>,
    /// Act inside this network namespace: a name from `ip netns` or a process id.
    #[arg(long, value_name = "NAME|PID")]
    pub netns: Option<String>,
    /// Probes per connection at most (the first answer ends the poke).
    #[arg(short = 'c', long, default_value_t = 3, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=100))]
    pub count: u32,
    /// Seconds between probes to one connection (at least 1: the peer answers
    /// such probes at most once per 500 ms).
    #[arg(long, default_value_t = 1.0, value_name = "SECONDS", value_parser = seconds)]
    pub interval: f64,
    /// Milliseconds to wait for each answer [default: max(200, 4 x smoothed RTT)].
    #[arg(long, value_name = "MS")]
    pub wait: Option<u64>,
    /// Send 1-byte probes (answered every time, but the peer applies their
    /// window and timestamp: sent only with numbers confirmed just before).
    #[arg(long)]
    pub one_byte: bool,
    /// Interface to capture the answers on.
    #[arg(short, long, default_value = "any", value_name = "IFACE")]
    pub interface: String,
    /// JSON Lines on stdout: one object per connection.
    #[arg(long)]
    pub json: bool,
    /// When to colour the text output (NO_COLOR is honoured with auto).
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,
    /// Taken, as tcpdump's -n and -nn, and changes nothing: kaprobe never looks names up.
    #[arg(short = 'n', action = ArgAction::Count)]
    pub numeric: u8,
}

/// A time in seconds: a finite number, 0 or more. `f64`'s parser also
/// takes `nan` and `inf`, which would silently mean 0 or forever.
fn seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if s.is_finite() && s >= 0.0 => Ok(s),
        _ => Err("expected a number of seconds, 0 or more (such as 1.5)".into()),
    }
}

/// A count or a number of seconds that must be whole and at least 1.
/// clap's own range check would say "0 is not in 1..18446744073709551615".
fn at_least_one<T: std::str::FromStr + PartialOrd + From<u8>>(text: &str) -> Result<T, String> {
    match text.parse::<T>() {
        Ok(n) if n >= T::from(1) => Ok(n),
        _ => Err("expected a whole number, 1 or more".into()),
    }
}

/// A capture buffer in KiB: at least 1, and at most what libpcap's byte
/// count (an `int`) holds. tcpdump refuses the same values.
fn buffer_kib(text: &str) -> Result<i32, String> {
    const MOST: i32 = i32::MAX / 1024;
    match text.parse::<i32>() {
        Ok(k) if (1..=MOST).contains(&k) => Ok(k),
        _ => Err(format!("expected a buffer size in KiB, 1 to {MOST}")),
    }
}

/// A time in seconds above 0: sniff's waits and limits, where 0 would judge
/// every probe before its answer could come, or end the capture at once.
fn positive_seconds(text: &str) -> Result<f64, String> {
    match seconds(text) {
        Ok(s) if s > 0.0 => Ok(s),
        _ => Err("expected a number of seconds above 0 (such as 1.5)".into()),
    }
}
