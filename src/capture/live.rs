//! Live capture from an interface through libpcap, for `sniff` (`poke`, which
//! needs a few packets at once and a quick start, has `socket.rs`).
//!
//! Not in immediate mode unless asked (`--immediate-mode`, as tcpdump's):
//! on Linux that makes libpcap fall back from
//! TPACKET_V3 to TPACKET_V2, where the kernel wakes the reader for every
//! packet. That cost 2-10 us of CPU per packet, 17-86x what tcpdump spends,
//! and took a core from the traffic itself (`bench/sniff.sh`,
//! docs/PERFORMANCE.md). With TPACKET_V3 the kernel hands over blocks of
//! packets: a block is passed on when it is full or `DELIVERY_DELAY` after
//! its first packet (`WATCHED_DELIVERY_DELAY` when the events go to a
//! terminal), so a packet reaches kaprobe at most that late (its timestamp is
//! the kernel's, unchanged), and `sniff` lets time pass in the engine that
//! much behind the wall clock. In immediate mode each packet is
//! passed on as it comes, for the CPU cost above.
//!
//! Non-blocking: kaprobe waits on the capture's descriptor with its own
//! timeout, because libpcap's read timeout does not return control while the
//! interface is silent, and silence is exactly when probes go unanswered and
//! Ctrl-C must still work.

use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use pcap::{Active, BreakLoop, Capture, Device, Linktype, Packet, PacketHeader};

use super::savefiles::{Postrotate, SaveFiles, SaveOptions};
use super::{frame, pcap_text, poll_within, say, wall_clock, Frame, Polled};
use crate::flow::Micros;
use crate::wire::{LinkType, UnsupportedLinkType};

/// The longest a captured packet waits in the kernel before libpcap can read
/// it: the TPACKET_V3 block timeout (libpcap's read timeout). Events appear
/// this much later than in immediate mode; keepalive timing is in seconds.
/// 200 ms rather than 50: at 10k packets/s, a quarter of the wakeups and 20%
/// less CPU per packet (docs/PERFORMANCE.md); tcpdump -w waits up to 1 s.
const DELIVERY_DELAY: Duration = Duration::from_millis(200);

/// The same when someone watches the events on a terminal: tcpdump's own
/// choice when it prints to one (100 ms instead of its 1 s), so that they
/// appear about as the packets come. A terminal only ever shows a few lines
/// a second, so the extra wakeups do not matter there.
const WATCHED_DELIVERY_DELAY: Duration = Duration::from_millis(100);

/// In immediate mode a packet is readable as soon as it is captured, and
/// `sniff` only lets time pass once the ring is empty; the margin covers a
/// packet captured while the engine's clock is being read.
const IMMEDIATE_DELAY: Duration = Duration::from_millis(10);

/// Why live capture could not start or go on.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error("no interface named '{0}' (kaprobe sniff -D lists them)")]
    NoSuchInterface(String),
    #[error("cannot capture on '{0}': it is down (bring it up: ip link set {0} up)")]
    InterfaceDown(String),
    #[error("no permission to capture on '{0}': {lacking}: {fix}", lacking = crate::privilege::lacking(&crate::privilege::CAPTURE), fix = crate::privilege::FIX)]
    Permission(String),
    #[error("cannot capture on '{iface}': {reason}")]
    Open { iface: String, reason: String },
    #[error("'{iface}': {source}")]
    LinkType {
        iface: String,
        source: UnsupportedLinkType,
    },
    #[error("bad filter '{expr}': {reason}")]
    Filter { expr: String, reason: String },
    #[error("cannot write {path}: {reason}")]
    Write { path: String, reason: String },
    /// `-w -` and whatever read standard output has gone: the end of the
    /// capture, as a closed pipe ends the report (not an error).
    #[error("standard output was closed")]
    StdoutClosed,
    #[error("capture on '{iface}' failed: {reason}")]
    Read { iface: String, reason: String },
    #[error("cannot list interfaces: {0}")]
    List(String),
    #[error("no interface to capture on: libpcap lists none (run as root to see them all, or name one with -i)")]
    NoInterface,
    #[error("no interface number {number}: kaprobe sniff -D lists {count}")]
    NoSuchNumber { number: usize, count: usize },
    #[error("unknown link type '{0}': name it as tcpdump -y does, e.g. EN10MB or LINUX_SLL (kaprobe sniff -L -i IFACE lists what IFACE offers)")]
    UnknownLinkType(String),
    #[error("'{iface}' does not offer link type {name}; it offers {offered}")]
    NotOffered {
        iface: String,
        name: String,
        offered: String,
    },
}

/// The most bytes libpcap keeps of a packet, and what `-s 0` asks for.
const MAX_SNAPLEN: i32 = 262_144;

/// The snapshot length libpcap settles on for `requested`: 0, a negative or
/// a larger value means the most, as with tcpdump's `-s 0`. Said as such in
/// the listening line, as tcpdump says it.
pub fn snapshot_length(requested: i32) -> i32 {
    if requested <= 0 || requested > MAX_SNAPLEN {
        MAX_SNAPLEN
    } else {
        requested
    }
}

/// How to open the interface (the tcpdump flags of the same letters).
#[derive(Clone, Debug)]
pub struct LiveOptions {
    pub interface: String,
    pub snaplen: i32,
    /// Kernel buffer in bytes; `None` keeps libpcap's default.
    pub buffer_bytes: Option<i32>,
    pub promiscuous: bool,
    /// tcpdump-style filter, ANDed with `tcp`.
    pub filter: Option<String>,
    /// Each packet passed on as it is captured, not in blocks.
    pub immediate: bool,
    /// The events go to a terminal: blocks are passed on sooner.
    pub watched: bool,
    /// `-y`: the link type to capture with, instead of the interface's
    /// first (or SLL2 on `any`).
    pub link_type: Option<Linktype>,
}

/// Packet counters as libpcap reports them at the end.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct LiveStats {
    pub received: u32,
    pub dropped: u32,
    pub if_dropped: u32,
}

pub struct LiveCapture {
    iface: String,
    cap: Capture<Active>,
    link: LinkType,
    number: u64,
    /// The `-w` file(s).
    save: Option<SaveFiles>,
    /// See [`LiveCapture::delivery_delay`].
    delay: Duration,
    /// Ends a `pcap_dispatch` early, for [`LiveCapture::dispatch`].
    breaker: BreakLoop,
    /// A break was asked for and libpcap has not reported it yet.
    breaking: bool,
    /// Read end of a self-pipe that ends a wait early (see
    /// [`LiveCapture::wake_on`]).
    wake: Option<UnixStream>,
    /// The interface went down and has not been seen up since (see
    /// [`DOWN_CHECK`]).
    down: bool,
    /// `-G -W N`: a packet from after the last file's period was read.
    past_the_last: bool,
}

/// How often the capture looks again at an interface that went down.
///
/// The kernel tells the capture's socket once, when the interface goes down
/// (ENETDOWN), and says nothing more if it is then deleted. libpcap learns
/// which of the two happened only when it is called again, and a capture
/// that waited for packets would wait forever. So while the interface is
/// down, libpcap is called at least this often: it ends the capture ("The
/// interface disappeared") once the interface is gone.
const DOWN_CHECK: Duration = Duration::from_millis(500);

/// How long the kernel may hold a block of packets (see [`DELIVERY_DELAY`]).
fn block_timeout(watched: bool) -> Duration {
    if watched {
        WATCHED_DELIVERY_DELAY
    } else {
        DELIVERY_DELAY
    }
}

/// The BPF program kaprobe installs: TCP only, and the user's words on top.
pub fn filter_expr(user: Option<&str>) -> String {
    match user {
        Some(f) if !f.trim().is_empty() => format!("tcp and ({f})"),
        _ => "tcp".into(),
    }
}

impl LiveCapture {
    pub fn open(opts: &LiveOptions) -> Result<LiveCapture, LiveError> {
        let expr = filter_expr(opts.filter.as_deref());
        let iface = opts.interface.clone();
        let mut inactive = Capture::from_device(iface.as_str())
            .map_err(|e| open_error(&iface, &e))?
            .snaplen(opts.snaplen)
            .promisc(opts.promiscuous)
            .timeout(block_timeout(opts.watched).as_millis() as i32)
            .immediate_mode(opts.immediate);
        if let Some(bytes) = opts.buffer_bytes {
            inactive = inactive.buffer_size(bytes);
        }
        let cap = inactive.open().map_err(|e| open_error(&iface, &e))?;
        let mut cap = cap.setnonblock().map_err(|e| open_error(&iface, &e))?;
        match opts.link_type {
            Some(dlt) => choose_link_type(&mut cap, &iface, dlt)?,
            None => prefer_sll2(&mut cap).map_err(|e| open_error(&iface, &e))?,
        }
        let link =
            LinkType::from_dlt(cap.get_datalink().0).map_err(|source| LiveError::LinkType {
                iface: iface.clone(),
                source,
            })?;
        cap.filter(&expr, true).map_err(|e| LiveError::Filter {
            expr: opts.filter.clone().unwrap_or_default(),
            reason: pcap_text(&e),
        })?;
        if is_loopback(&iface) {
            skip_outgoing_copies(&cap);
        }
        let breaker = cap.breakloop_handle();
        Ok(LiveCapture {
            iface,
            cap,
            link,
            number: 0,
            save: None,
            delay: if opts.immediate {
                IMMEDIATE_DELAY
            } else {
                block_timeout(opts.watched)
            },
            breaker,
            breaking: false,
            wake: None,
            down: false,
            past_the_last: false,
        })
    }

    /// Also write every captured packet to the `-w` file(s), pcap format.
    pub fn save_to(&mut self, opts: SaveOptions) -> Result<(), LiveError> {
        self.save = Some(SaveFiles::create(opts, &self.cap)?);
        Ok(())
    }

    /// Push what was written to the `-w` file to disk, so that the file is
    /// whole up to the last batch (`analyze` can read it during the
    /// capture) and a full disk is noticed at once.
    pub fn flush_saved(&mut self) -> Result<(), LiveError> {
        self.save.as_mut().map_or(Ok(()), SaveFiles::flush)
    }

    /// Close the `-w` file at the end of the capture, and run `-z` on it;
    /// returns the flush's error and the `-z` commands still running.
    pub fn close_saved(&mut self) -> (Result<(), LiveError>, Postrotate) {
        match self.save.take() {
            Some(save) => save.close(),
            None => (Ok(()), Postrotate::default()),
        }
    }

    /// `-G`: how long until the `-w` file is due to be replaced.
    pub fn rotation_in(&self) -> Option<Duration> {
        let save = self.save.as_ref()?;
        save.time_left(self.rotation_delay())
    }

    /// How long after a period's end its last packets may still be in the
    /// kernel: as the read after a stop, twice the delivery delay.
    fn rotation_delay(&self) -> Micros {
        2 * self.delay.as_micros() as Micros
    }

    /// `-G`: start the next file once this one's period is over, whether or
    /// not packets came to fill it. kaprobe's traffic is sparse by nature (a
    /// probe every two hours is the Linux default), and rotating only on a
    /// packet, as tcpdump does, would keep an hourly file open for hours and
    /// hold back its `-z`.
    ///
    /// Returns whether the capture is over: with `-G -W N`, the Nth file's
    /// period has ended.
    pub fn rotate_if_old(&mut self) -> Result<bool, LiveError> {
        // The clock as of the packets now read: any still in the kernel were
        // captured after this.
        let now = wall_clock().saturating_sub(self.rotation_delay());
        match self.save.as_mut() {
            _ if self.past_the_last => Ok(true),
            Some(save) if save.past_the_last(now) => Ok(true),
            Some(save) if save.old(now) => save.next_file(&self.cap, now).map(|()| false),
            _ => Ok(false),
        }
    }

    pub fn link(&self) -> LinkType {
        self.link
    }

    /// The link type as tcpdump names it: `EN10MB (Ethernet)`.
    pub fn link_name(&self) -> String {
        let dlt = self.cap.get_datalink();
        match (dlt.get_name(), dlt.get_description()) {
            (Ok(name), Ok(text)) => format!("{name} ({text})"),
            _ => format!("{:?}", self.link),
        }
    }

    /// How long after its capture a packet may still be waiting in the
    /// kernel, out of reach of [`LiveCapture::dispatch`].
    pub fn delivery_delay(&self) -> Duration {
        self.delay
    }

    /// Hands `each` the packets the kernel has passed on, waiting up to
    /// `wait` for some; returns how many (0: none came). `each` says whether
    /// it took the packet: only those go to the `-w` file, so that the file
    /// holds exactly what was analyzed (not the packets read after a stop).
    ///
    /// A batch through `pcap_dispatch`, not `pcap_next_ex` per packet: on
    /// Linux the latter copies every packet out of the ring into a buffer of
    /// its own before returning it.
    pub fn dispatch(
        &mut self,
        wait: Duration,
        each: impl FnMut(Frame<'_>) -> bool,
    ) -> Result<usize, LiveError> {
        let wait = if self.down {
            wait.min(DOWN_CHECK)
        } else {
            wait
        };
        let polled = self.poll(wait)?;
        if polled.error && !self.down {
            self.down = true;
            say(&format!(
                "{} went down; the capture goes on when it comes back up",
                self.iface
            ));
        }
        // While down, read even without packets: the read is where libpcap
        // finds out whether the interface is gone.
        if !polled.ready && !self.down {
            return Ok(0);
        }
        let n = self.read(each)?;
        if self.down && (n > 0 || interface_up(&self.iface)) {
            self.down = false;
            say(&format!("{} is up again", self.iface));
        }
        Ok(n)
    }

    /// The packets the kernel has passed on (see [`LiveCapture::dispatch`]).
    fn read(&mut self, mut each: impl FnMut(Frame<'_>) -> bool) -> Result<usize, LiveError> {
        let before = self.number;
        let (number, save) = (&mut self.number, &mut self.save);
        let (breaker, breaking) = (&self.breaker, &mut self.breaking);
        let past_the_last = &mut self.past_the_last;
        // Packets for the next `-w` file: it can only be opened from the
        // live handle, which is busy here, so they wait until the read is
        // stopped (libpcap stops after the current block of packets).
        let mut held: Vec<(PacketHeader, Vec<u8>)> = Vec::new();
        let read = self.cap.dispatch(None, |packet| {
            let f = frame(*number + 1, packet.header, packet.data);
            // -G -W: the capture is over; the packet is neither saved nor
            // analyzed, so that the files hold what was analyzed.
            if save.as_ref().is_some_and(|s| s.past_the_last(f.time)) {
                *past_the_last = true;
                return;
            }
            *number += 1;
            let time = f.time;
            let taken = each(f);
            if let (Some(save), true) = (save.as_mut(), taken) {
                if held.is_empty() && !save.due(time) {
                    save.write(&packet);
                } else {
                    held.push((*packet.header, packet.data.to_vec()));
                    breaker.breakloop();
                    *breaking = true;
                }
            }
        });
        match read {
            Ok(_) => {}
            // The break asked for above, reported now or on a later read.
            Err(_) if self.breaking => self.breaking = false,
            Err(e) => {
                return Err(LiveError::Read {
                    iface: self.iface.clone(),
                    reason: pcap_text(&e),
                })
            }
        }
        self.write_held(&held)?;
        let n = (self.number - before) as usize;
        if n > 0 {
            self.flush_saved()?;
        }
        Ok(n)
    }

    /// Write the packets that waited for a new file, starting new files as
    /// they fill.
    fn write_held(&mut self, held: &[(PacketHeader, Vec<u8>)]) -> Result<(), LiveError> {
        let Some(save) = self.save.as_mut() else {
            return Ok(());
        };
        for (header, data) in held {
            let at = frame(0, header, data).time;
            if save.due(at) {
                save.next_file(&self.cap, at)?;
            }
            save.write(&Packet::new(header, data));
        }
        Ok(())
    }

    /// Whether the capture has something to read within `wait`.
    ///
    /// Asked before every read, even right after one that returned packets:
    /// the descriptor is readable as soon as the kernel has passed on
    /// another block, so this costs one `poll` per block, where reading
    /// again until libpcap finds the ring empty cost a second one.
    fn poll(&mut self, wait: Duration) -> Result<Polled, LiveError> {
        let wake = self.wake.as_ref().map(|w| w.as_fd());
        poll_within(self.cap.as_fd(), wake, wait).map_err(|e| LiveError::Read {
            iface: self.iface.clone(),
            reason: e.to_string(),
        })
    }

    /// End every wait for packets early when `wake` (the non-blocking read
    /// end of a signal's self-pipe) has something to read: the caller can
    /// then wait as long as it has nothing to do and still see a signal at
    /// once.
    pub fn wake_on(&mut self, wake: UnixStream) {
        self.wake = Some(wake);
    }

    /// libpcap's counters so far.
    pub fn stats(&mut self) -> LiveStats {
        self.cap
            .stats()
            .map(|s| LiveStats {
                received: s.received,
                dropped: s.dropped,
                if_dropped: s.if_dropped,
            })
            .unwrap_or_default()
    }
}

/// On `any`, libpcap offers Linux cooked headers v1 and v2 and starts with
/// v1; take v2, as tcpdump does: it also names the interface of each packet.
fn prefer_sll2(cap: &mut Capture<Active>) -> Result<(), pcap::Error> {
    if cap.get_datalink() == Linktype::LINUX_SLL
        && cap.list_datalinks()?.contains(&Linktype::LINUX_SLL2)
    {
        cap.set_datalink(Linktype::LINUX_SLL2)?;
    }
    Ok(())
}

/// `-y NAME`: the link type libpcap knows by that name (tcpdump's names,
/// any case), looked up before anything is opened.
pub fn link_type_by_name(name: &str) -> Result<Linktype, LiveError> {
    Linktype::from_name(name).map_err(|_| LiveError::UnknownLinkType(name.to_string()))
}

/// `-y`: capture with `dlt`, which the interface must offer.
fn choose_link_type(
    cap: &mut Capture<Active>,
    iface: &str,
    dlt: Linktype,
) -> Result<(), LiveError> {
    let offered = cap.list_datalinks().map_err(|e| open_error(iface, &e))?;
    if !offered.contains(&dlt) {
        let names: Vec<String> = offered.iter().map(|&d| link_type_name(d)).collect();
        return Err(LiveError::NotOffered {
            iface: iface.to_string(),
            name: link_type_name(dlt),
            offered: names.join(", "),
        });
    }
    cap.set_datalink(dlt).map_err(|e| open_error(iface, &e))
}

/// A link type's libpcap name (`EN10MB`), or its number.
fn link_type_name(dlt: Linktype) -> String {
    dlt.get_name().unwrap_or_else(|_| format!("DLT {}", dlt.0))
}

/// `tcpdump -L`: the link types `iface` offers, as `NAME (description)`,
/// each marked when kaprobe cannot decode it. Opening the interface needs
/// the same privileges as capturing on it.
pub fn list_link_types(iface: &str) -> Result<Vec<String>, LiveError> {
    let cap = Capture::from_device(iface)
        .and_then(|c| c.open())
        .map_err(|e| open_error(iface, &e))?;
    let offered = cap.list_datalinks().map_err(|e| open_error(iface, &e))?;
    let mut lines = vec![format!(
        "Data link types for {iface} (use option -y to set):"
    )];
    for dlt in offered {
        let text = dlt
            .get_description()
            .map(|d| format!(" ({d})"))
            .unwrap_or_default();
        let unread = if LinkType::from_dlt(dlt.0).is_err() {
            " (kaprobe cannot decode it)"
        } else {
            ""
        };
        lines.push(format!("  {}{text}{unread}", link_type_name(dlt)));
    }
    Ok(lines)
}

/// Linux's `PACKET_IGNORE_OUTGOING` (since 4.20), which the libc crate does
/// not name yet.
const PACKET_IGNORE_OUTGOING: libc::c_int = 23;

// nix's own macro for a socket option it does not list: the FFI call is
// nix's, this crate stays free of `unsafe`.
nix::sockopt_impl!(
    IgnoreOutgoing,
    SetOnly,
    libc::SOL_PACKET,
    PACKET_IGNORE_OUTGOING,
    bool
);
use nix::{setsockopt_impl, sockopt_impl};

/// A loopback device shows every packet to a capture twice: going out and
/// coming back in. libpcap throws the outgoing copy away in user space
/// (`linux_check_direction` in pcap-linux.c), after the kernel has copied it
/// into the ring and woken the reader for it. With `PACKET_IGNORE_OUTGOING`
/// the kernel never queues it (`dev_queue_xmit_nit` skips the socket), so the
/// ring carries half as many entries for the same packets. A kernel older than
/// 4.20 refuses the option, and libpcap goes on skipping the copy itself.
fn skip_outgoing_copies(cap: &Capture<Active>) {
    let _ = nix::sys::socket::setsockopt(&cap.as_fd(), IgnoreOutgoing, &true);
}

/// Whether `iface` is a loopback device (`lo`, or any with IFF_LOOPBACK).
/// On any other device outgoing packets are seen once and must be kept.
fn is_loopback(iface: &str) -> bool {
    use nix::net::if_::InterfaceFlags;
    nix::ifaddrs::getifaddrs().is_ok_and(|mut addrs| {
        addrs.any(|a| a.interface_name == iface && a.flags.contains(InterfaceFlags::IFF_LOOPBACK))
    })
}

fn open_error(iface: &str, err: &pcap::Error) -> LiveError {
    let text = pcap_text(err);
    let lower = text.to_lowercase();
    if lower.contains("no such device") {
        LiveError::NoSuchInterface(iface.to_string())
    } else if lower.contains("not up") {
        LiveError::InterfaceDown(iface.to_string())
    } else if lower.contains("permission") || lower.contains("not permitted") {
        LiveError::Permission(iface.to_string())
    } else {
        LiveError::Open {
            iface: iface.to_string(),
            reason: text,
        }
    }
}

/// The interface `-i` names, or the default without it: as tcpdump, a number
/// is the interface of that number in `-D`'s list, unless an interface has
/// the number as its name.
pub fn resolve_interface(arg: Option<&str>) -> Result<String, LiveError> {
    let Some(arg) = arg else {
        return default_interface();
    };
    if arg.is_empty() || !arg.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(arg.to_string());
    }
    let devices = Device::list().map_err(|e| LiveError::List(pcap_text(&e)))?;
    let names: Vec<&str> = devices.iter().map(|d| d.name.as_str()).collect();
    by_number(arg, &names)
}

/// No `-i`: the first interface in `-D`'s list, as tcpdump takes (libpcap
/// puts those that are up and not loopback first).
fn default_interface() -> Result<String, LiveError> {
    match Device::lookup() {
        Ok(Some(device)) => Ok(device.name),
        Ok(None) => Err(LiveError::NoInterface),
        Err(e) => Err(LiveError::List(pcap_text(&e))),
    }
}

/// `arg` (all digits) against the interface names in `-D`'s order.
fn by_number(arg: &str, names: &[&str]) -> Result<String, LiveError> {
    if names.contains(&arg) {
        return Ok(arg.to_string());
    }
    // All digits, but perhaps too many for a usize: then out of range too.
    let number = arg.parse::<usize>().unwrap_or(usize::MAX);
    match number.checked_sub(1).and_then(|i| names.get(i)) {
        Some(name) => Ok(name.to_string()),
        None => Err(LiveError::NoSuchNumber {
            number,
            count: names.len(),
        }),
    }
}

/// `tcpdump -D`: one line per interface, numbered, with its flags.
pub fn list_interfaces() -> Result<Vec<String>, LiveError> {
    let devices = Device::list().map_err(|e| LiveError::List(pcap_text(&e)))?;
    Ok(devices
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let desc = d
                .desc
                .as_deref()
                .map(|s| format!(" ({s})"))
                .unwrap_or_default();
            format!("{}.{}{} [{}]", i + 1, d.name, desc, device_flags(&d.flags))
        })
        .collect())
}

/// The bracketed part of a `-D` line, worded as tcpdump words it, so that
/// scripts and eyes used to tcpdump's list read this one the same way:
/// `Up, Running, Connected`, `none, Disconnected`, `Wireless`.
fn device_flags(flags: &pcap::DeviceFlags) -> String {
    use pcap::ConnectionStatus as Status;
    let mut words: Vec<&str> = [
        (flags.is_up(), "Up"),
        (flags.is_running(), "Running"),
        (flags.is_loopback(), "Loopback"),
        (flags.is_wireless(), "Wireless"),
    ]
    .into_iter()
    .filter_map(|(set, word)| set.then_some(word))
    .collect();
    if words.is_empty() {
        words.push("none");
    }
    let wireless = flags.is_wireless();
    let status = match flags.connection_status {
        Status::Unknown if wireless => Some("Association status unknown"),
        Status::Unknown => Some("Connection status unknown"),
        Status::Connected if wireless => Some("Associated"),
        Status::Connected => Some("Connected"),
        Status::Disconnected if wireless => Some("Not associated"),
        Status::Disconnected => Some("Disconnected"),
        Status::NotApplicable => None,
    };
    words.extend(status);
    words.join(", ")
}

/// Whether the interface is there and up (IFF_UP, as libpcap asks it).
fn interface_up(name: &str) -> bool {
    use nix::net::if_::InterfaceFlags;
    nix::ifaddrs::getifaddrs().is_ok_and(|mut all| {
        all.any(|a| a.interface_name == name && a.flags.contains(InterfaceFlags::IFF_UP))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_length_zero_is_the_most_as_with_tcpdump() {
        assert_eq!(snapshot_length(0), 262_144);
        assert_eq!(snapshot_length(-1), 262_144);
        assert_eq!(snapshot_length(1_000_000), 262_144);
        assert_eq!(snapshot_length(64), 64);
        assert_eq!(snapshot_length(262_144), 262_144);
    }

    #[test]
    fn a_number_picks_the_interface_listed_under_it() {
        let names = ["eth0", "any", "lo"];
        assert_eq!(by_number("1", &names).unwrap(), "eth0");
        assert_eq!(by_number("3", &names).unwrap(), "lo");
        assert_eq!(by_number("003", &names).unwrap(), "lo");
        for bad in ["0", "4", "99999999999999999999999"] {
            let err = by_number(bad, &names).unwrap_err().to_string();
            assert!(err.starts_with("no interface number "), "{err}");
            assert!(err.ends_with("kaprobe sniff -D lists 3"), "{err}");
        }
    }

    #[test]
    fn an_interface_named_by_a_number_keeps_its_name() {
        assert_eq!(by_number("2", &["eth0", "7", "2"]).unwrap(), "2");
        assert_eq!(by_number("3", &["eth0", "7", "2"]).unwrap(), "2");
    }

    #[test]
    fn interface_flags_are_worded_as_tcpdump_words_them() {
        use pcap::{ConnectionStatus as Status, DeviceFlags, IfFlags};
        let line = |if_flags: IfFlags, connection_status: Status| {
            device_flags(&DeviceFlags {
                if_flags,
                connection_status,
            })
        };
        let up_running = IfFlags::UP | IfFlags::RUNNING;
        let none = IfFlags::empty();
        let (loopback, wireless) = (IfFlags::LOOPBACK, IfFlags::WIRELESS);
        let cases = [
            (up_running, Status::Connected, "Up, Running, Connected"),
            (
                up_running | loopback,
                Status::NotApplicable,
                "Up, Running, Loopback",
            ),
            (none, Status::NotApplicable, "none"),
            (none, Status::Disconnected, "none, Disconnected"),
            (
                IfFlags::UP,
                Status::Unknown,
                "Up, Connection status unknown",
            ),
            (wireless, Status::NotApplicable, "Wireless"),
            (wireless, Status::Disconnected, "Wireless, Not associated"),
            (
                up_running | wireless,
                Status::Connected,
                "Up, Running, Wireless, Associated",
            ),
        ];
        for (flags, status, want) in cases {
            assert_eq!(line(flags, status), want);
        }
    }
}
