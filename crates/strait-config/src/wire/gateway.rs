//! Gateway listeners and the TLS material they terminate with.

use super::{At, WireError, encode_list, list, required};
use crate::gateway::{
    GatewayListener, ListenerKind, TlsAction, TlsChain, TlsSecret, TlsTermination, VirtualHost,
};
use crate::proto;
use crate::proto::{gateway_listener, tls_chain};

impl From<&GatewayListener> for proto::GatewayListener {
    fn from(l: &GatewayListener) -> Self {
        use gateway_listener::Kind;
        proto::GatewayListener {
            port: l.port,
            bind_port: l.bind_port,
            public: l.public.clone(),
            kind: Some(match &l.kind {
                ListenerKind::Health => Kind::Health(proto::HealthListener {}),
                ListenerKind::Http { vhosts } => Kind::Http(proto::HttpListener {
                    vhosts: encode_list(vhosts),
                }),
                ListenerKind::Tls { chains } => Kind::Tls(proto::TlsListener {
                    chains: encode_list(chains),
                }),
                ListenerKind::Tcp { route } => Kind::Tcp(proto::TcpListener {
                    route: encode_list(route),
                }),
            }),
            gateways: l.gateways.clone(),
        }
    }
}

impl TryFrom<proto::GatewayListener> for GatewayListener {
    type Error = WireError;

    fn try_from(l: proto::GatewayListener) -> Result<Self, WireError> {
        use gateway_listener::Kind;
        let kind = match l.kind.ok_or_else(WireError::unset).at("kind")? {
            Kind::Health(proto::HealthListener {}) => ListenerKind::Health,
            Kind::Http(h) => ListenerKind::Http {
                vhosts: list(h.vhosts, "vhosts").at("http")?,
            },
            Kind::Tls(t) => ListenerKind::Tls {
                chains: list(t.chains, "chains").at("tls")?,
            },
            Kind::Tcp(t) => ListenerKind::Tcp {
                route: list(t.route, "route").at("tcp")?,
            },
        };
        Ok(GatewayListener {
            port: l.port,
            bind_port: l.bind_port,
            public: l.public,
            kind,
            gateways: l.gateways,
        })
    }
}

impl From<&VirtualHost> for proto::VirtualHost {
    fn from(v: &VirtualHost) -> Self {
        proto::VirtualHost {
            domains: v.domains.clone(),
            rules: encode_list(&v.rules),
            https_redirect: v.https_redirect,
            virtual_services: v.virtual_services.clone(),
        }
    }
}

impl TryFrom<proto::VirtualHost> for VirtualHost {
    type Error = WireError;

    fn try_from(v: proto::VirtualHost) -> Result<Self, WireError> {
        Ok(VirtualHost {
            domains: v.domains,
            rules: list(v.rules, "rules")?,
            https_redirect: v.https_redirect,
            virtual_services: v.virtual_services,
        })
    }
}

impl From<&TlsChain> for proto::TlsChain {
    fn from(c: &TlsChain) -> Self {
        use tls_chain::Action;
        proto::TlsChain {
            server_names: c.server_names.clone(),
            action: Some(match &c.action {
                TlsAction::AutoPassthrough => Action::AutoPassthrough(proto::AutoPassthrough {}),
                TlsAction::Passthrough { route } => Action::Passthrough(proto::Passthrough {
                    route: encode_list(route),
                }),
                TlsAction::TerminateHttp { tls, vhosts } => {
                    Action::TerminateHttp(proto::TerminateHttp {
                        tls: Some(tls.into()),
                        vhosts: encode_list(vhosts),
                    })
                }
                TlsAction::TerminateTcp { tls, route } => {
                    Action::TerminateTcp(proto::TerminateTcp {
                        tls: Some(tls.into()),
                        route: encode_list(route),
                    })
                }
            }),
        }
    }
}

impl TryFrom<proto::TlsChain> for TlsChain {
    type Error = WireError;

    fn try_from(c: proto::TlsChain) -> Result<Self, WireError> {
        use tls_chain::Action;
        let action = match c.action.ok_or_else(WireError::unset).at("action")? {
            Action::AutoPassthrough(proto::AutoPassthrough {}) => TlsAction::AutoPassthrough,
            Action::Passthrough(p) => TlsAction::Passthrough {
                route: list(p.route, "route").at("passthrough")?,
            },
            Action::TerminateHttp(t) => TlsAction::TerminateHttp {
                tls: required(t.tls, "tls").at("terminate_http")?,
                vhosts: list(t.vhosts, "vhosts").at("terminate_http")?,
            },
            Action::TerminateTcp(t) => TlsAction::TerminateTcp {
                tls: required(t.tls, "tls").at("terminate_tcp")?,
                route: list(t.route, "route").at("terminate_tcp")?,
            },
        };
        Ok(TlsChain {
            server_names: c.server_names,
            action,
        })
    }
}

impl From<&TlsTermination> for proto::TlsTermination {
    fn from(t: &TlsTermination) -> Self {
        proto::TlsTermination {
            mutual: t.mutual,
            secret: t.secret.clone(),
            ca_secret: t.ca_secret.clone(),
            min_version: t.min_version.clone(),
            max_version: t.max_version.clone(),
            cipher_suites: t.cipher_suites.clone(),
            subject_alt_names: t.subject_alt_names.clone(),
        }
    }
}

impl TryFrom<proto::TlsTermination> for TlsTermination {
    type Error = WireError;

    fn try_from(t: proto::TlsTermination) -> Result<Self, WireError> {
        Ok(TlsTermination {
            mutual: t.mutual,
            secret: t.secret,
            ca_secret: t.ca_secret,
            min_version: t.min_version,
            max_version: t.max_version,
            cipher_suites: t.cipher_suites,
            subject_alt_names: t.subject_alt_names,
        })
    }
}

impl From<&TlsSecret> for proto::TlsSecret {
    fn from(s: &TlsSecret) -> Self {
        proto::TlsSecret {
            cert_chain: s.cert_chain.clone(),
            key: s.key.clone(),
            ca: s.ca.clone(),
        }
    }
}

/// Cannot fail: a secret is three strings, with nothing to validate on the wire.
impl From<proto::TlsSecret> for TlsSecret {
    fn from(s: proto::TlsSecret) -> Self {
        TlsSecret {
            cert_chain: s.cert_chain,
            key: s.key,
            ca: s.ca,
        }
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;
    use crate::types::{HttpAction, HttpRule, Retry, RoutePolicy, WeightedCluster};

    fn route() -> Vec<WeightedCluster> {
        vec![WeightedCluster {
            cluster: "outbound|80||hw.ns.svc.cluster.local".into(),
            weight: 100,
            headers: Default::default(),
        }]
    }

    fn vhosts() -> Vec<VirtualHost> {
        vec![VirtualHost {
            domains: vec!["hw.example.com".into(), "*.example.org".into()],
            rules: vec![HttpRule {
                name: "r".into(),
                matches: Vec::new(),
                action: HttpAction::Route(route()),
                timeout_ms: Some(1000),
                retries: Retry::istio_default(),
                policy: RoutePolicy::default(),
            }],
            https_redirect: true,
            virtual_services: vec!["ns/hw".into()],
        }]
    }

    fn termination(mutual: bool) -> TlsTermination {
        TlsTermination {
            mutual,
            secret: "ns/cred".into(),
            ca_secret: mutual.then(|| "ns/cred-cacert".into()),
            min_version: Some("TLSV1_2".into()),
            max_version: mutual.then(|| "TLSV1_3".into()),
            cipher_suites: vec!["ECDHE-RSA-AES128-GCM-SHA256".into()],
            subject_alt_names: vec!["client.example.com".into()],
        }
    }

    fn listeners() -> Vec<GatewayListener> {
        let listener = |port, kind| GatewayListener {
            port,
            bind_port: port + 8000,
            public: vec!["203.0.113.1".into()],
            kind,
            gateways: vec!["istio-system/gw".into()],
        };
        vec![
            listener(15021, ListenerKind::Health),
            listener(80, ListenerKind::Http { vhosts: vhosts() }),
            listener(
                443,
                ListenerKind::Tls {
                    chains: vec![
                        TlsChain {
                            server_names: vec!["*.mesh.internal".into()],
                            action: TlsAction::AutoPassthrough,
                        },
                        TlsChain {
                            server_names: vec!["pass.example.com".into()],
                            action: TlsAction::Passthrough { route: route() },
                        },
                        TlsChain {
                            server_names: vec!["hw.example.com".into()],
                            action: TlsAction::TerminateHttp {
                                tls: termination(false),
                                vhosts: vhosts(),
                            },
                        },
                        TlsChain {
                            server_names: Vec::new(),
                            action: TlsAction::TerminateTcp {
                                tls: termination(true),
                                route: route(),
                            },
                        },
                    ],
                },
            ),
            listener(9000, ListenerKind::Tcp { route: route() }),
        ]
    }

    #[test]
    fn listeners_survive_the_wire() {
        for l in listeners() {
            let bytes = proto::GatewayListener::from(&l).encode_to_vec();
            let p = proto::GatewayListener::decode(bytes.as_slice()).expect("decodes");
            assert_eq!(GatewayListener::try_from(p), Ok(l));
        }
    }

    #[test]
    fn secrets_survive_the_wire() {
        let s = TlsSecret {
            cert_chain: "CERT".into(),
            key: "KEY".into(),
            ca: "CA".into(),
        };
        let bytes = proto::TlsSecret::from(&s).encode_to_vec();
        let p = proto::TlsSecret::decode(bytes.as_slice()).expect("decodes");
        assert_eq!(TlsSecret::from(p), s);
    }

    /// The error for sample listener `i` with one edit.
    fn refused(i: usize, edit: impl FnOnce(&mut proto::GatewayListener)) -> String {
        let mut p = proto::GatewayListener::from(&listeners()[i]);
        edit(&mut p);
        GatewayListener::try_from(p)
            .expect_err("refused")
            .to_string()
    }

    /// The chains of a TLS listener.
    fn chains(p: &mut proto::GatewayListener) -> &mut Vec<proto::TlsChain> {
        match &mut p.kind {
            Some(gateway_listener::Kind::Tls(t)) => &mut t.chains,
            _ => panic!("not a TLS listener"),
        }
    }

    #[test]
    fn a_listener_of_no_kind_is_refused() {
        let e = refused(0, |p| p.kind = None);
        assert!(e.starts_with("kind: not set"), "{e}");
    }

    #[test]
    fn a_chain_without_an_action_is_refused() {
        let e = refused(2, |p| chains(p)[1].action = None);
        assert!(e.starts_with("tls.chains[1].action: not set"), "{e}");
    }

    #[test]
    fn a_termination_without_tls_is_refused() {
        let e = refused(2, |p| match &mut chains(p)[2].action {
            Some(tls_chain::Action::TerminateHttp(t)) => t.tls = None,
            _ => panic!("not terminate_http"),
        });
        assert!(
            e.starts_with("tls.chains[2].terminate_http.tls: not set"),
            "{e}"
        );
        let e = refused(2, |p| match &mut chains(p)[3].action {
            Some(tls_chain::Action::TerminateTcp(t)) => t.tls = None,
            _ => panic!("not terminate_tcp"),
        });
        assert!(
            e.starts_with("tls.chains[3].terminate_tcp.tls: not set"),
            "{e}"
        );
    }

    #[test]
    fn a_bad_rule_in_a_virtual_host_is_named() {
        let e = refused(1, |p| match &mut p.kind {
            Some(gateway_listener::Kind::Http(h)) => h.vhosts[0].rules[0].action = None,
            _ => panic!("not an HTTP listener"),
        });
        assert!(
            e.starts_with("http.vhosts[0].rules[0].action: not set"),
            "{e}"
        );
        let e = refused(2, |p| match &mut chains(p)[2].action {
            Some(tls_chain::Action::TerminateHttp(t)) => t.vhosts[0].rules[0].retries = None,
            _ => panic!("not terminate_http"),
        });
        assert!(
            e.starts_with("tls.chains[2].terminate_http.vhosts[0].rules[0].retries: not set"),
            "{e}"
        );
    }
}
