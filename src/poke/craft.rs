//! Crafted segments: the bytes of an IPv4 or IPv6 packet carrying one TCP
//! segment, ready for a raw socket that takes the IP header from us
//! (`IPPROTO_RAW`: IP_HDRINCL for IPv4, and for IPv6 since Linux 4.5).
//!
//! Trusts its caller for the numbers; computes every checksum and length
//! itself (etherparse's owned headers), so what leaves is what a capture of it
//! shows, byte for byte.

use std::net::IpAddr;

use etherparse::{IpNumber, Ipv4Header, Ipv6FlowLabel, Ipv6Header, TcpHeader};

use crate::wire::Endpoint;

/// TCP timestamps option (RFC 7323 3.2): TSval and TSecr.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Timestamps {
    pub tsval: u32,
    pub tsecr: u32,
}

/// What one crafted segment says. Flags are always ACK alone: kaprobe sends
/// nothing else.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentSpec {
    pub src: Endpoint,
    pub dst: Endpoint,
    pub seq: u32,
    pub ack: u32,
    /// The raw (unscaled) window field.
    pub window: u16,
    pub timestamps: Option<Timestamps>,
    pub payload: Vec<u8>,
}

/// Why a segment could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CraftError {
    #[error("{0} and {1} are not of one IP version")]
    MixedFamilies(Endpoint, Endpoint),
    #[error("payload of {0} bytes does not fit one segment")]
    TooLong(usize),
}

/// Hop limit of crafted packets, Linux's default.
const TTL: u8 = 64;

impl SegmentSpec {
    /// The IP packet, and the address to hand `sendto` with it.
    pub fn packet(&self) -> Result<(Vec<u8>, IpAddr), CraftError> {
        let mut tcp = TcpHeader::new(self.src.port, self.dst.port, self.seq, self.window);
        tcp.ack = true;
        tcp.acknowledgment_number = self.ack;
        if let Some(ts) = self.timestamps {
            // The layout Linux itself sends (tcp_options_write): NOP, NOP, TS.
            let mut opts = [0u8; 12];
            opts[0] = 1;
            opts[1] = 1;
            opts[2] = 8;
            opts[3] = 10;
            opts[4..8].copy_from_slice(&ts.tsval.to_be_bytes());
            opts[8..12].copy_from_slice(&ts.tsecr.to_be_bytes());
            tcp.set_options_raw(&opts)
                .map_err(|_| CraftError::TooLong(opts.len()))?;
        }
        let too_long = |_| CraftError::TooLong(self.payload.len());
        let tcp_len = tcp.header_len() + self.payload.len();
        let (src, dst) = (self.src.socket_addr().ip(), self.dst.socket_addr().ip());
        let mut out = Vec::with_capacity(40 + tcp_len);
        match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                let len = u16::try_from(tcp_len).map_err(|_| too_long(()))?;
                let mut ip = Ipv4Header::new(len, TTL, IpNumber::TCP, s.octets(), d.octets())
                    .map_err(|_| too_long(()))?;
                ip.header_checksum = ip.calc_header_checksum();
                tcp.checksum = tcp
                    .calc_checksum_ipv4(&ip, &self.payload)
                    .map_err(|_| too_long(()))?;
                out.extend_from_slice(&ip.to_bytes());
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                let ip = Ipv6Header {
                    traffic_class: 0,
                    flow_label: Ipv6FlowLabel::ZERO,
                    payload_length: u16::try_from(tcp_len).map_err(|_| too_long(()))?,
                    next_header: IpNumber::TCP,
                    hop_limit: TTL,
                    source: s.octets(),
                    destination: d.octets(),
                };
                tcp.checksum = tcp
                    .calc_checksum_ipv6(&ip, &self.payload)
                    .map_err(|_| too_long(()))?;
                out.extend_from_slice(&ip.to_bytes());
            }
            _ => return Err(CraftError::MixedFamilies(self.src, self.dst)),
        }
        out.extend_from_slice(&tcp.to_bytes());
        out.extend_from_slice(&self.payload);
        Ok((out, dst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{decode_ip, flags};
    use std::net::SocketAddr;

    fn ep(s: &str) -> Endpoint {
        Endpoint::from(s.parse::<SocketAddr>().unwrap())
    }

    /// A keepalive probe from 192.0.2.1:40000 to 192.0.2.2:7000.
    fn probe() -> SegmentSpec {
        SegmentSpec {
            src: ep("192.0.2.1:40000"),
            dst: ep("192.0.2.2:7000"),
            seq: 0x5b90_9ad1,
            ack: 0x06bf_a84a,
            window: 63,
            timestamps: Some(Timestamps {
                tsval: 693_590_716,
                tsecr: 2_801_995_679,
            }),
            payload: Vec::new(),
        }
    }

    /// RFC 1071 sum, written out independently of etherparse.
    fn ones_complement_sum(chunks: &[&[u8]]) -> u16 {
        let mut sum = 0u32;
        for chunk in chunks {
            for pair in chunk.chunks(2) {
                let word = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
                sum += u32::from(word);
            }
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        sum as u16
    }

    fn tcp_checksum_ok(ip: &[u8]) -> bool {
        let (pseudo, tcp): (Vec<u8>, &[u8]) = if ip[0] >> 4 == 4 {
            let tcp = &ip[20..];
            let mut p = ip[12..20].to_vec();
            p.extend_from_slice(&[0, 6]);
            p.extend_from_slice(&(tcp.len() as u16).to_be_bytes());
            (p, tcp)
        } else {
            let tcp = &ip[40..];
            let mut p = ip[8..40].to_vec();
            p.extend_from_slice(&(tcp.len() as u32).to_be_bytes());
            p.extend_from_slice(&[0, 0, 0, 6]);
            (p, tcp)
        };
        ones_complement_sum(&[&pseudo, tcp]) == 0xffff
    }

    #[test]
    fn ipv4_probe_has_valid_checksums_and_lengths() {
        let (bytes, dst) = probe().packet().unwrap();
        assert_eq!(dst.to_string(), "192.0.2.2");
        assert_eq!(bytes.len(), 20 + 32, "IPv4 + TCP with 12 option bytes");
        assert_eq!(u16::from_be_bytes([bytes[2], bytes[3]]), 52, "total length");
        assert_eq!(bytes[9], 6, "protocol TCP");
        assert_eq!(ones_complement_sum(&[&bytes[..20]]), 0xffff, "IP checksum");
        assert!(tcp_checksum_ok(&bytes), "TCP checksum");
    }

    #[test]
    fn probe_carries_seq_ack_window_and_only_ack() {
        let (bytes, _) = probe().packet().unwrap();
        let seg = decode_ip(&bytes, [0, 0]).unwrap().unwrap();
        assert_eq!(seg.src, ep("192.0.2.1:40000"));
        assert_eq!(seg.dst, ep("192.0.2.2:7000"));
        assert_eq!(seg.seq, 0x5b90_9ad1);
        assert_eq!(seg.ack, 0x06bf_a84a);
        assert_eq!(seg.flags, flags::ACK);
        assert_eq!(seg.window, 63);
        assert_eq!(seg.payload_len, 0);
        assert_eq!(seg.tsval, Some(693_590_716));
    }

    #[test]
    fn timestamps_option_is_nop_nop_ts_as_linux_sends_it() {
        let (bytes, _) = probe().packet().unwrap();
        let tcp = &bytes[20..];
        assert_eq!(tcp[12] >> 4, 8, "data offset: 32 bytes");
        assert_eq!(&tcp[20..24], &[1, 1, 8, 10]);
        assert_eq!(&tcp[24..28], &693_590_716u32.to_be_bytes(), "TSval");
        assert_eq!(&tcp[28..32], &2_801_995_679u32.to_be_bytes(), "TSecr");
    }

    #[test]
    fn without_timestamps_the_header_is_20_bytes() {
        let spec = SegmentSpec {
            timestamps: None,
            ..probe()
        };
        let (bytes, _) = spec.packet().unwrap();
        assert_eq!(bytes.len(), 40);
        assert_eq!(bytes[20 + 12] >> 4, 5);
        assert!(tcp_checksum_ok(&bytes));
    }

    #[test]
    fn one_byte_probe_carries_its_byte_in_length_and_checksum() {
        let spec = SegmentSpec {
            payload: vec![0],
            ..probe()
        };
        let (bytes, _) = spec.packet().unwrap();
        assert_eq!(bytes.len(), 53);
        assert_eq!(u16::from_be_bytes([bytes[2], bytes[3]]), 53);
        assert!(tcp_checksum_ok(&bytes));
        let seg = decode_ip(&bytes, [0, 0]).unwrap().unwrap();
        assert_eq!(seg.payload_len, 1);
    }

    #[test]
    fn ipv6_probe_has_valid_checksum_and_payload_length() {
        let spec = SegmentSpec {
            src: ep("[2001:db8::1]:40000"),
            dst: ep("[2001:db8::2]:7000"),
            ..probe()
        };
        let (bytes, dst) = spec.packet().unwrap();
        assert_eq!(dst.to_string(), "2001:db8::2");
        assert_eq!(bytes.len(), 40 + 32);
        assert_eq!(bytes[0] >> 4, 6);
        assert_eq!(
            u16::from_be_bytes([bytes[4], bytes[5]]),
            32,
            "payload length"
        );
        assert_eq!(bytes[6], 6, "next header TCP");
        assert!(tcp_checksum_ok(&bytes));
        let seg = decode_ip(&bytes, [0, 0]).unwrap().unwrap();
        assert_eq!(seg.seq, 0x5b90_9ad1);
        assert_eq!(seg.ack, 0x06bf_a84a);
    }

    #[test]
    fn checksum_holds_for_sequence_numbers_near_wrap() {
        for seq in [0u32, 1, u32::MAX, u32::MAX - 1, 0x8000_0000] {
            let spec = SegmentSpec {
                seq,
                ack: seq.wrapping_add(7),
                ..probe()
            };
            assert!(tcp_checksum_ok(&spec.packet().unwrap().0), "seq {seq}");
        }
    }

    #[test]
    fn mixed_families_are_refused() {
        let spec = SegmentSpec {
            dst: ep("[2001:db8::2]:7000"),
            ..probe()
        };
        assert!(matches!(
            spec.packet(),
            Err(CraftError::MixedFamilies(_, _))
        ));
    }
}
