//! The capture rules as `iptables-restore` input: pure functions of [`Settings`] (to install)
//! and of `iptables-save` output (to remove), so every rule is checked by a unit test and
//! `strait init --dry-run` prints exactly what would be applied.

use std::fmt::Write as _;

use super::{INBOUND_PASSTHROUGH_SOURCE, PROXY_INBOUND_PORTS, Select, Settings};

/// The chains capture owns, in the order they are declared.
pub const CHAINS: [&str; 4] = [
    "ISTIO_INBOUND",
    "ISTIO_REDIRECT",
    "ISTIO_IN_REDIRECT",
    "ISTIO_OUTPUT",
];

/// The `iptables-restore --noflush` input that installs capture. Only the four chains above
/// and one jump each from `PREROUTING` and `OUTPUT` are added; other rules of the table stay.
pub fn install(s: &Settings) -> String {
    let mut out = String::from("*nat\n");
    for chain in CHAINS {
        let _ = writeln!(out, ":{chain} - [0:0]");
    }
    let _ = writeln!(
        out,
        "-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports {}",
        s.outbound_port
    );
    let _ = writeln!(
        out,
        "-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports {}",
        s.inbound_port
    );
    inbound(&mut out, s);
    outbound(&mut out, s);
    out.push_str("COMMIT\n");
    out
}

/// `PREROUTING` → `ISTIO_INBOUND`: connections arriving at the pod from elsewhere.
fn inbound(out: &mut String, s: &Settings) {
    if s.inbound_ports == Select::Only(Vec::new()) {
        // Nothing captured inbound: no jump at all, as istio-iptables with `-b ''`.
        return;
    }
    out.push_str("-A PREROUTING -p tcp -j ISTIO_INBOUND\n");
    let mut excluded: Vec<u16> = PROXY_INBOUND_PORTS.to_vec();
    excluded.extend(s.exclude_inbound_ports.iter().copied());
    dedup(&mut excluded);
    for p in &excluded {
        let _ = writeln!(out, "-A ISTIO_INBOUND -p tcp --dport {p} -j RETURN");
    }
    match &s.inbound_ports {
        Select::All => out.push_str("-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT\n"),
        Select::Only(ports) => {
            let mut ports = ports.clone();
            dedup(&mut ports);
            for p in ports.iter().filter(|p| !excluded.contains(p)) {
                let _ = writeln!(
                    out,
                    "-A ISTIO_INBOUND -p tcp --dport {p} -j ISTIO_IN_REDIRECT"
                );
            }
        }
    }
}

/// `OUTPUT` → `ISTIO_OUTPUT`: connections the pod's processes open. The order matters: the
/// first matching rule decides, and the proxy's own connections must never be captured as
/// outbound, or it would dial itself forever.
fn outbound(out: &mut String, s: &Settings) {
    out.push_str("-A OUTPUT -p tcp -j ISTIO_OUTPUT\n");
    let mut excluded_ports = s.exclude_outbound_ports.clone();
    dedup(&mut excluded_ports);
    for p in &excluded_ports {
        let _ = writeln!(out, "-A ISTIO_OUTPUT -p tcp --dport {p} -j RETURN");
    }
    // The proxy forwarding inbound traffic to its app.
    let _ = writeln!(
        out,
        "-A ISTIO_OUTPUT -o lo -s {INBOUND_PASSTHROUGH_SOURCE}/32 -j RETURN"
    );
    for (what, id) in [("uid", s.proxy_uid), ("gid", s.proxy_gid)] {
        // The proxy dialling its own pod's address: inbound traffic to itself.
        let _ = writeln!(
            out,
            "-A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -m owner --{what}-owner {id} -j ISTIO_IN_REDIRECT"
        );
        // The app's own loopback traffic (to 127.0.0.1 or its pod address) stays local.
        let _ = writeln!(
            out,
            "-A ISTIO_OUTPUT -o lo -m owner ! --{what}-owner {id} -j RETURN"
        );
        // Everything else the proxy sends: it has already been routed.
        let _ = writeln!(
            out,
            "-A ISTIO_OUTPUT -m owner --{what}-owner {id} -j RETURN"
        );
    }
    out.push_str("-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN\n");
    let mut included_ports = s.include_outbound_ports.clone();
    dedup(&mut included_ports);
    for p in included_ports
        .iter()
        .filter(|p| !excluded_ports.contains(p))
    {
        let _ = writeln!(out, "-A ISTIO_OUTPUT -p tcp --dport {p} -j ISTIO_REDIRECT");
    }
    let mut excluded_ranges = s.exclude_outbound_ranges.clone();
    excluded_ranges.sort();
    excluded_ranges.dedup();
    for r in &excluded_ranges {
        let _ = writeln!(out, "-A ISTIO_OUTPUT -d {r} -j RETURN");
    }
    match &s.include_outbound_ranges {
        Select::All => out.push_str("-A ISTIO_OUTPUT -j ISTIO_REDIRECT\n"),
        Select::Only(ranges) => {
            let mut ranges = ranges.clone();
            ranges.sort();
            ranges.dedup();
            for r in &ranges {
                let _ = writeln!(out, "-A ISTIO_OUTPUT -d {r} -j ISTIO_REDIRECT");
            }
        }
    }
}

fn dedup(ports: &mut Vec<u16>) {
    let mut seen = std::collections::BTreeSet::new();
    ports.retain(|p| seen.insert(*p));
}

/// The `iptables-restore --noflush` input that removes capture from a table `iptables-save -t
/// nat` printed as `saved`: every rule of another chain that jumps to a capture chain is
/// deleted, then the capture chains are flushed and deleted. `None` when nothing is installed.
pub fn remove(saved: &str) -> Option<String> {
    let is_ours = |chain: &str| CHAINS.contains(&chain);
    let declared: Vec<&str> = saved
        .lines()
        .filter_map(|l| l.strip_prefix(':'))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| is_ours(c))
        .collect();
    let jumps: Vec<&str> = saved
        .lines()
        .filter_map(|l| l.strip_prefix("-A "))
        .filter(|rule| {
            let chain = rule.split_whitespace().next().unwrap_or("");
            let target = rule
                .split_whitespace()
                .skip_while(|w| *w != "-j")
                .nth(1)
                .unwrap_or("");
            !is_ours(chain) && is_ours(target)
        })
        .collect();
    if declared.is_empty() && jumps.is_empty() {
        return None;
    }
    let mut out = String::from("*nat\n");
    for rule in jumps {
        let _ = writeln!(out, "-D {rule}");
    }
    for chain in &declared {
        let _ = writeln!(out, "-F {chain}");
    }
    for chain in &declared {
        let _ = writeln!(out, "-X {chain}");
    }
    out.push_str("COMMIT\n");
    Some(out)
}

/// Whether `iptables-save -t nat` output shows capture installed.
pub fn is_installed(saved: &str) -> bool {
    saved.lines().filter_map(|l| l.strip_prefix(':')).any(|l| {
        CHAINS
            .iter()
            .any(|c| l.split_whitespace().next() == Some(c))
    })
}
