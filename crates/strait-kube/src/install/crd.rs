//! The CustomResourceDefinitions of every Istio kind strait reads, generated from the Rust
//! types strait reads them into ([`strait_api::shape`]), never copied from Istio: the API
//! server then accepts exactly what strait understands, and a field strait learns is in the
//! next `strait install` without anyone editing YAML.
//!
//! The names (group, plural, short names, categories) and the versions served are Istio's, so
//! `kubectl get vs` and manifests written for Istio work unchanged; the storage version is the
//! one Istio stores, so a cluster can move between Istio's CRDs and these without a storage
//! migration.

use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use strait_api::Kind;
use strait_api::istio::destination_rule::DestinationRuleSpec;
use strait_api::istio::envoy_filter::EnvoyFilterSpec;
use strait_api::istio::extensions::{ProxyConfigSpec, WasmPluginSpec};
use strait_api::istio::gateway::GatewaySpec;
use strait_api::istio::security::{
    AuthorizationPolicySpec, PeerAuthenticationSpec, RequestAuthenticationSpec,
};
use strait_api::istio::service_entry::{ServiceEntrySpec, WorkloadEntrySpec, WorkloadGroupSpec};
use strait_api::istio::sidecar::SidecarSpec;
use strait_api::istio::telemetry::TelemetrySpec;
use strait_api::istio::virtual_service::VirtualServiceSpec;
use strait_api::shape::shape_of;

use super::schema::{free_form, schema};

/// One Istio kind as a CRD declares it.
#[derive(Clone, Copy, Debug)]
pub struct CrdKind {
    pub kind: Kind,
    pub plural: &'static str,
    pub short_names: &'static [&'static str],
    /// Served versions, in the order strait's loader lists them.
    pub versions: &'static [&'static str],
    /// The version objects are stored at.
    pub storage: &'static str,
    spec: fn() -> Value,
}

fn spec_schema<T: DeserializeOwned>() -> Value {
    schema(&shape_of::<T>())
}

const NET: &[&str] = &["v1", "v1beta1", "v1alpha3"];
const SEC: &[&str] = &["v1", "v1beta1"];

macro_rules! kinds {
    ($( $kind:ident, $plural:literal, [$($short:literal),*], $versions:expr, $storage:literal, $spec:ty; )*) => {
        /// Every Istio kind strait reads from the four groups Istio's CRDs define, sorted by
        /// CRD name.
        pub const KINDS: &[CrdKind] = &[$(
            CrdKind {
                kind: Kind::$kind,
                plural: $plural,
                short_names: &[$($short),*],
                versions: $versions,
                storage: $storage,
                spec: spec_schema::<$spec>,
            },
        )*];
    };
}

kinds! {
    AuthorizationPolicy, "authorizationpolicies", ["ap"], SEC, "v1beta1", AuthorizationPolicySpec;
    DestinationRule, "destinationrules", ["dr"], NET, "v1alpha3", DestinationRuleSpec;
    EnvoyFilter, "envoyfilters", [], &["v1alpha3"], "v1alpha3", EnvoyFilterSpec;
    Gateway, "gateways", ["gw"], NET, "v1alpha3", GatewaySpec;
    PeerAuthentication, "peerauthentications", ["pa"], SEC, "v1beta1", PeerAuthenticationSpec;
    ProxyConfig, "proxyconfigs", [], &["v1beta1"], "v1beta1", ProxyConfigSpec;
    RequestAuthentication, "requestauthentications", ["ra"], SEC, "v1beta1", RequestAuthenticationSpec;
    ServiceEntry, "serviceentries", ["se"], NET, "v1alpha3", ServiceEntrySpec;
    Sidecar, "sidecars", [], NET, "v1alpha3", SidecarSpec;
    Telemetry, "telemetries", ["telemetry"], &["v1", "v1alpha1"], "v1alpha1", TelemetrySpec;
    VirtualService, "virtualservices", ["vs"], NET, "v1alpha3", VirtualServiceSpec;
    WasmPlugin, "wasmplugins", [], &["v1alpha1"], "v1alpha1", WasmPluginSpec;
    WorkloadEntry, "workloadentries", ["we"], NET, "v1alpha3", WorkloadEntrySpec;
    WorkloadGroup, "workloadgroups", ["wg"], NET, "v1alpha3", WorkloadGroupSpec;
}

impl CrdKind {
    pub fn group(&self) -> &'static str {
        self.kind.group()
    }

    /// `<plural>.<group>`, the CRD's name.
    pub fn crd_name(&self) -> String {
        format!("{}.{}", self.plural, self.group())
    }

    /// The schema of a whole object of this kind (`spec` typed, `status` kept as written).
    pub fn object_schema(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "spec": (self.spec)(),
                "status": free_form(),
            },
        })
    }

    /// The CustomResourceDefinition.
    pub fn crd(&self) -> Value {
        let schema = self.object_schema();
        let versions: Vec<Value> = self
            .versions
            .iter()
            .map(|v| {
                json!({
                    "name": v,
                    "served": true,
                    "storage": *v == self.storage,
                    "schema": {"openAPIV3Schema": schema},
                    "subresources": {"status": {}},
                })
            })
            .collect();
        let kind = self.kind.name();
        let mut names = json!({
            "kind": kind,
            "listKind": format!("{kind}List"),
            "plural": self.plural,
            "singular": kind.to_ascii_lowercase(),
            "categories": ["istio-io", self.group().replace('.', "-")],
        });
        if !self.short_names.is_empty() {
            names["shortNames"] = json!(self.short_names);
        }
        json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {
                "name": self.crd_name(),
                "labels": super::labels("crds"),
            },
            "spec": {
                "group": self.group(),
                "names": names,
                "scope": "Namespaced",
                "versions": versions,
            },
        })
    }
}

/// Every CRD, sorted by name.
pub fn crds() -> Vec<Value> {
    let mut kinds: Vec<&CrdKind> = KINDS.iter().collect();
    kinds.sort_by_key(|k| k.crd_name());
    kinds.iter().map(|k| k.crd()).collect()
}

/// The kind serving `api_version`/`kind`, if strait defines its CRD.
pub fn find(api_version: &str, kind: &str) -> Option<&'static CrdKind> {
    let (group, version) = api_version.split_once('/')?;
    KINDS
        .iter()
        .find(|k| k.group() == group && k.kind.name() == kind && k.versions.contains(&version))
}

#[cfg(test)]
mod tests {
    use strait_api::kind::{Lookup, lookup};

    use super::*;

    /// Each CRD serves exactly the versions strait's loader reads, and stores one of them.
    #[test]
    fn versions_agree_with_the_loader() {
        for k in KINDS {
            assert!(k.versions.contains(&k.storage), "{}", k.crd_name());
            for v in k.versions {
                let api = format!("{}/{v}", k.group());
                assert_eq!(
                    lookup(&api, k.kind.name()),
                    Lookup::Known(k.kind),
                    "{api} {}",
                    k.kind.name()
                );
            }
            assert!(k.kind.is_namespaced());
        }
        for unserved in ["v1alpha2", "v2"] {
            for k in KINDS {
                let api = format!("{}/{unserved}", k.group());
                assert!(!matches!(lookup(&api, k.kind.name()), Lookup::Known(_)));
            }
        }
    }

    /// Every Istio kind strait reads in these groups has a CRD.
    #[test]
    fn every_istio_kind_of_the_four_groups() {
        let groups = [
            "networking.istio.io",
            "security.istio.io",
            "telemetry.istio.io",
            "extensions.istio.io",
        ];
        for kind in Kind::all().filter(|k| groups.contains(&k.group())) {
            assert!(KINDS.iter().any(|k| k.kind == kind), "{kind:?} has no CRD");
        }
    }

    #[test]
    fn deterministic_and_sorted() {
        let a = crds();
        assert_eq!(a, crds());
        let names: Vec<&str> = a
            .iter()
            .filter_map(|c| c["metadata"]["name"].as_str())
            .collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        assert_eq!(names.len(), KINDS.len());
    }
}
