//! The control plane: in a primary its Deployment, Service and disruption budget; in a
//! remote only a Service of the same name leading to the primary's east-west gateway.
//!
//! Both are named `istiod`, Istio's name: proxies look for `istiod.istio-system.svc:15012`,
//! the control plane's serving certificate carries that name, and so do the dashboards and
//! runbooks of anyone who has run Istio.

use serde_json::{Value, json};

use super::pods::{self, env};
use super::ports::{MONITORING, WEBHOOK, XDS_PLAINTEXT, XDS_TLS};
use super::{Options, Role, merged, meta};

pub const NAME: &str = "istiod";
pub const SERVICE_ACCOUNT: &str = "istiod";
const COMPONENT: &str = "control-plane";

/// The control plane's pod labels: Istio's (`app: istiod`, `istio: pilot`), which the Service
/// and PDB select and which Istio-minded tooling filters on.
pub fn selector() -> Value {
    json!({"app": "istiod", "istio": "pilot"})
}

pub fn objects(opts: &Options) -> Vec<Value> {
    match &opts.role {
        Role::Primary { serves_remotes } => vec![
            injector_config(opts),
            deployment(opts, *serves_remotes),
            service(),
            pods::pdb(NAME, COMPONENT, &selector()),
        ],
        Role::Remote {
            primary_address, ..
        } => remote_service(primary_address),
    }
}

/// The ConfigMap `strait injector` reads (`--config`): the image it injects and what it knows
/// of the cluster, in the injector's own JSON form.
pub const INJECTOR_CONFIG: &str = "istio-sidecar-injector";

fn injector_config(opts: &Options) -> Value {
    let config = json!({
        "image": opts.image,
        "cluster_id": opts.cluster,
        "network": opts.network,
        "trust_domain": opts.trust_domain,
        "discovery_address": format!("{NAME}.istio-system.svc:{XDS_TLS}"),
    });
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta(INJECTOR_CONFIG, COMPONENT),
        "data": {"config.json": config.to_string()},
    })
}

/// The control plane's pod: `strait control-plane` in Kubernetes mode reads its own cluster's
/// API server and, through remote secrets, the others'; serves discovery and certificates on
/// 15012 (15010 plaintext only on loopback, as DESIGN.md fixes), metrics and `/ready` on
/// 15014. Beside it `strait injector` serves the sidecar injector webhook on 15017 with a
/// certificate from the same plug-in CA, as istiod serves both from one pod.
fn deployment(opts: &Options, serves_remotes: bool) -> Value {
    let args = [
        "control-plane",
        "--kubernetes",
        "--cluster",
        &opts.cluster,
        "--ca-dir",
        "/etc/cacerts",
        "--listen",
        "0.0.0.0:15012",
        "--debug",
        "0.0.0.0:15014",
    ];
    let mut envs = pods::downward_env();
    envs.extend([
        env("CLUSTER_ID", &opts.cluster),
        env("NETWORK", &opts.network),
        env("MESH_ID", &opts.mesh_id),
        env("TRUST_DOMAIN", &opts.trust_domain),
        // Istio's switch for a control plane that serves clusters it does not run in.
        env(
            "EXTERNAL_ISTIOD",
            if serves_remotes { "true" } else { "false" },
        ),
    ]);
    let (tmp, tmp_mount) = pods::scratch_volume();
    let container = json!({
        "name": "discovery",
        "image": opts.image,
        "args": args,
        "env": envs,
        "ports": [
            {"name": "grpc-xds", "containerPort": XDS_PLAINTEXT, "protocol": "TCP"},
            {"name": "tls-xds", "containerPort": XDS_TLS, "protocol": "TCP"},
            {"name": "http-monitoring", "containerPort": MONITORING, "protocol": "TCP"},
        ],
        "readinessProbe": pods::http_probe("/ready", MONITORING, 3, 3),
        // Alive while it serves, even before the first good load (a broken config must not
        // get the pod restarted; readiness says why it is not ready).
        "livenessProbe": pods::http_probe("/healthz", MONITORING, 10, 6),
        "resources": pods::resources("100m", "256Mi", "1Gi"),
        "securityContext": pods::container_security(),
        "volumeMounts": [
            {"name": "cacerts", "mountPath": "/etc/cacerts", "readOnly": true},
            tmp_mount,
        ],
    });
    let injector = json!({
        "name": "injector",
        "image": opts.image,
        "args": [
            "injector",
            "--config",
            "/etc/injector/config.json",
            "--ca-dir",
            "/etc/cacerts",
            "--listen",
            format!("0.0.0.0:{WEBHOOK}"),
            // The install renders the webhook's caBundle empty; the injector writes the roots
            // it serves from, and writes them again whenever an apply resets them.
            "--patch-webhook",
            super::webhook::NAME,
            // Revisions and injection labels as the API server has them now, so the webhook
            // decides as `strait analyze` predicts.
            "--watch-namespaces",
        ],
        "ports": [{"name": "https-webhook", "containerPort": WEBHOOK, "protocol": "TCP"}],
        "readinessProbe": {"tcpSocket": {"port": WEBHOOK}, "periodSeconds": 3},
        "resources": pods::resources("50m", "64Mi", "256Mi"),
        "securityContext": pods::container_security(),
        "volumeMounts": [
            {"name": "cacerts", "mountPath": "/etc/cacerts", "readOnly": true},
            {"name": "injector-config", "mountPath": "/etc/injector", "readOnly": true},
        ],
    });
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta(NAME, COMPONENT),
        "spec": {
            // Two replicas so a node drain never leaves proxies without a control plane;
            // writes (root-cert ConfigMaps, webhook caBundle) go through a leader lease.
            "replicas": 2,
            "selector": {"matchLabels": selector()},
            "template": {
                "metadata": {"labels": merged(selector(), &[("app.kubernetes.io/part-of", "strait")])},
                "spec": {
                    "serviceAccountName": SERVICE_ACCOUNT,
                    "securityContext": pods::pod_security(),
                    "containers": [container, injector],
                    "volumes": [
                        // The plug-in CA from `strait ca init`; optional so that the pod
                        // starts and reports the missing Secret instead of hanging in
                        // ContainerCreating.
                        {"name": "cacerts", "secret": {"secretName": "cacerts", "optional": true}},
                        {"name": "injector-config", "configMap": {"name": INJECTOR_CONFIG}},
                        tmp,
                    ],
                },
            },
        },
    })
}

/// The ports proxies and the API server use, under Istio's names; 443 is the webhook's
/// conventional port (the API server calls `https://istiod.istio-system.svc:443/inject`).
fn service_ports() -> Value {
    json!([
        {"name": "grpc-xds", "port": XDS_PLAINTEXT, "targetPort": XDS_PLAINTEXT, "protocol": "TCP"},
        {"name": "tls-xds", "port": XDS_TLS, "targetPort": XDS_TLS, "protocol": "TCP"},
        {"name": "http-monitoring", "port": MONITORING, "targetPort": MONITORING, "protocol": "TCP"},
        {"name": "https-webhook", "port": WEBHOOK, "targetPort": WEBHOOK, "protocol": "TCP"},
        {"name": "https-webhook-443", "port": 443, "targetPort": WEBHOOK, "protocol": "TCP"},
    ])
}

fn service() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta(NAME, COMPONENT),
        "spec": {"selector": selector(), "ports": service_ports()},
    })
}

/// In a remote, `istiod` leads to the primary's east-west gateway, which passes TLS through
/// to the primary's control plane untouched (so the proxy's session, and its check of the
/// control plane's certificate, ends at the control plane itself). An IP address becomes the
/// endpoint of a selector-less Service; a DNS name (a cloud load balancer's, typically) an
/// ExternalName Service, which cannot carry endpoints.
fn remote_service(primary_address: &str) -> Vec<Value> {
    let ports = json!([
        {"name": "tcp-istiod", "port": XDS_TLS, "targetPort": XDS_TLS, "protocol": "TCP"},
        {"name": "tcp-webhook", "port": 443, "targetPort": WEBHOOK, "protocol": "TCP"},
    ]);
    let Ok(ip) = primary_address.parse::<std::net::IpAddr>() else {
        return vec![json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": meta(NAME, COMPONENT),
            "spec": {"type": "ExternalName", "externalName": primary_address, "ports": ports},
        })];
    };
    let family = if ip.is_ipv4() { "IPv4" } else { "IPv6" };
    let mut slice_meta = meta(&format!("{NAME}-primary"), COMPONENT);
    slice_meta["labels"]["kubernetes.io/service-name"] = json!(NAME);
    slice_meta["labels"]["endpointslice.kubernetes.io/managed-by"] = json!("strait.io");
    vec![
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": meta(NAME, COMPONENT),
            "spec": {"ports": ports},
        }),
        json!({
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": slice_meta,
            "addressType": family,
            "endpoints": [{"addresses": [ip.to_string()], "conditions": {"ready": true}}],
            "ports": [
                {"name": "tcp-istiod", "port": XDS_TLS, "protocol": "TCP"},
                {"name": "tcp-webhook", "port": WEBHOOK, "protocol": "TCP"},
            ],
        }),
    ]
}
