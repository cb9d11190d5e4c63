//! `kaprobe poke`: ask an established connection's peer whether it is still
//! there, the way kernel keepalive would, without touching the application
//! that owns the socket.
//!
//! socket table (`table`) -> learned numbers and probes (`session`) ->
//! crafted segment (`craft`) -> raw send (`sender`) -> awaited reply, read by
//! the shared capture code and `reply` -> verdict (`output`).
//!
//! Safety rules, enforced here and in `session`: only ESTABLISHED and
//! CLOSE_WAIT connections of this host's own socket table are touched; a
//! connection with data outstanding is only watched; a connection with
//! TCP-MD5 keys is refused; nothing but ACK segments is sent.

mod craft;
mod output;
mod reply;
mod sender;
mod session;
mod table;
mod target;

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Write};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::capture::{LiveError, PacketSocket};
use crate::cli::PokeArgs;
use crate::wire::{Endpoint, LinkType};

pub use craft::{CraftError, SegmentSpec, Timestamps};
pub use reply::{parse as parse_reply, IcmpError, Reply, TcpReply};
pub use sender::{RawSender, SendError};
pub use session::{Learned, Outcome, Outstanding, Plan, Sent, Session, Verdict};
pub use table::{TableError, TcpInfo, TcpSocket};
pub use target::{Target, TargetError};

/// Why nothing could be poked.
#[derive(Debug, thiserror::Error)]
pub enum PokeError {
    #[error("{0}")]
    Argument(String),
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error(transparent)]
    Table(#[from] TableError),
    #[error("no established TCP connection {0} in this host's socket table (`ss -tn` lists them)")]
    NoConnection(String),
    #[error("cannot enter network namespace '{name}': {reason}")]
    Netns { name: String, reason: String },
    #[error(transparent)]
    Send(#[from] SendError),
    #[error(transparent)]
    Capture(#[from] LiveError),
    #[error("{0}")]
    Craft(#[from] CraftError),
    #[error("cannot write the output: {0}")]
    Output(#[from] io::Error),
}

/// How a run ended: the verdict of every poked connection.
pub struct PokeEnd {
    pub verdicts: Vec<Verdict>,
}

impl PokeEnd {
    /// Like ping: 0 every poked connection alive, 1 at least one not.
    pub fn status(&self) -> u8 {
        if self.verdicts.iter().all(|v| *v == Verdict::Alive) {
            0
        } else {
            1
        }
    }
}

/// Snapshot length of the capture: every header poke reads, and the quoted
/// headers inside ICMP errors.
const SNAPLEN: usize = 256;
/// Longest single wait for the capture, so timers and Ctrl-C stay prompt.
const MAX_WAIT: Duration = Duration::from_millis(50);

pub fn run(args: &PokeArgs, out: &mut dyn Write) -> Result<PokeEnd, PokeError> {
    if !(args.interval >= 1.0 && args.interval.is_finite()) {
        return Err(PokeError::Argument(format!(
            "--interval {} is below 1 s: the peer answers at most one probe per 500 ms",
            args.interval
        )));
    }
    let target = Target::parse(args.target.as_deref(), args.local.as_deref(), args.all)?;
    if let Some(ns) = &args.netns {
        target::enter_netns(ns).map_err(|reason| PokeError::Netns {
            name: ns.clone(),
            reason,
        })?;
    }
    let sockets: Vec<TcpSocket> = table::established()?
        .into_iter()
        .filter(|s| target.matches(s.local, s.remote))
        .collect();
    if sockets.is_empty() {
        return Err(PokeError::NoConnection(target.describe()));
    }
    let mut sender = RawSender::new();
    sender.open()?;
    let mut capture = PacketSocket::open(
        &args.interface,
        &target.bpf(),
        SNAPLEN,
        queue_bytes(sockets.len()),
    )?;
    let link = capture.link();
    let mut sessions = start_sessions(args, &sockets, &mut sender)?;
    drive(&mut sessions, &mut capture, link, &mut sender)?;
    recheck_table(&mut sessions, &sockets);
    let mut writer = output::Writer::new(args.json, out);
    let mut verdicts = Vec::new();
    for (session, socket) in sessions.iter().zip(&sockets) {
        writer.write(session, socket, &args.interface)?;
        verdicts.extend(session.outcome.as_ref().map(|o| o.verdict));
    }
    writer.finish()?;
    capture.close_detached();
    Ok(PokeEnd { verdicts })
}

/// What the socket table says after the poke, read once and only when it
/// matters. After an RST from the peer our kernel resets its own socket
/// (the RST's sequence number is exactly RCV.NXT): say whether it did. A
/// watched connection whose peer acknowledged data after the table was first
/// read answered, even if that ACK came before the capture was open.
fn recheck_table(sessions: &mut [Session], before: &[TcpSocket]) {
    let verdict_is = |s: &Session, v| s.outcome.as_ref().is_some_and(|o| o.verdict == v);
    let needed = sessions
        .iter()
        .any(|s| verdict_is(s, Verdict::Reset) || (s.watched && verdict_is(s, Verdict::Silent)));
    if !needed {
        return;
    }
    let now = table::established().unwrap_or_default();
    let find = |s: &Session| {
        now.iter()
            .find(|t| (t.local, t.remote) == (s.local, s.remote))
    };
    for (s, old) in sessions.iter_mut().zip(before) {
        if verdict_is(s, Verdict::Reset) {
            if find(s).is_some() {
                s.add_note("Our socket is still open: our kernel did not take the RST");
            } else {
                s.add_note("Our kernel has reset its socket too, as kernel keepalive would: the application sees ECONNRESET");
            }
        } else if s.watched && verdict_is(s, Verdict::Silent) {
            let acked = |t: &TcpSocket| t.info.and_then(|i| i.bytes_acked);
            let moved = find(s)
                .and_then(acked)
                .zip(acked(old))
                .is_some_and(|(now, then)| now > then);
            if moved {
                s.acked_while_watched();
            }
        }
    }
}

/// Kernel queue of the capture: with `--all`, every connection's learning
/// ACK and answer can arrive in one burst, each packet costing the queue
/// about 1 KiB of kernel bookkeeping.
fn queue_bytes(connections: usize) -> usize {
    connections.saturating_mul(4096).clamp(256 << 10, 64 << 20)
}

/// The plan from the flags: `--wait`, or max(200 ms, 4 x smoothed RTT).
fn plan_for(args: &PokeArgs, socket: &TcpSocket) -> Plan {
    let srtt = socket.info.map_or(0, |i| i.srtt_us);
    let wait = match args.wait {
        Some(ms) => Duration::from_millis(ms),
        None => Duration::from_millis(200).max(Duration::from_micros(4 * u64::from(srtt))),
    };
    Plan {
        count: args.count,
        interval: Duration::from_secs_f64(args.interval),
        wait,
        one_byte: args.one_byte,
    }
}

fn seed() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    h.finish()
}

/// What kind of data `socket` has outstanding: resent at least once, or
/// held back by the peer's zero window (probed by the kernel), is stuck.
fn outstanding(socket: &TcpSocket) -> Outstanding {
    let info = socket.info.unwrap_or_default();
    match socket.data_outstanding() {
        false => Outstanding::No,
        _ if info.retransmits > 0 || info.probes > 0 => Outstanding::Stuck,
        _ => Outstanding::Fresh,
    }
}

fn start_sessions(
    args: &PokeArgs,
    sockets: &[TcpSocket],
    sender: &mut RawSender,
) -> Result<Vec<Session>, PokeError> {
    let now = Instant::now();
    let mut sessions = Vec::with_capacity(sockets.len());
    for socket in sockets {
        let mut s = Session::new(socket.local, socket.remote, plan_for(args, socket), seed());
        s.scope = socket.ifindex;
        if socket.md5 {
            s.refuse(
                "the connection has TCP-MD5 keys: the peer drops unsigned probes, so none was sent"
                    .into(),
            );
        } else {
            let sends = s.start(now, outstanding(socket));
            transmit(sender, &mut s, sends)?;
        }
        sessions.push(s);
    }
    Ok(sessions)
}

/// Send what a session asked for. A packet the kernel refuses to send ends
/// that session (a local firewall rule, a vanished route), not the run.
fn transmit(
    sender: &mut RawSender,
    session: &mut Session,
    sends: Vec<session::Send>,
) -> Result<(), PokeError> {
    for session::Send(spec) in sends {
        let (packet, dst) = spec.packet()?;
        match sender.send(&packet, dst, session.scope) {
            Ok(()) => {}
            Err(SendError::Send { reason, .. }) => {
                session.send_failed(reason);
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Feed captured frames and timers to the sessions until all are decided.
fn drive(
    sessions: &mut [Session],
    capture: &mut PacketSocket,
    link: LinkType,
    sender: &mut RawSender,
) -> Result<(), PokeError> {
    let stop = crate::signals::stop_flag();
    let index: HashMap<(Endpoint, Endpoint), usize> = sessions
        .iter()
        .enumerate()
        .map(|(i, s)| ((s.local, s.remote), i))
        .collect();
    while sessions.iter().any(|s| !s.done()) {
        if stop.load(Ordering::SeqCst) {
            sessions.iter_mut().for_each(Session::interrupt);
            break;
        }
        let now = Instant::now();
        let wait = sessions
            .iter()
            .filter_map(Session::deadline)
            .min()
            .map_or(MAX_WAIT, |d| d.saturating_duration_since(now).min(MAX_WAIT));
        let mut sends = Vec::new();
        capture.dispatch(wait, |frame| {
            sends.extend(dispatch(sessions, &index, link, frame.data, frame.time));
        })?;
        for (i, send) in sends {
            transmit(sender, &mut sessions[i], vec![send])?;
        }
        let now = Instant::now();
        for s in sessions.iter_mut() {
            let sends = s.on_timer(now);
            transmit(sender, s, sends)?;
        }
    }
    Ok(())
}

/// Hand one frame to the session it belongs to.
fn dispatch(
    sessions: &mut [Session],
    index: &HashMap<(Endpoint, Endpoint), usize>,
    link: LinkType,
    data: &[u8],
    time: crate::flow::Micros,
) -> Vec<(usize, session::Send)> {
    // A frame poke cannot read is not one of the answers it awaits.
    let Ok(Some(reply)) = reply::parse(link, data) else {
        return Vec::new();
    };
    let now = Instant::now();
    match reply {
        Reply::Tcp(r) => {
            let key = (r.seg.src, r.seg.dst);
            let mine: Vec<usize> = [index.get(&key), index.get(&(key.1, key.0))]
                .into_iter()
                .flatten()
                .copied()
                .collect();
            // A segment one session sent is only that session's business.
            let owner = mine.iter().copied().find(|&i| sessions[i].sent_this(&r));
            let targets = owner.map_or(mine, |i| vec![i]);
            targets
                .into_iter()
                .flat_map(|i| {
                    let sends = sessions[i].on_segment(&r, time, now);
                    sends.into_iter().map(move |send| (i, send))
                })
                .collect()
        }
        Reply::Icmp(e) => {
            if let Some(&i) = index.get(&(e.about_src, e.about_dst)) {
                sessions[i].on_icmp(&e);
            }
            Vec::new()
        }
    }
}
