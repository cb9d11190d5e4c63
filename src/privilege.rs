//! kaprobe's privileges: which of the capabilities it needs this process
//! lacks, so that a permission error can say exactly what is missing
//! (capabilities(7)), and giving up root once a capture is open (`sniff -Z`).
//!
//! Capturing and raw sending need CAP_NET_RAW, and libpcap wants
//! CAP_NET_ADMIN for its interface settings; root has both, and so does the
//! binary after `setcap cap_net_raw,cap_net_admin+ep`.

use std::ffi::CString;

use nix::errno::Errno;
use nix::unistd::{geteuid, initgroups, setgid, setuid, Gid, Uid, User};

/// Capability bit numbers (linux/capability.h).
pub const NET_RAW: (u32, &str) = (13, "CAP_NET_RAW");
pub const NET_ADMIN: (u32, &str) = (12, "CAP_NET_ADMIN");
/// What capturing through libpcap needs.
pub const CAPTURE: [(u32, &str); 2] = [NET_RAW, NET_ADMIN];

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

fn missing_from(eff: u64, needed: &[(u32, &'static str)]) -> Vec<&'static str> {
    needed
        .iter()
        .filter(|(bit, _)| eff & (1 << bit) == 0)
        .map(|(_, name)| *name)
        .collect()
}

/// What a permission error says about `needed`, naming each capability once:
/// "missing CAP_NET_RAW and CAP_NET_ADMIN" when all are missing, "missing
/// CAP_NET_ADMIN (needs CAP_NET_RAW and CAP_NET_ADMIN)" when some are, and
/// "needs ..." when none is (another cause) or the set cannot be read.
pub fn lacking(needed: &[(u32, &'static str)]) -> String {
    lacking_in(effective(), needed)
}

fn lacking_in(effective: Option<u64>, needed: &[(u32, &'static str)]) -> String {
    let names = |list: &[&str]| list.join(" and ");
    let all: Vec<&str> = needed.iter().map(|(_, name)| *name).collect();
    let missing = effective.map_or(Vec::new(), |eff| missing_from(eff, needed));
    match missing.len() {
        0 => format!("needs {}", names(&all)),
        n if n == all.len() => format!("missing {}", names(&missing)),
        _ => format!("missing {} (needs {})", names(&missing), names(&all)),
    }
}

/// The user `sniff -Z` runs as once the capture is open, looked up before it
/// opens so that a misspelt name fails before anything is captured.
#[derive(Debug, Clone)]
pub struct Unprivileged {
    name: String,
    uid: Uid,
    gid: Gid,
}

/// Why kaprobe could not give up root for `-Z`.
#[derive(Debug, thiserror::Error)]
pub enum RelinquishError {
    #[error("no user named '{0}' for -Z: give an existing user, e.g. nobody")]
    NoSuchUser(String),
    #[error("cannot look up user '{name}' for -Z: {errno}")]
    Lookup { name: String, errno: Errno },
    #[error("-Z {0} needs kaprobe started as root, and it runs as uid {1}: drop -Z, or run it with sudo")]
    NotRoot(String, Uid),
    #[error(
        "cannot run as user '{name}' ({step}: {errno}): kaprobe stopped rather than go on as root"
    )]
    Switch {
        name: String,
        step: &'static str,
        errno: Errno,
    },
    #[error("cannot give {path} to user '{name}' for -Z: {reason}")]
    Give {
        name: String,
        path: String,
        reason: String,
    },
}

impl Unprivileged {
    pub fn lookup(name: &str) -> Result<Unprivileged, RelinquishError> {
        if !geteuid().is_root() {
            return Err(RelinquishError::NotRoot(name.to_string(), geteuid()));
        }
        let user = User::from_name(name)
            .map_err(|errno| RelinquishError::Lookup {
                name: name.to_string(),
                errno,
            })?
            .ok_or_else(|| RelinquishError::NoSuchUser(name.to_string()))?;
        Ok(Unprivileged {
            name: name.to_string(),
            uid: user.uid,
            gid: user.gid,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Make `path` this user's, as tcpdump does with the `-w` file it opened
    /// as root: the user can then rewrite it, and it is not left to root.
    pub fn give(&self, path: &std::path::Path) -> Result<(), RelinquishError> {
        std::os::unix::fs::chown(path, Some(self.uid.as_raw()), Some(self.gid.as_raw())).map_err(
            |e| RelinquishError::Give {
                name: self.name.clone(),
                path: path.display().to_string(),
                reason: e.to_string(),
            },
        )
    }

    /// Become this user: its groups, then its gid, then its uid, in the
    /// order that keeps the right to make the next change. Leaving uid 0
    /// clears every capability (capabilities(7)), so nothing of root is left
    /// to the code that reads packets. glibc applies each call to every
    /// thread of the process.
    pub fn become_user(&self) -> Result<(), RelinquishError> {
        let fail = |step: &'static str| {
            move |errno| RelinquishError::Switch {
                name: self.name.clone(),
                step,
                errno,
            }
        };
        let name =
            CString::new(self.name.as_str()).map_err(|_| fail("initgroups")(Errno::EINVAL))?;
        initgroups(&name, self.gid).map_err(fail("initgroups"))?;
        setgid(self.gid).map_err(fail("setgid"))?;
        setuid(self.uid).map_err(fail("setuid"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_has_what_kaprobe_needs() {
        assert!(missing_from(0x1ff_ffff_ffff, &CAPTURE).is_empty());
    }

    #[test]
    fn file_capabilities_raw_and_admin_are_enough() {
        assert!(missing_from((1 << 12) | (1 << 13), &CAPTURE).is_empty());
    }

    #[test]
    fn an_ordinary_user_misses_both() {
        assert_eq!(missing_from(0, &CAPTURE), ["CAP_NET_RAW", "CAP_NET_ADMIN"]);
        assert_eq!(missing_from(1 << 13, &CAPTURE), ["CAP_NET_ADMIN"]);
        assert_eq!(missing_from(1 << 12, &[NET_RAW]), ["CAP_NET_RAW"]);
    }

    #[test]
    fn the_error_names_each_capability_once() {
        let none = lacking_in(Some(0), &CAPTURE);
        assert_eq!(none, "missing CAP_NET_RAW and CAP_NET_ADMIN");
        let raw_only = lacking_in(Some(1 << 13), &CAPTURE);
        assert_eq!(
            raw_only,
            "missing CAP_NET_ADMIN (needs CAP_NET_RAW and CAP_NET_ADMIN)"
        );
        // Root, or a set that cannot be read: the failure had another cause.
        assert_eq!(
            lacking_in(Some(u64::MAX), &CAPTURE),
            "needs CAP_NET_RAW and CAP_NET_ADMIN"
        );
        assert_eq!(lacking_in(None, &[NET_RAW]), "needs CAP_NET_RAW");
    }

    #[test]
    fn cap_eff_is_read_from_proc_status() {
        let status = "Name:\tkaprobe\nCapInh:\t0000000000000000\nCapEff:\t0000000000003000\n";
        assert_eq!(parse_cap_eff(status), Some(0x3000));
    }
}
