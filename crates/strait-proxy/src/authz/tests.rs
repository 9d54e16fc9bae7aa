//! Tables of policies and requests with the decision Istio would reach. Each table holds one
//! rule shape fixed and varies the request, so a failing row names the behaviour that broke.

use std::net::{IpAddr, SocketAddr};

use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};
use strait_config::{
    Authz, AuthzPolicy, AuthzRule, ConditionKey, ConditionMatch, OperationMatch, SourceMatch,
    StringMatch,
};

use super::*;

const SLEEP: &str = "spiffe://cluster.local/ns/sample/sa/sleep";
const ISSUER_SUB: &str = "https://issuer.example/alice";

/// An owned request, borrowed as [`Attributes`] for a check.
#[derive(Clone)]
struct Req {
    source: IpAddr,
    remote: Option<IpAddr>,
    principal: Option<String>,
    destination: SocketAddr,
    sni: Option<String>,
    http: Option<Http>,
}

#[derive(Clone)]
struct Http {
    method: String,
    path: String,
    host: String,
    headers: HeaderMap,
    jwt: Option<Jwt>,
}

#[derive(Clone)]
struct Jwt {
    principal: String,
    audiences: Vec<String>,
    presenter: Option<String>,
    claims: Value,
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

/// `GET /` to `hw.sample.svc:5000` from 10.0.0.1, without mTLS or JWT.
fn get() -> Req {
    Req {
        source: ip("10.0.0.1"),
        remote: None,
        principal: None,
        destination: SocketAddr::new(ip("10.0.0.9"), 5000),
        sni: None,
        http: Some(Http {
            method: "GET".into(),
            path: "/".into(),
            host: "hw.sample.svc:5000".into(),
            headers: HeaderMap::new(),
            jwt: None,
        }),
    }
}

/// A TCP connection to port 9000 from 10.0.0.1, without mTLS.
fn tcp() -> Req {
    Req {
        http: None,
        destination: SocketAddr::new(ip("10.0.0.9"), 9000),
        ..get()
    }
}

impl Req {
    fn mtls(mut self, id: &str) -> Req {
        self.principal = Some(id.into());
        self
    }
    fn peer_ip(mut self, a: &str) -> Req {
        self.source = ip(a);
        self
    }
    fn remote(mut self, a: &str) -> Req {
        self.remote = Some(ip(a));
        self
    }
    fn port(mut self, p: u16) -> Req {
        self.destination.set_port(p);
        self
    }
    fn sni(mut self, s: &str) -> Req {
        self.sni = Some(s.into());
        self
    }
    fn http(mut self, f: impl FnOnce(&mut Http)) -> Req {
        if let Some(h) = self.http.as_mut() {
            f(h);
        }
        self
    }
    fn method(self, m: &str) -> Req {
        self.http(|h| h.method = m.into())
    }
    fn path(self, p: &str) -> Req {
        self.http(|h| h.path = p.into())
    }
    fn host(self, host: &str) -> Req {
        self.http(|h| h.host = host.into())
    }
    fn header(self, name: &'static str, value: &'static str) -> Req {
        self.http(|h| {
            h.headers.append(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        })
    }
    fn jwt(self, claims: Value) -> Req {
        self.http(|h| {
            h.jwt = Some(Jwt {
                principal: ISSUER_SUB.into(),
                audiences: vec!["aud1".into(), "aud2".into()],
                presenter: Some("web".into()),
                claims,
            });
        })
    }

    fn attrs(&self) -> Attributes<'_> {
        Attributes {
            source_ip: self.source,
            remote_ip: self.remote.unwrap_or(self.source),
            principal: self.principal.as_deref(),
            destination: self.destination,
            sni: self.sni.as_deref(),
            http: self.http.as_ref().map(|h| HttpAttributes {
                method: &h.method,
                path: &h.path,
                host: &h.host,
                headers: &h.headers,
                auth: h.jwt.as_ref().map(|j| AuthAttributes {
                    principal: &j.principal,
                    audiences: &j.audiences,
                    presenter: j.presenter.as_deref(),
                    claims: &j.claims,
                }),
            }),
        }
    }
}

fn m(values: &[&str]) -> Vec<StringMatch> {
    values.iter().map(|v| StringMatch::parse(v)).collect()
}

fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(|v| v.to_string()).collect()
}

fn policy(name: &str, rules: Vec<AuthzRule>) -> AuthzPolicy {
    AuthzPolicy {
        name: name.into(),
        rules,
    }
}

fn from(s: SourceMatch) -> AuthzRule {
    AuthzRule {
        from: vec![s],
        ..AuthzRule::default()
    }
}

fn to(o: OperationMatch) -> AuthzRule {
    AuthzRule {
        to: vec![o],
        ..AuthzRule::default()
    }
}

fn when(key: ConditionKey, values: &[&str], not_values: &[&str]) -> AuthzRule {
    AuthzRule {
        when: vec![ConditionMatch {
            key,
            values: m(values),
            not_values: m(not_values),
        }],
        ..AuthzRule::default()
    }
}

fn allow(rules: Vec<AuthzRule>) -> Authz {
    Authz {
        allow: vec![policy("sample/allow", rules)],
        ..Authz::default()
    }
}

fn deny(rules: Vec<AuthzRule>) -> Authz {
    Authz {
        deny: vec![policy("sample/deny", rules)],
        ..Authz::default()
    }
}

fn decide(authz: &Authz, req: &Req) -> Decision {
    Policy::new(authz).check(&req.attrs())
}

fn denied(reason: DenyReason, policy: &str) -> Decision {
    Decision::Deny {
        policy: policy.into(),
        reason,
    }
}

/// Runs rows of (what, rule, request, allowed) under a single ALLOW policy.
fn allow_table(rows: Vec<(&str, AuthzRule, Req, bool)>) {
    for (what, rule, req, want) in rows {
        let got = decide(&allow(vec![rule]), &req);
        assert_eq!(got == Decision::Allow, want, "{what}: {got:?}");
    }
}

#[test]
fn actions_in_istio_order() {
    let any = AuthzRule::default;
    let get_only = || {
        to(OperationMatch {
            methods: m(&["GET"]),
            ..OperationMatch::default()
        })
    };
    let both = Authz {
        deny: vec![policy("sample/no-get", vec![get_only()])],
        allow: vec![policy("sample/all", vec![any()])],
        ..Authz::default()
    };
    let two_allows = Authz {
        allow: vec![
            policy("sample/a", vec![get_only()]),
            policy("sample/b", vec![]),
        ],
        ..Authz::default()
    };
    let custom = Authz {
        custom: vec!["sample/ext".into()],
        ..allow(vec![any()])
    };
    let audit_only = Authz {
        audit: vec![policy("sample/audit", vec![any()])],
        ..Authz::default()
    };
    use DenyReason::*;
    #[rustfmt::skip]
    let rows: Vec<(&str, Authz, Req, Decision)> = vec![
        ("no policy", Authz::default(), get(), Decision::Allow),
        ("allow-nothing (spec: {})", allow(vec![]), get(), denied(NoAllowMatched, "sample/allow")),
        ("an empty rule allows all", allow(vec![any()]), get(), Decision::Allow),
        ("an empty rule allows TCP", allow(vec![any()]), tcp(), Decision::Allow),
        ("deny before allow", both.clone(), get(), denied(DenyRule, "sample/no-get")),
        ("deny not matching, allow matching", both, get().method("POST"), Decision::Allow),
        ("deny without rules denies nothing", deny(vec![]), get(), Decision::Allow),
        ("deny not matching, no allow", deny(vec![get_only()]), get().method("PUT"), Decision::Allow),
        ("custom denies even with allow-all", custom, get(), denied(Custom, "sample/ext")),
        ("no allow matched: names them all", two_allows, get().method("POST"),
            denied(NoAllowMatched, "sample/a,sample/b")),
        ("audit never decides", audit_only, get(), Decision::Allow),
    ];
    for (what, authz, req, want) in rows {
        assert_eq!(decide(&authz, &req), want, "{what}");
    }
    assert!(Policy::new(&Authz::default()).is_empty());
    assert!(!Policy::new(&allow(vec![])).is_empty());
}

#[test]
fn peer_identity() {
    let principals = |yes: &[&str], no: &[&str]| {
        from(SourceMatch {
            principals: m(yes),
            not_principals: m(no),
            ..SourceMatch::default()
        })
    };
    let namespaces = |yes: &[&str], no: &[&str]| {
        from(SourceMatch {
            namespaces: m(yes),
            not_namespaces: m(no),
            ..SourceMatch::default()
        })
    };
    let sas = |yes: &[&str]| {
        from(SourceMatch {
            service_accounts: m(yes),
            ..SourceMatch::default()
        })
    };
    let sleep = || get().mtls(SLEEP);
    #[rustfmt::skip]
    let rows = vec![
        ("principal exact", principals(&["cluster.local/ns/sample/sa/sleep"], &[]), sleep(), true),
        ("principal other", principals(&["cluster.local/ns/sample/sa/other"], &[]), sleep(), false),
        ("principal prefix", principals(&["cluster.local/ns/sample/*"], &[]), sleep(), true),
        ("principal suffix", principals(&["*/sa/sleep"], &[]), sleep(), true),
        ("principal presence", principals(&["*"], &[]), sleep(), true),
        ("principal presence without mTLS", principals(&["*"], &[]), get(), false),
        ("written with spiffe://: no match", principals(&[SLEEP], &[]), sleep(), false),
        ("notPrincipals without mTLS holds", principals(&[], &["*"]), get(), true),
        ("notPrincipals * with mTLS", principals(&[], &["*"]), sleep(), false),
        ("notPrincipals other", principals(&[], &["cluster.local/ns/x/sa/y"]), sleep(), true),
        ("namespace from the principal", namespaces(&["sample"], &[]), sleep(), true),
        ("namespace prefix", namespaces(&["sam*"], &[]), sleep(), true),
        ("namespace other", namespaces(&["prod"], &[]), sleep(), false),
        ("namespace without mTLS", namespaces(&["sample"], &[]), get(), false),
        ("namespace of an odd identity", namespaces(&["*"], &[]), get().mtls("spiffe://td/x"), false),
        ("notNamespaces own", namespaces(&[], &["sample"]), sleep(), false),
        ("notNamespaces without mTLS", namespaces(&[], &["sample"]), get(), true),
        ("service account", sas(&["sample/sleep"]), sleep(), true),
        ("service account other", sas(&["sample/other"]), sleep(), false),
        ("service account without mTLS", sas(&["sample/sleep"]), get(), false),
    ];
    allow_table(rows);
}

#[test]
fn peer_addresses() {
    let blocks = |yes: &[&str], no: &[&str]| {
        from(SourceMatch {
            ip_blocks: strings(yes),
            not_ip_blocks: strings(no),
            ..SourceMatch::default()
        })
    };
    let remote = |yes: &[&str], no: &[&str]| {
        from(SourceMatch {
            remote_ip_blocks: strings(yes),
            not_remote_ip_blocks: strings(no),
            ..SourceMatch::default()
        })
    };
    let ten = || blocks(&["10.0.0.0/8"], &[]);
    let doc = || remote(&["203.0.113.0/24"], &[]);
    #[rustfmt::skip]
    let rows = vec![
        ("v4 range", ten(), get().peer_ip("10.1.2.3"), true),
        ("v4 outside", ten(), get().peer_ip("192.168.0.1"), false),
        ("v4 single address", blocks(&["10.1.2.3"], &[]), get().peer_ip("10.1.2.3"), true),
        ("v4 single other", blocks(&["10.1.2.3"], &[]), get().peer_ip("10.1.2.4"), false),
        ("v6 range", blocks(&["fd00::/8"], &[]), get().peer_ip("fd00::1"), true),
        ("v6 outside", blocks(&["fd00::/8"], &[]), get().peer_ip("fe80::1"), false),
        ("v6 single address", blocks(&["fd00::1"], &[]), get().peer_ip("fd00::1"), true),
        ("v4 range, v6 peer", ten(), get().peer_ip("fd00::1"), false),
        ("v4-mapped peer", ten(), get().peer_ip("::ffff:10.1.2.3"), true),
        ("any of several", blocks(&["192.168.0.0/16", "10.0.0.0/8"], &[]), get(), true),
        ("notIpBlocks holding the peer", blocks(&[], &["10.0.0.0/8"]), get(), false),
        ("notIpBlocks elsewhere", blocks(&[], &["192.168.0.0/16"]), get(), true),
        ("remote client", doc(), get().remote("203.0.113.7"), true),
        ("remote, not the direct peer", doc(), get().peer_ip("203.0.113.7").remote("198.51.100.1"), false),
        ("remote defaults to the peer", remote(&["10.0.0.1"], &[]), get(), true),
        ("notRemoteIpBlocks", remote(&[], &["203.0.113.0/24"]), get().remote("203.0.113.7"), false),
    ];
    allow_table(rows);
}

#[test]
fn request_principals() {
    let rp = |yes: &[&str], no: &[&str]| {
        from(SourceMatch {
            request_principals: m(yes),
            not_request_principals: m(no),
            ..SourceMatch::default()
        })
    };
    let jwt = || get().jwt(json!({}));
    #[rustfmt::skip]
    let rows = vec![
        ("exact with JWT", rp(&[ISSUER_SUB], &[]), jwt(), true),
        ("exact without JWT", rp(&[ISSUER_SUB], &[]), get(), false),
        ("issuer prefix", rp(&["https://issuer.example/*"], &[]), jwt(), true),
        ("presence with JWT", rp(&["*"], &[]), jwt(), true),
        ("presence without JWT", rp(&["*"], &[]), get(), false),
        ("notRequestPrincipals without JWT", rp(&[], &["*"]), get(), true),
        ("notRequestPrincipals with JWT", rp(&[], &["*"]), jwt(), false),
    ];
    allow_table(rows);
}

#[test]
fn operations() {
    let hosts = |yes: &[&str], no: &[&str]| {
        to(OperationMatch {
            hosts: m(yes),
            not_hosts: m(no),
            ..OperationMatch::default()
        })
    };
    let methods = |yes: &[&str]| {
        to(OperationMatch {
            methods: m(yes),
            ..OperationMatch::default()
        })
    };
    let paths = |yes: &[&str], no: &[&str]| {
        to(OperationMatch {
            paths: m(yes),
            not_paths: m(no),
            ..OperationMatch::default()
        })
    };
    let ports = |yes: &[u32], no: &[u32]| {
        to(OperationMatch {
            ports: yes.to_vec(),
            not_ports: no.to_vec(),
            ..OperationMatch::default()
        })
    };
    let get_api = to(OperationMatch {
        methods: m(&["GET"]),
        paths: m(&["/api/*"]),
        ..OperationMatch::default()
    });
    #[rustfmt::skip]
    let rows = vec![
        ("host without port", hosts(&["hw.sample.svc"], &[]), get(), true),
        ("host ignores case", hosts(&["hw.sample.svc"], &[]), get().host("HW.Sample.SVC"), true),
        ("host pattern ignores case", hosts(&["HW.*"], &[]), get().host("hw.sample.svc"), true),
        ("host suffix", hosts(&["*.sample.svc"], &[]), get().host("API.SAMPLE.SVC:80"), true),
        ("host other", hosts(&["other.svc"], &[]), get(), false),
        ("host IPv6 literal", hosts(&["[::1]"], &[]), get().host("[::1]:5000"), true),
        ("notHosts", hosts(&[], &["hw.sample.svc"]), get(), false),
        ("method", methods(&["GET", "HEAD"]), get(), true),
        ("method is exact", methods(&["get"]), get(), false),
        ("method other", methods(&["POST"]), get(), false),
        ("path exact", paths(&["/health"], &[]), get().path("/health"), true),
        ("path prefix", paths(&["/api/*"], &[]), get().path("/api/v1"), true),
        ("path suffix", paths(&["*.css"], &[]), get().path("/s/a.css"), true),
        ("path other", paths(&["/api/*"], &[]), get().path("/admin"), false),
        ("path without the query", paths(&["/health"], &[]), get().path("/health?full=1"), true),
        ("notPaths hit", paths(&[], &["/admin*"]), get().path("/admin/users"), false),
        ("notPaths miss", paths(&[], &["/admin*"]), get().path("/public"), true),
        ("paths and notPaths", paths(&["/api/*"], &["/api/internal*"]), get().path("/api/internal/x"), false),
        ("port", ports(&[5000], &[]), get(), true),
        ("port other", ports(&[80], &[]), get(), false),
        ("notPorts", ports(&[], &[5000]), get(), false),
        ("fields AND: both hold", get_api.clone(), get().path("/api/x"), true),
        ("fields AND: one fails", get_api, get().path("/other"), false),
    ];
    allow_table(rows);
}

#[test]
fn conditions() {
    use ConditionKey as K;
    let header = || K::RequestHeader("x-token".into());
    let claim = |path: &[&str]| K::RequestAuthClaim(strings(path));
    let claims =
        json!({"realm": {"role": "admin"}, "groups": ["dev", "ops"], "level": 3, "ok": true});
    let jwt = || get().jwt(claims.clone());
    let sleep = || get().mtls(SLEEP);
    #[rustfmt::skip]
    let rows = vec![
        ("header", when(header(), &["abc"], &[]), get().header("x-token", "abc"), true),
        ("header missing", when(header(), &["abc"], &[]), get(), false),
        ("header presence", when(header(), &["*"], &[]), get().header("x-token", "x"), true),
        ("header repeated: any value", when(header(), &["abc"], &[]),
            get().header("x-token", "zzz").header("x-token", "abc"), true),
        ("header notValues hit", when(header(), &[], &["bad"]), get().header("x-token", "bad"), false),
        ("header notValues, absent", when(header(), &[], &["bad"]), get(), true),
        ("claim nested", when(claim(&["realm", "role"]), &["admin"], &[]), jwt(), true),
        ("claim nested other", when(claim(&["realm", "role"]), &["user"], &[]), jwt(), false),
        ("claim list: any element", when(claim(&["groups"]), &["ops"], &[]), jwt(), true),
        ("claim list: notValues", when(claim(&["groups"]), &[], &["dev"]), jwt(), false),
        ("claim number as text", when(claim(&["level"]), &["3"], &[]), jwt(), true),
        ("claim bool as text", when(claim(&["ok"]), &["true"], &[]), jwt(), true),
        ("claim object is absent", when(claim(&["realm"]), &["*"], &[]), jwt(), false),
        ("claim missing", when(claim(&["nope"]), &["x"], &[]), jwt(), false),
        ("claim without JWT", when(claim(&["groups"]), &["ops"], &[]), get(), false),
        ("auth principal", when(K::RequestAuthPrincipal, &[ISSUER_SUB], &[]), jwt(), true),
        ("auth audiences: any", when(K::RequestAuthAudiences, &["aud2"], &[]), jwt(), true),
        ("auth presenter", when(K::RequestAuthPresenter, &["web"], &[]), jwt(), true),
        ("auth presenter without JWT", when(K::RequestAuthPresenter, &["*"], &[]), get(), false),
        ("source.ip CIDR", when(K::SourceIp, &["10.0.0.0/8"], &[]), get(), true),
        ("source.ip outside", when(K::SourceIp, &["192.168.0.0/16"], &[]), get(), false),
        ("source.ip notValues", when(K::SourceIp, &[], &["10.0.0.1"]), get(), false),
        ("source.ip v6", when(K::SourceIp, &["fd00::/8"], &[]), get().peer_ip("fd00::2"), true),
        ("remote.ip", when(K::RemoteIp, &["203.0.113.0/24"], &[]), get().remote("203.0.113.9"), true),
        ("destination.ip", when(K::DestinationIp, &["10.0.0.9"], &[]), get(), true),
        ("destination.port", when(K::DestinationPort, &["5000"], &[]), get(), true),
        ("destination.port other", when(K::DestinationPort, &["80", "443"], &[]), get(), false),
        ("destination.port notValues", when(K::DestinationPort, &[], &["5000"]), get(), false),
        ("source.namespace", when(K::SourceNamespace, &["sample"], &[]), sleep(), true),
        ("source.principal", when(K::SourcePrincipal, &["*/sa/sleep"], &[]), sleep(), true),
        ("source.principal without mTLS", when(K::SourcePrincipal, &["*"], &[]), get(), false),
        ("source.serviceAccount", when(K::SourceServiceAccount, &["sample/sleep"], &[]), sleep(), true),
        ("connection.sni", when(K::ConnectionSni, &["outbound_*"], &[]), get().sni("outbound_.5000_._.hw"), true),
        ("connection.sni absent", when(K::ConnectionSni, &["*"], &[]), get(), false),
    ];
    allow_table(rows);

    let two = AuthzRule {
        when: [
            when(K::DestinationPort, &["5000"], &[]).when,
            when(header(), &["abc"], &[]).when,
        ]
        .concat(),
        ..AuthzRule::default()
    };
    #[rustfmt::skip]
    let rows = vec![
        ("every condition: all hold", two.clone(), get().header("x-token", "abc"), true),
        ("every condition: one fails", two, get(), false),
    ];
    allow_table(rows);
}

#[test]
fn tcp_connections() {
    let paths = || OperationMatch {
        paths: m(&["/admin*"]),
        ..OperationMatch::default()
    };
    let not_paths = to(OperationMatch {
        not_paths: m(&["/x"]),
        ..OperationMatch::default()
    });
    let jwt_less = from(SourceMatch {
        not_request_principals: m(&["*"]),
        ..SourceMatch::default()
    });
    let port_9000 = to(OperationMatch {
        ports: vec![9000],
        ..OperationMatch::default()
    });
    let header = when(ConditionKey::RequestHeader("x".into()), &["1"], &[]);
    let claim = when(ConditionKey::RequestAuthClaim(strings(&["g"])), &["x"], &[]);
    #[rustfmt::skip]
    let rows: Vec<(&str, Authz, Req, bool)> = vec![
        ("allow with paths: never on TCP", allow(vec![to(paths())]), tcp(), false),
        ("allow with paths: still on HTTP", allow(vec![to(paths())]), get().path("/admin"), true),
        ("allow with notPaths: never on TCP", allow(vec![not_paths]), tcp(), false),
        ("allow with a header condition: never on TCP", allow(vec![header]), tcp(), false),
        ("allow with notRequestPrincipals: never on TCP", allow(vec![jwt_less]), tcp(), false),
        ("allow with ports: on TCP", allow(vec![port_9000]), tcp(), true),
        ("deny with only paths: every TCP connection", deny(vec![to(paths())]), tcp(), false),
        ("deny with only paths: HTTP elsewhere", deny(vec![to(paths())]), get(), true),
        ("deny with only a claim: every TCP connection", deny(vec![claim]), tcp(), false),
    ];
    for (what, authz, req, want) in rows {
        let got = decide(&authz, &req);
        assert_eq!(got == Decision::Allow, want, "{what}: {got:?}");
    }

    // DENY with paths AND ports: on TCP, the port alone decides.
    let rule = deny(vec![to(OperationMatch {
        ports: vec![9000],
        ..paths()
    })]);
    let denial = denied(DenyReason::DenyRule, "sample/deny");
    assert_eq!(decide(&rule, &tcp()), denial);
    assert_eq!(decide(&rule, &tcp().port(9001)), Decision::Allow);
    // DENY with a principal and paths: on TCP, the principal alone decides.
    let rule = deny(vec![AuthzRule {
        from: vec![SourceMatch {
            principals: m(&["*/sa/sleep"]),
            ..SourceMatch::default()
        }],
        to: vec![paths()],
        ..AuthzRule::default()
    }]);
    assert_eq!(decide(&rule, &tcp().mtls(SLEEP)), denial);
    assert_eq!(decide(&rule, &tcp()), Decision::Allow);
}

#[test]
fn what_cannot_be_checked_fails_closed() {
    use ConditionKey as K;
    let unsupported = |r: AuthzRule| AuthzRule {
        unsupported: vec!["when: experimental.key".into()],
        ..r
    };
    let blocks = |yes: &[&str], no: &[&str]| SourceMatch {
        ip_blocks: strings(yes),
        not_ip_blocks: strings(no),
        ..SourceMatch::default()
    };
    let get_only = || {
        to(OperationMatch {
            methods: m(&["GET"]),
            ..OperationMatch::default()
        })
    };
    let bad_or_any = AuthzRule {
        from: vec![blocks(&["10.0.0.0/33"], &[]), SourceMatch::default()],
        ..AuthzRule::default()
    };
    let bad_and_port_80 = AuthzRule {
        from: vec![blocks(&["bogus"], &[])],
        to: vec![OperationMatch {
            ports: vec![80],
            ..OperationMatch::default()
        }],
        ..AuthzRule::default()
    };
    #[rustfmt::skip]
    let rows: Vec<(&str, Authz, Req, bool)> = vec![
        ("unsupported in allow: never", allow(vec![unsupported(AuthzRule::default())]), get(), false),
        ("unsupported in deny: as compiled", deny(vec![unsupported(get_only())]), get(), false),
        ("unsupported in deny: no wider", deny(vec![unsupported(get_only())]), get().method("POST"), true),
        ("invalid CIDR in allow: never", allow(vec![from(blocks(&["10.0.0.0/8", "x"], &[]))]), get(), false),
        ("invalid CIDR in allow: not through another source", allow(vec![bad_or_any]), get(), false),
        ("invalid notIpBlocks in allow", allow(vec![from(blocks(&[], &["bogus"]))]), get(), false),
        ("invalid CIDR in deny: matches all", deny(vec![from(blocks(&["bogus"], &[]))]), get(), false),
        ("invalid notIpBlocks in deny: matches all", deny(vec![from(blocks(&[], &["1.2.3"]))]), get(), false),
        ("invalid CIDR in deny: other fields decide", deny(vec![bad_and_port_80]), get(), true),
        ("invalid source.ip in allow", allow(vec![when(K::SourceIp, &["10.*"], &[])]), get(), false),
        ("invalid source.ip in deny", deny(vec![when(K::SourceIp, &["nope"], &[])]), get(), false),
        ("invalid port in allow", allow(vec![when(K::DestinationPort, &["http"], &[])]), get(), false),
        ("invalid port in deny", deny(vec![when(K::DestinationPort, &[], &["99999"])]), get(), false),
    ];
    for (what, authz, req, want) in rows {
        let got = decide(&authz, &req);
        assert_eq!(got == Decision::Allow, want, "{what}: {got:?}");
    }
}

#[test]
fn audited_lists_the_matching_audit_policies() {
    let method = |v: &str| {
        to(OperationMatch {
            methods: m(&[v]),
            ..OperationMatch::default()
        })
    };
    let path = to(OperationMatch {
        paths: m(&["/x"]),
        ..OperationMatch::default()
    });
    let authz = Authz {
        audit: vec![
            policy("sample/gets", vec![method("GET")]),
            policy("sample/posts", vec![method("POST")]),
            policy("sample/empty", vec![]),
            policy("sample/all", vec![AuthzRule::default()]),
            policy("sample/paths", vec![path]),
        ],
        ..Authz::default()
    };
    let p = Policy::new(&authz);
    assert_eq!(p.audited(&get().attrs()), ["sample/gets", "sample/all"]);
    // On TCP, as in DENY, what is HTTP-only holds: methods and paths alike.
    let on_tcp = ["sample/gets", "sample/posts", "sample/all", "sample/paths"];
    assert_eq!(p.audited(&tcp().attrs()), on_tcp);
    assert_eq!(p.check(&get().attrs()), Decision::Allow);
    let nothing = Policy::new(&Authz::default());
    assert!(nothing.audited(&get().attrs()).is_empty());
}

#[test]
fn helpers() {
    for (host, want) in [
        ("a.b:80", "a.b"),
        ("a.b", "a.b"),
        ("[::1]:80", "[::1]"),
        ("::1", "::1"),
        ("a.b:", "a.b"),
        ("a.b:x", "a.b:x"),
    ] {
        assert_eq!(eval::without_port(host), want, "{host}");
    }
    let claims = json!({"a": {"b": ["x", 1, "y"]}, "n": 1.5});
    let read = |path: &[&str]| eval::claim(&claims, &strings(path));
    assert_eq!(read(&["a", "b"]), ["x", "y"]);
    assert_eq!(read(&["n"]), ["1.5"]);
    assert!(read(&[]).is_empty());
    assert!(read(&["a", "b", "c"]).is_empty());
}
