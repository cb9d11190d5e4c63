//! Frames of any link type -> decode -> the keepalive rules with flow state.
//!
//! Input: one byte choosing the link type (and, by its high bit, a live
//! engine, which also judges unanswered probes and stalled data on the clock),
//! then frames, each as a 2-byte little-endian length, a 1-byte time step
//! (milliseconds), and its bytes. A short or overlong last length simply ends
//! the input. Every event and connection is rendered, as a report writes it.
#![no_main]

use kaprobe::engine::{Engine, FrameRef, Live, Output};
use kaprobe::report::{text, ConnectionReport};
use kaprobe::wire::LinkType;
use libfuzzer_sys::fuzz_target;

const LINKS: [LinkType; 5] = LinkType::ALL;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, mut rest)) = data.split_first() else {
        return;
    };
    let link = LINKS[usize::from(pick) % LINKS.len()];
    let mut engine = if pick & 0x80 != 0 {
        Engine::live(Live {
            grace: 200_000,
            idle_timeout: 60_000_000,
            stall: 500_000,
        })
    } else {
        Engine::new()
    };
    let (mut time, mut frame) = (1_700_000_000_000_000i64, 0u64);
    let mut sink = |o: Output<'_>| match o {
        Output::Event(e) => drop(text::event_line(e, "", "")),
        Output::Connection(k, c) => drop(ConnectionReport::new(k, c)),
    };
    while rest.len() >= 3 {
        let len = usize::from(u16::from_le_bytes([rest[0], rest[1]]));
        time += i64::from(rest[2]) * 1000;
        rest = &rest[3..];
        let Some(bytes) = rest.get(..len) else { break };
        frame += 1;
        let at = FrameRef {
            file: 0,
            frame,
            time,
        };
        // Every other frame as if the snapshot length had cut it short.
        let wire_len = len as u32 + (frame & 1) as u32;
        engine.frame(at, link, bytes, wire_len, &mut sink);
        rest = &rest[len..];
    }
    engine.finish(i64::MAX, &mut sink);
});
