//! What `strait analyze` tells the authors of the manifests in `examples/`. The snapshots are
//! the reviewed answers: a change in them is a change in behaviour to look at.

use std::path::Path;
use std::process::Command;

fn analyze(rel: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new(env!("CARGO_BIN_EXE_strait"))
        .current_dir(&root)
        .args(["analyze", rel, "--color", "never"])
        .output()
        .expect("run strait");
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&format!("exit code: {:?}\n", out.status.code()));
    text
}

#[test]
fn multicluster_example_is_clean() {
    insta::assert_snapshot!(analyze("examples/multicluster"));
}

#[test]
fn eks_aks_primary_remote() {
    insta::assert_snapshot!(analyze("examples/seeds/eks-aks"));
}

#[test]
fn article_pitfalls() {
    insta::assert_snapshot!(analyze("examples/seeds/pitfalls"));
}
