//! The Helm chart offered beside `strait install` (`strait install --helm-chart DIR`), made
//! from the same renderer so that the two cannot drift.
//!
//! # How the chart is made
//!
//! [`render`] is rendered once per *shape* of install: each role (a primary, a primary whose
//! control plane is exposed to remotes, a remote whose primary is an IPv4 address, an IPv6
//! address or a DNS name), with and without a network, and for a remote with and without a
//! named primary cluster. Every value is a sentinel (`zzclusterzz`, `192.0.2.213`, ...) that
//! is then replaced in the YAML text by its `{{ .Values.x }}` expression (quoted where the
//! sentinel was the whole scalar, so a network named `1234` stays a string). An object that is
//! the same in every shape is written as is; one that differs (or exists in some shapes only)
//! gets one branch per distinct text, chosen by the shape the values describe
//! (`strait.shape` in `_helpers.tpl`). Objects keep `strait install`'s order: template files
//! are numbered in apply order.
//!
//! Values are checked by the chart as [`Options::validate`] checks them (`strait.validate`):
//! the text substitution is exact only for values the renderer would accept, and a value it
//! would refuse must not reach the cluster through the chart either. A test renders the chart
//! with Helm's own engine and compares the objects with `strait install --dry-run` for the
//! same values.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{InstallError, Options, Role, render, yaml};

/// One file of the chart: its path under the chart directory, and its text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChartFile {
    pub path: String,
    pub text: String,
}

/// Stand-ins for the values, chosen to be valid wherever the value goes and to occur nowhere
/// else in the output; and the Helm expression each becomes.
const SUBSTITUTIONS: &[(&str, &str)] = &[
    ("zzprimaryclusterzz", ".Values.primaryCluster"),
    ("zzprimaryzz.example", ".Values.primaryAddress"),
    ("192.0.2.213", ".Values.primaryAddress"),
    ("2001:db8::d5", ".Values.primaryAddress"),
    ("zzclusterzz", ".Values.clusterName"),
    ("zznetworkzz", ".Values.network"),
    ("zzmeshzz", ".Values.meshId"),
    ("zztrustdomainzz", ".Values.trustDomain"),
    ("zzimagezz", ".Values.image"),
];

/// One shape of install: its name in `strait.shape` and the sentinel options that render it.
struct Shape {
    name: String,
    opts: Options,
}

fn shapes() -> Vec<Shape> {
    let remote = |addr: &str, leader: Option<&str>| Role::Remote {
        primary_address: addr.to_string(),
        primary_cluster: leader.map(str::to_string),
    };
    let mut roles: Vec<(&str, Option<&str>, Role)> = vec![
        (
            "primary",
            None,
            Role::Primary {
                serves_remotes: false,
            },
        ),
        (
            "primary-exposed",
            None,
            Role::Primary {
                serves_remotes: true,
            },
        ),
    ];
    for (name, addr) in [
        ("remote-ipv4", "192.0.2.213"),
        ("remote-ipv6", "2001:db8::d5"),
        ("remote-dns", "zzprimaryzz.example"),
    ] {
        roles.push((
            name,
            Some("leader"),
            remote(addr, Some("zzprimaryclusterzz")),
        ));
        roles.push((name, Some("any"), remote(addr, None)));
    }
    let mut out = Vec::new();
    for (role_name, leader, role) in roles {
        for (net_name, network) in [("net", "zznetworkzz"), ("nonet", "")] {
            out.push(Shape {
                name: format!("{role_name}/{net_name}/{}", leader.unwrap_or("-")),
                opts: Options {
                    mesh_id: "zzmeshzz".into(),
                    cluster: "zzclusterzz".into(),
                    network: network.into(),
                    role: role.clone(),
                    trust_domain: "zztrustdomainzz".into(),
                    image: "zzimagezz".into(),
                },
            });
        }
    }
    out
}

/// Replaces the sentinels of one line of YAML by Helm expressions.
fn substitute_line(line: &str) -> String {
    for (sentinel, expr) in SUBSTITUTIONS {
        if let Some(prefix) = line.strip_suffix(sentinel)
            && (prefix.ends_with(": ") || prefix.ends_with("- "))
        {
            return format!("{prefix}{{{{ {expr} | quote }}}}");
        }
    }
    let mut out = line.to_string();
    for (sentinel, expr) in SUBSTITUTIONS {
        out = out.replace(sentinel, &format!("{{{{ {expr} }}}}"));
    }
    out
}

fn templated(object: &Value) -> String {
    yaml::to_document(object)
        .lines()
        .map(substitute_line)
        .collect::<Vec<_>>()
        .join("\n")
}

/// An object's identity across shapes.
fn key(o: &Value) -> String {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    format!(
        "{}/{}/{}/{}",
        s(&o["apiVersion"]),
        s(&o["kind"]),
        s(&o["metadata"]["namespace"]),
        s(&o["metadata"]["name"])
    )
}

/// A file name for an object: its place in apply order, kind and name.
fn file_name(index: usize, o: &Value) -> String {
    let clean = |s: &str| {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect::<String>()
    };
    let kind = clean(o["kind"].as_str().unwrap_or("object"));
    let name = clean(o["metadata"]["name"].as_str().unwrap_or("unnamed"));
    format!("templates/{index:03}-{kind}-{name}.yaml")
}

/// An object's templates, in apply order: `(key, [(text, shapes it has that text in)])`.
type Branches = Vec<(String, Vec<(String, Vec<String>)>)>;

fn branches() -> Result<(Branches, BTreeMap<String, Value>), InstallError> {
    let mut order: Vec<String> = Vec::new();
    let mut texts: BTreeMap<String, Vec<(String, Vec<String>)>> = BTreeMap::new();
    let mut sample: BTreeMap<String, Value> = BTreeMap::new();
    for shape in shapes() {
        let objects = render(&shape.opts)?;
        // Objects new to this shape go after the last object it shares with those before,
        // which keeps every shape's own order (checked by the chart test end to end).
        let mut insert_at = 0;
        for o in &objects {
            let k = key(o);
            match order.iter().position(|x| *x == k) {
                Some(i) => insert_at = i + 1,
                None => {
                    order.insert(insert_at, k.clone());
                    insert_at += 1;
                }
            }
            sample.entry(k.clone()).or_insert_with(|| o.clone());
            let text = templated(o);
            let entry = texts.entry(k).or_default();
            match entry.iter_mut().find(|(t, _)| *t == text) {
                Some((_, shapes)) => shapes.push(shape.name.clone()),
                None => entry.push((text, vec![shape.name.clone()])),
            }
        }
    }
    let out = order
        .into_iter()
        .map(|k| {
            let b = texts.remove(&k).unwrap_or_default();
            (k, b)
        })
        .collect();
    Ok((out, sample))
}

fn quote_list(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn template(branches: &[(String, Vec<String>)], all: usize, validate: bool) -> String {
    let mut out = String::from("# Generated by `strait install --helm-chart`; do not edit.\n");
    if validate {
        out.push_str("{{- include \"strait.validate\" . }}\n");
    }
    if let [(text, shapes)] = branches
        && shapes.len() == all
    {
        out.push_str(text);
        out.push('\n');
        return out;
    }
    out.push_str("{{- $shape := include \"strait.shape\" . }}\n");
    for (i, (text, shapes)) in branches.iter().enumerate() {
        let keyword = if i == 0 { "if" } else { "else if" };
        out.push_str(&format!(
            "{{{{- {keyword} has $shape (list {}) }}}}\n{text}\n",
            quote_list(shapes)
        ));
    }
    out.push_str("{{- end }}\n");
    out
}

/// The chart: its templates from the renderer, and `values.yaml` defaults from `opts` (so the
/// chart with its defaults renders what `strait install` renders for `opts`).
pub fn chart(opts: &Options) -> Result<Vec<ChartFile>, InstallError> {
    opts.validate()?;
    let all = shapes().len();
    let (objects, sample) = branches()?;
    let mut files = vec![
        ChartFile {
            path: "Chart.yaml".into(),
            text: chart_yaml(),
        },
        ChartFile {
            path: "values.yaml".into(),
            text: values_yaml(opts),
        },
        ChartFile {
            path: "templates/_helpers.tpl".into(),
            text: HELPERS.to_string(),
        },
    ];
    for (i, (k, b)) in objects.iter().enumerate() {
        let Some(o) = sample.get(k) else { continue };
        files.push(ChartFile {
            path: file_name(i, o),
            text: template(b, all, i == 0),
        });
    }
    Ok(files)
}

fn chart_yaml() -> String {
    let version = env!("CARGO_PKG_VERSION");
    format!(
        "# Generated by `strait install --helm-chart`; do not edit.\n\
         apiVersion: v2\n\
         name: strait\n\
         description: strait, a multi-cluster service mesh that speaks Istio's API, for one cluster of a mesh (the objects of `strait install`)\n\
         type: application\n\
         version: {version}\n\
         appVersion: {version:?}\n\
         home: https://github.com/strait-mesh/strait\n"
    )
}

fn values_yaml(opts: &Options) -> String {
    let (role, exposed, address, leader) = match &opts.role {
        Role::Primary { serves_remotes } => ("primary", *serves_remotes, "", ""),
        Role::Remote {
            primary_address,
            primary_cluster,
        } => (
            "remote",
            false,
            primary_address.as_str(),
            primary_cluster.as_deref().unwrap_or(""),
        ),
    };
    let q = |s: &str| Value::String(s.to_string()).to_string();
    format!(
        "# Generated by `strait install --helm-chart`; do not edit.\n\
         # The same options as `strait install`; the defaults render what it renders for them.\n\
         \n\
         # The cluster's name in the mesh (Istio's cluster ID): a DNS label, unique in the mesh.\n\
         clusterName: {}\n\
         # The cluster's network; empty: one flat network with every other cluster without one.\n\
         network: {}\n\
         # The mesh ID (`strait install` defaults it to the trust domain).\n\
         meshId: {}\n\
         # The mesh's trust domain (SPIFFE IDs are spiffe://<trustDomain>/ns/<ns>/sa/<sa>).\n\
         trustDomain: {}\n\
         # primary: runs a control plane; remote: configured by a primary's control plane.\n\
         role: {}\n\
         # A primary only: expose the control plane through the east-west gateway, for remotes.\n\
         exposeIstiod: {exposed}\n\
         # A remote only: its primary's east-west gateway, an IP address (IPv6 in its\n\
         # canonical form) or a DNS name.\n\
         primaryAddress: {}\n\
         # A remote only: the primary that alone may lead it; empty: any primary that reads it.\n\
         primaryCluster: {}\n\
         # The strait image of the control plane, the injector, the gateways and the sidecars.\n\
         image: {}\n",
        q(&opts.cluster),
        q(&opts.network),
        q(&opts.mesh_id),
        q(&opts.trust_domain),
        q(role),
        q(address),
        q(leader),
        q(&opts.image),
    )
}

/// The shape the values describe, and the checks `Options::validate` makes.
const HELPERS: &str = r#"{{/* Generated by `strait install --helm-chart`; do not edit. */}}

{{/*
The shape of install the values describe: role (and for a remote, how its primary is
addressed), whether the cluster has a network, and for a remote whether it names its primary.
Every template chooses its text by it.
*/}}
{{- define "strait.shape" -}}
{{- $role := .Values.role -}}
{{- $leader := "-" -}}
{{- if eq .Values.role "primary" -}}
{{- if .Values.exposeIstiod }}{{ $role = "primary-exposed" }}{{ end -}}
{{- else -}}
{{- $addr := toString .Values.primaryAddress -}}
{{- if regexMatch "^[0-9]{1,3}(\\.[0-9]{1,3}){3}$" $addr -}}
{{- $role = "remote-ipv4" -}}
{{- else if contains ":" $addr -}}
{{- $role = "remote-ipv6" -}}
{{- else -}}
{{- $role = "remote-dns" -}}
{{- end -}}
{{- $leader = ternary "leader" "any" (ne (toString .Values.primaryCluster) "") -}}
{{- end -}}
{{- printf "%s/%s/%s" $role (ternary "net" "nonet" (ne (toString .Values.network) "")) $leader -}}
{{- end -}}

{{/* The checks `strait install` makes, so a value it would refuse is refused here too. */}}
{{- define "strait.validate" -}}
{{- $label := "^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$" -}}
{{- $dnsLabel := "[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?" -}}
{{- $dnsName := printf "^%s(\\.%s)*$" $dnsLabel $dnsLabel -}}
{{- $v := .Values -}}
{{- if not (regexMatch "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$" (toString $v.clusterName)) -}}
{{- fail (printf "clusterName %q is not a DNS label (lowercase letters, digits and '-', at most 63)" (toString $v.clusterName)) -}}
{{- end -}}
{{- if and (ne (toString $v.network) "") (not (regexMatch $label (toString $v.network))) -}}
{{- fail (printf "network %q is not a valid label value" (toString $v.network)) -}}
{{- end -}}
{{- if and (ne (toString $v.meshId) "") (not (regexMatch $label (toString $v.meshId))) -}}
{{- fail (printf "meshId %q is not a valid label value" (toString $v.meshId)) -}}
{{- end -}}
{{- if or (gt (len (toString $v.trustDomain)) 253) (not (regexMatch $dnsName (toString $v.trustDomain))) -}}
{{- fail (printf "trustDomain %q is not a DNS name" (toString $v.trustDomain)) -}}
{{- end -}}
{{- if or (eq (toString $v.image) "") (regexMatch "\\s" (toString $v.image)) -}}
{{- fail (printf "image %q is empty or contains whitespace" (toString $v.image)) -}}
{{- end -}}
{{- if not (has $v.role (list "primary" "remote")) -}}
{{- fail (printf "role %q is neither primary nor remote" (toString $v.role)) -}}
{{- end -}}
{{- if eq $v.role "remote" -}}
{{- $addr := toString $v.primaryAddress -}}
{{- if eq $addr "" -}}
{{- fail "primaryAddress is empty: give the primary's east-west gateway's IP address or DNS name" -}}
{{- end -}}
{{- $ipv4 := regexMatch "^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}$" $addr -}}
{{- $ipv6 := and (contains ":" $addr) (regexMatch "^[0-9a-f:.]+$" $addr) -}}
{{- $dns := and (not (regexMatch "^[0-9.]+$" $addr)) (le (len $addr) 253) (regexMatch $dnsName $addr) -}}
{{- if not (or $ipv4 $ipv6 $dns) -}}
{{- fail (printf "primaryAddress %q is neither an IP address (IPv6 in lowercase canonical form) nor a DNS name" $addr) -}}
{{- end -}}
{{- if and (ne (toString $v.primaryCluster) "") (not (regexMatch "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$" (toString $v.primaryCluster))) -}}
{{- fail (printf "primaryCluster %q is not a DNS label" (toString $v.primaryCluster)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_scalars_are_quoted_and_embedded_values_are_not() {
        assert_eq!(
            substitute_line("  topology.istio.io/network: zznetworkzz"),
            "  topology.istio.io/network: {{ .Values.network | quote }}"
        );
        assert_eq!(
            substitute_line("  - zzclusterzz"),
            "  - {{ .Values.clusterName | quote }}"
        );
        assert_eq!(
            substitute_line("    path: /inject/cluster/zzclusterzz/net/zznetworkzz"),
            "    path: /inject/cluster/{{ .Values.clusterName }}/net/{{ .Values.network }}"
        );
        assert_eq!(
            substitute_line("  - \"192.0.2.213\""),
            "  - \"{{ .Values.primaryAddress }}\""
        );
    }

    #[test]
    fn no_sentinel_is_left_and_every_shape_is_covered() {
        let opts = Options {
            mesh_id: "mesh1".into(),
            cluster: "cluster1".into(),
            network: "network1".into(),
            role: Role::Primary {
                serves_remotes: false,
            },
            trust_domain: "cluster.local".into(),
            image: "strait:test".into(),
        };
        let files = chart(&opts).expect("chart");
        for f in &files {
            for (sentinel, _) in SUBSTITUTIONS {
                assert!(!f.text.contains(sentinel), "{}: {sentinel}", f.path);
            }
        }
        assert!(files.iter().any(|f| f.text.contains("has $shape")));
        let values = &files[1].text;
        assert!(values.contains("clusterName: \"cluster1\""), "{values}");
        assert!(values.contains("role: \"primary\""), "{values}");
    }
}
