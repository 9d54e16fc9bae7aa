//! Choosing a server by SNI, as Envoy matches a filter chain's `server_names`: an exact name
//! first, then the longest `*.suffix` (which matches subdomains at any depth, so
//! `*.example.com` takes `a.b.example.com`), then a `*` server, which also takes a ClientHello
//! without SNI. Anything else has no server and is refused.

use std::collections::HashMap;

use super::error::{GatewayTlsError, ServerProblem};

/// One entry of `servers[].hosts`, normalised.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Host {
    Exact(String),
    /// The suffix with its leading dot: `.example.com` for `*.example.com`.
    Suffix(String),
    Any,
}

impl Host {
    fn key(&self) -> &str {
        match self {
            Host::Exact(h) | Host::Suffix(h) => h,
            Host::Any => "*",
        }
    }
}

pub(super) fn parse_hosts(hosts: &[String]) -> Result<Vec<Host>, ServerProblem> {
    if hosts.is_empty() {
        return Err(ServerProblem::NoHosts);
    }
    let mut out: Vec<Host> = Vec::with_capacity(hosts.len());
    for raw in hosts {
        let host = parse_host(raw)?;
        if !out.contains(&host) {
            out.push(host);
        }
    }
    Ok(out)
}

fn parse_host(raw: &str) -> Result<Host, ServerProblem> {
    let bad = |reason| ServerProblem::Host {
        host: raw.to_string(),
        reason,
    };
    // `namespace/host`: the namespace selects which VirtualServices may bind, not SNI.
    let name = raw.split_once('/').map_or(raw, |(_, h)| h);
    let name = name.to_ascii_lowercase();
    if name == "*" {
        return Ok(Host::Any);
    }
    let (suffix, wildcard) = match name.strip_prefix('*') {
        Some(rest) => (rest, true),
        None => (name.as_str(), false),
    };
    // A fully qualified `name.` is the same name; SNI never carries the dot.
    let suffix = suffix.strip_suffix('.').unwrap_or(suffix);
    if wildcard && !suffix.starts_with('.') {
        return Err(bad(
            "a wildcard must be a whole first label, as in *.example.com",
        ));
    }
    let labels = suffix.strip_prefix('.').unwrap_or(suffix);
    if labels.is_empty() {
        return Err(bad("empty host name"));
    }
    let valid = labels.split('.').all(|l| {
        !l.is_empty()
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    if !valid {
        return Err(bad(
            "not a DNS name: use dot-separated labels of letters, digits and '-'",
        ));
    }
    Ok(if wildcard {
        Host::Suffix(suffix.to_string())
    } else {
        Host::Exact(suffix.to_string())
    })
}

#[derive(Debug, Default)]
pub(super) struct HostRouter {
    exact: HashMap<String, usize>,
    /// Longest suffix first, so the first match is the most specific.
    suffixes: Vec<(String, usize)>,
    any: Option<usize>,
}

impl HostRouter {
    /// `servers[i]` holds the hosts of server `i`.
    pub(super) fn new(servers: &[Vec<Host>]) -> Result<Self, GatewayTlsError> {
        let mut router = HostRouter::default();
        let mut owner: HashMap<String, usize> = HashMap::new();
        for (i, hosts) in servers.iter().enumerate() {
            for host in hosts {
                if let Some(&first) = owner.get(host.key()) {
                    return Err(GatewayTlsError::DuplicateHost {
                        host: match host {
                            Host::Suffix(s) => format!("*{s}"),
                            other => other.key().to_string(),
                        },
                        first,
                        second: i,
                    });
                }
                owner.insert(host.key().to_string(), i);
                match host {
                    Host::Exact(h) => {
                        router.exact.insert(h.clone(), i);
                    }
                    Host::Suffix(s) => router.suffixes.push((s.clone(), i)),
                    Host::Any => router.any = Some(i),
                }
            }
        }
        router
            .suffixes
            .sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.1.cmp(&b.1)));
        Ok(router)
    }

    /// `sni` must already be lowercased.
    pub(super) fn select(&self, sni: Option<&str>) -> Option<usize> {
        let Some(sni) = sni else {
            return self.any;
        };
        if let Some(&i) = self.exact.get(sni) {
            return Some(i);
        }
        self.suffixes
            .iter()
            .find(|(suffix, _)| sni.len() > suffix.len() && sni.ends_with(suffix.as_str()))
            .map(|&(_, i)| i)
            .or(self.any)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(servers: &[&[&str]]) -> HostRouter {
        let parsed: Vec<Vec<Host>> = servers
            .iter()
            .map(|hs| {
                let hs: Vec<String> = hs.iter().map(|h| h.to_string()).collect();
                parse_hosts(&hs).expect("valid hosts")
            })
            .collect();
        HostRouter::new(&parsed).expect("no duplicates")
    }

    #[test]
    fn exact_then_longest_suffix_then_any() {
        let r = router(&[
            &["*.example.com"],
            &["ns/A.example.com"],
            &["*.b.example.com"],
            &["*"],
        ]);
        assert_eq!(r.select(Some("a.example.com")), Some(1));
        assert_eq!(
            parse_host("A.Example.com.").ok(),
            Some(Host::Exact("a.example.com".into()))
        );
        assert_eq!(r.select(Some("x.example.com")), Some(0));
        assert_eq!(r.select(Some("x.y.example.com")), Some(0));
        assert_eq!(r.select(Some("x.b.example.com")), Some(2));
        assert_eq!(r.select(Some("b.example.com")), Some(0));
        assert_eq!(r.select(Some("example.com")), Some(3));
        assert_eq!(r.select(None), Some(3));
    }

    #[test]
    fn without_any_unmatched_is_refused() {
        let r = router(&[&["*.example.com", "example.org"]]);
        assert_eq!(r.select(Some("example.org")), Some(0));
        assert_eq!(r.select(Some("example.com")), None);
        assert_eq!(r.select(Some("a.example.org")), None);
        assert_eq!(r.select(None), None);
    }

    #[test]
    fn invalid_hosts_are_errors() {
        for bad in [
            "",
            "ns/",
            "a*.example.com",
            "*example.com",
            "a..b",
            "*.",
            "a b",
            "a.b..",
        ] {
            assert!(parse_host(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn a_host_in_two_servers_is_an_error() {
        let parsed = vec![
            vec![Host::Suffix(".example.com".into())],
            vec![Host::Suffix(".example.com".into())],
        ];
        let err = HostRouter::new(&parsed).expect_err("duplicate");
        assert!(err.to_string().contains("*.example.com"), "{err}");
    }
}
