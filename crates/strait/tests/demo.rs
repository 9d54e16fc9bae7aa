//! `strait demo` as README's first command runs it: analysis of a clean and a broken
//! two-cluster mesh, then one cluster running with real traffic.

#[test]
fn demo_analyzes_then_runs_a_mesh() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_strait"))
        .args(["demo", "--color", "never", "--dir"])
        .arg(dir.path().join("demo"))
        .output()
        .expect("run demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let clean = stdout.split("2. After").next().unwrap_or_default();
    assert!(clean.contains("no findings"), "{stdout}");
    for code in ["STR0102", "IST0102"] {
        assert!(stdout.contains(code), "{code} missing:\n{stdout}");
    }
    assert!(
        stdout.contains("3. One cluster running on this machine"),
        "{stdout}"
    );
    assert!(
        stdout.contains("20 requests: v1 0, v2 20"),
        "the live edit must apply:\n{stdout}"
    );
}
