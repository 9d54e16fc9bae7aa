//! `strait create-remote-secret`'s Secret: istioctl's format, and read back by strait's own
//! remote-secret reader (the one the analyzer and control plane use).

use strait_kube::install::yaml;
use strait_kube::remote_secret::{RemoteSecretError, Request, create};
use strait_model::trust::remote_secret;
use strait_model::{ClusterId, ObjId};

const KUBECONFIG: &str = "apiVersion: v1
kind: Config
clusters:
- name: aks-east
  cluster:
    server: https://aks-east.hcp.eastus.azmk8s.io:443
    certificate-authority-data: LS0tLS1CRUdJTg==
- name: eks-west
  cluster:
    server: https://ABC.gr7.us-west-2.eks.amazonaws.com
    certificate-authority: /home/me/.kube/eks-ca.crt
contexts:
- name: aks
  context: {cluster: aks-east, user: reader}
- name: eks
  context: {cluster: eks-west, user: aws}
current-context: aks
preferences: {}
users:
- name: reader
  user:
    token: eyJhbGciOi.reader.token
- name: aws
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      command: aws
      args: [eks, get-token]
";

fn req<'a>() -> Request<'a> {
    Request {
        name: "cluster2",
        kubeconfig: KUBECONFIG,
        kubeconfig_path: "/home/me/.kube/config",
        context: None,
        server: None,
        token: None,
    }
}

#[test]
fn istioctl_format() {
    let s = create(&req()).expect("secret");
    assert_eq!(s["apiVersion"], "v1");
    assert_eq!(s["kind"], "Secret");
    assert_eq!(s["metadata"]["name"], "istio-remote-secret-cluster2");
    assert_eq!(s["metadata"]["namespace"], "istio-system");
    assert_eq!(s["metadata"]["labels"]["istio/multiCluster"], "true");
    assert_eq!(
        s["metadata"]["annotations"]["networking.istio.io/cluster"],
        "cluster2"
    );
    let kc = s["stringData"]["cluster2"].as_str().expect("kubeconfig");
    assert_eq!(
        kc,
        "apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: LS0tLS1CRUdJTg==
    server: https://aks-east.hcp.eastus.azmk8s.io:443
  name: cluster2
contexts:
- context:
    cluster: cluster2
    user: cluster2
  name: cluster2
current-context: cluster2
kind: Config
preferences: {}
users:
- name: cluster2
  user:
    token: eyJhbGciOi.reader.token
"
    );
}

/// Written as YAML, loaded by strait's loader, read by strait-model's remote-secret reader:
/// the cluster ID is the data key, the server parses, nothing is flagged.
#[test]
fn strait_reads_it_back() {
    let mut r = req();
    r.token = Some("from-a-file\n");
    r.server = Some("https://203.0.113.10:6443");
    let text = yaml::to_stream(&[create(&r).expect("secret")]);
    let mut loader = strait_api::Loader::new();
    loader.add_text("remote-secret.yaml", &text);
    let loaded = loader.finish();
    assert!(loaded.diagnostics.is_empty(), "{:?}", loaded.diagnostics);
    let obj = loaded.objects.first().expect("one object");
    assert!(strait_model::trust::is_remote_secret(obj.labels()));
    let secret = obj.secret().expect("a Secret");
    let id = ClusterId(0);
    let read = remote_secret(
        id,
        ObjId {
            cluster: id,
            index: 0,
        },
        secret,
    );
    assert_eq!(read.clusters.len(), 1);
    let c = &read.clusters[0];
    assert_eq!(c.cluster_id, "cluster2");
    assert_eq!(c.server.as_deref(), Some("https://203.0.113.10:6443"));
    assert_eq!(c.problem, None);
    assert!(text.contains("token: from-a-file\n"), "{text}");
}

#[test]
fn other_authentication_is_refused_by_name() {
    let mut r = req();
    r.context = Some("eks");
    let e = create(&r).expect_err("exec is not a bearer token");
    let text = e.to_string();
    assert!(matches!(e, RemoteSecretError::NotBearer { .. }), "{e:?}");
    assert!(text.contains("/home/me/.kube/config"), "{text}");
    assert!(text.contains("\"aws\""), "{text}");
    assert!(text.contains("exec plugin"), "{text}");
    assert!(text.contains("--token-file"), "{text}");
    // With a token, the CA file is the next problem, and it says how to fix it.
    r.token = Some("t");
    let e = create(&r).expect_err("a CA file cannot travel");
    assert!(e.to_string().contains("--flatten"), "{e}");
}

#[test]
fn bad_requests() {
    let mut r = req();
    r.context = Some("gke");
    let e = create(&r).expect_err("no such context");
    assert!(e.to_string().contains("contexts: aks, eks"), "{e}");
    let mut r = req();
    r.name = "Cluster_2";
    assert!(matches!(create(&r), Err(RemoteSecretError::Name(_))));
    let mut r = req();
    r.kubeconfig = "clusters: [";
    assert!(matches!(create(&r), Err(RemoteSecretError::Parse { .. })));
    let mut r = req();
    r.token = Some("  \n");
    assert_eq!(create(&r), Err(RemoteSecretError::EmptyToken));
    let no_current = KUBECONFIG.replace("current-context: aks\n", "");
    let mut r = req();
    r.kubeconfig = &no_current;
    let e = create(&r).expect_err("no current context");
    assert!(e.to_string().contains("--context"), "{e}");
}
