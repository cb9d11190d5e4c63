//! One behaviour per test, each from the template segment in `testkit`.

use super::*;
use crate::testkit::{c2s, half, s2c, SEC};
use crate::wire::flags;

/// Client has sent up to 1000 and the server acknowledged all of it.
fn settled() -> (Half, Half) {
    (half(1000, 5000, 500), half(5000, 1000, 500))
}

#[test]
fn zero_byte_at_next_minus_one_is_keepalive() {
    let (client, server) = settled();
    let probe = Segment { seq: 999, ..c2s() };
    assert_eq!(
        classify(&client, &server, &probe, 10 * SEC),
        Shape::Keepalive
    );
}

#[test]
fn one_byte_probe_may_carry_any_byte() {
    let (client, server) = settled();
    for byte in [0x00, 0x07, 0xfe] {
        let probe = Segment {
            seq: 999,
            payload_len: 1,
            first_byte: Some(byte),
            ..c2s()
        };
        assert_eq!(
            classify(&client, &server, &probe, 10 * SEC),
            Shape::Keepalive
        );
    }
}

#[test]
fn pure_ack_at_next_is_not_a_probe() {
    let (client, server) = settled();
    assert_eq!(classify(&client, &server, &c2s(), 10 * SEC), Shape::Other);
}

#[test]
fn two_bytes_are_data() {
    let (client, server) = settled();
    let seg = Segment {
        seq: 999,
        payload_len: 2,
        ..c2s()
    };
    assert_eq!(classify(&client, &server, &seg, 10 * SEC), Shape::Other);
}

#[test]
fn resent_byte_the_peer_never_acknowledged_is_not_a_probe() {
    // Client sent byte 999 (next 1000) but the server still acks 999.
    let client = half(1000, 5000, 500);
    let server = half(5000, 999, 500);
    let resend = Segment {
        seq: 999,
        payload_len: 1,
        ..c2s()
    };
    assert_eq!(classify(&client, &server, &resend, 10 * SEC), Shape::Other);
}

#[test]
fn syn_fin_rst_are_never_probes() {
    let (client, server) = settled();
    for f in [flags::SYN, flags::FIN, flags::RST] {
        let seg = Segment {
            seq: 999,
            flags: flags::ACK | f,
            ..c2s()
        };
        assert_eq!(
            classify(&client, &server, &seg, 10 * SEC),
            Shape::Other,
            "flag {f:#x}"
        );
    }
}

#[test]
fn segment_without_ack_flag_is_not_a_probe() {
    let (client, server) = settled();
    let seg = Segment {
        seq: 999,
        flags: 0,
        ..c2s()
    };
    assert_eq!(classify(&client, &server, &seg, 10 * SEC), Shape::Other);
}

/// A half-closed client (FIN_WAIT2, socket open): its FIN took seq 999,
/// the server acknowledged it (1000), and Linux probes from the FIN's own
/// number, acknowledging nothing new (captures/half-closed.pcap).
#[test]
fn probe_after_own_fin_sits_at_the_fin() {
    let (mut client, server) = settled();
    client.set_fin(true);
    let probe = Segment { seq: 999, ..c2s() };
    assert_eq!(
        classify(&client, &server, &probe, 10 * SEC),
        Shape::Keepalive
    );
    // Its ordinary ACKs carry FIN + 1.
    assert_eq!(classify(&client, &server, &c2s(), 10 * SEC), Shape::Other);
}

/// At the FIN's number but acknowledging the server's data or FIN: an ACK
/// from a stack that numbers its ACKs after a FIN so, not a probe.
#[test]
fn ack_of_something_new_after_own_fin_is_not_a_probe() {
    let (mut client, _) = settled();
    client.set_fin(true);
    // The server has sent one more (its FIN, at 5000).
    let server = half(5001, 1000, 500);
    let ack = Segment {
        seq: 999,
        ack: 5001,
        ..c2s()
    };
    assert_eq!(classify(&client, &server, &ack, 10 * SEC), Shape::Other);
}

#[test]
fn zero_byte_probe_into_zero_window_is_a_zero_window_probe() {
    let client = half(1000, 5000, 500);
    let server = half(5000, 1000, 0);
    let probe = Segment { seq: 999, ..c2s() };
    assert_eq!(
        classify(&client, &server, &probe, 10 * SEC),
        Shape::ZeroWindowProbe
    );
}

#[test]
fn zero_window_probe_with_data_outstanding_sits_at_snd_una_minus_one() {
    // Client has sent to 1500, server acked 1000 and closed its window.
    let client = half(1500, 5000, 500);
    let server = half(5000, 1000, 0);
    let probe = Segment { seq: 999, ..c2s() };
    assert_eq!(
        classify(&client, &server, &probe, 10 * SEC),
        Shape::ZeroWindowProbe
    );
}

#[test]
fn one_new_byte_into_zero_window_is_a_zero_window_probe() {
    let client = half(1000, 5000, 500);
    let server = half(5000, 1000, 0);
    let probe = Segment {
        seq: 1000,
        payload_len: 1,
        ..c2s()
    };
    assert_eq!(
        classify(&client, &server, &probe, 10 * SEC),
        Shape::ZeroWindowProbe
    );
}

#[test]
fn one_new_byte_into_open_window_is_data() {
    let (client, server) = settled();
    let seg = Segment {
        seq: 1000,
        payload_len: 1,
        ..c2s()
    };
    assert_eq!(classify(&client, &server, &seg, 10 * SEC), Shape::Other);
}

#[test]
fn same_segment_again_within_milliseconds_is_a_copy() {
    let (mut client, server) = settled();
    let probe = Segment { seq: 999, ..c2s() };
    client.set_last_time(Some(10 * SEC));
    client.last_print = Fingerprint::of(&probe);
    assert_eq!(
        classify(&client, &server, &probe, 10 * SEC + 50),
        Shape::Copy
    );
}

#[test]
fn same_probe_seconds_later_is_a_probe_again() {
    // An unanswered IPv6 probe without timestamps repeats byte for byte.
    let (mut client, server) = settled();
    let probe = Segment { seq: 999, ..c2s() };
    client.set_last_time(Some(10 * SEC));
    client.last_print = Fingerprint::of(&probe);
    assert_eq!(
        classify(&client, &server, &probe, 11 * SEC),
        Shape::Keepalive
    );
}

#[test]
fn mid_stream_sender_unknown_peer_ack_decides() {
    let client = Half::default();
    let server = half(5000, 1000, 500);
    let probe = Segment { seq: 999, ..c2s() };
    assert_eq!(
        classify(&client, &server, &probe, 10 * SEC),
        Shape::Keepalive
    );
}

#[test]
fn first_segment_of_an_unseen_connection_is_not_judged() {
    let probe = Segment { seq: 999, ..c2s() };
    assert_eq!(
        classify(&Half::default(), &Half::default(), &probe, 0),
        Shape::Other
    );
}

#[test]
fn probe_across_the_sequence_wrap() {
    let client = half(0, 5000, 500);
    let server = half(5000, 0, 500);
    let probe = Segment {
        seq: u32::MAX,
        ..c2s()
    };
    assert_eq!(
        classify(&client, &server, &probe, 10 * SEC),
        Shape::Keepalive
    );
}

#[test]
fn mptcp_mapped_byte_is_data_not_a_probe() {
    let (client, server) = settled();
    let seg = Segment {
        seq: 999,
        payload_len: 1,
        mptcp_data: true,
        ..c2s()
    };
    assert_eq!(classify(&client, &server, &seg, 10 * SEC), Shape::Other);
}

fn pending(shape: Shape) -> Pending {
    Pending {
        shape,
        seq: 999,
        time: 10 * SEC,
        file: 0,
        frame: 7,
        reported: false,
    }
}

#[test]
fn ack_of_probe_seq_plus_one_answers() {
    let reply = Segment { ack: 1000, ..s2c() };
    assert_eq!(
        answer(&pending(Shape::Keepalive), &reply, Shape::Other),
        Some(Answer::Ack)
    );
}

#[test]
fn ack_with_another_number_does_not_answer() {
    let reply = Segment { ack: 998, ..s2c() };
    assert_eq!(
        answer(&pending(Shape::Keepalive), &reply, Shape::Other),
        None
    );
}

#[test]
fn peer_probe_does_not_answer_ours() {
    let theirs = Segment {
        seq: 4999,
        ack: 1000,
        ..s2c()
    };
    assert_eq!(
        answer(&pending(Shape::Keepalive), &theirs, Shape::Keepalive),
        None
    );
}

#[test]
fn rst_answers_a_probe() {
    let rst = Segment {
        flags: flags::RST,
        ack: 0,
        ..s2c()
    };
    assert_eq!(
        answer(&pending(Shape::Keepalive), &rst, Shape::Other),
        Some(Answer::Rst)
    );
}

#[test]
fn zero_window_probe_answered_with_window_still_closed() {
    let reply = Segment {
        ack: 1000,
        window: 0,
        ..s2c()
    };
    let got = answer(&pending(Shape::ZeroWindowProbe), &reply, Shape::Other);
    assert_eq!(got, Some(Answer::ZeroWindowAck));
}

#[test]
fn zero_window_probe_answered_by_window_opening() {
    let reply = Segment {
        ack: 1000,
        window: 200,
        ..s2c()
    };
    let got = answer(&pending(Shape::ZeroWindowProbe), &reply, Shape::Other);
    assert_eq!(got, Some(Answer::WindowOpened));
}

#[test]
fn ack_of_data_never_sent_is_unacceptable() {
    let (client, server) = settled();
    // The server acks 2^30 bytes the client never sent: a forged segment.
    let forged = Segment {
        seq: 5000,
        ack: 1000 + (1 << 30),
        ..s2c()
    };
    assert_eq!(
        classify(&server, &client, &forged, 10 * SEC),
        Shape::Unacceptable
    );
}

#[test]
fn seq_far_beyond_any_window_is_unacceptable() {
    let (client, server) = settled();
    let forged = Segment {
        seq: 1000 + (1 << 27),
        ..c2s()
    };
    assert_eq!(
        classify(&client, &server, &forged, 10 * SEC),
        Shape::Unacceptable
    );
}

#[test]
fn ack_a_little_ahead_is_data_the_capture_missed() {
    let (client, server) = settled();
    let seg = Segment {
        seq: 5000,
        ack: 1000 + 65_536,
        ..s2c()
    };
    assert_eq!(classify(&server, &client, &seg, 10 * SEC), Shape::Other);
}

#[test]
fn resent_data_a_window_behind_is_not_unacceptable() {
    let (client, server) = settled();
    let seg = Segment {
        seq: 1000u32.wrapping_sub(1 << 20),
        payload_len: 100,
        ..c2s()
    };
    assert_ne!(
        classify(&client, &server, &seg, 10 * SEC),
        Shape::Unacceptable
    );
}

#[test]
fn seq_far_behind_anything_still_resent_is_unacceptable() {
    let (client, server) = settled();
    let seg = Segment {
        seq: 1000u32.wrapping_sub(1 << 30),
        ..c2s()
    };
    assert_eq!(
        classify(&client, &server, &seg, 10 * SEC),
        Shape::Unacceptable
    );
}

#[test]
fn a_stream_that_continues_after_a_capture_gap_is_taken_again() {
    let (mut client, server) = settled();
    let far = 1000u32.wrapping_add(1 << 28);
    client.set_doubt(Some((far, 5000)));
    let next = Segment {
        seq: far,
        payload_len: 100,
        ..c2s()
    };
    assert_eq!(classify(&client, &server, &next, 10 * SEC), Shape::Other);
}

/// Both sides send timestamps (as Linux does once they are negotiated).
fn settled_with_timestamps() -> (Half, Half) {
    let (mut client, mut server) = settled();
    client.set_timestamps(true);
    server.set_timestamps(true);
    (client, server)
}

#[test]
fn segment_without_timestamps_at_foreign_numbers_is_unacceptable() {
    let (client, server) = settled_with_timestamps();
    // Near the real numbers, but not them, and no TSval: not this stack's.
    let forged = Segment {
        seq: 5000 + 4096,
        ack: 1000 + 4096,
        tsval: None,
        ..s2c()
    };
    assert_eq!(
        classify(&server, &client, &forged, 10 * SEC),
        Shape::Unacceptable
    );
}

/// macOS and the BSDs send keepalives through `tcp_respond`, without the
/// timestamps the connection otherwise carries.
#[test]
fn bsd_keepalive_without_timestamps_is_still_a_keepalive() {
    let (client, server) = settled_with_timestamps();
    let probe = Segment {
        seq: 999,
        tsval: None,
        ..c2s()
    };
    assert_eq!(
        classify(&client, &server, &probe, 10 * SEC),
        Shape::Keepalive
    );
}
