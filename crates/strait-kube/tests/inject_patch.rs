//! The injector's answers to hand-written AdmissionReviews, with each patch applied to the pod
//! it was made for: the assertions read the pod the API server would store.

mod support;

use serde_json::{Value, json};
use strait_kube::inject::{Config, review};
use support::{apply, config, container, names, review_json};

/// Reviews `doc` with `config`; returns the response and the patched pod.
fn injected(doc: &Value, config: &Config) -> (Value, Value) {
    let body = serde_json::to_vec(doc).expect("encodes");
    let answer = review(&body, config).expect("a review");
    let response = serde_json::to_value(&answer).expect("encodes")["response"].clone();
    let mut pod = doc["request"]["object"].clone();
    if let Some(patch) = answer.response.decoded_patch() {
        apply(&mut pod, &patch);
    }
    (response, pod)
}

#[test]
fn a_deployments_pod_gets_the_sidecar() {
    let doc = review_json("deployment-pod.json");
    let (response, pod) = injected(&doc, &config());
    assert_eq!(response["uid"], doc["request"]["uid"]);
    assert_eq!(response["allowed"], true);
    assert_eq!(response["patchType"], "JSONPatch");
    assert!(response.get("warnings").is_none(), "{response}");

    let labels = &pod["metadata"]["labels"];
    assert_eq!(labels["security.istio.io/tlsMode"], "istio");
    assert_eq!(labels["service.istio.io/canonical-name"], "sleep");
    assert_eq!(labels["service.istio.io/canonical-revision"], "latest");
    assert_eq!(labels["topology.istio.io/network"], "network1");
    assert_eq!(labels["app"], "sleep", "the pod's own labels stay");
    let annotations = &pod["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/scrape"], "true");
    assert_eq!(annotations["prometheus.io/port"], "15020");
    assert_eq!(annotations["prometheus.io/path"], "/stats/prometheus");
    assert_eq!(
        annotations["kubectl.kubernetes.io/default-container"],
        "sleep"
    );
    assert_eq!(
        annotations["kubectl.kubernetes.io/default-logs-container"],
        "sleep"
    );
    assert_eq!(proxy_startup_path(&pod), "/healthz/ready");
    let status: Value = serde_json::from_str(
        annotations["sidecar.istio.io/status"]
            .as_str()
            .expect("status"),
    )
    .expect("status is JSON");
    assert_eq!(status["containers"], json!(["istio-proxy"]));
    assert_eq!(status["initContainers"], json!(["istio-init"]));

    // Kubernetes 1.28 (the default): a regular container, after the application.
    assert_eq!(names(&pod, "containers"), ["sleep", "istio-proxy"]);
    assert_eq!(names(&pod, "initContainers"), ["istio-init"]);
    let proxy = container(&pod, "containers", "istio-proxy");
    assert_eq!(proxy["image"], "ghcr.io/strait-mesh/strait:0.1.0");
    assert_eq!(proxy["args"], json!(["proxy", "--bootstrap-env"]));
    assert!(proxy.get("restartPolicy").is_none());
    assert_eq!(
        proxy["ports"],
        json!([
            {"containerPort": 15090, "name": "http-envoy-prom", "protocol": "TCP"},
            {"containerPort": 15021, "name": "status-port", "protocol": "TCP"}
        ])
    );
    assert_eq!(proxy["readinessProbe"]["httpGet"]["path"], "/healthz/ready");
    assert_eq!(proxy["readinessProbe"]["httpGet"]["port"], 15021);
    // proxyCPU annotation, other values Istio's defaults.
    assert_eq!(
        proxy["resources"],
        json!({"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"cpu": "2000m", "memory": "1024Mi"}})
    );
    let sc = &proxy["securityContext"];
    assert_eq!(
        (sc["runAsUser"].clone(), sc["runAsGroup"].clone()),
        (json!(1337), json!(1337))
    );
    assert_eq!(sc["runAsNonRoot"], true);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
    let env: Vec<&str> = proxy["env"]
        .as_array()
        .expect("env")
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    for var in [
        "POD_NAME",
        "POD_NAMESPACE",
        "INSTANCE_IP",
        "SERVICE_ACCOUNT",
        "CA_ADDR",
    ] {
        assert!(env.contains(&var), "{var} missing from {env:?}");
    }
    let network = proxy["env"]
        .as_array()
        .and_then(|a| a.iter().find(|e| e["name"] == "ISTIO_META_NETWORK"))
        .expect("network env");
    assert_eq!(network["value"], "network1");

    let init = container(&pod, "initContainers", "istio-init");
    assert_eq!(init["args"], json!(["init", "--proxy-uid", "1337"]));
    assert_eq!(
        init["securityContext"]["capabilities"]["add"],
        json!(["NET_ADMIN", "NET_RAW"])
    );
    let volumes: Vec<&str> = pod["spec"]["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    assert_eq!(
        volumes,
        ["kube-api-access-x7k2p", "istio-token", "istiod-ca-cert"]
    );
}

#[test]
fn injecting_twice_changes_nothing() {
    let doc = review_json("deployment-pod.json");
    let (_, pod) = injected(&doc, &config());
    let mut again = doc.clone();
    again["request"]["object"] = pod.clone();
    let (response, pod_again) = injected(&again, &config());
    assert!(response.get("patch").is_none(), "{response}");
    assert_eq!(pod, pod_again);
}

#[test]
fn a_jobs_pod_as_regular_container_warns_and_passes_capture_annotations() {
    let doc = review_json("job-pod.json");
    let (response, pod) = injected(&doc, &config());
    let warnings = response["warnings"].as_array().expect("warnings");
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().is_some_and(|w| w.contains("Job never finishes"))),
        "{warnings:?}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().is_some_and(|w| w.contains("proxyMemoryLimit"))),
        "{warnings:?}"
    );
    // istio-init first, before the application's own init container.
    assert_eq!(names(&pod, "initContainers"), ["istio-init", "wait-db"]);
    let init = container(&pod, "initContainers", "istio-init");
    assert_eq!(
        init["args"],
        json!([
            "init",
            "--exclude-outbound-ip-ranges",
            "10.96.0.1/32",
            "--exclude-inbound-ports",
            "9090,9091",
            "--proxy-uid",
            "1337"
        ])
    );
    assert_eq!(
        pod["metadata"]["labels"]["service.istio.io/canonical-name"],
        "migrate"
    );
    assert_eq!(
        pod["metadata"]["labels"]["service.istio.io/canonical-revision"],
        "v2"
    );
    let proxy = container(&pod, "containers", "istio-proxy");
    assert_eq!(proxy["resources"]["limits"]["memory"], "1024Mi");
}

#[test]
fn native_sidecars_from_kubernetes_1_29() {
    let mut c = config();
    c.kubernetes_version = "1.30".into();
    let (response, pod) = injected(&review_json("job-pod.json"), &c);
    assert_eq!(names(&pod, "containers"), ["migrate"]);
    assert_eq!(
        names(&pod, "initContainers"),
        ["istio-init", "istio-proxy", "wait-db"]
    );
    let proxy = container(&pod, "initContainers", "istio-proxy");
    assert_eq!(proxy["restartPolicy"], "Always");
    assert_eq!(proxy["startupProbe"]["httpGet"]["path"], "/healthz/ready");
    let warnings = response["warnings"].as_array().cloned().unwrap_or_default();
    assert!(
        !warnings
            .iter()
            .any(|w| w.as_str().is_some_and(|w| w.contains("never finishes"))),
        "{warnings:?}"
    );
}

#[test]
fn the_gateway_template_fills_in_the_image_only() {
    let mut c = config();
    c.namespaces.clear();
    let doc = review_json("gateway-pod.json");
    let (response, pod) = injected(&doc, &c);
    assert_eq!(response["allowed"], true);
    assert_eq!(names(&pod, "containers"), ["istio-proxy"]);
    assert!(
        pod["spec"].get("initContainers").is_none(),
        "no capture for a gateway"
    );
    let proxy = container(&pod, "containers", "istio-proxy");
    assert_eq!(proxy["image"], "ghcr.io/strait-mesh/strait:0.1.0");
    assert_eq!(
        proxy["ports"][0]["containerPort"], 15443,
        "its own ports stay"
    );
    let env = proxy["env"].as_array().expect("env");
    assert_eq!(env[0]["name"], "ISTIO_META_REQUESTED_NETWORK_VIEW");
    assert!(
        env.iter()
            .any(|e| e["name"] == "STRAIT_ROLE" && e["value"] == "gateway")
    );
    assert_eq!(
        pod["metadata"]["labels"]["service.istio.io/canonical-name"],
        "istio-eastwestgateway"
    );
}

#[test]
fn opted_out_host_network_and_unselected_pods_are_untouched() {
    let base = review_json("deployment-pod.json");
    let mut cases = Vec::new();
    let mut opt_out = base.clone();
    opt_out["request"]["object"]["metadata"]["labels"]["sidecar.istio.io/inject"] = json!("false");
    cases.push(("opt-out label", opt_out));
    let mut host = base.clone();
    host["request"]["object"]["spec"]["hostNetwork"] = json!(true);
    cases.push(("host network", host));
    let mut legacy = base.clone();
    legacy["request"]["namespace"] = json!("legacy");
    cases.push(("istio-injection=disabled", legacy));
    let mut system = base.clone();
    system["request"]["namespace"] = json!("kube-system");
    cases.push(("kube-system", system));
    let mut other_rev = base.clone();
    other_rev["request"]["namespace"] = json!("canary-apps");
    cases.push(("another revision's namespace", other_rev));
    for (what, doc) in cases {
        let (response, pod) = injected(&doc, &config());
        assert_eq!(response["allowed"], true, "{what}");
        assert!(response.get("patch").is_none(), "{what}: {response}");
        assert_eq!(pod, doc["request"]["object"], "{what}");
    }
}

#[test]
fn a_revision_injects_its_own_namespaces() {
    let mut canary = config();
    canary.revision = "canary".into();
    canary.default_revision = false;
    let mut doc = review_json("deployment-pod.json");
    doc["request"]["namespace"] = json!("canary-apps");
    let (_, pod) = injected(&doc, &canary);
    assert_eq!(names(&pod, "containers"), ["sleep", "istio-proxy"]);
    assert_eq!(pod["metadata"]["annotations"]["istio.io/rev"], "canary");
    // ...and not the default revision's.
    let (_, pod) = injected(&review_json("deployment-pod.json"), &canary);
    assert_eq!(names(&pod, "containers"), ["sleep"]);
}

#[test]
fn unreadable_reviews_are_errors_or_denials_never_panics() {
    let c = config();
    for bad in [
        &b"not json"[..],
        b"{}",
        br#"{"apiVersion":"v1","kind":"Pod"}"#,
    ] {
        assert!(review(bad, &c).is_err(), "{}", String::from_utf8_lossy(bad));
    }
    let no_uid = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": ""}});
    assert!(review(no_uid.to_string().as_bytes(), &c).is_err());

    let mut bad_pod = review_json("deployment-pod.json");
    bad_pod["request"]["object"]["spec"]["containers"] = json!("sleep");
    let answer = review(bad_pod.to_string().as_bytes(), &c).expect("a review");
    assert!(!answer.response.allowed);
    let status = answer.response.status.as_ref().expect("a status");
    assert!(
        status.message.contains("cannot be read"),
        "{}",
        status.message
    );

    let mut update = review_json("deployment-pod.json");
    update["request"]["operation"] = json!("UPDATE");
    let answer = review(update.to_string().as_bytes(), &c).expect("a review");
    assert!(answer.response.allowed && answer.response.patch.is_none());
    assert!(answer.response.warnings[0].contains("UPDATE Pod"));
}

/// The startup probe's path of the pod's proxy (a regular container).
fn proxy_startup_path(pod: &Value) -> String {
    container(pod, "containers", "istio-proxy")["startupProbe"]["httpGet"]["path"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn an_unlisted_namespace_is_the_api_servers_choice() {
    // The webhook's namespaceSelector chose it; the injector's config does not know it.
    let mut doc = review_json("deployment-pod.json");
    doc["request"]["namespace"] = json!("elsewhere");
    let (_, pod) = injected(&doc, &config());
    assert_eq!(names(&pod, "containers"), ["sleep", "istio-proxy"]);
    // The pod's own labels still decide: another revision's pod is not this injector's.
    doc["request"]["object"]["metadata"]["labels"]["istio.io/rev"] = json!("canary");
    let (_, pod) = injected(&doc, &config());
    assert_eq!(names(&pod, "containers"), ["sleep"]);
}
