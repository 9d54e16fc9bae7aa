//! `strait ca`.

use std::process::ExitCode;

use strait_ca::{ClusterAction, InitOptions, RootAction};

use crate::cli::{CaCommand, CaInitArgs};

pub fn run(cmd: &CaCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        CaCommand::Init(args) => init(args),
    }
}

fn init(args: &CaInitArgs) -> anyhow::Result<ExitCode> {
    let report = strait_ca::init(
        &args.clusters,
        &args.out,
        &args.trust_domain,
        &InitOptions { force: args.force },
    )?;
    for path in &report.written {
        eprintln!("wrote {}", path.display());
    }
    let root = report.root_cert.display();
    let key = report
        .root_cert
        .with_file_name(strait_ca::files::ROOT_KEY)
        .display()
        .to_string();
    match report.root {
        RootAction::Created => eprintln!("root: created {root} (keep {key} offline)"),
        RootAction::Reused => eprintln!("root: reused {root}"),
        RootAction::Replaced => eprintln!(
            "root: replaced {root}; clusters not listed here still trust the old root only"
        ),
    }
    for c in &report.clusters {
        match c.action {
            ClusterAction::Issued => {
                eprintln!(
                    "{}: issued an intermediate CA in {}",
                    c.name,
                    c.dir.display()
                )
            }
            ClusterAction::Kept => eprintln!(
                "{}: kept {} (already issued from this root)",
                c.name,
                c.dir.display()
            ),
        }
    }
    if !report.clusters.is_empty() {
        eprintln!(
            "next: in each cluster, before installing the control plane: kubectl apply -f {}",
            args.out
                .join("<cluster>")
                .join(strait_ca::files::CACERTS_YAML)
                .display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use strait_analyze::Options;
    use strait_model::BuildOptions;

    /// The Secrets `strait ca init` writes, dropped into a two-cluster mesh, pass strait's
    /// own trust checks: complete, valid, chaining to one shared root.
    #[test]
    fn cacerts_yaml_passes_the_analyzer() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mesh = tmp.path().join("mesh");
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/multicluster");
        std::fs::create_dir(&mesh).expect("mkdir");
        std::fs::copy(example.join("mesh.yaml"), mesh.join("mesh.yaml")).expect("copy");
        let clusters = ["cluster1".to_string(), "cluster2".to_string()];
        let certs = tmp.path().join("certs");
        strait_ca::init(&clusters, &certs, "cluster.local", &Default::default()).expect("init");
        for c in &clusters {
            let dir = mesh.join(c);
            std::fs::create_dir(&dir).expect("mkdir");
            for entry in std::fs::read_dir(example.join(c)).expect("ls") {
                let path = entry.expect("entry").path();
                let text = std::fs::read_to_string(&path).expect("read");
                // The example's own manifests, minus the cacerts it ships.
                let kept: Vec<&str> = text
                    .split("\n---\n")
                    .filter(|doc| !doc.contains("name: cacerts"))
                    .collect();
                let name = path.file_name().expect("name");
                std::fs::write(dir.join(name), kept.join("\n---\n")).expect("write");
            }
            std::fs::copy(certs.join(c).join("cacerts.yaml"), dir.join("cacerts.yaml"))
                .expect("copy");
        }
        let input = strait_api::read_input(&[mesh]);
        let (model, diags) = strait_model::build(input, &BuildOptions::default());
        assert_eq!(model.ca_bundles.len(), 2, "both Secrets are recognized");
        let report = strait_analyze::analyze(&model, &diags, &Options::default());
        let trust: Vec<_> = report
            .findings
            .iter()
            .filter(|f| ["STR0103", "STR0104", "STR0105"].contains(&f.code))
            .map(|f| format!("{}: {}", f.code, f.message))
            .collect();
        assert!(trust.is_empty(), "{trust:#?}");
        assert!(
            report.findings.iter().all(|f| !f.is_input_error()),
            "{:#?}",
            report.findings
        );
    }
}
