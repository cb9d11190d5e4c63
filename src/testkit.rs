//! Test helpers: a template segment between two fixed endpoints, changed per
//! test with struct update syntax (`Segment { seq: 9, ..c2s() }`).

use std::net::SocketAddr;

use crate::flow::{Fingerprint, Half, Micros};
use crate::wire::{flags, Endpoint, Segment};

pub const CLIENT: &str = "192.0.2.1:40000";
pub const SERVER: &str = "192.0.2.2:5432";

pub fn addr(s: &str) -> Endpoint {
    Endpoint::from(s.parse::<SocketAddr>().expect("test address"))
}

/// An ACK from client to server at seq 1000, ack 5000, window 500.
pub fn c2s() -> Segment {
    Segment {
        src: addr(CLIENT),
        dst: addr(SERVER),
        vlan: [0, 0],
        seq: 1000,
        ack: 5000,
        flags: flags::ACK,
        window: 500,
        payload_len: 0,
        first_byte: None,
        ip_id: 0,
        tsval: None,
        mptcp_data: false,
        options_cut: false,
    }
}

/// An ACK from server to client at seq 5000, ack 1000, window 500.
pub fn s2c() -> Segment {
    Segment {
        src: addr(SERVER),
        dst: addr(CLIENT),
        seq: 5000,
        ack: 1000,
        ..c2s()
    }
}

/// A side that has sent up to `next` and acknowledged the peer up to `ack`,
/// advertising `window`; its last segment `last` µs ago at time `now`.
pub fn half(next: u32, ack: u32, window: u16) -> Half {
    let mut h = Half::default();
    // As if the side had sent one segment at time 0 with these numbers.
    let seg = Segment {
        seq: next,
        ack,
        window,
        ..c2s()
    };
    h.sent(&seg, 0, false, &mut None);
    h.last_print = Fingerprint::default();
    h
}

pub const SEC: Micros = 1_000_000;
