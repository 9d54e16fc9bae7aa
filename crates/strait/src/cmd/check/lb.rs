//! `strait check lb`: where requests from a workload to a service really go, against what the
//! workload's proxy configuration predicts.
//!
//! The prediction comes from the proxy's own configuration (`/config_dump`): the service
//! port's catch-all rule, its weighted clusters, and each cluster's healthy endpoints with
//! their weights (another network's gateway stands for its pods, with their count as weight).
//! What happened comes from the same proxy's `istio_requests_total` (reporter `source`), read
//! before and after sending the requests through it, so every request is counted where the
//! proxy sent it, whatever the application answers.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::{Context, bail};
use serde_json::{Value, json};
use strait_local::up::state::PodState;

use super::{ANSWER, Ctx, Problem, finish};
use crate::cli::CheckLbArgs;

/// Where requests went, by (cluster, network, version).
type Spread = BTreeMap<(String, String, String), f64>;

pub(super) fn run(ctx: &Ctx, args: &CheckLbArgs) -> anyhow::Result<ExitCode> {
    let pod = super::sidecar_client(ctx, &args.from)?;
    let dump = ctx.json(&pod.vantage(), pod.admin(), "/config_dump")?;
    let (key, port) = service_port(&dump, &args.service, &pod.namespace)?;
    let host = key
        .rsplit_once(':')
        .map_or(key.as_str(), |(h, _)| h)
        .to_string();
    let predicted = predict(&dump, &key);
    let before = counts(ctx, pod, &host)?;
    let mut failed: BTreeMap<String, u32> = BTreeMap::new();
    let authority = format!("{host}:{port}");
    for _ in 0..args.requests {
        let outcome = ctx
            .runtime
            .block_on(send(pod, &authority, &args.path))
            .unwrap_or_else(|e| format!("{e:#}"));
        if outcome != "ok" {
            *failed.entry(outcome).or_default() += 1;
        }
    }
    let after = counts(ctx, pod, &host)?;
    let mut observed: Spread = BTreeMap::new();
    for (k, n) in &after {
        let d = n - before.get(k).copied().unwrap_or(0.0);
        if d > 0.0 {
            *observed.entry(k.clone()).or_default() += d;
        }
    }
    let total: f64 = observed.values().sum();
    let mut problems = Vec::new();
    for (why, count) in &failed {
        problems.push(Problem {
            subject: format!("{count} of {} requests", args.requests),
            service: host.clone(),
            cause: why.clone(),
        });
    }
    // Compare by cluster: a gateway hop reports its cluster and network, not the version.
    let by_cluster = |s: &Spread| {
        let mut m: BTreeMap<String, f64> = BTreeMap::new();
        for ((c, _, _), v) in s {
            *m.entry(c.clone()).or_default() += v;
        }
        m
    };
    let (pc, oc) = (by_cluster(&predicted), by_cluster(&observed));
    let mut rows = Vec::new();
    for cluster in pc
        .keys()
        .chain(oc.keys())
        .collect::<std::collections::BTreeSet<_>>()
    {
        let p = pc.get(cluster).copied().unwrap_or(0.0);
        let o = if total > 0.0 {
            oc.get(cluster).copied().unwrap_or(0.0) / total
        } else {
            0.0
        };
        // Three standard deviations of a binomial share over `total` requests, and one request.
        let margin = 3.0 * (p * (1.0 - p) / total.max(1.0)).sqrt() + 1.0 / total.max(1.0);
        let off = total > 0.0 && (o - p).abs() > margin;
        if off {
            problems.push(Problem {
                subject: format!("cluster {cluster}"),
                service: host.clone(),
                cause: format!(
                    "got {:.1}% of the requests where the weights predict {:.1}% (margin {:.1}% at {total} requests)",
                    o * 100.0,
                    p * 100.0,
                    margin * 100.0
                ),
            });
        }
        rows.push((cluster.clone(), p, o, off));
    }
    let detail: Vec<Value> = observed
        .iter()
        .map(|((c, net, v), count)| {
            json!({"cluster": c, "network": net, "version": v, "requests": count.round() as u64})
        })
        .collect();
    let prediction: Vec<Value> = predicted
        .iter()
        .map(|((c, net, v), share)| json!({"cluster": c, "network": net, "version": v, "share": share}))
        .collect();
    let table_rows: Vec<Vec<String>> = observed
        .iter()
        .map(|((c, net, v), count)| {
            vec![
                c.clone(),
                net.clone(),
                v.clone(),
                format!("{count}"),
                format!(
                    "{:.1}%",
                    if total > 0.0 {
                        count / total * 100.0
                    } else {
                        0.0
                    }
                ),
            ]
        })
        .collect();
    let mut table = crate::out::table(
        &["CLUSTER", "NETWORK", "VERSION", "REQUESTS", "SHARE"],
        &table_rows,
    );
    table.push('\n');
    table.push_str(&crate::out::table(
        &["CLUSTER", "PREDICTED", "OBSERVED", "WITHIN MARGIN"],
        &rows
            .iter()
            .map(|(c, p, o, off)| {
                vec![
                    c.clone(),
                    format!("{:.1}%", p * 100.0),
                    format!("{:.1}%", o * 100.0),
                    if *off { "NO".into() } else { "yes".into() },
                ]
            })
            .collect::<Vec<_>>(),
    ));
    let data = json!({
        "service": authority, "from": args.from, "requests": args.requests,
        "counted": total.round() as u64, "observed": detail, "predicted": prediction,
        "failed": failed,
    });
    finish(args.output, data, table, &problems)
}

/// The service port `service` names, as the proxy's configuration keys it
/// (`<fqdn>:<port>`), and the port.
pub(crate) fn service_port(dump: &Value, service: &str, ns: &str) -> anyhow::Result<(String, u32)> {
    let (name, port) = match service.rsplit_once(':') {
        Some((n, p)) => (
            n,
            Some(
                p.parse::<u32>()
                    .with_context(|| format!("{service}: bad port"))?,
            ),
        ),
        None => (service, None),
    };
    let wanted = |host: &str| {
        host == name
            || host
                .strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(".svc."))
            || (!name.contains('.')
                && host
                    .strip_prefix(name)
                    .is_some_and(|r| r.starts_with(&format!(".{ns}.svc."))))
    };
    let found: Vec<(String, u32)> = dump["config"]["services"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| {
            let host = v["host"].as_str()?;
            let p = v["port"].as_u64().and_then(|p| u32::try_from(p).ok())?;
            (wanted(host) && port.is_none_or(|want| want == p)).then(|| (k.clone(), p))
        })
        .collect();
    match found.as_slice() {
        [one] => Ok(one.clone()),
        [] => bail!(
            "{service}: the workload's proxy knows no such service (is it exported to the workload's namespace?)"
        ),
        many => bail!(
            "{service}: several ports ({}); name one as {name}:<port>",
            many.iter()
                .map(|(_, p)| p.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The share of requests each (cluster, network, version) should get: the catch-all rule's
/// weighted clusters, each split over its healthy endpoints by weight.
fn predict(dump: &Value, key: &str) -> Spread {
    let svc = &dump["config"]["services"][key];
    let rule = svc["http"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["matches"].as_array().is_none_or(Vec::is_empty));
    // HTTP ports route by their catch-all rule; TCP ports by their weighted clusters.
    let list = match rule {
        Some(r) => &r["action"]["route"],
        None => &svc["tcp"],
    };
    let weighted: Vec<(String, f64)> = list
        .as_array()
        .into_iter()
        .flatten()
        .map(|w| {
            (
                w["cluster"].as_str().unwrap_or("").to_string(),
                w["weight"].as_f64().unwrap_or(0.0),
            )
        })
        .collect();
    let sum: f64 = weighted.iter().map(|(_, w)| w).sum();
    let mut out: Spread = BTreeMap::new();
    for (cluster, w) in weighted.iter().filter(|(_, w)| *w > 0.0) {
        let eps: Vec<&Value> = dump["config"]["clusters"][cluster.as_str()]["endpoints"]
            .as_array()
            .into_iter()
            .flatten()
            .collect();
        let healthy: Vec<&&Value> = eps.iter().filter(|e| e["unhealthy"] != true).collect();
        let pool = if healthy.is_empty() {
            eps.iter().collect()
        } else {
            healthy
        };
        let total: f64 = pool
            .iter()
            .map(|e| e["weight"].as_f64().unwrap_or(1.0).max(1.0))
            .sum();
        for e in pool {
            let m = &e["workload"];
            let version = m["version"]
                .as_str()
                .filter(|v| !v.is_empty())
                .unwrap_or("*");
            let k = (
                m["cluster"].as_str().unwrap_or("").to_string(),
                m["network"].as_str().unwrap_or("").to_string(),
                version.to_string(),
            );
            *out.entry(k).or_default() +=
                w / sum * e["weight"].as_f64().unwrap_or(1.0).max(1.0) / total;
        }
    }
    out
}

/// The proxy's `istio_requests_total` (reporter `source`) for `host`, by destination cluster,
/// network and version.
fn counts(ctx: &Ctx, pod: &PodState, host: &str) -> anyhow::Result<Spread> {
    let text = super::proxy_metrics(ctx, pod)?;
    let network_of = |cluster: &str| {
        ctx.mesh
            .st
            .clusters
            .iter()
            .find(|c| c.name == cluster)
            .map(|c| c.network.clone())
            .unwrap_or_default()
    };
    let mut out: Spread = BTreeMap::new();
    for (labels, value) in source_requests(&text, host) {
        let label = |k: &str| labels.get(k).cloned().unwrap_or_default();
        let cluster = label("destination_cluster");
        let k = (
            cluster.clone(),
            network_of(&cluster),
            label("destination_version"),
        );
        *out.entry(k).or_default() += value;
    }
    Ok(out)
}

/// The `istio_requests_total` series a proxy reports as the source of requests to `host`,
/// with their labels, from its Prometheus exposition.
pub(super) fn source_requests(text: &str, host: &str) -> Vec<(BTreeMap<String, String>, f64)> {
    strait_local::observe::prom::parse(text, &["istio_requests_total"])
        .into_iter()
        .filter(|s| s.label("reporter") == "source" && s.label("destination_service") == host)
        .map(|s| (s.labels, s.value))
        .collect()
}

/// Sends one GET through the pod's sidecar, from where the pod runs: "ok", or what failed.
async fn send(pod: &PodState, authority: &str, path: &str) -> anyhow::Result<String> {
    let (status, _) =
        strait_local::fetch::get_via(&pod.vantage(), pod.outbound(), authority, path, ANSWER)
            .await?;
    Ok(if status.is_server_error() {
        format!("answered {status}")
    } else {
        "ok".into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dump with helloworld split 80/20 between two subsets: v1 with two local pods, v2
    /// behind another network's gateway standing for three pods, plus an unhealthy endpoint.
    fn dump() -> Value {
        json!({"config": {
            "services": {
                "helloworld.sample.svc.cluster.local:5000": {
                    "host": "helloworld.sample.svc.cluster.local", "port": 5000,
                    "http": [
                        {"matches": [{"uri": "/admin"}], "action": {"route": [{"cluster": "x", "weight": 100}]}},
                        {"matches": [], "action": {"route": [
                            {"cluster": "v1", "weight": 80}, {"cluster": "v2", "weight": 20}
                        ]}}
                    ]
                },
                "other.sample.svc.cluster.local:80": {"host": "other.sample.svc.cluster.local", "port": 80},
                "other.sample.svc.cluster.local:81": {"host": "other.sample.svc.cluster.local", "port": 81}
            },
            "clusters": {
                "v1": {"endpoints": [
                    {"weight": 1, "workload": {"cluster": "c1", "network": "n1", "version": "v1"}},
                    {"weight": 1, "workload": {"cluster": "c1", "network": "n1", "version": "v1"}},
                    {"weight": 1, "unhealthy": true, "workload": {"cluster": "c3", "network": "n3", "version": "v1"}}
                ]},
                "v2": {"endpoints": [
                    {"weight": 3, "via_gateway": true, "workload": {"cluster": "c2", "network": "n2"}}
                ]}
            }
        }})
    }

    #[test]
    fn the_catch_all_rule_and_endpoint_weights_predict_the_split() {
        let p = predict(&dump(), "helloworld.sample.svc.cluster.local:5000");
        let share = |c: &str, n: &str, v: &str| {
            p.get(&(c.into(), n.into(), v.into()))
                .map(|s| (s * 1000.0).round() / 1000.0)
        };
        assert_eq!(share("c1", "n1", "v1"), Some(0.8));
        assert_eq!(share("c2", "n2", "*"), Some(0.2));
        assert_eq!(
            share("c3", "n3", "v1"),
            None,
            "unhealthy endpoints take nothing"
        );
    }

    #[test]
    fn a_service_is_named_as_users_name_it() {
        let d = dump();
        let key = "helloworld.sample.svc.cluster.local:5000".to_string();
        for name in [
            "helloworld.sample",
            "helloworld.sample.svc.cluster.local",
            "helloworld.sample:5000",
        ] {
            assert_eq!(
                service_port(&d, name, "default").ok(),
                Some((key.clone(), 5000)),
                "{name}"
            );
        }
        assert_eq!(
            service_port(&d, "helloworld", "sample").ok(),
            Some((key, 5000))
        );
        let e = service_port(&d, "other.sample", "default")
            .unwrap_err()
            .to_string();
        assert!(e.contains("several ports (80, 81)"), "{e}");
        assert!(service_port(&d, "nothing.sample", "default").is_err());
        assert!(service_port(&d, "helloworld.sample:x", "default").is_err());
    }
}
