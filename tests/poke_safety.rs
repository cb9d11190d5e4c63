//! poke's safety rules as properties over the states a peer can be in. Three
//! connections to one server: one whose peer answers, one whose peer has gone
//! silent, and one silent while our application keeps writing (data in
//! flight). Each is poked 100 times. Afterwards none was reset, both
//! applications got every byte exactly once, and the client kernel's own
//! keepalive fires on schedule. Both ends and kaprobe run in namespaces made
//! by the test (tests/common/mod.rs).
//!
//! By hand: `sudo -E cargo test --test poke_safety -- --nocapture`.

mod common;

use std::io::BufRead;
use std::time::Duration;

use common::*;
use kaprobe::wire::{flags, Segment};
use serde_json::Value;

const POKES: usize = 100;
/// The clients' kernel keepalive: idle 2 s, every 1 s, 60 probes (long
/// enough that the silent phase never makes the kernel give up).
const KEEPALIVE: &str = "2,1,60";

/// What a connection's peer does while it is poked.
#[derive(Clone, Copy, Debug, PartialEq)]
enum PeerState {
    Answering,
    Silent,
    SilentWithDataInFlight,
}

impl PeerState {
    fn port(self) -> u16 {
        match self {
            PeerState::Answering => 7000,
            PeerState::Silent => 7001,
            PeerState::SilentWithDataInFlight => 7002,
        }
    }
}

const STATES: [PeerState; 3] = [
    PeerState::Answering,
    PeerState::Silent,
    PeerState::SilentWithDataInFlight,
];

#[test]
fn hundred_pokes_in_every_peer_state_harm_no_connection() {
    if !privileged("hundred_pokes_in_every_peer_state_harm_no_connection") {
        return;
    }
    let net = Net::new();
    // Both kernels answer out-of-window segments at any rate here, so that
    // a hundred pokes take seconds, not minutes.
    for ns in [&net.a, &net.b] {
        let ok = net
            .cmd(ns, "sysctl")
            .args(["-qw", "net.ipv4.tcp_invalid_ratelimit=0"])
            .status()
            .unwrap();
        assert!(ok.success());
    }
    let pcap = temp("poke-safety.pcap");
    let mut servers = Vec::new();
    let mut clients = Vec::new();
    for state in STATES {
        let port = state.port().to_string();
        servers.push(net.peer(&net.b, &["server", B4, &port]));
        let mut args = vec![
            "client",
            B4,
            &port,
            "--keepalive",
            KEEPALIVE,
            "--hold",
            "120",
            "--send-every",
            "0.3",
        ];
        if state == PeerState::Silent {
            args.push("--quiet-start");
        }
        clients.push(net.peer(&net.a, &args));
    }
    let mut dump = tcpdump(&net, &net.a, &pcap);
    // The server side of two connections goes silent: everything it sends
    // on them is dropped.
    nft(
        &net,
        &net.b,
        "table inet kp {\n chain silence {\n  type filter hook output priority 0;\n  tcp sport { 7001, 7002 } drop\n }\n}\n",
    );
    std::thread::sleep(Duration::from_millis(500));
    for i in 0..POKES {
        let out = net
            .cmd(&net.a, kaprobe())
            .args(["poke", B4, "--json", "-c", "1", "--wait", "20"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3, "poke {i}: {text}");
        for v in &lines {
            let port = v["remote"]
                .as_str()
                .unwrap()
                .rsplit(':')
                .next()
                .unwrap()
                .to_string();
            let state = STATES
                .iter()
                .find(|s| s.port().to_string() == port)
                .unwrap();
            let expected = if *state == PeerState::Answering {
                "alive"
            } else {
                "silent"
            };
            assert_eq!(v["verdict"], expected, "{state:?}, poke {i}: {v}");
            if *state == PeerState::SilentWithDataInFlight {
                assert!(
                    v["sent"].as_array().unwrap().is_empty(),
                    "never probed: {v}"
                );
            }
        }
    }
    net.cmd(&net.b, "nft")
        .args(["delete", "table", "inet", "kp"])
        .status()
        .unwrap();
    // The silent peer is back: data both ways on that connection too.
    signal(&clients[1].child, "-USR2");
    std::thread::sleep(Duration::from_millis(1500));
    // Writing off everywhere; every echo back (after the retransmissions,
    // for the data that was in flight); then the connections lie idle.
    for c in clients.iter_mut() {
        signal(&c.child, "-USR2");
    }
    for (c, state) in clients.iter_mut().zip(STATES) {
        let mut line = String::new();
        c.out.read_line(&mut line).unwrap();
        assert!(line.contains("caught_up"), "{state:?}: {line}");
    }
    let idle_from = now_micros();
    std::thread::sleep(Duration::from_millis(4500));
    let mut outcomes = Vec::new();
    for c in clients {
        signal(&c.child, "-USR1");
        outcomes.push(c.result());
    }
    std::thread::sleep(Duration::from_millis(300));
    signal(&dump, "-INT");
    dump.wait().unwrap();

    let segs = segments(&pcap);
    for (outcome, state) in outcomes.iter().zip(STATES) {
        let outcome: Value = serde_json::from_str(outcome).unwrap();
        assert_eq!(outcome["result"], "held", "{state:?}: {outcome}");
        assert!(
            outcome["sent"].as_u64().unwrap() > 0,
            "{state:?}: {outcome}"
        );
        assert_eq!(
            outcome["received"], outcome["sent"],
            "{state:?}: every byte echoed exactly once: {outcome}"
        );
        let port = state.port();
        let mine: Vec<(i64, Segment)> = segs
            .iter()
            .filter(|(_, s)| s.src.port == port || s.dst.port == port)
            .cloned()
            .collect();
        assert!(
            !mine.iter().any(|(_, s)| s.has(flags::RST)),
            "{state:?}: no RST either way"
        );
        kernel_keepalive_on_schedule(&mine, idle_from, state);
    }
}

/// After the pokes, the client's kernel sends a keepalive probe (0 bytes at
/// SND.NXT - 1) TCP_KEEPIDLE = 2 s after the last segment it received from
/// the peer.
fn kernel_keepalive_on_schedule(segs: &[(i64, Segment)], after: i64, state: PeerState) {
    let from_client = |s: &Segment| s.src.to_string().starts_with(A4);
    let mut last_rx: Option<i64> = None;
    let mut next_seq: Option<u32> = None;
    let mut idles = Vec::new();
    for (t, s) in segs {
        if from_client(s) {
            let end = s.seq.wrapping_add(s.seq_len());
            let probe = s.payload_len == 0
                && s.flags == flags::ACK
                && next_seq.is_some_and(|n| s.seq == n.wrapping_sub(1));
            if probe && *t > after {
                let idle = t - last_rx.unwrap_or(*t);
                if (1_800_000..=2_600_000).contains(&idle) {
                    return;
                }
                idles.push(idle);
            }
            if next_seq.is_none_or(|n| kaprobe::flow::seq_after(end, n)) {
                next_seq = Some(end);
            }
        } else if s.tsval.is_some() && !s.has(flags::RST) {
            // The server's own segments (poke's forged ACKs carry no TSval).
            last_rx = Some(*t);
        }
    }
    panic!(
        "{state:?}: no kernel keepalive 2 s after the peer's last segment (probes at idle {idles:?} us)"
    );
}
