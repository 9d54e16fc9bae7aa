use std::collections::BTreeMap;

use strait_config::ProxyRole;

use super::env::{EnvError, from_env, names};
use super::{Bootstrap, BootstrapError, ControlPlaneAddr, TokenError};

/// What the injector gives a sidecar, with the downward API resolved.
fn sidecar_env() -> BTreeMap<&'static str, String> {
    [
        (names::POD_NAME, "sleep-7f9c-abcde"),
        (names::POD_NAMESPACE, "sample"),
        (names::INSTANCE_IP, "10.1.2.3"),
        (names::SERVICE_ACCOUNT, "sleep"),
        (names::CLUSTER_ID, "cluster1"),
        (names::TRUST_DOMAIN, "cluster.local"),
        (names::CONTROL_PLANE, "istiod.istio-system.svc:15012"),
        (names::ROOT_CERT, "/var/run/secrets/istio/root-cert.pem"),
        (names::TOKEN_FILE, "/var/run/secrets/tokens/istio-token"),
        (names::ROLE, "sidecar"),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.to_string()))
    .collect()
}

fn build(
    env: &BTreeMap<&'static str, String>,
    role: Option<ProxyRole>,
) -> Result<Bootstrap, EnvError> {
    from_env(|name| env.get(name).cloned(), role)
}

#[test]
fn a_sidecar_from_the_injected_environment() {
    let bs = build(&sidecar_env(), None).expect("complete environment");
    assert_eq!(bs.pod, "sleep-7f9c-abcde");
    assert_eq!(bs.namespace, "sample");
    assert_eq!(bs.cluster, "cluster1");
    assert_eq!(bs.pod_ip, bs.app_ip);
    assert_eq!(
        bs.control_plane,
        ControlPlaneAddr::Dns {
            host: "istiod.istio-system.svc".into(),
            port: 15012
        }
    );
    assert_eq!(bs.control_plane_name, "istiod.istio-system.svc");
    assert_eq!(
        bs.token_file.as_deref(),
        Some(std::path::Path::new("/var/run/secrets/tokens/istio-token"))
    );
    assert!(bs.token.is_empty());
    assert_eq!(bs.role, ProxyRole::Sidecar);
    assert!(bs.capture, "REDIRECT is the default for a sidecar");
    assert_eq!(bs.identity(), "spiffe://cluster.local/ns/sample/sa/sleep");
    assert_eq!(
        bs.node_id(),
        "sidecar~10.1.2.3~sleep-7f9c-abcde.sample~sample.svc.cluster.local"
    );
}

#[test]
fn every_required_variable_is_named_with_its_origin_when_missing_or_empty() {
    for name in [
        names::POD_NAME,
        names::POD_NAMESPACE,
        names::INSTANCE_IP,
        names::SERVICE_ACCOUNT,
        names::CLUSTER_ID,
        names::TRUST_DOMAIN,
        names::CONTROL_PLANE,
        names::ROOT_CERT,
        names::TOKEN_FILE,
        names::ROLE,
    ] {
        for value in [None, Some("  ")] {
            let mut env = sidecar_env();
            match value {
                None => env.remove(name),
                Some(v) => env.insert(name, v.to_string()),
            };
            let err = build(&env, None).expect_err(name);
            assert_eq!(err, EnvError::Missing { name }, "{name}");
            let text = err.to_string();
            assert!(text.starts_with(name), "{text}");
            let origin = if matches!(
                name,
                names::POD_NAME
                    | names::POD_NAMESPACE
                    | names::INSTANCE_IP
                    | names::SERVICE_ACCOUNT
            ) {
                "downward API"
            } else {
                "injector"
            };
            assert!(text.contains(origin), "{text}");
        }
    }
}

#[test]
fn malformed_values_are_refused_with_the_problem() {
    let cases = [
        (names::INSTANCE_IP, "10.1.2", "not an IP address"),
        (names::CONTROL_PLANE, "istiod.istio-system.svc", "host:port"),
        (names::ROLE, "router", "neither sidecar nor gateway"),
        (names::INTERCEPTION_MODE, "TPROXY", "not supported"),
    ];
    for (name, value, problem) in cases {
        let mut env = sidecar_env();
        env.insert(name, value.into());
        let err = build(&env, None).expect_err(name);
        let text = err.to_string();
        assert!(
            matches!(err, EnvError::Invalid { name: n, .. } if n == name),
            "{text}"
        );
        assert!(text.contains(value) && text.contains(problem), "{text}");
    }
}

#[test]
fn gateway_mode_from_the_flag_or_the_variable() {
    let mut env = sidecar_env();
    env.remove(names::ROLE);
    let gw = build(&env, Some(ProxyRole::Gateway)).expect("--gateway gives the role");
    assert_eq!(gw.role, ProxyRole::Gateway);
    assert!(!gw.capture, "a gateway's traffic is addressed to it");
    assert!(gw.node_id().starts_with("router~"));

    env.insert(names::ROLE, "gateway".into());
    assert_eq!(build(&env, None).expect("env").role, ProxyRole::Gateway);
    assert!(build(&env, Some(ProxyRole::Gateway)).is_ok(), "agreeing");
    env.insert(names::ROLE, "sidecar".into());
    let err = build(&env, Some(ProxyRole::Gateway)).expect_err("contradiction");
    assert!(err.to_string().contains("contradicts --gateway"), "{err}");
}

#[test]
fn interception_mode_none_turns_capture_off() {
    let mut env = sidecar_env();
    env.insert(names::INTERCEPTION_MODE, "NONE".into());
    assert!(!build(&env, None).expect("env").capture);
}

#[test]
fn an_ip_control_plane_keeps_its_address_as_the_name() {
    let mut env = sidecar_env();
    env.insert(names::CONTROL_PLANE, "10.0.0.9:15012".into());
    let bs = build(&env, None).expect("env");
    assert_eq!(bs.control_plane_name, "10.0.0.9");
    assert_eq!(
        bs.control_plane,
        ControlPlaneAddr::Socket("10.0.0.9:15012".parse().expect("addr"))
    );
}

fn write(dir: &std::path::Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write");
    p
}

#[test]
fn the_file_form_loads_as_before() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = write(
        dir.path(),
        "bs.json",
        r#"{"cluster": "c1", "namespace": "ns", "pod": "p", "service_account": "sa",
            "pod_ip": "127.1.0.2", "app_ip": "127.1.128.2", "control_plane": "127.1.0.1:15012",
            "root_cert": "/tmp/root.pem", "token": "t0k"}"#,
    );
    let bs = Bootstrap::load(&path).expect("loads");
    assert_eq!(
        bs.control_plane,
        ControlPlaneAddr::Socket("127.1.0.1:15012".parse().expect("addr"))
    );
    assert_eq!(bs.control_plane_name, "istiod.istio-system.svc");
    assert_eq!(bs.bearer().expect("inline"), "t0k");
    // What `strait up` writes reads back the same.
    let again: Bootstrap =
        serde_json::from_str(&serde_json::to_string(&bs).expect("ser")).expect("de");
    assert_eq!(again.control_plane, bs.control_plane);
    assert!(
        !serde_json::to_string(&bs)
            .expect("ser")
            .contains("token_file")
    );
}

#[test]
fn a_file_with_no_credential_or_two_is_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    let base = r#""cluster": "c1", "namespace": "ns", "pod": "p", "service_account": "sa",
        "pod_ip": "127.1.0.2", "app_ip": "127.1.0.2", "control_plane": "cp.example:15012",
        "root_cert": "/tmp/root.pem""#;
    let none = write(dir.path(), "none.json", &format!("{{{base}}}"));
    let both = write(
        dir.path(),
        "both.json",
        &format!(r#"{{{base}, "token": "a", "token_file": "/t"}}"#),
    );
    for (path, given) in [(none, "neither"), (both, "both")] {
        let err = Bootstrap::load(&path).expect_err("refused");
        assert!(
            matches!(&err, BootstrapError::Credential { given: g, .. } if *g == given),
            "{err}"
        );
        assert!(err.to_string().contains("token_file"), "{err}");
    }
}

#[test]
fn the_token_file_is_read_at_each_request() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut env = sidecar_env();
    let token = dir.path().join("istio-token");
    env.insert(names::TOKEN_FILE, token.display().to_string());
    let bs = build(&env, None).expect("env");
    let err = bs.bearer().expect_err("no file yet");
    assert!(
        matches!(err, TokenError::Read { .. }) && err.to_string().contains("istio-token"),
        "{err}"
    );
    std::fs::write(&token, "first\n").expect("write");
    assert_eq!(bs.bearer().expect("read"), "first");
    // The kubelet rotates the token by replacing the file.
    std::fs::write(&token, "second").expect("rotate");
    assert_eq!(bs.bearer().expect("read again"), "second");
    std::fs::write(&token, "\n").expect("empty");
    assert!(matches!(bs.bearer(), Err(TokenError::Empty { .. })));
}
