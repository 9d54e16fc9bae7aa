//! The ways strait is shipped agree with what it renders:
//! * the `Dockerfile` builds the image the manifests run: the entrypoint is the binary (the
//!   containers give only `args`, each a strait subcommand), every container port is exposed,
//!   the default user is the proxy's UID, and the tools the init container runs are installed;
//! * the Helm chart in `charts/strait` is exactly what `strait install --helm-chart` generates,
//!   and Helm's own engine renders it, for each shape of install, to exactly the objects of
//!   `strait install --dry-run` with the same options (`scripts/helm-template.sh`, which
//!   installs Helm's engine from PyPI into a venv; this test fails, never skips, without it).

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use support::STRAIT;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The Dockerfile's instructions of the final stage, continuation lines joined.
fn final_stage(dockerfile: &str) -> Vec<(String, String)> {
    let mut joined = String::new();
    for line in dockerfile.lines() {
        let t = line.trim();
        if t.starts_with('#') || t.is_empty() {
            continue;
        }
        match t.strip_suffix('\\') {
            Some(rest) => {
                joined.push_str(rest);
                joined.push(' ');
            }
            None => {
                joined.push_str(t);
                joined.push('\n');
            }
        }
    }
    let mut stage = Vec::new();
    for line in joined.lines() {
        let (op, rest) = line.split_once(' ').unwrap_or((line, ""));
        if op.eq_ignore_ascii_case("FROM") {
            stage.clear();
        }
        stage.push((op.to_ascii_uppercase(), rest.trim().to_string()));
    }
    stage
}

fn instruction(stage: &[(String, String)], op: &str) -> String {
    stage
        .iter()
        .rev()
        .find(|(o, _)| o == op)
        .map(|(_, r)| r.clone())
        .unwrap_or_else(|| panic!("the final stage has no {op}"))
}

fn options(role: strait_kube::install::Role) -> strait_kube::install::Options {
    strait_kube::install::Options {
        mesh_id: "mesh1".into(),
        cluster: "cluster1".into(),
        network: "network1".into(),
        role,
        trust_domain: "cluster.local".into(),
        image: strait_kube::install::default_image(),
    }
}

/// Every container the manifests run: the install's (a primary exposing its control plane,
/// and a remote) and an injected sidecar's.
fn containers() -> Vec<Value> {
    use strait_kube::install::{Role, render};
    let mut out = Vec::new();
    for role in [
        Role::Primary {
            serves_remotes: true,
        },
        Role::Remote {
            primary_address: "203.0.113.7".into(),
            primary_cluster: None,
        },
    ] {
        for o in render(&options(role)).expect("render") {
            let spec = &o["spec"]["template"]["spec"];
            for list in ["containers", "initContainers"] {
                out.extend(spec[list].as_array().cloned().unwrap_or_default());
            }
        }
    }
    let fixture = repo().join("crates/strait-kube/tests/data/deployment-pod.json");
    let body = std::fs::read(fixture).expect("fixture");
    let config = strait_kube::inject::Config::new(strait_kube::install::default_image());
    let answer = strait_kube::inject::review(&body, &config).expect("review");
    let patch = answer.response.decoded_patch().expect("patch");
    for op in patch.as_array().expect("ops") {
        let path = op["path"].as_str().unwrap_or_default();
        if path.starts_with("/spec/containers") || path.starts_with("/spec/initContainers") {
            match &op["value"] {
                Value::Array(a) => out.extend(a.iter().cloned()),
                v => out.push(v.clone()),
            }
        }
    }
    assert!(out.len() >= 6, "{} containers found", out.len());
    out
}

#[test]
fn the_dockerfile_builds_the_image_the_manifests_run() {
    let dockerfile = read("Dockerfile");
    let stage = final_stage(&dockerfile);
    let entrypoint: Vec<String> =
        serde_json::from_str(&instruction(&stage, "ENTRYPOINT")).expect("exec-form ENTRYPOINT");
    assert_eq!(entrypoint, ["/usr/local/bin/strait"]);
    let copy = instruction(&stage, "COPY");
    assert!(
        copy.starts_with("--from=build ") && copy.ends_with(" /usr/local/bin/strait"),
        "{copy}"
    );
    assert!(
        dockerfile.contains("cargo build --release --locked -p strait --bin strait"),
        "a release build of the locked dependency set"
    );
    let user = instruction(&stage, "USER");
    assert_eq!(user, "1337:1337");
    let exposed: BTreeSet<i64> = instruction(&stage, "EXPOSE")
        .split_whitespace()
        .map(|p| p.parse().expect("a port"))
        .collect();
    let run = instruction(&stage, "RUN");
    for package in ["iptables", "ca-certificates"] {
        assert!(run.contains(package), "{package} installed: {run}");
    }
    // The builder's Rust is at least the workspace's rust-version.
    let manifest = read("Cargo.toml");
    let wanted = manifest
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = "))
        .map(|v| v.trim_matches('"').to_string())
        .expect("rust-version");
    let builder = dockerfile
        .lines()
        .find_map(|l| l.strip_prefix("FROM rust:"))
        .and_then(|l| l.split('-').next())
        .expect("a rust builder");
    let version = |v: &str| -> Vec<u32> { v.split('.').map(|n| n.parse().expect("n")).collect() };
    assert!(
        version(builder) >= version(&wanted),
        "rust:{builder} < {wanted}"
    );

    for c in containers() {
        let name = c["name"].as_str().unwrap_or_default();
        assert!(
            c.get("command").is_none(),
            "{name}: the image's entrypoint runs"
        );
        assert_eq!(
            c["image"],
            Value::String(strait_kube::install::default_image()),
            "{name}"
        );
        let sub = c["args"][0].as_str().expect("a subcommand");
        let help = Command::new(STRAIT)
            .args([sub, "--help"])
            .output()
            .expect("runs");
        assert!(help.status.success(), "{name}: `strait {sub}` exists");
        for p in c["ports"].as_array().into_iter().flatten() {
            let port = p["containerPort"].as_i64().expect("port");
            assert!(
                exposed.contains(&port),
                "{name}: {port} not in EXPOSE {exposed:?}"
            );
        }
        let uid = c["securityContext"]["runAsUser"]
            .as_i64()
            .expect("runAsUser");
        if sub == "init" {
            assert_eq!(uid, 0, "istio-init writes iptables rules as root");
            let caps = &c["securityContext"]["capabilities"]["add"];
            assert!(caps.to_string().contains("NET_ADMIN"), "{caps}");
        } else {
            assert_eq!(
                uid.to_string(),
                user.split(':').next().unwrap_or_default(),
                "{name}"
            );
        }
    }
}

#[test]
fn the_build_context_keeps_what_the_build_needs() {
    let ignored: Vec<String> = read(".dockerignore")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.trim_end_matches('/').to_string())
        .collect();
    // The workspace, its lock file, and the examples the binary embeds (include_str!).
    for needed in ["Cargo.toml", "Cargo.lock", "crates", "examples"] {
        assert!(!ignored.iter().any(|i| i == needed), "{needed} is ignored");
    }
    for heavy in ["target", ".git"] {
        assert!(
            ignored.iter().any(|i| i == heavy),
            "{heavy} is sent to the builder"
        );
    }
}

fn strait(args: &[&str]) -> std::process::Output {
    Command::new(STRAIT)
        .args(args)
        .current_dir(repo())
        .output()
        .expect("strait runs")
}

/// The flags the committed chart was generated with (its values.yaml defaults).
const CHART_FLAGS: &[&str] = &["--cluster", "cluster1", "--network", "network1"];

#[test]
fn the_chart_is_what_the_renderer_generates() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("strait");
    let dir_arg = dir.display().to_string();
    let mut args = vec!["install", "--helm-chart", &dir_arg];
    args.extend(CHART_FLAGS);
    let out = strait(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let committed = repo().join("charts/strait");
    let list = |root: &Path| -> BTreeSet<String> {
        let mut files = BTreeSet::new();
        for sub in ["", "templates"] {
            for e in std::fs::read_dir(root.join(sub)).expect("dir").flatten() {
                if e.path().is_file() {
                    files.insert(format!("{sub}/{}", e.file_name().to_string_lossy()));
                }
            }
        }
        files.remove("/README.md");
        files
    };
    let (generated, present) = (list(&dir), list(&committed));
    assert_eq!(
        present,
        generated,
        "charts/strait is out of date: strait install --helm-chart charts/strait {}",
        CHART_FLAGS.join(" ")
    );
    for f in &generated {
        let rel = f.trim_start_matches('/');
        let (a, b) = (
            std::fs::read_to_string(dir.join(rel)).expect("generated"),
            std::fs::read_to_string(committed.join(rel)).expect("committed"),
        );
        assert!(
            a == b,
            "charts/strait/{rel} differs from what strait install --helm-chart generates: \
             strait install --helm-chart charts/strait {}",
            CHART_FLAGS.join(" ")
        );
    }
}

/// The chart rendered by Helm's engine with `values` (JSON): its objects, in template order.
fn helm_template(values: &str) -> Result<Vec<Value>, String> {
    let out = Command::new(repo().join("scripts/helm-template.sh"))
        .arg(repo().join("charts/strait"))
        .arg(values)
        .current_dir(repo())
        .output()
        .expect("scripts/helm-template.sh runs");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let parsed = strait_api::yaml::parse(&text, strait_api::FileId(0), 0, 0);
    Ok(parsed
        .documents
        .iter()
        .map(|doc| {
            strait_api::de::from_node::<Value>(doc)
                .0
                .expect("a YAML object")
        })
        .collect())
}

fn install_json(flags: &[&str]) -> Vec<Value> {
    let mut args = vec!["install", "--dry-run", "-o", "json"];
    args.extend(flags);
    let out = strait(&args);
    assert!(
        out.status.success(),
        "strait {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: Value = serde_json::from_slice(&out.stdout).expect("a JSON List");
    list["items"].as_array().cloned().expect("items")
}

#[test]
fn helm_renders_the_chart_as_strait_install_renders_the_same_options() {
    let cases: &[(&str, &[&str])] = &[
        // The defaults: what the chart was generated for.
        ("{}", CHART_FLAGS),
        (
            r#"{"clusterName": "cluster2", "network": "network2", "role": "remote",
                "primaryAddress": "203.0.113.7", "primaryCluster": "cluster1"}"#,
            &[
                "--cluster",
                "cluster2",
                "--network",
                "network2",
                "--role",
                "remote",
                "--primary-address",
                "203.0.113.7",
                "--primary-cluster",
                "cluster1",
            ],
        ),
        (
            r#"{"clusterName": "west", "network": "", "role": "remote",
                "primaryAddress": "gw.example.com", "meshId": "m2", "trustDomain": "example.org"}"#,
            &[
                "--cluster",
                "west",
                "--role",
                "remote",
                "--primary-address",
                "gw.example.com",
                "--mesh-id",
                "m2",
                "--trust-domain",
                "example.org",
            ],
        ),
        (
            r#"{"role": "remote", "primaryAddress": "2001:db8::7", "network": "1234"}"#,
            &[
                "--cluster",
                "cluster1",
                "--network",
                "1234",
                "--role",
                "remote",
                "--primary-address",
                "2001:db8::7",
            ],
        ),
        (
            r#"{"clusterName": "east", "exposeIstiod": true, "image": "registry.example/strait@sha256:0123"}"#,
            &[
                "--cluster",
                "east",
                "--network",
                "network1",
                "--role",
                "primary",
                "--expose-istiod",
                "--image",
                "registry.example/strait@sha256:0123",
            ],
        ),
    ];
    for (values, flags) in cases {
        let helm = helm_template(values)
            .unwrap_or_else(|e| panic!("scripts/helm-template.sh charts/strait {values}: {e}"));
        let install = install_json(flags);
        for (i, (h, s)) in helm.iter().zip(&install).enumerate() {
            assert_eq!(
                h, s,
                "object {i} differs for values {values} / strait install {flags:?}"
            );
        }
        assert_eq!(
            helm.len(),
            install.len(),
            "values {values} / strait install {flags:?}"
        );
    }
}

#[test]
fn the_chart_refuses_what_strait_install_refuses() {
    for (values, field) in [
        (r#"{"clusterName": "Bad_Name"}"#, "clusterName"),
        (r#"{"role": "remote"}"#, "primaryAddress"),
        (
            r#"{"role": "remote", "primaryAddress": "not an address"}"#,
            "primaryAddress",
        ),
        (r#"{"network": "-x"}"#, "network"),
        (r#"{"role": "secondary"}"#, "role"),
    ] {
        let err = helm_template(values).expect_err(values);
        assert!(err.contains(field), "{values}: {err}");
    }
}
