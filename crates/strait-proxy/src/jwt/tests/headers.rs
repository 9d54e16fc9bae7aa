//! Where tokens are found (headers with prefixes, query parameters, the defaults), several
//! tokens and providers, and how the request headers are rewritten.

use http::{HeaderMap, HeaderValue};
use serde_json::json;
use strait_config::{JwtHeader, JwtProvider};

use super::keys::{ISSUER, Signer, b64, claims, jwks, now, provider};
use super::{bearer, refused, verified};
use crate::jwt::{Authn, Reason, Verifier};

fn custom(s: &Signer) -> JwtProvider {
    JwtProvider {
        from_headers: vec![JwtHeader {
            name: "x-token".into(),
            prefix: "Token ".into(),
        }],
        from_params: vec!["jwt".into()],
        ..provider(jwks(&[s]))
    }
}

fn header(h: &HeaderMap, name: &str) -> Vec<String> {
    h.get_all(name)
        .iter()
        .map(|v| v.to_str().expect("ascii").to_string())
        .collect()
}

#[test]
fn tokens_are_found_in_a_custom_header_after_its_prefix() {
    let s = Signer::p256("k1");
    let v = Verifier::new(&[custom(&s)]);
    let tok = s.sign(&claims());
    let mut h = HeaderMap::new();
    h.insert(
        "x-token",
        HeaderValue::from_str(&format!("Token {tok}")).expect("value"),
    );
    verified(v.authenticate(&mut h, None, now()));
    assert!(h.get("x-token").is_none(), "the token header is removed");
    // Envoy finds the prefix anywhere in the value, and skips what is not a token character.
    let mut h = HeaderMap::new();
    h.insert(
        "x-token",
        HeaderValue::from_str(&format!("v1 Token   {tok}")).expect("value"),
    );
    verified(v.authenticate(&mut h, None, now()));
    // Without the prefix the header holds no token; the default header is not looked at.
    let mut h = HeaderMap::new();
    h.insert("x-token", HeaderValue::from_str(&tok).expect("value"));
    assert_eq!(v.authenticate(&mut h, None, now()), Authn::NoToken);
    assert_eq!(
        v.authenticate(&mut bearer(&tok), None, now()),
        Authn::NoToken
    );
}

#[test]
fn tokens_are_found_in_query_parameters() {
    let s = Signer::p256("k1");
    let tok = s.sign(&claims());
    let v = Verifier::new(&[custom(&s)]);
    let q = format!("a=1&jwt={}&b", tok.replace('.', "%2E"));
    verified(v.authenticate(&mut HeaderMap::new(), Some(&q), now()));
    verified(v.authenticate(&mut HeaderMap::new(), Some(&format!("?jwt={tok}")), now()));
    assert_eq!(
        v.authenticate(&mut HeaderMap::new(), Some("access_token=x"), now()),
        Authn::NoToken
    );
    // The defaults: `Authorization: Bearer` and `access_token`.
    let d = Verifier::new(&[provider(jwks(&[&s]))]);
    let q = format!("access_token={tok}");
    verified(d.authenticate(&mut HeaderMap::new(), Some(&q), now()));
    assert_eq!(
        refused(d.authenticate(&mut HeaderMap::new(), Some("access_token=x.y"), now())),
        Reason::BadFormat
    );
    // Another scheme in Authorization is not a token.
    let mut h = HeaderMap::new();
    h.insert(
        "authorization",
        HeaderValue::from_static("Basic dXNlcjpwdw=="),
    );
    assert_eq!(d.authenticate(&mut h, None, now()), Authn::NoToken);
    assert!(h.get("authorization").is_some());
}

#[test]
fn every_token_found_must_verify() {
    let s = Signer::p256("k1");
    let v = Verifier::new(&[provider(jwks(&[&s]))]);
    let good = s.sign(&claims());
    let other = s.sign(&json!({"iss": ISSUER, "sub": "bob"}));
    let q = format!("access_token={other}");
    let c = verified(v.authenticate(&mut bearer(&good), Some(&q), now()));
    assert_eq!(c.subject, "alice", "the first token's claims");
    let bad = Signer::p256("k1").sign(&claims());
    let q = format!("access_token={bad}");
    assert_eq!(
        refused(v.authenticate(&mut bearer(&good), Some(&q), now())),
        Reason::VerificationFails
    );
    // Two Authorization headers: both are read.
    let mut h = bearer(&good);
    h.append(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {bad}")).expect("value"),
    );
    assert_eq!(
        refused(v.authenticate(&mut h, None, now())),
        Reason::VerificationFails
    );
}

#[test]
fn a_token_is_only_vouched_for_by_providers_of_its_location() {
    let a = Signer::p256("a");
    let b = Signer::p256("b");
    let pa = JwtProvider {
        issuer: "issuer-a".into(),
        from_headers: vec![JwtHeader {
            name: "x-a".into(),
            prefix: String::new(),
        }],
        ..provider(jwks(&[&a]))
    };
    let pb = JwtProvider {
        issuer: "issuer-b".into(),
        ..provider(jwks(&[&b]))
    };
    let v = Verifier::new(&[pa, pb]);
    let tok_a = a.sign(&json!({"iss": "issuer-a", "sub": "x"}));
    let tok_b = b.sign(&json!({"iss": "issuer-b", "sub": "y"}));
    assert_eq!(
        refused(v.authenticate(&mut bearer(&tok_a), None, now())),
        Reason::UnknownIssuer
    );
    let c = verified(v.authenticate(&mut bearer(&tok_b), None, now()));
    assert_eq!(c.principal(), "issuer-b/y");
    let mut h = HeaderMap::new();
    h.insert("x-a", HeaderValue::from_str(&tok_a).expect("value"));
    assert_eq!(
        verified(v.authenticate(&mut h, None, now())).principal(),
        "issuer-a/x"
    );
}

#[test]
fn providers_sharing_a_location_each_verify_their_issuer() {
    let a = Signer::p256("a");
    let b = Signer::p256("b");
    let pa = JwtProvider {
        issuer: "issuer-a".into(),
        ..provider(jwks(&[&a]))
    };
    let pb = JwtProvider {
        issuer: "issuer-b".into(),
        ..provider(jwks(&[&b]))
    };
    // Two RequestAuthentications for one issuer: the first that accepts wins.
    let pb_stale = JwtProvider {
        issuer: "issuer-b".into(),
        ..provider(String::new())
    };
    let v = Verifier::new(&[pa, pb_stale, pb]);
    for (s, iss) in [(&a, "issuer-a"), (&b, "issuer-b")] {
        let tok = s.sign(&json!({"iss": iss, "sub": "u"}));
        verified(v.authenticate(&mut bearer(&tok), None, now()));
    }
}

#[test]
fn the_token_header_is_kept_only_when_forwarded() {
    let s = Signer::p256("k1");
    let tok = s.sign(&claims());
    let mut p = provider(jwks(&[&s]));
    p.forward_original_token = true;
    let v = Verifier::new(&[p]);
    let mut h = bearer(&tok);
    verified(v.authenticate(&mut h, None, now()));
    assert_eq!(header(&h, "authorization"), [format!("Bearer {tok}")]);
    let v = Verifier::new(&[provider(jwks(&[&s]))]);
    let mut h = bearer(&tok);
    verified(v.authenticate(&mut h, None, now()));
    assert!(h.get("authorization").is_none());
}

#[test]
fn output_headers_are_set_and_forged_copies_removed() {
    let s = Signer::p256("k1");
    let mut p = provider(jwks(&[&s]));
    p.output_payload_to_header = "x-jwt-payload".into();
    p.output_claim_to_headers = vec![
        ("x-sub".into(), "sub".into()),
        ("x-key".into(), "nested.key".into()),
        ("x-n".into(), "nested.deeper.n".into()),
        ("x-flag".into(), "nested.deeper.flag".into()),
        ("x-groups".into(), "groups".into()),
        ("x-scope".into(), "scope".into()),
        ("x-missing".into(), "nope".into()),
    ];
    let v = Verifier::new(&[p]);
    let forged = |h: &mut HeaderMap| {
        for name in ["x-jwt-payload", "x-sub", "x-groups", "x-missing"] {
            h.append(name, HeaderValue::from_static("forged"));
        }
    };
    let tok = s.sign(&claims());
    let mut h = bearer(&tok);
    forged(&mut h);
    verified(v.authenticate(&mut h, None, now()));
    let payload = tok.split('.').nth(1).expect("payload");
    assert_eq!(header(&h, "x-jwt-payload"), [payload]);
    assert_eq!(header(&h, "x-sub"), ["alice"]);
    assert_eq!(header(&h, "x-key"), ["value"]);
    assert_eq!(header(&h, "x-n"), ["42"]);
    assert_eq!(header(&h, "x-flag"), ["true"]);
    // The payload as sent, not split: Envoy copies claims before normalizing them.
    assert_eq!(header(&h, "x-scope"), ["read  write"]);
    assert!(h.get("x-groups").is_none(), "lists are not copied");
    assert!(h.get("x-missing").is_none());

    // Without a token, and with a refused one, forged copies are gone all the same.
    let mut h = HeaderMap::new();
    forged(&mut h);
    assert_eq!(v.authenticate(&mut h, None, now()), Authn::NoToken);
    assert!(h.is_empty(), "{h:?}");
    let mut h = bearer("not.a.token");
    forged(&mut h);
    refused(v.authenticate(&mut h, None, now()));
    assert_eq!(h.len(), 1, "{h:?}");
}

#[test]
fn claim_header_values_follow_envoy() {
    use crate::jwt::claims::header_value;
    let payload = json!({"f": 1.5, "neg": -2, "big": 1e300, "empty": "", "ctl": "a\nb", "o": {}})
        .as_object()
        .cloned()
        .expect("object");
    let get = |c: &str| header_value(&payload, c).map(|v| v.to_str().expect("ascii").to_string());
    assert_eq!(get("f").as_deref(), Some("1.500000"));
    assert_eq!(get("neg").as_deref(), Some("-2.000000"));
    assert!(get("big").is_some());
    assert_eq!(get("empty"), None);
    assert_eq!(get("ctl"), None, "not a header value");
    assert_eq!(get("o"), None);
    assert_eq!(get(""), None);
    assert_eq!(b64(&json!({})), "e30");
}

#[test]
fn bad_output_header_names_are_reported() {
    let s = Signer::p256("k1");
    let mut p = provider(jwks(&[&s]));
    p.output_payload_to_header = "bad header".into();
    p.from_headers = vec![JwtHeader {
        name: "also bad".into(),
        prefix: String::new(),
    }];
    let v = Verifier::new(&[p]);
    let problems = v.problems();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert_eq!(
        v.authenticate(&mut bearer(&s.sign(&claims())), None, now()),
        Authn::NoToken
    );
}
