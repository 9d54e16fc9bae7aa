//! `strait demo`: the two-cluster, two-network mesh of `examples/multicluster`, analyzed as
//! written (clean), then with the mistakes multi-cluster users most often make; then one
//! cluster running for real on this machine ([`super::demo_run`]).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use strait_analyze::{Options, output};
use strait_model::BuildOptions;

use crate::cli::DemoArgs;
use crate::out;

const MESH: &str = include_str!("../../../../examples/multicluster/mesh.yaml");
const C1_ISTIO: &str = include_str!("../../../../examples/multicluster/cluster1/istio-system.yaml");
const C1_SAMPLE: &str = include_str!("../../../../examples/multicluster/cluster1/sample.yaml");
const C2_ISTIO: &str = include_str!("../../../../examples/multicluster/cluster2/istio-system.yaml");
const C2_SAMPLE: &str = include_str!("../../../../examples/multicluster/cluster2/sample.yaml");

/// Policies added in the second act: STRICT mTLS for the sample namespace, and a
/// DestinationRule that turns TLS off for helloworld.
const C1_POLICY: &str = "apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: default
  namespace: sample
spec:
  mtls:
    mode: STRICT
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: helloworld
  namespace: sample
spec:
  host: helloworld.sample.svc.cluster.local
  trafficPolicy:
    tls:
      mode: DISABLE
";

fn write(dir: &Path, files: &[(&str, String)]) -> anyhow::Result<()> {
    for (rel, text) in files {
        let p = dir.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&p, text)?;
    }
    Ok(())
}

fn analyze(dir: &Path, color: bool) -> anyhow::Result<String> {
    let input = strait_api::read_input(&[dir.to_path_buf()]);
    let (mesh, diags) = strait_model::build(input, &BuildOptions::default());
    let report = strait_analyze::analyze(&mesh, &diags, &Options::default());
    if report.findings.is_empty() {
        return Ok("  no findings\n".into());
    }
    let text = output::text(
        &report,
        &mesh.sources,
        output::TextOptions {
            color,
            show_source: false,
        },
    );
    Ok(text
        .lines()
        .map(|l| {
            format!(
                "  {}\n",
                l.strip_prefix(&format!("{}/", dir.display())).unwrap_or(l)
            )
        })
        .collect())
}

fn remove_doc(text: &str, needle: &str) -> String {
    text.split("\n---\n")
        .filter(|d| !d.contains(needle))
        .collect::<Vec<_>>()
        .join("\n---\n")
}

pub fn run(args: &DemoArgs) -> anyhow::Result<ExitCode> {
    let color = out::use_color(args.color, true);
    let dir: PathBuf = match &args.dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("strait-demo-{}", std::process::id())),
    };
    let files = vec![
        ("mesh.yaml", MESH.to_string()),
        ("cluster1/istio-system.yaml", C1_ISTIO.to_string()),
        ("cluster1/sample.yaml", C1_SAMPLE.to_string()),
        ("cluster2/istio-system.yaml", C2_ISTIO.to_string()),
        ("cluster2/sample.yaml", C2_SAMPLE.to_string()),
    ];
    write(&dir, &files)?;
    let mut s = String::new();
    s.push_str(&format!(
        "strait demo: a mesh of two primary clusters on two networks, written to {}\n\n",
        dir.display()
    ));
    s.push_str("  cluster1 (network1)  helloworld v1, sleep, east-west gateway on 15443, intermediate CA from the shared root\n");
    s.push_str("  cluster2 (network2)  helloworld v2, sleep, east-west gateway on 15443, intermediate CA from the shared root\n\n");
    s.push_str(&format!(
        "1. As written (strait analyze {}):\n",
        dir.display()
    ));
    s.push_str(&analyze(&dir, color)?);
    s.push('\n');

    let broken = vec![
        (
            "cluster1/istio-system.yaml",
            remove_doc(C1_ISTIO, "istio/multiCluster"),
        ),
        ("cluster1/policy.yaml", C1_POLICY.to_string()),
        (
            "cluster2/istio-system.yaml",
            remove_doc(C2_ISTIO, "name: cross-network-gateway"),
        ),
        (
            "cluster2/sample.yaml",
            C2_SAMPLE.replacen("  labels:\n    istio-injection: enabled\n", "\n", 1),
        ),
    ];
    write(&dir, &broken)?;
    s.push_str("2. After four everyday mistakes:\n");
    s.push_str("   - cluster1 lost its remote secret for cluster2\n");
    s.push_str("   - cluster2 has no cross-network (AUTO_PASSTHROUGH) Gateway\n");
    s.push_str("   - cluster1 enforces STRICT mTLS in sample, while a DestinationRule disables TLS to helloworld\n");
    s.push_str("   - cluster2's sample namespace lost its injection label\n\n");
    s.push_str(&analyze(&dir, color)?);
    s.push_str(&format!(
        "\n   The files are in {}; edit them and run `strait analyze {}` again.\n\n",
        dir.display(),
        dir.display()
    ));
    out::print(&s)?;
    if args.no_run {
        return Ok(ExitCode::SUCCESS);
    }
    out::print(&super::demo_run::run(&dir.join("running"))?)?;
    Ok(ExitCode::SUCCESS)
}
