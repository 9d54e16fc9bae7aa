//! What the injector's tests share: the hand-written AdmissionReviews of `tests/data`, and a
//! JSON Patch applier that applies a patch as the API server would (RFC 6902 `add`, the only
//! operation the injector sends), so tests assert on the resulting pod.

#![allow(dead_code)]

use serde_json::Value;
use strait_kube::inject::Config;

/// A review of `tests/data`.
pub fn review_json(name: &str) -> Value {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The injector configuration the tests use: namespaces `sample` and `batch` are injected,
/// `istio-system` is not labelled, `legacy` opts out.
pub fn config() -> Config {
    let mut c = Config::new("ghcr.io/strait-mesh/strait:0.1.0");
    c.network = "network1".into();
    c.cluster_id = "cluster1".into();
    for (ns, key, value) in [
        ("sample", "istio-injection", "enabled"),
        ("batch", "istio-injection", "enabled"),
        ("legacy", "istio-injection", "disabled"),
        ("canary-apps", "istio.io/rev", "canary"),
    ] {
        c.namespaces
            .insert(ns.into(), [(key.to_string(), value.to_string())].into());
    }
    c
}

fn unescape(segment: &str) -> String {
    segment.replace("~1", "/").replace("~0", "~")
}

/// Applies `patch` (a JSON array of operations) to `doc`; panics on an operation the API
/// server would refuse.
pub fn apply(doc: &mut Value, patch: &Value) {
    for op in patch.as_array().expect("a patch is an array") {
        assert_eq!(op["op"], "add", "unexpected operation {op}");
        let path = op["path"].as_str().expect("a path");
        let value = op["value"].clone();
        let mut segments: Vec<String> = path.split('/').skip(1).map(unescape).collect();
        let last = segments.pop().expect("a path with a member");
        let mut target = &mut *doc;
        for s in &segments {
            target = match target {
                Value::Object(m) => m
                    .get_mut(s)
                    .unwrap_or_else(|| panic!("{path}: no member {s}")),
                Value::Array(a) => {
                    let i: usize = s.parse().unwrap_or_else(|_| panic!("{path}: index {s}"));
                    a.get_mut(i)
                        .unwrap_or_else(|| panic!("{path}: no element {i}"))
                }
                other => panic!("{path}: cannot descend into {other}"),
            };
        }
        match target {
            Value::Object(m) => {
                m.insert(last, value);
            }
            Value::Array(a) if last == "-" => a.push(value),
            Value::Array(a) => {
                let i: usize = last
                    .parse()
                    .unwrap_or_else(|_| panic!("{path}: index {last}"));
                assert!(i <= a.len(), "{path}: index past the end");
                a.insert(i, value);
            }
            other => panic!("{path}: cannot add into {other}"),
        }
    }
}

/// The names of the containers (or init containers) of a pod JSON.
pub fn names(pod: &Value, list: &str) -> Vec<String> {
    pod["spec"][list]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| c["name"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// The container named `name` in `list` of a pod JSON.
pub fn container<'a>(pod: &'a Value, list: &str, name: &str) -> &'a Value {
    pod["spec"][list]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("no {list} {name} in {pod}"))
}
