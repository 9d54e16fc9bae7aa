//! `networking.istio.io` EnvoyFilter: raw patches to the generated proxy configuration. strait
//! does not apply them; it reads them so the analyzer can flag the risky ones.

use std::collections::BTreeMap;

use super::common::{LabelSelector, PolicyTargetReference, istio_enum, spec};

spec! {
    pub struct EnvoyFilterSpec {
        pub workload_selector: Option<LabelSelector>,
        pub target_refs: Vec<PolicyTargetReference>,
        pub config_patches: Vec<ConfigPatch>,
        pub priority: i32,
    }
}

istio_enum! {
    pub enum ApplyTo {
        Invalid,
        Listener,
        FilterChain,
        NetworkFilter,
        HttpFilter,
        RouteConfiguration,
        VirtualHost,
        HttpRoute,
        Cluster,
        ExtensionConfig,
        Bootstrap,
        ListenerFilter,
    }
}

istio_enum! {
    pub enum PatchContext {
        Any,
        SidecarInbound,
        SidecarOutbound,
        Gateway,
        Waypoint,
    }
}

istio_enum! {
    pub enum Operation {
        Invalid,
        Merge,
        Add,
        Remove,
        InsertBefore,
        InsertAfter,
        InsertFirst,
        Replace,
        MergeAndReplaceList,
    }
}

istio_enum! {
    pub enum FilterClass {
        Unspecified,
        Authn,
        Authz,
        Stats,
    }
}

spec! {
    pub struct ConfigPatch {
        pub apply_to: Option<ApplyTo>,
        #[serde(rename = "match")]
        pub matches: Option<ObjectMatch>,
        pub patch: Option<Patch>,
    }
}

spec! {
    pub struct ObjectMatch {
        pub context: Option<PatchContext>,
        pub proxy: Option<ProxyMatch>,
        pub listener: Option<ListenerMatch>,
        pub route_configuration: Option<RouteConfigurationMatch>,
        pub cluster: Option<ClusterMatch>,
        pub waypoint: Option<WaypointMatch>,
    }
}

spec! {
    pub struct ProxyMatch {
        pub proxy_version: String,
        pub metadata: BTreeMap<String, String>,
    }
}

spec! {
    pub struct ListenerMatch {
        pub port_number: Option<u32>,
        pub port_name: String,
        pub filter_chain: Option<FilterChainMatch>,
        pub listener_filter: String,
        pub name: String,
    }
}

spec! {
    pub struct FilterChainMatch {
        pub name: String,
        pub sni: String,
        pub transport_protocol: String,
        pub application_protocols: String,
        pub filter: Option<FilterMatch>,
        pub destination_port: Option<u32>,
        pub transport_socket: String,
    }
}

spec! {
    pub struct FilterMatch {
        pub name: String,
        pub sub_filter: Option<NameMatch>,
    }
}

spec! {
    pub struct NameMatch {
        pub name: String,
    }
}

spec! {
    pub struct RouteConfigurationMatch {
        pub port_number: Option<u32>,
        pub port_name: String,
        pub gateway: String,
        pub vhost: Option<VirtualHostMatch>,
        pub name: String,
    }
}

spec! {
    pub struct VirtualHostMatch {
        pub name: String,
        pub domain_name: String,
        pub route: Option<RouteMatch>,
    }
}

istio_enum! {
    pub enum RouteAction {
        Any,
        Route,
        Redirect,
        DirectResponse,
    }
}

spec! {
    pub struct RouteMatch {
        pub name: String,
        pub action: Option<RouteAction>,
    }
}

spec! {
    pub struct ClusterMatch {
        pub port_number: Option<u32>,
        pub service: String,
        pub subset: String,
        pub name: String,
    }
}

spec! {
    pub struct WaypointMatch {
        pub port_number: Option<u32>,
        pub route: Option<NameMatch>,
        pub filter: Option<FilterMatch>,
    }
}

spec! {
    pub struct Patch {
        pub operation: Option<Operation>,
        /// Free-form Envoy configuration.
        pub value: Option<serde_json::Value>,
        pub filter_class: Option<FilterClass>,
    }
}
