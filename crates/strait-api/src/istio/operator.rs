//! `install.istio.io/v1alpha1` IstioOperator: how a cluster's Istio was installed. strait reads
//! it for the facts multi-cluster analysis needs (mesh ID, cluster name, network, trust domain,
//! sidecar resources) and checks its structure as `istioctl install` would.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{EnvVar, ResourceRequirements, ServiceSpec};

use super::common::{Opaque, spec};
use super::mesh_config::MeshConfig;

spec! {
    pub struct IstioOperatorSpec {
        pub profile: String,
        pub install_package_path: String,
        pub hub: String,
        pub tag: Option<Opaque>,
        pub namespace: String,
        pub revision: String,
        pub compatibility_version: String,
        pub mesh_config: Option<MeshConfig>,
        pub components: Option<Components>,
        /// Helm values, free-form (read by path: `global.meshID`, `global.network`, ...).
        pub values: Option<serde_json::Value>,
        pub unvalidated_values: Option<Opaque>,
    }
}

impl IstioOperatorSpec {
    /// A Helm value by dotted path, e.g. `global.multiCluster.clusterName`.
    pub fn value(&self, path: &str) -> Option<&serde_json::Value> {
        let mut cur = self.values.as_ref()?;
        for key in path.split('.') {
            cur = cur.get(key)?;
        }
        Some(cur)
    }

    pub fn value_str(&self, path: &str) -> Option<&str> {
        self.value(path)
            .and_then(serde_json::Value::as_str)
            .filter(|s| !s.is_empty())
    }

    /// The east-west and ingress gateways this operator installs.
    pub fn gateways(&self) -> impl Iterator<Item = &GatewayComponent> {
        self.components
            .iter()
            .flat_map(|c| c.ingress_gateways.iter().chain(c.egress_gateways.iter()))
    }
}

spec! {
    pub struct Components {
        pub base: Option<BaseComponent>,
        pub pilot: Option<Component>,
        pub cni: Option<Component>,
        pub ztunnel: Option<Component>,
        pub istiod_remote: Option<Component>,
        pub ingress_gateways: Vec<GatewayComponent>,
        pub egress_gateways: Vec<GatewayComponent>,
    }
}

spec! {
    pub struct BaseComponent {
        pub enabled: Option<bool>,
        pub k8s: Option<KubernetesResources>,
    }
}

spec! {
    pub struct Component {
        pub enabled: Option<bool>,
        pub namespace: String,
        pub hub: String,
        pub tag: Option<Opaque>,
        pub k8s: Option<KubernetesResources>,
    }
}

spec! {
    pub struct GatewayComponent {
        pub enabled: Option<bool>,
        pub namespace: String,
        pub hub: String,
        pub tag: Option<Opaque>,
        pub k8s: Option<KubernetesResources>,
        pub name: String,
        pub label: BTreeMap<String, String>,
    }
}

spec! {
    pub struct KubernetesResources {
        pub affinity: Option<Opaque>,
        pub env: Vec<EnvVar>,
        pub hpa_spec: Option<Opaque>,
        pub image_pull_policy: String,
        pub node_selector: BTreeMap<String, String>,
        pub pod_disruption_budget: Option<Opaque>,
        pub pod_annotations: BTreeMap<String, String>,
        pub priority_class_name: String,
        pub readiness_probe: Option<Opaque>,
        pub replica_count: Option<u32>,
        pub resources: Option<ResourceRequirements>,
        pub service: Option<ServiceSpec>,
        pub strategy: Option<Opaque>,
        pub tolerations: Vec<Opaque>,
        pub service_annotations: BTreeMap<String, String>,
        pub security_context: Option<Opaque>,
        pub volumes: Vec<Opaque>,
        pub volume_mounts: Vec<Opaque>,
        pub overlays: Vec<Opaque>,
    }
}
