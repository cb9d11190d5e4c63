//! Decode: one captured frame -> one TCP [`Segment`].
//!
//! Trusts nothing: every length is checked once here, and a frame that is not a
//! TCP segment, or is too short to hold the headers it announces, is reported as
//! a [`DecodeError`] or `Ok(None)` instead of panicking. etherparse does the IP
//! and TCP work; the link layers it does not know (SLL2, BSD NULL, PPPoE) are
//! fixed-size headers read here.

mod link;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use etherparse::{IpNumber, Ipv4HeaderSlice, LaxIpSlice, TcpSlice};

pub use link::{LinkType, UnsupportedLinkType};

/// TCP flag bits as they sit in byte 13 of the header.
pub mod flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
}

/// Up to two VLAN ids (802.1Q, or QinQ outer then inner); 0 = none.
///
/// Part of the connection key: one flow seen on several VLANs is several flows
/// (a mirror port often delivers the same segment once per VLAN).
pub type VlanTags = [u16; 2];

/// One end of a connection, packed for the flow table: the address as 128
/// bits (IPv4 as an IPv4-mapped IPv6 address) and the port. Turned into a
/// `SocketAddr` only for output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Endpoint {
    pub ip: u128,
    pub port: u16,
}

impl Endpoint {
    pub fn v4(ip: [u8; 4], port: u16) -> Endpoint {
        Endpoint {
            ip: u128::from(Ipv4Addr::from(ip).to_ipv6_mapped()),
            port,
        }
    }

    pub fn v6(ip: [u8; 16], port: u16) -> Endpoint {
        Endpoint {
            ip: u128::from_be_bytes(ip),
            port,
        }
    }

    pub fn socket_addr(self) -> SocketAddr {
        let v6 = Ipv6Addr::from(self.ip);
        let ip = v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4);
        SocketAddr::new(ip, self.port)
    }
}

impl From<SocketAddr> for Endpoint {
    fn from(addr: SocketAddr) -> Endpoint {
        match addr.ip() {
            IpAddr::V4(v4) => Endpoint::v4(v4.octets(), addr.port()),
            IpAddr::V6(v6) => Endpoint::v6(v6.octets(), addr.port()),
        }
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.socket_addr().fmt(f)
    }
}

/// The fields of a TCP segment that the keepalive rules read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    pub src: Endpoint,
    pub dst: Endpoint,
    pub vlan: VlanTags,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    /// Raw window field (unscaled): only "zero or not" matters here.
    pub window: u16,
    /// Payload length from the IP header, so snaplen-truncated frames count right.
    pub payload_len: u32,
    /// The first payload byte when it was captured.
    pub first_byte: Option<u8>,
    /// IPv4 identification (0 for IPv6): tells a copy of a frame from a resend.
    pub ip_id: u16,
    /// TCP timestamp option value (TSval), if present.
    pub tsval: Option<u32>,
    /// The segment carries an MPTCP DSS option with a data mapping: the
    /// payload is MPTCP-level data (RFC 8684 3.3), which the redundant
    /// scheduler re-sends on every subflow.
    pub mptcp_data: bool,
}

impl Segment {
    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }

    /// Sequence space the segment occupies: payload plus one each for SYN and FIN.
    pub fn seq_len(&self) -> u32 {
        self.payload_len + u32::from(self.has(flags::SYN)) + u32::from(self.has(flags::FIN))
    }
}

/// Why a frame could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("{layer} header truncated: need {need} bytes, frame has {have}")]
    Truncated {
        layer: &'static str,
        need: usize,
        have: usize,
    },
    #[error("malformed {layer} header: {what}")]
    Malformed { layer: &'static str, what: String },
}

/// Decode one frame of the given link type.
///
/// `Ok(None)` means a well-formed frame that is not a TCP segment (ARP, UDP, a
/// non-first IP fragment, ...).
pub fn decode(link: LinkType, frame: &[u8]) -> Result<Option<Segment>, DecodeError> {
    let mut vlan = [0u16; 2];
    match link::ip_payload(link, frame, &mut vlan)? {
        Some(ip) => decode_ip(ip, vlan),
        None => Ok(None),
    }
}

/// The IP packet inside a frame of the given link type, and nothing more:
/// `poke` reads ICMP errors and TCP options from it, which `decode` skips.
pub fn ip_packet(link: LinkType, frame: &[u8]) -> Result<Option<&[u8]>, DecodeError> {
    let mut vlan = [0u16; 2];
    link::ip_payload(link, frame, &mut vlan)
}

/// The IP layer as far as TCP needs it.
struct IpView {
    /// Addresses as 128 bits (IPv4 mapped), as `Endpoint` keeps them.
    src: u128,
    dst: u128,
    /// Where the IP header says the packet ends; `None` when it says 0 (TSO
    /// on the capturing host, IPv6 jumbograms), which leaves only the
    /// captured bytes to go by.
    end: Option<usize>,
    id: u16,
    /// Bytes from the start of the IP header to the TCP header (IPv4
    /// options, IPv6 extension headers).
    tcp_offset: usize,
}

fn malformed(layer: &'static str, e: impl std::fmt::Display) -> DecodeError {
    DecodeError::Malformed {
        layer,
        what: e.to_string(),
    }
}

/// IPv4 without extension headers is nearly every packet: read its fixed
/// header directly, and leave the rest to etherparse's general IP slicer.
fn ip_view(ip: &[u8]) -> Result<Option<IpView>, DecodeError> {
    if ip.first().map(|b| b >> 4) != Some(4) {
        return lax_ip_view(ip);
    }
    let h = Ipv4HeaderSlice::from_slice(ip).map_err(|e| malformed("IPv4", e))?;
    if h.protocol() == IpNumber::AUTHENTICATION_HEADER {
        return lax_ip_view(ip);
    }
    if h.protocol() != IpNumber::TCP || h.is_fragmenting_payload() {
        return Ok(None);
    }
    let tcp_offset = h.slice().len();
    let total = usize::from(h.total_len());
    if total != 0 && total < tcp_offset {
        return Err(malformed(
            "IPv4",
            format!("total length {total} is shorter than the header"),
        ));
    }
    let end = (total != 0).then_some(total);
    Ok(Some(IpView {
        src: Endpoint::v4(h.source(), 0).ip,
        dst: Endpoint::v4(h.destination(), 0).ip,
        end,
        id: h.identification(),
        tcp_offset,
    }))
}

fn lax_ip_view(ip: &[u8]) -> Result<Option<IpView>, DecodeError> {
    let (slice, _ext_err) = LaxIpSlice::from_slice(ip).map_err(|e| malformed("IP", e))?;
    let payload = slice.payload();
    if payload.ip_number != IpNumber::TCP || payload.fragmented {
        return Ok(None);
    }
    let tcp_offset = payload.payload.as_ptr() as usize - ip.as_ptr() as usize;
    Ok(Some(match &slice {
        LaxIpSlice::Ipv4(v4) => {
            let h = v4.header();
            let total = usize::from(h.total_len());
            let end = (total != 0).then_some(total);
            IpView {
                src: Endpoint::v4(h.source(), 0).ip,
                dst: Endpoint::v4(h.destination(), 0).ip,
                end,
                id: h.identification(),
                tcp_offset,
            }
        }
        LaxIpSlice::Ipv6(v6) => {
            let h = v6.header();
            let end = (h.payload_length() != 0).then_some(40 + usize::from(h.payload_length()));
            IpView {
                src: Endpoint::v6(h.source(), 0).ip,
                dst: Endpoint::v6(h.destination(), 0).ip,
                end,
                id: 0,
                tcp_offset,
            }
        }
    }))
}

/// Decode an IPv4 or IPv6 packet carrying TCP.
pub fn decode_ip(ip: &[u8], vlan: VlanTags) -> Result<Option<Segment>, DecodeError> {
    let Some(view) = ip_view(ip)? else {
        return Ok(None);
    };
    // The TCP bytes end where the IP header says (Ethernet pads short
    // frames) or where the capture stopped, whichever is first.
    let captured_end = view.end.map_or(ip.len(), |e| e.min(ip.len()));
    let tcp_bytes = ip.get(view.tcp_offset..captured_end).unwrap_or(&[]);
    let IpView {
        src,
        dst,
        end: ip_end,
        id: ip_id,
        tcp_offset,
    } = view;
    let tcp = TcpSlice::from_slice(tcp_bytes).map_err(|e| malformed("TCP", e))?;
    let header_len = usize::from(tcp.data_offset()) * 4;
    let transport_len = match ip_end {
        Some(end) => end.saturating_sub(tcp_offset),
        None => tcp_bytes.len(),
    };
    let payload_len = transport_len.saturating_sub(header_len);
    let (tsval, mptcp_data) = scan_options(tcp.options());
    Ok(Some(Segment {
        src: Endpoint {
            ip: src,
            port: tcp.source_port(),
        },
        dst: Endpoint {
            ip: dst,
            port: tcp.destination_port(),
        },
        vlan,
        seq: tcp.sequence_number(),
        ack: tcp.acknowledgment_number(),
        flags: tcp.header_slice()[13],
        window: tcp.window_size(),
        payload_len: u32::try_from(payload_len).unwrap_or(u32::MAX),
        first_byte: if payload_len > 0 {
            tcp.payload().first().copied()
        } else {
            None
        },
        ip_id,
        tsval,
        mptcp_data,
    }))
}

/// Walk the TCP options for the timestamp (kind 8) and an MPTCP data
/// mapping (kind 30, subtype DSS = 2, flag M = 0x04).
///
/// etherparse's option iterator stops at the first kind it does not know, and
/// MPTCP is one of those, so the walk is done here (RFC 9293 3.2: kind, length).
fn scan_options(mut opts: &[u8]) -> (Option<u32>, bool) {
    const END: u8 = 0;
    const NOP: u8 = 1;
    const TIMESTAMP: u8 = 8;
    const MPTCP: u8 = 30;
    const MPTCP_DSS: u8 = 2;
    const DSS_MAPPING: u8 = 0x04;
    let (mut tsval, mut mptcp_data) = (None, false);
    while let Some(&kind) = opts.first() {
        match kind {
            END => break,
            NOP => opts = &opts[1..],
            _ => {
                let len = usize::from(*opts.get(1).unwrap_or(&0));
                if len < 2 || len > opts.len() {
                    break;
                }
                if kind == TIMESTAMP && len == 10 {
                    tsval = Some(u32::from_be_bytes([opts[2], opts[3], opts[4], opts[5]]));
                }
                if kind == MPTCP && len >= 4 {
                    mptcp_data |= opts[2] >> 4 == MPTCP_DSS && opts[3] & DSS_MAPPING != 0;
                }
                opts = &opts[len..];
            }
        }
    }
    (tsval, mptcp_data)
}

#[cfg(test)]
mod tests;
