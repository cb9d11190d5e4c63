//! Whole conversations through the engine: events and verdicts as a reader of
//! the report would check them.

use super::*;
use crate::report::{ConnectionReport, Verdict};
use crate::testkit::{c2s, s2c, SEC};
use crate::wire::flags;

struct Run {
    events: Vec<Event>,
    reports: Vec<ConnectionReport>,
}

/// `c` has a hint that begins with `start`.
fn assert_hint(c: &ConnectionReport, start: &str) {
    let found = c.hints.iter().any(|h| h.starts_with(start));
    assert!(found, "no hint begins {start:?}: {:?}", c.hints);
}

impl Run {
    fn kinds(&self) -> Vec<EventKind> {
        self.events.iter().map(|e| e.kind).collect()
    }

    fn only(&self) -> &ConnectionReport {
        assert_eq!(self.reports.len(), 1, "one connection expected");
        &self.reports[0]
    }
}

/// The report of a connection leaving the table, checking on the way that
/// a connection `quiet` says has nothing to report indeed has nothing (the
/// text table counts those without building their reports).
fn checked_report(key: &FlowKey, conn: &Conn) -> ConnectionReport {
    let report = ConnectionReport::new(key, conn);
    if ConnectionReport::quiet(key, conn) {
        assert_eq!(report.verdict, Verdict::NoKeepalive);
        assert!(
            !report.noteworthy() && report.hints.is_empty(),
            "{report:?}"
        );
    }
    report
}

/// Feed (seconds, segment) pairs as frames 1, 2, ... and finish.
fn run(script: &[(f64, Segment)]) -> Run {
    let mut engine = Engine::new();
    let (mut events, mut reports) = (Vec::new(), Vec::new());
    let mut sink = |o: Output| match o {
        Output::Event(e) => events.push(e.clone()),
        Output::Connection(k, c) => reports.push(checked_report(k, c)),
    };
    for (i, (t, seg)) in script.iter().enumerate() {
        let at = FrameRef {
            file: 0,
            frame: i as u64 + 1,
            time: (t * SEC as f64) as Micros,
        };
        engine.segment(at, seg, &mut sink);
    }
    engine.finish(Micros::MAX, &mut sink);
    Run { events, reports }
}

/// Handshake and one request/response: client next 1000, server next 5000.
fn opening() -> Vec<(f64, Segment)> {
    vec![
        (
            0.0,
            Segment {
                seq: 899,
                ack: 0,
                flags: flags::SYN,
                ..c2s()
            },
        ),
        (
            0.001,
            Segment {
                seq: 4899,
                ack: 900,
                flags: flags::SYN | flags::ACK,
                ..s2c()
            },
        ),
        (
            0.002,
            Segment {
                seq: 900,
                ack: 4900,
                ..c2s()
            },
        ),
        (
            0.003,
            Segment {
                seq: 900,
                ack: 4900,
                payload_len: 100,
                ..c2s()
            },
        ),
        (
            0.004,
            Segment {
                seq: 4900,
                ack: 1000,
                payload_len: 100,
                ..s2c()
            },
        ),
        (
            0.005,
            Segment {
                seq: 1000,
                ack: 5000,
                ..c2s()
            },
        ),
    ]
}

fn probe() -> Segment {
    Segment { seq: 999, ..c2s() }
}

#[test]
fn answered_probe_is_alive_with_idle_and_rtt() {
    let mut script = opening();
    script.push((10.004, probe()));
    script.push((10.0045, s2c()));
    let run = run(&script);
    assert_eq!(run.kinds(), [EventKind::Keepalive, EventKind::KeepaliveAck]);
    assert_eq!(run.events[1].rtt, Some(500));
    let c = run.only();
    assert_eq!(c.verdict, Verdict::Alive);
    assert_eq!(c.client.to_string(), "192.0.2.1:40000");
    assert!(c.syn_seen);
    let p = &c.probers[0];
    assert_eq!((p.role, p.stats.probes, p.stats.acked), ("client", 1, 1));
    // Idle runs from the server's last segment (t = 0.004).
    assert_eq!(p.idle(), Some(10 * SEC));
}

#[test]
fn unanswered_probes_then_prober_rst_is_dead_with_count_and_interval() {
    let mut script = opening();
    for t in [10.0, 11.0, 12.0] {
        script.push((t, probe()));
    }
    script.push((
        13.0,
        Segment {
            seq: 1000,
            flags: flags::RST | flags::ACK,
            ..c2s()
        },
    ));
    let c = run(&script).only().clone();
    assert_eq!(c.verdict, Verdict::Dead);
    let p = &c.probers[0];
    assert_eq!(p.stats.gave_up_after, Some(3));
    assert_eq!(p.interval(), Some(SEC));
    assert_eq!(p.stats.run, 3);
    assert_eq!(c.state, "reset");
}

#[test]
fn probe_answered_by_rst_is_reset() {
    let mut script = opening();
    script.push((10.0, probe()));
    script.push((
        10.001,
        Segment {
            seq: 5000,
            ack: 0,
            flags: flags::RST,
            ..s2c()
        },
    ));
    let run = run(&script);
    assert_eq!(run.kinds(), [EventKind::Keepalive, EventKind::KeepaliveRst]);
    assert_eq!(run.only().verdict, Verdict::Reset);
}

#[test]
fn probes_unanswered_at_capture_end_are_unanswered() {
    let mut script = opening();
    script.push((10.0, probe()));
    script.push((11.0, probe()));
    let c = run(&script).only().clone();
    assert_eq!(c.verdict, Verdict::Unanswered);
    assert_eq!(c.probers[0].stats.run, 2);
    assert_eq!(c.unheard, None, "the server answered the SYN");
    assert!(!c.hints.iter().any(|h| h.starts_with("no packet from")));
}

/// A capture of the client's side only: its probes are unanswered as far as
/// the capture goes, and the report says the server was never heard.
#[test]
fn probes_of_a_peer_never_captured_say_so() {
    let data = Segment {
        seq: 1000,
        payload_len: 50,
        ..c2s()
    };
    let script = vec![
        (0.0, data),
        (10.0, Segment { seq: 1049, ..c2s() }),
        (11.0, Segment { seq: 1049, ..c2s() }),
    ];
    let c = run(&script).only().clone();
    assert_eq!(c.verdict, Verdict::Unanswered);
    assert_eq!(
        c.unheard.map(|a| a.to_string()).as_deref(),
        Some(crate::testkit::SERVER)
    );
    assert_hint(
        &c,
        &format!("no packet from {} was captured", crate::testkit::SERVER),
    );
}

#[test]
fn resent_unacknowledged_data_is_retransmitting_not_keepalive() {
    let mut script = opening();
    let data = Segment {
        seq: 1000,
        payload_len: 50,
        ..c2s()
    };
    script.extend([(5.0, data.clone()), (5.2, data.clone()), (5.6, data)]);
    let c = run(&script).only().clone();
    assert_eq!(c.verdict, Verdict::Retransmitting);
    let r = c.resending.as_ref().expect("resending");
    assert_eq!((r.stuck.bytes(), r.resends), (Some(50), 2));
    assert!(c.hints.iter().any(|h| h.contains("TCP_USER_TIMEOUT")));
}

/// A FIN resent with the data before it: the hint names the FIN apart from
/// the bytes (a FIN is no byte), and the kernel limit an application that
/// closed its socket meets.
#[test]
fn a_resent_fin_is_named_in_the_hint() {
    let mut script = opening();
    let last = Segment {
        seq: 1000,
        payload_len: 1,
        flags: flags::ACK | flags::PSH | flags::FIN,
        ..c2s()
    };
    script.extend([(5.0, last.clone()), (5.2, last.clone()), (5.6, last)]);
    let c = run(&script).only().clone();
    assert_eq!(c.verdict, Verdict::Retransmitting);
    let r = c.resending.as_ref().expect("resending");
    assert_eq!((r.stuck.bytes(), r.fin), (Some(2), true));
    let client = crate::testkit::CLIENT;
    assert_hint(
        &c,
        &format!("{client} has 1 byte and its FIN unacknowledged, resent 2 times"),
    );
    assert!(c.hints.iter().any(|h| h.contains("tcp_orphan_retries")));
}

#[test]
fn zero_window_probes_are_not_keepalives() {
    let mut script = opening();
    script.push((1.0, Segment { window: 0, ..s2c() }));
    script.push((1.2, probe()));
    script.push((1.2001, Segment { window: 0, ..s2c() }));
    let run = run(&script);
    assert_eq!(
        run.kinds(),
        [EventKind::ZeroWindowProbe, EventKind::ZeroWindowProbeAck]
    );
    assert_eq!(run.only().verdict, Verdict::NoKeepalive);
}

#[test]
fn a_frame_captured_twice_counts_once() {
    let mut script = opening();
    script.push((10.0, probe()));
    script.push((10.00005, probe()));
    script.push((10.001, s2c()));
    let run = run(&script);
    assert_eq!(run.kinds(), [EventKind::Keepalive, EventKind::KeepaliveAck]);
    assert_eq!(run.only().probers[0].stats.probes, 1);
}

#[test]
fn both_sides_probing_are_reported_apart() {
    let mut script = opening();
    script.push((10.0, probe()));
    script.push((10.001, s2c()));
    script.push((20.0, Segment { seq: 4999, ..s2c() }));
    script.push((20.001, c2s()));
    let c = run(&script).only().clone();
    let roles: Vec<_> = c.probers.iter().map(|p| (p.role, p.stats.acked)).collect();
    assert_eq!(roles, [("client", 1), ("server", 1)]);
}

#[test]
fn closed_connection_leaves_the_table_after_linger() {
    let mut engine = Engine::new();
    let mut reports = Vec::new();
    let mut sink = |o: Output| {
        if let Output::Connection(_, c) = o {
            reports.push(c.stream())
        }
    };
    let mut frame = 0;
    let mut feed = |engine: &mut Engine, t: f64, seg: Segment, sink: &mut dyn FnMut(Output)| {
        frame += 1;
        let at = FrameRef {
            file: 0,
            frame,
            time: (t * SEC as f64) as Micros,
        };
        engine.segment(at, &seg, sink);
    };
    for (t, seg) in opening() {
        feed(&mut engine, t, seg, &mut sink);
    }
    feed(
        &mut engine,
        1.0,
        Segment {
            flags: flags::FIN | flags::ACK,
            ..c2s()
        },
        &mut sink,
    );
    feed(
        &mut engine,
        1.0,
        Segment {
            flags: flags::FIN | flags::ACK,
            ack: 1001,
            ..s2c()
        },
        &mut sink,
    );
    assert_eq!(engine.table_len(), 1);
    let other = Segment {
        src: crate::testkit::addr("192.0.2.9:1"),
        ..c2s()
    };
    feed(&mut engine, 1.0 + 31.0, other, &mut sink);
    assert_eq!(
        engine.table_len(),
        1,
        "the closed one left, the new one is in"
    );
    assert_eq!(reports, [0]);
}

#[test]
fn new_syn_on_a_closed_four_tuple_starts_a_new_connection() {
    let mut script = opening();
    script.push((
        1.0,
        Segment {
            flags: flags::RST,
            ..c2s()
        },
    ));
    script.extend(opening().into_iter().map(|(t, s)| (t + 2.0, s)));
    let run = run(&script);
    let streams: Vec<u64> = run.reports.iter().map(|c| c.stream).collect();
    assert_eq!(streams, [0, 1]);
}

/// Feed a script through a live engine, with `tick`s where the script has
/// `None` (time passing without packets), and finish at `end`.
fn run_live(script: &[(f64, Option<Segment>)], end: f64) -> Run {
    let live = Live {
        grace: SEC / 2,
        idle_timeout: 100 * SEC,
        stall: 2 * SEC,
    };
    let mut engine = Engine::live(live);
    let (mut events, mut reports) = (Vec::new(), Vec::new());
    let mut sink = |o: Output| match o {
        Output::Event(e) => events.push(e.clone()),
        Output::Connection(k, c) => reports.push(checked_report(k, c)),
    };
    let at_time = |t: f64| (t * SEC as f64) as Micros;
    for (i, (t, seg)) in script.iter().enumerate() {
        match seg {
            Some(seg) => {
                let at = FrameRef {
                    file: 0,
                    frame: i as u64 + 1,
                    time: at_time(*t),
                };
                engine.segment(at, seg, &mut sink);
            }
            None => engine.tick(at_time(*t), &mut sink),
        }
    }
    engine.finish(at_time(end), &mut sink);
    Run { events, reports }
}

fn live_opening() -> Vec<(f64, Option<Segment>)> {
    opening().into_iter().map(|(t, s)| (t, Some(s))).collect()
}

#[test]
fn live_probe_past_grace_is_judged_unanswered_once() {
    let mut script = live_opening();
    script.push((10.0, Some(probe())));
    script.push((10.3, None));
    script.push((10.6, None));
    script.push((10.9, None));
    let run = run_live(&script, 11.0);
    assert_eq!(run.kinds(), [EventKind::Keepalive, EventKind::Unanswered]);
    assert_eq!(run.events[1].unanswered, Some(1));
    assert_eq!(run.events[1].peer_captured, Some(true), "the handshake");
}

/// A grace period longer than the prober's interval: each probe is judged
/// when the prober sends the next one or its RST, since it stopped waiting
/// then. Before, the next probe took the first one's place unjudged, and
/// no `unanswered` came at all.
#[test]
fn live_probe_resent_within_grace_is_judged_at_the_next_one() {
    let mut script = live_opening();
    for t in [10.0, 10.3, 10.6] {
        script.push((t, Some(probe())));
    }
    let rst = Segment {
        seq: 1000,
        flags: flags::RST | flags::ACK,
        ..c2s()
    };
    script.push((10.9, Some(rst)));
    script.push((12.0, None));
    let first = script.len() as u64 - 4;
    let run = run_live(&script, 12.0);
    use EventKind::{Dead, Keepalive as K, Unanswered as U};
    assert_eq!(run.kinds(), [K, U, K, U, K, U, Dead]);
    let judged: Vec<&Event> = run.events.iter().filter(|e| e.kind == U).collect();
    for (n, e) in judged.iter().enumerate() {
        assert_eq!(e.unanswered, Some(n as u32 + 1));
        assert_eq!(e.frame, first + n as u64, "the probe's frame");
        assert_eq!(e.probe_frame, Some(e.frame));
        let next = [10.3, 10.6, 10.9][n];
        assert_eq!(e.time, (next * SEC as f64) as Micros, "when it was resent");
    }
    assert_eq!(run.events[6].unanswered, Some(3));
    assert_eq!(run.only().verdict, Verdict::Dead);
}

/// Connections forgotten for their silence are reported in order of
/// appearance, as at the end: the table's order changes from run to run,
/// and `analyze --as-live` of one file must print the same lines each time.
#[test]
fn live_silent_connections_leave_in_order_of_appearance() {
    let mut script: Vec<(f64, Option<Segment>)> = (0..40u16)
        .map(|n| {
            let mut seg = c2s();
            seg.src.port = 40000 + n;
            (1.0 + f64::from(n) / 100.0, Some(seg))
        })
        .collect();
    script.push((200.0, None));
    let run = run_live(&script, 201.0);
    let streams: Vec<u64> = run.reports.iter().map(|c| c.stream).collect();
    assert_eq!(streams, (0..40).collect::<Vec<u64>>());
}

/// Probes from a connection whose peer never appears in the capture (gone
/// before it began, or a capture of one direction): the judgements say so.
#[test]
fn live_judgements_say_when_nothing_from_the_peer_was_captured() {
    let data = Segment {
        seq: 1000,
        payload_len: 50,
        ..c2s()
    };
    let probe = Segment { seq: 1049, ..c2s() };
    let mut script = vec![(1.0, Some(data))];
    for t in [3.0, 4.0, 5.0] {
        script.push((t, Some(probe.clone())));
    }
    let rst = Segment {
        seq: 1050,
        flags: flags::RST | flags::ACK,
        ..c2s()
    };
    script.push((6.0, Some(rst)));
    let run = run_live(&script, 7.0);
    let judged: Vec<&Event> = run
        .events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::Unanswered | EventKind::Dead))
        .collect();
    assert_eq!(judged.len(), 4, "three unanswered, then dead");
    assert!(judged.iter().all(|e| e.peer_captured == Some(false)));
    let c = run.only();
    assert_eq!(c.verdict, Verdict::Dead);
    assert_hint(
        c,
        &format!("no packet from {} was captured", crate::testkit::SERVER),
    );
    // Answers out of sight would have reset Linux's count of probes.
    let gave_up = c.hints.iter().find(|h| h.contains(" gave up: ")).unwrap();
    assert!(gave_up.ends_with("(TCP_KEEPCNT 3 or fewer)"), "{gave_up}");
    // And answered probes come TCP_KEEPIDLE apart, not TCP_KEEPINTVL.
    let cadence = "TCP_KEEPINTVL ~1 s (or TCP_KEEPIDLE, if they were answered out of sight)";
    assert!(c.hints.iter().any(|h| h.contains(cadence)), "{:?}", c.hints);
    // The idle is timed from the prober's own data at 1 s, the peer's
    // segments being out of sight; the dead event has it too.
    let p = &c.probers[0];
    assert_eq!(p.idle(), Some(2 * SEC));
    assert_eq!(p.idle_from(), Some(IdleFrom::Prober));
    assert_eq!(judged[3].idle, Some(2 * SEC));
}

/// An ACK that comes after its probe was reported `unanswered` (a round
/// trip longer than the grace period) says it is late; one in time does not.
#[test]
fn live_answer_after_grace_is_late() {
    let mut script = live_opening();
    script.push((10.0, Some(probe())));
    script.push((10.8, Some(s2c())));
    script.push((20.0, Some(probe())));
    script.push((20.1, Some(s2c())));
    let run = run_live(&script, 21.0);
    use EventKind::*;
    assert_eq!(
        run.kinds(),
        [Keepalive, Unanswered, KeepaliveAck, Keepalive, KeepaliveAck]
    );
    assert!(run.events[2].late);
    assert_eq!(run.events[2].rtt, Some(800_000));
    assert!(!run.events[4].late);
    // Answered both times: the report counts no probe unanswered.
    assert_eq!(run.only().probers[0].stats.acked, 2);
}

#[test]
fn live_answer_within_grace_is_not_unanswered() {
    let mut script = live_opening();
    script.push((10.0, Some(probe())));
    script.push((10.1, Some(s2c())));
    script.push((11.0, None));
    let run = run_live(&script, 12.0);
    assert_eq!(run.kinds(), [EventKind::Keepalive, EventKind::KeepaliveAck]);
}

#[test]
fn live_prober_giving_up_is_a_dead_event_with_its_settings() {
    let mut script = live_opening();
    for t in [10.0, 11.0, 12.0] {
        script.push((t, Some(probe())));
    }
    script.push((
        13.0,
        Some(Segment {
            seq: 1000,
            flags: flags::RST | flags::ACK,
            ..c2s()
        }),
    ));
    let run = run_live(&script, 14.0);
    let dead = run
        .events
        .iter()
        .find(|e| e.kind == EventKind::Dead)
        .expect("a dead event");
    assert_eq!(dead.unanswered, Some(3));
    assert_eq!(dead.peer_captured, Some(true));
    assert_eq!(dead.interval, Some(SEC));
    assert_eq!(dead.idle, Some(10 * SEC - 4_000));
    let unanswered = run
        .events
        .iter()
        .filter(|e| e.kind == EventKind::Unanswered)
        .count();
    assert_eq!(unanswered, 3);
}

#[test]
fn live_probe_younger_than_grace_at_the_end_is_in_flight() {
    let mut script = live_opening();
    script.push((10.0, Some(probe())));
    script.push((10.001, Some(s2c())));
    script.push((20.0, Some(probe())));
    let c = run_live(&script, 20.1).only().clone();
    assert_eq!(c.verdict, Verdict::Alive, "the earlier answer stands");
    assert!(c.probers[0].stats.in_flight);
}

/// The client's 50 bytes at 1000, sent at `first` and resent at each of `resent`.
fn resent_data(first: f64, resent: &[f64]) -> Vec<(f64, Option<Segment>)> {
    let data = Segment {
        seq: 1000,
        payload_len: 50,
        ..c2s()
    };
    std::iter::once(first)
        .chain(resent.iter().copied())
        .map(|t| (t, Some(data.clone())))
        .collect()
}

/// A stall of the last data and the FIN with it: the event says so.
#[test]
fn live_fin_resent_past_the_stall_time_is_a_stall_of_the_fin() {
    let mut script = live_opening();
    let last = Segment {
        seq: 1000,
        payload_len: 50,
        flags: flags::ACK | flags::PSH | flags::FIN,
        ..c2s()
    };
    for t in [5.0, 5.3, 5.9, 7.5, 8.0] {
        script.push((t, Some(last.clone())));
    }
    let run = run_live(&script, 9.0);
    assert_eq!(run.kinds(), [EventKind::Stalled]);
    let e = &run.events[0];
    assert_eq!((e.len, e.fin), (51, Some(true)), "50 bytes and the FIN");
}

#[test]
fn live_data_resent_past_the_stall_time_is_stalled_once() {
    let mut script = live_opening();
    let first_resend = script.len() as u64 + 2;
    script.extend(resent_data(5.0, &[5.3, 5.9]));
    script.push((7.0, None));
    script.extend(resent_data(7.1, &[]));
    for t in [7.5, 8.0, 12.0] {
        script.push((t, None));
    }
    let run = run_live(&script, 13.0);
    assert_eq!(run.kinds(), [EventKind::Stalled], "not at 7.0, once after");
    let e = &run.events[0];
    assert_eq!(e.time, 7_500_000, "judged on the first tick past 5.3 + 2 s");
    assert_eq!(e.frame, first_resend, "the frame of the first resend");
    assert_eq!(e.since, Some(5_300_000));
    assert_eq!(e.resends, Some(3));
    assert_eq!(
        (e.seq, e.len),
        (1000, 50),
        "from the first unacknowledged byte"
    );
    assert_eq!(
        e.peer_silent,
        Some(true),
        "nothing from the server since 5.3"
    );
    assert_eq!(e.src.to_string(), crate::testkit::CLIENT);
    assert_eq!(run.only().verdict, Verdict::Retransmitting);
}

/// A capture of one direction (`src host X`, asymmetric routing) holds
/// no ACK from the peer: new data after a resend says that the ACKs reach
/// the sender out of sight, so neither the event nor the report calls it
/// stuck.
#[test]
fn live_resend_then_new_data_in_one_direction_is_not_stalled() {
    let data = |seq| Segment {
        seq,
        payload_len: 50,
        ..c2s()
    };
    let mut script = vec![(1.0, Some(data(1000))), (1.3, Some(data(1000)))];
    script.push((1.6, Some(data(1050))));
    for t in [4.0, 8.0, 12.0] {
        script.push((t, None));
    }
    let run = run_live(&script, 13.0);
    assert_eq!(run.kinds(), [], "no ACK seen from the peer, so no stall");
    assert_ne!(run.only().verdict, Verdict::Retransmitting);
}

/// A capture started after the peer fell silent (or of one direction only):
/// nothing from the peer at all, and the sender only resends, minutes apart
/// late in a stall. It is stuck by what it does once it has resent twice, and
/// the event and the report say that the peer is not in the capture, and not
/// how many bytes are unacknowledged.
#[test]
fn live_resending_with_nothing_new_and_no_peer_captured_is_stalled() {
    let data = Segment {
        seq: 1000,
        payload_len: 50,
        ..c2s()
    };
    let mut script = vec![(1.0, Some(data.clone())), (3.0, Some(data.clone()))];
    for t in [5.5, 8.0] {
        script.push((t, None));
    }
    script.push((20.0, Some(data)));
    for t in [21.0, 22.5, 30.0] {
        script.push((t, None));
    }
    let run = run_live(&script, 31.0);
    assert_eq!(run.kinds(), [EventKind::Stalled], "once");
    let e = &run.events[0];
    assert_eq!((e.since, e.resends), (Some(3 * SEC), Some(2)));
    assert_eq!(e.time, 22_500_000, "looked at again 2 s after 20.0");
    assert_eq!(e.peer_captured, Some(false));
    assert_eq!(e.len, 0, "how much is unacknowledged is not in the capture");
    let c = run.only();
    assert_eq!(c.verdict, Verdict::Retransmitting);
    assert_eq!(c.resending.as_ref().map(|r| r.stuck.bytes()), Some(None));
    assert_hint(
        c,
        &format!(
            "{} resent 2 times and sent nothing new, with no packet from the peer captured",
            crate::testkit::CLIENT
        ),
    );
}

/// One direction captured, and the last data lost twice: the client resends
/// it at 1.2 and 1.6, its ACK comes out of sight, and it has nothing more to
/// send. Its resends stopped long before the next would be due, so that is
/// a loss it recovered from, not a stall.
#[test]
fn live_resends_that_stop_with_no_peer_captured_are_not_stalled() {
    let data = Segment {
        seq: 1000,
        payload_len: 50,
        ..c2s()
    };
    let mut script: Vec<(f64, Option<Segment>)> = [1.0, 1.2, 1.6]
        .into_iter()
        .map(|t| (t, Some(data.clone())))
        .collect();
    for t in [4.0, 7.0, 10.0, 14.0] {
        script.push((t, None));
    }
    let run = run_live(&script, 15.0);
    assert_eq!(run.kinds(), [], "recovered out of sight");
}

/// The server's ACK of the client's data is in the capture, yet the client
/// resends it again and again, each resend ACKed once more: the ACKs are
/// lost between the capture point and the client's TCP (a firewall on its
/// host). Judged again until the third resend: two can be two ACKs lost
/// to ordinary loss.
#[test]
fn live_resending_what_the_peer_acknowledged_is_stalled() {
    let mut script = live_opening();
    let ack = Segment { ack: 1050, ..s2c() };
    for t in [5.0, 5.3, 5.9] {
        script.extend(resent_data(t, &[]));
        script.push((t + 0.01, Some(ack.clone())));
    }
    script.push((7.5, None));
    script.push((9.0, None));
    script.extend(resent_data(9.1, &[]));
    script.push((9.11, Some(ack)));
    for t in [10.0, 20.0] {
        script.push((t, None));
    }
    let run = run_live(&script, 21.0);
    assert_eq!(run.kinds(), [EventKind::Stalled], "once");
    let e = &run.events[0];
    assert_eq!((e.since, e.resends), (Some(5_300_000), Some(3)));
    assert_eq!(e.time, 10_000_000, "looked at again 2 s after 7.5");
    assert_eq!(e.len, 0, "nothing unacknowledged by the peer's ACK");
    assert_eq!(e.peer_acked, Some(true));
    assert_eq!(e.peer_silent, Some(false));
    assert_eq!(e.peer_captured, Some(true));
    let c = run.only();
    assert_eq!(c.verdict, Verdict::Retransmitting);
    let r = c.resending.as_ref().expect("resending");
    assert_eq!(
        (r.stuck.bytes(), r.stuck.peer_acked()),
        (Some(0), Some(true))
    );
    let covered = "data that the peer's ACKs in this capture cover: they do not reach its TCP";
    assert_hint(
        c,
        &format!("{} resent 3 times {covered}", crate::testkit::CLIENT),
    );
}

/// Data resent twice after the peer's ACK of it was captured (that ACK and
/// the next lost on the way back), quiet for a while, then new data that the
/// peer ACKs: ordinary loss, not a stall.
#[test]
fn live_data_acked_and_resent_twice_then_new_data_is_not_stalled() {
    let mut script = live_opening();
    for t in [5.0, 5.2, 5.6] {
        script.extend(resent_data(t, &[]));
        script.push((t + 0.01, Some(Segment { ack: 1050, ..s2c() })));
    }
    for t in [7.5, 9.0, 12.0] {
        script.push((t, None));
    }
    let more = Segment {
        seq: 1050,
        payload_len: 20,
        ..c2s()
    };
    script.push((12.5, Some(more)));
    script.push((12.51, Some(Segment { ack: 1070, ..s2c() })));
    script.push((20.0, None));
    let run = run_live(&script, 21.0);
    assert_eq!(run.kinds(), [], "two resends, then new data");
    assert_ne!(run.only().verdict, Verdict::Retransmitting);
}

/// One direction only, one segment lost and resent once, then nothing more
/// to send (a request waiting for its answer): not taken for a stall.
#[test]
fn live_one_resend_then_quiet_with_no_peer_captured_is_not_stalled() {
    let data = Segment {
        seq: 1000,
        payload_len: 50,
        ..c2s()
    };
    let mut script = vec![(1.0, Some(data.clone())), (1.3, Some(data))];
    for t in [4.0, 8.0, 30.0] {
        script.push((t, None));
    }
    let run = run_live(&script, 31.0);
    assert_eq!(run.kinds(), []);
    assert_ne!(run.only().verdict, Verdict::Retransmitting);
}

#[test]
fn live_resending_ended_by_an_ack_is_not_stalled_and_a_new_run_is() {
    let mut script = live_opening();
    script.extend(resent_data(5.0, &[5.3]));
    script.push((5.35, Some(Segment { ack: 1050, ..s2c() })));
    script.push((8.0, None));
    let data = Segment {
        seq: 1050,
        payload_len: 10,
        ..c2s()
    };
    for t in [9.0, 9.4, 10.2] {
        script.push((t, Some(data.clone())));
    }
    script.push((11.5, None));
    let run = run_live(&script, 12.0);
    assert_eq!(
        run.kinds(),
        [EventKind::Stalled],
        "no resumed without a stall"
    );
    let e = &run.events[0];
    assert_eq!((e.since, e.resends, e.len), (Some(9_400_000), Some(2), 10));
}

/// Duplicate ACKs (a peer that gets segments but not the one it lacks)
/// keep the run of resending going, and the event says the peer is there.
#[test]
fn live_stall_with_duplicate_acks_says_the_peer_still_sends() {
    let mut script = live_opening();
    script.extend(resent_data(5.0, &[5.3]));
    script.push((6.0, Some(s2c())));
    script.extend(resent_data(6.5, &[]));
    script.push((8.0, None));
    let run = run_live(&script, 9.0);
    assert_eq!(run.kinds(), [EventKind::Stalled]);
    assert_eq!(run.events[0].peer_silent, Some(false));
    assert_eq!(run.events[0].resends, Some(2));
}

#[test]
fn live_ack_after_a_stall_is_resumed_once() {
    let mut script = live_opening();
    script.extend(resent_data(5.0, &[5.3, 5.9, 7.1]));
    script.push((7.5, None));
    let ack = Segment { ack: 1050, ..s2c() };
    let ack_frame = script.len() as u64 + 1;
    script.push((8.5, Some(ack.clone())));
    script.push((8.75, Some(ack)));
    let run = run_live(&script, 9.0);
    assert_eq!(run.kinds(), [EventKind::Stalled, EventKind::Resumed]);
    let e = &run.events[1];
    assert_eq!(
        (e.frame, e.time),
        (ack_frame, 8_500_000),
        "the ACK that moved"
    );
    assert_eq!(e.src.to_string(), crate::testkit::SERVER);
    assert_eq!((e.since, e.resends), (Some(5_300_000), Some(3)));
    assert_eq!(
        run.only().verdict,
        Verdict::NoKeepalive,
        "no longer resending"
    );
}

#[test]
fn live_silent_connection_leaves_the_table_and_is_reported() {
    let mut engine = Engine::live(Live {
        grace: SEC,
        idle_timeout: 100 * SEC,
        stall: 5 * SEC,
    });
    let mut reports = Vec::new();
    let mut sink = |o: Output| {
        if let Output::Connection(_, c) = o {
            reports.push(c.stream());
        }
    };
    for (i, (t, seg)) in opening().into_iter().enumerate() {
        let at = FrameRef {
            file: 0,
            frame: i as u64 + 1,
            time: (t * SEC as f64) as Micros,
        };
        engine.segment(at, &seg, &mut sink);
    }
    engine.tick(50 * SEC, &mut sink);
    assert_eq!(engine.table_len(), 1, "not silent long enough yet");
    engine.tick(200 * SEC, &mut sink);
    assert_eq!(engine.table_len(), 0);
    assert_eq!(reports, [0]);
}

/// `kaprobe poke` asks our own kernel for its numbers with an ACK that
/// claims to come from the peer, at random numbers; a capture taken on the
/// poking host shows it. It must not move either side's state.
#[test]
fn forged_acks_at_random_numbers_leave_keepalive_detection_intact() {
    let mut script = opening();
    for (t, seq, ack) in [
        (5.0, 0x9e37_79b9u32, 0x7f4a_7c15u32),
        (5.5, 0x1e37_79b9, 0x3f4a_7c15),
    ] {
        let forged = Segment {
            seq,
            ack,
            window: 65535,
            tsval: None,
            ..s2c()
        };
        script.push((t, forged));
    }
    script.push((10.004, probe()));
    script.push((10.0045, s2c()));
    let run = run(&script);
    assert_eq!(run.kinds(), [EventKind::Keepalive, EventKind::KeepaliveAck]);
    assert_eq!(run.only().verdict, Verdict::Alive);
}

/// A capture taken while `kaprobe poke` runs may begin with its forged ACK:
/// the state it sets is wrong, and the real segments that follow replace it.
#[test]
fn capture_beginning_with_a_forged_ack_recovers_on_the_real_segments() {
    let forged = Segment {
        seq: 0x9e37_79b9,
        ack: 0x7f4a_7c15,
        window: 65535,
        ..s2c()
    };
    // One exchange is judged against the forged state; the next one
    // continues it, and the state follows the real segments from then on.
    let script = vec![
        (0.0, forged),
        (0.001, c2s()),
        (0.002, s2c()),
        (1.001, c2s()),
        (1.002, s2c()),
        (10.0, probe()),
        (10.0005, s2c()),
    ];
    let run = run(&script);
    assert_eq!(run.kinds(), [EventKind::Keepalive, EventKind::KeepaliveAck]);
    assert_eq!(run.only().verdict, Verdict::Alive);
}

/// Header prediction (`Engine::predicted`) must change nothing a reader
/// sees: random conversations, mostly in order and sprinkled with what the
/// rules care about (probes, resends, copies, zero windows, forged and
/// far-off segments, FIN, RST, a new SYN), give the same events, reports,
/// totals and table with prediction as through the general path alone.
mod prediction {
    use proptest::prelude::*;

    use super::*;

    /// One step of a conversation: what to send, from which side, how long
    /// after the previous one.
    #[derive(Clone, Debug)]
    struct Step {
        kind: u8,
        from_server: bool,
        len: u32,
        wait: u8,
        timestamp: bool,
        /// The capture cut the options off: the TSval is unknown.
        options_cut: bool,
        window: u16,
    }

    fn step() -> impl Strategy<Value = Step> {
        (
            0u8..100,
            any::<bool>(),
            2u32..1500,
            0u8..8,
            prop::bool::weighted(0.9),
            prop::bool::weighted(0.05),
            prop_oneof![4 => Just(500u16), 1 => Just(0u16), 1 => any::<u16>()],
        )
            .prop_map(
                |(kind, from_server, len, wait, timestamp, options_cut, window)| Step {
                    kind,
                    from_server,
                    len,
                    wait,
                    timestamp,
                    options_cut,
                    window,
                },
            )
    }

    /// Turn the steps into segments, keeping each side's numbers so that
    /// most segments are the next in order.
    fn script(steps: &[Step]) -> Vec<(Micros, Segment)> {
        let waits = [0, 10, 40_000, 99_999, 150_000, SEC, 10 * SEC, 75 * SEC];
        let mut next = [1000u32, 5000u32];
        let mut tsval = [7u32, 9u32];
        let mut time = 0;
        let mut last: Option<Segment> = None;
        let mut out = Vec::new();
        for s in steps {
            time += waits[usize::from(s.wait)];
            let (me, peer) = if s.from_server { (1, 0) } else { (0, 1) };
            tsval[me] = tsval[me].wrapping_add(1);
            let template = if s.from_server { s2c() } else { c2s() };
            let mut seg = Segment {
                seq: next[me],
                ack: next[peer],
                window: s.window,
                tsval: s.timestamp.then_some(tsval[me]),
                ..template
            };
            if s.options_cut {
                seg.tsval = None;
                seg.options_cut = true;
            }
            match s.kind {
                // In-order data and pure ACKs: what prediction is for.
                0..=39 => seg.payload_len = s.len,
                40..=59 => {}
                60..=64 => seg.seq = next[me].wrapping_sub(1),
                65..=67 => {
                    seg.seq = next[me].wrapping_sub(1);
                    seg.payload_len = 1;
                }
                68..=71 => {
                    seg.seq = next[me].wrapping_sub(s.len);
                    seg.payload_len = s.len;
                }
                72..=75 => {
                    if let Some(copy) = last.clone() {
                        seg = copy;
                    }
                }
                76..=78 => seg.ack = next[peer].wrapping_sub(s.len),
                79..=80 => seg.ack = next[peer].wrapping_add(s.len),
                81..=82 => seg.seq = next[me].wrapping_add(s.len << 20),
                83..=84 => {
                    seg.seq = s.len.wrapping_mul(0x9e37_79b9);
                    seg.tsval = None;
                }
                85..=86 => seg.flags |= flags::FIN,
                87 => seg.flags = flags::RST | flags::ACK,
                88 => {
                    seg.flags = flags::SYN;
                    seg.ack = 0;
                }
                89 => seg.flags = flags::SYN | flags::ACK,
                90..=91 => seg.flags = flags::ACK | flags::PSH,
                92..=93 => seg.flags = 0,
                94..=95 => {
                    seg.payload_len = s.len;
                    seg.mptcp_data = true;
                }
                _ => seg.ip_id = s.len as u16,
            }
            if s.kind < 40 || (85..=86).contains(&s.kind) || s.kind == 88 {
                next[me] = seg.seq.wrapping_add(seg.seq_len());
            }
            last = Some(seg.clone());
            out.push((time, seg));
        }
        out
    }

    /// Everything an engine shows: its output in order, its totals, and
    /// its table before the end.
    fn observe(mut engine: Engine, script: &[(Micros, Segment)]) -> (Vec<String>, String) {
        let mut seen = Vec::new();
        let mut sink = |o: Output| seen.push(format!("{o:?}"));
        for (i, (time, seg)) in script.iter().enumerate() {
            let at = FrameRef {
                file: 0,
                frame: i as u64 + 1,
                time: *time,
            };
            engine.segment(at, seg, &mut sink);
        }
        let mut table: Vec<String> = engine
            .conns
            .iter()
            .chain(engine.closing.iter())
            .map(|(k, c)| format!("{k:?} {c:?}"))
            .collect();
        table.sort();
        let end = script.last().map_or(0, |s| s.0) + SEC;
        engine.finish(end, &mut sink);
        (seen, format!("{:?}\n{}", engine.totals, table.join("\n")))
    }

    fn general(mut engine: Engine) -> Engine {
        engine.general_only = true;
        engine
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn prediction_changes_nothing(steps in proptest::collection::vec(step(), 1..120)) {
            let script = script(&steps);
            prop_assert_eq!(observe(Engine::new(), &script), observe(general(Engine::new()), &script));
            let live = Live { grace: SEC, idle_timeout: 300 * SEC, stall: SEC };
            prop_assert_eq!(
                observe(Engine::live(live), &script),
                observe(general(Engine::live(live)), &script)
            );
        }
    }

    /// The property test above is only worth something if prediction
    /// actually takes most of its segments.
    #[test]
    fn in_order_traffic_is_predicted() {
        let steps: Vec<Step> = (0..200)
            .map(|i| Step {
                kind: if i % 2 == 0 { 0 } else { 40 },
                from_server: i % 4 >= 2,
                len: 100,
                wait: 1,
                timestamp: true,
                options_cut: false,
                window: 500,
            })
            .collect();
        let script = script(&steps);
        let mut engine = Engine::new();
        let mut general_calls = 0;
        for (i, (time, seg)) in script.iter().enumerate() {
            let (key, side) = FlowKey::of(seg);
            let at = FrameRef {
                file: 0,
                frame: i as u64 + 1,
                time: *time,
            };
            if !engine.predicted(&key, side, seg, at.time) {
                general_calls += 1;
                engine.general(at, seg, key, side, &mut |_| {});
            }
        }
        // The first segment of each side has no state to predict from.
        assert!(
            general_calls <= 3,
            "{general_calls} segments took the general path"
        );
    }
}
