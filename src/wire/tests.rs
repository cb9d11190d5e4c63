//! Frames built with etherparse's PacketBuilder (or by hand where it has no
//! builder), decoded back.

use etherparse::{PacketBuilder, TcpOptionElement};

use super::*;

const SRC_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
const DST_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];
const V4_SRC: [u8; 4] = [192, 0, 2, 1];
const V4_DST: [u8; 4] = [192, 0, 2, 2];

fn v6(last: u8) -> [u8; 16] {
    let mut a = [0u8; 16];
    a[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
    a[15] = last;
    a
}

/// An Ethernet/IPv4 ACK from 192.0.2.1:40000 to 192.0.2.2:5432.
fn ether_v4(payload: &[u8]) -> Vec<u8> {
    let builder = PacketBuilder::ethernet2(SRC_MAC, DST_MAC)
        .ipv4(V4_SRC, V4_DST, 64)
        .tcp(40000, 5432, 1000, 500)
        .ack(5000);
    let mut frame = Vec::new();
    builder.write(&mut frame, payload).expect("build frame");
    frame
}

/// The IPv4 packet inside `ether_v4`.
fn ip_v4(payload: &[u8]) -> Vec<u8> {
    ether_v4(payload)[14..].to_vec()
}

fn decoded(link: LinkType, frame: &[u8]) -> Segment {
    decode(link, frame).expect("decodes").expect("is TCP")
}

#[test]
fn ethernet_ipv4_fields() {
    let seg = decoded(LinkType::Ethernet, &ether_v4(&[0x00]));
    assert_eq!(seg.src.to_string(), "192.0.2.1:40000");
    assert_eq!(seg.dst.to_string(), "192.0.2.2:5432");
    assert_eq!((seg.seq, seg.ack, seg.window), (1000, 5000, 500));
    assert_eq!(seg.flags, flags::ACK);
    assert_eq!(seg.payload_len, 1);
    assert_eq!(seg.first_byte, Some(0));
    assert_eq!(seg.vlan, [0, 0]);
}

#[test]
fn ethernet_padding_is_not_payload() {
    // A 0-byte probe is 54 bytes; Ethernet pads it to 60.
    let mut frame = ether_v4(&[]);
    frame.resize(60, 0);
    assert_eq!(decoded(LinkType::Ethernet, &frame).payload_len, 0);
}

#[test]
fn snaplen_cut_frame_keeps_ip_payload_length() {
    let frame = ether_v4(&[7u8; 1200]);
    let cut = &frame[..14 + 20 + 20 + 4];
    let seg = decoded(LinkType::Ethernet, cut);
    assert_eq!(seg.payload_len, 1200);
    assert_eq!(seg.first_byte, Some(7));
}

#[test]
fn ip_total_length_zero_falls_back_to_captured_bytes() {
    // TSO on the capturing host leaves total length 0 in outgoing frames.
    let mut frame = ether_v4(&[1, 2, 3]);
    frame[16] = 0;
    frame[17] = 0;
    assert_eq!(decoded(LinkType::Ethernet, &frame).payload_len, 3);
}

#[test]
fn qinq_tags_are_recorded_outer_first() {
    let builder = PacketBuilder::ethernet2(SRC_MAC, DST_MAC)
        .double_vlan(10.try_into().unwrap(), 20.try_into().unwrap())
        .ipv4(V4_SRC, V4_DST, 64)
        .tcp(40000, 5432, 1000, 500)
        .ack(5000);
    let mut frame = Vec::new();
    builder.write(&mut frame, &[]).unwrap();
    assert_eq!(decoded(LinkType::Ethernet, &frame).vlan, [10, 20]);
}

#[test]
fn single_vlan_tag() {
    let builder = PacketBuilder::ethernet2(SRC_MAC, DST_MAC)
        .single_vlan(42.try_into().unwrap())
        .ipv4(V4_SRC, V4_DST, 64)
        .tcp(40000, 5432, 1000, 500)
        .ack(5000);
    let mut frame = Vec::new();
    builder.write(&mut frame, &[]).unwrap();
    assert_eq!(decoded(LinkType::Ethernet, &frame).vlan, [42, 0]);
}

#[test]
fn pppoe_session_carries_ipv4() {
    let ip = ip_v4(&[]);
    let mut frame = Vec::new();
    frame.extend_from_slice(&DST_MAC);
    frame.extend_from_slice(&SRC_MAC);
    frame.extend_from_slice(&[0x88, 0x64, 0x11, 0x00, 0x12, 0x34]);
    frame.extend_from_slice(&((ip.len() + 2) as u16).to_be_bytes());
    frame.extend_from_slice(&[0x00, 0x21]);
    frame.extend_from_slice(&ip);
    assert_eq!(decoded(LinkType::Ethernet, &frame).seq, 1000);
}

#[test]
fn pppoe_control_protocol_is_not_ip() {
    let mut frame = Vec::new();
    frame.extend_from_slice(&DST_MAC);
    frame.extend_from_slice(&SRC_MAC);
    frame.extend_from_slice(&[0x88, 0x64, 0x11, 0x00, 0x12, 0x34, 0x00, 0x04, 0xc0, 0x21]);
    frame.extend_from_slice(&[1, 1, 0, 4]);
    assert_eq!(decode(LinkType::Ethernet, &frame), Ok(None));
}

#[test]
fn linux_sll_and_sll2_headers() {
    let ip = ip_v4(&[]);
    let mut sll = vec![0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0, 0x08, 0x00];
    sll.extend_from_slice(&ip);
    assert_eq!(decoded(LinkType::LinuxSll, &sll).ack, 5000);
    let mut sll2 = vec![
        0x08, 0x00, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0,
    ];
    sll2.extend_from_slice(&ip);
    assert_eq!(decoded(LinkType::LinuxSll2, &sll2).ack, 5000);
}

#[test]
fn bsd_null_in_either_byte_order_and_raw_ip() {
    let ip = ip_v4(&[]);
    for family in [[2, 0, 0, 0], [0, 0, 0, 2]] {
        let mut frame = family.to_vec();
        frame.extend_from_slice(&ip);
        assert_eq!(decoded(LinkType::Null, &frame).seq, 1000);
    }
    assert_eq!(decoded(LinkType::RawIp, &ip).seq, 1000);
}

#[test]
fn ipv6_with_hop_by_hop_header() {
    let builder = PacketBuilder::ipv6(v6(1), v6(2), 64)
        .tcp(40000, 443, 7, 1000)
        .ack(9);
    let mut ip = Vec::new();
    builder.write(&mut ip, &[]).unwrap();
    // Insert an 8-byte hop-by-hop header (next header TCP) after the fixed header.
    let mut with_ext = ip[..40].to_vec();
    with_ext[6] = 0; // next header: hop-by-hop
    let plen = u16::from_be_bytes([ip[4], ip[5]]) + 8;
    with_ext[4..6].copy_from_slice(&plen.to_be_bytes());
    with_ext.extend_from_slice(&[6, 0, 1, 4, 0, 0, 0, 0]);
    with_ext.extend_from_slice(&ip[40..]);
    let seg = decoded(LinkType::RawIp, &with_ext);
    assert_eq!(seg.src.to_string(), "[2001:db8::1]:40000");
    assert_eq!((seg.seq, seg.ack, seg.payload_len), (7, 9, 0));
}

#[test]
fn timestamp_option_is_read() {
    let builder = PacketBuilder::ipv4(V4_SRC, V4_DST, 64)
        .tcp(40000, 5432, 1000, 500)
        .ack(5000)
        .options(&[
            TcpOptionElement::Noop,
            TcpOptionElement::Noop,
            TcpOptionElement::Timestamp(123456, 654321),
        ])
        .unwrap();
    let mut ip = Vec::new();
    builder.write(&mut ip, &[]).unwrap();
    assert_eq!(decoded(LinkType::RawIp, &ip).tsval, Some(123456));
}

#[test]
fn mptcp_dss_with_mapping_is_flagged() {
    // Kind 30, length 20, subtype DSS (2), flags A|M, then ack/mapping fields.
    let mut dss = vec![30, 20, 0x20, 0x05];
    dss.extend_from_slice(&[0; 16]);
    let builder = PacketBuilder::ipv4(V4_SRC, V4_DST, 64)
        .tcp(40000, 5432, 1000, 500)
        .ack(5000)
        .options_raw(&dss)
        .unwrap();
    let mut ip = Vec::new();
    builder.write(&mut ip, &[0x41]).unwrap();
    assert!(decoded(LinkType::RawIp, &ip).mptcp_data);
}

#[test]
fn udp_is_not_tcp() {
    let builder = PacketBuilder::ipv4(V4_SRC, V4_DST, 64).udp(53, 53);
    let mut ip = Vec::new();
    builder.write(&mut ip, &[1, 2, 3]).unwrap();
    assert_eq!(decode(LinkType::RawIp, &ip), Ok(None));
}

#[test]
fn cut_inside_the_headers_is_an_error_cut_in_the_payload_is_snaplen() {
    let frame = ether_v4(&[0x00]);
    let headers = 14 + 20 + 20;
    for len in 0..=frame.len() {
        match decode(LinkType::Ethernet, &frame[..len]) {
            Ok(Some(seg)) => {
                assert!(
                    len >= headers,
                    "cut at {len} inside the headers gave a segment"
                );
                assert_eq!(seg.payload_len, 1, "cut at {len}");
            }
            _ => assert!(
                len < headers,
                "cut at {len} after the headers gave no segment"
            ),
        }
    }
}

#[test]
fn unknown_link_type_is_named() {
    let err = LinkType::from_dlt(147).unwrap_err();
    assert!(err.to_string().contains("147"), "{err}");
}

/// The decoder as it was before the IP and TCP headers were read by hand:
/// etherparse's slices for everything. The hand-read fields must agree with
/// it on every input, errors included.
mod reference {
    use etherparse::{IpNumber, Ipv4HeaderSlice, TcpSlice};

    use super::super::*;

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
        Ok(Some(IpView {
            src: Endpoint::v4(h.source(), 0).ip,
            dst: Endpoint::v4(h.destination(), 0).ip,
            end: (total != 0).then_some(total),
            id: h.identification(),
            tcp_offset,
        }))
    }

    pub fn decode_ip(ip: &[u8], vlan: VlanTags) -> Result<Option<Segment>, DecodeError> {
        let Some(view) = ip_view(ip)? else {
            return Ok(None);
        };
        let captured_end = view.end.map_or(ip.len(), |e| e.min(ip.len()));
        let tcp_bytes = ip.get(view.tcp_offset..captured_end).unwrap_or(&[]);
        let transport_len = match view.end {
            Some(end) => end.saturating_sub(view.tcp_offset),
            None => tcp_bytes.len(),
        };
        // Cut inside the options by the capture (the IP header says the
        // packet went on): read as the same header without its options,
        // and the options as far as they were captured.
        let declared = tcp_bytes.get(12).map_or(0, |b| usize::from(b >> 4) * 4);
        let options_cut = tcp_bytes.len() >= 20
            && declared > tcp_bytes.len()
            && view.end.is_some_and(|e| e > ip.len())
            && transport_len >= declared;
        let mut fixed = tcp_bytes.get(..20).unwrap_or(&[]).to_vec();
        if options_cut {
            fixed[12] = 5 << 4 | (fixed[12] & 0x0f);
        }
        let tcp = if options_cut {
            TcpSlice::from_slice(&fixed)
        } else {
            TcpSlice::from_slice(tcp_bytes)
        }
        .map_err(|e| malformed("TCP", e))?;
        let header_len = if options_cut {
            declared
        } else {
            usize::from(tcp.data_offset()) * 4
        };
        let payload_len = transport_len.saturating_sub(header_len);
        let options = if options_cut {
            &tcp_bytes[20..]
        } else {
            tcp.options()
        };
        let (tsval, mptcp_data) = scan_options(options);
        Ok(Some(Segment {
            src: Endpoint {
                ip: view.src,
                port: tcp.source_port(),
            },
            dst: Endpoint {
                ip: view.dst,
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
            ip_id: view.id,
            tsval,
            mptcp_data,
            options_cut,
        }))
    }
}

mod properties {
    use proptest::prelude::*;

    use super::super::*;

    /// An IPv4 or IPv6 TCP packet with options and payload, as a base for
    /// the mutations below.
    fn packet(v6: bool, payload: usize, opts: bool) -> Vec<u8> {
        let mut ip = Vec::new();
        let payload = vec![0x42; payload];
        let options = [
            etherparse::TcpOptionElement::Noop,
            etherparse::TcpOptionElement::Noop,
            etherparse::TcpOptionElement::Timestamp(7, 8),
        ];
        let opts: &[etherparse::TcpOptionElement] = if opts { &options } else { &[] };
        if v6 {
            etherparse::PacketBuilder::ipv6(super::v6(1), super::v6(2), 64)
                .tcp(40000, 443, 7, 1000)
                .ack(9)
                .options(opts)
                .expect("options fit")
                .write(&mut ip, &payload)
                .expect("build packet");
        } else {
            etherparse::PacketBuilder::ipv4(super::V4_SRC, super::V4_DST, 64)
                .tcp(40000, 5432, 1000, 500)
                .ack(5000)
                .options(opts)
                .expect("options fit")
                .write(&mut ip, &payload)
                .expect("build packet");
        }
        ip
    }

    fn link() -> impl Strategy<Value = LinkType> {
        prop_oneof![
            Just(LinkType::Ethernet),
            Just(LinkType::Null),
            Just(LinkType::RawIp),
            Just(LinkType::LinuxSll),
            Just(LinkType::LinuxSll2),
        ]
    }

    proptest! {
        /// Arbitrary bytes under any link type: an answer, never a panic.
        #[test]
        fn any_bytes_decode_without_panic(link in link(), bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(link, &bytes);
        }

        /// Header bytes overwritten and the packet cut anywhere: the hand-read
        /// decoder gives exactly what etherparse's slices give.
        #[test]
        fn hand_read_headers_agree_with_etherparse(
            v6 in any::<bool>(),
            payload in 0usize..40,
            opts in any::<bool>(),
            edits in proptest::collection::vec((0usize..80, any::<u8>()), 0..4),
            cut in 0usize..200,
        ) {
            let mut ip = packet(v6, payload, opts);
            for (at, byte) in edits {
                if let Some(b) = ip.get_mut(at) {
                    *b = byte;
                }
            }
            let ip = &ip[..cut.min(ip.len())];
            prop_assert_eq!(decode_ip(ip, [0, 0]), super::reference::decode_ip(ip, [0, 0]));
        }

        /// A valid TCP frame cut anywhere: a segment once the fixed headers
        /// are complete, with the payload length the IP header gives, and a
        /// timestamp known only where its option was captured whole.
        #[test]
        fn every_truncation_is_an_error_or_the_full_segment(payload in 0usize..40, cut in 0usize..200, opts in any::<bool>()) {
            let mut frame = super::ether_v4(&vec![0x42; payload]);
            if opts {
                // NOP NOP timestamp appended to the TCP header (data offset 8).
                let mut with = frame[..54].to_vec();
                with.extend_from_slice(&[1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]);
                with.extend_from_slice(&frame[54..]);
                with[46] = 8 << 4;
                let total = (with.len() - 14) as u16;
                with[16..18].copy_from_slice(&total.to_be_bytes());
                frame = with;
            }
            // Ethernet, IPv4 and the fixed TCP header: what a segment needs.
            // Options cut off are read as far as they go.
            let (fixed, headers) = (54, if opts { 66 } else { 54 });
            let cut = cut.min(frame.len());
            match decode(LinkType::Ethernet, &frame[..cut]) {
                Ok(Some(seg)) => {
                    prop_assert!(cut >= fixed);
                    prop_assert_eq!(seg.payload_len as usize, payload);
                    prop_assert_eq!(seg.options_cut, cut < headers);
                    let tsval = (opts && cut >= headers).then_some(1);
                    prop_assert_eq!(seg.tsval, tsval);
                    prop_assert_eq!(seg.lacks_timestamp(), !opts);
                }
                _ => prop_assert!(cut < fixed),
            }
        }
    }
}

/// Endpoints show as their `SocketAddr` does (IPv4-mapped addresses as
/// IPv4), padding and alignment included.
#[test]
fn endpoints_display_as_socket_addrs() {
    for text in [
        "0.0.0.0:0",
        "255.255.255.255:65535",
        "10.0.0.5:5432",
        "192.0.2.1:9",
        "[2001:db8::1]:443",
        "[::ffff:0:1]:80", // IPv4-mapped: shown as 0.0.0.1:80
        "[::]:1",
    ] {
        let addr: std::net::SocketAddr = text.parse().unwrap();
        let ep = Endpoint::from(addr);
        let shown = ep.socket_addr();
        assert_eq!(ep.to_string(), shown.to_string());
        assert_eq!(
            format!("{ep:>24}|{ep:<24}|{ep:^24}"),
            format!("{shown:>24}|{shown:<24}|{shown:^24}")
        );
        assert_eq!(AddrText(addr).to_string(), addr.to_string());
    }
}
