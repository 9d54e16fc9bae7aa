//! `strait install` and `strait create-remote-secret` as an operator runs them: every object
//! rendered for the seed meshes' clusters is valid against Kubernetes' own OpenAPI schemas
//! (kubernetes-validate, from PyPI; this test fails, never skips, without it: `.ci/run`
//! installs it), and bad flags get errors that name the flag.

use std::path::Path;
use std::process::{Command, Output};

const STRAIT: &str = env!("CARGO_BIN_EXE_strait");

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn strait(args: &[&str]) -> Output {
    Command::new(STRAIT)
        .args(args)
        .current_dir(repo())
        .output()
        .expect("strait runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn rendered_manifests_pass_kubernetes_validate() {
    let validator =
        std::env::var("KUBERNETES_VALIDATE").unwrap_or_else(|_| "kubernetes-validate".into());
    let found = Command::new(&validator).arg("--version").output();
    assert!(
        found.as_ref().is_ok_and(|o| o.status.success()),
        "{validator} is not installed: python3 -m pip install kubernetes-validate \
         (in a venv; .ci/run installs it). This test fails rather than skips without it."
    );
    let out = Command::new(repo().join("scripts/validate-install.sh"))
        .env("STRAIT", STRAIT)
        .env("KUBERNETES_VALIDATE", &validator)
        .current_dir(repo())
        .output()
        .expect("the script runs");
    assert!(
        out.status.success(),
        "scripts/validate-install.sh failed:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(text(&out.stdout).contains("objects are valid"));
}

#[test]
fn bad_flags_are_named() {
    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "install",
                "--dry-run",
                "--mesh",
                "examples/primary-remote",
                "--cluster",
                "cluster2",
            ],
            "--primary-address is required for remote cluster cluster2",
        ),
        (
            &[
                "install",
                "--dry-run",
                "--mesh",
                "examples/multicluster",
                "--cluster",
                "cluster9",
            ],
            "--cluster cluster9",
        ),
        (
            &[
                "install",
                "--dry-run",
                "--mesh",
                "crates",
                "--cluster",
                "c1",
            ],
            "--mesh crates: not a mesh directory",
        ),
        (
            &[
                "install",
                "--dry-run",
                "--cluster",
                "c1",
                "--role",
                "remote",
            ],
            "--primary-address is required",
        ),
        (
            &[
                "install",
                "--dry-run",
                "--cluster",
                "c1",
                "--primary-address",
                "10.0.0.1",
            ],
            "--primary-address and --primary-cluster are for --role remote",
        ),
        (
            &["install", "--dry-run", "--cluster", "Bad_Name"],
            "--cluster: cluster name \"Bad_Name\" is not a DNS label",
        ),
        (
            &[
                "create-remote-secret",
                "--name",
                "c2",
                "--kubeconfig",
                "/nonexistent/kubeconfig",
            ],
            "cannot read the kubeconfig /nonexistent/kubeconfig",
        ),
    ];
    for (args, expected) in cases {
        let out = strait(args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(expected), "{args:?}: {err}");
    }
}

#[test]
fn json_output_is_one_list() {
    let out = strait(&[
        "install",
        "--dry-run",
        "--cluster",
        "c1",
        "--network",
        "n1",
        "-o",
        "json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["kind"], "List");
    assert!(v["items"].as_array().is_some_and(|i| i.len() > 20));
}

#[test]
fn remote_secret_from_a_kubeconfig_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kc = dir.path().join("config");
    std::fs::write(
        &kc,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: k\n  cluster:\n    server: https://10.1.2.3:6443\n    certificate-authority-data: Q0E=\ncontexts:\n- name: k\n  context: {cluster: k, user: u}\ncurrent-context: k\nusers:\n- name: u\n  user:\n    exec: {command: kubelogin}\n",
    )
    .expect("write");
    let token = dir.path().join("token");
    std::fs::write(&token, "reader-token\n").expect("write");
    let kc_arg = kc.to_string_lossy().into_owned();
    let out = strait(&[
        "create-remote-secret",
        "--name",
        "cluster2",
        "--kubeconfig",
        &kc_arg,
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains(&kc_arg) && err.contains("\"u\""), "{err}");
    let token_arg = token.to_string_lossy().into_owned();
    let out = strait(&[
        "create-remote-secret",
        "--name",
        "cluster2",
        "--kubeconfig",
        &kc_arg,
        "--token-file",
        &token_arg,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let yaml = text(&out.stdout);
    assert!(
        yaml.contains("name: istio-remote-secret-cluster2"),
        "{yaml}"
    );
    assert!(yaml.contains("istio/multiCluster: \"true\""), "{yaml}");
    assert!(yaml.contains("token: reader-token\n"), "{yaml}");
}
