//! Which of the capabilities kaprobe needs this process lacks, so that a
//! permission error can say exactly what is missing (capabilities(7)).
//!
//! Capturing and raw sending need CAP_NET_RAW, and libpcap wants
//! CAP_NET_ADMIN for its interface settings; root has both, and so does the
//! binary after `setcap cap_net_raw,cap_net_admin+ep`.

/// Capability bit numbers (linux/capability.h).
const NEEDED: [(u32, &str); 2] = [(13, "CAP_NET_RAW"), (12, "CAP_NET_ADMIN")];

/// The fix, for every message that needs it.
pub const FIX: &str =
    "run as root or `sudo setcap cap_net_raw,cap_net_admin+ep $(command -v kaprobe)`";

/// The effective capability set from /proc/self/status, if it can be read.
fn effective() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_cap_eff(&status)
}

fn parse_cap_eff(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("CapEff:"))?;
    u64::from_str_radix(line.trim_start_matches("CapEff:").trim(), 16).ok()
}

fn missing_from(eff: u64) -> Vec<&'static str> {
    NEEDED
        .iter()
        .filter(|(bit, _)| eff & (1 << bit) == 0)
        .map(|(_, name)| *name)
        .collect()
}

/// "missing CAP_NET_RAW" (or both), or "" when none is missing or the set
/// cannot be read.
pub fn missing() -> String {
    let names = effective().map(missing_from).unwrap_or_default();
    if names.is_empty() {
        String::new()
    } else {
        format!(" (missing {})", names.join(" and "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_has_what_kaprobe_needs() {
        assert!(missing_from(0x1ff_ffff_ffff).is_empty());
    }

    #[test]
    fn file_capabilities_raw_and_admin_are_enough() {
        assert!(missing_from((1 << 12) | (1 << 13)).is_empty());
    }

    #[test]
    fn an_ordinary_user_misses_both() {
        assert_eq!(missing_from(0), ["CAP_NET_RAW", "CAP_NET_ADMIN"]);
        assert_eq!(missing_from(1 << 13), ["CAP_NET_ADMIN"]);
    }

    #[test]
    fn cap_eff_is_read_from_proc_status() {
        let status = "Name:\tkaprobe\nCapInh:\t0000000000000000\nCapEff:\t0000000000003000\n";
        assert_eq!(parse_cap_eff(status), Some(0x3000));
    }
}
