//! Entry points for fuzzing what the proxy reads from the network: configuration updates
//! from the control plane, the peer metadata header from other proxies and the TLS
//! ClientHello the east-west gateway routes by. Each must reject bad input with an error,
//! never panic.

use http::{HeaderMap, HeaderValue};
use prost::Message;
use strait_config::{Kind, ProxyConfig};
use strait_protocol::v1::DiscoveryResponse;

use crate::snapshot::Snapshot;
use crate::sni::{self, Parse};

/// Any bytes as a discovery response from the control plane: decoded, applied as one update
/// and validated, as the discovery stream does.
pub fn config_update(data: &[u8]) {
    let Ok(resp) = DiscoveryResponse::decode(data) else {
        return;
    };
    let mut cfg = ProxyConfig::default();
    for r in &resp.removed {
        if let Ok(kind) = Kind::from_proto(r.kind) {
            cfg.remove(kind, &r.name);
        }
    }
    for r in resp.resources {
        let _ = cfg.apply(r);
    }
    if let Ok(snap) = Snapshot::build("v".into(), cfg.clone(), &Snapshot::empty()) {
        // A valid snapshot must resolve and route without panicking.
        for sp in cfg.services.values() {
            let _ = snap.resolve(&sp.host, u16::try_from(sp.port).unwrap_or(0));
        }
    }
}

/// Any bytes as the peer metadata header.
pub fn peer_header(data: &[u8]) {
    if let Ok(v) = HeaderValue::from_bytes(data) {
        let mut h = HeaderMap::new();
        h.insert(crate::peer::HEADER, v);
        let _ = crate::peer::take(&mut h, Some("spiffe://cluster.local/ns/ns/sa/sa"));
    }
}

/// Any bytes as a `/debug/trace` question, answered against an empty configuration: as the
/// query text itself, and as the JSON inside it.
pub fn trace_question(data: &[u8]) {
    use base64::Engine;
    let text = String::from_utf8_lossy(data);
    let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data);
    for q in [text.as_ref(), encoded.as_str()] {
        if let Ok(question) = crate::explain::parse(q) {
            let snap = crate::snapshot::Snapshot::empty();
            let _ =
                crate::explain::explain(&snap, std::net::IpAddr::from([127, 0, 0, 1]), &question);
        }
    }
}

/// Any bytes as the start of a TLS stream reaching the east-west gateway. A hello it accepts
/// must carry an SNI the gateway can match routes against as is, and the parser must never ask
/// for more bytes than the gateway's peek buffer holds.
pub fn client_hello(data: &[u8]) {
    match sni::parse(data) {
        Ok(Parse::Complete(hello)) => {
            if let Some(name) = &hello.sni {
                assert!(
                    !name.is_empty() && name.len() <= 253,
                    "sni length: {name:?}"
                );
                assert!(!name.ends_with('.'), "sni trailing dot: {name:?}");
                assert!(
                    name.bytes().all(|b| b.is_ascii_lowercase()
                        || b.is_ascii_digit()
                        || matches!(b, b'-' | b'_' | b'.')),
                    "sni characters: {name:?}"
                );
            }
            assert!(hello.alpn.iter().all(|p| !p.is_empty()), "empty alpn name");
        }
        Ok(Parse::Incomplete) => {
            assert!(
                data.len() < sni::PEEK_BUFFER,
                "incomplete at {} bytes",
                data.len()
            );
        }
        Err(_) => {}
    }
}

/// Any bytes as an authorization policy and one request or connection. Up to the first 0xff:
/// the JSON of an `Authz` (the compiler's output, so structurally anything serde accepts);
/// after it, fields split at 0xfe: method, path, host, a header name, its value, the peer's
/// SPIFFE ID, the JWT principal, its audiences (comma-separated), the JWT claims (JSON), the
/// SNI, and last the bytes for flags, port and addresses. Checks the order Istio fixes.
pub fn authz(data: &[u8]) {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

    use strait_config::Authz;

    use crate::authz::{Attributes, AuthAttributes, Decision, DenyReason, HttpAttributes, Policy};

    let (json, rest) = match data.iter().position(|b| *b == 0xff) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b""[..]),
    };
    let authz: Authz = serde_json::from_slice(json).unwrap_or_default();
    let mut fields = rest.split(|b| *b == 0xfe);
    let mut raw = || fields.next().unwrap_or_default();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let (method, path, host) = (text(raw()), text(raw()), text(raw()));
    let (header_name, header_value) = (raw(), raw());
    let (principal, jwt_principal) = (text(raw()), text(raw()));
    let audiences: Vec<String> = text(raw()).split(',').map(str::to_string).collect();
    let claims: serde_json::Value = serde_json::from_slice(raw()).unwrap_or_default();
    let sni = text(raw());
    let num = raw();

    let byte = |i: usize| num.get(i).copied().unwrap_or(0);
    let flag = |bit: u8| byte(0) & (1 << bit) != 0;
    let addr = |at: usize, v6: bool| -> IpAddr {
        let mut o = [0u8; 16];
        for (k, b) in o.iter_mut().enumerate() {
            *b = byte(at + k);
        }
        match v6 {
            true => IpAddr::V6(Ipv6Addr::from(o)),
            false => IpAddr::V4(Ipv4Addr::new(o[0], o[1], o[2], o[3])),
        }
    };
    let source_ip = addr(3, flag(4));
    let remote_ip = if flag(7) {
        source_ip
    } else {
        addr(19, flag(5))
    };
    let destination = SocketAddr::new(addr(35, flag(6)), u16::from_be_bytes([byte(1), byte(2)]));
    let mut headers = HeaderMap::new();
    if let (Ok(n), Ok(v)) = (
        http::HeaderName::from_bytes(header_name),
        HeaderValue::from_bytes(header_value),
    ) {
        headers.append(n, v);
    }
    let attrs = Attributes {
        source_ip,
        remote_ip,
        principal: flag(1).then_some(principal.as_str()),
        destination,
        sni: flag(3).then_some(sni.as_str()),
        http: flag(0).then_some(HttpAttributes {
            method: &method,
            path: &path,
            host: &host,
            headers: &headers,
            auth: flag(2).then_some(AuthAttributes {
                principal: &jwt_principal,
                audiences: &audiences,
                presenter: audiences.first().map(String::as_str),
                claims: &claims,
            }),
        }),
    };

    let policy = Policy::new(&authz);
    let decision = policy.check(&attrs);
    let nothing = Policy::new(&Authz::default()).check(&attrs);
    assert_eq!(nothing, Decision::Allow, "no policy must allow");
    for name in policy.audited(&attrs) {
        assert!(authz.audit.iter().any(|p| p.name == name), "audited {name}");
    }
    let reason = match &decision {
        Decision::Allow => None,
        Decision::Deny { reason, .. } => Some(*reason),
    };
    if !authz.custom.is_empty() {
        assert_eq!(reason, Some(DenyReason::Custom), "custom must deny");
    } else if authz.deny.is_empty() && authz.allow.is_empty() {
        assert_eq!(reason, None, "nothing to deny with");
    }
    if let Decision::Deny {
        policy: name,
        reason: DenyReason::DenyRule,
    } = &decision
    {
        assert!(
            authz.deny.iter().any(|p| p.name == *name),
            "denied by {name}"
        );
    }
    if reason == Some(DenyReason::NoAllowMatched) {
        assert!(!authz.allow.is_empty(), "no allow policy to match");
    }
}

/// The key set of [`jwt`]'s verifier: one ES256 key, made for fuzzing (its private half was
/// thrown away once [`JWT_SEED`] was signed).
pub const JWT_JWKS: &str = r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"fuzz","alg":"ES256","x":"q2xSbP4mINIysk7PUJhEuP2wTwxYi4HYndU0CMNxks8","y":"T3d8JiErGdFxm75BYse7-kiqX0knbt1tQrqzbXJKoRQ"}]}"#;

/// The issuer [`jwt`]'s verifier trusts.
pub const JWT_ISSUER: &str = "fuzz@strait.test";

/// A token [`jwt`]'s verifier accepts at [`jwt_now`]: subject `fuzzer`, audience `strait`,
/// `scope`, a list and a nested claim, valid from 2023 to 2100. The seed for mutations.
pub const JWT_SEED: &str = concat!(
    "eyJhbGciOiJFUzI1NiIsImtpZCI6ImZ1enoiLCJ0eXAiOiJKV1QifQ.",
    "eyJpc3MiOiJmdXp6QHN0cmFpdC50ZXN0Iiwic3ViIjoiZnV6emVyIiwiYXVkIjpbInN0cmFpdCJdLCJhenAiOiJjbGll",
    "bnQiLCJleHAiOjQxMDI0NDQ4MDAsIm5iZiI6MTcwMDAwMDAwMCwic2NvcGUiOiJyZWFkIHdyaXRlIiwiZ3JvdXBzIjpb",
    "ImEiLCJiIl0sIm5lc3RlZCI6eyJrZXkiOiJ2YWx1ZSIsIm4iOjd9fQ.",
    "lCGE_hbRKvvPaJH1Bmsx951LbrkSr_F9MMBxDXbrer3ocLJiCrDqbD9YLY1fxAfsRYaSzXPr5pKwdZIX7n8aYA",
);

/// The fixed clock of [`jwt`]: 2027-01-15.
pub fn jwt_now() -> std::time::SystemTime {
    std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000)
}

/// The verifier [`jwt`] uses: the default token locations plus `x-token: Token <jwt>` and
/// `?jwt=`, audience `strait`, and payload and claim output headers.
pub fn jwt_verifier() -> &'static crate::jwt::Verifier {
    use std::sync::LazyLock;

    use strait_config::{JwtHeader, JwtProvider};

    static VERIFIER: LazyLock<crate::jwt::Verifier> = LazyLock::new(|| {
        let provider = |from_headers: Vec<JwtHeader>, from_params: Vec<String>| JwtProvider {
            policy: "fuzz/ra".into(),
            issuer: JWT_ISSUER.into(),
            audiences: vec!["strait".into()],
            jwks: JWT_JWKS.into(),
            jwks_source: "inline".into(),
            from_headers,
            from_params,
            output_payload_to_header: "x-jwt-payload".into(),
            output_claim_to_headers: vec![
                ("x-jwt-sub".into(), "sub".into()),
                ("x-jwt-nested".into(), "nested.key".into()),
            ],
            ..JwtProvider::default()
        };
        let custom = JwtHeader {
            name: "x-token".into(),
            prefix: "Token ".into(),
        };
        crate::jwt::Verifier::new(&[
            provider(Vec::new(), Vec::new()),
            provider(vec![custom], vec!["jwt".into()]),
        ])
    });
    &VERIFIER
}

/// Any bytes as the `Authorization` and `x-token` header values and as the query string.
/// Checks that a forged copy of an output header never survives, and that output headers
/// appear only for a verified token.
pub fn jwt(data: &[u8]) {
    use crate::jwt::Authn;

    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_bytes(data) {
        headers.insert(http::header::AUTHORIZATION, value.clone());
        headers.insert("x-token", value.clone());
        headers.insert(http::header::COOKIE, value);
    }
    headers.insert("x-jwt-payload", HeaderValue::from_static("forged"));
    headers.append("x-jwt-sub", HeaderValue::from_static("forged"));
    let query = String::from_utf8_lossy(data);
    let outcome = jwt_verifier().authenticate(&mut headers, Some(&query), jwt_now());
    for name in ["x-jwt-payload", "x-jwt-sub", "x-jwt-nested"] {
        assert!(
            headers.get_all(name).iter().all(|v| v != "forged"),
            "forged {name} survived"
        );
    }
    match outcome {
        Authn::Verified(claims) => {
            assert_eq!(claims.issuer, JWT_ISSUER);
            assert!(
                headers.contains_key("x-jwt-payload"),
                "payload header missing"
            );
        }
        Authn::Rejected(r) => {
            assert!(!r.body().is_empty());
            assert!(!headers.contains_key("x-jwt-payload"), "payload header set");
        }
        Authn::NoToken => assert!(!headers.contains_key("x-jwt-payload"), "payload header set"),
    }
}

/// Any bytes as a request path, normalized under every `pathNormalization` mode. Checks that
/// a normalized path is absolute, has no `.` or `..` segment left, is a fixed point (a second
/// pass changes nothing), and, when slashes are merged, has no `//`.
pub fn path(data: &[u8]) {
    use strait_config::PathNormalization as M;
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = format!("/{text}");
    for mode in [M::None, M::Base, M::MergeSlashes, M::DecodeAndMergeSlashes] {
        let Ok(out) = crate::path::normalize(&path, mode) else {
            assert_ne!(mode, M::None, "NONE never refuses a path");
            continue;
        };
        if mode == M::None {
            assert_eq!(out, path.as_str());
            continue;
        }
        assert!(out.starts_with('/'), "{out:?}");
        assert!(
            !out.split('/').any(|s| s == "." || s == ".."),
            "dot segment left in {out:?}"
        );
        if mode != M::Base {
            assert!(!out.contains("//"), "{out:?}");
        }
        if mode != M::DecodeAndMergeSlashes {
            let again = crate::path::normalize(&out, mode).map(|p| p.into_owned());
            assert_eq!(again.as_deref(), Ok(out.as_ref()), "not a fixed point");
        }
    }
}

/// Any bytes as trace headers (`traceparent`, `tracestate`, `b3`, `x-b3-*`), split on
/// newlines: extracted, continued and written back without panicking, and what is written
/// back always reads as one context in every format.
pub fn trace_headers(data: &[u8]) {
    use crate::trace::context;
    const NAMES: [&str; 7] = [
        "traceparent",
        "tracestate",
        "b3",
        "x-b3-traceid",
        "x-b3-spanid",
        "x-b3-sampled",
        "x-b3-flags",
    ];
    let mut h = http::HeaderMap::new();
    for (name, value) in NAMES.iter().zip(data.split(|b| *b == b'\n')) {
        if let Ok(v) = http::HeaderValue::from_bytes(value) {
            h.insert(*name, v);
        }
    }
    let incoming = context::extract(&h);
    let out = crate::trace::child(
        &incoming,
        strait_config::SAMPLING_SCALE / 2,
        &mut rand::rng(),
    );
    if let Some(p) = &incoming.parent {
        assert_eq!(out.trace_id, p.trace_id);
        assert_eq!(out.parent, Some(p.span_id));
    }
    context::inject(&mut h, &out);
    let again = context::extract(&h);
    assert_eq!(
        again.parent.map(|p| (p.trace_id, p.span_id)),
        Some((out.trace_id, out.span_id))
    );
    assert_eq!(again.sampled, Some(out.sampled));
}
