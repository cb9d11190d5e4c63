//! Whole conversations through the engine: events and verdicts as a reader of
//! the report would check them.

use super::*;
use crate::report::Verdict;
use crate::testkit::{c2s, s2c, SEC};
use crate::wire::flags;

struct Run {
    events: Vec<Event>,
    reports: Vec<ConnectionReport>,
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

/// Feed (seconds, segment) pairs as frames 1, 2, ... and finish.
fn run(script: &[(f64, Segment)]) -> Run {
    let mut engine = Engine::new();
    let (mut events, mut reports) = (Vec::new(), Vec::new());
    let mut sink = |o: Output| match o {
        Output::Event(e) => events.push(e.clone()),
        Output::Connection(c) => reports.push(*c),
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
    assert_eq!((r.bytes, r.resends), (50, 2));
    assert!(c.hints.iter().any(|h| h.contains("TCP_USER_TIMEOUT")));
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
        if let Output::Connection(c) = o {
            reports.push(c.stream)
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
    };
    let mut engine = Engine::live(live);
    let (mut events, mut reports) = (Vec::new(), Vec::new());
    let mut sink = |o: Output| match o {
        Output::Event(e) => events.push(e.clone()),
        Output::Connection(c) => reports.push(*c),
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

#[test]
fn live_silent_connection_leaves_the_table_and_is_reported() {
    let mut engine = Engine::live(Live {
        grace: SEC,
        idle_timeout: 100 * SEC,
    });
    let mut reports = Vec::new();
    let mut sink = |o: Output| {
        if let Output::Connection(c) = o {
            reports.push(c.stream);
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
