//! The stop flag `analyze`, `sniff` and `poke` watch as they work: set by
//! SIGINT (Ctrl-C), SIGTERM or SIGHUP, so that the command ends its work and
//! still reports what it found. Ctrl-C pressed a second time, while that
//! report is being made, ends the process at once with status 130, as the
//! shell would.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

/// Exit status after a second SIGINT: 128 + the signal's number.
pub const INTERRUPTED_TWICE: i32 = 130;

/// A flag the signals above set. Without their handlers (if they cannot be
/// installed), a signal simply ends the process, as it would anyway.
pub fn stop_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    // Before the flag itself: a signal's actions run in the order they were
    // registered, so this sees the flag as an earlier SIGINT left it.
    let _ = signal_hook::flag::register_conditional_shutdown(
        SIGINT,
        INTERRUPTED_TWICE,
        Arc::clone(&flag),
    );
    for signal in [SIGINT, SIGTERM, SIGHUP] {
        let _ = signal_hook::flag::register(signal, Arc::clone(&flag));
    }
    flag
}
