//! Namespace mode (`strait up --netns`, root): every network of the mesh is a network
//! namespace of its own, and the only way between them is a shared link on which the load
//! balancers' public addresses live, as separate VPCs joined by the internet.
//!
//! ```text
//!   strait<N>-n0 (network1)            strait<N>-pub ("the internet")          strait<N>-n1 (network2)
//!   lo: pods, control plane  ─ eth0 ── n0 ─┐                       ┌─ n1 ── eth0 ─  lo: pods, control plane
//!       127.N.0.0/20 …         198.18.N.200  br0 198.18.N.254 ──────┘   198.18.N.201     127.N.16.0/20 …
//!                              + gateway LB addresses                     + gateway LB addresses
//! ```
//!
//! Inside each namespace all of `127.0.0.0/8` is its own loopback: a pod that dials another
//! network's pod address reaches nothing (connection refused), whatever the proxies do. Only
//! addresses on the link cross, and only gateways listen there. Everything is created with
//! `ip` (iproute2) and removed when the run ends; a run that was killed leaves namespaces
//! behind, which the next run on the same `--net` removes.

use std::net::IpAddr;
use std::process::Command;

use super::UpError;
use super::plan::Plan;

/// The namespaces of one run.
#[derive(Debug)]
pub struct Topology {
    /// The link between networks (and where clients outside the mesh live).
    pub public: String,
    /// Per network, in plan order: its namespace.
    pub networks: Vec<String>,
    prefix: u8,
}

fn ip(args: &[&str]) -> Result<(), UpError> {
    let out = Command::new("ip").args(args).output().map_err(|e| {
        UpError::Start(format!(
            "cannot run `ip` (iproute2), needed by --netns: {e}"
        ))
    })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(UpError::Start(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

fn exists(name: &str) -> bool {
    std::path::Path::new(strait_net::netns::NETNS_DIR)
        .join(name)
        .exists()
}

/// Removes a namespace a previous run left, unless a process still lives in it (another
/// run on the same `--net`).
fn clear(name: &str) -> Result<(), UpError> {
    if !exists(name) {
        return Ok(());
    }
    let pids = Command::new("ip")
        .args(["netns", "pids", name])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    if !pids.is_empty() {
        return Err(UpError::Start(format!(
            "network namespace {name} is in use (processes {}): is another strait up --netns running on this --net? pick another with --net",
            pids.split_whitespace().collect::<Vec<_>>().join(", ")
        )));
    }
    ip(&["netns", "del", name])
}

/// Whether this process can create network namespaces.
pub fn check_privileges() -> Result<(), UpError> {
    #[cfg(unix)]
    {
        let me = super::state::effective_uid(&std::env::temp_dir()).unwrap_or(u32::MAX);
        if me != 0 {
            return Err(UpError::Start(
                "--netns creates network namespaces and needs root; without it, networks are kept apart on one loopback (the default)".into(),
            ));
        }
    }
    Ok(())
}

impl Topology {
    /// Creates the namespaces, the link, and the networks' and load balancers' addresses.
    pub fn create(plan: &Plan) -> Result<Topology, UpError> {
        check_privileges()?;
        let n = plan.net;
        let public = plan
            .public_netns
            .clone()
            .unwrap_or_else(|| format!("strait{n}-pub"));
        let networks: Vec<String> = plan
            .networks
            .iter()
            .enumerate()
            .map(|(k, net)| {
                net.netns
                    .clone()
                    .unwrap_or_else(|| format!("strait{n}-n{k}"))
            })
            .collect();
        for name in networks.iter().chain([&public]) {
            clear(name)?;
        }
        let topo = Topology {
            public: public.clone(),
            networks: Vec::new(),
            prefix: n,
        };
        // From here on, dropping `topo` removes whatever was made.
        let mut topo = topo;
        ip(&["netns", "add", &public])?;
        ip(&["-n", &public, "link", "set", "lo", "up"])?;
        ip(&["-n", &public, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &public, "link", "set", "br0", "up"])?;
        ip(&[
            "-n",
            &public,
            "addr",
            "add",
            &format!("198.18.{n}.254/24"),
            "dev",
            "br0",
        ])?;
        for (k, (name, net)) in networks.iter().zip(&plan.networks).enumerate() {
            ip(&["netns", "add", name])?;
            topo.networks.push(name.clone());
            let peer = format!("n{k}");
            ip(&["-n", name, "link", "set", "lo", "up"])?;
            ip(&[
                "-n", name, "link", "add", "eth0", "type", "veth", "peer", "name", &peer, "netns",
                &public,
            ])?;
            ip(&["-n", &public, "link", "set", &peer, "master", "br0", "up"])?;
            ip(&["-n", name, "link", "set", "eth0", "up"])?;
            if let Some(node) = net.node {
                ip(&[
                    "-n",
                    name,
                    "addr",
                    "add",
                    &format!("{node}/24"),
                    "dev",
                    "eth0",
                ])?;
            }
        }
        for lb in &plan.load_balancers {
            topo.add_public(plan, &lb.network, lb.address)?;
        }
        Ok(topo)
    }

    /// Puts a load balancer's public address on its network's side of the link.
    pub fn add_public(&self, plan: &Plan, network: &str, addr: IpAddr) -> Result<(), UpError> {
        let Some(k) = plan.networks.iter().position(|n| n.name == network) else {
            return Err(UpError::Internal(format!("no network {network}")));
        };
        let Some(ns) = self.networks.get(k) else {
            return Err(UpError::Internal(format!(
                "no namespace for network {network}"
            )));
        };
        let out = Command::new("ip")
            .args([
                "-n",
                ns,
                "addr",
                "add",
                &format!("{addr}/32"),
                "dev",
                "eth0",
            ])
            .output()
            .map_err(|e| UpError::Start(format!("ip: {e}")))?;
        // Already there (a load balancer kept across a re-plan) is fine.
        let err = String::from_utf8_lossy(&out.stderr);
        if out.status.success() || err.contains("File exists") || err.contains("already assigned") {
            Ok(())
        } else {
            Err(UpError::Start(format!(
                "adding {addr} to {ns}: {}",
                err.trim()
            )))
        }
    }

    /// The namespace names, for `ip netns exec`.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        for name in self.networks.iter().chain([&self.public]) {
            if exists(name) {
                let _ = Command::new("ip").args(["netns", "del", name]).output();
            }
        }
    }
}
