//! `strait demo`: the seed scenario, analyzed and then running on this machine.
//!
//! `multi-primary` (default) is "Istio multi-network, multi-primary on EKS": cluster1 and
//! cluster2 on network1 and network2, both primaries, one shared root, east-west gateways with
//! the cross-network Gateway, helloworld v1 in cluster1 and v2 in cluster2, sleep in both.
//! `primary-remote` is "Istio primary-remote on EKS and AKS": cluster1 the primary, cluster2 a
//! remote on network2 whose proxies reach cluster1's control plane through its east-west
//! gateway; a dashboard calling profile (in both clusters) and accounts.
//!
//! First the analysis: the mesh as written is clean, and each of the mistakes the field makes
//! most (no cross-network Gateway, another root, no network label) is flagged. Then the mesh
//! runs ([`live`]) and is shown the way the seed's scripts show a real one.

mod failover;
mod live;

use std::path::{Path, PathBuf};

use anyhow::Context;
use std::process::ExitCode;

use strait_analyze::{Options, output};
use strait_model::BuildOptions;

use crate::cli::{DemoArgs, DemoTopology};
use crate::out;

const MP_MESH: &str = include_str!("../../../../../examples/multicluster/mesh.yaml");
const MP_C1_ISTIO: &str =
    include_str!("../../../../../examples/multicluster/cluster1/istio-system.yaml");
const MP_C1_SAMPLE: &str =
    include_str!("../../../../../examples/multicluster/cluster1/sample.yaml");
const MP_C2_ISTIO: &str =
    include_str!("../../../../../examples/multicluster/cluster2/istio-system.yaml");
const MP_C2_SAMPLE: &str =
    include_str!("../../../../../examples/multicluster/cluster2/sample.yaml");

const PR_MESH: &str = include_str!("../../../../../examples/primary-remote/mesh.yaml");
const PR_C1_ISTIO: &str =
    include_str!("../../../../../examples/primary-remote/cluster1/istio-system.yaml");
const PR_C1_APP: &str =
    include_str!("../../../../../examples/primary-remote/cluster1/demo-app.yaml");
const PR_C2_ISTIO: &str =
    include_str!("../../../../../examples/primary-remote/cluster2/istio-system.yaml");
const PR_C2_APP: &str =
    include_str!("../../../../../examples/primary-remote/cluster2/demo-app.yaml");

/// A cluster's files, as (path relative to the mesh, text).
type Files = Vec<(&'static str, String)>;

fn files(topology: DemoTopology) -> Files {
    match topology {
        DemoTopology::MultiPrimary => vec![
            ("mesh.yaml", MP_MESH.into()),
            ("cluster1/istio-system.yaml", MP_C1_ISTIO.into()),
            ("cluster1/sample.yaml", MP_C1_SAMPLE.into()),
            ("cluster2/istio-system.yaml", MP_C2_ISTIO.into()),
            ("cluster2/sample.yaml", MP_C2_SAMPLE.into()),
        ],
        DemoTopology::PrimaryRemote => vec![
            ("mesh.yaml", PR_MESH.into()),
            ("cluster1/istio-system.yaml", PR_C1_ISTIO.into()),
            ("cluster1/demo-app.yaml", PR_C1_APP.into()),
            ("cluster2/istio-system.yaml", PR_C2_ISTIO.into()),
            ("cluster2/demo-app.yaml", PR_C2_APP.into()),
        ],
    }
}

/// Writes the demo's files: they hold CA keys (the `cacerts` Secrets), so every directory is
/// 0700 and every file 0600, whatever the umask.
pub(super) fn write(dir: &Path, files: &[(&str, String)]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    for (rel, text) in files {
        let p = dir.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&p)
            .with_context(|| format!("cannot write {}", p.display()))?;
        f.write_all(text.as_bytes())
            .with_context(|| format!("cannot write {}", p.display()))?;
    }
    Ok(())
}

/// `strait analyze`'s text for `dir`, indented, paths relative to it.
pub(super) fn analyze(dir: &Path, color: bool, only: Option<&str>) -> String {
    let input = strait_api::read_input(&[dir.to_path_buf()]);
    let (mesh, diags) = strait_model::build(input, &BuildOptions::default());
    let report = strait_analyze::analyze(&mesh, &diags, &Options::default());
    let mut text = Vec::new();
    // Writing to memory cannot fail.
    let _ = output::text(
        &report,
        &mesh.sources,
        output::TextOptions {
            color,
            show_source: false,
        },
        &mut text,
    );
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<String> = text
        .lines()
        .filter(|l| only.is_none_or(|code| l.contains(code)))
        .map(|l| {
            format!(
                "     {}\n",
                l.strip_prefix(&format!("{}/", dir.display())).unwrap_or(l)
            )
        })
        .collect();
    if lines.is_empty() {
        "     no findings\n".into()
    } else {
        lines.concat()
    }
}

pub(super) fn remove_doc(text: &str, needle: &str) -> String {
    text.split("\n---\n")
        .filter(|d| !d.contains(needle))
        .collect::<Vec<_>>()
        .join("\n---\n")
}

/// The seeded mistakes of the multi-primary scenario: what to change, and the code that flags
/// it.
fn mistakes(dir: &Path) -> anyhow::Result<Vec<(&'static str, Files, &'static str)>> {
    let other_root = dir.join("other-root");
    strait_ca::init(
        &["cluster2".to_string()],
        &other_root,
        "cluster.local",
        &strait_ca::InitOptions { force: true },
    )?;
    let cacerts = std::fs::read_to_string(other_root.join("cluster2/cacerts.yaml"))?;
    Ok(vec![
        (
            "cluster2 without its cross-network Gateway (expose-services.yaml never applied)",
            vec![(
                "cluster2/istio-system.yaml",
                remove_doc(MP_C2_ISTIO, "name: cross-network-gateway"),
            )],
            "STR0102",
        ),
        (
            "cluster2's cacerts from a root of its own",
            vec![(
                "cluster2/istio-system.yaml",
                format!(
                    "{}\n---\n{cacerts}",
                    remove_doc(MP_C2_ISTIO, "name: cacerts")
                ),
            )],
            "STR0103",
        ),
        (
            "cluster2's istio-system without its topology.istio.io/network label, and no global.network",
            vec![(
                "cluster2/istio-system.yaml",
                MP_C2_ISTIO
                    .replacen(
                        "  labels:\n    topology.istio.io/network: network2\n",
                        "",
                        1,
                    )
                    .replacen("      network: network2\n", "", 1),
            )],
            "STR0110",
        ),
    ])
}

pub fn run(args: &DemoArgs) -> anyhow::Result<ExitCode> {
    let color = out::use_color(args.color, true);
    // The demo's directory holds CA keys: the user's own, closed to others. A new one gets a
    // name nobody can guess in advance.
    let dir: PathBuf = match &args.dir {
        Some(d) => d.clone(),
        None => tempfile::Builder::new()
            .prefix("strait-demo-")
            .tempdir()
            .context("cannot create the demo's directory")?
            .keep(),
    };
    strait_local::up::private_dir(&dir)?;
    let mesh_dir = dir.join("mesh");
    let files = files(args.topology);
    write(&mesh_dir, &files)?;
    let mut s = String::new();
    match args.topology {
        DemoTopology::MultiPrimary => {
            s.push_str("strait demo: Istio multi-primary on two networks (\"Istio multi-network, multi-primary on EKS\")\n\n");
            s.push_str("  cluster1  network1  primary  helloworld v1, sleep, east-west gateway (15443), CA from the shared root\n");
            s.push_str("  cluster2  network2  primary  helloworld v2, sleep, east-west gateway (15443), CA from the shared root\n\n");
        }
        DemoTopology::PrimaryRemote => {
            s.push_str("strait demo primary-remote: Istio primary-remote on two networks (\"Istio primary-remote on EKS and AKS\")\n\n");
            s.push_str("  cluster1  network1  primary             dashboard (calls profile and accounts), profile v1, accounts, sleep;\n");
            s.push_str("                                          east-west gateway exposing the services and the control plane\n");
            s.push_str("  cluster2  network2  remote of cluster1  profile v2; east-west gateway; no control plane\n\n");
        }
    }
    s.push_str(&format!("1. strait analyze {}\n", mesh_dir.display()));
    s.push_str(&analyze(&mesh_dir, color, None));
    if args.topology == DemoTopology::MultiPrimary {
        s.push_str("\n   The mistakes the field makes most, each flagged before anything runs:\n");
        for (what, edits, code) in mistakes(&dir)? {
            let broken = dir.join(format!("broken-{}", code.to_ascii_lowercase()));
            write(&broken, &files)?;
            write(&broken, &edits)?;
            s.push_str(&format!("   - {what}\n"));
            s.push_str(&analyze(&broken, color, Some(code)));
        }
        s.push_str(&format!(
            "   (the broken copies are in {}: run `strait up` on one to see the failure it predicts)\n",
            dir.display()
        ));
    }
    s.push('\n');
    out::print(&s)?;
    if args.no_run {
        return Ok(ExitCode::SUCCESS);
    }
    live::run(&live::Show {
        dir: mesh_dir,
        topology: args.topology,
        once: args.once,
        netns: args.netns,
        color,
    })
}
