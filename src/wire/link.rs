//! Link layers: find the IP packet inside a frame.
//!
//! The link type comes from the capture (pcap header or pcapng interface
//! block). Encapsulations inside Ethernet (802.1Q/QinQ tags, PPPoE sessions)
//! are peeled here too, recording VLAN ids for the connection key.

use etherparse::SingleVlanSlice;

use super::{DecodeError, VlanTags};

/// The link types kaprobe decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkType {
    /// DLT_EN10MB.
    Ethernet,
    /// DLT_NULL / DLT_LOOP: BSD loopback, a 4-byte address family first.
    Null,
    /// DLT_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6: the frame is the IP packet.
    RawIp,
    /// DLT_LINUX_SLL: `tcpdump -i any` before libpcap 1.10.
    LinuxSll,
    /// DLT_LINUX_SLL2: `tcpdump -i any` since libpcap 1.10.
    LinuxSll2,
}

/// A link type this build cannot decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("link type {dlt} ({name}) is not supported; kaprobe reads Ethernet, Linux SLL/SLL2 (-i any), raw IP and BSD NULL/loopback captures")]
pub struct UnsupportedLinkType {
    pub dlt: i32,
    pub name: String,
}

impl LinkType {
    /// Every link type kaprobe decodes.
    pub const ALL: [LinkType; 5] = [
        LinkType::Ethernet,
        LinkType::Null,
        LinkType::RawIp,
        LinkType::LinuxSll,
        LinkType::LinuxSll2,
    ];

    /// Map a libpcap DLT number (as `pcap_datalink` returns it).
    pub fn from_dlt(dlt: i32) -> Result<LinkType, UnsupportedLinkType> {
        match dlt {
            1 => Ok(LinkType::Ethernet),
            0 | 108 => Ok(LinkType::Null),
            // 12 and 14 are DLT_RAW on different systems, 101 is LINKTYPE_RAW,
            // 228/229 are LINKTYPE_IPV4/IPV6.
            12 | 14 | 101 | 228 | 229 => Ok(LinkType::RawIp),
            113 => Ok(LinkType::LinuxSll),
            276 => Ok(LinkType::LinuxSll2),
            _ => Err(UnsupportedLinkType {
                dlt,
                name: pcap::Linktype(dlt)
                    .get_name()
                    .unwrap_or_else(|_| "unknown".into()),
            }),
        }
    }
}

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88a8;
const ETHERTYPE_QINQ_OLD: u16 = 0x9100;
const ETHERTYPE_PPPOE_SESSION: u16 = 0x8864;

/// Return the IP packet in `frame`, or `None` for a frame that carries no IP.
pub fn ip_payload<'a>(
    link: LinkType,
    frame: &'a [u8],
    vlan: &mut VlanTags,
) -> Result<Option<&'a [u8]>, DecodeError> {
    match link {
        // Destination and source MAC, then the EtherType (IEEE 802.3 3.1.1).
        LinkType::Ethernet => {
            let rest = frame
                .get(14..)
                .ok_or(truncated("Ethernet", 14, frame.len()))?;
            ether_payload(be16(frame, 12), rest, vlan)
        }
        LinkType::LinuxSll => {
            let rest = frame
                .get(16..)
                .ok_or(truncated("Linux SLL", 16, frame.len()))?;
            ether_payload(be16(frame, 14), rest, vlan)
        }
        LinkType::LinuxSll2 => {
            let rest = frame
                .get(20..)
                .ok_or(truncated("Linux SLL2", 20, frame.len()))?;
            ether_payload(be16(frame, 0), rest, vlan)
        }
        // The address family value differs between BSDs (AF_INET6 is 24, 28 or
        // 30) and its byte order depends on the writer, so the IP version
        // nibble decides.
        LinkType::Null => {
            let rest = frame
                .get(4..)
                .ok_or(truncated("NULL/loopback", 4, frame.len()))?;
            Ok(ip_by_version(rest))
        }
        LinkType::RawIp => Ok(ip_by_version(frame)),
    }
}

fn ether_payload<'a>(
    mut ether_type: u16,
    mut rest: &'a [u8],
    vlan: &mut VlanTags,
) -> Result<Option<&'a [u8]>, DecodeError> {
    let mut tags = 0;
    loop {
        match ether_type {
            ETHERTYPE_IPV4 | ETHERTYPE_IPV6 => return Ok(Some(rest)),
            ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD => {
                let tag = SingleVlanSlice::from_slice(rest)
                    .map_err(|_| truncated("802.1Q VLAN", 4, rest.len()))?;
                if tags < vlan.len() {
                    vlan[tags] = tag.vlan_identifier().value();
                }
                tags += 1;
                ether_type = tag.ether_type().0;
                rest = tag.payload_slice();
            }
            ETHERTYPE_PPPOE_SESSION => return pppoe_payload(rest),
            _ => return Ok(None),
        }
    }
}

/// RFC 2516 session stage: 6-byte PPPoE header, then the 2-byte PPP protocol.
fn pppoe_payload(rest: &[u8]) -> Result<Option<&[u8]>, DecodeError> {
    const PPP_IPV4: u16 = 0x0021;
    const PPP_IPV6: u16 = 0x0057;
    let ip = rest.get(8..).ok_or(truncated("PPPoE", 8, rest.len()))?;
    match be16(rest, 6) {
        PPP_IPV4 | PPP_IPV6 => Ok(Some(ip)),
        _ => Ok(None),
    }
}

fn ip_by_version(bytes: &[u8]) -> Option<&[u8]> {
    match bytes.first().map(|b| b >> 4) {
        Some(4) | Some(6) => Some(bytes),
        _ => None,
    }
}

/// Big-endian u16 at `at`; callers have checked that `at + 2 <= bytes.len()`.
fn be16(bytes: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([bytes[at], bytes[at + 1]])
}

fn truncated(layer: &'static str, need: usize, have: usize) -> DecodeError {
    DecodeError::Truncated { layer, need, have }
}
