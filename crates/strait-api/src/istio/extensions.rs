//! The Istio kinds that tune or extend the proxy itself: `extensions.istio.io` WasmPlugin and
//! `networking.istio.io` ProxyConfig. strait reads them so that selectors and typos are checked
//! and their use is reported; its proxy does not act on them.

use std::collections::BTreeMap;

use super::common::{MatchLabels, Opaque, PolicyTargetReference, spec};

spec! {
    pub struct WasmPluginSpec {
        pub selector: Option<MatchLabels>,
        pub target_ref: Option<PolicyTargetReference>,
        pub target_refs: Vec<PolicyTargetReference>,
        pub url: String,
        pub sha256: String,
        pub image_pull_policy: String,
        pub image_pull_secret: String,
        pub verification_key: String,
        pub plugin_config: Option<Opaque>,
        pub plugin_name: String,
        pub phase: String,
        pub priority: Option<i64>,
        pub fail_strategy: String,
        pub vm_config: Option<Opaque>,
        #[serde(rename = "match")]
        pub matches: Vec<Opaque>,
        #[serde(rename = "type")]
        pub kind: String,
    }
}

spec! {
    pub struct ProxyConfigSpec {
        pub selector: Option<MatchLabels>,
        pub concurrency: Option<u32>,
        pub environment_variables: BTreeMap<String, String>,
        pub image: Option<ProxyImage>,
    }
}

spec! {
    pub struct ProxyImage {
        pub image_type: String,
    }
}
