//! Credential Secrets of Gateway servers: missing from the namespace of the gateway pods
//! (IST0101), or present but unusable (IST0161).
//!
//! istiod's SDS server reads `credentialName` only from the namespace of the proxy asking for
//! it, so a Secret next to the Gateway resource does not help when the pods run elsewhere.
//! istioctl's `gateway.SecretAnalyzer` takes the Secret's `cert`/`key` (or `tls.crt`/`tls.key`)
//! pair, decodes the first PEM block of the certificate and requires every certificate in it
//! to be valid now; we do the same, and also report a private key that is not PEM or does not
//! belong to the certificate, which Envoy rejects as well.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{SystemTime, UNIX_EPOCH};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use strait_api::Kind;
use strait_api::istio::gateway::Server;
use strait_model::{ClusterId, ObjId, WorkloadKind, trust};

use super::Gw;
use super::keypair::{self, Block};
use crate::catalog::{IST0101, IST0161};
use crate::checks::util::join;
use crate::context::Ctx;

/// Credential names a server references, with their field paths.
fn credential_refs(i: usize, s: &Server) -> Vec<(String, &str)> {
    let Some(tls) = &s.tls else { return Vec::new() };
    let mut out = Vec::new();
    if !tls.credential_name.is_empty() {
        out.push((
            format!("spec.servers[{i}].tls.credentialName"),
            tls.credential_name.as_str(),
        ));
    }
    for (k, n) in tls.credential_names.iter().enumerate() {
        if !n.is_empty() {
            out.push((
                format!("spec.servers[{i}].tls.credentialNames[{k}]"),
                n.as_str(),
            ));
        }
    }
    out
}

/// The certificate and key a credential Secret offers, as istiod picks them.
fn cert_and_key(data: &BTreeMap<String, Vec<u8>>) -> Result<(&[u8], &[u8]), String> {
    let filled = |k: &str| data.get(k).is_some_and(|v| !v.is_empty());
    for (c, k) in [("cert", "key"), ("tls.crt", "tls.key")] {
        if filled(c) && filled(k) {
            return match (data.get(c), data.get(k)) {
                (Some(c), Some(k)) => Ok((c, k)),
                _ => Err("its certificate or key is missing".into()),
            };
        }
    }
    for (c, k) in [("cert", "key"), ("tls.crt", "tls.key")] {
        if data.contains_key(c) && data.contains_key(k) {
            return Err(format!("its {c} and {k} are empty"));
        }
    }
    let keys: Vec<&str> = data.keys().map(String::as_str).collect();
    let found = if keys.is_empty() {
        "no data".to_string()
    } else {
        format!("keys {}", keys.join(", "))
    };
    Err(format!(
        "it holds neither tls.crt and tls.key nor cert and key (found {found})"
    ))
}

/// What is wrong with a credential Secret, as istiod's SDS server and Envoy would find it.
pub(in crate::checks) fn credential_problem(
    secret: &Secret,
    cluster: ClusterId,
    object: ObjId,
) -> Option<String> {
    let data = trust::secret_data(secret);
    let (cert, key) = match cert_and_key(&data) {
        Ok(pair) => pair,
        Err(e) => return Some(e),
    };
    let blocks = keypair::pem_blocks(cert);
    let Some(first) = blocks.first() else {
        return Some("its certificate is not PEM".into());
    };
    if first.label != "CERTIFICATE" {
        return Some(format!(
            "its certificate data starts with a PEM block \"{}\", not a CERTIFICATE",
            first.label
        ));
    }
    // Parse through the plug-in CA reader, which decodes `tls.crt` the way we need.
    let probe = Secret {
        data: Some(BTreeMap::from([(
            "tls.crt".to_string(),
            ByteString(first.text.clone().into_bytes()),
        )])),
        ..Secret::default()
    };
    let bundle = trust::ca_bundle(cluster, object, &probe);
    if let Some((_, e)) = bundle.problems.iter().find(|(k, _)| k == "tls.crt") {
        return Some(format!("its certificate {e}"));
    }
    let leaf = bundle.ca_cert?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    if now > leaf.not_after {
        return Some(format!("its certificate {} has expired", leaf.describe()));
    }
    if now < leaf.not_before {
        return Some(format!(
            "its certificate {} is not valid yet",
            leaf.describe()
        ));
    }
    key_problem(key, first, &leaf.describe())
}

/// A private key Envoy cannot load, or one that does not belong to the certificate.
fn key_problem(key: &[u8], cert: &Block, cert_name: &str) -> Option<String> {
    let blocks = keypair::pem_blocks(key);
    if blocks.is_empty() {
        return Some("its private key is not PEM".into());
    }
    let Some(block) = blocks.iter().find(|b| b.label.ends_with("PRIVATE KEY")) else {
        return Some("its key data holds no PRIVATE KEY block".into());
    };
    let (Some(public), Some(implied)) = (
        keypair::of_certificate(&cert.der),
        keypair::of_private_key(block),
    ) else {
        return None;
    };
    (public != implied).then(|| {
        format!("its private key does not belong to its certificate {cert_name} (the public keys differ)")
    })
}

/// The pods whose namespace istiod reads credentials from: the gateway proxies the selector
/// reaches, else (a gateway strait does not recognise as one) every pod it reaches.
fn credential_places<'m>(g: &Gw<'m>) -> BTreeSet<(ClusterId, &'m str)> {
    let pods = if g.proxies.is_empty() {
        &g.matched
    } else {
        &g.proxies
    };
    pods.iter()
        .filter(|w| w.kind != WorkloadKind::WorkloadEntry)
        .map(|w| (w.cluster, w.namespace.as_str()))
        .collect()
}

/// IST0101 (credential Secret missing from the gateway pods' namespace) and IST0161 (present
/// but unusable).
pub(super) fn check(ctx: &mut Ctx, g: &Gw) {
    let mesh = ctx.mesh;
    let places = credential_places(g);
    if places.is_empty() {
        return;
    }
    for (i, s) in g.spec.servers.iter().enumerate() {
        for (path, written) in credential_refs(i, s) {
            if written.contains("://") {
                continue;
            }
            // `namespace/name` names the Secret's namespace, as istioctl and istiod read it.
            let (named_ns, name) = match written.split_once('/') {
                Some((ns, name)) => (Some(ns), name),
                None => (None, written),
            };
            let places: BTreeSet<(ClusterId, &str)> = places
                .iter()
                .map(|(c, ns)| (*c, named_ns.unwrap_or(ns)))
                .collect();
            let mut missing = Vec::new();
            let mut elsewhere = BTreeSet::new();
            let mut invalid: Option<(ObjId, String)> = None;
            for (cluster, ns) in &places {
                let c = mesh.cluster(*cluster);
                match c.find(Kind::Secret, ns, name) {
                    Some((sid, o)) => {
                        if let Some(problem) = o
                            .secret()
                            .and_then(|sec| credential_problem(sec, *cluster, sid))
                        {
                            invalid.get_or_insert((sid, problem));
                        }
                    }
                    None => {
                        missing.push(format!("{ns} (cluster {})", c.name));
                        elsewhere.extend(
                            c.of_kind(Kind::Secret)
                                .filter(|(_, o)| o.name() == name)
                                .map(|(_, o)| o.namespace().to_string()),
                        );
                    }
                }
            }
            if !missing.is_empty() && named_ns.is_some() {
                ctx.not_found(
                    IST0101,
                    g.id,
                    &path,
                    format!(
                        "referenced credentialName not found: no Secret \"{name}\" in namespace {}, which credentialName names, so this server gets no listener",
                        join(&missing)
                    ),
                );
            } else if !missing.is_empty() {
                let hint = if elsewhere.is_empty() {
                    "create the Secret in that namespace".to_string()
                } else {
                    let shown: Vec<String> = elsewhere.into_iter().take(3).collect();
                    format!(
                        "a Secret of that name exists in namespace {}, which the gateway cannot read from; create it (or move it) in the gateway pods' namespace",
                        join(&shown)
                    )
                };
                ctx.not_found(
                    IST0101,
                    g.id,
                    &path,
                    format!(
                        "referenced credentialName not found: no Secret \"{name}\" in namespace {}, where the gateway pods run; the gateway reads its certificate only from there, so this server gets no listener; {hint}",
                        join(&missing)
                    ),
                );
            }
            if let Some((sid, problem)) = invalid {
                let pos = ctx.pos(sid, "");
                let secret = mesh.object(sid).display_name();
                ctx.at(
                    IST0161,
                    g.id,
                    &path,
                    format!("credential {secret} cannot be served: {problem}; TLS handshakes on this server fail until it holds a valid certificate and key"),
                )
                .related(format!("{secret} is defined here"), pos);
            }
        }
    }
}
