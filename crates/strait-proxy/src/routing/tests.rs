use http::HeaderValue;
use rand::SeedableRng;
use rand::rngs::StdRng;
use strait_config::{HeaderMatch, HttpAction, Retry};

use super::*;

fn rule(name: &str, m: Vec<RequestMatch>) -> HttpRule {
    HttpRule {
        name: name.into(),
        matches: m,
        action: HttpAction::Respond {
            status: 200,
            body: String::new(),
        },
        timeout_ms: None,
        retries: Retry::istio_default(),
        policy: Default::default(),
    }
}

fn view<'a>(path: &'a str, headers: &'a HeaderMap) -> RequestView<'a> {
    RequestView {
        method: "GET",
        path,
        query: Some("a=1&b=two"),
        authority: "helloworld.sample:5000",
        scheme: "http",
        headers,
        claims: None,
    }
}

#[test]
fn first_matching_rule_wins() {
    let rules = vec![
        rule(
            "jason",
            vec![RequestMatch {
                headers: vec![HeaderMatch {
                    name: "end-user".into(),
                    value: Some(StrMatch::Exact("jason".into())),
                    invert: false,
                    claim: Vec::new(),
                }],
                ..RequestMatch::default()
            }],
        ),
        rule(
            "v2-regex",
            vec![RequestMatch {
                uri: Some(StrMatch::Regex("/v[0-9]+/.*".into())),
                ..RequestMatch::default()
            }],
        ),
        rule(
            "query",
            vec![RequestMatch {
                query: vec![("b".into(), StrMatch::Prefix("tw".into()))],
                ..RequestMatch::default()
            }],
        ),
    ];
    let re = Regexes::for_rules(rules.iter()).expect("regexes");
    let mut h = HeaderMap::new();
    assert_eq!(
        select_rule(&rules, &view("/v2/x", &h), &re).map(|r| r.name.as_str()),
        Some("v2-regex")
    );
    assert_eq!(
        select_rule(&rules, &view("/v2", &h), &re).map(|r| r.name.as_str()),
        Some("query"),
        "regex matches the whole path"
    );
    h.insert("end-user", HeaderValue::from_static("jason"));
    assert_eq!(
        select_rule(&rules, &view("/v2/x", &h), &re).map(|r| r.name.as_str()),
        Some("jason")
    );
}

#[test]
fn without_headers_and_invalid_regex() {
    let rules = vec![rule(
        "not-canary",
        vec![RequestMatch {
            headers: vec![HeaderMatch {
                name: "x-canary".into(),
                value: None,
                invert: true,
                claim: Vec::new(),
            }],
            ..RequestMatch::default()
        }],
    )];
    let re = Regexes::for_rules(rules.iter()).expect("regexes");
    let mut h = HeaderMap::new();
    assert!(select_rule(&rules, &view("/", &h), &re).is_some());
    h.insert("x-canary", HeaderValue::from_static("1"));
    assert!(select_rule(&rules, &view("/", &h), &re).is_none());
    let bad = [rule(
        "bad",
        vec![RequestMatch {
            uri: Some(StrMatch::Regex("(".into())),
            ..RequestMatch::default()
        }],
    )];
    assert!(Regexes::for_rules(bad.iter()).is_err());
}

#[test]
fn weights_hold_over_many_picks() {
    let ws = vec![
        WeightedCluster {
            cluster: "v1".into(),
            weight: 80,
            ..WeightedCluster::default()
        },
        WeightedCluster {
            cluster: "v2".into(),
            weight: 20,
            ..WeightedCluster::default()
        },
        WeightedCluster {
            cluster: "never".into(),
            weight: 0,
            ..WeightedCluster::default()
        },
    ];
    let mut rng = StdRng::seed_from_u64(7);
    let mut v1 = 0;
    for _ in 0..10_000 {
        match pick_weighted(&ws, &mut rng).map(|w| w.cluster.as_str()) {
            Some("v1") => v1 += 1,
            Some("v2") => {}
            other => panic!("picked {other:?}"),
        }
    }
    assert!((7_700..8_300).contains(&v1), "{v1}");
}

#[test]
fn jwt_claims_match_at_a_gateway_that_verified_them() {
    let rules = vec![rule(
        "admins",
        vec![RequestMatch {
            headers: vec![HeaderMatch {
                name: "@request.auth.claims.groups".into(),
                value: Some(StrMatch::Exact("admin".into())),
                invert: false,
                claim: vec!["groups".into()],
            }],
            ..RequestMatch::default()
        }],
    )];
    let re = Regexes::for_rules(rules.iter()).expect("regexes");
    let mut h = HeaderMap::new();
    // A header of that name is not a claim: a client cannot forge one.
    h.insert("groups", HeaderValue::from_static("admin"));
    assert!(select_rule(&rules, &view("/", &h), &re).is_none());
    let claims = |groups: serde_json::Value| crate::jwt::Claims {
        issuer: "https://issuer.example".into(),
        subject: "alice".into(),
        audiences: Vec::new(),
        presenter: None,
        payload: serde_json::json!({ "groups": groups }),
    };
    for (groups, hit) in [
        (serde_json::json!(["dev", "admin"]), true),
        (serde_json::json!("admin"), true),
        (serde_json::json!(["dev"]), false),
    ] {
        let c = claims(groups.clone());
        let v = RequestView {
            claims: Some(&c),
            ..view("/", &h)
        };
        assert_eq!(select_rule(&rules, &v, &re).is_some(), hit, "{groups}");
    }
}
