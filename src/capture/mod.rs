//! Packet sources: capture files, and live interfaces for `sniff` and `poke`.
//! libpcap lives here and nowhere else.
//!
//! Trusts libpcap to frame records; everything inside a record is left to
//! `wire`. A BPF filter is run here on each record rather than installed in
//! libpcap, so that frame numbers stay the record numbers of the file.

mod live;
mod prefetch;
mod savefiles;
mod socket;

use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};

use pcap::{BpfProgram, Capture, Offline};

use crate::flow::Micros;
use crate::wire::{LinkType, UnsupportedLinkType};

pub use live::{
    filter_expr, link_type_by_name, list_interfaces, list_link_types, resolve_interface,
    snapshot_length, LiveCapture, LiveError, LiveOptions, LiveStats,
};
pub use prefetch::{Batch, Prefetch};
pub use savefiles::{check_postrotate, check_time_pattern, parse_file_size, SaveOptions};

pub use socket::{release_inherited, PacketSocket, RELEASE_COMMAND};

/// Why a capture could not be opened or read on.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("cannot open {path}: {reason}")]
    Open { path: PathBuf, reason: String },
    #[error("{path}: {source}")]
    LinkType {
        path: PathBuf,
        source: UnsupportedLinkType,
    },
    #[error("bad filter '{expr}': {reason}")]
    Filter { expr: String, reason: String },
    #[error(
        "{path}: read error after record {record}: {reason}; the file is truncated or corrupt"
    )]
    Read {
        path: PathBuf,
        record: u64,
        reason: String,
    },
}

/// One record of a capture.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    /// 1-based record number in the source.
    pub number: u64,
    pub time: Micros,
    pub data: &'a [u8],
    /// The packet's length on the wire: more than `data` holds when the
    /// capture's snapshot length cut it short.
    pub wire_len: u32,
    /// Bytes the record took in the file (header + captured bytes), for progress.
    pub record_len: u64,
}

/// A pcap or pcapng file read through libpcap.
pub struct FileCapture {
    stream: bool,
    path: PathBuf,
    cap: Capture<Offline>,
    link: LinkType,
    filter: Option<BpfProgram>,
    record: u64,
    buf: Vec<u8>,
}

impl FileCapture {
    /// Open `path` and compile `filter` (tcpdump syntax) for its link type.
    pub fn open(path: &Path, filter: Option<&str>) -> Result<FileCapture, CaptureError> {
        // libpcap would wait for a pcap header typed at the keyboard.
        if is_stdin(path) && std::io::IsTerminal::is_terminal(&std::io::stdin()) {
            return Err(CaptureError::Open {
                path: path.to_owned(),
                reason: "standard input is a terminal: pipe a capture in, e.g. \
                         `tcpdump -U -w - | kaprobe analyze -`"
                    .into(),
            });
        }
        let cap = Capture::from_file(path).map_err(|e| CaptureError::Open {
            path: path.to_owned(),
            reason: open_reason(path, &e),
        })?;
        let dlt = cap.get_datalink().0;
        let link = LinkType::from_dlt(dlt).map_err(|source| CaptureError::LinkType {
            path: path.to_owned(),
            source,
        })?;
        let filter = match filter {
            Some(expr) => Some(cap.compile(expr, true).map_err(|e| CaptureError::Filter {
                expr: expr.to_owned(),
                reason: pcap_text(&e),
            })?),
            None => None,
        };
        Ok(FileCapture {
            stream: is_stream(path),
            path: path.to_owned(),
            cap,
            link,
            filter,
            record: 0,
            buf: Vec::new(),
        })
    }

    pub fn link(&self) -> LinkType {
        self.link
    }

    /// Read as it is written (standard input, a pipe): more may come at
    /// any time, and what came should be shown before it does.
    pub fn is_stream(&self) -> bool {
        self.stream
    }

    /// The next record that passes the filter, `Ok(None)` at the end.
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, CaptureError> {
        if self.filter.is_some() {
            return self.next_filtered();
        }
        let record = self.record + 1;
        match self.cap.next_packet() {
            Ok(packet) => {
                self.record = record;
                Ok(Some(frame(record, packet.header, packet.data)))
            }
            Err(e) => end_or_error(&self.path, self.record, e),
        }
    }

    /// With a filter, the record that passes is copied out, since the loop
    /// that skips the others cannot hand out libpcap's buffer.
    fn next_filtered(&mut self) -> Result<Option<Frame<'_>>, CaptureError> {
        let header = loop {
            let packet = match self.cap.next_packet() {
                Ok(p) => p,
                Err(e) => return end_or_error(&self.path, self.record, e),
            };
            self.record += 1;
            if self
                .filter
                .as_ref()
                .is_some_and(|bpf| bpf.filter(packet.data))
            {
                self.buf.clear();
                self.buf.extend_from_slice(packet.data);
                break *packet.header;
            }
        };
        Ok(Some(frame(self.record, &header, &self.buf)))
    }
}

fn end_or_error<T>(path: &Path, record: u64, e: pcap::Error) -> Result<Option<T>, CaptureError> {
    match e {
        pcap::Error::NoMorePackets => Ok(None),
        e => Err(CaptureError::Read {
            path: path.to_owned(),
            record,
            reason: pcap_text(&e),
        }),
    }
}

/// The wall clock on the capture's scale: microseconds since 1970.
pub fn wall_clock() -> Micros {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as Micros)
        .unwrap_or(0)
}

/// Whether `fd` has something to read within `wait`. A signal ending the
/// wait early counts as "nothing yet", so that Ctrl-C is seen promptly, and
/// so does `wake` becoming readable (a signal's self-pipe: signals do not
/// always interrupt `poll`, as they may be delivered to another thread).
fn readable_within(
    fd: BorrowedFd<'_>,
    wake: Option<BorrowedFd<'_>>,
    wait: std::time::Duration,
) -> nix::Result<bool> {
    poll_within(fd, wake, wait).map(|p| p.ready)
}

/// What a wait on a capture's descriptor found.
struct Polled {
    /// Something to read, or a condition for the read to find out about.
    ready: bool,
    /// An error or hangup on the descriptor: for a packet socket, its
    /// interface went down (ENETDOWN) or away.
    error: bool,
}

/// [`readable_within`], also saying whether the descriptor reported an error.
fn poll_within(
    fd: BorrowedFd<'_>,
    wake: Option<BorrowedFd<'_>>,
    wait: std::time::Duration,
) -> nix::Result<Polled> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    // Rounded up: a wait of a fraction of a millisecond must not become a
    // busy loop of `poll(0)` until the time comes.
    let millis = u16::try_from(wait.as_micros().div_ceil(1000)).unwrap_or(u16::MAX);
    // Without `wake`, only the first entry is polled (no allocation: this
    // runs for every block of packets).
    let second = PollFd::new(wake.unwrap_or(fd), PollFlags::POLLIN);
    let mut fds = [PollFd::new(fd, PollFlags::POLLIN), second];
    let polled = if wake.is_some() { 2 } else { 1 };
    match poll(&mut fds[..polled], PollTimeout::from(millis)) {
        Ok(_) => {
            if let Some(w) = wake.filter(|_| fds[1].any().unwrap_or(true)) {
                drain(w);
            }
            let trouble = PollFlags::POLLERR | PollFlags::POLLHUP;
            Ok(Polled {
                // Flags nix does not know: let the read find out what they mean.
                ready: fds[0].any().unwrap_or(true),
                error: fds[0].revents().is_some_and(|r| r.intersects(trouble)),
            })
        }
        Err(nix::errno::Errno::EINTR) => Ok(Polled {
            ready: false,
            error: false,
        }),
        Err(e) => Err(e),
    }
}

/// One line on stderr while a capture runs. Not eprintln!: a closed stderr
/// must not end the capture.
fn say(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "kaprobe: {line}");
}

/// Empty a non-blocking self-pipe, so that it wakes `poll` again only for
/// the next signal.
fn drain(pipe: BorrowedFd<'_>) {
    let mut bytes = [0u8; 64];
    while nix::unistd::read(pipe, &mut bytes).is_ok_and(|n| n > 0) {}
}

/// Capture times are kept within ±2^61 µs (some 73,000 years either side of
/// 1970), so that the difference of any two fits in an `i64`: idle times,
/// RTTs and durations are plain subtractions downstream.
pub const TIME_LIMIT: Micros = 1 << 61;

/// A capture time from a record's timestamp.
///
/// Timestamps are whatever the file says: a pcapng interface may count in
/// whole seconds and stamp a packet 1.7e19 of them after 1970 (found by the
/// `capture_file` fuzz target, where the idle time then overflowed).
/// Saturate, then clamp to [`TIME_LIMIT`].
fn micros(sec: i64, usec: i64) -> Micros {
    sec.saturating_mul(1_000_000)
        .saturating_add(usec)
        .clamp(-TIME_LIMIT, TIME_LIMIT)
}

fn frame<'a>(number: u64, header: &pcap::PacketHeader, data: &'a [u8]) -> Frame<'a> {
    let ts = header.ts;
    // The conversions are no-ops where time_t is 64 bits, not everywhere.
    #[allow(clippy::useless_conversion)]
    let time = micros(i64::from(ts.tv_sec), i64::from(ts.tv_usec));
    Frame {
        number,
        time,
        data,
        wire_len: header.len,
        record_len: 16 + u64::from(header.caplen),
    }
}

/// The pcap crate prefixes libpcap's messages with "libpcap error: ", and
/// errno texts with "libpcap os errno: ".
fn pcap_text(err: &pcap::Error) -> String {
    let text = err.to_string();
    ["libpcap error: ", "libpcap os errno: "]
        .iter()
        .find_map(|p| text.strip_prefix(p))
        .unwrap_or(&text)
        .to_string()
}

/// The filter in a `-F` file: its words, without `#` comments (as tcpdump
/// reads it).
pub fn filter_from_file(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read filter file {}: {e}", path.display()))?;
    Ok(without_comments(&text))
}

fn without_comments(text: &str) -> String {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .flat_map(str::split_whitespace)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The filter of a command: its words, or the `-F` file's, not both.
pub fn choose_filter(words: Option<String>, file: Option<&Path>) -> Result<Option<String>, String> {
    match (words, file) {
        (Some(_), Some(path)) => Err(format!(
            "a filter in words and one in -F {}: give one or the other",
            path.display()
        )),
        (None, Some(path)) => filter_from_file(path).map(|f| (!f.is_empty()).then_some(f)),
        (words, None) => Ok(words),
    }
}

/// `-`, which libpcap reads as standard input (as `tcpdump -r -`).
fn is_stdin(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// A source read as it is written (standard input, a pipe, a socket), not a
/// file whose end is already there: its frames are handed on as they come.
fn is_stream(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    is_stdin(path)
        || std::fs::metadata(path).is_ok_and(|m| {
            let t = m.file_type();
            t.is_fifo() || t.is_socket() || t.is_char_device()
        })
}

/// Whether the file starts with gzip's magic number.
fn gzipped(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 2];
    std::fs::File::open(path).is_ok_and(|mut f| f.read_exact(&mut magic).is_ok())
        && magic == [0x1f, 0x8b]
}

/// libpcap's open errors are terse ("unknown file format"); say what it means.
fn open_reason(path: &Path, err: &pcap::Error) -> String {
    let text = pcap_text(err);
    if !is_stdin(path) && !path.exists() {
        return "no such file".into();
    }
    if path.is_dir() {
        let dir = path.display().to_string();
        let dir = dir.trim_end_matches('/');
        return format!("a directory, not a capture (name the files in it: {dir}/*.pcap)");
    }
    if is_stdin(path) && text.contains("truncated dump file") {
        return "standard input is empty or cut short before the pcap header".into();
    }
    if text.contains("unknown file format") || text.contains("bad dump file format") {
        if gzipped(path) {
            // `sniff -z gzip` makes these; libpcap does not read them.
            let file = path.display();
            return format!(
                "gzip-compressed, which libpcap cannot read: zcat {file} | kaprobe analyze -"
            );
        }
        return "not a pcap or pcapng capture".into();
    }
    if text.contains("truncated") {
        return format!("{text} (the file is cut short)");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filter_file_loses_its_comments_and_line_breaks() {
        let text = "# the database\ntcp port 5432   # primary\n\n  or port 5433\n";
        assert_eq!(without_comments(text), "tcp port 5432 or port 5433");
        assert_eq!(without_comments("# nothing\n"), "");
    }

    #[test]
    fn ordinary_timestamps_are_exact() {
        assert_eq!(micros(1_796_193_566, 72_325), 1_796_193_566_072_325);
        assert_eq!(micros(0, 0), 0);
    }

    /// Regression: fuzz/crashes/capture_file/idle-time-overflow-on-out-of-range-timestamp.pcapng.
    #[test]
    fn out_of_range_timestamps_leave_room_for_any_difference() {
        for (sec, usec) in [
            (i64::MAX, 999_999),
            (i64::MIN, 0),
            (17_000_000_000_000_000, 0),
        ] {
            let t = micros(sec, usec);
            assert!(t.abs() <= TIME_LIMIT);
            let _ = t - (-TIME_LIMIT);
            let _ = (-TIME_LIMIT) - t;
        }
    }
}
