//! `strait ca init`: the files it writes, and running it again.

mod common;

use std::path::Path;

use common::{clusters, init};
use strait_ca::{Authority, CaFileProblem, ClusterAction, Error, InitOptions, RootAction};

fn read(p: impl AsRef<Path>) -> String {
    std::fs::read_to_string(p).expect("read")
}

#[test]
fn writes_istio_cacerts_layout() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("certs");
    let report = init(&out, &["cluster1", "cluster2"]);
    assert_eq!(report.root, RootAction::Created);
    assert_eq!(report.written.len(), 2 + 2 * 5);
    assert!(
        report
            .clusters
            .iter()
            .all(|c| c.action == ClusterAction::Issued)
    );
    let root = read(out.join("root-cert.pem"));
    for c in ["cluster1", "cluster2"] {
        let dir = out.join(c);
        assert_eq!(read(dir.join("root-cert.pem")), root);
        assert_eq!(
            read(dir.join("cert-chain.pem")),
            format!("{}{root}", read(dir.join("ca-cert.pem"))),
            "cert-chain.pem is the intermediate then the root"
        );
        Authority::load(&dir).expect("loads back");
    }
}

#[cfg(unix)]
#[test]
fn keys_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().expect("tempdir");
    init(tmp.path(), &["c1"]);
    let mode = |p: &str| {
        std::fs::metadata(tmp.path().join(p))
            .expect("stat")
            .permissions()
            .mode()
            & 0o777
    };
    for secret in ["root-key.pem", "c1/ca-key.pem", "c1/cacerts.yaml"] {
        assert_eq!(mode(secret), 0o600, "{secret}");
    }
    for public in [
        "root-cert.pem",
        "c1/ca-cert.pem",
        "c1/root-cert.pem",
        "c1/cert-chain.pem",
    ] {
        assert_eq!(mode(public), 0o644, "{public}");
    }
}

#[test]
fn secret_manifest_holds_the_four_files() {
    let tmp = tempfile::tempdir().expect("tempdir");
    init(tmp.path(), &["c1"]);
    let dir = tmp.path().join("c1");
    let yaml = read(dir.join("cacerts.yaml"));
    for line in [
        "apiVersion: v1",
        "kind: Secret",
        "  name: cacerts",
        "  namespace: istio-system",
        "stringData:",
    ] {
        assert!(
            yaml.lines().any(|l| l == line),
            "no line {line:?} in\n{yaml}"
        );
    }
    // Each key's block scalar, de-indented, is exactly the file.
    for key in [
        "ca-cert.pem",
        "ca-key.pem",
        "root-cert.pem",
        "cert-chain.pem",
    ] {
        let header = format!("  {key}: |");
        let body: String = yaml
            .lines()
            .skip_while(|l| *l != header)
            .skip(1)
            .take_while(|l| l.starts_with("    "))
            .map(|l| format!("{}\n", &l[4..]))
            .collect();
        assert_eq!(body, read(dir.join(key)), "{key}");
    }
}

#[test]
fn second_run_reuses_the_root_and_force_replaces_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path();
    init(out, &["c1"]);
    let root = read(out.join("root-cert.pem"));
    let root_key = read(out.join("root-key.pem"));
    let c1 = read(out.join("c1/ca-cert.pem"));

    // A cluster joins later: same root, c1 untouched.
    let again = init(out, &["c1", "c2"]);
    assert_eq!(again.root, RootAction::Reused);
    assert_eq!(again.clusters[0].action, ClusterAction::Kept);
    assert_eq!(again.clusters[1].action, ClusterAction::Issued);
    assert_eq!(read(out.join("root-cert.pem")), root);
    assert_eq!(read(out.join("root-key.pem")), root_key);
    assert_eq!(read(out.join("c1/ca-cert.pem")), c1);
    assert_eq!(read(out.join("c2/root-cert.pem")), root);
    Authority::load(&out.join("c2")).expect("c2 chains to the shared root");

    // --force: a new root, every listed cluster re-issued from it.
    let forced = strait_ca::init(
        &clusters(&["c1", "c2"]),
        out,
        "cluster.local",
        &InitOptions { force: true },
    )
    .expect("forced");
    assert_eq!(forced.root, RootAction::Replaced);
    assert!(
        forced
            .clusters
            .iter()
            .all(|c| c.action == ClusterAction::Issued)
    );
    let new_root = read(out.join("root-cert.pem"));
    assert_ne!(new_root, root);
    assert_ne!(read(out.join("c1/ca-cert.pem")), c1);
    for c in ["c1", "c2"] {
        assert_eq!(read(out.join(c).join("root-cert.pem")), new_root);
        Authority::load(&out.join(c)).expect("re-issued");
    }
}

#[test]
fn refuses_to_mix_roots() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path();
    init(out, &["c1"]);

    // The root's key went missing: refuse rather than silently make a second root.
    std::fs::rename(out.join("root-key.pem"), out.join("saved-key.pem")).expect("mv");
    let e = strait_ca::init(
        &clusters(&["c2"]),
        out,
        "cluster.local",
        &InitOptions::default(),
    )
    .expect_err("partial root");
    assert!(
        matches!(&e, Error::CaFile { problem: CaFileProblem::Partial { .. }, path } if path.ends_with("root-cert.pem")),
        "{e}"
    );
    assert!(!out.join("c2").exists());
    std::fs::rename(out.join("saved-key.pem"), out.join("root-key.pem")).expect("mv");

    // A cluster directory from another root is not adopted.
    let elsewhere = out.join("elsewhere");
    init(&elsewhere, &["c3"]);
    std::fs::rename(elsewhere.join("c3"), out.join("c3")).expect("mv");
    let e = strait_ca::init(
        &clusters(&["c3"]),
        out,
        "cluster.local",
        &InitOptions::default(),
    )
    .expect_err("foreign cluster");
    assert!(
        matches!(
            &e,
            Error::CaFile {
                problem: CaFileProblem::NotFromRoot,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("--force"), "{e}");

    // Nor is one adopted by a new root: refused before anything is written.
    let fresh = out.join("fresh");
    std::fs::create_dir(&fresh).expect("mkdir");
    std::fs::rename(out.join("c3"), fresh.join("c3")).expect("mv");
    let e = strait_ca::init(
        &clusters(&["c3", "c4"]),
        &fresh,
        "cluster.local",
        &InitOptions::default(),
    )
    .expect_err("foreign cluster, no root");
    assert!(
        matches!(
            &e,
            Error::CaFile {
                problem: CaFileProblem::NotFromRoot,
                ..
            }
        ),
        "{e}"
    );
    assert!(!fresh.join("root-cert.pem").exists());
    assert!(!fresh.join("c4").exists());
}

#[test]
fn refuses_bad_arguments() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let run = |names: &[&str], td: &str| {
        strait_ca::init(&clusters(names), tmp.path(), td, &InitOptions::default())
    };
    for (names, td) in [
        (&["../escape"][..], "cluster.local"),
        (&["a", "a"][..], "cluster.local"),
        (&[""][..], "cluster.local"),
        (&["ok"][..], "Bad Domain"),
    ] {
        let e = run(names, td).expect_err("bad input");
        assert_ne!(e.blame(), strait_ca::Blame::Internal, "{e}");
    }
    assert!(
        std::fs::read_dir(tmp.path()).expect("ls").next().is_none(),
        "nothing written"
    );
}
