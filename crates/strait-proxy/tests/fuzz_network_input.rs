//! The proxy's fuzz entry points under proptest: random bytes, and valid configuration
//! updates and ClientHellos with random edits, must be rejected or accepted, never panic.

use std::sync::{Arc, LazyLock};

use proptest::prelude::*;
use prost::Message;
use strait_config::ProxyConfig;
use strait_protocol::v1::DiscoveryResponse;

/// A valid update as the control plane sends it: a full-state discovery response, encoded.
fn seed() -> Vec<u8> {
    let mesh = r#"{"trust_domain":"cluster.local","trust_domain_aliases":[],"domain":"cluster.local","allow_any_outbound":true,"access_log":false,"node":{"cluster":"c1","network":"","namespace":"sample","pod":"sleep-1","workload":"sleep","app":"sleep","version":"","service_account":"sleep","identity":"spiffe://cluster.local/ns/sample/sa/sleep"}}"#;
    let service = r#"{"host":"hw.sample.svc.cluster.local","port":5000,"namespace":"sample","protocol":"http","http":[{"name":"r","matches":[{"uri":{"regex":"/v[0-9]+"},"method":null,"authority":null,"scheme":null,"headers":[{"name":"x","value":{"prefix":"a"},"invert":false}],"query":[],"ignore_uri_case":false}],"action":{"route":[{"cluster":"outbound|5000||hw.sample.svc.cluster.local","weight":100}]},"timeout_ms":300,"retries":{"attempts":2,"per_try_timeout_ms":null,"retry_on":["5xx"]},"policy":{"rewrite":{"uri":"","uri_regex":["^/a(.*)","/b\\1"],"authority":""},"headers":{"request":{"set":[["x-a","1"]],"add":[],"remove":[]},"response":{"set":[],"add":[],"remove":[]}},"fault":null}}],"tcp":[],"virtual_service":null}"#;
    let cluster = r#"{"name":"outbound|5000||hw.sample.svc.cluster.local","host":"hw.sample.svc.cluster.local","port":5000,"subset":"","protocol":"http","lb":"LEAST_REQUEST","tls":"AUTO","sni":"outbound_.5000_._.hw.sample.svc.cluster.local","identities":[],"limits":{"max_connections":null,"max_pending_requests":null,"max_requests":4,"max_requests_per_connection":null,"max_retries":null,"connect_timeout_ms":10000},"endpoints":[{"address":"127.0.0.1","port":5000,"weight":1,"mtls":true,"workload":{"pod":"p","workload":"w","namespace":"sample","cluster":"c1","network":"","app":"hw","version":"v1","identity":""}}],"destination_rule":null}"#;
    let inbound = r#"{"port":5000,"protocol":"http","mtls":"STRICT","services":[]}"#;
    let mut cfg = ProxyConfig {
        mesh: serde_json::from_str(mesh).expect("mesh"),
        ..ProxyConfig::default()
    };
    let sp: strait_config::ServicePort = serde_json::from_str(service).expect("service");
    cfg.services.insert(format!("{}:{}", sp.host, sp.port), sp);
    let c: strait_config::Cluster = serde_json::from_str(cluster).expect("cluster");
    cfg.clusters.insert(c.name.clone(), c);
    cfg.inbound.insert(
        "5000".into(),
        serde_json::from_str(inbound).expect("inbound"),
    );
    let resp = DiscoveryResponse {
        version: "1".into(),
        nonce: "1".into(),
        resources: cfg.resources(),
        removed: vec![strait_config::proto::ResourceName {
            kind: strait_config::proto::Kind::Service as i32,
            name: "gone:80".into(),
        }],
        full_state: false,
    };
    resp.encode_to_vec()
}

#[test]
fn the_seed_is_a_valid_update() {
    // The seed must really reach validation, or the mutations below test only decoding errors.
    let resp = DiscoveryResponse::decode(seed().as_slice()).expect("decode");
    let mut cfg = ProxyConfig::default();
    for r in resp.resources {
        cfg.apply(r).unwrap_or_else(|e| panic!("{e}"));
    }
    assert_eq!(cfg.services.len(), 1);
    assert_eq!(cfg.clusters.len(), 1);
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
        strait_proxy::fuzzing::trace_question(&data);
        strait_proxy::fuzzing::trace_headers(&data);
    }

    #[test]
    fn trace_header_lines(
        lines in proptest::collection::vec("(00|01|ff|[0-9a-fA-F]{0,2})-[0-9a-f]{0,33}-[0-9a-f]{0,17}-[0-9a-f]{0,3}|[0-9a-fd-]{0,40}|[ -~]{0,20}", 0..7),
    ) {
        strait_proxy::fuzzing::trace_headers(lines.join("\n").as_bytes());
    }

    #[test]
    fn trace_questions(
        authority in "[a-z.:0-9]{0,24}",
        path in "[ -~]{0,40}",
        headers in proptest::collection::vec(("[ -~]{0,12}", "[ -~]{0,12}"), 0..4),
        port in proptest::option::of(any::<u16>()),
    ) {
        let q = serde_json::json!({
            "authority": authority, "path": path, "headers": headers, "port": port,
            "principal": "spiffe://cluster.local/ns/a/sa/b", "source": "10.0.0.1",
        });
        strait_proxy::fuzzing::trace_question(q.to_string().as_bytes());
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

/// Random authorization policies (over the compiled types, from small alphabets so that
/// patterns and requests often meet) checked against random requests and connections.
mod authz_policies {
    use std::net::{IpAddr, SocketAddr};

    use http::{HeaderMap, HeaderName, HeaderValue};
    use proptest::prelude::*;
    use serde_json::{Value, json};
    use strait_config::{
        Authz, AuthzPolicy, AuthzRule, ConditionKey, ConditionMatch, OperationMatch, SourceMatch,
        StringMatch,
    };
    use strait_proxy::authz::{
        Attributes, AuthAttributes, Decision, DenyReason, HttpAttributes, Policy,
    };

    fn text() -> impl Strategy<Value = String> {
        "[ab/.:]{0,4}"
    }

    fn pattern() -> impl Strategy<Value = StringMatch> {
        prop_oneof![
            text().prop_map(StringMatch::Exact),
            text().prop_map(StringMatch::Prefix),
            text().prop_map(StringMatch::Suffix),
            Just(StringMatch::Presence),
            address().prop_map(StringMatch::Exact),
            (0u16..6).prop_map(|p| StringMatch::Exact((p * 1000).to_string())),
        ]
    }

    fn patterns() -> impl Strategy<Value = Vec<StringMatch>> {
        proptest::collection::vec(pattern(), 0..3)
    }

    /// Addresses and ranges, valid and not.
    fn address() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("10.0.0.0/8".to_string()),
            Just("10.0.0.1".to_string()),
            Just("fd00::/8".to_string()),
            Just("::ffff:10.0.0.1".to_string()),
            Just("0.0.0.0/0".to_string()),
            Just("10.0.0.0/33".to_string()),
            "[0-9a-f.:/]{0,10}",
        ]
    }

    fn addresses() -> impl Strategy<Value = Vec<String>> {
        proptest::collection::vec(address(), 0..2)
    }

    fn key() -> impl Strategy<Value = ConditionKey> {
        use ConditionKey as K;
        prop_oneof![
            "x-[ab]".prop_map(K::RequestHeader),
            proptest::collection::vec("[ab]", 0..3).prop_map(K::RequestAuthClaim),
            prop_oneof![
                Just(K::SourceIp),
                Just(K::RemoteIp),
                Just(K::DestinationIp),
                Just(K::DestinationPort),
                Just(K::SourceNamespace),
                Just(K::SourcePrincipal),
                Just(K::SourceServiceAccount),
                Just(K::RequestAuthPrincipal),
                Just(K::RequestAuthAudiences),
                Just(K::RequestAuthPresenter),
                Just(K::ConnectionSni),
            ],
        ]
    }

    fn source() -> impl Strategy<Value = SourceMatch> {
        (
            (patterns(), patterns(), patterns(), patterns()),
            (patterns(), patterns(), patterns(), patterns()),
            (addresses(), addresses(), addresses(), addresses()),
        )
            .prop_map(
                |((p, np, rp, nrp), (ns, nns, sa, nsa), (ip, nip, rip, nrip))| SourceMatch {
                    principals: p,
                    not_principals: np,
                    request_principals: rp,
                    not_request_principals: nrp,
                    namespaces: ns,
                    not_namespaces: nns,
                    service_accounts: sa,
                    not_service_accounts: nsa,
                    ip_blocks: ip,
                    not_ip_blocks: nip,
                    remote_ip_blocks: rip,
                    not_remote_ip_blocks: nrip,
                },
            )
    }

    fn ports() -> impl Strategy<Value = Vec<u32>> {
        proptest::collection::vec(prop_oneof![Just(5000u32), Just(9000), any::<u32>()], 0..2)
    }

    fn operation() -> impl Strategy<Value = OperationMatch> {
        (
            (patterns(), patterns(), ports(), ports()),
            (patterns(), patterns(), patterns(), patterns()),
        )
            .prop_map(|((h, nh, p, np), (m, nm, pa, npa))| OperationMatch {
                hosts: h,
                not_hosts: nh,
                ports: p,
                not_ports: np,
                methods: m,
                not_methods: nm,
                paths: pa,
                not_paths: npa,
            })
    }

    fn rule() -> impl Strategy<Value = AuthzRule> {
        let condition =
            (key(), patterns(), patterns()).prop_map(|(key, values, not_values)| ConditionMatch {
                key,
                values,
                not_values,
            });
        (
            proptest::collection::vec(source(), 0..2),
            proptest::collection::vec(operation(), 0..2),
            proptest::collection::vec(condition, 0..2),
            proptest::collection::vec(text(), 0..2),
        )
            .prop_map(|(from, to, when, unsupported)| AuthzRule {
                from,
                to,
                when,
                unsupported,
            })
    }

    fn policies() -> impl Strategy<Value = Vec<AuthzPolicy>> {
        let policy = ("[a-c]", proptest::collection::vec(rule(), 0..3))
            .prop_map(|(name, rules)| AuthzPolicy { name, rules });
        proptest::collection::vec(policy, 0..3)
    }

    fn authz() -> impl Strategy<Value = Authz> {
        (
            proptest::collection::vec("[a-c]", 0..2),
            policies(),
            policies(),
            policies(),
        )
            .prop_map(|(custom, deny, allow, audit)| Authz {
                // Mostly without CUSTOM, or nothing else would ever be decided.
                custom: custom.into_iter().filter(|c| c == "c").collect(),
                deny,
                allow,
                audit,
                jwt: Vec::new(),
            })
    }

    /// An owned request, borrowed as `Attributes`.
    #[derive(Clone, Debug)]
    struct Req {
        source: IpAddr,
        remote: IpAddr,
        principal: Option<String>,
        destination: SocketAddr,
        sni: Option<String>,
        http: Option<(String, String, String, HeaderMap, Option<Jwt>)>,
    }

    #[derive(Clone, Debug)]
    struct Jwt {
        principal: String,
        audiences: Vec<String>,
        presenter: Option<String>,
        claims: Value,
    }

    impl Req {
        fn attrs(&self) -> Attributes<'_> {
            Attributes {
                source_ip: self.source,
                remote_ip: self.remote,
                principal: self.principal.as_deref(),
                destination: self.destination,
                sni: self.sni.as_deref(),
                http: self
                    .http
                    .as_ref()
                    .map(|(method, path, host, headers, jwt)| HttpAttributes {
                        method,
                        path,
                        host,
                        headers,
                        auth: jwt.as_ref().map(|j| AuthAttributes {
                            principal: &j.principal,
                            audiences: &j.audiences,
                            presenter: j.presenter.as_deref(),
                            claims: &j.claims,
                        }),
                    }),
            }
        }
    }

    fn ip() -> impl Strategy<Value = IpAddr> {
        prop_oneof![
            Just("10.0.0.1".parse().expect("ip")),
            Just("192.168.1.1".parse().expect("ip")),
            Just("fd00::1".parse().expect("ip")),
            Just("::ffff:10.0.0.1".parse().expect("ip")),
            any::<IpAddr>(),
        ]
    }

    fn claims() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(json!({})),
            text().prop_map(|t| json!({"a": t})),
            text().prop_map(|t| json!({"a": {"b": [t, 1, true, null]}})),
            any::<i64>().prop_map(|n| json!({"b": n, "a": {"a": false}})),
        ]
    }

    fn jwt() -> impl Strategy<Value = Jwt> {
        (
            text(),
            proptest::collection::vec(text(), 0..3),
            proptest::option::of(text()),
            claims(),
        )
            .prop_map(|(principal, audiences, presenter, claims)| Jwt {
                principal,
                audiences,
                presenter,
                claims,
            })
    }

    fn headers() -> impl Strategy<Value = HeaderMap> {
        proptest::collection::vec(("x-[ab]", text()), 0..3).prop_map(|pairs| {
            let mut h = HeaderMap::new();
            for (name, value) in pairs {
                if let (Ok(n), Ok(v)) = (
                    HeaderName::from_bytes(name.as_bytes()),
                    HeaderValue::from_str(&value),
                ) {
                    h.append(n, v);
                }
            }
            h
        })
    }

    fn req() -> impl Strategy<Value = Req> {
        let principal = prop_oneof![
            Just("spiffe://cluster.local/ns/a/sa/b".to_string()),
            Just("spiffe://td/ns/a".to_string()),
            Just(String::new()),
            text(),
        ];
        let http = (
            prop_oneof![Just("GET".to_string()), text()],
            text(),
            text(),
            headers(),
            proptest::option::of(jwt()),
        );
        (
            (ip(), ip(), ip()),
            proptest::option::of(principal),
            prop_oneof![Just(5000u16), Just(9000), any::<u16>()],
            proptest::option::of(text()),
            proptest::option::of(http),
        )
            .prop_map(|((source, remote, dest), principal, port, sni, http)| Req {
                source,
                remote,
                principal,
                destination: SocketAddr::new(dest, port),
                sni,
                http,
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn random_policies_and_requests(authz in authz(), req in req()) {
            let attrs = req.attrs();
            let policy = Policy::new(&authz);
            let decision = policy.check(&attrs);
            let _ = policy.audited(&attrs);
            prop_assert_eq!(Policy::new(&Authz::default()).check(&attrs), Decision::Allow);
            if !authz.custom.is_empty() {
                let custom = matches!(decision, Decision::Deny { reason: DenyReason::Custom, .. });
                prop_assert!(custom, "{:?}", decision);
            }
            // An allow-all policy allows whatever no DENY rule denies.
            let open = Authz {
                custom: Vec::new(),
                deny: Vec::new(),
                allow: [authz.allow.clone(), vec![AuthzPolicy {
                    name: "all".into(),
                    rules: vec![AuthzRule::default()],
                }]]
                .concat(),
                ..authz.clone()
            };
            prop_assert_eq!(Policy::new(&open).check(&attrs), Decision::Allow);
        }

        /// The fuzz entry point, with a policy it can parse ahead of random request bytes.
        #[test]
        fn fuzz_entry_with_a_valid_policy(
            authz in authz(),
            rest in proptest::collection::vec(any::<u8>(), 0..128),
        ) {
            let mut data = serde_json::to_vec(&authz).expect("json");
            data.push(0xff);
            data.extend_from_slice(&rest);
            strait_proxy::fuzzing::authz(&data);
        }

        #[test]
        fn fuzz_entry_with_random_bytes(data in proptest::collection::vec(any::<u8>(), 0..256)) {
            strait_proxy::fuzzing::authz(&data);
        }
    }
}

/// JWT verification (RequestAuthentication): random bytes in every place a token is looked
/// for, and the seed token with random edits, must be refused or found absent, never panic,
/// and only the untouched seed may verify.
mod jwt {
    use http::{HeaderMap, HeaderValue};
    use proptest::prelude::*;
    use strait_proxy::fuzzing::{JWT_ISSUER, JWT_SEED, jwt, jwt_now, jwt_verifier};
    use strait_proxy::jwt::Authn;

    fn bearer(token: &[u8]) -> Option<HeaderMap> {
        let mut value = b"Bearer ".to_vec();
        value.extend_from_slice(token);
        let mut h = HeaderMap::new();
        h.insert("authorization", HeaderValue::from_bytes(&value).ok()?);
        Some(h)
    }

    #[test]
    fn the_jwt_seed_verifies() {
        // Mutations of a refused seed would only test the first check.
        assert!(
            jwt_verifier().problems().is_empty(),
            "{:?}",
            jwt_verifier().problems()
        );
        let mut h = bearer(JWT_SEED.as_bytes()).expect("header");
        h.insert("x-jwt-sub", HeaderValue::from_static("forged"));
        match jwt_verifier().authenticate(&mut h, None, jwt_now()) {
            Authn::Verified(c) => {
                assert_eq!(c.principal(), format!("{JWT_ISSUER}/fuzzer"));
                assert_eq!(c.claim(&["scope".to_string()]), ["read", "write"]);
                assert_eq!(
                    c.claim(&["nested".to_string(), "key".to_string()]),
                    ["value"]
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            h.get("x-jwt-sub").map(|v| v.as_bytes()),
            Some(&b"fuzzer"[..])
        );
        assert!(h.get("authorization").is_none());
        jwt(format!("Bearer {JWT_SEED}").as_bytes());
        jwt(format!("access_token={JWT_SEED}").as_bytes());
    }

    /// A token-shaped string: three sections of base64url characters.
    fn sections() -> impl Strategy<Value = String> {
        "[A-Za-z0-9_=-]{0,40}\\.[A-Za-z0-9_=-]{0,80}\\.[A-Za-z0-9_=-]{0,90}"
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn random_jwt_bytes(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            jwt(&data);
        }

        #[test]
        fn random_token_shapes(tok in sections(), place in 0..4usize) {
            let framed = ["Bearer ", "Token ", "access_token=", "jwt="][place];
            jwt(format!("{framed}{tok}").as_bytes());
        }

        #[test]
        fn edited_jwts(
            edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
            cut in any::<usize>(),
            place in 0..4usize,
        ) {
            let mut tok = JWT_SEED.as_bytes().to_vec();
            for (at, byte) in edits {
                let i = at % tok.len();
                tok[i] = byte;
            }
            tok.truncate(tok.len() - cut % (tok.len() / 8 + 1));
            let mut framed = [&b"Bearer "[..], b"Token ", b"access_token=", b"jwt="][place].to_vec();
            framed.extend_from_slice(&tok);
            jwt(&framed);
            if let Some(mut h) = bearer(&tok) {
                let outcome = jwt_verifier().authenticate(&mut h, None, jwt_now());
                if tok != JWT_SEED.as_bytes() {
                    prop_assert!(
                        !matches!(outcome, Authn::Verified(_)),
                        "an edited token verified: {}",
                        String::from_utf8_lossy(&tok)
                    );
                }
            }
        }
    }
}

mod paths {
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn random_paths(data in proptest::collection::vec(any::<u8>(), 0..256)) {
            strait_proxy::fuzzing::path(&data);
        }

        #[test]
        fn paths_made_of_what_normalization_touches(
            parts in proptest::collection::vec(
                prop_oneof![
                    Just("/"), Just("."), Just(".."), Just("%2e"), Just("%2F"), Just("%5c"),
                    Just("%61"), Just("%"), Just("%zz"), Just("a"), Just("\u{e9}"),
                ],
                0..24,
            )
        ) {
            strait_proxy::fuzzing::path(parts.concat().as_bytes());
        }
    }
}
