//! Frames of any link type -> decode -> the keepalive rules with flow state.
//!
//! Input: one byte choosing the link type, then frames, each as a 2-byte
//! little-endian length, a 1-byte time step (milliseconds), and its bytes. A
//! short or overlong last length simply ends the input.
#![no_main]

use kaprobe::engine::{Engine, FrameRef};
use kaprobe::wire::LinkType;
use libfuzzer_sys::fuzz_target;

const LINKS: [LinkType; 5] =
    [LinkType::Ethernet, LinkType::Null, LinkType::RawIp, LinkType::LinuxSll, LinkType::LinuxSll2];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, mut rest)) = data.split_first() else { return };
    let link = LINKS[usize::from(pick) % LINKS.len()];
    let mut engine = Engine::new();
    let (mut time, mut frame) = (1_700_000_000_000_000i64, 0u64);
    let mut sink = |_: kaprobe::engine::Output<'_>| {};
    while rest.len() >= 3 {
        let len = usize::from(u16::from_le_bytes([rest[0], rest[1]]));
        time += i64::from(rest[2]) * 1000;
        rest = &rest[3..];
        let Some(bytes) = rest.get(..len) else { break };
        frame += 1;
        engine.frame(FrameRef { file: 0, frame, time }, link, bytes, &mut sink);
        rest = &rest[len..];
    }
    engine.finish(i64::MAX, &mut sink);
});
