//! The fuzz target under proptest: random bytes, and real manifests with random edits
//! (truncations, inserted YAML punctuation, swapped lines), must never panic the loader.

use proptest::prelude::*;

const SEED: &str = r#"apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
  namespace: shop
  labels: {app: reviews, version: "1.0"}
spec:
  hosts: [reviews]
  http:
  - match: [{uri: {prefix: /v2}, headers: {end-user: {exact: jason}}}]
    timeout: 1.5s
    retries: {attempts: 3, perTryTimeout: 500ms}
    route:
    - destination: {host: reviews, subset: v2, port: {number: 9080}}
      weight: 100
---
apiVersion: v1
kind: ConfigMap
metadata: {name: istio, namespace: istio-system}
data:
  mesh: |
    trustDomain: cluster.local
    defaultConfig:
      proxyMetadata: {ISTIO_META_DNS_CAPTURE: "true"}
  meshNetworks: |
    networks:
      n1:
        endpoints: [{fromRegistry: c1}]
        gateways: [{address: 1.2.3.4, port: 15443}]
---
apiVersion: v1
kind: List
items:
- apiVersion: security.istio.io/v1
  kind: PeerAuthentication
  metadata: {name: default}
  spec: {mtls: {mode: STRICT}, portLevelMtls: {8080: {mode: DISABLE}}}
- &anchor
  apiVersion: apps/v1
  kind: Deployment
  metadata: {name: d}
  spec:
    template:
      metadata: {labels: {app: d}}
      spec: {containers: [{name: c, image: i, resources: {limits: {cpu: 1}}}]}
"#;

const PUNCT: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ":",
    "- ",
    "&a ",
    "*a",
    "!!str ",
    "|",
    ">",
    "'",
    "\"",
    "---\n",
    "\t",
    "{{ .Values.x }}",
    "<<: *anchor\n",
    "\n  ",
    "?",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, .. ProptestConfig::default() })]

    #[test]
    fn random_bytes(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        strait_api::fuzzing::load_bytes(&data);
    }

    #[test]
    fn edited_manifests(edits in proptest::collection::vec((0usize..SEED.len(), 0usize..PUNCT.len(), 0u8..3), 1..8)) {
        let mut text = SEED.to_string();
        for (at, p, op) in edits {
            let mut at = at.min(text.len());
            while !text.is_char_boundary(at) { at -= 1; }
            match op {
                0 => text.insert_str(at, PUNCT[p]),
                1 => text.truncate(at),
                _ => { let end = (at + 7).min(text.len()); if text.is_char_boundary(end) { text.replace_range(at..end, ""); } }
            }
        }
        strait_api::fuzzing::load_bytes(text.as_bytes());
    }
}
