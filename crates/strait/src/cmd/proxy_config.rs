//! `strait proxy-config`: what one proxy holds, read from its admin port, in istioctl's
//! columns; of a local run, or (`--kubeconfig`, `--context`) of clusters, through their API
//! servers' pod proxy. Only the reading differs ([`Running`]).

use std::process::ExitCode;

use anyhow::{Context, bail};
use strait_model::compile::{HttpAction, ProxyConfig, RequestMatch, StrMatch};

use super::running::Running;
use crate::cli::{ConfigSection, ProxyConfigArgs, TableFormat};

pub fn run(args: &ProxyConfigArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mesh = Running::open(&args.state, &args.clusters, &runtime)?;
    let pod = super::target::find_proxy(&mesh.st, &args.target)?;
    if !pod.sidecar {
        bail!("{}: the pod has no proxy", args.target);
    }
    let at = mesh.proxy_at(pod);
    let dump = runtime.block_on(fetch_dump(&mesh, pod))?;
    let config: ProxyConfig =
        serde_json::from_value(dump.get("config").cloned().unwrap_or_default())
            .with_context(|| format!("{at}: unexpected config dump"))?;
    let filter = Filter {
        fqdn: args.fqdn.as_deref(),
        port: args.port,
        ejected: dump.get("ejected"),
    };
    let text = match (args.section, args.output) {
        (ConfigSection::Clusters, TableFormat::Table) => clusters_table(&config, &filter),
        (ConfigSection::Endpoints, TableFormat::Table) => endpoints_table(&config, &filter),
        (ConfigSection::Routes, TableFormat::Table) => routes_table(&config, &filter),
        (ConfigSection::Listeners, TableFormat::Table) => listeners_table(&config),
        (section, TableFormat::Json) => {
            let v = section_json(&config, section, &filter);
            serde_json::to_string_pretty(&v)? + "\n"
        }
    };
    crate::out::print(&text)?;
    Ok(ExitCode::SUCCESS)
}

/// The proxy's `/config_dump`.
pub(super) async fn fetch_dump(
    mesh: &Running,
    pod: &strait_local::up::state::PodState,
) -> anyhow::Result<serde_json::Value> {
    let at = mesh.proxy_at(pod);
    let (status, body) = mesh.proxy_get(pod, "/config_dump").await?;
    if !status.is_success() {
        bail!("{at}/config_dump answered {status}");
    }
    serde_json::from_slice(&body).with_context(|| format!("{at}/config_dump: not JSON"))
}

pub struct Filter<'a> {
    pub fqdn: Option<&'a str>,
    pub port: Option<u32>,
    /// The dump's `ejected`: cluster → `address:port` → milliseconds left.
    pub ejected: Option<&'a serde_json::Value>,
}

impl Filter<'_> {
    fn keeps(&self, host: &str, port: u32) -> bool {
        self.fqdn.is_none_or(|f| host.contains(f)) && self.port.is_none_or(|p| p == port)
    }
}

pub fn clusters_table(c: &ProxyConfig, f: &Filter<'_>) -> String {
    let mut rows: Vec<Vec<String>> = c
        .clusters
        .values()
        .filter(|cl| f.keeps(&cl.host, cl.port))
        .map(|cl| {
            vec![
                cl.host.clone(),
                cl.port.to_string(),
                if cl.subset.is_empty() {
                    "-".into()
                } else {
                    cl.subset.clone()
                },
                "outbound".into(),
                "EDS".into(),
                cl.destination_rule.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    rows.sort_by(|a, b| {
        (&a[0], a[1].parse::<u32>().ok(), &a[2]).cmp(&(&b[0], b[1].parse::<u32>().ok(), &b[2]))
    });
    if f.fqdn.is_none() {
        rows.extend(
            c.inbound
                .values()
                .filter(|i| f.port.is_none_or(|p| p == i.port))
                .map(|i| {
                    vec![
                        String::new(),
                        i.port.to_string(),
                        "-".into(),
                        "inbound".into(),
                        "STATIC".into(),
                        "-".into(),
                    ]
                }),
        );
    }
    crate::out::table(
        &[
            "SERVICE FQDN",
            "PORT",
            "SUBSET",
            "DIRECTION",
            "TYPE",
            "DESTINATION RULE",
        ],
        &rows,
    )
}

pub fn endpoints_table(c: &ProxyConfig, f: &Filter<'_>) -> String {
    let mut clusters: Vec<_> = c
        .clusters
        .values()
        .filter(|cl| f.keeps(&cl.host, cl.port))
        .collect();
    clusters.sort_by(|a, b| (&a.host, a.port, &a.subset).cmp(&(&b.host, b.port, &b.subset)));
    let rows: Vec<Vec<String>> = clusters
        .into_iter()
        .flat_map(|cl| {
            cl.endpoints.iter().map(|e| {
                let dash = |v: &str| {
                    if v.is_empty() {
                        "-".to_string()
                    } else {
                        v.to_string()
                    }
                };
                vec![
                    format!("{}:{}", e.address, e.port),
                    // Only ready endpoints are sent; gateways that stop answering are marked.
                    if e.unhealthy { "UNHEALTHY" } else { "HEALTHY" }.into(),
                    // Ejected by outlier detection: Envoy's FAILED.
                    match f
                        .ejected
                        .and_then(|j| j.get(&cl.name))
                        .and_then(|c| c.get(format!("{}:{}", e.address, e.port)))
                    {
                        Some(_) => "FAILED".into(),
                        None => "OK".into(),
                    },
                    cl.name.clone(),
                    dash(&e.workload.cluster),
                    dash(&e.workload.network),
                    if e.via_gateway {
                        format!("gateway of {}", dash(&e.workload.network))
                    } else if e.workload.pod.is_empty() {
                        "-".into()
                    } else {
                        e.workload.pod.clone()
                    },
                ]
            })
        })
        .collect();
    crate::out::table(
        &[
            "ENDPOINT",
            "STATUS",
            "OUTLIER CHECK",
            "CLUSTER",
            "CLUSTER ID",
            "NETWORK",
            "VIA",
        ],
        &rows,
    )
}

/// A gateway's listeners: port, where it binds, what serves it.
pub fn listeners_table(c: &ProxyConfig) -> String {
    use strait_model::compile::{ListenerKind, TlsAction};
    let mut rows = Vec::new();
    for l in c.listeners.values() {
        let mut addrs = vec![format!("pod:{}", l.bind_port)];
        addrs.extend(l.public.iter().map(|a| format!("{a}:{}", l.port)));
        let what: Vec<String> = match &l.kind {
            ListenerKind::Health => vec!["health (/healthz/ready)".into()],
            ListenerKind::Http { vhosts } => vhosts
                .iter()
                .map(|v| format!("HTTP {}", v.domains.join(",")))
                .collect(),
            ListenerKind::Tcp { route } => vec![format!(
                "TCP -> {}",
                route
                    .iter()
                    .map(|w| w.cluster.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )],
            ListenerKind::Tls { chains } => chains
                .iter()
                .map(|ch| {
                    let sni = if ch.server_names.is_empty() {
                        "*".to_string()
                    } else {
                        ch.server_names.join(",")
                    };
                    match &ch.action {
                        TlsAction::AutoPassthrough => format!("SNI {sni}: AUTO_PASSTHROUGH"),
                        TlsAction::Passthrough { route } => format!(
                            "SNI {sni}: PASSTHROUGH -> {}",
                            route
                                .iter()
                                .map(|w| w.cluster.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                        TlsAction::TerminateHttp { tls, .. } => format!(
                            "SNI {sni}: {} ({}) -> HTTP",
                            if tls.mutual { "MUTUAL" } else { "SIMPLE" },
                            tls.secret
                        ),
                        TlsAction::TerminateTcp { tls, .. } => format!(
                            "SNI {sni}: {} ({}) -> TCP",
                            if tls.mutual { "MUTUAL" } else { "SIMPLE" },
                            tls.secret
                        ),
                    }
                })
                .collect(),
        };
        for (i, w) in what.iter().enumerate() {
            rows.push(vec![
                if i == 0 {
                    l.port.to_string()
                } else {
                    String::new()
                },
                if i == 0 {
                    addrs.join(" ")
                } else {
                    String::new()
                },
                w.clone(),
                if i == 0 {
                    l.gateways.join(",")
                } else {
                    String::new()
                },
            ]);
        }
    }
    crate::out::table(&["PORT", "ADDRESSES", "SERVES", "GATEWAY"], &rows)
}

pub fn routes_table(c: &ProxyConfig, f: &Filter<'_>) -> String {
    let mut rows = Vec::new();
    let mut services: Vec<_> = c
        .services
        .values()
        .filter(|s| f.keeps(&s.host, s.port))
        .collect();
    services.sort_by(|a, b| (&a.host, a.port).cmp(&(&b.host, b.port)));
    for sp in services {
        let domains = domains(&sp.host, &c.mesh.node.namespace, &sp.namespace);
        for rule in &sp.http {
            rows.push(vec![
                sp.port.to_string(),
                format!("{}:{}", sp.host, sp.port),
                domains.clone(),
                matches(&rule.matches),
                action(&rule.action),
                sp.virtual_service.clone().unwrap_or_else(|| "-".into()),
            ]);
        }
        if sp.http.is_empty() && !sp.tcp.is_empty() {
            let route = sp
                .tcp
                .iter()
                .map(|w| format!("{} {}%", w.cluster, w.weight))
                .collect::<Vec<_>>()
                .join(", ");
            rows.push(vec![
                sp.port.to_string(),
                format!("{}:{}", sp.host, sp.port),
                domains.clone(),
                "(tcp)".into(),
                route,
                sp.virtual_service.clone().unwrap_or_else(|| "-".into()),
            ]);
        }
    }
    crate::out::table(
        &[
            "NAME",
            "VHOST NAME",
            "DOMAINS",
            "MATCH",
            "ROUTE",
            "VIRTUAL SERVICE",
        ],
        &rows,
    )
}

/// The names a client in `client_ns` can use for `host`, shortest first.
fn domains(host: &str, client_ns: &str, svc_ns: &str) -> String {
    let short = host.split(".svc.").next().unwrap_or(host);
    let mut names = Vec::new();
    if let Some(name) = short.strip_suffix(&format!(".{svc_ns}")) {
        if client_ns == svc_ns {
            names.push(name.to_string());
        }
        names.push(short.to_string());
    }
    names.push(host.to_string());
    names.dedup();
    names.join(", ")
}

fn str_match(m: &StrMatch) -> String {
    match m {
        StrMatch::Exact(s) => s.clone(),
        StrMatch::Prefix(s) => format!("{s}*"),
        StrMatch::Regex(r) => format!("~{r}"),
    }
}

fn matches(ms: &[RequestMatch]) -> String {
    if ms.is_empty() {
        return "/*".into();
    }
    ms.iter()
        .map(|m| {
            let mut parts = vec![m.uri.as_ref().map_or_else(|| "/*".to_string(), str_match)];
            if let Some(method) = &m.method {
                parts.push(format!("method {}", str_match(method)));
            }
            if let Some(a) = &m.authority {
                parts.push(format!("authority {}", str_match(a)));
            }
            for h in &m.headers {
                let v = h
                    .value
                    .as_ref()
                    .map_or_else(|| "(present)".to_string(), str_match);
                parts.push(format!("{}{}={v}", if h.invert { "!" } else { "" }, h.name));
            }
            for (k, v) in &m.query {
                parts.push(format!("?{k}={}", str_match(v)));
            }
            parts.join(" ")
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

fn action(a: &HttpAction) -> String {
    match a {
        HttpAction::Route(ws) if ws.len() == 1 => ws[0].cluster.clone(),
        HttpAction::Route(ws) => ws
            .iter()
            .map(|w| format!("{} {}%", w.cluster, w.weight))
            .collect::<Vec<_>>()
            .join(", "),
        HttpAction::Redirect {
            uri,
            authority,
            code,
        } => format!("redirect {code} {authority}{uri}"),
        HttpAction::Respond { status, .. } => format!("respond {status}"),
    }
}

fn section_json(c: &ProxyConfig, s: ConfigSection, f: &Filter<'_>) -> serde_json::Value {
    match s {
        ConfigSection::Clusters => serde_json::json!({
            "outbound": c.clusters.values().filter(|cl| f.keeps(&cl.host, cl.port)).collect::<Vec<_>>(),
            "inbound": c.inbound.values().collect::<Vec<_>>(),
        }),
        ConfigSection::Endpoints => serde_json::Value::Array(
            c.clusters
                .values()
                .filter(|cl| f.keeps(&cl.host, cl.port))
                .flat_map(|cl| {
                    cl.endpoints.iter().map(|e| {
                        serde_json::json!({
                            "endpoint": format!("{}:{}", e.address, e.port),
                            "status": if e.unhealthy { "UNHEALTHY" } else { "HEALTHY" },
                            "cluster": cl.name,
                            "mtls": e.mtls,
                            "weight": e.weight,
                            "via_gateway": e.via_gateway,
                            "workload": e.workload,
                        })
                    })
                })
                .collect(),
        ),
        ConfigSection::Routes => serde_json::json!(
            c.services
                .values()
                .filter(|sp| f.keeps(&sp.host, sp.port))
                .collect::<Vec<_>>()
        ),
        ConfigSection::Listeners => serde_json::json!(c.listeners.values().collect::<Vec<_>>()),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::cli::{Cli, Command, ConfigSection};

    fn parse(args: &[&str]) -> Result<ConfigSection, String> {
        let argv = ["strait", "proxy-config"].iter().chain(args);
        match Cli::try_parse_from(argv) {
            Ok(Cli {
                command: Command::ProxyConfig(a),
            }) => Ok(a.section),
            Ok(other) => Err(format!("parsed as {other:?}")),
            Err(e) => Err(e.to_string()),
        }
    }

    #[test]
    fn takes_istioctl_names_for_each_type() {
        for (names, want) in [
            (["clusters", "cluster", "c"], ConfigSection::Clusters),
            (["endpoints", "endpoint", "ep"], ConfigSection::Endpoints),
            (["routes", "route", "r"], ConfigSection::Routes),
            (["listeners", "listener", "l"], ConfigSection::Listeners),
        ] {
            for name in names {
                assert_eq!(parse(&[name, "sleep.sample"]), Ok(want), "{name}");
            }
        }
    }

    #[test]
    fn an_unknown_type_lists_the_valid_ones() {
        // istioctl's `secret`, `bootstrap`, `log` and `all` have no strait view.
        for name in ["secret", "bootstrap", "log", "all", "Route"] {
            let e = parse(&[name, "sleep.sample"]).expect_err(name);
            assert!(
                e.contains(&format!("invalid value '{name}'"))
                    && e.contains("[possible values: clusters, endpoints, routes, listeners]"),
                "{e}"
            );
        }
    }
}
