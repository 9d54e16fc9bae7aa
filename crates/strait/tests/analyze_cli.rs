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
        let out = strait(&["analyze", f, "-o", fmt, "--failure-threshold", "warning"]);
        assert_eq!(out.status.code(), Some(1), "{fmt} with threshold warning");
        // istioctl's default: only errors fail the run.
        let out = strait(&["analyze", f, "-o", fmt]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{fmt} with the default threshold"
        );
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
    let out = strait(&[
        "analyze",
        f,
        "--failure-threshold",
        "warning",
        "-S",
        "STR0201=VirtualService pay.shop",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = strait(&[
        "analyze",
        f,
        "--failure-threshold",
        "warning",
        "-S",
        "STR0201=VirtualService *.other",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let annotated = WARNING_ONLY.replacen(
        "metadata: {name: pay, namespace: shop}",
        "metadata: {name: pay, namespace: shop, annotations: {galley.istio.io/analyze-suppress: STR0201}}",
        1,
    );
    let g = write(dir.path(), "annotated.yaml", &annotated);
    let out = strait(&[
        "analyze",
        g.to_str().expect("path"),
        "--failure-threshold",
        "warning",
    ]);
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
    let out = with_stdin(
        &[
            "analyze",
            "-",
            "-o",
            "json",
            "--failure-threshold",
            "warning",
        ],
        WARNING_ONLY,
    );
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

/// Runs `strait args`, failing the test instead of hanging when it does not finish.
fn strait_finishing(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_strait"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn strait");
    // Generous: the run takes well under a second; this only turns a hang into a failure.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while child.try_wait().expect("wait").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("strait {args:?} did not finish");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

#[cfg(unix)]
#[test]
fn symlink_loops_finish_and_read_each_file_once() {
    use std::os::unix::fs::symlink;
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path().join("d");
    std::fs::create_dir(&d).expect("mkdir");
    write(&d, "vs.yaml", WARNING_ONLY);
    symlink(".", d.join("s1")).expect("symlink");
    symlink(".", d.join("s2")).expect("symlink");
    let out = strait_finishing(&["analyze", d.to_str().expect("path"), "-o", "json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let findings = v["findings"].as_array().expect("findings");
    let codes: Vec<&str> = findings.iter().filter_map(|f| f["code"].as_str()).collect();
    assert_eq!(
        codes.iter().filter(|c| **c == "STR0201").count(),
        1,
        "{codes:?}"
    );
    assert!(
        !codes.contains(&"STR0012"),
        "no duplicate objects: {codes:?}"
    );
    let files: Vec<&str> = findings
        .iter()
        .filter_map(|f| f["source"]["file"].as_str())
        .collect();
    for f in &files {
        assert!(!f.contains("/s1/") && !f.contains("/s2/"), "{f}");
    }
    let loops: Vec<&str> = findings
        .iter()
        .filter(|f| f["code"] == "STR0001")
        .map(|f| {
            assert_eq!(f["level"], "Warning");
            f["message"].as_str().expect("message")
        })
        .collect();
    assert_eq!(loops.len(), 2, "one warning per loop: {loops:?}");
    assert!(loops[0].contains("symlink loop") && loops[0].contains("/d/s1 leads back to"));
    assert!(loops[1].contains("/d/s2 leads back to"), "{}", loops[1]);
}

#[test]
fn empty_input_is_an_input_error() {
    for fmt in ["text", "json", "sarif"] {
        let out = with_stdin(&["analyze", "-", "-o", fmt], "");
        assert_eq!(out.status.code(), Some(2), "{fmt}: empty stdin");
    }
    let out = with_stdin(&["analyze", "-"], "");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("standard input (-) is empty: nothing to analyze (did the command before the pipe fail?)"),
        "{text}"
    );
    let out = with_stdin(
        &["analyze", "-"],
        "# Source: chart/templates/x.yaml\n---\n---\n",
    );
    assert_eq!(out.status.code(), Some(2), "only comments and separators");
    assert!(String::from_utf8_lossy(&out.stdout).contains("holds only comments"));

    let tmp = tempfile::tempdir().expect("tempdir");
    write(tmp.path(), "README.md", "not a manifest\n");
    let dir = tmp.path().to_str().expect("path");
    let out = strait(&["analyze", dir]);
    assert_eq!(out.status.code(), Some(2), "no manifest files");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("{dir} holds no manifest files")),
        "{text}"
    );

    let sub = tmp.path().join("sub");
    std::fs::create_dir(&sub).expect("mkdir");
    let empty = write(&sub, "empty.yaml", "# nothing yet\n");
    let vs = write(tmp.path(), "vs.yaml", WARNING_ONLY);
    let out = strait(&[
        "analyze",
        vs.to_str().expect("path"),
        empty.to_str().expect("path"),
    ]);
    assert_eq!(out.status.code(), Some(2), "one empty input among others");
    assert!(String::from_utf8_lossy(&out.stdout).contains("empty.yaml holds only comments"));
    let out = strait(&["analyze", dir]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "a directory with a document somewhere is not empty: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

const GO_TEMPLATE_VALUES: &str = r#"apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata: {name: pods, namespace: monitoring}
spec:
  groups:
  - name: pods
    rules:
    - alert: CrashLooping
      expr: rate(kube_pod_container_status_restarts_total[5m]) > 0
      annotations:
        summary: Pod is crash looping {{ $labels.pod }}.
        description: "value is \"{{ $value }}\""
---
apiVersion: v1
kind: ConfigMap
metadata: {name: alerting, namespace: monitoring}
data:
  title: '{{ template "slack.default.title" . }}'
  summary: Pod is crash looping {{ $labels.pod }}.
"#;

#[test]
fn go_template_text_in_values_is_analyzed() {
    let out = with_stdin(&["analyze", "-", "-o", "json"], GO_TEMPLATE_VALUES);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = with_stdin(&["analyze", "-"], GO_TEMPLATE_VALUES);
    let summary = String::from_utf8_lossy(&out.stderr);
    assert!(summary.contains("1 resource in 1 cluster"), "{summary}");
}

#[test]
fn a_helm_value_in_a_rendered_pod_is_a_warning_not_an_input_error() {
    let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: default}\nspec:\n  containers:\n  - name: app\n    image: app:1\n    args: [\"--config={{ .Values.config }}\"]\n";
    let out = with_stdin(&["analyze", "-", "-o", "json"], pod);
    assert_eq!(
        out.status.code(),
        Some(0),
        "a warning, not an input error (2)"
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let helm: Vec<&serde_json::Value> = v["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["code"] == "STR0003")
        .collect();
    assert_eq!(helm.len(), 1, "{v}");
    assert_eq!(helm[0]["level"], "Warning");
    assert_eq!(helm[0]["resource"]["name"], "p");
    // An unrendered chart is still an input error.
    let chart = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {{ .Release.Namespace }}\n";
    assert_eq!(with_stdin(&["analyze", "-"], chart).status.code(), Some(2));
}

/// Istio's own SPIRE sample closes a container's `args: [` list at the key's indentation:
/// outside the YAML spec, accepted by `kubectl apply`, so accepted here.
#[test]
fn a_flow_list_closed_at_its_keys_indentation_loads() {
    let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: default}\nspec:\n  containers:\n    - name: app\n      image: app:1\n      args: [\n          \"-a\", \"b\",\n      ]\n      ports:\n      - containerPort: 8080\n        name: htp\n";
    let out = with_stdin(&["analyze", "-", "-o", "json"], pod);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let codes: Vec<&str> = v["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter_map(|f| f["code"].as_str())
        .collect();
    assert!(!codes.contains(&"STR0002"), "{v}");
}

/// A mesh config, a meshNetworks file or Helm values passed as manifests: still an input
/// error, with the flag (or the command) that reads them.
#[test]
fn files_that_are_not_manifests_say_what_reads_them() {
    for (text, hint) in [
        (
            "enableAutoMtls: true\ntrustDomain: example.org\n",
            "--mesh-config FILE",
        ),
        (
            "networks:\n  n1:\n    endpoints: [{fromRegistry: c1}]\n    gateways: [{registry_service_name: gw.istio-system.svc.cluster.local, port: 15443}]\n",
            "--mesh-networks FILE",
        ),
        ("global:\n  hub: example.org/istio\n", "helm template"),
    ] {
        let out = with_stdin(&["analyze", "-"], text);
        assert_eq!(out.status.code(), Some(2), "{text}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains(hint), "{text}: {stdout}");
    }
}

#[test]
fn closed_stderr_is_not_an_error() {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_strait"))
        .args(["analyze", &example()])
        .stdout(Stdio::piped())
        .stderr(writer)
        .output()
        .expect("run strait");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

/// The input is the whole world unless `--partial`: then a reference to something it lacks
/// is Info, and does not fail the run.
#[test]
fn partial_input_lowers_what_it_does_not_hold() {
    let dir = tempfile::tempdir().expect("tmp");
    let gw = "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: public, namespace: edge}\nspec:\n  selector: {istio: ingressgateway}\n  servers:\n  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: [www.example.com]\n";
    // A VirtualService whose gateway, one destination host and a subset are elsewhere.
    let vs = "---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: shop, namespace: shop}\nspec:\n  hosts: [shop.example.com]\n  gateways: [edge/missing-gw]\n  http:\n  - route: [{destination: {host: web, subset: v1}, weight: 50}, {destination: {host: gone}, weight: 50}]\n---\napiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop}\nspec:\n  ports: [{name: http, port: 80}]\n";
    let path = write(dir.path(), "gateway.yaml", &format!("{gw}{vs}"));
    let path = path.to_str().expect("utf-8");
    // The Gateway's other finding (no VirtualService routes its host) is a Warning.
    let args = ["--failure-threshold", "error", "--color", "never"];
    let whole = strait(&[&["analyze", path][..], &args].concat());
    let text = String::from_utf8_lossy(&whole.stdout);
    assert_eq!(whole.status.code(), Some(1), "{text}");
    assert!(text.contains("Error [IST0101]"), "{text}");
    let partial = strait(&[&["analyze", "--partial", path][..], &args].concat());
    let text = String::from_utf8_lossy(&partial.stdout);
    assert_eq!(partial.status.code(), Some(0), "{text}");
    assert!(
        text.contains("Info [IST0101]") && text.contains("--partial"),
        "{text}"
    );
    for what in ["gateway not found", "host not found", "host+subset"] {
        assert!(
            text.lines()
                .any(|l| l.contains("Info [IST0101]") && l.contains(what)),
            "{what}: {text}"
        );
    }
}

/// IST0126 names the resource istioctl names: the mesh networks, `MeshNetworks
/// <istio namespace>/meshnetworks`, wherever they are written.
#[test]
fn mesh_networks_findings_name_the_mesh_networks() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../crates/strait-analyze/tests/fixtures/IST0126/fires");
    let out = strait(&["analyze", fixture.to_str().expect("utf-8"), "-o", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let findings = v["findings"].as_array().expect("findings");
    let f = findings
        .iter()
        .find(|f| f["code"] == "IST0126")
        .expect("an IST0126 finding");
    assert_eq!(f["resource"]["kind"], "MeshNetworks", "{f}");
    assert_eq!(f["resource"]["namespace"], "istio-system", "{f}");
    assert_eq!(f["resource"]["name"], "meshnetworks", "{f}");
}
