//! End to end: the habits an istioctl user brings, against one running single-cluster mesh.
//! Every name `proxy-status` prints is accepted back by `proxy-status` and `proxy-config`;
//! `proxy-config` takes istioctl's singular types; `exec` exits as a shell does when it
//! cannot start the command, and with the command's own code otherwise.

mod support;

use std::process::Output;
use std::time::Duration;

use support::Mesh;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Stdout of a run that must succeed.
fn ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: exited {:?}\n{}{}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Stderr of a run that must exit with `code`.
fn fails(out: &Output, code: i32, what: &str) -> String {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{what}:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stderr)
}

/// The first column of a table's rows.
fn names(table: &str) -> Vec<String> {
    table
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

#[test]
fn istioctl_habits_work_against_a_running_mesh() {
    let mesh = Mesh::up("single-cluster", 83, &[], &[]);
    mesh.wait_synced(0, Duration::from_secs(60));

    // Each name proxy-status prints, alone and with its CLUSTER column, names that proxy
    // again for proxy-status and proxy-config.
    let table = ok(&mesh.strait(&["proxy-status"]), "proxy-status");
    let printed = names(&table);
    // helloworld v1 and v2, sleep, and the ingress gateway.
    assert_eq!(printed.len(), 4, "{table}");
    for name in &printed {
        assert!(
            name.ends_with(".sample") || name.ends_with(".istio-system"),
            "{table}"
        );
        for target in [name.clone(), format!("cluster1/{name}")] {
            let one = ok(&mesh.strait(&["proxy-status", &target]), &target);
            assert_eq!(
                names(&one),
                std::slice::from_ref(name),
                "proxy-status {target}:\n{one}"
            );
            let clusters = ok(&mesh.strait(&["proxy-config", "cluster", &target]), &target);
            assert!(
                clusters.starts_with("SERVICE FQDN"),
                "{target}:\n{clusters}"
            );
        }
    }

    // istioctl's singular types and short aliases show what the plural forms show.
    let sleep = printed
        .iter()
        .find(|n| n.starts_with("sleep-"))
        .unwrap_or_else(|| panic!("no sleep proxy in\n{table}"));
    let routes = ok(
        &mesh.strait(&["proxy-config", "route", sleep, "--fqdn", "helloworld"]),
        "route",
    );
    assert!(
        routes.starts_with("NAME") && routes.contains("helloworld.sample.svc.cluster.local:5000"),
        "{routes}"
    );
    let plural = mesh.strait(&[
        "proxy-config",
        "routes",
        "cluster1/sample/sleep",
        "-o",
        "json",
    ]);
    let singular = mesh.strait(&["proxy-config", "r", sleep, "-o", "json"]);
    assert_eq!(ok(&singular, "r -o json"), ok(&plural, "routes -o json"));
    for (ty, header) in [
        ("endpoint", "ENDPOINT"),
        ("ep", "ENDPOINT"),
        ("c", "SERVICE FQDN"),
        ("listener", "PORT"),
        ("l", "PORT"),
    ] {
        let out = ok(&mesh.strait(&["proxy-config", ty, sleep]), ty);
        assert!(out.starts_with(header), "{ty}:\n{out}");
    }
    // A workload's name, istioctl-style, stands for its pod.
    let eps = ok(
        &mesh.strait(&["proxy-config", "ep", "sleep.sample", "--fqdn", "helloworld"]),
        "ep sleep.sample",
    );
    assert_eq!(eps.matches("HEALTHY").count(), 2, "{eps}");
    let err = fails(
        &mesh.strait(&["proxy-config", "secret", sleep]),
        2,
        "secret",
    );
    assert!(
        err.contains("possible values: clusters, endpoints, routes, listeners"),
        "{err}"
    );
    let err = fails(&mesh.strait(&["proxy-status", "sleep"]), 2, "no namespace");
    assert!(err.contains("did you mean sleep.sample?"), "{err}");

    // exec: 127 for a command that is not there, 126 for one that cannot be executed, the
    // command's own code otherwise (128 + N for signal N).
    let err = fails(
        &mesh.strait(&["exec", sleep, "--", "nosuchcmd", "--flag"]),
        127,
        "nosuchcmd",
    );
    assert!(err.contains("nosuchcmd: command not found"), "{err}");
    let script = mesh.tmp.path().join("not-executable.sh");
    std::fs::write(&script, "#!/bin/sh\nexit 0\n").expect("write script");
    let script = script.display().to_string();
    let err = fails(
        &mesh.strait(&["exec", sleep, "--", &script]),
        126,
        "not executable",
    );
    assert!(err.contains(&script), "{err}");
    for (shell, code) in [("exit 3", 3), ("exit 127", 127), ("kill -TERM $$", 143)] {
        let out = mesh.strait(&["exec", "sleep.sample", "--", "sh", "-c", shell]);
        fails(&out, code, shell);
    }
}
