//! One behaviour per test, each built from the template segments below:
//! our kernel's answer to the spoofed ACK, and the peer's answer to a probe.

use std::net::SocketAddr;

use super::*;
use crate::wire::Segment;

const LOCAL: &str = "192.0.2.1:40000";
const REMOTE: &str = "192.0.2.2:7000";
/// What our kernel's duplicate ACK says: SND.NXT, RCV.NXT, window, TSval, TSecr.
const SND_NXT: u32 = 0x5b90_9ad2;
const RCV_NXT: u32 = 0x06bf_a84a;

fn ep(s: &str) -> Endpoint {
    Endpoint::from(s.parse::<SocketAddr>().unwrap())
}

fn plan() -> Plan {
    Plan {
        count: 3,
        interval: Duration::from_secs(1),
        wait: Duration::from_millis(200),
        one_byte: false,
    }
}

fn session() -> Session {
    Session::new(ep(LOCAL), ep(REMOTE), plan(), 0x1234_5678_9abc_def0)
}

fn seg(src: &str, dst: &str, seq: u32, ack: u32, flag: u8) -> TcpReply {
    TcpReply {
        seg: Segment {
            src: ep(src),
            dst: ep(dst),
            vlan: [0, 0],
            seq,
            ack,
            flags: flag,
            window: 502,
            payload_len: 0,
            first_byte: None,
            ip_id: 0,
            tsval: Some(1000),
            mptcp_data: false,
            options_cut: false,
        },
        tsecr: Some(77),
        signed: false,
    }
}

/// Our kernel's duplicate ACK to the peer.
fn kernel_dupack() -> TcpReply {
    seg(LOCAL, REMOTE, SND_NXT, RCV_NXT, flags::ACK)
}

/// The peer's answer to a probe at SND.NXT - 1.
fn peer_ack() -> TcpReply {
    seg(REMOTE, LOCAL, RCV_NXT, SND_NXT, flags::ACK)
}

/// Start, and get our kernel's answer: returns the probe that went out.
fn learned(s: &mut Session, t0: Instant) -> SegmentSpec {
    let sends = s.start(t0, Outstanding::No);
    assert_eq!(sends.len(), 1, "one spoofed ACK first");
    let mut probe = s.on_segment(&kernel_dupack(), 10, t0 + Duration::from_micros(30));
    assert_eq!(probe.len(), 1, "a probe right after learning");
    probe.remove(0).0
}

#[test]
fn learning_ack_claims_the_peer_and_carries_no_timestamp() {
    let mut s = session();
    let Send(spoof) = s.start(Instant::now(), Outstanding::No).remove(0);
    assert_eq!((spoof.src, spoof.dst), (ep(REMOTE), ep(LOCAL)));
    assert!(
        spoof.payload.is_empty(),
        "0 bytes: never data in anyone's stream"
    );
    assert_eq!(spoof.timestamps, None, "nothing for PAWS to take from it");
}

#[test]
fn probe_is_snd_nxt_minus_one_with_our_kernels_window_and_timestamps() {
    let mut s = session();
    let probe = learned(&mut s, Instant::now());
    assert_eq!((probe.src, probe.dst), (ep(LOCAL), ep(REMOTE)));
    assert_eq!(probe.seq, SND_NXT - 1);
    assert_eq!(probe.ack, RCV_NXT);
    assert_eq!(probe.window, 502);
    assert_eq!(
        probe.timestamps,
        Some(Timestamps {
            tsval: 1000,
            tsecr: 77
        }),
        "our kernel's latest TSval, never a larger one; the peer's as TSecr"
    );
    assert!(probe.payload.is_empty());
}

#[test]
fn probe_at_seq_zero_wraps_to_the_top_of_sequence_space() {
    let mut s = session();
    s.start(Instant::now(), Outstanding::No);
    let mut dupack = kernel_dupack();
    dupack.seg.seq = 0;
    let Send(probe) = s.on_segment(&dupack, 10, Instant::now()).remove(0);
    assert_eq!(probe.seq, u32::MAX);
}

#[test]
fn one_byte_probe_carries_one_byte_at_the_same_seq() {
    let mut s = Session::new(
        ep(LOCAL),
        ep(REMOTE),
        Plan {
            one_byte: true,
            ..plan()
        },
        7,
    );
    let probe = learned(&mut s, Instant::now());
    assert_eq!(probe.payload, vec![0]);
    assert_eq!(probe.seq, SND_NXT - 1);
}

#[test]
fn answer_acking_the_probe_is_alive_with_rtt_on_the_capture_clock() {
    let mut s = session();
    let t0 = Instant::now();
    let probe = learned(&mut s, t0);
    // The capture sees our probe leave at 1_000 us, the answer at 1_061 us.
    let mut own = seg(LOCAL, REMOTE, probe.seq, probe.ack, flags::ACK);
    own.seg.window = probe.window;
    s.on_segment(&own, 1_000, t0);
    s.on_segment(&peer_ack(), 1_061, t0);
    let o = s.outcome.clone().unwrap();
    assert_eq!(o.verdict, Verdict::Alive);
    assert_eq!(o.rtt, Some(Duration::from_micros(61)));
    assert!(s.done());
    assert_eq!(s.probes(), 1);
}

#[test]
fn our_own_spoofed_ack_seen_on_the_wire_is_not_the_peer_talking() {
    let mut s = session();
    let Send(spoof) = s.start(Instant::now(), Outstanding::No).remove(0);
    let mut echo = seg(REMOTE, LOCAL, spoof.seq, spoof.ack, flags::ACK);
    echo.seg.window = spoof.window;
    s.on_segment(&echo, 5, Instant::now());
    assert!(!s.done(), "the capture shows our spoof; it proves nothing");
}

#[test]
fn rst_from_the_peer_is_reset_and_says_our_socket_is_reset_too() {
    let mut s = session();
    learned(&mut s, Instant::now());
    s.on_segment(
        &seg(REMOTE, LOCAL, RCV_NXT, 0, flags::RST),
        50,
        Instant::now(),
    );
    let o = s.outcome.clone().unwrap();
    assert_eq!(o.verdict, Verdict::Reset);
    assert!(o.note.unwrap().contains("no longer knows"));
}

#[test]
fn unanswered_probes_are_silent_after_count_probes_an_interval_apart() {
    let mut s = session();
    let t0 = Instant::now();
    learned(&mut s, t0);
    let mut t = t0;
    for round in 1..3 {
        t += Duration::from_millis(250);
        assert!(
            s.on_timer(t).is_empty(),
            "wait expired, pause until the interval"
        );
        assert!(!s.done());
        t = t0 + Duration::from_secs(round) + Duration::from_millis(1);
        let sends = s.on_timer(t);
        assert_eq!(
            sends.len(),
            1,
            "a fresh learning ACK before probe {}",
            round + 1
        );
        assert_eq!(sends[0].0.dst, ep(LOCAL));
        let next = s.on_segment(&kernel_dupack(), 10, t);
        assert_eq!(next.len(), 1);
    }
    assert_eq!(s.probes(), 3);
    s.on_timer(t + Duration::from_millis(201));
    let o = s.outcome.clone().unwrap();
    assert_eq!(o.verdict, Verdict::Silent);
    assert!(o.note.unwrap().contains("3 probes unanswered"));
}

/// Both learning tries unanswered: returns the first ask to the peer, sent
/// at `t0` + 712 ms.
fn learning_unanswered(s: &mut Session, t0: Instant) -> SegmentSpec {
    let Send(first) = s.start(t0, Outstanding::No).remove(0);
    assert!(s.on_timer(t0 + Duration::from_millis(201)).is_empty());
    let sends = s.on_timer(t0 + Duration::from_millis(511));
    let Send(second) = &sends[0];
    assert_eq!(second.seq, first.seq.wrapping_add(1 << 31));
    let mut asks = s.on_timer(t0 + Duration::from_millis(712));
    assert_eq!(
        asks.len(),
        1,
        "the peer is asked once our kernel said nothing"
    );
    asks.remove(0).0
}

#[test]
fn unanswered_learning_tries_the_other_half_of_sequence_space_then_asks_the_peer() {
    let mut s = session();
    let ask = learning_unanswered(&mut s, Instant::now());
    assert_eq!((ask.src, ask.dst), (ep(LOCAL), ep(REMOTE)));
    assert!(ask.payload.is_empty() && ask.timestamps.is_none());
    assert_eq!(s.sent.last().unwrap().kind, "ask");
    assert!(s.outcome.is_none());
}

#[test]
fn peer_answering_an_ask_is_alive_with_the_rtt_from_the_ask() {
    let mut s = session();
    let t0 = Instant::now();
    let ask = learning_unanswered(&mut s, t0);
    let wire = seg(LOCAL, REMOTE, ask.seq, ask.ack, flags::ACK);
    let mut wire = wire;
    wire.seg.window = ask.window;
    wire.seg.tsval = None;
    s.on_segment(&wire, 1_000, t0 + Duration::from_millis(712));
    s.on_segment(&peer_ack(), 1_090, t0 + Duration::from_millis(713));
    let o = s.outcome.clone().unwrap();
    assert_eq!(o.verdict, Verdict::Alive);
    assert_eq!(o.rtt, Some(Duration::from_micros(90)));
    assert!(o.note.unwrap().contains("the peer was asked"));
    assert_eq!(s.probes(), 1);
}

#[test]
fn peer_resetting_an_ask_is_reset() {
    let mut s = session();
    let ask = learning_unanswered(&mut s, Instant::now());
    // Linux answers an ACK for a connection it does not know with SEG.SEQ = SEG.ACK.
    s.on_segment(
        &seg(REMOTE, LOCAL, ask.ack, 0, flags::RST),
        50,
        Instant::now(),
    );
    assert_eq!(s.outcome.clone().unwrap().verdict, Verdict::Reset);
}

#[test]
fn unanswered_asks_cannot_tell_and_alternate_halves_of_sequence_space() {
    let mut s = session();
    let t0 = Instant::now();
    let first = learning_unanswered(&mut s, t0);
    let mut t = t0 + Duration::from_millis(712);
    let mut seqs = vec![first.seq];
    for _ in 1..plan().count {
        assert!(s.on_timer(t + Duration::from_millis(201)).is_empty());
        t += plan().interval;
        let Send(next) = s.on_timer(t).remove(0);
        seqs.push(next.seq);
    }
    assert_eq!(seqs[1], seqs[0].wrapping_add(1 << 31));
    assert_eq!(seqs[2], seqs[0]);
    s.on_timer(t + Duration::from_millis(201));
    let o = s.outcome.clone().unwrap();
    assert_eq!(
        o.verdict,
        Verdict::Unknown,
        "silence of an ask is not silence of a probe"
    );
    assert!(o.note.unwrap().contains("cannot tell"));
    assert_eq!(s.probes(), 3);
}

#[test]
fn a_refused_send_is_not_listed_as_sent() {
    let mut s = session();
    s.start(Instant::now(), Outstanding::No);
    s.send_failed(nix::errno::Errno::EPERM);
    assert!(s.sent.is_empty());
    let o = s.outcome.clone().unwrap();
    assert_eq!(o.verdict, Verdict::Unknown);
    assert!(o
        .note
        .unwrap()
        .contains("refused to send the ACK that asks our kernel"));
}

#[test]
fn data_outstanding_is_watched_and_never_probed() {
    let mut s = session();
    let t0 = Instant::now();
    assert!(s.start(t0, Outstanding::Stuck).is_empty(), "nothing sent");
    assert!(s.on_timer(t0 + Duration::from_secs(1)).is_empty());
    s.on_timer(t0 + Duration::from_millis(2201));
    let o = s.outcome.clone().unwrap();
    assert_eq!(o.verdict, Verdict::Silent);
    assert!(o.note.unwrap().contains("TCP_USER_TIMEOUT"));
    assert!(s.sent.is_empty());
}

/// Data sent a moment before (not resent yet) is watched for its ACK as
/// long as the kernel would wait before resending, however short --wait.
#[test]
fn fresh_data_is_watched_until_the_kernel_would_resend() {
    let short = Plan {
        count: 1,
        wait: Duration::from_millis(20),
        ..plan()
    };
    let t0 = Instant::now();
    let with = |outstanding| {
        let mut s = Session::new(ep(LOCAL), ep(REMOTE), short.clone(), 7);
        assert!(s.start(t0, outstanding).is_empty(), "nothing sent");
        s
    };
    let mut fresh = with(Outstanding::Fresh);
    fresh.on_timer(t0 + Duration::from_millis(500));
    assert!(fresh.outcome.is_none(), "still watching at 0.5 s");
    fresh.on_segment(&peer_ack(), 10, t0 + Duration::from_millis(600));
    assert_eq!(fresh.outcome.unwrap().verdict, Verdict::Alive);

    let mut stuck = with(Outstanding::Stuck);
    stuck.on_timer(t0 + Duration::from_millis(21));
    assert_eq!(stuck.outcome.unwrap().verdict, Verdict::Silent);
}

#[test]
fn peer_ack_while_watching_is_alive() {
    let mut s = session();
    s.start(Instant::now(), Outstanding::Stuck);
    s.on_segment(&peer_ack(), 10, Instant::now());
    assert_eq!(s.outcome.unwrap().verdict, Verdict::Alive);
}

#[test]
fn data_from_the_application_mid_poke_stops_the_probing() {
    let mut s = session();
    let t0 = Instant::now();
    s.start(t0, Outstanding::No);
    let mut data = kernel_dupack();
    data.seg.payload_len = 100;
    assert!(s.on_segment(&data, 10, t0).is_empty());
    assert_eq!(s.probes(), 0);
    assert!(s.watched);
}

/// With a short --wait too, data the application sends mid-poke is watched
/// long enough for its ACK to come.
#[test]
fn data_from_the_application_mid_poke_is_watched_until_acked() {
    let short = Plan {
        count: 1,
        wait: Duration::from_millis(20),
        ..plan()
    };
    let mut s = Session::new(ep(LOCAL), ep(REMOTE), short, 7);
    let t0 = Instant::now();
    s.start(t0, Outstanding::No);
    let mut data = kernel_dupack();
    data.seg.payload_len = 100;
    s.on_segment(&data, 10, t0);
    s.on_timer(t0 + Duration::from_millis(500));
    assert!(s.outcome.is_none(), "still watching at 0.5 s");
    s.on_segment(&peer_ack(), 10, t0 + Duration::from_millis(600));
    assert_eq!(s.outcome.unwrap().verdict, Verdict::Alive);
}

#[test]
fn signed_segments_from_our_kernel_stop_the_poke_before_any_probe() {
    let mut s = session();
    s.start(Instant::now(), Outstanding::No);
    let mut dupack = kernel_dupack();
    dupack.signed = true;
    assert!(s.on_segment(&dupack, 10, Instant::now()).is_empty());
    assert_eq!(s.outcome.clone().unwrap().verdict, Verdict::Unknown);
    assert_eq!(s.probes(), 0);
}

#[test]
fn icmp_error_about_the_probe_is_unreachable() {
    let mut s = session();
    learned(&mut s, Instant::now());
    s.on_icmp(&IcmpError {
        reporter: "192.0.2.254".parse().unwrap(),
        about_src: ep(LOCAL),
        about_dst: ep(REMOTE),
        what: "host unreachable".into(),
    });
    let o = s.outcome.clone().unwrap();
    assert_eq!(o.verdict, Verdict::Unreachable);
    assert_eq!(
        o.note.as_deref(),
        Some("ICMP host unreachable from 192.0.2.254")
    );
}

#[test]
fn refused_connection_sends_nothing() {
    let mut s = session();
    s.refuse("signed".into());
    assert!(s.done());
    assert!(s.sent.is_empty());
    assert!(s
        .on_timer(Instant::now() + Duration::from_secs(5))
        .is_empty());
}

/// Regression (tests/poke_safety.rs under load): the peer's ACK of our data
/// came between reading the socket table and opening the capture.
#[test]
fn watched_connection_whose_data_was_acked_meanwhile_is_alive() {
    let mut s = session();
    let t0 = Instant::now();
    s.start(t0, Outstanding::Stuck);
    s.on_timer(t0 + Duration::from_secs(3));
    assert_eq!(s.outcome.clone().unwrap().verdict, Verdict::Silent);
    s.acked_while_watched();
    assert_eq!(s.outcome.clone().unwrap().verdict, Verdict::Alive);
}

#[test]
fn a_probed_silent_connection_stays_silent() {
    let one = Plan { count: 1, ..plan() };
    let mut s = Session::new(ep(LOCAL), ep(REMOTE), one, 3);
    let t0 = Instant::now();
    learned(&mut s, t0);
    s.on_timer(t0 + Duration::from_secs(1));
    assert_eq!(s.outcome.clone().unwrap().verdict, Verdict::Silent);
    s.acked_while_watched();
    assert_ne!(s.outcome.clone().unwrap().verdict, Verdict::Alive);
}
