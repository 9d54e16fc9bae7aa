//! The gateways: east-west (cross-network mTLS on 15443, routed on SNI and never terminated;
//! and, in a primary serving remotes, its control plane on 15012 and 15017) and ingress; plus
//! the Istio resources that tell them what to serve.
//!
//! Names, labels and ports are Istio's (`istio-eastwestgateway`, `istio: eastwestgateway`,
//! `topology.istio.io/network`), because the control plane finds a network's gateway by them
//! and because Istio users' Gateways select `istio: ingressgateway`.

use serde_json::{Value, json};

use super::pods::{self, env};
use super::ports::{CROSS_NETWORK, PROXY_STATS, STATUS, WEBHOOK, XDS_TLS};
use super::rbac::{EAST_WEST, INGRESS};
use super::{NAMESPACE, Options, Role, meta};
use crate::inject::BootstrapEnv;

const COMPONENT: &str = "gateway";

pub fn objects(opts: &Options) -> Vec<Value> {
    let mut out = east_west(opts);
    out.extend(ingress(opts));
    if let Role::Primary { serves_remotes } = opts.role {
        // In primary-remote the primary's control plane configures the remote's gateway too,
        // so this one Gateway, in the primary, exposes services on both.
        out.push(cross_network_gateway());
        if serves_remotes {
            out.extend(expose_control_plane());
        }
    }
    out
}

fn gateway_selector(name: &str, istio: &str) -> Value {
    json!({"app": name, "istio": istio})
}

fn east_west(opts: &Options) -> Vec<Value> {
    let mut selector = gateway_selector(EAST_WEST, "eastwestgateway");
    let mut env = vec![];
    if !opts.network.is_empty() {
        selector["topology.istio.io/network"] = json!(opts.network);
        // Only endpoints of its own network: the gateway must never forward to another
        // network's gateway (no loops, no open relay).
        env.push(pods::env(
            "ISTIO_META_REQUESTED_NETWORK_VIEW",
            &opts.network,
        ));
    }
    let container_ports = json!([
        {"name": "status-port", "containerPort": STATUS, "protocol": "TCP"},
        {"name": "tls", "containerPort": CROSS_NETWORK, "protocol": "TCP"},
        {"name": "tls-istiod", "containerPort": XDS_TLS, "protocol": "TCP"},
        {"name": "tls-webhook", "containerPort": WEBHOOK, "protocol": "TCP"},
        {"name": "http-envoy-prom", "containerPort": PROXY_STATS, "protocol": "TCP"},
    ]);
    let service_ports = json!([
        {"name": "status-port", "port": STATUS, "targetPort": STATUS, "protocol": "TCP"},
        {"name": "tls", "port": CROSS_NETWORK, "targetPort": CROSS_NETWORK, "protocol": "TCP"},
        {"name": "tls-istiod", "port": XDS_TLS, "targetPort": XDS_TLS, "protocol": "TCP"},
        {"name": "tls-webhook", "port": WEBHOOK, "targetPort": WEBHOOK, "protocol": "TCP"},
    ]);
    vec![
        deployment(opts, EAST_WEST, &selector, container_ports, env),
        load_balancer(EAST_WEST, &selector, service_ports),
        pods::pdb(EAST_WEST, COMPONENT, &selector),
    ]
}

fn ingress(opts: &Options) -> Vec<Value> {
    let selector = gateway_selector(INGRESS, "ingressgateway");
    // 8080 and 8443 in the pod: a non-root process cannot bind 80 or 443.
    let container_ports = json!([
        {"name": "status-port", "containerPort": STATUS, "protocol": "TCP"},
        {"name": "http2", "containerPort": 8080, "protocol": "TCP"},
        {"name": "https", "containerPort": 8443, "protocol": "TCP"},
        {"name": "http-envoy-prom", "containerPort": PROXY_STATS, "protocol": "TCP"},
    ]);
    let service_ports = json!([
        {"name": "status-port", "port": STATUS, "targetPort": STATUS, "protocol": "TCP"},
        {"name": "http2", "port": 80, "targetPort": 8080, "protocol": "TCP"},
        {"name": "https", "port": 443, "targetPort": 8443, "protocol": "TCP"},
    ]);
    vec![
        deployment(opts, INGRESS, &selector, container_ports, vec![]),
        load_balancer(INGRESS, &selector, service_ports),
        pods::pdb(INGRESS, COMPONENT, &selector),
    ]
}

/// A gateway pod: `strait proxy` in Kubernetes mode as a gateway, getting its configuration
/// and certificate from `istiod.istio-system.svc:15012` (the local control plane, or in a
/// remote the primary's through its east-west gateway).
fn deployment(
    opts: &Options,
    name: &str,
    selector: &Value,
    ports: Value,
    extra_env: Vec<Value>,
) -> Value {
    let mut envs = pods::downward_env();
    envs.extend([
        env(BootstrapEnv::CLUSTER_ID, &opts.cluster),
        env("ISTIO_META_NETWORK", &opts.network),
        env("ISTIO_META_MESH_ID", &opts.mesh_id),
        env(BootstrapEnv::TRUST_DOMAIN, &opts.trust_domain),
        // The bootstrap `strait proxy --kubernetes` reads, as the injector gives it to
        // sidecars: the control plane (host:port, its host the name on its certificate) and
        // the two files of `proxy_credential_volumes`.
        env(BootstrapEnv::CONTROL_PLANE, "istiod.istio-system.svc:15012"),
        env(
            BootstrapEnv::ROOT_CERT,
            "/var/run/secrets/istio/root-cert.pem",
        ),
        env(
            BootstrapEnv::TOKEN_FILE,
            "/var/run/secrets/tokens/istio-token",
        ),
    ]);
    envs.extend(extra_env);
    let (mut volumes, mut mounts) = pods::proxy_credential_volumes();
    let (tmp, tmp_mount) = pods::scratch_volume();
    volumes.push(tmp);
    mounts.push(tmp_mount);
    let mut template_labels = selector.clone();
    template_labels["app.kubernetes.io/part-of"] = json!("strait");
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta(name, COMPONENT),
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": template_labels},
                "spec": {
                    "serviceAccountName": name,
                    "automountServiceAccountToken": false,
                    "securityContext": pods::pod_security(),
                    "containers": [{
                        "name": "istio-proxy",
                        "image": opts.image,
                        "args": ["proxy", "--kubernetes", "--gateway"],
                        "env": envs,
                        "ports": ports,
                        "readinessProbe": pods::http_probe("/healthz/ready", STATUS, 2, 30),
                        "resources": pods::resources("100m", "128Mi", "1Gi"),
                        "securityContext": pods::container_security(),
                        "volumeMounts": mounts,
                    }],
                    "volumes": volumes,
                },
            },
        },
    })
}

fn load_balancer(name: &str, selector: &Value, ports: Value) -> Value {
    let mut metadata = meta(name, COMPONENT);
    if let (Some(labels), Some(sel)) = (metadata["labels"].as_object_mut(), selector.as_object()) {
        labels.extend(sel.clone());
    }
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata,
        "spec": {"type": "LoadBalancer", "selector": selector, "ports": ports},
    })
}

/// Every `*.local` service reachable from other networks through 15443, TLS passed through.
fn cross_network_gateway() -> Value {
    json!({
        "apiVersion": "networking.istio.io/v1",
        "kind": "Gateway",
        "metadata": meta("cross-network-gateway", COMPONENT),
        "spec": {
            "selector": {"istio": "eastwestgateway"},
            "servers": [{
                "port": {"number": CROSS_NETWORK, "name": "tls", "protocol": "TLS"},
                "tls": {"mode": "AUTO_PASSTHROUGH"},
                "hosts": ["*.local"],
            }],
        },
    })
}

/// The control plane, for remote clusters' proxies (15012) and API servers (15017), through
/// the east-west gateway with TLS passed through to `istiod` itself.
fn expose_control_plane() -> Vec<Value> {
    let istiod = format!("istiod.{NAMESPACE}.svc.cluster.local");
    let server = |port: u16, name: &str| {
        json!({
            "port": {"number": port, "name": name, "protocol": "TLS"},
            "tls": {"mode": "PASSTHROUGH"},
            "hosts": ["*"],
        })
    };
    let route = |port: u16, target: u16| {
        json!({
            "match": [{"port": port, "sniHosts": ["*"]}],
            "route": [{"destination": {"host": istiod, "port": {"number": target}}}],
        })
    };
    vec![
        json!({
            "apiVersion": "networking.istio.io/v1",
            "kind": "Gateway",
            "metadata": meta("istiod-gateway", COMPONENT),
            "spec": {
                "selector": {"istio": "eastwestgateway"},
                "servers": [server(XDS_TLS, "tls-istiod"), server(WEBHOOK, "tls-istiodwebhook")],
            },
        }),
        json!({
            "apiVersion": "networking.istio.io/v1",
            "kind": "VirtualService",
            "metadata": meta("istiod-vs", COMPONENT),
            "spec": {
                "hosts": ["*"],
                "gateways": ["istiod-gateway"],
                "tls": [route(XDS_TLS, XDS_TLS), route(WEBHOOK, 443)],
            },
        }),
    ]
}
