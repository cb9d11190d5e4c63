//! `sniff -w FILE`, optionally split into files of a given size (`-C`) or
//! age (`-G`), and kept as a ring of a given count (`-W`), named as tcpdump
//! names them: FILE, FILE1, FILE2, ... or, with `-W N`, FILE0 ... FILE(N-1),
//! the number padded to the digits of N-1; with `-G`, FILE holds strftime
//! codes filled in with the local time each file starts at.
//!
//! `-G` slices by the packets' own timestamps: each file holds the packets
//! captured in its period, [start, start + every), and the next period starts
//! where the last one ended. tcpdump starts a new file when a packet arrives
//! after the period, so the packets still in the kernel's buffer at that
//! moment land in the next file, and each period starts a little later.

use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::format::{Item, StrftimeItems};
use pcap::{Active, Capture, Packet, Savefile};

use crate::flow::Micros;

use super::{pcap_text, say, LiveError};

/// Where and how to write the captured packets.
#[derive(Clone, Debug, Default)]
pub struct SaveOptions {
    pub path: PathBuf,
    /// Start a new file before a packet when the current one is larger.
    pub file_size: Option<u64>,
    /// `-W`: with `file_size`, reuse the names of this many files, oldest
    /// first; with `every` alone, end the capture after this many files.
    pub file_count: Option<u32>,
    /// Start a new file for the packets captured this long after the
    /// current one's start (see the module's comment).
    pub every: Option<Duration>,
    /// `-z`: run as `COMMAND FILE` on each file once it is closed: when the
    /// next one is open, and the last one when the capture ends.
    pub postrotate: Option<String>,
}

/// Bytes of a pcap file header and of each record's header.
const FILE_HEADER: u64 = 24;
const RECORD_HEADER: u64 = 16;

pub struct SaveFiles {
    opts: SaveOptions,
    file: Savefile,
    /// The name before any number: FILE, or with -G its time-stamped form.
    base: PathBuf,
    name: PathBuf,
    index: u32,
    written: u64,
    /// `-G`: the end of this file's period, on the capture's clock.
    ends: Micros,
    /// Files opened so far, the first included.
    opened: u32,
    /// `-z` commands started and not yet seen to end (reaped as files turn).
    running: Postrotate,
}

/// Each file is opened from the live capture, so that its header carries the
/// capture's link type and snapshot length, as tcpdump's files do.
impl SaveFiles {
    pub fn create(mut opts: SaveOptions, cap: &Capture<Active>) -> Result<SaveFiles, LiveError> {
        let start = super::wall_clock();
        let base = stamped(&opts, start);
        let ends = start.saturating_add(every(&opts));
        let name = file_name(&base, ring(&opts), 0);
        let file = open(cap, &name)?;
        let running = Postrotate::new(opts.postrotate.take());
        let mut files = SaveFiles {
            opts,
            file,
            base,
            name,
            index: 0,
            written: FILE_HEADER,
            ends,
            opened: 1,
            running,
        };
        // The header at once to a reader of `-w -` (wireshark -k -i -), which
        // waits for it before it shows anything. A file gets it with the first
        // packets, so that a full disk stops a capture that has a report to give.
        if files.name == Path::new("-") {
            files.flush()?;
        }
        Ok(files)
    }

    /// Whether a packet captured at `at` belongs in a new file: this one is
    /// full (`-C`) or its period is over (`-G`).
    pub fn due(&self, at: Micros) -> bool {
        let full = self
            .opts
            .file_size
            .is_some_and(|limit| self.written > limit);
        (self.old(at) && !self.last()) || full
    }

    /// `-G`: this file's period is over at `at` (see [`period_over`]).
    pub fn old(&self, at: Micros) -> bool {
        period_over(self.ends, every(&self.opts), at)
    }

    /// `-G -W N`: a packet captured at `at` comes after the last file's
    /// period, so after the capture.
    pub fn past_the_last(&self, at: Micros) -> bool {
        self.last() && self.old(at)
    }

    /// `-G -W N`: this is the Nth file, after which the capture ends (the
    /// packets read until it has ended still go into it).
    pub fn last(&self) -> bool {
        let limit = self.opts.file_count.filter(|_| ring(&self.opts).is_none());
        limit.is_some_and(|n| self.opened >= n)
    }

    /// `-G`: how long on the clock until this file's period is over, plus
    /// `delay` for its last packets to come out of the kernel.
    pub fn time_left(&self, delay: Micros) -> Option<Duration> {
        self.opts.every?;
        let left = self.ends.saturating_add(delay) - super::wall_clock();
        Some(Duration::from_micros(left.max(0) as u64))
    }

    /// Move on to the next file, for a packet captured at `at` (or the clock
    /// at `at`): with -G the next period's, named by its start, with -C the
    /// next number (back to the first one with -W).
    pub fn next_file(&mut self, cap: &Capture<Active>, at: Micros) -> Result<(), LiveError> {
        if self.old(at) {
            let every = every(&self.opts);
            let start = next_start(self.ends, every, at);
            self.base = stamped(&self.opts, start);
            self.ends = start.saturating_add(every);
            return self.start_file(cap, 0);
        }
        let next = match ring(&self.opts) {
            Some(n) if self.index + 1 >= n => 0,
            _ => self.index.saturating_add(1),
        };
        self.start_file(cap, next)
    }

    /// Write one packet to the current file (see [`SaveFiles::due`]).
    pub fn write(&mut self, packet: &Packet<'_>) {
        self.file.write(packet);
        self.written += RECORD_HEADER + u64::from(packet.header.caplen);
    }

    fn start_file(&mut self, cap: &Capture<Active>, index: u32) -> Result<(), LiveError> {
        self.flush()?;
        let name = file_name(&self.base, ring(&self.opts), index);
        // The old file is closed (and flushed) when replaced.
        self.file = open(cap, &name)?;
        let closed = std::mem::replace(&mut self.name, name);
        self.index = index;
        self.opened = self.opened.saturating_add(1);
        self.written = FILE_HEADER;
        self.running.start(&closed);
        Ok(())
    }

    /// Close the last file and, with `-z`, run the command on it too, so
    /// that a capture that ends leaves no file unprocessed (tcpdump leaves
    /// its last one: its issue 1015). Returns the flush's error, if any,
    /// and the `-z` commands still running, for [`Postrotate::wait`].
    pub fn close(mut self) -> (Result<(), LiveError>, Postrotate) {
        let flushed = self.flush();
        let SaveFiles {
            file,
            name,
            mut running,
            ..
        } = self;
        drop(file);
        running.start(&name);
        (flushed, running)
    }

    /// Push what was written to disk; a full disk shows here.
    pub fn flush(&mut self) -> Result<(), LiveError> {
        self.file.flush().map_err(|e| write_error(&self.name, &e))
    }
}

/// `-z`: the command, and its runs started and not yet seen to end, with
/// their files.
#[derive(Default)]
pub struct Postrotate {
    command: Option<String>,
    running: Vec<(Child, PathBuf)>,
}

/// How long the end of a capture waits for `-z` commands before it says
/// that it is waiting.
const QUIET_WAIT: Duration = Duration::from_secs(1);

impl Postrotate {
    fn new(command: Option<String>) -> Postrotate {
        Postrotate {
            command,
            running: Vec::new(),
        }
    }

    /// `COMMAND FILE` on a file just closed, beside the capture and at the
    /// lowest priority, as tcpdump runs it. A command that cannot start is
    /// said on stderr; the capture goes on.
    fn start(&mut self, file: &Path) {
        self.reap();
        let Some(command) = self.command.as_deref() else {
            return;
        };
        match spawn_niced(command, file) {
            Ok(child) => self.running.push((child, file.to_path_buf())),
            Err(e) => say(&format!("-z {command}: cannot run it: {e}")),
        }
    }

    /// Forget the commands that have ended, saying which of them failed.
    fn reap(&mut self) {
        let command = self.command.as_deref().unwrap_or_default();
        self.running
            .retain_mut(|(child, file)| match child.try_wait() {
                Ok(Some(status)) => {
                    say_failed(command, file, status);
                    false
                }
                Ok(None) => true,
                Err(_) => false,
            });
    }

    /// Wait for the commands still running, so that every file is processed
    /// when kaprobe returns (`sniff -C 100 -z gzip ... && ls *.gz`). Past
    /// [`QUIET_WAIT`] it says so on stderr. A signal that sets `stop` meanwhile
    /// ends the wait and leaves them running: they have a process group of
    /// their own, so the Ctrl-C that stops kaprobe does not stop them.
    pub fn wait(mut self, stop: &AtomicBool) {
        let began = Instant::now();
        let mut said = false;
        loop {
            self.reap();
            if self.running.is_empty() || stop.load(Ordering::SeqCst) {
                return;
            }
            if !said && began.elapsed() >= QUIET_WAIT {
                said = true;
                let command = self.command.as_deref().unwrap_or_default();
                let n = self.running.len();
                let files = if n == 1 { "file" } else { "files" };
                say(&format!(
                    "waiting for -z {command} on {n} {files} (Ctrl-C stops waiting and leaves it running)"
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn say_failed(command: &str, file: &Path, status: ExitStatus) {
    if !status.success() {
        say(&format!("-z {command} {}: {status}", file.display()));
    }
}

/// `nice -n 19 COMMAND FILE`, or the command alone where nice(1) is missing
/// (the crate sets no priority itself: that would take `unsafe`). In a
/// process group of its own, so that a Ctrl-C at the terminal, which goes
/// to kaprobe's group, does not cut a compression short.
fn spawn_niced(command: &str, file: &Path) -> io::Result<Child> {
    let spawn = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .arg(file)
            .stdin(Stdio::null())
            .process_group(0)
            .spawn()
    };
    match spawn("nice", &["-n", "19", command]) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => spawn(command, &[]),
        other => other,
    }
}

fn open(cap: &Capture<Active>, name: &Path) -> Result<Savefile, LiveError> {
    cap.savefile(name).map_err(|e| write_error(name, &e))
}

fn write_error(path: &Path, e: &pcap::Error) -> LiveError {
    if let (true, pcap::Error::ErrnoError(errno)) = (path == Path::new("-"), e) {
        if errno.0 == libc::EPIPE {
            return LiveError::StdoutClosed;
        }
    }
    let path = path.display().to_string();
    let text = pcap_text(e);
    // libpcap names the file itself when it cannot open it.
    let reason = text
        .strip_prefix(&format!("{path}: "))
        .unwrap_or(&text)
        .to_string();
    LiveError::Write { path, reason }
}

/// `-W`'s count as the size of a ring of files (`-C -W`); with `-G` alone it
/// counts periods instead, and the names are the time's alone, as tcpdump
/// makes them.
fn ring(opts: &SaveOptions) -> Option<u32> {
    opts.file_count.filter(|_| opts.file_size.is_some())
}

/// FILE with -G's strftime codes filled in with the local time at `at`.
fn stamped(opts: &SaveOptions, at: Micros) -> PathBuf {
    if opts.every.is_none() {
        return opts.path.clone();
    }
    let pattern = opts.path.to_string_lossy();
    let Some(time) = chrono::DateTime::from_timestamp_micros(at) else {
        return opts.path.clone();
    };
    PathBuf::from(
        time.with_timezone(&chrono::Local)
            .format_with_items(StrftimeItems::new(&pattern))
            .to_string(),
    )
}

/// `-G`: whether the period of `every` ending at `ends` is over at `at`:
/// `at` is past it, or the clock was set back by more than a period (a
/// packet a moment before the period's start was late out of the kernel,
/// and stays in this file).
fn period_over(ends: Micros, every: Micros, at: Micros) -> bool {
    every > 0 && (at >= ends || at < ends.saturating_sub(2 * every))
}

/// `-G`: where the period for `at` starts, after the one ending at `ends`:
/// right after it, or at `at` after a jump of the clock (a suspended
/// machine, the clock set) rather than a file for every period missed.
fn next_start(ends: Micros, every: Micros, at: Micros) -> Micros {
    if (ends..ends.saturating_add(every)).contains(&at) {
        ends
    } else {
        at
    }
}

/// `-G`'s period in microseconds (0 without it).
fn every(opts: &SaveOptions) -> Micros {
    opts.every.map_or(0, |d| d.as_micros() as Micros)
}

/// `-G` with a FILE that would name every file the same, or that chrono
/// cannot format (it would panic), is refused before the capture starts.
pub fn check_time_pattern(path: &Path) -> Result<(), String> {
    let pattern = path.to_string_lossy();
    let items: Vec<Item> = StrftimeItems::new(&pattern).collect();
    if items.iter().any(|i| matches!(i, Item::Error)) {
        return Err(format!(
            "-G: '{pattern}' has a % code that is not a strftime one (%Y %m %d %H %M %S ...)"
        ));
    }
    let codes = items
        .iter()
        .any(|i| !matches!(i, Item::Literal(_) | Item::OwnedLiteral(_)));
    if !codes {
        return Err(format!(
            "-G: '{pattern}' has no time in it, so each file would overwrite the last: \
             name them by time, e.g. trace-%Y%m%d-%H%M%S.pcap"
        ));
    }
    Ok(())
}

/// `-z COMMAND` is refused before the capture starts when COMMAND is not a
/// program that can be run. It runs as `COMMAND FILE`, without a shell, as
/// tcpdump runs it, so `-z 'gzip -9'` names a program called "gzip -9"; and
/// the mistake would otherwise show only when the first file closes, which
/// can be hours later.
pub fn check_postrotate(command: &str) -> Result<(), String> {
    if program_exists(command) {
        return Ok(());
    }
    let hint = if command.contains(char::is_whitespace) {
        ": it runs as COMMAND FILE, without a shell, so put the options in a script"
    } else {
        ""
    };
    Err(format!("-z: no program '{command}' to run{hint}"))
}

/// A file that this process may run, at this path or in a directory of
/// PATH. Asked of the kernel (access(2)), so that after `-Z` the answer is
/// the new user's.
fn program_exists(command: &str) -> bool {
    use nix::unistd::{access, AccessFlags};
    let runnable = |p: &Path| p.is_file() && access(p, AccessFlags::X_OK).is_ok();
    if command.contains('/') {
        return runnable(Path::new(command));
    }
    !command.is_empty()
        && std::env::var_os("PATH").is_some_and(|paths| {
            std::env::split_paths(&paths).any(|dir| runnable(&dir.join(command)))
        })
}

/// The name of file number `index` after `base`, as tcpdump makes it.
fn file_name(base: &Path, count: Option<u32>, index: u32) -> PathBuf {
    let width = count.map_or(0, |n| digits(n.saturating_sub(1)));
    if index == 0 && width == 0 {
        return base.to_path_buf();
    }
    let mut name = base.to_path_buf().into_os_string();
    name.push(format!("{index:0width$}"));
    PathBuf::from(name)
}

/// Decimal digits of `n`, 0 for 0: `-W 10` numbers its files 0 to 9.
fn digits(mut n: u32) -> usize {
    let mut d = 0;
    while n > 0 {
        d += 1;
        n /= 10;
    }
    d
}

/// `-C`'s argument: millions of bytes, or with a k, m or g suffix KiB, MiB
/// or GiB (tcpdump's units).
pub fn parse_file_size(text: &str) -> Result<u64, String> {
    let (number, unit) = match text.char_indices().last() {
        Some((at, c)) if c.is_ascii_alphabetic() => (&text[..at], c.to_ascii_lowercase()),
        _ => (text, ' '),
    };
    let scale: u64 = match unit {
        ' ' => 1_000_000,
        'k' => 1 << 10,
        'm' => 1 << 20,
        'g' => 1 << 30,
        _ => return Err(format!("unknown unit '{unit}': use k, m or g")),
    };
    let n: u64 = number
        .trim()
        .parse()
        .map_err(|_| format!("'{text}' is not a size: give a whole number, e.g. 100 or 512k"))?;
    if n == 0 {
        return Err("the file size must be above 0".into());
    }
    n.checked_mul(scale)
        .ok_or_else(|| format!("'{text}' is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(count: Option<u32>) -> SaveOptions {
        SaveOptions {
            path: "t.pcap".into(),
            file_size: Some(1),
            file_count: count,
            ..SaveOptions::default()
        }
    }

    #[test]
    fn g_wants_a_time_in_the_name() {
        assert!(check_time_pattern(Path::new("trace-%Y%m%d-%H%M%S.pcap")).is_ok());
        let same = check_time_pattern(Path::new("trace.pcap")).unwrap_err();
        assert!(
            same.contains("each file would overwrite the last"),
            "{same}"
        );
        let bad = check_time_pattern(Path::new("trace-%Q.pcap")).unwrap_err();
        assert!(bad.contains("not a strftime one"), "{bad}");
    }

    #[test]
    fn g_periods_follow_each_other_by_the_packets_times() {
        const S: Micros = 1_000_000;
        let ends = 100 * S;
        // The period is [99 s, 100 s).
        assert!(!period_over(ends, S, ends - 1));
        assert!(period_over(ends, S, ends));
        assert!(!period_over(ends, 0, ends), "without -G, never");
        // Late out of the kernel, just before the start: stays.
        assert!(!period_over(ends, S, ends - S - S / 2));
        // The clock set back by more than a period.
        assert!(period_over(ends, S, ends - 2 * S - 1));
        assert_eq!(next_start(ends, S, ends + S / 2), ends, "no drift");
        assert_eq!(next_start(ends, S, ends + 5 * S), ends + 5 * S);
        assert_eq!(next_start(ends, S, 3 * S), 3 * S);
    }

    #[test]
    fn g_names_a_file_by_its_start_time() {
        let opts = SaveOptions {
            path: "t-%Y.pcap".into(),
            every: Some(Duration::from_secs(1)),
            ..SaveOptions::default()
        };
        let now = crate::capture::wall_clock();
        let year = chrono::Local::now().format("%Y").to_string();
        assert_eq!(stamped(&opts, now), PathBuf::from(format!("t-{year}.pcap")));
        let plain = SaveOptions {
            path: "t-%Y.pcap".into(),
            ..SaveOptions::default()
        };
        assert_eq!(stamped(&plain, now), PathBuf::from("t-%Y.pcap"));
    }

    #[test]
    fn files_are_named_as_tcpdump_names_them() {
        let names = |count, range: std::ops::Range<u32>| -> Vec<String> {
            range
                .map(|i| file_name(&opts(count).path, count, i).display().to_string())
                .collect()
        };
        assert_eq!(names(None, 0..3), ["t.pcap", "t.pcap1", "t.pcap2"]);
        assert_eq!(names(Some(3), 0..3), ["t.pcap0", "t.pcap1", "t.pcap2"]);
        assert_eq!(names(Some(10), 8..10), ["t.pcap8", "t.pcap9"]);
        assert_eq!(names(Some(11), 9..11), ["t.pcap09", "t.pcap10"]);
        assert_eq!(names(Some(1), 0..1), ["t.pcap"]);
    }

    #[test]
    fn z_wants_a_program_that_can_run() {
        assert!(check_postrotate("sh").is_ok());
        assert!(check_postrotate("/bin/sh").is_ok());
        let args = check_postrotate("sh -c").unwrap_err();
        assert!(args.contains("no program 'sh -c'"), "{args}");
        assert!(args.contains("put the options in a script"), "{args}");
        let missing = check_postrotate("kp-no-such-program").unwrap_err();
        assert_eq!(missing, "-z: no program 'kp-no-such-program' to run");
        let plain = std::env::temp_dir().join(format!("kp-plain-{}", std::process::id()));
        std::fs::write(&plain, "#!/bin/sh\n").unwrap();
        let not_runnable = check_postrotate(plain.to_str().unwrap());
        std::fs::remove_file(&plain).unwrap();
        assert!(not_runnable.is_err(), "a file without x bits");
        assert!(check_postrotate("").is_err());
    }

    #[test]
    fn file_sizes_take_tcpdump_units() {
        assert_eq!(parse_file_size("100"), Ok(100_000_000));
        assert_eq!(parse_file_size("512k"), Ok(512 * 1024));
        assert_eq!(parse_file_size("2M"), Ok(2 << 20));
        assert_eq!(parse_file_size("1g"), Ok(1 << 30));
        assert!(parse_file_size("0").is_err());
        assert!(parse_file_size("1x")
            .unwrap_err()
            .contains("unknown unit 'x'"));
        assert!(parse_file_size("ten").is_err());
        assert!(parse_file_size("").is_err());
    }
}
