//! Which connections to poke: `HOST:PORT`, `[IPV6]:PORT`, `HOST`, or every
//! one (`--all`), narrowed by `--local`; and the network namespace to act in.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

use crate::wire::Endpoint;

/// A bad target argument.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("'{0}' is not HOST, HOST:PORT or [IPV6]:PORT")]
    Syntax(String),
    #[error("cannot resolve '{host}': {reason}")]
    Resolve { host: String, reason: String },
    #[error("name a peer (HOST or HOST:PORT) or give --all")]
    Missing,
}

/// One side's address and optional port.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Side {
    text: String,
    ips: Vec<u128>,
    port: Option<u16>,
}

impl Side {
    fn parse(text: &str) -> Result<Side, TargetError> {
        let syntax = || TargetError::Syntax(text.to_string());
        if let Ok(addr) = text.parse::<SocketAddr>() {
            return Ok(Side::of(text, vec![addr.ip()], Some(addr.port())));
        }
        if let Ok(ip) = text
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            return Ok(Side::of(text, vec![ip], None));
        }
        let (host, port) = match text.rsplit_once(':') {
            Some((h, p)) => (h, Some(p.parse::<u16>().map_err(|_| syntax())?)),
            None => (text, None),
        };
        if host.is_empty() || host.contains(':') {
            return Err(syntax());
        }
        let ips: Vec<IpAddr> = (host, 0)
            .to_socket_addrs()
            .map_err(|e| TargetError::Resolve {
                host: host.to_string(),
                reason: e.to_string(),
            })?
            .map(|a| a.ip())
            .collect();
        Ok(Side::of(text, ips, port))
    }

    fn of(text: &str, ips: Vec<IpAddr>, port: Option<u16>) -> Side {
        Side {
            text: text.to_string(),
            ips: ips
                .into_iter()
                .map(|ip| Endpoint::from(SocketAddr::new(ip, 0)).ip)
                .collect(),
            port,
        }
    }

    fn matches(&self, e: Endpoint) -> bool {
        self.ips.contains(&e.ip) && self.port.is_none_or(|p| p == e.port)
    }
}

/// The connections a run is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    remote: Option<Side>,
    local: Option<Side>,
}

impl Target {
    pub fn parse(
        remote: Option<&str>,
        local: Option<&str>,
        all: bool,
    ) -> Result<Target, TargetError> {
        let remote = match (remote, all) {
            (Some(text), _) => Some(Side::parse(text)?),
            (None, true) => None,
            (None, false) => return Err(TargetError::Missing),
        };
        let local = local.map(Side::parse).transpose()?;
        Ok(Target { remote, local })
    }

    pub fn matches(&self, local: Endpoint, remote: Endpoint) -> bool {
        self.remote.as_ref().is_none_or(|r| r.matches(remote))
            && self.local.as_ref().is_none_or(|l| l.matches(local))
    }

    /// For the "no such connection" message.
    pub fn describe(&self) -> String {
        let to = self
            .remote
            .as_ref()
            .map_or("at all".to_string(), |r| format!("to {}", r.text));
        match &self.local {
            Some(l) => format!("{to} from {}", l.text),
            None => to,
        }
    }

    /// The capture filter: the peer's TCP segments both ways, and ICMP
    /// errors (which come from routers, so any ICMP).
    pub fn bpf(&self) -> String {
        let Some(remote) = &self.remote else {
            return "tcp or icmp or icmp6".into();
        };
        let hosts: Vec<String> = remote
            .ips
            .iter()
            .map(|&ip| format!("host {}", Endpoint { ip, port: 0 }.socket_addr().ip()))
            .collect();
        let mut tcp = format!("tcp and ({})", hosts.join(" or "));
        if let Some(port) = remote.port {
            tcp.push_str(&format!(" and port {port}"));
        }
        format!("({tcp}) or icmp or icmp6")
    }
}

/// Move this thread (the only one yet) into a network namespace: a name
/// from `ip netns` (/run/netns/NAME), a process id, or a path.
pub fn enter_netns(name: &str) -> Result<(), String> {
    let path = if name.chars().all(|c| c.is_ascii_digit()) {
        format!("/proc/{name}/ns/net")
    } else if name.contains('/') {
        name.to_string()
    } else {
        format!("/run/netns/{name}")
    };
    let file = std::fs::File::open(&path).map_err(|e| format!("{path}: {e}"))?;
    nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| match e {
        nix::errno::Errno::EPERM => "needs CAP_SYS_ADMIN: run as root".to_string(),
        e => format!("{path}: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(s: &str) -> Endpoint {
        Endpoint::from(s.parse::<SocketAddr>().unwrap())
    }

    #[test]
    fn host_and_port_match_only_that_peer() {
        let t = Target::parse(Some("192.0.2.2:5432"), None, false).unwrap();
        assert!(t.matches(ep("192.0.2.1:40000"), ep("192.0.2.2:5432")));
        assert!(!t.matches(ep("192.0.2.1:40000"), ep("192.0.2.2:5433")));
        assert!(!t.matches(ep("192.0.2.1:40000"), ep("192.0.2.3:5432")));
    }

    #[test]
    fn host_alone_matches_every_port() {
        let t = Target::parse(Some("192.0.2.2"), None, false).unwrap();
        assert!(t.matches(ep("192.0.2.1:1"), ep("192.0.2.2:9")));
        let t6 = Target::parse(Some("2001:db8::2"), None, false).unwrap();
        assert!(t6.matches(ep("[2001:db8::1]:1"), ep("[2001:db8::2]:9")));
    }

    #[test]
    fn bracketed_ipv6_with_port() {
        let t = Target::parse(Some("[2001:db8::2]:443"), None, false).unwrap();
        assert!(t.matches(ep("[2001:db8::1]:1"), ep("[2001:db8::2]:443")));
        assert_eq!(
            t.bpf(),
            "(tcp and (host 2001:db8::2) and port 443) or icmp or icmp6"
        );
    }

    #[test]
    fn ipv4_target_matches_a_dual_stack_socket() {
        // An AF_INET6 socket carrying IPv4 lists ::ffff:192.0.2.2.
        let t = Target::parse(Some("192.0.2.2:80"), None, false).unwrap();
        assert!(t.matches(ep("[::ffff:192.0.2.1]:1"), ep("[::ffff:192.0.2.2]:80")));
    }

    #[test]
    fn local_narrows_the_choice() {
        let t = Target::parse(Some("192.0.2.2"), Some("192.0.2.1:40312"), false).unwrap();
        assert!(t.matches(ep("192.0.2.1:40312"), ep("192.0.2.2:80")));
        assert!(!t.matches(ep("192.0.2.1:40313"), ep("192.0.2.2:80")));
        assert_eq!(t.describe(), "to 192.0.2.2 from 192.0.2.1:40312");
    }

    #[test]
    fn all_matches_everything() {
        let t = Target::parse(None, None, true).unwrap();
        assert!(t.matches(ep("127.0.0.1:1"), ep("127.0.0.1:2")));
        assert_eq!(t.bpf(), "tcp or icmp or icmp6");
    }

    #[test]
    fn bad_targets_are_named() {
        assert_eq!(
            Target::parse(Some("192.0.2.2:http"), None, false),
            Err(TargetError::Syntax("192.0.2.2:http".into()))
        );
        assert_eq!(Target::parse(None, None, false), Err(TargetError::Missing));
        assert!(matches!(
            Target::parse(Some("192.0.2.2:99999"), None, false),
            Err(TargetError::Syntax(_))
        ));
    }
}
