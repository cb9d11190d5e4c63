//! Live capture through a plain packet socket, one packet per read: for
//! `poke`, which awaits a handful of packets and must start and end at once.
//!
//! libpcap maps a ring buffer into every live capture. On Linux, installing
//! that ring (`packet_set_ring`) and closing a packet socket
//! (`packet_release`) each wait out an RCU grace period (`synchronize_net`):
//! 6-18 ms apiece on the project's VM, against poke's whole budget of 10 ms
//! (docs/PERFORMANCE.md). This socket has no ring, so it opens at once. The
//! filter is still compiled by libpcap. The wait on close is moved off the
//! command's time by [`PacketSocket::close_detached`].
//!
//! The socket listens on every interface from the start: binding it to one
//! would re-register it with the kernel, which waits out a grace period too.
//! Frames from other interfaces are dropped here instead. It is `SOCK_DGRAM`,
//! so frames arrive as raw IP, without their link header.

use std::io::{IoSliceMut, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::socket::{recvmsg, setsockopt, sockopt, ControlMessageOwned, LinkAddr, MsgFlags};
use pcap::{BpfInstruction, Capture, Linktype};
use socket2::{Domain, Protocol, SockFilter, Socket, Type};

use super::{micros, pcap_text, readable_within, wall_clock, Frame, LiveError};
use crate::flow::Micros;
use crate::wire::LinkType;

/// DLT_RAW on Linux: what a `SOCK_DGRAM` packet socket hands the filter.
const DLT_RAW: i32 = 12;
/// Packets read per call at most, so that timers stay prompt under a flood.
const BATCH: usize = 256;
/// The first argument that makes the binary the helper of
/// [`PacketSocket::close_detached`] (not a subcommand: it is not offered to
/// users, nor in completions).
pub const RELEASE_COMMAND: &str = "__release-packet-socket";

/// A live capture for a few packets, opened and closed without waiting on
/// the kernel.
pub struct PacketSocket {
    iface: String,
    /// The interface to keep frames of; 0 keeps all (`any`).
    ifindex: usize,
    fd: OwnedFd,
    number: u64,
    buf: Vec<u8>,
    cmsg: Vec<u8>,
}

impl PacketSocket {
    /// Capture on `interface` (`any` for all) what `expr` lets through,
    /// keeping `snaplen` bytes of each packet, with `buffer` bytes of kernel
    /// queue (forced past `rmem_max` when the capability allows).
    pub fn open(
        interface: &str,
        expr: &str,
        snaplen: usize,
        buffer: usize,
    ) -> Result<PacketSocket, LiveError> {
        let iface = interface.to_string();
        let ifindex = ifindex(interface)?;
        let program = compile(expr)?;
        let os = |e: std::io::Error| socket_error(&iface, e);
        let all = Protocol::from(i32::from((libc::ETH_P_ALL as u16).to_be()));
        let socket = Socket::new(Domain::PACKET, Type::DGRAM.cloexec(), Some(all)).map_err(os)?;
        socket.attach_filter(&program).map_err(os)?;
        let fd = OwnedFd::from(socket);
        let errno = |e: Errno| socket_error(&iface, e.into());
        let buffer = buffer.min(i32::MAX as usize);
        if setsockopt(&fd, sockopt::RcvBufForce, &buffer).is_err() {
            setsockopt(&fd, sockopt::RcvBuf, &buffer).map_err(errno)?;
        }
        setsockopt(&fd, sockopt::ReceiveTimestamp, &true).map_err(errno)?;
        let mut capture = PacketSocket {
            iface,
            ifindex,
            fd,
            number: 0,
            buf: vec![0; snaplen],
            cmsg: nix::cmsg_space!(nix::sys::time::TimeVal),
        };
        capture.drain()?;
        Ok(capture)
    }

    pub fn link(&self) -> LinkType {
        LinkType::RawIp
    }

    /// Hands `each` the packets that have arrived, waiting up to `wait` for
    /// the first; returns how many.
    pub fn dispatch(
        &mut self,
        wait: Duration,
        mut each: impl FnMut(Frame<'_>),
    ) -> Result<usize, LiveError> {
        if !self.readable(wait)? {
            return Ok(0);
        }
        let mut n = 0;
        while n < BATCH {
            let Some((len, time)) = self.receive()? else {
                break;
            };
            n += 1;
            self.number += 1;
            each(Frame {
                number: self.number,
                time,
                data: &self.buf[..len],
                // poke reads headers only, and never asks what was cut.
                wire_len: len as u32,
                record_len: len as u64,
            });
        }
        Ok(n)
    }

    /// Whatever came in before the filter was attached is not filtered:
    /// throw it away. Nothing of poke's has been sent yet.
    fn drain(&mut self) -> Result<(), LiveError> {
        while self.receive()?.is_some() {}
        Ok(())
    }

    /// One packet into `buf`: its captured length and kernel timestamp, or
    /// `None` when the queue is empty. Skipped: frames of other interfaces,
    /// and the outgoing copy of a loopback packet, as libpcap does (the same
    /// packet comes in next).
    fn receive(&mut self) -> Result<Option<(usize, Micros)>, LiveError> {
        loop {
            let mut iov = [IoSliceMut::new(&mut self.buf)];
            let msg = match recvmsg::<LinkAddr>(
                self.fd.as_raw_fd(),
                &mut iov,
                Some(&mut self.cmsg),
                MsgFlags::MSG_DONTWAIT,
            ) {
                Ok(msg) => msg,
                Err(Errno::EAGAIN) => return Ok(None),
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(read_error(&self.iface, e)),
            };
            let skip = msg.address.is_some_and(|a| {
                let looped =
                    a.hatype() == libc::ARPHRD_LOOPBACK && a.pkttype() == libc::PACKET_OUTGOING;
                looped || (self.ifindex != 0 && a.ifindex() != self.ifindex)
            });
            let time = msg
                .cmsgs()
                .map_err(|e| read_error(&self.iface, e))?
                .find_map(|cmsg| match cmsg {
                    ControlMessageOwned::ScmTimestamp(tv) => Some(timeval_micros(tv)),
                    _ => None,
                });
            if !skip {
                let len = msg.bytes.min(self.buf.len());
                return Ok(Some((len, time.unwrap_or_else(wall_clock))));
            }
        }
    }

    fn readable(&self, wait: Duration) -> Result<bool, LiveError> {
        readable_within(self.fd.as_fd(), None, wait).map_err(|e| read_error(&self.iface, e))
    }

    /// Close the socket without making this process wait for the kernel.
    ///
    /// The last close of a packet socket waits out an RCU grace period, and
    /// a process's parent does not see it exit until its descriptors are
    /// closed. So a helper process (this binary, [`RELEASE_COMMAND`]) takes
    /// the socket as its stdout and this process lets go of it at once. The
    /// helper reads its stdin, a pipe whose other end this process keeps,
    /// until end-of-file: that comes when this process exits, after which
    /// the helper's close is the last one. Without the helper (it cannot be
    /// started), the socket is closed here.
    pub fn close_detached(self) {
        let Ok(exe) = std::env::current_exe() else {
            return;
        };
        let spawned = Command::new(exe)
            .arg(RELEASE_COMMAND)
            .stdin(Stdio::piped())
            .stdout(Stdio::from(self.fd))
            .stderr(Stdio::null())
            .spawn();
        if let Ok(mut helper) = spawned {
            // Closed by this process's exit, not before.
            std::mem::forget(helper.stdin.take());
        }
    }
}

/// The helper of [`PacketSocket::close_detached`]: hold stdout until stdin
/// ends, then exit, which closes it.
pub fn release_inherited() {
    let mut byte = [0u8; 1];
    let stdin = std::io::stdin();
    let mut stdin = stdin.lock();
    while matches!(stdin.read(&mut byte), Ok(n) if n > 0) {}
}

/// libpcap's program for raw IP frames, in the kernel's form. The pcap crate
/// keeps an instruction's fields private; its `Display` gives them, as
/// "code jt jf k".
fn compile(expr: &str) -> Result<Vec<SockFilter>, LiveError> {
    let error = |reason: String| LiveError::Filter {
        expr: expr.to_string(),
        reason,
    };
    let program = Capture::dead(Linktype(DLT_RAW))
        .and_then(|dead| dead.compile(expr, true))
        .map_err(|e| error(pcap_text(&e)))?;
    program
        .get_instructions()
        .iter()
        .map(|insn| kernel_insn(insn).ok_or_else(|| error(format!("cannot read '{insn}'"))))
        .collect()
}

fn kernel_insn(insn: &BpfInstruction) -> Option<SockFilter> {
    let text = insn.to_string();
    let mut fields = text.split(' ');
    let mut next = || fields.next()?.parse::<u32>().ok();
    let (code, jt, jf, k) = (next()?, next()?, next()?, next()?);
    Some(SockFilter::new(
        u16::try_from(code).ok()?,
        u8::try_from(jt).ok()?,
        u8::try_from(jf).ok()?,
        k,
    ))
}

#[allow(clippy::useless_conversion)] // time_t is not 64 bits everywhere
fn timeval_micros(tv: nix::sys::time::TimeVal) -> Micros {
    micros(i64::from(tv.tv_sec()), i64::from(tv.tv_usec()))
}

/// The interface's index; 0 for `any`.
fn ifindex(interface: &str) -> Result<usize, LiveError> {
    if interface == "any" {
        return Ok(0);
    }
    nix::net::if_::if_nametoindex(interface)
        .map(|i| i as usize)
        .map_err(|_| LiveError::NoSuchInterface(interface.to_string()))
}

fn read_error(iface: &str, e: Errno) -> LiveError {
    LiveError::Read {
        iface: iface.to_string(),
        reason: e.desc().to_string(),
    }
}

fn socket_error(iface: &str, e: std::io::Error) -> LiveError {
    match e.raw_os_error() {
        Some(libc::EPERM | libc::EACCES) => LiveError::Permission(iface.to_string()),
        _ => LiveError::Open {
            iface: iface.to_string(),
            reason: e.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The filter reaches the kernel as libpcap compiled it.
    #[test]
    fn compiled_filter_keeps_every_instruction() {
        let ours = compile("tcp port 5432 or icmp").unwrap();
        let theirs = Capture::dead(Linktype(DLT_RAW))
            .unwrap()
            .compile("tcp port 5432 or icmp", true)
            .unwrap();
        let text: Vec<String> = theirs
            .get_instructions()
            .iter()
            .map(|i| i.to_string())
            .collect();
        assert_eq!(ours.len(), text.len());
        assert!(ours.len() > 4);
        let last = kernel_insn(theirs.get_instructions().last().unwrap()).unwrap();
        // BPF_RET|BPF_K 0: the reject at the end of every libpcap program.
        assert_eq!(
            format!("{:?}", last),
            format!("{:?}", SockFilter::new(6, 0, 0, 0))
        );
    }

    #[test]
    fn bad_filter_is_named() {
        let err = compile("tcp port").err().unwrap();
        assert!(
            err.to_string().starts_with("bad filter 'tcp port'"),
            "{err}"
        );
    }
}
