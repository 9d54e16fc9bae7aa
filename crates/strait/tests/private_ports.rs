//! On one machine a local mesh keeps to its owner: another local user cannot speak as a
//! workload through its sidecar's outbound listener, reach an app around its sidecar (and so
//! around STRICT mTLS and policy), or read a proxy's or control plane's configuration, even
//! from an address it borrows from the pod. The owner's own neighbours are held to the model
//! of a cluster: a pod's private ports answer that pod and the operator only.

mod support;

use std::os::unix::process::CommandExt;
use std::process::Command;

use support::Mesh;

/// The uid the stranger runs as (`nobody`).
const STRANGER: u32 = 65534;

fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

/// `curl` from `source` (bound with `--interface`), as `uid` (this process's user when
/// `None`): the HTTP status, 0 when no response came.
fn curl(uid: Option<u32>, source: std::net::IpAddr, args: &[&str]) -> u16 {
    let mut cmd = Command::new("curl");
    cmd.args([
        "-q",
        "-sS",
        "-m",
        "5",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
    ])
    .args(["--interface", &source.to_string()])
    .args(args)
    .env_remove("HTTP_PROXY")
    .env_remove("http_proxy");
    if let Some(uid) = uid {
        cmd.uid(uid).gid(uid);
    }
    let out = cmd.output().expect("run curl");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

#[test]
fn private_ports_answer_the_pod_and_the_owner_only() {
    assert!(
        is_root(),
        "this test plays another local user (uid {STRANGER}), which needs root"
    );
    let mesh = Mesh::up("single-cluster", 47, &[], &[]);
    let sleep = mesh.pod("cluster1/sample/sleep");
    let v1 = mesh.pod("cluster1/sample/helloworld-v1");
    let operator = std::net::IpAddr::from([127, 0, 0, 1]);
    let neighbour = support::neighbour(sleep.ip);
    let outbound = format!("http://{}", sleep.outbound());
    let hello = "http://helloworld.sample:5000/hello";
    let app = format!(
        "http://{}/hello",
        std::net::SocketAddr::new(v1.app_ip, 5000)
    );
    let dump = format!("http://{}/config_dump", sleep.admin());
    let cp = mesh.state().clusters[0]
        .control_plane
        .clone()
        .expect("control plane");
    let syncz = format!("http://{}/debug/syncz", cp.debug);

    // The owner: through the sidecar as the pod (and as the operator, as `strait exec` does),
    // the app from its own sidecar's address, the config dump and the control plane's debug.
    assert_eq!(curl(None, sleep.ip, &["-x", &outbound, hello]), 200);
    assert_eq!(curl(None, operator, &["-x", &outbound, hello]), 200);
    assert_eq!(curl(None, v1.ip, &[&app]), 200);
    assert_eq!(curl(None, operator, &[&dump]), 200);
    assert_eq!(curl(None, cp.debug.ip(), &[&syncz]), 200);

    // Another pod of the network, even the owner's: not through this pod's sidecar, not to
    // another pod's app, not into this pod's admin.
    assert_eq!(curl(None, neighbour, &["-x", &outbound, hello]), 0);
    assert_eq!(
        curl(None, sleep.ip, &[&app]),
        0,
        "an app answers its sidecar only"
    );
    assert_eq!(curl(None, operator, &[&app]), 0);
    assert_eq!(curl(None, neighbour, &[&dump]), 0);

    // Another local user, from the very addresses the owner's processes use: nothing.
    let stranger = Some(STRANGER);
    assert_eq!(curl(stranger, sleep.ip, &["-x", &outbound, hello]), 0);
    assert_eq!(curl(stranger, operator, &["-x", &outbound, hello]), 0);
    assert_eq!(curl(stranger, v1.ip, &[&app]), 0);
    assert_eq!(curl(stranger, sleep.ip, &[&dump]), 0);
    assert_eq!(curl(stranger, operator, &[&dump]), 0);
    assert_eq!(curl(stranger, operator, &[&syncz]), 0);
    // What a cluster lets anyone probe stays open: readiness.
    let health = format!(
        "http://{}/healthz/ready",
        std::net::SocketAddr::new(sleep.ip, 15021)
    );
    assert_eq!(curl(stranger, operator, &[&health]), 200);

    // Each refusal is logged by the listener that made it, naming the user.
    let log = mesh.log();
    assert!(log.contains("not to the mesh's owner"), "{log}");
    assert!(log.contains("answers only its own pod"), "{log}");
}
