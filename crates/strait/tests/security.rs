//! Security policy through real sidecars and a gateway of `strait up`: AuthorizationPolicy
//! (allow-nothing, DENY before ALLOW, principals across namespaces and clusters, paths,
//! methods, headers, a TCP port, live edits, fail-closed on what strait cannot check) and
//! RequestAuthentication (valid, expired, wrong issuer, wrong audience, a JWKS fetched from
//! `jwksUri`, claims in policies and in a gateway's routes).

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use support::net::eventually;
use support::{Mesh, Reply, http_request};

const HELLO: &str = "http://helloworld.sample:5000/hello";
const DENIED: &str = "RBAC: access denied";

/// A second namespace with its own sleep: the same service account name, another identity.
const OTHER_NAMESPACE: &str = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: other
  labels: {istio-injection: enabled}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: sleep, namespace: other}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: sleep, namespace: other}
spec:
  selector:
    matchLabels: {app: sleep}
  template:
    metadata:
      labels: {app: sleep}
    spec:
      serviceAccountName: sleep
      containers:
      - name: sleep
        image: curlimages/curl:8.5.0
        command: ["/bin/sleep", "infinity"]
"#;

impl Mesh {
    /// Replaces the policy file `name` of cluster1 and waits until every proxy has it.
    fn policy(&self, name: &str, yaml: &str) {
        let generation = self.generation();
        self.write(&format!("cluster1/{name}"), yaml);
        self.wait_synced(generation + 1, Duration::from_secs(20));
    }

    fn request(&self, from: &str, method: &str, url: &str, headers: &[(&str, &str)]) -> Reply {
        http_request(self.pod(from).outbound(), method, url, headers)
            .unwrap_or_else(|e| panic!("{method} {url} via {from}: {e}"))
    }
}

fn status(r: &Reply) -> u16 {
    r.status
}

/// The sum, over the proxies at `addrs`, of a Prometheus counter's samples whose labels
/// contain every one of `labels`.
fn metric(addrs: &[std::net::SocketAddr], name: &str, labels: &[&str]) -> f64 {
    let mut sum = 0.0;
    for addr in addrs {
        let text = support::http_get(*addr, "/stats/prometheus", &[])
            .map(|r| r.body)
            .unwrap_or_default();
        sum += text
            .lines()
            .filter(|l| l.starts_with(name) && labels.iter().all(|x| l.contains(x)))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>();
    }
    sum
}

#[test]
fn authorization_policy_in_sidecars() {
    let mesh = Mesh::up(
        "single-cluster",
        51,
        &[("cluster1/other.yaml", OTHER_NAMESPACE)],
        &[],
    );
    let (sample, other) = ("cluster1/sample/sleep", "cluster1/other/sleep");
    assert_eq!(status(&mesh.get(sample, HELLO, &[])), 200);
    assert_eq!(status(&mesh.get(other, HELLO, &[])), 200);

    // Allow-nothing: `spec: {}` denies every request to the namespace's workloads.
    mesh.policy(
        "authz.yaml",
        "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: allow-nothing, namespace: sample}\nspec: {}\n",
    );
    let r = mesh.get(sample, HELLO, &[]);
    assert_eq!((r.status, r.body.as_str()), (403, DENIED), "{r:?}");
    assert_eq!(status(&mesh.get(other, HELLO, &[])), 403);
    // Either version may have answered: both sidecars' counts.
    let stats: Vec<std::net::SocketAddr> = ["v1", "v2"]
        .iter()
        .map(|v| {
            let pod = mesh.pod(&format!("cluster1/sample/helloworld-{v}"));
            std::net::SocketAddr::new(pod.ip, 15090)
        })
        .collect();
    assert!(
        metric(
            &stats,
            "strait_authz_decisions_total",
            &["decision=\"denied\"", "reason=\"no_allow_matched\""]
        ) > 0.0
    );
    assert!(
        metric(
            &stats,
            "istio_requests_total",
            &["reporter=\"destination\"", "response_code=\"403\""]
        ) > 0.0
    );

    // Principals across namespaces: the same service account name in another namespace is
    // another identity.
    mesh.policy(
        "authz.yaml",
        r#"apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: only-sample-sleep, namespace: sample}
spec:
  selector:
    matchLabels: {app: helloworld}
  action: ALLOW
  rules:
  - from:
    - source:
        principals: ["cluster.local/ns/sample/sa/sleep"]
"#,
    );
    assert_eq!(status(&mesh.get(sample, HELLO, &[])), 200);
    assert_eq!(status(&mesh.get(other, HELLO, &[])), 403);

    // DENY before ALLOW: an allowed caller is still denied what a DENY rule matches, however
    // the path is spelled.
    mesh.policy(
        "authz.yaml",
        r#"apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-sample, namespace: sample}
spec:
  action: ALLOW
  rules:
  - from:
    - source: {namespaces: [sample]}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-hello, namespace: sample}
spec:
  action: DENY
  rules:
  - to:
    - operation: {paths: [/hello]}
"#,
    );
    for path in ["/hello", "/x/../hello", "/%68ello"] {
        let r = mesh.get(sample, &format!("http://helloworld.sample:5000{path}"), &[]);
        assert_eq!((r.status, r.body.as_str()), (403, DENIED), "{path}: {r:?}");
    }
    assert_ne!(
        status(&mesh.get(sample, "http://helloworld.sample:5000/other", &[])),
        403
    );
    assert_eq!(
        status(&mesh.get(other, "http://helloworld.sample:5000/other", &[])),
        403
    );

    // Paths, methods and headers, and a `when` condition.
    mesh.policy(
        "authz.yaml",
        r#"apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: get-hello-with-token, namespace: sample}
spec:
  action: ALLOW
  rules:
  - to:
    - operation: {methods: [GET], paths: ["/hel*"]}
    when:
    - key: request.headers[X-Token]
      values: [s3cret]
"#,
    );
    let token = [("x-token", "s3cret")];
    assert_eq!(status(&mesh.get(sample, HELLO, &token)), 200);
    assert_eq!(status(&mesh.get(sample, HELLO, &[])), 403, "no header");
    assert_eq!(
        status(&mesh.get(sample, HELLO, &[("x-token", "wrong")])),
        403
    );
    assert_eq!(status(&mesh.request(sample, "POST", HELLO, &token)), 403);
    assert_eq!(
        status(&mesh.get(sample, "http://helloworld.sample:5000/other", &token)),
        403
    );

    // A live edit revokes access: allowed, then denied once the edit is pushed.
    mesh.policy(
        "authz.yaml",
        "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: allow-all, namespace: sample}\nspec:\n  rules:\n  - {}\n",
    );
    assert_eq!(status(&mesh.get(sample, HELLO, &[])), 200);
    mesh.write(
        "cluster1/authz.yaml",
        "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: deny-sleep, namespace: sample}\nspec:\n  action: DENY\n  rules:\n  - from:\n    - source: {principals: [cluster.local/ns/sample/sa/sleep]}\n",
    );
    eventually(Duration::from_secs(10), "the revocation to apply", || {
        status(&mesh.get(sample, HELLO, &[])) == 403
    });
    assert_eq!(status(&mesh.get(other, HELLO, &[])), 200);

    // Fail closed: an ALLOW rule with a condition strait cannot check never matches (and is
    // reported with file:line); a DENY rule made only of one matches everything.
    mesh.policy(
        "authz.yaml",
        r#"apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-by-unknown, namespace: sample}
spec:
  selector:
    matchLabels: {app: helloworld}
  rules:
  - from:
    - source: {namespaces: [sample]}
    when:
    - key: experimental.envoy.filters.network.mysql_proxy[db.table]
      values: [orders]
"#,
    );
    assert_eq!(status(&mesh.get(sample, HELLO, &[])), 403);
    // The report is written after the generation is published, off the push's path.
    eventually(
        Duration::from_secs(10),
        "the unknown condition reported",
        || {
            let log = mesh.log();
            log.contains("authz.yaml:") && log.contains("is not a condition strait knows")
        },
    );
    let analyzed = std::process::Command::new(support::STRAIT)
        .arg("analyze")
        .arg(&mesh.dir)
        .output()
        .expect("strait analyze");
    let text = String::from_utf8_lossy(&analyzed.stdout);
    assert!(
        text.contains("STR0015") && text.contains("authz.yaml:"),
        "{text}"
    );
    mesh.policy(
        "authz.yaml",
        r#"apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-by-unknown, namespace: sample}
spec:
  action: DENY
  rules:
  - when:
    - key: experimental.envoy.filters.network.mysql_proxy[db.table]
      values: [orders]
"#,
    );
    assert_eq!(status(&mesh.get(sample, HELLO, &[])), 403);
    assert_eq!(status(&mesh.get(other, HELLO, &[])), 403);

    // CUSTOM needs an external authorizer strait does not have: denied, flagged UAEX.
    mesh.policy(
        "authz.yaml",
        r#"apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ext-authz, namespace: sample}
spec:
  action: CUSTOM
  provider: {name: my-ext-authz}
  rules:
  - to:
    - operation: {paths: [/hello]}
"#,
    );
    assert_eq!(status(&mesh.get(sample, HELLO, &[])), 403);
    assert!(
        metric(
            &stats,
            "istio_requests_total",
            &["response_code=\"403\"", "response_flags=\"UAEX\""]
        ) > 0.0
    );

    // Policy removed: open again.
    let generation = mesh.generation();
    std::fs::remove_file(mesh.dir.join("cluster1/authz.yaml")).expect("remove");
    mesh.wait_synced(generation + 1, Duration::from_secs(20));
    assert_eq!(status(&mesh.get(other, HELLO, &[])), 200);
}

const ECHO: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: echo, namespace: sample}
spec:
  selector: {app: echo}
  ports:
  - {name: http, port: 8080}
  - {name: tcp, port: 9000}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: echo, namespace: sample}
spec:
  selector:
    matchLabels: {app: echo}
  template:
    metadata:
      labels: {app: echo, version: v1}
    spec:
      containers:
      - name: echo
        image: hashicorp/http-echo
        ports:
        - containerPort: 8080
        - containerPort: 9000
"#;

/// Opens a tunnel to `target` through a sidecar and sends a request through it: the response
/// text, empty when the far side closed the connection without one.
fn through_tunnel(mesh: &Mesh, target: &str) -> String {
    use std::io::{Read, Write};
    let proxy = mesh.pod("cluster1/sample/sleep").outbound();
    let mut s = support::connect(proxy).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(s, "CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").expect("write");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && s.read(&mut byte).unwrap_or(0) == 1 {
        head.push(byte[0]);
    }
    if !head.starts_with(b"HTTP/1.1 200") {
        return String::new();
    }
    let _ = s.write_all(b"GET /raw HTTP/1.1\r\nHost: echo\r\nConnection: close\r\n\r\n");
    let mut rest = String::new();
    let _ = s.read_to_string(&mut rest);
    rest
}

#[test]
fn authorization_policy_on_a_tcp_port() {
    let mesh = Mesh::up("single-cluster", 52, &[("cluster1/echo.yaml", ECHO)], &[]);
    assert!(through_tunnel(&mesh, "echo.sample:9000").starts_with("HTTP/1.1 200"));

    // A DENY rule with an HTTP-only field matches a TCP connection on its other fields: here
    // the port, so every connection to 9000 is closed, while HTTP on 8080 is not affected.
    mesh.policy(
        "authz.yaml",
        r#"apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-admin, namespace: sample}
spec:
  selector:
    matchLabels: {app: echo}
  action: DENY
  rules:
  - to:
    - operation: {ports: ["9000"], paths: [/admin]}
"#,
    );
    assert_eq!(
        through_tunnel(&mesh, "echo.sample:9000"),
        "",
        "connection closed"
    );
    let echo = "cluster1/sample/sleep";
    assert_eq!(
        status(&mesh.get(echo, "http://echo.sample:8080/admin", &[])),
        200
    );

    // An ALLOW rule with an HTTP-only field never matches a TCP connection.
    mesh.policy(
        "authz.yaml",
        r#"apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-raw, namespace: sample}
spec:
  selector:
    matchLabels: {app: echo}
  rules:
  - to:
    - operation: {paths: [/raw]}
"#,
    );
    assert_eq!(through_tunnel(&mesh, "echo.sample:9000"), "");
    assert_eq!(
        status(&mesh.get(echo, "http://echo.sample:8080/raw", &[])),
        200
    );
    assert_eq!(
        status(&mesh.get(echo, "http://echo.sample:8080/other", &[])),
        403
    );

    // A port-only ALLOW lets TCP through.
    mesh.policy(
        "authz.yaml",
        r#"apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-9000, namespace: sample}
spec:
  selector:
    matchLabels: {app: echo}
  rules:
  - to:
    - operation: {ports: ["9000"]}
"#,
    );
    assert!(through_tunnel(&mesh, "echo.sample:9000").starts_with("HTTP/1.1 200"));
    let echo_pod = mesh.pod("cluster1/sample/echo");
    let stats = [std::net::SocketAddr::new(echo_pod.ip, 15090)];
    assert!(
        metric(
            &stats,
            "strait_authz_decisions_total",
            &["protocol=\"tcp\"", "decision=\"denied\""]
        ) >= 2.0
    );
}

#[test]
fn principals_across_clusters_under_one_root() {
    // Two clusters, each signing with its own intermediate of one shared root. cluster1's
    // helloworld-v1 admits only sample/sleep; cluster2's workloads have no policy.
    let policy = r#"apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: sleep-only, namespace: sample}
spec:
  selector:
    matchLabels: {app: helloworld}
  rules:
  - from:
    - source: {principals: ["cluster.local/ns/sample/sa/sleep"]}
"#;
    let mesh = Mesh::up("multicluster", 54, &[("cluster1/authz.yaml", policy)], &[]);
    // cluster2's sleep reaches v1 (in cluster1, through the gateways) with an identity its
    // own cluster issued, and v1's sidecar accepts it.
    let seen = mesh.hello_versions("cluster2/sample/sleep", 16);
    assert!(
        seen.contains_key("v1") && seen.contains_key("v2"),
        "{seen:?}"
    );
    assert_eq!(seen.get("error"), None, "{seen:?}");

    // Only another service account allowed: v1 denies both clusters' sleep, v2 still answers.
    mesh.policy("authz.yaml", &policy.replace("sa/sleep", "sa/someone-else"));
    for from in ["cluster1/sample/sleep", "cluster2/sample/sleep"] {
        let mut codes = std::collections::BTreeSet::new();
        for _ in 0..16 {
            let r = mesh.get(from, HELLO, &[]);
            if r.status == 403 {
                assert_eq!(r.body, DENIED);
            }
            codes.insert(r.status);
        }
        assert_eq!(
            codes,
            [200, 403].into_iter().collect(),
            "{from}: v2 answers, v1 denies"
        );
    }
}

/// An ES256 key, its JWKS, and tokens signed with it.
struct Issuer {
    name: String,
    kid: String,
    key: jsonwebtoken::EncodingKey,
    jwks: String,
}

impl Issuer {
    fn new(name: &str, kid: &str) -> Issuer {
        use base64::Engine;
        let pair = rcgen::KeyPair::generate().expect("key");
        let raw = pair.public_key_raw();
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        let (x, y) = (&raw[1..33], &raw[33..65]);
        let jwks = serde_json::json!({"keys": [{
            "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": kid,
            "x": b64(x), "y": b64(y),
        }]})
        .to_string();
        Issuer {
            name: name.to_string(),
            kid: kid.to_string(),
            key: jsonwebtoken::EncodingKey::from_ec_der(&pair.serialize_der()),
            jwks,
        }
    }

    /// A token for `sub`, addressed to `aud`, valid for `ttl` seconds from now (negative:
    /// already expired), with extra claims.
    fn token(&self, sub: &str, aud: &str, ttl: i64, extra: serde_json::Value) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let mut claims = serde_json::json!({
            "iss": self.name, "sub": sub, "aud": aud, "iat": now - 600, "exp": now + ttl,
        });
        if let (Some(c), Some(e)) = (claims.as_object_mut(), extra.as_object()) {
            c.extend(e.clone());
        }
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.key).expect("sign")
    }
}

/// Serves `body` at every path of a loopback HTTP server, for as long as the test runs.
fn serve_jwks(body: String) -> std::net::SocketAddr {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    addr
}

fn indent(text: &str, n: usize) -> String {
    let pad = " ".repeat(n);
    text.lines().map(|l| format!("{pad}{l}\n")).collect()
}

#[test]
fn request_authentication_in_a_sidecar_and_a_gateway() {
    let inline = Issuer::new("https://issuer.strait.test", "k1");
    let fetched = Issuer::new("https://fetched.strait.test", "k2");
    let stranger = Issuer::new("https://issuer.strait.test", "k1");
    let jwks_at = serve_jwks(fetched.jwks.clone());
    let policies = format!(
        r#"apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {{name: helloworld-jwt, namespace: sample}}
spec:
  selector:
    matchLabels: {{app: helloworld}}
  jwtRules:
  - issuer: https://issuer.strait.test
    audiences: [helloworld]
    jwks: |
{}    outputPayloadToHeader: x-jwt-payload
  - issuer: https://fetched.strait.test
    jwksUri: http://{jwks_at}/jwks.json
    fromHeaders:
    - {{name: x-auth, prefix: "Token "}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {{name: require-jwt, namespace: sample}}
spec:
  selector:
    matchLabels: {{app: helloworld}}
  rules:
  - from:
    - source: {{requestPrincipals: ["*"]}}
    when:
    - key: request.auth.claims[groups]
      values: [readers]
"#,
        indent(&inline.jwks, 6)
    );
    let gateway = format!(
        r#"apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: web, namespace: istio-system}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: 80, name: http, protocol: HTTP}}
    hosts: [web.example.com]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: web, namespace: sample}}
spec:
  hosts: [web.example.com]
  gateways: [istio-system/web]
  http:
  - match:
    - headers:
        "@request.auth.claims.groups": {{exact: beta}}
    route:
    - destination: {{host: helloworld.sample.svc.cluster.local, subset: v2, port: {{number: 5000}}}}
  - route:
    - destination: {{host: helloworld.sample.svc.cluster.local, subset: v1, port: {{number: 5000}}}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: helloworld, namespace: sample}}
spec:
  host: helloworld.sample.svc.cluster.local
  subsets:
  - {{name: v1, labels: {{version: v1}}}}
  - {{name: v2, labels: {{version: v2}}}}
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {{name: ingress-jwt, namespace: istio-system}}
spec:
  selector:
    matchLabels: {{istio: ingressgateway}}
  jwtRules:
  - issuer: https://issuer.strait.test
    forwardOriginalToken: true
    jwks: |
{}---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {{name: ingress-requires-jwt, namespace: istio-system}}
spec:
  selector:
    matchLabels: {{istio: ingressgateway}}
  rules:
  - from:
    - source: {{requestPrincipals: ["https://issuer.strait.test/*"]}}
"#,
        indent(&inline.jwks, 6)
    );
    let mesh = Mesh::up(
        "single-cluster",
        53,
        &[
            ("cluster1/jwt.yaml", policies.as_str()),
            ("cluster1/gateway.yaml", gateway.as_str()),
        ],
        &[],
    );
    let from = "cluster1/sample/sleep";
    let bearer = |t: &str| format!("Bearer {t}");
    let readers = serde_json::json!({"groups": ["readers"]});
    let get = |headers: &[(&str, &str)]| mesh.get(from, HELLO, headers);

    // Valid: verified, and the policy's claim condition holds.
    let valid = inline.token("alice", "helloworld", 600, readers.clone());
    let r = get(&[("authorization", &bearer(&valid))]);
    assert_eq!(r.status, 200, "{r:?}\n{}", mesh.log());
    // No token: RequestAuthentication lets it through, the policy requiring a principal not.
    let r = get(&[]);
    assert_eq!((r.status, r.body.as_str()), (403, DENIED));
    // A verified token without the claim the policy asks for.
    let plain = inline.token("bob", "helloworld", 600, serde_json::json!({}));
    assert_eq!(status(&get(&[("authorization", &bearer(&plain))])), 403);
    // Expired, wrong issuer, wrong audience, wrong key: refused before any policy.
    for (token, code, body) in [
        (
            inline.token("alice", "helloworld", -120, readers.clone()),
            401,
            "Jwt is expired",
        ),
        (
            Issuer::new("https://elsewhere.test", "k1").token(
                "alice",
                "helloworld",
                600,
                readers.clone(),
            ),
            401,
            "Jwt issuer is not configured",
        ),
        (
            inline.token("alice", "someone-else", 600, readers.clone()),
            403,
            "Audiences in Jwt are not allowed",
        ),
        (
            stranger.token("alice", "helloworld", 600, readers.clone()),
            401,
            "Jwt verification fails",
        ),
    ] {
        let r = get(&[("authorization", &bearer(&token))]);
        assert_eq!((r.status, r.body.as_str()), (code, body), "{r:?}");
    }

    // The second issuer's keys come from its jwksUri, fetched by the control plane.
    let fetched_token = fetched.token("carol", "any", 600, readers.clone());
    eventually(Duration::from_secs(30), "the JWKS to be fetched", || {
        status(&get(&[("x-auth", &format!("Token {fetched_token}"))])) == 200
    });

    // At the gateway: no token is denied, a token routes by its claims.
    let lb = mesh.load_balancer("cluster1/istio-system/istio-ingressgateway");
    let at_gateway = |headers: &[(&str, &str)]| {
        http_request(
            std::net::SocketAddr::new(lb, 80),
            "GET",
            "http://web.example.com/hello",
            headers,
        )
        .expect("gateway")
    };
    let r = at_gateway(&[]);
    assert_eq!((r.status, r.body.as_str()), (403, DENIED), "{r:?}");
    // The gateway forwards the token, and helloworld's sidecar checks it again.
    let beta = inline.token(
        "dave",
        "helloworld",
        600,
        serde_json::json!({"groups": ["beta", "readers"]}),
    );
    let ga = inline.token(
        "erin",
        "helloworld",
        600,
        serde_json::json!({"groups": ["ga", "readers"]}),
    );
    for _ in 0..4 {
        let r = at_gateway(&[("authorization", &bearer(&beta))]);
        assert!(r.body.contains("version: v2"), "{r:?}");
        let r = at_gateway(&[("authorization", &bearer(&ga))]);
        assert!(r.body.contains("version: v1"), "{r:?}");
    }
    let r = at_gateway(&[("authorization", "Bearer not.a.token")]);
    assert_eq!(r.status, 401, "{r:?}");
}
