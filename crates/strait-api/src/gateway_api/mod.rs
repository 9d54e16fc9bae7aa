//! The Kubernetes Gateway API (`gateway.networking.k8s.io`) as Istio reads it: GatewayClass,
//! Gateway, the route kinds and ReferenceGrant, written from the Gateway API's definitions with
//! the same field names, so manifests are accepted unchanged and typos are caught. Parts strait
//! does not interpret (filter bodies, TLS options, infrastructure) are read past as [`Opaque`].

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use crate::istio::Opaque;
use crate::istio::common::spec;

pub mod routes;

/// The API group of every kind here.
pub const GROUP: &str = "gateway.networking.k8s.io";
/// The controller name of Istio's GatewayClasses.
pub const ISTIO_CONTROLLER: &str = "istio.io/gateway-controller";
/// The GatewayClasses istiod creates itself (they are not in anyone's manifests).
pub const BUILTIN_CLASSES: &[&str] =
    &["istio", "istio-remote", "istio-waypoint", "istio-east-west"];
/// The annotation on Gateway API CRDs that names their release bundle.
pub const BUNDLE_VERSION: &str = "gateway.networking.k8s.io/bundle-version";

spec! {
    pub struct GatewayClassSpec {
        pub controller_name: String,
        pub parameters_ref: Option<Opaque>,
        pub description: String,
    }
}

spec! {
    /// A Kubernetes Gateway: listeners an implementation (chosen by its class) serves.
    pub struct GatewaySpec {
        pub gateway_class_name: String,
        pub listeners: Vec<Listener>,
        pub addresses: Vec<GatewayAddress>,
        pub infrastructure: Option<Opaque>,
        #[serde(rename = "backendTLS")]
        pub backend_tls: Option<Opaque>,
        pub allowed_listeners: Option<Opaque>,
        pub tls: Option<Opaque>,
        pub default_scope: String,
    }
}

spec! {
    pub struct GatewayAddress {
        /// `IPAddress` (the default), `Hostname` or an implementation-specific type.
        #[serde(rename = "type")]
        pub kind: String,
        pub value: String,
    }
}

spec! {
    pub struct Listener {
        pub name: String,
        pub hostname: String,
        pub port: u32,
        /// `HTTP`, `HTTPS`, `TLS`, `TCP`, `UDP`, or a domain-prefixed protocol.
        pub protocol: String,
        pub tls: Option<ListenerTls>,
        pub allowed_routes: Option<AllowedRoutes>,
    }
}

spec! {
    pub struct ListenerTls {
        /// `Terminate` (the default) or `Passthrough`.
        pub mode: String,
        pub certificate_refs: Vec<ObjectReference>,
        pub frontend_validation: Option<Opaque>,
        pub options: BTreeMap<String, String>,
    }
}

spec! {
    pub struct AllowedRoutes {
        pub namespaces: Option<RouteNamespaces>,
        pub kinds: Vec<GroupKind>,
    }
}

spec! {
    pub struct RouteNamespaces {
        /// `Same` (the default), `All` or `Selector`.
        pub from: String,
        pub selector: Option<LabelSelector>,
    }
}

spec! {
    pub struct GroupKind {
        pub group: Option<String>,
        pub kind: String,
    }
}

spec! {
    /// A reference to an object by group, kind, name and (optionally) namespace: listener
    /// certificates, mostly.
    pub struct ObjectReference {
        pub group: Option<String>,
        pub kind: Option<String>,
        pub name: String,
        pub namespace: Option<String>,
    }
}

spec! {
    /// Lets objects of the `from` kinds in other namespaces refer to the `to` objects in this
    /// ReferenceGrant's namespace.
    pub struct ReferenceGrantSpec {
        pub from: Vec<GrantFrom>,
        pub to: Vec<GrantTo>,
    }
}

spec! {
    pub struct GrantFrom {
        pub group: String,
        pub kind: String,
        pub namespace: String,
    }
}

spec! {
    pub struct GrantTo {
        pub group: String,
        pub kind: String,
        /// Every object of the kind when empty.
        pub name: Option<String>,
    }
}

impl Listener {
    /// The listener's hostname as a match: `*` when it names none.
    pub fn hostname_or_any(&self) -> &str {
        if self.hostname.is_empty() {
            "*"
        } else {
            &self.hostname
        }
    }
}

impl GroupKind {
    pub fn group_or_default(&self) -> &str {
        self.group.as_deref().unwrap_or(GROUP)
    }
}
