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

    /// The installation profile (`default` when unset).
    pub fn profile(&self) -> &str {
        if self.profile.is_empty() {
            "default"
        } else {
            &self.profile
        }
    }

    /// Whether this installs istiod: every profile does except `empty` and `remote`, unless
    /// `components.pilot.enabled` says otherwise.
    pub fn installs_istiod(&self) -> bool {
        let explicit = self
            .components
            .as_ref()
            .and_then(|c| c.pilot.as_ref())
            .and_then(|p| p.enabled);
        match self.profile() {
            "empty" | "remote" => explicit == Some(true),
            _ => explicit != Some(false),
        }
    }

    /// Whether this is the `remote` profile (a cluster whose control plane runs elsewhere).
    pub fn is_remote_profile(&self) -> bool {
        self.profile() == "remote"
    }

    /// The gateways this operator installs: the profile's (`istio-ingressgateway` for
    /// default, demo and preview; also `istio-egressgateway` for demo) merged by name with the
    /// ones `components` lists. Disabled ones are left out.
    pub fn installed_gateways(&self) -> Vec<GatewayComponent> {
        let mut out: Vec<GatewayComponent> = Vec::new();
        let defaults: &[(&str, &str, bool)] = match self.profile() {
            "default" | "preview" | "openshift" => {
                &[("istio-ingressgateway", "ingressgateway", true)]
            }
            "demo" => &[
                ("istio-ingressgateway", "ingressgateway", true),
                ("istio-egressgateway", "egressgateway", false),
            ],
            _ => &[],
        };
        for (name, istio, ingress) in defaults {
            let listed = self.components.as_ref().is_some_and(|c| {
                let list = if *ingress {
                    &c.ingress_gateways
                } else {
                    &c.egress_gateways
                };
                list.iter().any(|g| g.name == *name)
            });
            if !listed {
                let mut label = BTreeMap::new();
                label.insert("app".to_string(), name.to_string());
                label.insert("istio".to_string(), istio.to_string());
                out.push(GatewayComponent {
                    name: name.to_string(),
                    label,
                    ..GatewayComponent::default()
                });
            }
        }
        if let Some(c) = &self.components {
            out.extend(
                c.ingress_gateways
                    .iter()
                    .chain(c.egress_gateways.iter())
                    .cloned(),
            );
        }
        out.retain(|g| g.enabled != Some(false) && !g.name.is_empty());
        out
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
