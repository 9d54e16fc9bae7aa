//! Verification: claims of a good token, and each way a token is refused. Where tokens are
//! found and how headers are rewritten: `tests/headers.rs`.

mod headers;
mod keys;

use http::{HeaderMap, HeaderValue, StatusCode};
use jsonwebtoken::Algorithm;
use serde_json::{Value, json};
use strait_config::JwtProvider;

use super::{Authn, Claims, Reason, Verifier};
use keys::{ISSUER, NOW, Signer, claims, jwks, now, provider};

fn bearer(token: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        http::header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token}")).expect("header"),
    );
    h
}

fn run(v: &Verifier, token: &str) -> Authn {
    v.authenticate(&mut bearer(token), None, now())
}

fn verified(a: Authn) -> Claims {
    match a {
        Authn::Verified(c) => c,
        other => panic!("expected verified, got {other:?}"),
    }
}

fn refused(a: Authn) -> Reason {
    match a {
        Authn::Rejected(r) => {
            assert_eq!(r.to_string(), r.body(), "Display is the body");
            r.reason()
        }
        other => panic!("expected rejected, got {other:?}"),
    }
}

fn path(p: &[&str]) -> Vec<String> {
    p.iter().map(|s| s.to_string()).collect()
}

fn with(mut c: Value, key: &str, v: Value) -> Value {
    c[key] = v;
    c
}

#[test]
fn a_valid_token_gives_its_claims() {
    let s = Signer::p256("k1");
    let v = Verifier::new(&[provider(jwks(&[&s]))]);
    assert!(v.problems().is_empty(), "{:?}", v.problems());
    let c = verified(run(&v, &s.sign(&claims())));
    assert_eq!(c.issuer, ISSUER);
    assert_eq!(c.subject, "alice");
    assert_eq!(c.audiences, ["api.example.com", "other"]);
    assert_eq!(c.presenter.as_deref(), Some("web-client"));
    assert_eq!(c.principal(), "https://issuer.example.com/alice");
    assert_eq!(c.claim(&path(&["nested", "key"])), ["value"]);
    assert_eq!(c.claim(&path(&["nested", "deeper", "n"])), ["42"]);
    assert_eq!(c.claim(&path(&["nested", "deeper", "flag"])), ["true"]);
    assert_eq!(c.claim(&path(&["groups"])), ["admins", "devs"]);
    assert_eq!(c.claim(&path(&["scope"])), ["read", "write"]);
    assert_eq!(c.claim(&path(&["permission"])), ["a:b", "c:d"]);
    // Only the listed claims are split.
    assert_eq!(c.claim(&path(&["roles"])), ["editor viewer"]);
    assert!(c.claim(&path(&["missing"])).is_empty());
    assert!(c.claim(&path(&["nested"])).is_empty());
    assert!(c.claim(&[]).is_empty());
    // The normalized payload holds the split scope, as Envoy's metadata does.
    assert_eq!(c.payload["scope"], json!(["read", "write"]));
}

#[test]
fn space_delimited_claims_of_the_rule_are_split() {
    let s = Signer::p256("k1");
    let mut p = provider(jwks(&[&s]));
    p.space_delimited_claims = vec!["roles".into(), "nested.key".into()];
    let v = Verifier::new(&[p]);
    let tok = s.sign(&with(claims(), "nested", json!({"key": "x y"})));
    let c = verified(run(&v, &tok));
    assert_eq!(c.claim(&path(&["roles"])), ["editor", "viewer"]);
    assert_eq!(c.claim(&path(&["nested", "key"])), ["x", "y"]);
}

#[test]
fn claims_made_by_hand_split_scope() {
    let c = Claims {
        issuer: "i".into(),
        subject: "s".into(),
        audiences: vec![],
        presenter: None,
        payload: json!({"scope": "a b", "scp": "c d"}),
    };
    assert_eq!(c.claim(&path(&["scope"])), ["a", "b"]);
    assert_eq!(c.claim(&path(&["scp"])), ["c d"]);
    assert_eq!(c.principal(), "i/s");
}

#[test]
fn time_is_checked_with_sixty_seconds_of_skew() {
    let s = Signer::p256("k1");
    let v = Verifier::new(&[provider(jwks(&[&s]))]);
    let at = |k: &str, t: u64| s.sign(&with(claims(), k, json!(t)));
    assert_eq!(refused(run(&v, &at("exp", NOW - 61))), Reason::Expired);
    verified(run(&v, &at("exp", NOW - 59)));
    assert_eq!(refused(run(&v, &at("nbf", NOW + 61))), Reason::NotYetValid);
    verified(run(&v, &at("nbf", NOW + 59)));
    // No `exp`: never expires, as in Envoy (Istio does not require one).
    let mut c = claims();
    c.as_object_mut().expect("object").remove("exp");
    verified(run(&v, &s.sign(&c)));
    assert_eq!(
        refused(run(&v, &s.sign(&with(claims(), "exp", json!("soon"))))),
        Reason::ExpNotInteger
    );
    assert_eq!(
        refused(run(&v, &s.sign(&with(claims(), "nbf", json!(-1))))),
        Reason::NbfOutOfRange
    );
}

#[test]
fn an_unknown_issuer_is_refused() {
    let s = Signer::p256("k1");
    let v = Verifier::new(&[provider(jwks(&[&s]))]);
    let tok = s.sign(&with(claims(), "iss", json!("https://evil.example.com")));
    let r = match run(&v, &tok) {
        Authn::Rejected(r) => r,
        other => panic!("{other:?}"),
    };
    assert_eq!(r.reason(), Reason::UnknownIssuer);
    assert_eq!(r.body(), "Jwt issuer is not configured");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.provider(), None);
}

#[test]
fn audiences_must_match_when_listed() {
    let s = Signer::p256("k1");
    let mut p = provider(jwks(&[&s]));
    p.audiences = vec!["https://api.example.com/".into()];
    let v = Verifier::new(&[p]);
    // Envoy compares without scheme and trailing slash.
    verified(run(&v, &s.sign(&claims())));
    let wrong = s.sign(&with(claims(), "aud", json!("elsewhere")));
    match run(&v, &wrong) {
        Authn::Rejected(r) => {
            assert_eq!(r.reason(), Reason::AudienceNotAllowed);
            assert_eq!(r.body(), "Audiences in Jwt are not allowed");
            assert_eq!(r.status(), StatusCode::FORBIDDEN);
            assert_eq!(
                r.provider(),
                Some("ns/ra issuer https://issuer.example.com")
            );
        }
        other => panic!("{other:?}"),
    }
    let none = {
        let mut c = claims();
        c.as_object_mut().expect("object").remove("aud");
        s.sign(&c)
    };
    assert_eq!(refused(run(&v, &none)), Reason::AudienceNotAllowed);
    // No audiences in the rule: any.
    let any = Verifier::new(&[provider(jwks(&[&s]))]);
    verified(run(&any, &wrong));
    assert_eq!(
        refused(run(&any, &s.sign(&with(claims(), "aud", json!([1]))))),
        Reason::AudNotString
    );
}

#[test]
fn a_signature_by_another_key_fails() {
    let good = Signer::p256("k1");
    let evil = Signer::p256("k1");
    let v = Verifier::new(&[provider(jwks(&[&good]))]);
    assert_eq!(
        refused(run(&v, &evil.sign(&claims()))),
        Reason::VerificationFails
    );
    // A valid token with its signature swapped for another's.
    let tok = good.sign(&claims());
    let other = good.sign(&with(claims(), "sub", json!("mallory")));
    let (msg, _) = tok.rsplit_once('.').expect("dots");
    let (_, sig) = other.rsplit_once('.').expect("dots");
    assert_eq!(
        refused(run(&v, &format!("{msg}.{sig}"))),
        Reason::VerificationFails
    );
}

#[test]
fn keys_are_chosen_by_kid_and_alg() {
    let k1 = Signer::p256("k1");
    let k2 = Signer::p256("k2");
    let v = Verifier::new(&[provider(jwks(&[&k1, &k2]))]);
    verified(run(&v, &k2.sign(&claims())));
    let k3 = Signer::p256("k3");
    assert_eq!(refused(run(&v, &k3.sign(&claims()))), Reason::NoMatchingKey);
    // No kid: every key is tried.
    assert_eq!(
        refused(run(&v, &k3.without_kid().sign(&claims()))),
        Reason::VerificationFails
    );
    let k2_nokid = k2.without_kid();
    verified(run(&v, &k2_nokid.sign(&claims())));
    // A JWK naming an alg is only tried for it.
    let rsa = Signer::rsa("r", Algorithm::PS256);
    let mut jwk_rs256 = rsa.jwk.clone();
    jwk_rs256["alg"] = json!("RS256");
    let v = Verifier::new(&[provider(json!({"keys": [jwk_rs256]}).to_string())]);
    assert_eq!(
        refused(run(&v, &rsa.sign(&claims()))),
        Reason::NoMatchingKey
    );
}

#[test]
fn rsa_and_eddsa_tokens_verify() {
    for alg in [
        Algorithm::RS256,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
    ] {
        let s = Signer::rsa("r", alg);
        let v = Verifier::new(&[provider(jwks(&[&s]))]);
        assert!(v.problems().is_empty(), "{:?}", v.problems());
        verified(run(&v, &s.sign(&claims())));
    }
    let ed = Signer::ed25519("e");
    let v = Verifier::new(&[provider(jwks(&[&ed]))]);
    assert!(v.problems().is_empty(), "{:?}", v.problems());
    verified(run(&v, &ed.sign(&claims())));
    // An ES256 token against an RSA key without alg: the key is tried and cannot verify it.
    let rsa_only = Verifier::new(&[provider(jwks(&[&Signer::rsa("r", Algorithm::RS256)]))]);
    let es = Signer::p256("r");
    assert_eq!(
        refused(run(&rsa_only, &es.sign(&claims()))),
        Reason::VerificationFails
    );
}

#[test]
fn a_provider_without_usable_keys_fails_closed() {
    let s = Signer::p256("k1");
    for (doc, why) in [
        ("", "no JWKS"),
        ("{not json", "not valid JSON"),
        (r#"{"nokeys": []}"#, "no [keys]"),
        (r#"{"keys": {}}"#, "not an array"),
        (r#"{"keys": []}"#, "no usable key"),
        (
            r#"{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}"#,
            "symmetric",
        ),
        (
            r#"{"keys": [{"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA"}]}"#,
            "P-521",
        ),
        (
            r#"{"keys": [{"kty": "RSA", "n": "AQAB", "e": "AQAB"}]}"#,
            "bits",
        ),
    ] {
        let v = Verifier::new(&[provider(doc.to_string())]);
        assert!(!v.is_empty());
        let problems = v.problems();
        assert!(
            problems.iter().any(|p| p.contains(why)),
            "{doc}: {problems:?}"
        );
        assert!(
            problems
                .iter()
                .all(|p| p.starts_with("ns/ra issuer https://issuer.example.com: ")),
            "{problems:?}"
        );
        assert_eq!(
            refused(run(&v, &s.sign(&claims()))),
            Reason::NoMatchingKey,
            "{doc}"
        );
    }
}

#[test]
fn a_bad_key_is_skipped_and_the_others_still_verify() {
    let s = Signer::p256("k1");
    let doc = json!({"keys": [{"kty": "EC", "crv": "P-256", "x": "!!", "y": "AA"}, s.jwk]});
    let v = Verifier::new(&[provider(doc.to_string())]);
    assert_eq!(v.problems().len(), 1, "{:?}", v.problems());
    assert!(v.problems()[0].contains("key 0"), "{:?}", v.problems());
    verified(run(&v, &s.sign(&claims())));
}

#[test]
fn hmac_and_none_tokens_are_refused() {
    let s = Signer::p256("k1");
    let v = Verifier::new(&[provider(jwks(&[&s]))]);
    let body = keys::b64(&claims());
    let hs = keys::b64(&json!({"alg": "HS256", "kid": "k1"}));
    assert_eq!(
        refused(run(&v, &format!("{hs}.{body}.c2ln"))),
        Reason::NoMatchingKey
    );
    let none = keys::b64(&json!({"alg": "none"}));
    assert_eq!(
        refused(run(&v, &format!("{none}.{body}.c2ln"))),
        Reason::HeaderNotImplementedAlg
    );
    let no_alg = keys::b64(&json!({"kid": "k1"}));
    assert_eq!(
        refused(run(&v, &format!("{no_alg}.{body}.c2ln"))),
        Reason::HeaderBadAlg
    );
    let bad_kid = json!({"alg": "ES256", "kid": 5});
    assert_eq!(
        refused(run(&v, &s.sign_raw(&bad_kid, &claims()))),
        Reason::HeaderBadKid
    );
}

#[test]
fn malformed_tokens_are_refused_without_panic() {
    let s = Signer::p256("k1");
    let v = Verifier::new(&[provider(jwks(&[&s]))]);
    let good = s.sign(&claims());
    let (h, rest) = good.split_once('.').expect("dot");
    let (p, sig) = rest.split_once('.').expect("dot");
    let huge = format!("{h}.{}.{sig}", "A".repeat(1 << 20));
    for (tok, want) in [
        ("abc".to_string(), Reason::BadFormat),
        ("abc.def".to_string(), Reason::BadFormat),
        ("a.b.c.d".to_string(), Reason::BadFormat),
        (format!("{h}..{sig}"), Reason::BadFormat),
        ("a!!.b!!.c!!".to_string(), Reason::HeaderBadBase64),
        // Envoy skips to the first token character after the prefix, here the dot.
        ("!!!.!!!.!!!".to_string(), Reason::BadFormat),
        (
            format!("{}.{p}.{sig}", keys::b64(&json!("x"))),
            Reason::HeaderBadJson,
        ),
        (format!("{h}.!!!.{sig}"), Reason::PayloadBadBase64),
        (
            format!("{h}.{}.{sig}", keys::b64(&json!([1]))),
            Reason::PayloadBadJson,
        ),
        (format!("{h}.{p}.***"), Reason::SignatureBadBase64),
        (huge, Reason::PayloadBadJson),
    ] {
        assert_eq!(refused(run(&v, &tok)), want, "{:.60}", tok);
    }
    // "Bearer " with nothing after it: Envoy hands on the whole value, which cannot parse.
    let mut empty = HeaderMap::new();
    empty.insert("authorization", HeaderValue::from_static("Bearer "));
    assert_eq!(
        refused(v.authenticate(&mut empty, None, now())),
        Reason::BadFormat
    );
    // Padded base64url, which some issuers send, is accepted.
    let pad = "=".repeat((4 - sig.len() % 4) % 4);
    assert!(!pad.is_empty());
    verified(run(&v, &format!("{h}.{p}.{sig}{pad}")));
}

#[test]
fn a_string_sub_and_iss_are_required_types() {
    let s = Signer::p256("k1");
    let v = Verifier::new(&[provider(jwks(&[&s]))]);
    for (k, want) in [
        ("iss", Reason::IssNotString),
        ("sub", Reason::SubNotString),
        ("jti", Reason::JtiNotString),
        ("iat", Reason::IatNotInteger),
    ] {
        assert_eq!(
            refused(run(&v, &s.sign(&with(claims(), k, json!({}))))),
            want
        );
    }
}

#[test]
fn an_empty_verifier_finds_nothing() {
    let v = Verifier::new(&[]);
    assert!(v.is_empty());
    assert_eq!(run(&v, "garbage"), Authn::NoToken);
    let none: [JwtProvider; 0] = [];
    assert!(Verifier::new(&none).problems().is_empty());
}
