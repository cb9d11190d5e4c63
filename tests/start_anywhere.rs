//! Classification does not depend on where the capture starts, beyond the one
//! documented case: a probe seen before any segment of its peer cannot be
//! judged (nothing yet says where its sender's sequence space is).

use std::path::Path;

use kaprobe::capture::FileCapture;
use kaprobe::engine::{Engine, FrameRef, Output};
use kaprobe::keepalive::EventKind;
use kaprobe::wire::{self, Endpoint, Segment};

fn segments(name: &str) -> Vec<(FrameRef, Segment)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("captures")
        .join(name);
    let mut cap = FileCapture::open(&path, None).unwrap();
    let link = cap.link();
    let mut out = Vec::new();
    while let Some(f) = cap.next_frame().unwrap() {
        if let Ok(Some(seg)) = wire::decode(link, f.data) {
            out.push((
                FrameRef {
                    file: 0,
                    frame: f.number,
                    time: f.time,
                },
                seg,
            ));
        }
    }
    out
}

fn probes(segs: &[(FrameRef, Segment)]) -> Vec<u64> {
    let mut engine = Engine::new();
    let mut found = Vec::new();
    for (at, seg) in segs {
        engine.segment(*at, seg, &mut |o| {
            if let Output::Event(e) = o {
                if e.kind == EventKind::Keepalive {
                    found.push(e.frame);
                }
            }
        });
    }
    found
}

#[test]
fn any_starting_point_finds_the_same_probes_once_the_peer_was_seen() {
    for name in [
        "alive.pcap",
        "dead-peer.pcap",
        "both-probe.pcap",
        "windows-probes.pcap",
        "ipv6.pcap",
        "peer-reset.pcap",
    ] {
        let all = segments(name);
        let full = probes(&all);
        for start in 0..all.len() {
            let suffix = &all[start..];
            let found = probes(suffix);
            for f in &found {
                assert!(
                    full.contains(f),
                    "{name} from {start}: frame {f} is a probe only in the suffix"
                );
            }
            for &f in full
                .iter()
                .filter(|&&f| f >= suffix.first().map_or(u64::MAX, |s| s.0.frame))
            {
                let sender: Endpoint = all.iter().find(|(at, _)| at.frame == f).unwrap().1.src;
                let peer_seen_before = suffix
                    .iter()
                    .take_while(|(at, _)| at.frame < f)
                    .any(|(_, s)| s.dst == sender);
                if peer_seen_before {
                    assert!(
                        found.contains(&f),
                        "{name} from {start}: probe {f} missed though its peer was seen"
                    );
                }
            }
        }
    }
}
