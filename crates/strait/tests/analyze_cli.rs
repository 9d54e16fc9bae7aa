//! `strait analyze` as users and CI call it: exit codes in every format, output shapes,
//! suppressions, stdin, mesh config files.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn strait(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_strait"))
        .args(args)
        .output()
        .expect("run strait")
}

fn with_stdin(args: &[&str], input: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_strait"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn strait");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("wait")
}

fn example() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/multicluster")
        .display()
        .to_string()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write");
    p
}

const WARNING_ONLY: &str = "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: pay, namespace: shop}
spec:
  hosts: [pay.example.com]
  http:
  - timeout: 1s
    retries: {attempts: 2, perTryTimeout: 2s}
    route: [{destination: {host: pay.example.com}}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: pay, namespace: shop}
spec:
  hosts: [pay.example.com]
  ports: [{number: 443, name: https, protocol: HTTPS}]
  resolution: STATIC
  workloadSelector: {labels: {app: pay}}
";

#[test]
fn clean_mesh_exits_zero_in_every_format() {
    for fmt in ["text", "json", "sarif"] {
        let out = strait(&["analyze", &example(), "-o", fmt]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{fmt}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn findings_exit_one_in_every_format_and_threshold_applies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = write(dir.path(), "vs.yaml", WARNING_ONLY);
    let f = f.to_str().expect("utf-8 path");
    for fmt in ["text", "json", "sarif"] {
        let out = strait(&["analyze", f, "-o", fmt]);
        assert_eq!(out.status.code(), Some(1), "{fmt}");
        let out = strait(&["analyze", f, "-o", fmt, "--failure-threshold", "error"]);
        assert_eq!(out.status.code(), Some(0), "{fmt} with threshold error");
    }
}

#[test]
fn json_shape() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = write(dir.path(), "vs.yaml", WARNING_ONLY);
    let out = strait(&["analyze", f.to_str().expect("path"), "-o", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let f0 = &v["findings"][0];
    assert_eq!(f0["code"], "STR0201");
    assert_eq!(f0["level"], "Warning");
    assert_eq!(f0["resource"]["kind"], "VirtualService");
    assert_eq!(f0["resource"]["namespace"], "shop");
    assert_eq!(f0["resource"]["name"], "pay");
    assert_eq!(f0["resource"]["cluster"], "Kubernetes");
    assert_eq!(f0["source"]["line"], 7);
    assert_eq!(f0["source"]["column"], 14);
    assert!(
        f0["source"]["file"]
            .as_str()
            .is_some_and(|s| s.ends_with("vs.yaml"))
    );
    assert!(
        f0["message"]
            .as_str()
            .is_some_and(|m| m.contains("perTryTimeout"))
    );
    assert_eq!(v["summary"]["warnings"], 1);
}

#[test]
fn sarif_shape() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = write(dir.path(), "vs.yaml", WARNING_ONLY);
    let out = strait(&["analyze", f.to_str().expect("path"), "-o", "sarif"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("sarif is json");
    assert_eq!(v["version"], "2.1.0");
    let run = &v["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "strait");
    let result = &run["results"][0];
    assert_eq!(result["ruleId"], "STR0201");
    assert_eq!(result["level"], "warning");
    let idx = result["ruleIndex"].as_u64().expect("index") as usize;
    assert_eq!(run["tool"]["driver"]["rules"][idx]["id"], "STR0201");
    assert_eq!(
        result["locations"][0]["physicalLocation"]["region"]["startLine"],
        7
    );
}

#[test]
fn suppression_by_flag_and_annotation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = write(dir.path(), "vs.yaml", WARNING_ONLY);
    let f = f.to_str().expect("path");
    let out = strait(&["analyze", f, "-S", "STR0201=VirtualService pay.shop"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = strait(&["analyze", f, "-S", "STR0201=VirtualService *.other"]);
    assert_eq!(out.status.code(), Some(1));
    let annotated = WARNING_ONLY.replacen(
        "metadata: {name: pay, namespace: shop}",
        "metadata: {name: pay, namespace: shop, annotations: {galley.istio.io/analyze-suppress: STR0201}}",
        1,
    );
    let g = write(dir.path(), "annotated.yaml", &annotated);
    let out = strait(&["analyze", g.to_str().expect("path")]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn usage_and_input_errors_exit_two() {
    assert_eq!(strait(&["analyze"]).status.code(), Some(2), "no path");
    assert_eq!(
        strait(&["analyze", "x.yaml", "-o", "xml"]).status.code(),
        Some(2),
        "bad format"
    );
    assert_eq!(
        strait(&["analyze", "x.yaml", "-S", "nonsense"])
            .status
            .code(),
        Some(2),
        "bad suppression"
    );
    assert_eq!(
        strait(&["analyze", "x.yaml", "--analyzer", "nope"])
            .status
            .code(),
        Some(2),
        "bad analyzer"
    );
    for fmt in ["text", "json", "sarif"] {
        let out = strait(&["analyze", "/nonexistent/path.yaml", "-o", fmt]);
        assert_eq!(out.status.code(), Some(2), "{fmt}: unreadable input");
    }
    let out = with_stdin(&["analyze", "-", "-o", "json"], "a: [1, 2\n");
    assert_eq!(out.status.code(), Some(2), "syntax error");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["findings"][0]["code"], "STR0002");
}

#[test]
fn stdin_is_a_cluster() {
    let out = with_stdin(&["analyze", "-", "-o", "json"], WARNING_ONLY);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["findings"][0]["source"]["file"], "<stdin>");
}

#[test]
fn mesh_config_file_is_read_and_checked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mc = write(
        dir.path(),
        "mesh-config.yaml",
        "trustDomain: example.org\naccessLogFle: /dev/stdout\n",
    );
    let out = strait(&[
        "analyze",
        &example(),
        "--mesh-config",
        mc.to_str().expect("path"),
        "-o",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let codes: Vec<&str> = v["findings"]
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|f| f["code"].as_str())
        .collect();
    assert!(
        codes.contains(&"STR0009"),
        "typo in the mesh config file is reported: {codes:?}"
    );
}

#[test]
fn list_analyzers() {
    let out = strait(&["analyze", "-L"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("multicluster") && text.contains("STR0101"));
}

#[test]
fn closed_pipe_is_not_an_error() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_strait"))
        .args(["analyze", "-L"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.code().is_some_and(|c| c == 0),
        "exit {:?}",
        out.status
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
}
