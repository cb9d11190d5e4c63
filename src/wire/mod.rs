//! Decode: one captured frame -> one TCP [`Segment`].
//!
//! Trusts nothing: every length is checked once here, and a frame that is not a
//! TCP segment, or is too short to hold the headers it announces, is reported as
//! a [`DecodeError`] or `Ok(None)` instead of panicking. The fixed IPv4, IPv6
//! and TCP header fields are read here by hand, since every frame passes
//! through them; etherparse walks IPv6 extension headers and IPsec AH, peels
//! Ethernet and VLAN tags, and words the errors. The link layers it does not
//! know (SLL2, BSD NULL, PPPoE) are fixed-size headers read here.

mod link;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4};

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
        AddrText(self.socket_addr()).fmt(f)
    }
}

/// A socket address shown as `SocketAddr` shows it. IPv4 is written here
/// digit by digit: every JSON line names two endpoints, and std's
/// formatting of the four octets and the port took as many instructions as
/// the rest of the line.
pub struct AddrText(pub SocketAddr);

impl AddrText {
    /// An IPv4 endpoint written into `buf`: `a.b.c.d:port`, at most 21
    /// bytes. For writers that take text without `fmt` in between.
    pub fn v4(v4: SocketAddrV4, buf: &mut [u8; 21]) -> &str {
        let mut len = 0;
        for (i, octet) in v4.ip().octets().into_iter().enumerate() {
            if i > 0 {
                buf[len] = b'.';
                len += 1;
            }
            len += decimal(&mut buf[len..], u32::from(octet));
        }
        buf[len] = b':';
        len += 1;
        len += decimal(&mut buf[len..], u32::from(v4.port()));
        // Digits, dots and a colon: always ASCII.
        std::str::from_utf8(&buf[..len]).unwrap_or_default()
    }
}

impl std::fmt::Display for AddrText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            SocketAddr::V4(v4) => f.pad(AddrText::v4(v4, &mut [0; 21])),
            SocketAddr::V6(_) => self.0.fmt(f),
        }
    }
}

/// `n` in decimal at the start of `out` (which has room for it); returns
/// how many bytes. Written in place, its length known first: through a
/// buffer of its own and a copy, an IPv4 endpoint cost ~400 instructions.
fn decimal(out: &mut [u8], n: u32) -> usize {
    let len = n.checked_ilog10().map_or(1, |digits| digits as usize + 1);
    let mut n = n;
    for d in out[..len].iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
    len
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
    /// The capture ended inside the TCP options (a small snapshot length,
    /// such as tcpdump's `-s 64`): `tsval` and `mptcp_data` say only what
    /// the captured part holds, and a missing TSval may be in the rest.
    pub options_cut: bool,
}

impl Segment {
    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }

    /// Known to carry no timestamp: none in options captured whole.
    pub fn lacks_timestamp(&self) -> bool {
        self.tsval.is_none() && !self.options_cut
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

// The errors are built out of line (`#[cold]`): inlined, their formatting
// made the decoder's frame large and its every call dearer.
#[cold]
fn malformed(layer: &'static str, e: impl std::fmt::Display) -> DecodeError {
    DecodeError::Malformed {
        layer,
        what: e.to_string(),
    }
}

/// Read the IP header fields by hand for the packets nearly every capture is
/// made of (IPv4, and IPv6 whose next header is TCP); IPv6 extension headers
/// and IPsec AH go to etherparse's general IP slicer.
fn ip_view(ip: &[u8]) -> Result<Option<IpView>, DecodeError> {
    match ip.first().map(|b| b >> 4) {
        Some(4) => ipv4_view(ip),
        Some(6) if ip.get(6) == Some(&u8::from(IpNumber::TCP)) => ipv6_view(ip),
        _ => lax_ip_view(ip),
    }
}

/// RFC 791 3.1: IHL in 32-bit words, total length, identification, the MF
/// flag and fragment offset, protocol, then the addresses at 12 and 16.
fn ipv4_view(ip: &[u8]) -> Result<Option<IpView>, DecodeError> {
    let header_len = ip.first().map_or(0, |b| usize::from(b & 0x0f) * 4);
    let Some(h) = ip
        .first_chunk::<20>()
        .filter(|_| header_len >= 20 && ip.len() >= header_len)
    else {
        return Err(ipv4_rejected(ip));
    };
    let protocol = IpNumber(h[9]);
    if protocol == IpNumber::AUTHENTICATION_HEADER {
        return lax_ip_view(ip);
    }
    let fragmenting = u16::from_be_bytes([h[6], h[7]]) & 0x3fff != 0;
    if protocol != IpNumber::TCP || fragmenting {
        return Ok(None);
    }
    let total = usize::from(u16::from_be_bytes([h[2], h[3]]));
    if total != 0 && total < header_len {
        return Err(ipv4_too_short(total));
    }
    Ok(Some(IpView {
        src: v4_mapped([h[12], h[13], h[14], h[15]]),
        dst: v4_mapped([h[16], h[17], h[18], h[19]]),
        end: (total != 0).then_some(total),
        id: u16::from_be_bytes([h[4], h[5]]),
        tcp_offset: header_len,
    }))
}

#[cold]
fn ipv4_too_short(total: usize) -> DecodeError {
    malformed(
        "IPv4",
        format!("total length {total} is shorter than the header"),
    )
}

/// The error etherparse gives for an IPv4 header the checks above turned
/// down (shorter than 20 bytes, or than its IHL says), in its words.
#[cold]
fn ipv4_rejected(ip: &[u8]) -> DecodeError {
    match Ipv4HeaderSlice::from_slice(ip) {
        Err(e) => malformed("IPv4", e),
        Ok(_) => malformed("IPv4", "header length"),
    }
}

/// RFC 8200 3: a fixed 40-byte header, payload length at 4, next header at
/// 6, the addresses at 8 and 24. Payload length 0 (a jumbogram) leaves the
/// captured bytes to go by.
fn ipv6_view(ip: &[u8]) -> Result<Option<IpView>, DecodeError> {
    let Some(h) = ip.first_chunk::<40>() else {
        return lax_ip_view(ip);
    };
    let payload_len = usize::from(u16::from_be_bytes([h[4], h[5]]));
    let addr = |at: usize| {
        let mut a = [0u8; 16];
        a.copy_from_slice(&h[at..at + 16]);
        u128::from_be_bytes(a)
    };
    Ok(Some(IpView {
        src: addr(8),
        dst: addr(24),
        end: (payload_len != 0).then_some(40 + payload_len),
        id: 0,
        tcp_offset: 40,
    }))
}

/// An IPv4 address as `Endpoint` keeps it: IPv4-mapped IPv6 (RFC 4291 2.5.5.2).
fn v4_mapped(ip: [u8; 4]) -> u128 {
    0xffff_u128 << 32 | u128::from(u32::from_be_bytes(ip))
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
    if let Some(seg) = plain_ipv4_tcp(ip, vlan) {
        return Ok(Some(seg));
    }
    let Some(view) = ip_view(ip)? else {
        return Ok(None);
    };
    // The TCP bytes end where the IP header says (Ethernet pads short
    // frames) or where the capture stopped, whichever is first.
    let captured_end = view.end.map_or(ip.len(), |e| e.min(ip.len()));
    let tcp_bytes = ip.get(view.tcp_offset..captured_end).unwrap_or(&[]);
    // RFC 9293 3.1: ports, seq, ack, data offset (in 32-bit words) in the
    // high nibble of byte 12, flags in byte 13, window at 14.
    let header_len = tcp_bytes.get(12).map_or(0, |b| usize::from(b >> 4) * 4);
    let transport_len = match view.end {
        Some(end) => end.saturating_sub(view.tcp_offset),
        None => tcp_bytes.len(),
    };
    // The capture may end inside the options when the IP header says the
    // packet went on (the snapshot length cut it): the fixed 20 bytes hold
    // everything but the options.
    let options_cut = tcp_bytes.len() < header_len;
    let cut_by_capture = view.end.is_some_and(|e| e > ip.len()) && transport_len >= header_len;
    let Some(t) = tcp_bytes
        .first_chunk::<20>()
        .filter(|_| header_len >= 20 && (!options_cut || cut_by_capture))
    else {
        return Err(tcp_rejected(tcp_bytes));
    };
    let be16 = |at: usize| u16::from_be_bytes([t[at], t[at + 1]]);
    let be32 = |at: usize| u32::from_be_bytes([t[at], t[at + 1], t[at + 2], t[at + 3]]);
    let payload_len = transport_len.saturating_sub(header_len);
    let options = &tcp_bytes[20..header_len.min(tcp_bytes.len())];
    let (tsval, mptcp_data) = scan_options(options);
    Ok(Some(Segment {
        src: Endpoint {
            ip: view.src,
            port: be16(0),
        },
        dst: Endpoint {
            ip: view.dst,
            port: be16(2),
        },
        vlan,
        seq: be32(4),
        ack: be32(8),
        flags: t[13],
        window: be16(14),
        payload_len: u32::try_from(payload_len).unwrap_or(u32::MAX),
        first_byte: if payload_len > 0 {
            tcp_bytes.get(header_len).copied()
        } else {
            None
        },
        ip_id: view.id,
        tsval,
        mptcp_data,
        options_cut,
    }))
}

/// The packet nearly every IPv4 capture is made of, read in one pass: a
/// 20-byte IPv4 header (RFC 791 3.1) that is not a fragment and gives its
/// total length, then a TCP header with no options or with the timestamp
/// after two NOPs (see `scan_options`), complete in the captured bytes.
/// Anything else is `None`, for [`decode_ip`]'s general path, which gives the
/// same segment for these packets (the property tests hold both to
/// etherparse's reading).
#[inline]
fn plain_ipv4_tcp(ip: &[u8], vlan: VlanTags) -> Option<Segment> {
    let h = ip.first_chunk::<40>()?;
    let be16 = |at: usize| u16::from_be_bytes([h[at], h[at + 1]]);
    let be32 = |at: usize| u32::from_be_bytes([h[at], h[at + 1], h[at + 2], h[at + 3]]);
    let fragmenting = be16(6) & 0x3fff != 0;
    if h[0] != 0x45 || h[9] != u8::from(IpNumber::TCP) || fragmenting {
        return None;
    }
    let total = usize::from(be16(2));
    let tcp_len = usize::from(h[32] >> 4) * 4;
    let captured = total.min(ip.len());
    let tsval = match tcp_len {
        20 if captured >= 40 => None,
        32 if captured >= 52 && ip[40..44] == [1, 1, 8, 10] => {
            Some(u32::from_be_bytes([ip[44], ip[45], ip[46], ip[47]]))
        }
        _ => return None,
    };
    let payload_len = total.saturating_sub(20 + tcp_len);
    Some(Segment {
        src: Endpoint {
            ip: v4_mapped([h[12], h[13], h[14], h[15]]),
            port: be16(20),
        },
        dst: Endpoint {
            ip: v4_mapped([h[16], h[17], h[18], h[19]]),
            port: be16(22),
        },
        vlan,
        seq: be32(24),
        ack: be32(28),
        flags: h[33],
        window: be16(34),
        payload_len: payload_len as u32,
        first_byte: if payload_len > 0 && captured > 20 + tcp_len {
            Some(ip[20 + tcp_len])
        } else {
            None
        },
        ip_id: be16(4),
        tsval,
        mptcp_data: false,
        options_cut: false,
    })
}

/// The error etherparse gives for a TCP header the checks above turned down
/// (cut short, or a data offset below 5), in its words.
#[cold]
fn tcp_rejected(tcp: &[u8]) -> DecodeError {
    match TcpSlice::from_slice(tcp) {
        Err(e) => malformed("TCP", e),
        Ok(_) => malformed("TCP", "header length"),
    }
}

/// The options of a TCP header as (kind, whole option bytes), by the
/// kind-length walk of RFC 9293 3.1. Stops at END, and at an option whose
/// length does not fit: what follows cannot be trusted.
///
/// etherparse's option iterator stops at the first kind it does not know,
/// and MPTCP is one of those, so the walk is done here.
pub struct TcpOptions<'a>(pub &'a [u8]);

impl<'a> Iterator for TcpOptions<'a> {
    type Item = (u8, &'a [u8]);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        const END: u8 = 0;
        const NOP: u8 = 1;
        loop {
            let opts = self.0;
            match *opts.first()? {
                END => return None,
                NOP => self.0 = &opts[1..],
                kind => {
                    let len = usize::from(*opts.get(1)?);
                    if len < 2 || len > opts.len() {
                        return None;
                    }
                    self.0 = &opts[len..];
                    return Some((kind, &opts[..len]));
                }
            }
        }
    }
}

/// The timestamp (kind 8) and whether there is an MPTCP data mapping
/// (kind 30, subtype DSS = 2, flag M = 0x04).
fn scan_options(opts: &[u8]) -> (Option<u32>, bool) {
    const TIMESTAMP: u8 = 8;
    const MPTCP: u8 = 30;
    const MPTCP_DSS: u8 = 2;
    const DSS_MAPPING: u8 = 0x04;
    // Linux and the BSDs put the timestamp alone after two NOPs (RFC 7323
    // appendix A's layout): read it there without the walk.
    if let [1, 1, TIMESTAMP, 10, a, b, c, d, _, _, _, _] = *opts {
        return (Some(u32::from_be_bytes([a, b, c, d])), false);
    }
    let (mut tsval, mut mptcp_data) = (None, false);
    for (kind, opt) in TcpOptions(opts) {
        if kind == TIMESTAMP && opt.len() == 10 {
            tsval = Some(u32::from_be_bytes([opt[2], opt[3], opt[4], opt[5]]));
        }
        if kind == MPTCP && opt.len() >= 4 {
            mptcp_data |= opt[2] >> 4 == MPTCP_DSS && opt[3] & DSS_MAPPING != 0;
        }
    }
    (tsval, mptcp_data)
}

#[cfg(test)]
mod tests;
