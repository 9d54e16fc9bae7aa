//! One root of trust, valid plug-in CAs, and the remote secrets that let control planes see
//! each other's endpoints.

use std::time::{SystemTime, UNIX_EPOCH};

use strait_model::{Layout, ObjId};

use crate::catalog::{STR0103, STR0104, STR0105, STR0106, STR0107};
use crate::checks::util;
use crate::context::Ctx;

pub fn run(ctx: &mut Ctx) {
    ca_bundles(ctx);
    roots_agree(ctx);
    remote_secrets(ctx);
}

/// The path of a Secret's key, wherever the manifest wrote it (`stringData` or `data`), or of
/// the data map itself when the key is absent.
fn secret_key(ctx: &Ctx, obj: ObjId, key: &str) -> String {
    let tree = ctx.mesh.object(obj).source.root();
    for map in ["stringData", "data"] {
        if tree.get(map).and_then(|m| m.get(key)).is_some() {
            return format!("{map}[\"{key}\"]");
        }
    }
    if tree.get("stringData").is_some() {
        "stringData".into()
    } else {
        "data".into()
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// STR0105: incomplete, expired or inconsistent `cacerts`. STR0104: a primary of a
/// multi-cluster mesh with none.
fn ca_bundles(ctx: &mut Ctx) {
    let mesh = ctx.mesh;
    let t = now();
    for b in &mesh.ca_bundles {
        let cluster = &mesh.cluster(b.cluster).name;
        for (key, problem) in &b.problems {
            ctx.at_key(
                STR0105,
                b.object,
                &secret_key(ctx, b.object, key),
                format!("cacerts in cluster {cluster}: {key} {problem}; istiod rejects a partial plug-in CA and will not start"),
            );
        }
        if b.chains_to_root == Some(false)
            && let Some(ca) = &b.ca_cert
        {
            ctx.at_key(
                STR0105,
                b.object,
                &secret_key(ctx, b.object, "ca-cert.pem"),
                format!(
                    "cacerts in cluster {cluster}: ca-cert.pem {} is not signed by any certificate in root-cert.pem; workloads will get certificates no peer can verify",
                    ca.describe()
                ),
            );
        }
        for (key, cert) in b
            .ca_cert
            .iter()
            .map(|c| ("ca-cert.pem", c))
            .chain(b.roots.iter().map(|c| ("root-cert.pem", c)))
        {
            if cert.not_after < t {
                ctx.at_key(
                    STR0105,
                    b.object,
                    &secret_key(ctx, b.object, key),
                    format!("cacerts in cluster {cluster}: {key} {} has expired; workloads cannot get valid certificates", cert.describe()),
                );
            } else if key == "ca-cert.pem" && !cert.is_ca {
                ctx.at_key(
                    STR0105,
                    b.object,
                    &secret_key(ctx, b.object, key),
                    format!("cacerts in cluster {cluster}: ca-cert.pem {} is not a CA certificate (basicConstraints CA:FALSE); it cannot sign workload certificates", cert.describe()),
                );
            }
        }
    }
    // One primary means one CA: remotes get their workload certificates from it.
    if mesh.primaries().count() < 2 {
        return;
    }
    let any = !mesh.ca_bundles.is_empty();
    for c in mesh.primaries() {
        if mesh.ca_bundles.iter().any(|b| b.cluster == c.id) {
            continue;
        }
        let fallback = c.facts.istio_namespace_object;
        let f = ctx.on_cluster(
            STR0104,
            c.id,
            fallback,
            if any {
                format!(
                    "cluster {} has no cacerts Secret in {} while other clusters do: its istiod will mint its own self-signed root, and no other cluster will trust its workloads. Create cacerts from the shared root (`strait ca init`)",
                    c.name, c.istio_namespace
                )
            } else {
                format!(
                    "no cluster's manifests hold a cacerts Secret in {}: unless you create them out of band, each istiod mints its own self-signed root and cross-cluster mTLS fails. Give every primary an intermediate CA from one shared root (`strait ca init`)",
                    c.istio_namespace
                )
            },
        );
        if !any {
            f.level(crate::finding::Level::Warning);
        }
    }
}

/// STR0103: clusters whose plug-in CAs share no root.
fn roots_agree(ctx: &mut Ctx) {
    let mesh = ctx.mesh;
    let bundles: Vec<_> = mesh
        .ca_bundles
        .iter()
        .filter(|b| !b.roots.is_empty())
        .collect();
    for (i, b) in bundles.iter().enumerate() {
        let Some(other) = bundles[..i].iter().find(|o| {
            o.cluster != b.cluster
                && !o
                    .roots
                    .iter()
                    .any(|r| b.roots.iter().any(|s| s.der == r.der))
        }) else {
            continue;
        };
        if bundles[..i].iter().any(|o| {
            o.cluster != b.cluster
                && o.roots
                    .iter()
                    .any(|r| b.roots.iter().any(|s| s.der == r.der))
        }) {
            continue;
        }
        let pos = ctx.mesh.object(other.object).locate_key(&secret_key(
            ctx,
            other.object,
            "root-cert.pem",
        ));
        let mine = b.roots.iter().map(|r| r.describe()).collect::<Vec<_>>();
        let theirs = other.roots.iter().map(|r| r.describe()).collect::<Vec<_>>();
        ctx.at_key(
            STR0103,
            b.object,
            &secret_key(ctx, b.object, "root-cert.pem"),
            format!(
                "cluster {} trusts root {} but cluster {} trusts {}: they share no root, so mTLS between their workloads fails (certificate verify failed). Issue every cluster's intermediate from one root, or put both roots in each root-cert.pem during a migration",
                mesh.cluster(b.cluster).name,
                util::join(&mine),
                mesh.cluster(other.cluster).name,
                util::join(&theirs)
            ),
        )
        .related(format!("cluster {}'s root", mesh.cluster(other.cluster).name), pos);
    }
}

/// STR0106: a remote secret for a cluster the mesh does not have; STR0107: a primary missing
/// one for a cluster whose endpoints it needs.
fn remote_secrets(ctx: &mut Ctx) {
    let mesh = ctx.mesh;
    if mesh.layout != Layout::MeshDirectory {
        return;
    }
    for s in &mesh.remote_secrets {
        let here = &mesh.cluster(s.cluster).name;
        for rc in &s.clusters {
            if rc.cluster_id == *here {
                ctx.at_key(
                    STR0106,
                    s.object,
                    &secret_key(ctx, s.object, &rc.cluster_id),
                    format!("this remote secret in cluster {here} is for {here} itself; istiod ignores it"),
                );
            } else if mesh.cluster_by_name(&rc.cluster_id).is_none() {
                let names: Vec<String> = mesh.clusters.iter().map(|c| c.name.clone()).collect();
                ctx.at_key(
                    STR0106,
                    s.object,
                    &secret_key(ctx, s.object, &rc.cluster_id),
                    format!(
                        "remote secret key \"{}\" names no cluster of the mesh ({}): istiod will try to reach that API server and register a cluster nothing else knows. The key must be the cluster ID (`istioctl create-remote-secret --name=<cluster>`)",
                        rc.cluster_id,
                        util::join(&names)
                    ),
                );
            } else if let Some(problem) = &rc.problem {
                ctx.at_key(
                    STR0106,
                    s.object,
                    &secret_key(ctx, s.object, &rc.cluster_id),
                    format!("remote secret for cluster {}: {problem}", rc.cluster_id),
                );
            }
        }
    }
    for p in mesh.primaries() {
        let have: Vec<&str> = mesh
            .remote_secrets
            .iter()
            .filter(|s| s.cluster == p.id)
            .flat_map(|s| s.clusters.iter().map(|r| r.cluster_id.as_str()))
            .collect();
        let missing: Vec<String> = mesh
            .clusters
            .iter()
            .filter(|c| c.id != p.id && !have.contains(&c.name.as_str()))
            .map(|c| c.name.clone())
            .collect();
        if missing.is_empty() {
            continue;
        }
        let fallback = p.facts.istio_namespace_object;
        ctx.on_cluster(
            STR0107,
            p.id,
            fallback,
            format!(
                "cluster {}'s manifests have no remote secret for {}: its control plane cannot discover endpoints there (or, for a remote it serves, authenticate its proxies). Apply `istioctl create-remote-secret --name=<cluster>` output to {} (ignore if you apply them out of band)",
                p.name,
                util::join(&missing),
                p.name
            ),
        );
    }
}
