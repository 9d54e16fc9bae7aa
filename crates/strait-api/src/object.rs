//! A loaded resource: its kind, typed body, and where it came from.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{
    ConfigMap, Endpoints, Namespace, Node as KubeNode, Pod, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass, NetworkPolicy};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Deserialize;

use crate::de::{self, FieldIssue, FieldPath};
use crate::gateway_api::routes::{GrpcRouteSpec, HttpRouteSpec, StreamRouteSpec};
use crate::gateway_api::{GatewayClassSpec, ReferenceGrantSpec};
use crate::istio::Opaque;
use crate::istio::destination_rule::DestinationRuleSpec;
use crate::istio::envoy_filter::EnvoyFilterSpec;
use crate::istio::extensions::{ProxyConfigSpec, WasmPluginSpec};
use crate::istio::gateway::GatewaySpec;
use crate::istio::operator::IstioOperatorSpec;
use crate::istio::security::{
    AuthorizationPolicySpec, PeerAuthenticationSpec, RequestAuthenticationSpec,
};
use crate::istio::service_entry::{ServiceEntrySpec, WorkloadEntrySpec, WorkloadGroupSpec};
use crate::istio::sidecar::SidecarSpec;
use crate::istio::telemetry::TelemetrySpec;
use crate::istio::virtual_service::VirtualServiceSpec;
use crate::kind::Kind;
use crate::source::{FileId, Pos};
use crate::yaml::{Node, NodeRef, Tree};

/// A custom resource (Istio's, the Gateway API's, a CRD): standard metadata and a typed spec
/// (status is read past).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IstioObject<S> {
    pub metadata: ObjectMeta,
    pub spec: S,
}

#[derive(Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Envelope<S> {
    #[allow(dead_code)]
    api_version: Opaque,
    #[allow(dead_code)]
    kind: Opaque,
    metadata: ObjectMeta,
    spec: S,
    #[allow(dead_code)]
    status: Opaque,
}

impl<S: Default> Default for Envelope<S> {
    fn default() -> Self {
        Envelope {
            api_version: Opaque,
            kind: Opaque,
            metadata: ObjectMeta::default(),
            spec: S::default(),
            status: Opaque,
        }
    }
}

impl<'de, S: Deserialize<'de> + Default> Deserialize<'de> for IstioObject<S> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let e = Envelope::<S>::deserialize(d)?;
        Ok(IstioObject {
            metadata: e.metadata,
            spec: e.spec,
        })
    }
}

macro_rules! bodies {
    ($( $variant:ident($ty:ty) => $method:ident ),* $(,)?) => {
        /// The typed content of an object, one variant per [`Kind`].
        #[derive(Clone, Debug, PartialEq)]
        pub enum Body {
            $( $variant(Box<$ty>), )*
        }

        impl Body {
            pub fn meta(&self) -> &ObjectMeta {
                match self { $( Body::$variant(x) => &x.metadata, )* }
            }

            fn meta_mut(&mut self) -> &mut ObjectMeta {
                match self { $( Body::$variant(x) => &mut x.metadata, )* }
            }

            /// Types `tree` as `kind`, collecting every field problem.
            pub fn from_tree(kind: Kind, tree: &Node) -> (Option<Body>, Vec<FieldIssue>) {
                match kind {
                    $( Kind::$variant => {
                        let (v, issues) = de::from_node::<$ty>(tree);
                        (v.map(|v| Body::$variant(Box::new(v))), issues)
                    } )*
                }
            }
        }

        impl Object {
            $(
                pub fn $method(&self) -> Option<&$ty> {
                    match &self.body { Body::$variant(x) => Some(x), _ => None }
                }
            )*
        }
    };
}

bodies! {
    Namespace(Namespace) => namespace_obj,
    Node(KubeNode) => node,
    Service(Service) => service,
    Pod(Pod) => pod,
    Deployment(Deployment) => deployment,
    StatefulSet(StatefulSet) => stateful_set,
    DaemonSet(DaemonSet) => daemon_set,
    ReplicaSet(ReplicaSet) => replica_set,
    Job(Job) => job,
    CronJob(CronJob) => cron_job,
    Endpoints(Endpoints) => endpoints,
    EndpointSlice(EndpointSlice) => endpoint_slice,
    Secret(Secret) => secret,
    ConfigMap(ConfigMap) => config_map,
    ServiceAccount(ServiceAccount) => service_account,
    NetworkPolicy(NetworkPolicy) => network_policy,
    Ingress(Ingress) => ingress,
    IngressClass(IngressClass) => ingress_class,
    MutatingWebhookConfiguration(MutatingWebhookConfiguration) => mutating_webhook,
    ValidatingWebhookConfiguration(ValidatingWebhookConfiguration) => validating_webhook,
    Gateway(IstioObject<GatewaySpec>) => gateway,
    VirtualService(IstioObject<VirtualServiceSpec>) => virtual_service,
    DestinationRule(IstioObject<DestinationRuleSpec>) => destination_rule,
    ServiceEntry(IstioObject<ServiceEntrySpec>) => service_entry,
    WorkloadEntry(IstioObject<WorkloadEntrySpec>) => workload_entry,
    WorkloadGroup(IstioObject<WorkloadGroupSpec>) => workload_group,
    Sidecar(IstioObject<SidecarSpec>) => sidecar,
    EnvoyFilter(IstioObject<EnvoyFilterSpec>) => envoy_filter,
    PeerAuthentication(IstioObject<PeerAuthenticationSpec>) => peer_authentication,
    AuthorizationPolicy(IstioObject<AuthorizationPolicySpec>) => authorization_policy,
    RequestAuthentication(IstioObject<RequestAuthenticationSpec>) => request_authentication,
    Telemetry(IstioObject<TelemetrySpec>) => telemetry,
    IstioOperator(IstioObject<IstioOperatorSpec>) => istio_operator,
    WasmPlugin(IstioObject<WasmPluginSpec>) => wasm_plugin,
    ProxyConfig(IstioObject<ProxyConfigSpec>) => proxy_config,
    KubeGateway(IstioObject<crate::gateway_api::GatewaySpec>) => kube_gateway,
    GatewayClass(IstioObject<GatewayClassSpec>) => gateway_class,
    HTTPRoute(IstioObject<HttpRouteSpec>) => http_route,
    GRPCRoute(IstioObject<GrpcRouteSpec>) => grpc_route,
    TLSRoute(IstioObject<StreamRouteSpec>) => tls_route,
    TCPRoute(IstioObject<StreamRouteSpec>) => tcp_route,
    ReferenceGrant(IstioObject<ReferenceGrantSpec>) => reference_grant,
    BackendTLSPolicy(IstioObject<Opaque>) => backend_tls_policy,
    ListenerSet(IstioObject<Opaque>) => listener_set,
    CustomResourceDefinition(IstioObject<Opaque>) => custom_resource_definition,
}

/// Where an object came from: its file, where its document starts, and the spanned tree it
/// was typed from (so any field can be located later).
#[derive(Clone, Debug)]
pub struct Source {
    pub file: FileId,
    pub pos: Pos,
    pub tree: Arc<Tree>,
}

impl Source {
    /// The root of the document the object was typed from.
    pub fn root(&self) -> NodeRef<'_> {
        self.tree.root()
    }
}

/// One Kubernetes or Istio resource.
#[derive(Clone, Debug)]
pub struct Object {
    pub kind: Kind,
    /// As written in the input (it may be an older version than the typed form).
    pub api_version: String,
    pub body: Body,
    pub source: Source,
}

static EMPTY: BTreeMap<String, String> = BTreeMap::new();

impl Object {
    pub fn meta(&self) -> &ObjectMeta {
        self.body.meta()
    }

    pub fn name(&self) -> &str {
        self.meta().name.as_deref().unwrap_or("")
    }

    /// The namespace ("default" when a namespaced object names none, as `kubectl apply`
    /// would place it; empty for cluster-scoped kinds).
    pub fn namespace(&self) -> &str {
        self.meta().namespace.as_deref().unwrap_or("")
    }

    pub fn labels(&self) -> &BTreeMap<String, String> {
        self.meta().labels.as_ref().unwrap_or(&EMPTY)
    }

    pub fn annotations(&self) -> &BTreeMap<String, String> {
        self.meta().annotations.as_ref().unwrap_or(&EMPTY)
    }

    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels().get(key).map(String::as_str)
    }

    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations().get(key).map(String::as_str)
    }

    /// Position of the field at `path` (e.g. `spec.http[0].timeout`), or of its nearest
    /// ancestor present in the source.
    pub fn locate(&self, path: &str) -> Pos {
        let p = FieldPath::parse(path);
        de::locate(self.source.root(), &p).0.pos()
    }

    /// Position of a field's key (`timeout:`) rather than its value.
    pub fn locate_key(&self, path: &str) -> Pos {
        let p = FieldPath::parse(path);
        de::locate_key(self.source.root(), &p)
            .map(|n| n.pos())
            .unwrap_or_else(|| self.locate(path))
    }

    /// `Kind namespace/name` (or `Kind name` for cluster-scoped kinds), for messages.
    pub fn display_name(&self) -> String {
        if self.namespace().is_empty() {
            format!("{} {}", self.kind, self.name())
        } else {
            format!("{} {}/{}", self.kind, self.namespace(), self.name())
        }
    }

    pub(crate) fn set_default_namespace(&mut self, ns: &str) {
        let meta = self.body.meta_mut();
        if meta.namespace.as_deref().is_none_or(str::is_empty) {
            meta.namespace = Some(ns.to_string());
        }
    }
}
