//! Helpers shared by the integration tests.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use strait_ca::{Authority, InitOptions, SpiffeId, WorkloadKey};

pub fn id(ns: &str, sa: &str) -> SpiffeId {
    SpiffeId::new("cluster.local", ns, sa).expect("valid identity")
}

pub fn clusters(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// `strait ca init` into `out`, panicking on failure.
pub fn init(out: &Path, names: &[&str]) -> strait_ca::InitReport {
    strait_ca::init(
        &clusters(names),
        out,
        "cluster.local",
        &InitOptions::default(),
    )
    .expect("init")
}

/// A fresh workload key and the chain the authority signs for it.
pub fn issue(ca: &Authority, identity: &SpiffeId, ttl: Duration) -> Vec<String> {
    let wk = WorkloadKey::generate(identity).expect("key");
    ca.sign_csr(&wk.csr_pem, identity, ttl).expect("signed")
}

pub fn write(path: &Path, text: &str) -> PathBuf {
    std::fs::write(path, text).expect("write");
    path.to_path_buf()
}

/// Runs `openssl` and returns (success, stdout + stderr). A missing openssl fails the
/// test: these tests exist to prove interoperability, so skipping would prove nothing.
pub fn openssl(args: &[&str]) -> (bool, String) {
    let out = Command::new("/usr/bin/openssl")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run /usr/bin/openssl ({e}); install openssl"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// `openssl verify -CAfile roots [-untrusted chain] cert`, asserting it says OK.
pub fn assert_verifies(roots: &Path, untrusted: Option<&Path>, cert: &Path) {
    let mut args = vec!["verify", "-CAfile", path_str(roots)];
    if let Some(u) = untrusted {
        args.extend(["-untrusted", path_str(u)]);
    }
    args.push(path_str(cert));
    let (ok, text) = openssl(&args);
    assert!(ok && text.contains(": OK"), "openssl verify failed: {text}");
}

pub fn assert_rejected(roots: &Path, untrusted: Option<&Path>, cert: &Path) {
    let mut args = vec!["verify", "-CAfile", path_str(roots)];
    if let Some(u) = untrusted {
        args.extend(["-untrusted", path_str(u)]);
    }
    args.push(path_str(cert));
    let (ok, text) = openssl(&args);
    assert!(!ok, "openssl verify accepted what it should not: {text}");
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}
