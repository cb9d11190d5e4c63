//! The kernel's socket table: which TCP connections this host has, in what
//! state, and whether data is in flight on them.
//!
//! Read with netlink sock_diag (the interface `ss` uses), asking for
//! ESTABLISHED and CLOSE_WAIT sockets with their `tcp_info`; when netlink is
//! not available, `/proc/net/tcp` and `/proc/net/tcp6` give the same sockets
//! with less detail. Neither exposes sequence numbers: those are learned on
//! the wire (see `session`).
//!
//! A dump walks every bucket of the kernel's connection hash table, however
//! few connections there are: 262,144 buckets on the project's VM, about
//! 1.1 ms a walk, and namespaces share the table. The modern request
//! (`SOCK_DIAG_BY_FAMILY`) walks it once per address family; the older
//! `TCPDIAG_GETSOCK` request, still served, walks it once for both. So that
//! one is tried first. Its answers are the same `inet_diag_msg` records
//! under the old message type.

use std::io;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, Nla as _, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6, IPPROTO_TCP};
use netlink_packet_sock_diag::inet::nlas::Nla;
use netlink_packet_sock_diag::inet::{
    ExtensionFlags, InetRequest, InetResponse, SocketId, StateFlags,
};
use netlink_packet_sock_diag::SockDiagMessage;
use netlink_sys::{protocols::NETLINK_SOCK_DIAG, Socket, SocketAddr};

use crate::wire::Endpoint;

/// TCP states as the kernel numbers them (include/net/tcp_states.h).
pub const ESTABLISHED: u8 = 1;
pub const CLOSE_WAIT: u8 = 8;

/// `INET_DIAG_MD5SIG`: present only when the socket has TCP-MD5 keys (and
/// the reader has CAP_NET_ADMIN).
const INET_DIAG_MD5SIG: u16 = 18;

/// One connection of the socket table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpSocket {
    pub local: Endpoint,
    pub remote: Endpoint,
    pub state: u8,
    /// Bytes written but not yet acknowledged (sent or not): `idiag_wqueue`.
    pub send_queue: u32,
    /// Bytes received and not yet read by the application.
    pub recv_queue: u32,
    /// From `tcp_info`, when sock_diag gave it.
    pub info: Option<TcpInfo>,
    pub md5: bool,
    pub inode: u32,
    pub uid: u32,
    /// The interface the socket is bound to (sock_diag's `idiag_if`): the
    /// scope of an IPv6 link-local peer. 0 when unknown.
    pub ifindex: u32,
}

/// The few `tcp_info` fields poke reads (struct tcp_info, linux/tcp.h).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct TcpInfo {
    /// Segments sent and not acknowledged (`tcpi_unacked`).
    pub unacked: u32,
    /// Consecutive retransmissions of the oldest unacknowledged segment.
    pub retransmits: u8,
    /// Unanswered kernel keepalive or zero-window probes (`tcpi_probes`).
    pub probes: u8,
    /// Smoothed RTT in microseconds (`tcpi_rtt`).
    pub srtt_us: u32,
    /// Milliseconds since the last segment came from the peer.
    pub last_ack_recv_ms: u32,
    /// Bytes written that were never sent (`tcpi_notsent_bytes`), if the
    /// kernel reports them.
    pub notsent: Option<u32>,
    /// Whether timestamps were negotiated (`TCPI_OPT_TIMESTAMPS`).
    pub timestamps: bool,
    /// Bytes the peer has acknowledged (`tcpi_bytes_acked`), if reported.
    pub bytes_acked: Option<u64>,
}

impl TcpSocket {
    /// Unacknowledged or unsent data: a probe could not be told from a
    /// retransmission, so poke only watches such a connection.
    pub fn data_outstanding(&self) -> bool {
        let info = self.info.unwrap_or_default();
        self.send_queue > 0 || info.unacked > 0 || info.notsent.unwrap_or(0) > 0
    }

    pub fn state_name(&self) -> &'static str {
        state_name(self.state)
    }
}

pub fn state_name(state: u8) -> &'static str {
    match state {
        1 => "ESTABLISHED",
        2 => "SYN_SENT",
        3 => "SYN_RECV",
        4 => "FIN_WAIT1",
        5 => "FIN_WAIT2",
        6 => "TIME_WAIT",
        7 => "CLOSE",
        8 => "CLOSE_WAIT",
        9 => "LAST_ACK",
        10 => "LISTEN",
        11 => "CLOSING",
        _ => "UNKNOWN",
    }
}

impl TcpInfo {
    /// Parse the raw `INET_DIAG_INFO` bytes. Offsets are those of struct
    /// tcp_info, which only ever grows at the end; a short buffer (an old
    /// kernel) leaves the later fields out.
    pub fn parse(raw: &[u8]) -> Option<TcpInfo> {
        const TCPI_OPT_TIMESTAMPS: u8 = 1;
        let u32_at = |off: usize| {
            raw.get(off..off + 4)
                .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
        };
        Some(TcpInfo {
            retransmits: *raw.get(2)?,
            probes: *raw.get(3)?,
            timestamps: raw.get(5)? & TCPI_OPT_TIMESTAMPS != 0,
            unacked: u32_at(24)?,
            last_ack_recv_ms: u32_at(56)?,
            srtt_us: u32_at(68)?,
            notsent: u32_at(144),
            bytes_acked: raw
                .get(120..128)
                .map(|b| u64::from_ne_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])),
        })
    }
}

/// Why the socket table could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("cannot read the socket table: {0}")]
    Read(String),
}

/// ESTABLISHED and CLOSE_WAIT TCP connections, IPv4 and IPv6.
pub fn established() -> Result<Vec<TcpSocket>, TableError> {
    match sock_diag() {
        Ok(list) => Ok(list),
        Err(netlink) => proc_net_tcp().map_err(|e| {
            TableError::Read(format!("netlink sock_diag: {netlink}; /proc/net/tcp: {e}"))
        }),
    }
}

fn sock_diag() -> io::Result<Vec<TcpSocket>> {
    let mut socket = Socket::new(NETLINK_SOCK_DIAG)?;
    socket.bind_auto()?;
    socket.connect(&SocketAddr::new(0, 0))?;
    let mut all = Vec::new();
    if dump(&socket, &both_families_request(), &mut all).is_ok() {
        return Ok(all);
    }
    all.clear();
    for family in [AF_INET, AF_INET6] {
        dump(&socket, &family_request(family), &mut all)?;
    }
    Ok(all)
}

/// `TCPDIAG_GETSOCK`: the request type that carries no family.
const TCPDIAG_GETSOCK: u16 = 18;
/// `SOCK_DIAG_BY_FAMILY`: the type the parser knows answers by.
const SOCK_DIAG_BY_FAMILY: u16 = 20;

/// A dump of both families in one walk: a netlink header and a `struct
/// inet_diag_req` (family, two prefix lengths, extensions, a zero socket id
/// of 48 bytes, the states, and a field the kernel ignores).
fn both_families_request() -> Vec<u8> {
    const INFO: u8 = 1 << (2 - 1); // INET_DIAG_INFO
    let states: u32 = (1 << ESTABLISHED) | (1 << CLOSE_WAIT);
    let mut req = Vec::with_capacity(76);
    req.extend_from_slice(&76u32.to_ne_bytes());
    req.extend_from_slice(&TCPDIAG_GETSOCK.to_ne_bytes());
    req.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    req.extend_from_slice(&[0; 8]); // sequence number, port id
    req.extend_from_slice(&[AF_INET, 0, 0, INFO]);
    req.extend_from_slice(&[0; 48]);
    req.extend_from_slice(&states.to_ne_bytes());
    req.extend_from_slice(&[0; 4]);
    req
}

fn family_request(family: u8) -> Vec<u8> {
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    let mut request = NetlinkMessage::new(
        header,
        SockDiagMessage::InetRequest(InetRequest {
            family,
            protocol: IPPROTO_TCP,
            extensions: ExtensionFlags::INFO,
            states: StateFlags::ESTABLISHED | StateFlags::CLOSE_WAIT,
            socket_id: if family == AF_INET {
                SocketId::new_v4()
            } else {
                SocketId::new_v6()
            },
        })
        .into(),
    );
    request.finalize();
    let mut buf = vec![0u8; request.buffer_len()];
    request.serialize(&mut buf);
    buf
}

fn dump(socket: &Socket, request: &[u8], out: &mut Vec<TcpSocket>) -> io::Result<()> {
    socket.send(request, 0)?;
    let mut rx = vec![0u8; 1 << 16];
    loop {
        let n = socket.recv(&mut &mut rx[..], 0)?;
        let mut off = 0;
        while off < n {
            retype_old_answer(&mut rx[off..n]);
            let msg = NetlinkMessage::<SockDiagMessage>::deserialize(&rx[off..n])
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
            let len = msg.header.length as usize;
            match msg.payload {
                NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(r)) => {
                    out.push(from_response(&r));
                }
                NetlinkPayload::Done(_) => return Ok(()),
                NetlinkPayload::Error(e) => {
                    return Err(io::Error::other(format!("netlink error {:?}", e.code)))
                }
                _ => {}
            }
            if len == 0 {
                break;
            }
            off += len;
        }
    }
}

/// An answer to `TCPDIAG_GETSOCK` is an `inet_diag_msg` like the modern
/// answers: give it their type, which is all the parser tells them by.
fn retype_old_answer(msg: &mut [u8]) {
    if let Some(kind) = msg.get_mut(4..6) {
        if u16::from_ne_bytes([kind[0], kind[1]]) == TCPDIAG_GETSOCK {
            kind.copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
        }
    }
}

fn from_response(r: &InetResponse) -> TcpSocket {
    let id = &r.header.socket_id;
    let mut info = None;
    let mut md5 = false;
    for nla in &r.nlas {
        match nla {
            Nla::TcpInfo(raw) => info = TcpInfo::parse(raw),
            Nla::Other(other) => md5 |= other.kind() == INET_DIAG_MD5SIG,
            _ => {}
        }
    }
    TcpSocket {
        local: Endpoint::from(std::net::SocketAddr::new(id.source_address, id.source_port)),
        remote: Endpoint::from(std::net::SocketAddr::new(
            id.destination_address,
            id.destination_port,
        )),
        state: r.header.state,
        send_queue: r.header.send_queue,
        recv_queue: r.header.recv_queue,
        info,
        md5,
        inode: r.header.inode,
        uid: r.header.uid,
        ifindex: id.interface_id,
    }
}

fn proc_net_tcp() -> io::Result<Vec<TcpSocket>> {
    let mut all = Vec::new();
    for path in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        all.extend(text.lines().skip(1).filter_map(parse_proc_line));
    }
    Ok(all)
}

/// One line of /proc/net/tcp{,6}: `sl local rem st tx:rx ... uid timeout inode`.
fn parse_proc_line(line: &str) -> Option<TcpSocket> {
    let f: Vec<&str> = line.split_whitespace().collect();
    let state = u8::from_str_radix(f.get(3)?, 16).ok()?;
    if state != ESTABLISHED && state != CLOSE_WAIT {
        return None;
    }
    let (tx, rx) = f.get(4)?.split_once(':')?;
    Some(TcpSocket {
        local: proc_endpoint(f.get(1)?)?,
        remote: proc_endpoint(f.get(2)?)?,
        state,
        send_queue: u32::from_str_radix(tx, 16).ok()?,
        recv_queue: u32::from_str_radix(rx, 16).ok()?,
        info: None,
        md5: false,
        uid: f.get(7)?.parse().ok()?,
        inode: f.get(9)?.parse().ok()?,
        ifindex: 0,
    })
}

/// `0100007F:1F90` or the IPv6 form: the address as 32-bit words in host
/// byte order, each printed as hex.
fn proc_endpoint(text: &str) -> Option<Endpoint> {
    let (addr, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let words: Option<Vec<u32>> = (0..addr.len() / 8)
        .map(|i| {
            addr.get(i * 8..i * 8 + 8)
                .and_then(|w| u32::from_str_radix(w, 16).ok())
        })
        .collect();
    let mut bytes = Vec::with_capacity(16);
    for w in words? {
        bytes.extend_from_slice(&w.to_ne_bytes());
    }
    match bytes.len() {
        4 => Some(Endpoint::v4(bytes.try_into().ok()?, port)),
        16 => Some(Endpoint::v6(bytes.try_into().ok()?, port)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};

    fn netlink() -> Socket {
        let mut socket = Socket::new(NETLINK_SOCK_DIAG).unwrap();
        socket.bind_auto().unwrap();
        socket.connect(&SocketAddr::new(0, 0)).unwrap();
        socket
    }

    /// The one-walk request finds what the two per-family requests find:
    /// here, a loopback connection over IPv4 and one from an IPv6 socket to
    /// an IPv4 peer (a v4-mapped address, listed with the IPv6 family).
    #[test]
    fn one_walk_lists_the_connections_of_both_families() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let plain = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let mapped = TcpStream::connect(("::ffff:127.0.0.1", port)).ok();
        let mine = |list: &[TcpSocket], local: std::net::SocketAddr| {
            list.iter()
                .filter(|s| s.local.to_string() == Endpoint::from(local).to_string())
                .count()
        };
        let socket = netlink();
        let mut one = Vec::new();
        dump(&socket, &both_families_request(), &mut one).unwrap();
        let mut two = Vec::new();
        for family in [AF_INET, AF_INET6] {
            dump(&socket, &family_request(family), &mut two).unwrap();
        }
        for stream in [Some(&plain), mapped.as_ref()].into_iter().flatten() {
            let local = stream.local_addr().unwrap();
            assert_eq!(mine(&one, local), 1, "{local} in the one-walk dump");
            assert_eq!(mine(&two, local), 1, "{local} in the per-family dumps");
        }
        let key = |s: &TcpSocket| (s.local.to_string(), s.remote.to_string());
        let mut a: Vec<_> = one.iter().map(key).collect();
        let mut b: Vec<_> = two.iter().map(key).collect();
        a.sort();
        b.sort();
        assert_eq!(a, b);
    }

    #[test]
    fn old_answers_are_given_the_modern_type() {
        let mut msg = both_families_request();
        retype_old_answer(&mut msg);
        assert_eq!(u16::from_ne_bytes([msg[4], msg[5]]), SOCK_DIAG_BY_FAMILY);
        let mut done = [0u8; 20];
        done[4] = 3; // NLMSG_DONE
        retype_old_answer(&mut done);
        assert_eq!(done[4], 3);
    }

    #[test]
    fn proc_line_gives_endpoints_state_and_queues() {
        let line = "   3: 0100007F:9C40 0100007F:1B58 01 00000005:00000000 00:00000000 00000000  1000        0 424242 1 0000000000000000 20 4 30 10 -1";
        let s = parse_proc_line(line).unwrap();
        assert_eq!(s.local.to_string(), "127.0.0.1:40000");
        assert_eq!(s.remote.to_string(), "127.0.0.1:7000");
        assert_eq!(s.state, ESTABLISHED);
        assert_eq!(s.send_queue, 5);
        assert!(s.data_outstanding());
        assert_eq!((s.uid, s.inode), (1000, 424242));
    }

    #[test]
    fn proc_line_ipv6_address_words_are_host_order() {
        // 2001:db8::1 as the kernel prints it on a little-endian host.
        let line = "   0: B80D0120000000000000000001000000:9C40 B80D0120000000000000000002000000:1B58 08 00000000:00000000 00:00000000 00000000     0        0 77 1 0000000000000000 20 4 30 10 -1";
        if cfg!(target_endian = "little") {
            let s = parse_proc_line(line).unwrap();
            assert_eq!(s.local.to_string(), "[2001:db8::1]:40000");
            assert_eq!(s.state_name(), "CLOSE_WAIT");
            assert!(!s.data_outstanding());
        }
    }

    #[test]
    fn listening_sockets_are_not_listed() {
        let line = "   0: 00000000:1B58 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0";
        assert_eq!(parse_proc_line(line), None);
    }

    #[test]
    fn tcp_info_fields_at_their_offsets() {
        let mut raw = vec![0u8; 160];
        raw[2] = 3;
        raw[5] = 1;
        raw[24..28].copy_from_slice(&2u32.to_ne_bytes());
        raw[68..72].copy_from_slice(&1234u32.to_ne_bytes());
        raw[120..128].copy_from_slice(&77u64.to_ne_bytes());
        raw[144..148].copy_from_slice(&9u32.to_ne_bytes());
        let info = TcpInfo::parse(&raw).unwrap();
        assert_eq!(info.retransmits, 3);
        assert!(info.timestamps);
        assert_eq!(info.unacked, 2);
        assert_eq!(info.srtt_us, 1234);
        assert_eq!(info.notsent, Some(9));
        assert_eq!(info.bytes_acked, Some(77));
        // An old kernel's shorter struct: no notsent, the rest still read.
        assert_eq!(TcpInfo::parse(&raw[..104]).unwrap().notsent, None);
        assert_eq!(TcpInfo::parse(&raw[..40]), None);
    }
}
