//! TCP load on 127.0.0.1 for the live benchmark of `kaprobe sniff`
//! (`bench/sniff.sh` runs it inside a network namespace of its own).
//!
//! One process plays both ends. It opens
//! - `--conns` data connections that carry small segments (`--payload` bytes,
//!   `TCP_NODELAY`, so one write is one segment) at a paced total packet rate,
//! - `--churn` loops that each open a connection, send one request, half-close
//!   and wait for the server's close, again and again (handshakes and FINs),
//! - `--idle` connections that send nothing and have kernel keepalive on
//!   (`TCP_KEEPIDLE` = `TCP_KEEPINTVL` = 1 s), so the kernel probes each one
//!   every second and sniff has keepalive events to report,
//!
//! and stops by itself after `--duration` seconds. The rate counts packets on
//! the wire, both directions: a controller thread reads the loopback
//! interface's packet counter and adjusts how many writes it takes per packet
//! (the peer's ACKs are partly delayed and merged, so the ratio drifts with the
//! load). `--rate 0` writes as fast as it can.
//!
//! Only 127.0.0.1 is ever used: the address is not an option.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

const LOOPBACK: Ipv4Addr = Ipv4Addr::LOCALHOST;
const TX_PACKETS: &str = "/sys/class/net/lo/statistics/tx_packets";
const MAX_CONNS: usize = 2000;
const MAX_DURATION_S: f64 = 600.0;
/// How often the controller re-measures packets per write.
const CONTROL: Duration = Duration::from_millis(100);

struct Args {
    rate: f64,
    duration: f64,
    conns: usize,
    churn: usize,
    idle: usize,
    payload: usize,
    senders: usize,
    port: u16,
}

fn usage() -> ! {
    eprintln!(
        "usage: loadgen [--rate PACKETS_PER_S (0 = unpaced)] [--duration S] [--conns N] \
         [--churn N] [--idle N] [--payload BYTES] [--senders N] [--port P]"
    );
    std::process::exit(2);
}

fn parse_args() -> Args {
    let mut a = Args {
        rate: 10_000.0,
        duration: 10.0,
        conns: 64,
        churn: 4,
        idle: 32,
        payload: 32,
        senders: 2,
        port: 5555,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| usage());
        let ok = match flag.as_str() {
            "--rate" => value.parse().map(|v| a.rate = v).is_ok(),
            "--duration" => value.parse().map(|v| a.duration = v).is_ok(),
            "--conns" => value.parse().map(|v| a.conns = v).is_ok(),
            "--churn" => value.parse().map(|v| a.churn = v).is_ok(),
            "--idle" => value.parse().map(|v| a.idle = v).is_ok(),
            "--payload" => value.parse().map(|v| a.payload = v).is_ok(),
            "--senders" => value.parse().map(|v| a.senders = v).is_ok(),
            "--port" => value.parse().map(|v| a.port = v).is_ok(),
            _ => false,
        };
        if !ok {
            usage();
        }
    }
    let bounded = a.rate >= 0.0
        && a.duration > 0.0
        && a.duration <= MAX_DURATION_S
        && a.conns >= 1
        && a.conns + a.churn + a.idle <= MAX_CONNS
        && (1..=1400).contains(&a.payload)
        && (1..=a.conns).contains(&a.senders);
    if !bounded {
        eprintln!(
            "loadgen: out of bounds: duration 0-{MAX_DURATION_S} s, at most {MAX_CONNS} \
             connections, payload 1-1400, 1 <= senders <= conns"
        );
        std::process::exit(2);
    }
    a
}

fn tx_packets() -> Option<u64> {
    std::fs::read_to_string(TX_PACKETS)
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Keepalive after 1 s of silence, then every 1 s (Linux `tcp(7)` options).
fn keepalive_1s(s: &TcpStream) -> std::io::Result<()> {
    let fd = s.as_raw_fd();
    let set = |level: libc::c_int, name: libc::c_int, v: libc::c_int| {
        // SAFETY: fd is an open socket owned by `s`; the value is a c_int of the given size.
        let r = unsafe {
            libc::setsockopt(
                fd,
                level,
                name,
                (&v as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if r == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    };
    set(libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1)?;
    set(libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, 1)?;
    set(libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, 1)?;
    set(libc::IPPROTO_TCP, libc::TCP_KEEPCNT, 5)
}

/// Server: every accepted connection is read until EOF, then closed.
fn serve(listener: TcpListener) {
    for conn in listener.incoming() {
        let Ok(mut conn) = conn else { continue };
        thread::spawn(move || {
            let mut buf = [0u8; 64 * 1024];
            while matches!(conn.read(&mut buf), Ok(n) if n > 0) {}
        });
    }
}

/// Writes to its connections in turn, `rate` writes/s in total
/// (`per_write` is the controller's packets-per-write estimate, as f64 bits).
fn send(
    mut conns: Vec<TcpStream>,
    payload: usize,
    packet_rate: f64,
    per_write: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    writes: Arc<AtomicU64>,
) {
    let buf = vec![0x6bu8; payload];
    let start = Instant::now();
    // Writes owed so far are integrated over time, since the rate per write changes.
    let mut owed = 0.0f64;
    let mut last = start;
    let mut next = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let due = if packet_rate > 0.0 {
            let now = Instant::now();
            let ppw = f64::from_bits(per_write.load(Ordering::Relaxed));
            owed += now.duration_since(last).as_secs_f64() * packet_rate / ppw;
            last = now;
            let due = owed as u64;
            owed -= due as f64;
            if due == 0 {
                thread::sleep(Duration::from_micros(200));
                continue;
            }
            // never more than 10 ms of writes in one burst
            due.min((packet_rate / ppw / 100.0) as u64 + 1)
        } else {
            64
        };
        for _ in 0..due {
            if conns[next].write_all(&buf).is_err() {
                stop.store(true, Ordering::Relaxed);
                break;
            }
            next = (next + 1) % conns.len();
        }
        writes.fetch_add(due, Ordering::Relaxed);
    }
}

/// Opens, sends one request, half-closes, waits for the server's FIN; again.
fn churn(addr: SocketAddr, stop: Arc<AtomicBool>, opened: Arc<AtomicU64>) {
    let mut buf = [0u8; 512];
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut s) = TcpStream::connect(addr) else {
            thread::sleep(Duration::from_millis(10));
            continue;
        };
        opened.fetch_add(1, Ordering::Relaxed);
        let _ = s.write_all(b"GET / churn\r\n\r\n");
        let _ = s.shutdown(Shutdown::Write);
        while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
        drop(s);
        thread::sleep(Duration::from_millis(20));
    }
}

fn main() {
    let args = parse_args();
    let listener = TcpListener::bind((LOOPBACK, args.port)).unwrap_or_else(|e| {
        eprintln!("loadgen: cannot listen on {LOOPBACK}:{}: {e}", args.port);
        std::process::exit(1);
    });
    let addr = listener
        .local_addr()
        .expect("bound listener has an address");
    thread::spawn(move || serve(listener));

    let connect = |what: &str| {
        TcpStream::connect(addr).unwrap_or_else(|e| {
            eprintln!("loadgen: {what} connection to {addr} failed: {e}");
            std::process::exit(1);
        })
    };
    let idle: Vec<TcpStream> = (0..args.idle)
        .map(|_| {
            let s = connect("idle");
            if let Err(e) = keepalive_1s(&s) {
                eprintln!("loadgen: cannot enable keepalive: {e}");
                std::process::exit(1);
            }
            s
        })
        .collect();
    let mut groups: Vec<Vec<TcpStream>> = (0..args.senders).map(|_| Vec::new()).collect();
    for i in 0..args.conns {
        let s = connect("data");
        let _ = s.set_nodelay(true);
        groups[i % args.senders].push(s);
    }

    let stop = Arc::new(AtomicBool::new(false));
    let writes = Arc::new(AtomicU64::new(0));
    let opened = Arc::new(AtomicU64::new(0));
    // a data segment and, about every other one, an ACK
    let per_write = Arc::new(AtomicU64::new(1.5f64.to_bits()));
    let tx_start = tx_packets();
    let start = Instant::now();
    let share = args.rate / args.senders as f64;
    let senders: Vec<_> = groups
        .into_iter()
        .map(|g| {
            let (pw, st, wr) = (per_write.clone(), stop.clone(), writes.clone());
            let payload = args.payload;
            thread::spawn(move || send(g, payload, share, pw, st, wr))
        })
        .collect();
    let churners: Vec<_> = (0..args.churn)
        .map(|_| {
            let (st, op) = (stop.clone(), opened.clone());
            thread::spawn(move || churn(addr, st, op))
        })
        .collect();

    let deadline = start + Duration::from_secs_f64(args.duration);
    let (mut last_tx, mut last_writes) = (tx_start, 0u64);
    while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
        thread::sleep(CONTROL.min(deadline.saturating_duration_since(Instant::now())));
        let (tx, w) = (tx_packets(), writes.load(Ordering::Relaxed));
        if let (Some(tx), Some(prev)) = (tx, last_tx) {
            let dw = w.saturating_sub(last_writes);
            if dw > 100 {
                let measured = (tx.saturating_sub(prev) as f64 / dw as f64).clamp(1.0, 3.0);
                let old = f64::from_bits(per_write.load(Ordering::Relaxed));
                per_write.store((0.5 * old + 0.5 * measured).to_bits(), Ordering::Relaxed);
            }
        }
        (last_tx, last_writes) = (tx, w);
    }
    stop.store(true, Ordering::Relaxed);
    for t in senders.into_iter().chain(churners) {
        let _ = t.join();
    }
    let secs = start.elapsed().as_secs_f64();
    let packets = match (tx_start, tx_packets()) {
        (Some(a), Some(b)) => (b - a).to_string(),
        _ => "?".into(),
    };
    let w = writes.load(Ordering::Relaxed);
    drop(idle);
    // one line for the script: key=value
    println!(
        "loadgen: seconds={secs:.2} writes={w} writes_per_s={:.0} lo_packets={packets} \
         churned={} idle_keepalive={} data_conns={}",
        w as f64 / secs,
        opened.load(Ordering::Relaxed),
        args.idle,
        args.conns
    );
}
