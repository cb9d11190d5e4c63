//! `kaprobe sniff`: a live interface -> engine -> events as they happen, and
//! the report at the end. Only the packet source differs from `analyze`.

use std::cell::Cell;
use std::io::{self, IsTerminal, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::analyze::RunEnd;
use crate::capture::{
    check_postrotate, check_time_pattern, choose_filter, filter_expr, link_type_by_name,
    list_interfaces, list_link_types, resolve_interface, snapshot_length, wall_clock, LiveCapture,
    LiveError, LiveOptions, SaveOptions,
};
use crate::cli::SniffArgs;
use crate::engine::{Engine, FrameRef, Live, Output};
use crate::flow::Micros;
use crate::privilege::Unprivileged;
use crate::report::text::status_line;
use crate::report::Reporter;

/// The longest wait for packets when no self-pipe can end it for a signal:
/// then the loop wakes this often to look at the flags (four times a second
/// on a quiet interface, where it otherwise sleeps, as tcpdump does).
const TICK: Duration = Duration::from_millis(250);

/// The longest wait for packets in any case (the engine's sweep for silent
/// connections comes every minute anyway).
const LONGEST_WAIT: Duration = Duration::from_secs(60);

/// Said once, as soon as it happens: otherwise a capture with too small a
/// `-s` would show nothing at all until its report.
fn cut_short(snaplen: i32) -> String {
    format!(
        "packets that the snapshot length ({snaplen} bytes) cut short before the end of their fixed \
         TCP header are left out; -s 160, the default, keeps every header kaprobe reads"
    )
}

/// `stop` (Ctrl-C, SIGTERM) ends the capture; the report follows.
pub fn run(args: &SniffArgs, stop: &AtomicBool, out: &mut dyn Write) -> io::Result<RunEnd> {
    if args.list_interfaces {
        return print_list(list_interfaces(), out);
    }
    if args.list_link_types {
        let listed =
            resolve_interface(args.interface.as_deref()).and_then(|iface| list_link_types(&iface));
        return print_list(listed, out);
    }
    let (opts, mut cap) = match start(args) {
        Ok(started) => started,
        Err(e) => return Ok(RunEnd { errors: vec![e] }),
    };
    // Before the line below, which tells a script that SIGUSR1 is safe.
    let signals = Signals::register(&mut cap);
    // Like tcpdump, say on stderr what is being captured once it is.
    eprintln!(
        "kaprobe: listening on {}, link-type {}, snapshot length {} bytes, filter '{}'",
        opts.interface,
        cap.link_name(),
        opts.snaplen,
        filter_expr(opts.filter.as_deref())
    );
    let live = Live::from_seconds(args.grace, args.stall_after, args.idle_timeout);
    let mut engine = Engine::live(live);
    let mut reporter = Reporter::live(&args.output, opts.interface.clone(), out);
    let deadline = args
        .duration
        .map(|s| Instant::now() + Duration::from_secs_f64(s.max(0.0)));
    let mut errors = Vec::new();
    let link = cap.link();
    // Packets reach the engine up to this late, so its clock runs that far
    // behind: a probe's answer still in the kernel is not yet overdue.
    let lag = cap.delivery_delay().as_micros() as Micros;
    let events = Cell::new(0u64);
    let full = || args.count.is_some_and(|n| events.get() >= n);
    // Stopped by time or signal (not by -c, an error or a closed output):
    // what was captured before the stop is still to be read.
    let mut drain = true;
    let mut said_cut_short = false;
    loop {
        let stopped = stop.load(Ordering::SeqCst) || signals.stop.load(Ordering::SeqCst);
        if stopped || deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        if full() || reporter.failed() {
            drain = false;
            break;
        }
        let mut emit = |o: Output| {
            let shown = matches!(o, Output::Event(e) if reporter.shows(e));
            events.set(events.get() + u64::from(shown));
            reporter.output(o);
        };
        let wait = packet_wait(engine.due().saturating_add(lag), deadline, signals.wake)
            .min(cap.rotation_in().unwrap_or(Duration::MAX));
        let got = cap.dispatch(wait, |frame| {
            // -c: the rest of the batch is not looked at (nor saved)
            if full() {
                return false;
            }
            let at = FrameRef {
                file: 0,
                frame: frame.number,
                time: frame.time,
            };
            engine.frame(at, link, frame.data, frame.wire_len, &mut emit);
            true
        });
        match got {
            // After each block as well as after a quiet wait: a probe's
            // grace runs out on the clock, not only on the next packet.
            Ok(_) => engine.tick(wall_clock().saturating_sub(lag), &mut emit),
            Err(e) => {
                failure(e, &mut errors);
                drain = false;
                break;
            }
        }
        match cap.rotate_if_old() {
            // -G -W: the last file's period is over; end as at --duration.
            Ok(true) => {
                let n = args.file_count.unwrap_or_default();
                let _ = writeln!(io::stderr(), "kaprobe: -W {n}: the last file is complete");
                break;
            }
            Ok(false) => {}
            Err(e) => {
                failure(e, &mut errors);
                drain = false;
                break;
            }
        }
        reporter.flush();
        if !said_cut_short && engine.totals.cut_short > 0 {
            said_cut_short = true;
            let _ = writeln!(io::stderr(), "kaprobe: {}", cut_short(opts.snaplen));
        }
        if signals.status.swap(false, Ordering::Relaxed) {
            let open = engine.table_len();
            let line = status_line(&engine.totals, open, &cap.stats());
            // Not eprintln!: a closed stderr must not end the capture.
            let _ = writeln!(io::stderr(), "kaprobe: {line}");
        }
    }
    if drain {
        // The kernel hands over a block of packets at most `lag` after its
        // first one: read for twice that, and keep what came before the stop.
        // A packet from after the stop means everything before it is in.
        let stopped = wall_clock();
        let until = Instant::now() + 2 * cap.delivery_delay();
        let mut emit = |o: Output| reporter.output(o);
        let mut after = false;
        while !after {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let got = cap.dispatch(left, |frame| {
                after |= frame.time > stopped;
                if after {
                    return false;
                }
                let at = FrameRef {
                    file: 0,
                    frame: frame.number,
                    time: frame.time,
                };
                engine.frame(at, link, frame.data, frame.wire_len, &mut emit);
                true
            });
            if let Err(e) = got {
                failure(e, &mut errors);
                break;
            }
        }
    }
    // A failed write has already stopped the loop and been said once.
    let (closed, postrotate) = cap.close_saved();
    if let (true, Err(e)) = (errors.is_empty(), closed) {
        failure(e, &mut errors);
    }
    let stats = cap.stats();
    engine.finish(wall_clock(), &mut |o| reporter.output(o));
    reporter.set_capture_stats(stats);
    let reported = reporter.finish(&engine.totals, &errors);
    // The stop that ended the capture is spent: a new one ends the wait.
    // Awaited even when the output failed: the files are kept all the same.
    signals.stop.store(false, Ordering::SeqCst);
    postrotate.wait(&signals.stop);
    reported.map(|()| RunEnd { errors })
}

/// Keep `e` to report at the end, unless it is the reader of `-w -` going
/// away: that ends the capture, as a closed pipe ends any report, without
/// being a failure.
fn failure(e: LiveError, errors: &mut Vec<String>) {
    if !matches!(e, LiveError::StdoutClosed) {
        errors.push(e.to_string());
    }
}

/// `-D` and `-L`: the lines, or the one-line error.
fn print_list(list: Result<Vec<String>, LiveError>, out: &mut dyn Write) -> io::Result<RunEnd> {
    match list {
        Ok(lines) => {
            for line in lines {
                writeln!(out, "{line}")?;
            }
            Ok(RunEnd { errors: Vec::new() })
        }
        Err(e) => Ok(RunEnd {
            errors: vec![e.to_string()],
        }),
    }
}

/// What signals ask of the capture loop.
struct Signals {
    /// SIGINT, SIGTERM, SIGHUP: stop. `main`'s flag ([`crate::signals`]) is
    /// set by the same signals; this one keeps `run` whole for a caller whose
    /// `stop` is not tied to them.
    stop: Arc<AtomicBool>,
    /// SIGUSR1: print the counters so far on stderr, as tcpdump does.
    status: Arc<AtomicBool>,
    /// Each of these signals also ends the wait for packets, through a
    /// self-pipe: the loop need not wake up to look at the flags.
    wake: bool,
}

impl Signals {
    fn register(cap: &mut LiveCapture) -> Signals {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
        let (stop, status) = (Arc::default(), Arc::default());
        // Without it, SIGUSR1 keeps its default action and ends the process.
        let _ = signal_hook::flag::register(SIGUSR1, Arc::clone(&status));
        for signal in [SIGINT, SIGTERM, SIGHUP] {
            let _ = signal_hook::flag::register(signal, Arc::clone(&stop));
        }
        // After the flags: a signal's handler runs its actions in the order
        // they were registered, so a wakeup finds its flag already set.
        let wake = UnixStream::pair().is_ok_and(|(read, write)| {
            let registered = [SIGINT, SIGTERM, SIGHUP, SIGUSR1]
                .into_iter()
                .all(|signal| {
                    let write = write.try_clone();
                    write.is_ok_and(|w| signal_hook::low_level::pipe::register(signal, w).is_ok())
                });
            let ready = registered && read.set_nonblocking(true).is_ok();
            if ready {
                cap.wake_on(read);
            }
            ready
        });
        Signals { stop, status, wake }
    }
}

/// How long to wait for packets: until `due` (wall-clock microseconds), when
/// the engine has something to judge without them, or the end of
/// `--duration`; without a self-pipe to `wake` the loop for a signal, no
/// longer than [`TICK`].
fn packet_wait(due: Micros, deadline: Option<Instant>, wake: bool) -> Duration {
    let until_due = due.saturating_sub(wall_clock()).max(0) as u64;
    let mut wait = Duration::from_micros(until_due).min(LONGEST_WAIT);
    if !wake {
        wait = wait.min(TICK);
    }
    if let Some(end) = deadline {
        wait = wait.min(end.saturating_duration_since(Instant::now()));
    }
    wait
}

/// The capture open and, with -Z, root given up; or the one-line error.
fn start(args: &SniffArgs) -> Result<(LiveOptions, LiveCapture), String> {
    if let Some(file) = &args.read {
        let file = file.display();
        return Err(format!(
            "sniff captures from an interface; to read {file}: kaprobe analyze {file} \
             (with --as-live, also the judgements sniff makes)"
        ));
    }
    let interface = resolve_interface(args.interface.as_deref()).map_err(|e| e.to_string())?;
    // Looked up before the capture opens: a misspelt user captures nothing.
    let user = args
        .relinquish_privileges
        .as_deref()
        .map(Unprivileged::lookup)
        .transpose()
        .map_err(|e| e.to_string())?;
    let words = (!args.filter.is_empty()).then(|| args.filter.join(" "));
    let filter = choose_filter(words, args.filter_file.as_deref())?;
    let link_type = args
        .link_type
        .as_deref()
        .map(link_type_by_name)
        .transpose()
        .map_err(|e| e.to_string())?;
    let opts = LiveOptions {
        interface,
        snaplen: snapshot_length(args.snaplen),
        buffer_bytes: args.buffer_size.map(|kib| kib.saturating_mul(1024)),
        promiscuous: !args.no_promiscuous_mode,
        filter,
        immediate: args.immediate_mode,
        // As tcpdump decides its read timeout: by where the output goes.
        watched: args.line_buffered || args.events_on_terminal(),
        link_type,
    };
    let save = save_options(args)?;
    let mut cap = LiveCapture::open(&opts).map_err(|e| e.to_string())?;
    let Some(user) = user else {
        if let Some(save) = save {
            cap.save_to(save).map_err(|e| e.to_string())?;
        }
        return Ok((opts, cap));
    };
    relinquish(args, &mut cap, save, &user)?;
    Ok((opts, cap))
}

/// `-Z USER`, as tcpdump does it: one `-w` file is opened as root and given
/// to USER; files that -C or -G start are all made by USER, the first too,
/// so that a directory USER cannot write to fails now rather than at the
/// first new file. The `-z` command must be one USER may run.
fn relinquish(
    args: &SniffArgs,
    cap: &mut LiveCapture,
    save: Option<SaveOptions>,
    user: &Unprivileged,
) -> Result<(), String> {
    match save {
        Some(save) if !args.rotates_files() => {
            let path = save.path.clone();
            cap.save_to(save).map_err(|e| e.to_string())?;
            if !args.packets_to_stdout() {
                user.give(&path).map_err(|e| e.to_string())?;
            }
            user.become_user().map_err(|e| e.to_string())?;
        }
        Some(save) => {
            user.become_user().map_err(|e| e.to_string())?;
            cap.save_to(save).map_err(|e| {
                format!(
                    "{e} (with -C or -G, user '{}' of -Z makes every file: \
                     give -w a directory that user can write to)",
                    user.name()
                )
            })?;
        }
        None => user.become_user().map_err(|e| e.to_string())?,
    }
    match &args.postrotate_command {
        Some(command) if check_postrotate(command).is_err() => Err(format!(
            "-z: user '{}' (-Z) may not run '{command}': give a program that user can run",
            user.name()
        )),
        _ => Ok(()),
    }
}

/// The `-w` options, checked before the capture opens (a mistake in them
/// would otherwise show only when a file closes, maybe hours later).
fn save_options(args: &SniffArgs) -> Result<Option<SaveOptions>, String> {
    let numbered = args.rotates_files();
    match (args.file_count, args.file_size, args.rotate_seconds) {
        (Some(_), None, None) => {
            return Err("-W counts the files that -C or -G start: give one of them".into())
        }
        (Some(_), Some(_), Some(_)) => {
            return Err("-W with both -C and -G: give -C -W for a ring of files, \
                 or -G -W to stop after that many periods"
                .into())
        }
        _ => {}
    }
    if args.postrotate_command.is_some() && !numbered {
        return Err("-z runs on each file that -C or -G closes: give one of them".into());
    }
    if let Some(command) = &args.postrotate_command {
        check_postrotate(command)?;
    }
    if args.packets_to_stdout() && numbered {
        return Err(
            "-C and -G start new files: give -w a file name, not '-' (standard output)".into(),
        );
    }
    if args.packets_to_stdout() && io::stdout().is_terminal() {
        return Err(
            "-w - would write binary pcap to the terminal: pipe it to a reader \
             (| wireshark -k -i -) or give -w a file name"
                .into(),
        );
    }
    if let (Some(path), Some(_)) = (&args.write, args.rotate_seconds) {
        check_time_pattern(path)?;
    }
    Ok(args.write.as_ref().map(|path| SaveOptions {
        path: path.clone(),
        file_size: args.file_size,
        file_count: args.file_count,
        every: args.rotate_seconds.map(|s| Duration::from_secs(s.into())),
        postrotate: args.postrotate_command.clone(),
    }))
}
