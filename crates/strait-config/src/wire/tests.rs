use prost::Message;

use super::*;
use crate::outlier::OutlierDetection;
use crate::proto::resource::Body;
use crate::types::*;

fn service() -> ServicePort {
    let headers = HeaderRules {
        request: HeaderOps {
            set: vec![("x-a".into(), "1".into())],
            add: vec![("x-b".into(), "2".into())],
            remove: vec!["x-c".into()],
        },
        response: HeaderOps::default(),
    };
    let route = |weight| WeightedCluster {
        cluster: "outbound|80||hw.ns.svc.cluster.local".into(),
        weight,
        headers: headers.clone(),
    };
    ServicePort {
        host: "hw.ns.svc.cluster.local".into(),
        port: 80,
        namespace: "ns".into(),
        protocol: AppProtocol::Http,
        http: vec![
            HttpRule {
                name: "r1".into(),
                matches: vec![RequestMatch {
                    uri: Some(StrMatch::Prefix("/a".into())),
                    method: Some(StrMatch::Exact("GET".into())),
                    authority: None,
                    scheme: Some(StrMatch::Regex("https?".into())),
                    headers: vec![HeaderMatch {
                        name: "x".into(),
                        value: None,
                        invert: true,
                        claim: vec!["grp".into(), "sub".into()],
                    }],
                    query: vec![("q".into(), StrMatch::Exact("1".into()))],
                    ignore_uri_case: true,
                }],
                action: HttpAction::Route(vec![route(70), route(30)]),
                timeout_ms: Some(1500),
                retries: Retry::istio_default(),
                policy: RoutePolicy {
                    rewrite: Some(Rewrite {
                        uri: String::new(),
                        uri_regex: Some(("^/a(.*)".into(), "/b\\1".into())),
                        authority: "other".into(),
                    }),
                    headers: headers.clone(),
                    fault: Some(Fault {
                        delay_ms: Some(5),
                        delay_per_million: 1_000_000,
                        abort_status: Some(503),
                        abort_per_million: 10,
                    }),
                },
            },
            HttpRule {
                name: "r2".into(),
                matches: vec![],
                action: HttpAction::Redirect {
                    uri: "/new".into(),
                    authority: "x".into(),
                    code: 308,
                },
                timeout_ms: None,
                retries: Retry {
                    attempts: 0,
                    per_try_timeout_ms: Some(10),
                    retry_on: vec![],
                },
                policy: RoutePolicy::default(),
            },
            HttpRule {
                name: "r3".into(),
                matches: vec![],
                action: HttpAction::Respond {
                    status: 418,
                    body: "teapot".into(),
                },
                timeout_ms: None,
                retries: Retry::istio_default(),
                policy: RoutePolicy::default(),
            },
        ],
        tcp: vec![route(100)],
        virtual_service: Some("ns/hw".into()),
        addresses: vec!["10.96.0.10".into(), "240.240.0.0/16".into()],
    }
}

fn cluster() -> Cluster {
    Cluster {
        name: "outbound|80||hw.ns.svc.cluster.local".into(),
        host: "hw.ns.svc.cluster.local".into(),
        port: 80,
        subset: String::new(),
        protocol: AppProtocol::Grpc,
        lb: LbPolicy::LeastRequest,
        tls: UpstreamTls::IstioMutual,
        sni: "outbound_.80_._.hw.ns.svc.cluster.local".into(),
        identities: vec!["spiffe://cluster.local/ns/ns/sa/hw".into()],
        limits: PoolLimits {
            max_connections: Some(10),
            max_pending_requests: None,
            max_requests: Some(0),
            max_requests_per_connection: None,
            max_retries: Some(3),
            connect_timeout_ms: 10_000,
        },
        endpoints: vec![Endpoint {
            address: "10.0.0.1".into(),
            port: 8080,
            weight: 1,
            mtls: true,
            workload: EndpointMeta {
                pod: "hw-1".into(),
                network: "net2".into(),
                ..EndpointMeta::default()
            },
            via_gateway: true,
            unhealthy: true,
            locality: "us-west-2/us-west-2a".into(),
            priority: 2,
        }],
        destination_rule: None,
        outlier: Some(OutlierDetection {
            consecutive_gateway_errors: Some(3),
            ..OutlierDetection::istio_default()
        }),
        locality_weights: [("us-west-2/*".to_string(), 80), ("eastus".to_string(), 20)].into(),
    }
}

fn config() -> ProxyConfig {
    let mut c = ProxyConfig {
        mesh: MeshSettings {
            trust_domain: "cluster.local".into(),
            trust_domain_aliases: vec!["old.local".into()],
            domain: "cluster.local".into(),
            allow_any_outbound: true,
            access_log: true,
            path_normalization: PathNormalization::DecodeAndMergeSlashes,
            node: NodeMeta {
                role: ProxyRole::Gateway,
                cluster: "c1".into(),
                identity: "spiffe://cluster.local/ns/ns/sa/sleep".into(),
                ..NodeMeta::default()
            },
            access_log_encoding: AccessLogEncoding::Json,
            access_log_stderr: true,
            tracing: crate::tracing::TracingSettings {
                enabled: true,
                sampling: 250_000,
                collector: Some(crate::tracing::Collector {
                    provider: "otel".into(),
                    service: "otel.obs.svc.cluster.local".into(),
                    port: 4318,
                    endpoints: vec!["10.0.0.9:4318".into()],
                    protocol: crate::tracing::OtlpProtocol::Http {
                        path: "/v1/traces".into(),
                        headers: vec![("x-token".into(), "t".into())],
                    },
                    timeout_ms: 2000,
                }),
                custom_tags: vec![
                    crate::tracing::CustomTag::Literal {
                        tag: "a".into(),
                        value: "b".into(),
                    },
                    crate::tracing::CustomTag::Environment {
                        tag: "pod".into(),
                        name: "POD_NAME".into(),
                        default: "-".into(),
                    },
                ],
                mesh_id: "m1".into(),
            },
        },
        ..ProxyConfig::default()
    };
    c.services
        .insert("hw.ns.svc.cluster.local:80".into(), service());
    c.clusters.insert(cluster().name.clone(), cluster());
    c.inbound.insert(
        "8080".into(),
        InboundPort {
            port: 8080,
            protocol: AppProtocol::Auto,
            mtls: InboundMtls::Permissive,
            services: vec!["hw.ns.svc.cluster.local:80".into()],
        },
    );
    c.secrets.insert(
        "ns/cred".into(),
        crate::TlsSecret {
            cert_chain: "CERT".into(),
            key: "KEY".into(),
            ca: String::new(),
        },
    );
    c
}

/// Every resource through the bytes, as the discovery stream carries them.
fn round_trip(c: &ProxyConfig) -> ProxyConfig {
    let mut back = ProxyConfig::default();
    for r in c.resources() {
        let bytes = r.encode_to_vec();
        back.apply(proto::Resource::decode(bytes.as_slice()).expect("decode"))
            .expect("apply");
    }
    back
}

#[test]
fn a_whole_configuration_survives_the_wire() {
    let c = config();
    assert_eq!(round_trip(&c), c);
}

#[test]
fn resources_are_ordered_and_named() {
    let names: Vec<(Option<Kind>, String)> = config()
        .resources()
        .iter()
        .map(|r| (Kind::of(r), r.name.clone()))
        .collect();
    assert_eq!(names[0], (Some(Kind::Mesh), "mesh".into()));
    assert_eq!(
        names[1],
        (Some(Kind::Service), "hw.ns.svc.cluster.local:80".into())
    );
    assert_eq!(names.last().map(|n| n.0), Some(Some(Kind::Secret)));
}

#[test]
fn kinds_round_trip_and_unknown_kinds_are_refused() {
    for k in [
        Kind::Mesh,
        Kind::Service,
        Kind::Cluster,
        Kind::Inbound,
        Kind::Listener,
        Kind::Secret,
        Kind::Authz,
    ] {
        assert_eq!(Kind::from_proto(k.to_proto() as i32), Ok(k));
    }
    assert!(Kind::from_proto(0).is_err());
    let e = Kind::from_proto(99).expect_err("unknown");
    assert_eq!(
        e.to_string(),
        "kind: unknown value 99 (a newer control plane?)"
    );
}

/// Applies a service whose wire form `edit` broke, and returns the refusal.
fn refused_service(edit: impl FnOnce(&mut proto::ServicePort)) -> String {
    let mut sp = proto::ServicePort::from(&service());
    edit(&mut sp);
    let mut c = ProxyConfig::default();
    let err = c
        .apply(proto::Resource {
            name: "s".into(),
            body: Some(Body::Service(sp)),
        })
        .expect_err("refused");
    assert!(c.services.is_empty(), "a refused resource changes nothing");
    err.to_string()
}

#[test]
fn refusals_name_the_field() {
    assert_eq!(
        refused_service(|s| s.protocol = 42),
        "protocol: unknown value 42 (a newer control plane?)"
    );
    assert_eq!(
        refused_service(|s| s.protocol = 0),
        "protocol: not set (or of a kind this proxy does not know: a newer control plane?)"
    );
    assert_eq!(
        refused_service(|s| s.http[1].action = None),
        "http[1].action: not set (or of a kind this proxy does not know: a newer control plane?)"
    );
    assert_eq!(
        refused_service(|s| {
            if let Some(proto::http_rule::Action::Redirect(r)) = &mut s.http[1].action {
                r.code = 70_000;
            }
        }),
        "http[1].redirect.code: 70000 is not an HTTP status code"
    );
    assert_eq!(
        refused_service(|s| {
            if let Some(f) = s.http[0].policy.as_mut().and_then(|p| p.fault.as_mut()) {
                f.abort_per_million = 2_000_000;
            }
        }),
        "http[0].policy.fault.abort_per_million: 2000000 parts per million is more than all"
    );
    assert_eq!(
        refused_service(|s| s.http[0].matches[0].query[0].value = None),
        "http[0].matches[0].query[0].value: not set (or of a kind this proxy does not know: a newer control plane?)"
    );
    assert_eq!(
        refused_service(|s| s.http[2].retries = None),
        "http[2].retries: not set (or of a kind this proxy does not know: a newer control plane?)"
    );
}

#[test]
fn security_relevant_enums_have_no_default() {
    let mut c = ProxyConfig::default();
    let mut cl = proto::Cluster::from(&cluster());
    cl.tls = 0;
    let e = c
        .apply(proto::Resource {
            name: "c".into(),
            body: Some(Body::Cluster(cl)),
        })
        .expect_err("tls unset");
    assert!(e.to_string().starts_with("tls: not set"), "{e}");
    let mut ib = proto::InboundPort::from(&config().inbound["8080"]);
    ib.mtls = 0;
    let e = c
        .apply(proto::Resource {
            name: "8080".into(),
            body: Some(Body::Inbound(ib)),
        })
        .expect_err("mtls unset");
    assert!(e.to_string().starts_with("mtls: not set"), "{e}");
}

#[test]
fn a_body_of_a_later_kind_is_refused_not_dropped() {
    let mut c = ProxyConfig::default();
    let e = c
        .apply(proto::Resource {
            name: "x".into(),
            body: None,
        })
        .expect_err("refused");
    assert!(e.to_string().starts_with("body: not set"), "{e}");
}

#[test]
fn empty_header_rules_are_left_off_the_wire() {
    let w = WeightedCluster {
        cluster: "c".into(),
        weight: 1,
        headers: HeaderRules::default(),
    };
    assert_eq!(proto::WeightedCluster::from(&w).headers, None);
}

#[test]
fn removing_takes_out_one_resource() {
    let mut c = config();
    c.remove(Kind::Cluster, "outbound|80||hw.ns.svc.cluster.local");
    c.remove(Kind::Service, "nope:1");
    assert!(c.clusters.is_empty());
    assert_eq!(c.services.len(), 1);
}

/// A length-delimited field `number` holding `payload`, as a newer writer would add it.
fn unknown_field(number: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    prost::encoding::encode_key(number, prost::encoding::WireType::LengthDelimited, &mut out);
    prost::encoding::encode_varint(payload.len() as u64, &mut out);
    out.extend_from_slice(payload);
    out
}

#[test]
fn fields_a_newer_control_plane_adds_are_ignored() {
    // A field the service message does not know, inside the body, and one beside the body.
    let mut body = proto::ServicePort::from(&service()).encode_to_vec();
    body.extend(unknown_field(900, b"refinement"));
    let mut bytes = proto::Resource {
        name: "s".into(),
        body: None,
    }
    .encode_to_vec();
    bytes.extend(unknown_field(3, &body));
    bytes.extend(unknown_field(901, b"annotation"));
    let mut c = ProxyConfig::default();
    c.apply(proto::Resource::decode(bytes.as_slice()).expect("decodes"))
        .expect("applies");
    assert_eq!(c.services.get("s"), Some(&service()));
}

#[test]
fn a_kind_added_later_is_refused_on_the_wire() {
    // Body field 40: a kind this proxy was built without.
    let mut bytes = proto::Resource {
        name: "later".into(),
        body: None,
    }
    .encode_to_vec();
    bytes.extend(unknown_field(40, b"\x0a\x01x"));
    let r = proto::Resource::decode(bytes.as_slice()).expect("decodes");
    assert_eq!(Kind::of(&r), None);
    let e = ProxyConfig::default().apply(r).expect_err("refused");
    assert!(e.to_string().starts_with("body: not set"), "{e}");
}

#[test]
fn outlier_detection_out_of_range_is_refused() {
    let mut p = proto::Cluster::from(&cluster());
    if let Some(o) = p.outlier.as_mut() {
        o.max_ejection_percent = 101;
    }
    let err = Cluster::try_from(p.clone()).expect_err("refused");
    assert_eq!(
        err.to_string(),
        "outlier.max_ejection_percent: 101 is not a percentage"
    );
    if let Some(o) = p.outlier.as_mut() {
        o.max_ejection_percent = 10;
        o.interval_ms = 0;
    }
    let err = Cluster::try_from(p).expect_err("refused");
    assert_eq!(err.to_string(), "outlier.interval_ms: must be positive");
}

#[test]
fn tracing_settings_are_checked() {
    let mut t = crate::proto::TracingSettings::from(&crate::tracing::TracingSettings::default());
    t.sampling = crate::tracing::SAMPLING_SCALE + 1;
    let e = crate::tracing::TracingSettings::try_from(t).expect_err("more than every trace");
    assert!(e.to_string().starts_with("sampling"), "{e}");
    // A message from an older control plane: Istio's defaults.
    let mut m = crate::proto::MeshSettings::from(&config().mesh);
    m.tracing = None;
    let back = MeshSettings::try_from(m).expect("decodes");
    assert_eq!(back.tracing, crate::tracing::TracingSettings::default());
}
