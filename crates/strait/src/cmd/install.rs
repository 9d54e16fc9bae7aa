//! `strait install`: the options from flags or a mesh directory, the manifests from
//! strait-kube, printed.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use strait_api::{Role as DeclRole, Severity};
use strait_kube::install::{self, InstallError, Options, Role};

use crate::cli_kube::{ClusterRole, InstallArgs, ManifestFormat};

const DEFAULT_TRUST_DOMAIN: &str = "cluster.local";

pub fn run(args: &InstallArgs) -> anyhow::Result<ExitCode> {
    let opts = options(args)?;
    if let Some(dir) = &args.helm_chart {
        let files = match install::helm::chart(&opts) {
            Ok(f) => f,
            Err(e) => bail!("{}: {e}", flag_of(&e, args.mesh.is_some())),
        };
        write_chart(dir, &files)?;
        eprintln!(
            "wrote the Helm chart to {} ({} files)",
            dir.display(),
            files.len()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let objects = match install::render(&opts) {
        Ok(o) => o,
        Err(e) => bail!("{}: {e}", flag_of(&e, args.mesh.is_some())),
    };
    if !args.dry_run {
        return apply_to_cluster(args, &opts, &objects);
    }
    let text = match args.output {
        ManifestFormat::Yaml => install::yaml::to_stream(&objects),
        ManifestFormat::Json => {
            let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": objects});
            format!("{}\n", serde_json::to_string_pretty(&list)?)
        }
    };
    crate::out::print(&text)?;
    Ok(ExitCode::SUCCESS)
}

/// Applies the render to the cluster of `--context` (server-side apply; see
/// `strait_kube::install::apply`), one line per object on stderr.
fn apply_to_cluster(
    args: &InstallArgs,
    opts: &Options,
    objects: &[serde_json::Value],
) -> anyhow::Result<ExitCode> {
    let kubeconfig = crate::cmd::cluster_target::kubeconfig_file(args.kubeconfig.as_deref())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async {
        let client =
            strait_kube::client::from_kubeconfig_file(&kubeconfig, args.context.as_deref()).await?;
        let n = install::apply::apply(&client, objects, |o| eprintln!("applied {o}")).await?;
        eprintln!(
            "{n} objects applied to cluster {} ({}); the control plane starts once its cacerts \
             Secret is in {}",
            opts.cluster,
            args.context.as_deref().unwrap_or("current context"),
            install::NAMESPACE
        );
        anyhow::Ok(ExitCode::SUCCESS)
    })
}

/// Writes the chart's files under `dir`, and removes generated templates it no longer has (a
/// hand-written README beside them stays).
fn write_chart(dir: &Path, files: &[install::helm::ChartFile]) -> anyhow::Result<()> {
    let templates = dir.join("templates");
    if let Ok(entries) = std::fs::read_dir(&templates) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let path = format!("templates/{name}");
            if !files.iter().any(|f| f.path == path) {
                std::fs::remove_file(e.path())
                    .with_context(|| format!("removing {}", e.path().display()))?;
            }
        }
    }
    for f in files {
        let path = dir.join(&f.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, &f.text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// The flag (or file) an invalid option came from.
fn flag_of(e: &InstallError, from_mesh: bool) -> &'static str {
    match e {
        InstallError::ClusterName(_) => "--cluster",
        InstallError::Network(_) | InstallError::MeshId(_) | InstallError::TrustDomain(_)
            if from_mesh =>
        {
            "mesh.yaml"
        }
        InstallError::Network(_) => "--network",
        InstallError::MeshId(_) => "--mesh-id",
        InstallError::TrustDomain(_) => "--trust-domain",
        InstallError::NoPrimaryAddress | InstallError::PrimaryAddress(_) => "--primary-address",
        InstallError::Image(_) => "--image",
    }
}

fn options(args: &InstallArgs) -> anyhow::Result<Options> {
    let image = args.image.clone().unwrap_or_else(install::default_image);
    if let Some(dir) = &args.mesh {
        return from_mesh(args, dir, image);
    }
    let role = match args.role.unwrap_or(ClusterRole::Primary) {
        ClusterRole::Primary => {
            if args.primary_address.is_some() || args.primary_cluster.is_some() {
                bail!("--primary-address and --primary-cluster are for --role remote");
            }
            Role::Primary {
                serves_remotes: args.expose_istiod,
            }
        }
        ClusterRole::Remote => {
            if args.expose_istiod {
                bail!("--expose-istiod is for a primary; a remote runs no control plane");
            }
            Role::Remote {
                primary_address: primary_address(args, None)?,
                primary_cluster: args.primary_cluster.clone(),
            }
        }
    };
    let trust_domain = args
        .trust_domain
        .clone()
        .unwrap_or_else(|| DEFAULT_TRUST_DOMAIN.into());
    Ok(Options {
        mesh_id: args.mesh_id.clone().unwrap_or_else(|| trust_domain.clone()),
        cluster: args.cluster.clone(),
        network: args.network.clone().unwrap_or_default(),
        role,
        trust_domain,
        image,
    })
}

fn primary_address(args: &InstallArgs, primary: Option<&str>) -> anyhow::Result<String> {
    match &args.primary_address {
        Some(a) if !a.trim().is_empty() => Ok(a.trim().to_string()),
        _ => {
            let ctx = primary.unwrap_or("<primary>");
            bail!(
                "--primary-address is required for remote cluster {}: the address of its \
                 primary's east-west gateway, e.g. from kubectl --context={ctx} -n istio-system \
                 get service istio-eastwestgateway",
                args.cluster
            )
        }
    }
}

/// The cluster's declaration in `DIR/mesh.yaml`, read with the loader every command uses.
fn from_mesh(args: &InstallArgs, dir: &Path, image: String) -> anyhow::Result<Options> {
    if !strait_api::layout::is_mesh_dir(dir) {
        bail!(
            "--mesh {}: not a mesh directory (it needs a mesh.yaml listing clusters)",
            dir.display()
        );
    }
    let input = strait_api::read_clusters(&[dir.to_path_buf()], &[], Some(&[]));
    let errors: Vec<String> = input
        .loaded
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| d.message.clone())
        .collect();
    if !errors.is_empty() {
        bail!("--mesh {}: {}", dir.display(), errors.join("; "));
    }
    let Some(mesh) = input.mesh else {
        bail!("--mesh {}: mesh.yaml could not be read", dir.display());
    };
    let names = || {
        let n: Vec<&str> = mesh.clusters.iter().map(|c| c.name.as_str()).collect();
        n.join(", ")
    };
    let Some(decl) = mesh.clusters.iter().find(|c| c.name == args.cluster) else {
        bail!(
            "--cluster {}: {} declares no such cluster (clusters: {})",
            args.cluster,
            dir.join(strait_api::layout::MESH_FILE).display(),
            names()
        );
    };
    let role = match decl.role {
        DeclRole::Primary => {
            if args.primary_address.is_some() {
                bail!(
                    "--primary-address: {} is a primary in mesh.yaml",
                    args.cluster
                );
            }
            let primaries = mesh
                .clusters
                .iter()
                .filter(|c| c.role == DeclRole::Primary)
                .count();
            // A remote serves this primary when it names it, or names none and this is the
            // only primary.
            let serves_remotes = mesh.clusters.iter().any(|c| {
                c.role == DeclRole::Remote
                    && match &c.primary {
                        Some(p) => *p == decl.name,
                        None => primaries == 1,
                    }
            });
            Role::Primary { serves_remotes }
        }
        DeclRole::Remote => Role::Remote {
            primary_address: primary_address(args, decl.primary.as_deref())?,
            primary_cluster: decl.primary.clone(),
        },
    };
    let trust_domain = mesh
        .trust_domain
        .clone()
        .unwrap_or_else(|| DEFAULT_TRUST_DOMAIN.into());
    Ok(Options {
        mesh_id: mesh.mesh_id.clone().unwrap_or_else(|| trust_domain.clone()),
        cluster: decl.name.clone(),
        network: decl.network.clone().unwrap_or_default(),
        role,
        trust_domain,
        image,
    })
}
