//! `strait demo` as README's first command runs it (with `--once`): the seed scenario
//! analyzed clean and with its mistakes, then running, shown the way the seed's scripts show a
//! real mesh; and the primary-remote variant.

fn demo(args: &[&str]) -> String {
    let dir = tempfile::tempdir().expect("tmp");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_strait"))
        .arg("demo")
        .args(args)
        .args(["--once", "--color", "never", "--dir"])
        .arg(dir.path().join("demo"))
        .output()
        .expect("run demo");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn demo_shows_both_versions_answering_through_the_gateways() {
    let stdout = demo(&[]);
    let clean = stdout.split("The mistakes").next().unwrap_or_default();
    assert!(clean.contains("no findings"), "{stdout}");
    for code in ["STR0102", "STR0103", "STR0110"] {
        assert!(stdout.contains(code), "{code} missing:\n{stdout}");
    }
    // Each gateway ready at its public address.
    let ready = stdout
        .lines()
        .filter(|l| l.contains("istio-eastwestgateway") && l.contains(" ready "))
        .count();
    assert_eq!(ready, 2, "{stdout}");
    // Each sleep holds its own pod and the other network's gateway on 15443.
    assert!(stdout.contains("east-west gateway of network2"), "{stdout}");
    assert!(stdout.contains("east-west gateway of network1"), "{stdout}");
    // Both versions answer from both clusters (the demo fails otherwise).
    for (from, to) in [("cluster1", "cluster2"), ("cluster2", "cluster1")] {
        let section = stdout
            .split(&format!("--context={from}"))
            .nth(1)
            .unwrap_or_default();
        let section = section.split("--context=").next().unwrap_or_default();
        assert!(
            section.contains("Hello version: v1") && section.contains("Hello version: v2"),
            "{from} did not reach {to}:\n{stdout}"
        );
    }
    // The mistake made live: cluster2 unreachable, then back.
    assert!(stdout.contains(", v2 0 "), "{stdout}");
    assert!(stdout.contains("put back:"), "{stdout}");
    // Locality failover: kept in the region, across the gateway once v1 dies, then back.
    assert!(stdout.contains("(kept in us-west-2)"), "{stdout}");
    let crossed = stdout
        .lines()
        .find(|l| l.contains("requests over"))
        .unwrap_or_default();
    let number = |after: &str| -> usize {
        crossed
            .split(after)
            .nth(1)
            .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(usize::MAX)
    };
    let total: usize = crossed
        .trim_start()
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let errors = number("errors ");
    assert!(crossed.contains("v1 0,"), "{stdout}");
    assert!(errors.saturating_mul(100) < total, "{stdout}");
    assert!(stdout.contains("traffic back in us-west-2"), "{stdout}");
}

#[test]
fn demo_primary_remote_balances_two_hops_deep_across_networks() {
    let stdout = demo(&["primary-remote"]);
    assert!(stdout.contains("no findings"), "{stdout}");
    let remote_synced = stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("cluster2 ") && l.ends_with("SYNCED"))
        .count();
    assert!(remote_synced >= 2, "{stdout}");
    assert!(stdout.contains("profile-v1 (cluster1)"), "{stdout}");
    assert!(stdout.contains("profile-v2 (cluster2)"), "{stdout}");
}

/// Every file holding a private key, under `dir`.
fn key_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            key_files(&path, out);
        } else if std::fs::read_to_string(&path).is_ok_and(|t| t.contains("PRIVATE KEY")) {
            out.push(path);
        }
    }
}

#[test]
fn demo_keeps_its_keys_to_its_owner() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("demo");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_strait"))
        .args(["demo", "--no-run", "--color", "never", "--dir"])
        .arg(&dir)
        .output()
        .expect("run demo");
    assert!(out.status.success(), "{out:?}");
    let mode =
        |p: &std::path::Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    let mut keys = Vec::new();
    key_files(&dir, &mut keys);
    // The cacerts Secrets of both clusters (and the other root of the seeded mistake).
    assert!(keys.len() >= 3, "{keys:?}");
    for k in &keys {
        assert_eq!(mode(k), 0o600, "{}", k.display());
    }
    // Without --dir, a fresh directory with a name nobody could create in advance.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_strait"))
        .args(["demo", "--no-run", "--color", "never"])
        .env("TMPDIR", tmp.path())
        .output()
        .expect("run demo");
    assert!(out.status.success(), "{out:?}");
    let made: Vec<_> = std::fs::read_dir(tmp.path())
        .expect("read tmp")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("strait-demo-"))
        })
        .collect();
    assert_eq!(made.len(), 1, "{made:?}");
    assert_eq!(mode(&made[0]), 0o700);
}
