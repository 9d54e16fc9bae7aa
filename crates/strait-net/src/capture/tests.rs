use std::collections::BTreeMap;

use super::annotations::{self, Capture};
use super::rules::{install, is_installed, remove};
use super::*;

/// The rules for Istio's injector defaults, in full: a reviewer sees every rule and its place.
#[test]
fn defaults_are_istios() {
    let text = install(&Settings::default());
    let expected = "\
*nat
:ISTIO_INBOUND - [0:0]
:ISTIO_REDIRECT - [0:0]
:ISTIO_IN_REDIRECT - [0:0]
:ISTIO_OUTPUT - [0:0]
-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001
-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006
-A PREROUTING -p tcp -j ISTIO_INBOUND
-A ISTIO_INBOUND -p tcp --dport 15008 -j RETURN
-A ISTIO_INBOUND -p tcp --dport 15090 -j RETURN
-A ISTIO_INBOUND -p tcp --dport 15021 -j RETURN
-A ISTIO_INBOUND -p tcp --dport 15020 -j RETURN
-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT
-A OUTPUT -p tcp -j ISTIO_OUTPUT
-A ISTIO_OUTPUT -o lo -s 127.0.0.6/32 -j RETURN
-A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -m owner --uid-owner 1337 -j ISTIO_IN_REDIRECT
-A ISTIO_OUTPUT -o lo -m owner ! --uid-owner 1337 -j RETURN
-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN
-A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -m owner --gid-owner 1337 -j ISTIO_IN_REDIRECT
-A ISTIO_OUTPUT -o lo -m owner ! --gid-owner 1337 -j RETURN
-A ISTIO_OUTPUT -m owner --gid-owner 1337 -j RETURN
-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN
-A ISTIO_OUTPUT -j ISTIO_REDIRECT
COMMIT
";
    assert_eq!(text, expected);
}

#[test]
fn lists_narrow_what_is_captured() {
    let s = Settings {
        proxy_uid: 0,
        proxy_gid: 7,
        inbound_ports: Select::Only(vec![8080, 9090, 15021, 8080]),
        exclude_inbound_ports: vec![9090],
        include_outbound_ranges: Select::Only(parse_ranges("x", "10.96.0.0/12").expect("ok")),
        exclude_outbound_ranges: parse_ranges("x", "169.254.169.254").expect("ok"),
        include_outbound_ports: vec![443],
        exclude_outbound_ports: vec![5432],
        ..Settings::default()
    };
    let text = install(&s);
    let has = |rule: &str| text.lines().any(|l| l == rule);
    assert!(has("-A ISTIO_INBOUND -p tcp --dport 9090 -j RETURN"));
    assert!(has(
        "-A ISTIO_INBOUND -p tcp --dport 8080 -j ISTIO_IN_REDIRECT"
    ));
    assert_eq!(
        text.matches("--dport 8080 -j ISTIO_IN_REDIRECT").count(),
        1,
        "{text}"
    );
    assert!(
        !text.contains("--dport 9090 -j ISTIO_IN_REDIRECT"),
        "{text}"
    );
    assert!(
        !text.contains("--dport 15021 -j ISTIO_IN_REDIRECT"),
        "{text}"
    );
    assert!(!has("-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT"));
    assert!(has("-A ISTIO_OUTPUT -m owner --uid-owner 0 -j RETURN"));
    assert!(has("-A ISTIO_OUTPUT -m owner --gid-owner 7 -j RETURN"));
    assert!(has("-A ISTIO_OUTPUT -d 10.96.0.0/12 -j ISTIO_REDIRECT"));
    assert!(!has("-A ISTIO_OUTPUT -j ISTIO_REDIRECT"));
    let order = |rule: &str| {
        text.lines()
            .position(|l| l == rule)
            .unwrap_or_else(|| panic!("{rule} missing:\n{text}"))
    };
    // Excluded ports come before anything the proxy's identity decides; included ports
    // before excluded ranges (Istio: an included port is captured whatever its address).
    assert!(
        order("-A ISTIO_OUTPUT -p tcp --dport 5432 -j RETURN")
            < order("-A ISTIO_OUTPUT -o lo -s 127.0.0.6/32 -j RETURN")
    );
    assert!(
        order("-A ISTIO_OUTPUT -p tcp --dport 443 -j ISTIO_REDIRECT")
            < order("-A ISTIO_OUTPUT -d 169.254.169.254/32 -j RETURN")
    );
    assert!(
        order("-A ISTIO_OUTPUT -d 169.254.169.254/32 -j RETURN")
            < order("-A ISTIO_OUTPUT -d 10.96.0.0/12 -j ISTIO_REDIRECT")
    );
}

#[test]
fn no_inbound_ports_means_no_inbound_jump() {
    let s = Settings {
        inbound_ports: Select::Only(Vec::new()),
        ..Settings::default()
    };
    let text = install(&s);
    assert!(!text.contains("PREROUTING"), "{text}");
    assert!(text.contains("-A OUTPUT -p tcp -j ISTIO_OUTPUT"));
}

#[test]
fn bad_values_name_their_flag() {
    let e = parse_ports("--exclude-inbound-ports", "80,http").expect_err("not a port");
    assert_eq!(e.source_name, "--exclude-inbound-ports");
    assert!(e.to_string().contains("\"http\""), "{e}");
    assert!(parse_ports("--x", "0").is_err());
    assert!(parse_ports("--x", "70000").is_err());
    assert_eq!(parse_ports("--x", " 80, 443 ,").expect("ok"), vec![80, 443]);
    let e = parse_ranges("--exclude-outbound-ip-ranges", "10.0.0.0/33").expect_err("prefix");
    assert_eq!(
        e.to_string(),
        "--exclude-outbound-ip-ranges: \"10.0.0.0/33\" has prefix length 33, longer than the address (32 bits)"
    );
    let e = parse_ranges("--include-outbound-ip-ranges", "fd00::/8").expect_err("v6");
    assert!(e.to_string().contains("IPv4 only"), "{e}");
    assert!(parse_ranges("--x", "ten.0.0.0").is_err());
    assert_eq!(parse_port_select("--x", "*").expect("ok"), Select::All);
    assert_eq!(
        parse_range_select("--x", "").expect("ok"),
        Select::Only(Vec::new())
    );
}

#[test]
fn annotations_map_to_settings() {
    let pairs = annotations::parse_pairs(
        "traffic.sidecar.istio.io/excludeOutboundPorts=5432,6379,traffic.sidecar.istio.io/includeInboundPorts=8080,app=web",
    )
    .expect("pairs");
    assert_eq!(
        pairs
            .get("traffic.sidecar.istio.io/excludeOutboundPorts")
            .map(String::as_str),
        Some("5432,6379")
    );
    let mut s = Settings::default();
    assert_eq!(
        annotations::apply(&pairs, &mut s).expect("valid"),
        Capture::Redirect
    );
    assert_eq!(s.exclude_outbound_ports, vec![5432, 6379]);
    assert_eq!(s.inbound_ports, Select::Only(vec![8080]));

    let bad: BTreeMap<String, String> = [(
        annotations::EXCLUDE_OUTBOUND_IP_RANGES.to_string(),
        "10.0.0.0/8,nope".to_string(),
    )]
    .into();
    let e = annotations::apply(&bad, &mut Settings::default()).expect_err("bad range");
    assert_eq!(e.source_name, annotations::EXCLUDE_OUTBOUND_IP_RANGES);

    let tproxy: BTreeMap<String, String> = [(
        annotations::INTERCEPTION_MODE.to_string(),
        "TPROXY".to_string(),
    )]
    .into();
    assert!(annotations::apply(&tproxy, &mut Settings::default()).is_err());
    let unknown: BTreeMap<String, String> = [(
        "traffic.sidecar.istio.io/kubevirtInterfaces".to_string(),
        "net1".to_string(),
    )]
    .into();
    let e = annotations::apply(&unknown, &mut Settings::default()).expect_err("not acted on");
    assert!(e.to_string().contains("does not act on"), "{e}");
    let none: BTreeMap<String, String> = [(
        annotations::INTERCEPTION_MODE.to_string(),
        "NONE".to_string(),
    )]
    .into();
    assert_eq!(
        annotations::apply(&none, &mut Settings::default()).expect("valid"),
        Capture::None
    );
    assert!(annotations::parse_pairs("=x").is_err());
}

#[test]
fn downward_api_files_are_read() {
    let text = "app=\"web\"\ntraffic.sidecar.istio.io/excludeInboundPorts=\"9000\"\nnote=\"a \\\"quoted\\\" word\"\n";
    let map = annotations::parse_downward("/etc/podinfo/annotations", text).expect("valid");
    assert_eq!(
        map.get("traffic.sidecar.istio.io/excludeInboundPorts")
            .map(String::as_str),
        Some("9000")
    );
    assert_eq!(
        map.get("note").map(String::as_str),
        Some("a \"quoted\" word")
    );
    let e = annotations::parse_downward("/f", "a=b\n").expect_err("unquoted");
    assert_eq!(e.source_name, "/f:1");
}

#[test]
fn removal_undoes_installation() {
    // What iptables-save prints once the default rules are in, beside someone else's rule.
    let saved = "\
# Generated by iptables-save
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:ISTIO_INBOUND - [0:0]
:ISTIO_IN_REDIRECT - [0:0]
:ISTIO_OUTPUT - [0:0]
:ISTIO_REDIRECT - [0:0]
-A PREROUTING -p tcp -j ISTIO_INBOUND
-A OUTPUT -p tcp -j ISTIO_OUTPUT
-A POSTROUTING -o eth0 -j MASQUERADE
-A ISTIO_INBOUND -p tcp --dport 15008 -j RETURN
-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT
-A ISTIO_OUTPUT -j ISTIO_REDIRECT
COMMIT
";
    assert!(is_installed(saved));
    let script = remove(saved).expect("something to remove");
    assert_eq!(
        script,
        "*nat
-D PREROUTING -p tcp -j ISTIO_INBOUND
-D OUTPUT -p tcp -j ISTIO_OUTPUT
-F ISTIO_INBOUND
-F ISTIO_IN_REDIRECT
-F ISTIO_OUTPUT
-F ISTIO_REDIRECT
-X ISTIO_INBOUND
-X ISTIO_IN_REDIRECT
-X ISTIO_OUTPUT
-X ISTIO_REDIRECT
COMMIT
"
    );
    let bare = "*nat\n:PREROUTING ACCEPT [0:0]\n-A POSTROUTING -o eth0 -j MASQUERADE\nCOMMIT\n";
    assert!(!is_installed(bare));
    assert_eq!(remove(bare), None);
}

#[test]
fn flags_win_over_annotations() {
    let pod: BTreeMap<String, String> = [
        (
            annotations::EXCLUDE_OUTBOUND_PORTS.to_string(),
            "5432".to_string(),
        ),
        (
            annotations::INCLUDE_INBOUND_PORTS.to_string(),
            "8080".to_string(),
        ),
    ]
    .into();
    let flags = Flags {
        proxy_uid: Some(0),
        exclude_outbound_ports: Some("6379".into()),
        ..Flags::default()
    };
    let (s, capture) = resolve(&pod, &flags).expect("valid");
    assert_eq!(capture, Capture::Redirect);
    assert_eq!(
        (s.proxy_uid, s.proxy_gid),
        (0, 0),
        "the GID follows the UID"
    );
    assert_eq!(s.exclude_outbound_ports, vec![6379]);
    assert_eq!(s.inbound_ports, Select::Only(vec![8080]));
    let bad = Flags {
        include_outbound_ip_ranges: Some("10.0.0.0/8,300.1.1.1".into()),
        ..Flags::default()
    };
    let e = resolve(&BTreeMap::new(), &bad).expect_err("bad range");
    assert!(
        e.to_string()
            .starts_with("--include-outbound-ip-ranges: \"300.1.1.1\""),
        "{e}"
    );
}
