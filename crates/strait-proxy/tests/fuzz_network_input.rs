//! The proxy's fuzz entry points under proptest: random bytes, and valid configuration
//! updates and ClientHellos with random edits, must be rejected or accepted, never panic.

use std::sync::{Arc, LazyLock};

use proptest::prelude::*;

/// A valid update in the fuzz format: type byte, name, 0xfe, JSON body; 0xff between.
fn seed() -> Vec<u8> {
    let resources: [(u8, &str, &str); 4] = [
        (
            0,
            "mesh",
            r#"{"trust_domain":"cluster.local","trust_domain_aliases":[],"domain":"cluster.local","allow_any_outbound":true,"access_log":false,"node":{"cluster":"c1","network":"","namespace":"sample","pod":"sleep-1","workload":"sleep","app":"sleep","version":"","service_account":"sleep","identity":"spiffe://cluster.local/ns/sample/sa/sleep"}}"#,
        ),
        (
            1,
            "hw.sample.svc.cluster.local:5000",
            r#"{"host":"hw.sample.svc.cluster.local","port":5000,"namespace":"sample","protocol":"http","http":[{"name":"r","matches":[{"uri":{"regex":"/v[0-9]+"},"method":null,"authority":null,"scheme":null,"headers":[{"name":"x","value":{"prefix":"a"},"invert":false}],"query":[],"ignore_uri_case":false}],"action":{"route":[{"cluster":"outbound|5000||hw.sample.svc.cluster.local","weight":100}]},"timeout_ms":300,"retries":{"attempts":2,"per_try_timeout_ms":null,"retry_on":["5xx"]},"policy":{"rewrite":{"uri":"","uri_regex":["^/a(.*)","/b\\1"],"authority":""},"headers":{"request":{"set":[["x-a","1"]],"add":[],"remove":[]},"response":{"set":[],"add":[],"remove":[]}},"fault":null}}],"tcp":[],"virtual_service":null}"#,
        ),
        (
            2,
            "outbound|5000||hw.sample.svc.cluster.local",
            r#"{"name":"outbound|5000||hw.sample.svc.cluster.local","host":"hw.sample.svc.cluster.local","port":5000,"subset":"","protocol":"http","lb":"LEAST_REQUEST","tls":"AUTO","sni":"outbound_.5000_._.hw.sample.svc.cluster.local","identities":[],"limits":{"max_connections":null,"max_pending_requests":null,"max_requests":4,"max_requests_per_connection":null,"max_retries":null,"connect_timeout_ms":10000},"endpoints":[{"address":"127.0.0.1","port":5000,"weight":1,"mtls":true,"workload":{"pod":"p","workload":"w","namespace":"sample","cluster":"c1","network":"","app":"hw","version":"v1","identity":""}}],"destination_rule":null}"#,
        ),
        (
            3,
            "5000",
            r#"{"port":5000,"protocol":"http","mtls":"STRICT","services":[]}"#,
        ),
    ];
    let mut out = Vec::new();
    for (i, (t, name, body)) in resources.iter().enumerate() {
        if i > 0 {
            out.push(0xff);
        }
        out.push(*t);
        out.extend_from_slice(name.as_bytes());
        out.push(0xfe);
        out.extend_from_slice(body.as_bytes());
    }
    out
}

#[test]
fn the_seed_is_a_valid_update() {
    // The seed must really reach validation, or the mutations below test only JSON errors.
    let seed = seed();
    let mut cfg = strait_model::compile::ProxyConfig::default();
    for chunk in seed.split(|b| *b == 0xff) {
        let (t, rest) = chunk.split_first().expect("type");
        let i = rest.iter().position(|b| *b == 0xfe).expect("name");
        let kind = ["mesh", "service", "cluster", "inbound"][usize::from(*t)];
        cfg.apply(
            kind,
            std::str::from_utf8(&rest[..i]).expect("utf8"),
            std::str::from_utf8(&rest[i + 1..]).expect("utf8"),
        )
        .unwrap_or_else(|e| panic!("{kind}: {e}"));
    }
    strait_proxy::snapshot::Snapshot::build(
        "1".into(),
        cfg,
        &strait_proxy::snapshot::Snapshot::empty(),
    )
    .expect("valid snapshot");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        strait_proxy::fuzzing::config_update(&data);
        strait_proxy::fuzzing::peer_header(&data);
    }

    #[test]
    fn edited_updates(edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8), cut in any::<usize>()) {
        let mut data = seed();
        for (at, byte) in edits {
            let i = at % data.len();
            data[i] = byte;
        }
        data.truncate(data.len() - cut % (data.len() / 4 + 1));
        strait_proxy::fuzzing::config_update(&data);
    }
}

/// A real first flight: a rustls client's ClientHello, with SNI and ALPN, in one record.
static HELLO: LazyLock<Vec<u8>> = LazyLock::new(|| {
    let mut cfg = rustls::ClientConfig::builder_with_provider(strait_proxy::tls::provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"istio-peer-exchange".to_vec(), b"istio".to_vec()];
    let name = rustls::pki_types::ServerName::try_from("outbound_.80_._.hw.ns.svc.cluster.local")
        .expect("name");
    let mut conn = rustls::ClientConnection::new(Arc::new(cfg), name).expect("client");
    let mut out = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut out).expect("write_tls");
    }
    out
});

#[test]
fn the_hello_seed_parses() {
    // As for the config seed: mutations of a rejected seed would only test the first check.
    match strait_proxy::sni::parse(&HELLO) {
        Ok(strait_proxy::sni::Parse::Complete(h)) => {
            assert_eq!(
                h.sni.as_deref(),
                Some("outbound_.80_._.hw.ns.svc.cluster.local")
            );
        }
        other => panic!("{other:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_client_hello_bytes(data in proptest::collection::vec(any::<u8>(), 0..1024)) {
        strait_proxy::fuzzing::client_hello(&data);
    }

    /// Random bytes behind a valid record and handshake header, so they reach the body parser.
    #[test]
    fn random_client_hello_bodies(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let len = u32::try_from(body.len()).expect("len").to_be_bytes();
        let record = u16::try_from(body.len() + 4).expect("len").to_be_bytes();
        let mut data = vec![22, 3, 1, record[0], record[1], 1, len[1], len[2], len[3]];
        data.extend_from_slice(&body);
        strait_proxy::fuzzing::client_hello(&data);
    }

    #[test]
    fn edited_client_hellos(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        cut in any::<usize>(),
    ) {
        let mut data = HELLO.clone();
        for (at, byte) in edits {
            let i = at % data.len();
            data[i] = byte;
        }
        data.truncate(data.len() - cut % (data.len() / 4 + 1));
        strait_proxy::fuzzing::client_hello(&data);
    }
}
