//! What comes back: a captured frame read as the TCP segment or ICMP error
//! that `poke` waits for.
//!
//! Trusts nothing: frames are whatever the interface delivered. `wire`
//! decodes the TCP fields; this module adds the two things only `poke`
//! needs, the timestamp echo (TSecr, to send back as our kernel would) and
//! whether the segment is signed (TCP-MD5 or TCP-AO, whose connections drop
//! unsigned probes), and reads ICMP errors about our own segments.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use etherparse::{Icmpv4Slice, Icmpv6Slice, IpNumber, LaxIpSlice, TcpSlice};

use crate::wire::{self, DecodeError, Endpoint, LinkType, Segment};

/// A frame that matters to a poke.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    Tcp(TcpReply),
    Icmp(IcmpError),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpReply {
    pub seg: Segment,
    /// Timestamp echo reply (RFC 7323 3.2), when the option is there.
    pub tsecr: Option<u32>,
    /// Carries a TCP-MD5 (RFC 2385, kind 19) or TCP-AO (RFC 5925, kind 29) option.
    pub signed: bool,
}

/// An ICMP destination-unreachable or time-exceeded message, and the TCP
/// ports of the packet it is about (RFC 792 and RFC 4443 quote at least the
/// first 8 bytes of the transport header).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IcmpError {
    /// Who sent the ICMP message (a router, or the peer itself).
    pub reporter: IpAddr,
    /// The offending packet's source and destination.
    pub about_src: Endpoint,
    pub about_dst: Endpoint,
    /// What the message says, for the report: "host unreachable".
    pub what: String,
}

/// Read one frame. `Ok(None)`: well formed, but neither TCP nor an ICMP error.
pub fn parse(link: LinkType, frame: &[u8]) -> Result<Option<Reply>, DecodeError> {
    let Some(ip) = wire::ip_packet(link, frame)? else {
        return Ok(None);
    };
    let (slice, _) = LaxIpSlice::from_slice(ip).map_err(|e| malformed("IP", e))?;
    let payload = slice.payload();
    if payload.fragmented {
        return Ok(None);
    }
    match payload.ip_number {
        IpNumber::TCP => parse_tcp(ip, payload.payload),
        IpNumber::ICMP => Ok(icmpv4(&slice, payload.payload).map(Reply::Icmp)),
        IpNumber::IPV6_ICMP => Ok(icmpv6(&slice, payload.payload).map(Reply::Icmp)),
        _ => Ok(None),
    }
}

fn malformed(layer: &'static str, e: impl std::fmt::Display) -> DecodeError {
    DecodeError::Malformed {
        layer,
        what: e.to_string(),
    }
}

fn parse_tcp(ip: &[u8], tcp: &[u8]) -> Result<Option<Reply>, DecodeError> {
    let Some(seg) = wire::decode_ip(ip, [0, 0])? else {
        return Ok(None);
    };
    let tcp = TcpSlice::from_slice(tcp).map_err(|e| malformed("TCP", e))?;
    let (tsecr, signed) = scan_options(tcp.options());
    Ok(Some(Reply::Tcp(TcpReply { seg, tsecr, signed })))
}

/// The timestamp echo, and whether a signature option is there.
fn scan_options(opts: &[u8]) -> (Option<u32>, bool) {
    const TIMESTAMP: u8 = 8;
    const MD5: u8 = 19;
    const AO: u8 = 29;
    let (mut tsecr, mut signed) = (None, false);
    for (kind, opt) in wire::TcpOptions(opts) {
        if kind == TIMESTAMP && opt.len() == 10 {
            tsecr = Some(u32::from_be_bytes([opt[6], opt[7], opt[8], opt[9]]));
        }
        signed |= kind == MD5 || kind == AO;
    }
    (tsecr, signed)
}

fn source(slice: &LaxIpSlice<'_>) -> IpAddr {
    match slice {
        LaxIpSlice::Ipv4(v4) => IpAddr::V4(Ipv4Addr::from(v4.header().source())),
        LaxIpSlice::Ipv6(v6) => IpAddr::V6(Ipv6Addr::from(v6.header().source())),
    }
}

fn icmpv4(outer: &LaxIpSlice<'_>, bytes: &[u8]) -> Option<IcmpError> {
    let icmp = Icmpv4Slice::from_slice(bytes).ok()?;
    let what = match (icmp.type_u8(), icmp.code_u8()) {
        (3, 0) => "network unreachable",
        (3, 1) => "host unreachable",
        (3, 2) => "protocol unreachable",
        (3, 3) => "port unreachable",
        (3, 4) => "fragmentation needed",
        (3, 9 | 10 | 13) => "administratively prohibited",
        (3, _) => "destination unreachable",
        (11, _) => "time exceeded",
        _ => return None,
    };
    about(source(outer), icmp.payload(), what)
}

fn icmpv6(outer: &LaxIpSlice<'_>, bytes: &[u8]) -> Option<IcmpError> {
    let icmp = Icmpv6Slice::from_slice(bytes).ok()?;
    let what = match (icmp.type_u8(), icmp.code_u8()) {
        (1, 0) => "no route to destination",
        (1, 1) => "administratively prohibited",
        (1, 3) => "address unreachable",
        (1, 4) => "port unreachable",
        (1, 5 | 6) => "rejected by policy",
        (1, _) => "destination unreachable",
        (3, _) => "time exceeded",
        _ => return None,
    };
    about(source(outer), icmp.payload(), what)
}

/// The quoted packet: its addresses, and the ports in its first 4 TCP bytes.
fn about(reporter: IpAddr, quoted: &[u8], what: &str) -> Option<IcmpError> {
    let (inner, _) = LaxIpSlice::from_slice(quoted).ok()?;
    let payload = inner.payload();
    if payload.ip_number != IpNumber::TCP {
        return None;
    }
    let ports = payload.payload.get(..4)?;
    let sport = u16::from_be_bytes([ports[0], ports[1]]);
    let dport = u16::from_be_bytes([ports[2], ports[3]]);
    let (src, dst) = match &inner {
        LaxIpSlice::Ipv4(v4) => (
            Endpoint::v4(v4.header().source(), sport),
            Endpoint::v4(v4.header().destination(), dport),
        ),
        LaxIpSlice::Ipv6(v6) => (
            Endpoint::v6(v6.header().source(), sport),
            Endpoint::v6(v6.header().destination(), dport),
        ),
    };
    Some(IcmpError {
        reporter,
        about_src: src,
        about_dst: dst,
        what: what.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::poke::craft::{SegmentSpec, Timestamps};
    use std::net::SocketAddr;

    fn ep(s: &str) -> Endpoint {
        Endpoint::from(s.parse::<SocketAddr>().unwrap())
    }

    fn answer() -> SegmentSpec {
        SegmentSpec {
            src: ep("192.0.2.2:7000"),
            dst: ep("192.0.2.1:40000"),
            seq: 100,
            ack: 200,
            window: 501,
            timestamps: Some(Timestamps {
                tsval: 7,
                tsecr: 99,
            }),
            payload: Vec::new(),
        }
    }

    #[test]
    fn tcp_reply_gives_seq_ack_and_timestamp_echo() {
        let (ip, _) = answer().packet().unwrap();
        let Some(Reply::Tcp(r)) = parse(LinkType::RawIp, &ip).unwrap() else {
            panic!("not TCP");
        };
        assert_eq!((r.seg.seq, r.seg.ack), (100, 200));
        assert_eq!(r.seg.tsval, Some(7));
        assert_eq!(r.tsecr, Some(99));
        assert!(!r.signed);
    }

    #[test]
    fn segment_without_timestamps_has_no_echo() {
        let spec = SegmentSpec {
            timestamps: None,
            ..answer()
        };
        let Some(Reply::Tcp(r)) = parse(LinkType::RawIp, &spec.packet().unwrap().0).unwrap() else {
            panic!("not TCP");
        };
        assert_eq!(r.tsecr, None);
    }

    /// An MD5 signature option (kind 19, 18 bytes) marks the segment signed.
    #[test]
    fn md5_option_marks_segment_signed() {
        let (mut ip, _) = SegmentSpec {
            timestamps: None,
            ..answer()
        }
        .packet()
        .unwrap();
        let mut opt = vec![19u8, 18];
        opt.extend_from_slice(&[0xab; 16]);
        opt.extend_from_slice(&[1, 1]);
        ip.extend_from_slice(&opt);
        ip[32] = (5 + 5) << 4; // data offset: 20 + 20 option bytes
        let total = ip.len() as u16;
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        let Some(Reply::Tcp(r)) = parse(LinkType::RawIp, &ip).unwrap() else {
            panic!("not TCP");
        };
        assert!(r.signed);
    }

    /// ICMP host unreachable from a router, quoting our probe.
    #[test]
    fn icmp_unreachable_names_the_quoted_connection() {
        let (probe, _) = SegmentSpec {
            src: ep("192.0.2.1:40000"),
            dst: ep("192.0.2.2:7000"),
            ..answer()
        }
        .packet()
        .unwrap();
        let mut icmp = vec![3u8, 1, 0, 0, 0, 0, 0, 0];
        icmp.extend_from_slice(&probe[..28]);
        let mut ip = etherparse::Ipv4Header::new(
            icmp.len() as u16,
            64,
            IpNumber::ICMP,
            [192, 0, 2, 254],
            [192, 0, 2, 1],
        )
        .unwrap()
        .to_bytes()
        .to_vec();
        ip.extend_from_slice(&icmp);
        let Some(Reply::Icmp(e)) = parse(LinkType::RawIp, &ip).unwrap() else {
            panic!("not an ICMP error");
        };
        assert_eq!(e.reporter.to_string(), "192.0.2.254");
        assert_eq!(e.about_src, ep("192.0.2.1:40000"));
        assert_eq!(e.about_dst, ep("192.0.2.2:7000"));
        assert_eq!(e.what, "host unreachable");
    }

    #[test]
    fn every_truncation_is_an_error_or_nothing_never_a_panic() {
        let (ip, _) = answer().packet().unwrap();
        for n in 0..ip.len() {
            let _ = parse(LinkType::RawIp, &ip[..n]);
        }
    }
}
