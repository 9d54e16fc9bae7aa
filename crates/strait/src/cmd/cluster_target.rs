//! The clusters `--kubeconfig` and `--context` name, a client for each, and the mesh read
//! from them: the Kubernetes mode of `analyze`, `proxy-status`, `proxy-config` and `check
//! sync`.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use strait_kube::read::{ClusterClient, Note, ReadOptions};

use crate::cli::ClusterArgs;

/// One cluster of the mesh as the command line names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Named {
    /// Its Istio cluster ID.
    pub cluster: String,
    pub context: String,
}

/// The kubeconfig file to read: `--kubeconfig`, else `$KUBECONFIG`, else `~/.kube/config`.
pub(crate) fn kubeconfig_path(args: &ClusterArgs) -> anyhow::Result<PathBuf> {
    kubeconfig_file(args.kubeconfig.as_deref())
}

/// `explicit` (a `--kubeconfig` flag), else `$KUBECONFIG`, else `~/.kube/config`.
pub(crate) fn kubeconfig_file(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    if let Some(v) = std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()) {
        let paths: Vec<PathBuf> = std::env::split_paths(&v)
            .filter(|p| !p.as_os_str().is_empty())
            .collect();
        return match paths.as_slice() {
            [one] => Ok(one.clone()),
            [] => bail!("KUBECONFIG names no file; pass one with --kubeconfig"),
            _ => bail!(
                "KUBECONFIG lists {} files; strait reads one kubeconfig: pass the one holding the mesh's contexts with --kubeconfig",
                paths.len()
            ),
        };
    }
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty()).context(
        "no --kubeconfig, no KUBECONFIG and no HOME: name the kubeconfig file with --kubeconfig",
    )?;
    Ok(Path::new(&home).join(".kube").join("config"))
}

/// The clusters named by `--context` (`NAME=CONTEXT` or `CONTEXT`), or the current context of
/// `kubeconfig` when none is.
pub(crate) fn named(args: &ClusterArgs, kubeconfig: &Path) -> anyhow::Result<Vec<Named>> {
    let mut out = Vec::new();
    for c in &args.contexts {
        let (cluster, context) = match c.split_once('=') {
            Some((name, ctx)) => (name.trim(), ctx.trim()),
            None => (c.trim(), c.trim()),
        };
        if cluster.is_empty() || context.is_empty() {
            bail!("--context {c}: expected CONTEXT or NAME=CONTEXT");
        }
        out.push(Named {
            cluster: cluster.to_string(),
            context: context.to_string(),
        });
    }
    if out.is_empty() {
        let config = kube::config::Kubeconfig::read_from(kubeconfig)
            .with_context(|| format!("reading kubeconfig {}", kubeconfig.display()))?;
        let Some(current) = config.current_context.filter(|c| !c.is_empty()) else {
            bail!(
                "{} has no current context: name the mesh's clusters with --context (one per cluster)",
                kubeconfig.display()
            );
        };
        out.push(Named {
            cluster: current.clone(),
            context: current,
        });
    }
    let mut seen = BTreeSet::new();
    for n in &out {
        if !seen.insert(n.cluster.as_str()) {
            bail!(
                "cluster {} is named twice by --context; name each cluster once (NAME=CONTEXT to rename one)",
                n.cluster
            );
        }
    }
    Ok(out)
}

/// A client for each cluster `args` names.
pub(crate) async fn connect(args: &ClusterArgs) -> anyhow::Result<Vec<ClusterClient>> {
    let path = kubeconfig_path(args)?;
    let mut clients = Vec::new();
    for n in named(args, &path)? {
        let client = strait_kube::client::from_kubeconfig_file(&path, Some(&n.context))
            .await
            .with_context(|| format!("cluster {}", n.cluster))?;
        clients.push(ClusterClient {
            origin: format!("context {} of {}", n.context, path.display()),
            name: n.cluster,
            client,
        });
    }
    Ok(clients)
}

/// Fails when both a local run (`--state`) and clusters are named: they are two meshes.
pub(crate) fn not_both(state: Option<&Path>, args: &ClusterArgs) -> anyhow::Result<()> {
    if let (Some(dir), true) = (state, args.given()) {
        bail!(
            "--state {} names a local run, --kubeconfig/--context name clusters: give one or the other",
            dir.display()
        );
    }
    Ok(())
}

/// The mesh as the clusters' API servers hold it, for the analyzers. What was left out is
/// said on stderr: a kind not allowed always (the analysis lacks it), kinds not served unless
/// `quiet` (there are none to lack). Blocking: it runs its own runtime.
pub(crate) fn read_input(
    args: &ClusterArgs,
    quiet: bool,
) -> anyhow::Result<strait_api::layout::Input> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let read = runtime.block_on(async {
        let clients = connect(args).await?;
        let opts = ReadOptions {
            istio_namespace: args.istio_namespace.clone(),
            ..ReadOptions::default()
        };
        anyhow::Ok(strait_kube::read::read(&clients, &opts).await?)
    })?;
    let mut stderr = std::io::stderr();
    for note in read.notes.iter().filter(|n| n.is_warning()) {
        let _ = writeln!(stderr, "warning: {note}");
    }
    if !quiet {
        for ((cluster, api), kinds) in not_served(&read.notes) {
            let _ = writeln!(
                stderr,
                "note: cluster {cluster} does not serve {api} ({}): its CRDs are not installed, none read",
                kinds.join(", ")
            );
        }
    }
    Ok(read.input)
}

/// The kinds each cluster does not serve, by API (`group/version`), in the order read.
fn not_served(notes: &[Note]) -> Vec<((&str, String), Vec<&'static str>)> {
    let mut out: Vec<((&str, String), Vec<&'static str>)> = Vec::new();
    for n in notes {
        if let Note::NotServed { cluster, kind } = n {
            let key = (
                cluster.as_str(),
                strait_kube::objects::api_resource(*kind).api_version,
            );
            match out.iter_mut().find(|(k, _)| *k == key) {
                Some((_, kinds)) => kinds.push(kind.name()),
                None => out.push((key, vec![kind.name()])),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(contexts: &[&str]) -> ClusterArgs {
        ClusterArgs {
            kubeconfig: Some(PathBuf::from("/nonexistent")),
            contexts: contexts.iter().map(|c| c.to_string()).collect(),
            istio_namespace: "istio-system".into(),
        }
    }

    #[test]
    fn a_cluster_is_named_as_its_context_unless_renamed() {
        let n = named(&args(&["kind-east", "west=gke_p_z_west"]), Path::new("/x")).expect("named");
        assert_eq!(
            n,
            [
                Named {
                    cluster: "kind-east".into(),
                    context: "kind-east".into()
                },
                Named {
                    cluster: "west".into(),
                    context: "gke_p_z_west".into()
                },
            ]
        );
        let e = named(&args(&["a", "a=b"]), Path::new("/x")).expect_err("twice");
        assert!(e.to_string().contains("cluster a is named twice"), "{e}");
        let e = named(&args(&["=b"]), Path::new("/x")).expect_err("empty");
        assert!(e.to_string().contains("NAME=CONTEXT"), "{e}");
    }

    #[test]
    fn without_a_context_the_current_one_is_the_cluster() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config");
        std::fs::write(
            &path,
            "apiVersion: v1\nkind: Config\ncurrent-context: prod\ncontexts:\n- name: prod\n  context: {cluster: p, user: u}\nclusters:\n- name: p\n  cluster: {server: 'https://127.0.0.1:1'}\nusers:\n- name: u\n  user: {token: t}\n",
        )
        .expect("write");
        let n = named(&args(&[]), &path).expect("named");
        assert_eq!(n[0].cluster, "prod");
        assert!(not_both(Some(Path::new("/s")), &args(&[])).is_err());
        assert!(not_both(None, &args(&[])).is_ok());
    }
}
