//! `strait ca init`: one shared root and an Istio `cacerts` directory per cluster.
//!
//! ```text
//! OUT/root-cert.pem  root-key.pem (0600)        the shared root; keep the key offline
//! OUT/<cluster>/ca-cert.pem  ca-key.pem (0600)  that cluster's intermediate
//!              root-cert.pem  cert-chain.pem    trust bundle; intermediate then root
//!              cacerts.yaml                     the same four as a Secret to apply
//! ```
//!
//! Running it again with more clusters reuses the root, so a cluster can join later and
//! still trust the others; clusters already issued from that root are left alone.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::authority::Authority;
use crate::error::{CaFileProblem, Error};
use crate::files::{CA_CERT, CA_KEY, CACERTS_YAML, CERT_CHAIN, ROOT_CERT, ROOT_KEY};
use crate::identity::normalize_trust_domain;
use crate::{pem, profile};

/// Knobs of [`init`].
#[derive(Clone, Debug, Default)]
pub struct InitOptions {
    /// Make a new root even if `OUT` has one, and re-issue every listed cluster from it.
    /// Clusters issued from the old root no longer share a root with the new ones.
    pub force: bool,
}

/// What happened to the root.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RootAction {
    /// There was none; a new one was made.
    Created,
    /// The one in `OUT` was loaded and used.
    Reused,
    /// `--force`: a new one replaced it.
    Replaced,
}

/// What happened to one cluster's directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClusterAction {
    /// A new intermediate was issued and its files written.
    Issued,
    /// It already held an intermediate from this root; nothing was written.
    Kept,
}

/// One cluster's outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterReport {
    pub name: String,
    /// `OUT/<name>`.
    pub dir: PathBuf,
    pub action: ClusterAction,
}

/// Everything [`init`] did, for the command to print.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InitReport {
    pub root: RootAction,
    /// `OUT/root-cert.pem`.
    pub root_cert: PathBuf,
    pub clusters: Vec<ClusterReport>,
    /// Every file written, in order.
    pub written: Vec<PathBuf>,
}

/// Makes (or reuses) the shared root in `out` and an intermediate CA for each cluster, in
/// Istio's `cacerts` layout. The root is ECDSA P-256, O=strait CN=Root CA, 10 years; each
/// intermediate `CN=Intermediate CA, L=<cluster>`, pathlen 0, 5 years. Refuses to replace a
/// root or a cluster directory from another root unless `opts.force`. Every directory
/// written is loaded back with [`Authority::load`] before returning.
pub fn init(
    clusters: &[String],
    out: &Path,
    trust_domain: &str,
    opts: &InitOptions,
) -> Result<InitReport, Error> {
    let trust_domain = normalize_trust_domain(trust_domain)?;
    let mut seen = BTreeSet::new();
    for c in clusters {
        check_cluster_name(c)?;
        if !seen.insert(c.as_str()) {
            return Err(Error::ClusterName {
                name: c.clone(),
                reason: "listed twice",
            });
        }
    }
    create_dir(out)?;
    let existing = if opts.force {
        None
    } else {
        existing_root(out)?
    };
    // Check every cluster to keep before writing anything, so a refusal leaves no trace.
    let mut kept = BTreeSet::new();
    if !opts.force {
        for name in clusters {
            let dir = out.join(name);
            if holds_cacerts(&dir) {
                match &existing {
                    Some(root) => check_from_root(&dir, root)?,
                    None => {
                        return Err(Error::ca_file(
                            dir.join(CA_CERT),
                            CaFileProblem::NotFromRoot,
                        ));
                    }
                }
                kept.insert(name.as_str());
            }
        }
    }
    let mut written = Vec::new();
    let (root, root_action) = match existing {
        Some(root) => (root, RootAction::Reused),
        None => new_root(out, &mut written)?,
    };
    let mut reports = Vec::with_capacity(clusters.len());
    for name in clusters {
        let dir = out.join(name);
        let action = if kept.contains(name.as_str()) {
            ClusterAction::Kept
        } else {
            issue(&root, name, &trust_domain, &dir, &mut written)?;
            Authority::load(&dir)?;
            ClusterAction::Issued
        };
        reports.push(ClusterReport {
            name: name.clone(),
            dir,
            action,
        });
    }
    Ok(InitReport {
        root: root_action,
        root_cert: out.join(ROOT_CERT),
        clusters: reports,
        written,
    })
}

/// Cluster names become directory names and a certificate's locality.
fn check_cluster_name(name: &str) -> Result<(), Error> {
    let bad = |reason| Error::ClusterName {
        name: name.to_string(),
        reason,
    };
    if name.is_empty() {
        return Err(bad("empty"));
    }
    if name.starts_with('.') {
        return Err(bad("starts with '.'"));
    }
    // RFC 5280's upper bound for a locality name.
    if name.len() > 128 {
        return Err(bad("longer than 128 characters"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        return Err(bad("has a character that is not allowed"));
    }
    Ok(())
}

/// The root already in `out`, if any; one file of the pair without the other is an error,
/// since making a new root then would silently split the mesh.
fn existing_root(out: &Path) -> Result<Option<Authority>, Error> {
    let (cert_path, key_path) = (out.join(ROOT_CERT), out.join(ROOT_KEY));
    match (exists(&cert_path)?, exists(&key_path)?) {
        (true, true) => Ok(Some(Authority::load_root(&cert_path, &key_path)?)),
        (true, false) => Err(Error::ca_file(
            cert_path,
            CaFileProblem::Partial { missing: ROOT_KEY },
        )),
        (false, true) => Err(Error::ca_file(
            key_path,
            CaFileProblem::Partial { missing: ROOT_CERT },
        )),
        (false, false) => Ok(None),
    }
}

fn new_root(out: &Path, written: &mut Vec<PathBuf>) -> Result<(Authority, RootAction), Error> {
    let (cert_path, key_path) = (out.join(ROOT_CERT), out.join(ROOT_KEY));
    let action = if exists(&cert_path)? || exists(&key_path)? {
        RootAction::Replaced
    } else {
        RootAction::Created
    };
    let key = profile::new_key()?;
    let cert = profile::root("strait")?.self_signed(&key)?;
    // Key first: a root certificate without its key is useless, the reverse is harmless.
    write(&key_path, &key.serialize_pem(), Secret::Yes, written)?;
    write(
        &cert_path,
        &pem::encode_cert(cert.der()),
        Secret::No,
        written,
    )?;
    Ok((Authority::load_root(&cert_path, &key_path)?, action))
}

/// Whether `dir` holds any part of a `cacerts` bundle.
fn holds_cacerts(dir: &Path) -> bool {
    [CA_CERT, CA_KEY, ROOT_CERT, CERT_CHAIN, CACERTS_YAML]
        .iter()
        .any(|f| dir.join(f).exists())
}

/// A cluster directory that is kept must be whole and chain to this root; anything else
/// would silently leave that cluster unable to talk to the others.
fn check_from_root(dir: &Path, root: &Authority) -> Result<(), Error> {
    let existing = Authority::load(dir)?;
    let root_der = root.ca_cert();
    if !existing.roots().contains(root_der) || !existing.chains_to(root_der) {
        return Err(Error::ca_file(
            dir.join(CA_CERT),
            CaFileProblem::NotFromRoot,
        ));
    }
    Ok(())
}

fn issue(
    root: &Authority,
    cluster: &str,
    trust_domain: &str,
    dir: &Path,
    written: &mut Vec<PathBuf>,
) -> Result<(), Error> {
    create_dir(dir)?;
    let key = profile::new_key()?;
    let cert = root.sign_ca(&profile::intermediate(cluster, trust_domain)?, &key)?;
    let ca_cert = pem::encode_cert(&cert);
    let ca_key = key.serialize_pem();
    let roots = root.roots_pem().to_string();
    // Istio's sample Makefile: cert-chain.pem = ca-cert.pem + root-cert.pem.
    let chain = format!("{ca_cert}{}", pem::encode_cert(root.ca_cert()));
    write(&dir.join(CA_KEY), &ca_key, Secret::Yes, written)?;
    write(&dir.join(CA_CERT), &ca_cert, Secret::No, written)?;
    write(&dir.join(ROOT_CERT), &roots, Secret::No, written)?;
    write(&dir.join(CERT_CHAIN), &chain, Secret::No, written)?;
    let yaml = secret_manifest(
        cluster,
        &[
            (CA_CERT, &ca_cert),
            (CA_KEY, &ca_key),
            (ROOT_CERT, &roots),
            (CERT_CHAIN, &chain),
        ],
    );
    write(&dir.join(CACERTS_YAML), &yaml, Secret::Yes, written)
}

/// The `cacerts` Secret istiod mounts at `/etc/cacerts`, with the PEM as `stringData` so
/// that a reader can see which certificates it holds.
fn secret_manifest(cluster: &str, entries: &[(&str, &str)]) -> String {
    let mut y = format!(
        "# The plug-in CA of cluster {cluster}: its intermediate, issued by `strait ca init`\n\
         # from the mesh's shared root. Apply it in that cluster before installing the control\n\
         # plane (create the namespace first if needed: kubectl create namespace istio-system):\n\
         #   kubectl apply -f cacerts.yaml\n\
         # It holds the intermediate's private key: guard it like ca-key.pem.\n\
         apiVersion: v1\n\
         kind: Secret\n\
         metadata:\n  name: cacerts\n  namespace: istio-system\n\
         type: Opaque\n\
         stringData:\n"
    );
    for (key, value) in entries {
        y.push_str(&format!("  {key}: |\n"));
        for line in value.lines() {
            y.push_str("    ");
            y.push_str(line);
            y.push('\n');
        }
    }
    y
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Secret {
    Yes,
    No,
}

/// Writes through a temporary file and a rename, so a crash never leaves half a key, and
/// creates secrets 0600 from the start rather than narrowing them after writing.
fn write(
    path: &Path,
    contents: &str,
    secret: Secret,
    written: &mut Vec<PathBuf>,
) -> Result<(), Error> {
    let io = |action| {
        move |source| Error::Io {
            path: path.to_path_buf(),
            action,
            source,
        }
    };
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if secret == Secret::Yes { 0o600 } else { 0o644 });
    }
    let _ = fs::remove_file(&tmp);
    let mut file = options.open(&tmp).map_err(io("creating"))?;
    file.write_all(contents.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io("writing"))?;
    fs::rename(&tmp, path).map_err(io("renaming into place"))?;
    written.push(path.to_path_buf());
    Ok(())
}

fn create_dir(dir: &Path) -> Result<(), Error> {
    fs::create_dir_all(dir).map_err(|source| Error::Io {
        path: dir.to_path_buf(),
        action: "creating directory",
        source,
    })
}

fn exists(path: &Path) -> Result<bool, Error> {
    path.try_exists().map_err(|source| Error::Io {
        path: path.to_path_buf(),
        action: "checking",
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_names() {
        for ok in ["cluster1", "east-1", "a.b_c"] {
            assert!(check_cluster_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            ".hidden",
            "a/b",
            "a b",
            "ä",
            &"x".repeat(129),
        ] {
            assert!(check_cluster_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn manifest_indents_every_line() {
        let y = secret_manifest(
            "c1",
            &[("ca-cert.pem", "-----BEGIN X-----\nAA\n-----END X-----\n")],
        );
        assert!(y.contains(
            "stringData:\n  ca-cert.pem: |\n    -----BEGIN X-----\n    AA\n    -----END X-----\n"
        ));
        assert!(y.contains("\nkind: Secret\n"));
    }
}
