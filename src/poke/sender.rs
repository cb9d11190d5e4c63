//! Raw sending: whole IP packets, header included, through `IPPROTO_RAW`
//! sockets (raw(7): IP_HDRINCL is implied; for IPv6 since Linux 4.5).
//!
//! The IP header is ours so that the source address is the connection's
//! own local address (or, for learning, the peer's: see `session`), never
//! what routing would pick.

use std::net::{IpAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{
    sendto, socket, AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType, SockaddrIn,
    SockaddrIn6,
};

/// Why a raw packet could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("no permission to open a raw socket: {lacking}: {fix}", lacking = crate::privilege::lacking(&[crate::privilege::NET_RAW]), fix = crate::privilege::FIX)]
    Permission,
    #[error("cannot open a raw {family} socket: {reason}")]
    Open { family: &'static str, reason: Errno },
    #[error("cannot send to {dst}: {reason}")]
    Send { dst: IpAddr, reason: Errno },
}

/// One raw socket per IP version, opened on first use.
#[derive(Default)]
pub struct RawSender {
    v4: Option<OwnedFd>,
    v6: Option<OwnedFd>,
}

impl RawSender {
    pub fn new() -> RawSender {
        RawSender::default()
    }

    /// Open both sockets now, so that a missing privilege is reported before
    /// anything else happens.
    pub fn open(&mut self) -> Result<(), SendError> {
        self.fd(false)?;
        self.fd(true)?;
        Ok(())
    }

    fn fd(&mut self, v6: bool) -> Result<&OwnedFd, SendError> {
        let slot = if v6 { &mut self.v6 } else { &mut self.v4 };
        match slot {
            Some(fd) => Ok(fd),
            None => {
                let family = if v6 {
                    AddressFamily::Inet6
                } else {
                    AddressFamily::Inet
                };
                let fd = socket(
                    family,
                    SockType::Raw,
                    SockFlag::SOCK_CLOEXEC,
                    SockProtocol::Raw,
                )
                .map_err(|e| match e {
                    Errno::EPERM | Errno::EACCES => SendError::Permission,
                    reason => SendError::Open {
                        family: if v6 { "IPv6" } else { "IPv4" },
                        reason,
                    },
                })?;
                Ok(slot.insert(fd))
            }
        }
    }

    /// Send one IP packet (as `SegmentSpec::packet` builds it) to `dst`;
    /// `scope` is the interface of an IPv6 link-local `dst` (else ignored).
    pub fn send(&mut self, packet: &[u8], dst: IpAddr, scope: u32) -> Result<(), SendError> {
        let err = |reason| SendError::Send { dst, reason };
        match dst {
            IpAddr::V4(ip) => {
                let fd = self.fd(false)?.as_raw_fd();
                let addr = SockaddrIn::from(SocketAddrV4::new(ip, 0));
                sendto(fd, packet, &addr, MsgFlags::empty()).map_err(err)?;
            }
            IpAddr::V6(ip) => {
                let fd = self.fd(true)?.as_raw_fd();
                let link_local = ip.segments()[0] & 0xffc0 == 0xfe80;
                let scope = if link_local { scope } else { 0 };
                let addr = SockaddrIn6::from(SocketAddrV6::new(ip, 0, 0, scope));
                sendto(fd, packet, &addr, MsgFlags::empty()).map_err(err)?;
            }
        }
        Ok(())
    }
}
