//! The names a proxy goes by, as strait prints them, which every command that takes a proxy
//! (`proxy-status`, `proxy-config`, `exec`) accepts back.

use anyhow::bail;
use strait_local::up::state::{PodState, State};

/// The forms of a proxy's name, for messages.
const FORMS: &str = "<pod>.<namespace> (NAME in proxy-status), <cluster>/<pod>.<namespace> or <cluster>/<namespace>/<workload or pod>";

/// The pod whose proxy `target` names, in each form strait prints one:
///
/// - `<pod>.<namespace>`: the NAME column of `proxy-status`, istioctl's form;
/// - `<cluster>/<pod>.<namespace>`: that name and its CLUSTER column;
/// - `<cluster>/<namespace>/<pod>`: the POD column of `strait up`.
///
/// A workload's name stands for its first pod in a cluster (`sleep.sample`,
/// `cluster1/sample/sleep`), as it always has for `<cluster>/<namespace>/<name>`. A name
/// found in several clusters is an error listing them, never a pick: the same
/// `<pod>.<namespace>` in two clusters is two proxies with two configurations.
pub(crate) fn find_proxy<'a>(st: &'a State, target: &str) -> anyhow::Result<&'a PodState> {
    let parts: Vec<&str> = target.split('/').collect();
    let (cluster, name) = match parts.as_slice() {
        [_, _, _] => return Ok(st.find_pod(target)?),
        [cluster, name] => {
            if !st.clusters.iter().any(|c| c.name == *cluster) {
                let known: Vec<&str> = st.clusters.iter().map(|c| c.name.as_str()).collect();
                bail!(
                    "{target}: the mesh has no cluster {cluster} (it has {}); name a proxy as {FORMS}{}",
                    known.join(", "),
                    // `<namespace>/<name>`, kubectl's habit, is the likely intent.
                    suggest(&st.pods, None, Some(cluster), name)
                );
            }
            (Some(*cluster), *name)
        }
        [name] => (None, *name),
        _ => bail!("{target}: name a proxy as {FORMS}"),
    };
    // A namespace is a DNS label, a pod name may hold dots: the namespace follows the last one.
    let Some((pod, namespace)) = name
        .rsplit_once('.')
        .filter(|(p, n)| !p.is_empty() && !n.is_empty())
    else {
        bail!(
            "{target}: no namespace given; name a proxy as {FORMS}{}",
            suggest(&st.pods, cluster, None, name)
        );
    };
    let found = candidates(&st.pods, cluster, pod, namespace);
    match found.as_slice() {
        [one] => Ok(one),
        [] => {
            let proxies: Vec<&PodState> = st
                .pods
                .iter()
                .filter(|p| p.sidecar && p.namespace == namespace)
                .filter(|p| cluster.is_none_or(|c| p.cluster == c))
                .collect();
            // Each as the user can give it back: with its cluster when its name alone is
            // ambiguous (or a cluster was given).
            let mut known: Vec<String> = proxies
                .iter()
                .map(|p| {
                    let twin = proxies
                        .iter()
                        .any(|o| o.name == p.name && o.cluster != p.cluster);
                    printed(p, cluster.is_some() || twin)
                })
                .collect();
            known.sort();
            known.dedup();
            let scope = cluster.map(|c| format!("{c}/")).unwrap_or_default();
            if known.is_empty() {
                bail!("{target}: no proxies in {scope}{namespace}");
            }
            // A namespace of hundreds of pods would bury the message.
            const SHOWN: usize = 10;
            let more = match known.len().saturating_sub(SHOWN) {
                0 => String::new(),
                n => format!(" and {n} more"),
            };
            known.truncate(SHOWN);
            bail!(
                "{target}: no such pod or workload; proxies in {scope}{namespace}: {}{more}",
                known.join(", ")
            )
        }
        many => {
            let names: Vec<String> = many.iter().map(|p| printed(p, true)).collect();
            bail!(
                "{target} is in {} clusters: {}; name one as <cluster>/<pod>.<namespace>",
                many.len(),
                names.join(", ")
            )
        }
    }
}

/// The pods `name.namespace` can mean: the pods of that name, else each cluster's first pod
/// of the workload of that name; in `cluster` only, when given.
fn candidates<'a>(
    pods: &'a [PodState],
    cluster: Option<&str>,
    name: &str,
    namespace: &str,
) -> Vec<&'a PodState> {
    let in_scope = || {
        pods.iter()
            .filter(move |p| p.namespace == namespace && cluster.is_none_or(|c| p.cluster == c))
    };
    let by_pod: Vec<&PodState> = in_scope().filter(|p| p.name == name).collect();
    if !by_pod.is_empty() {
        return by_pod;
    }
    let mut first_of_workload: Vec<&PodState> = Vec::new();
    for p in in_scope().filter(|p| p.workload == name) {
        if !first_of_workload.iter().any(|f| f.cluster == p.cluster) {
            first_of_workload.push(p);
        }
    }
    first_of_workload
}

/// `<pod>.<namespace>` as proxy-status prints it, after `<cluster>/` when `qualified`.
fn printed(p: &PodState, qualified: bool) -> String {
    if qualified {
        format!("{}/{}.{}", p.cluster, p.name, p.namespace)
    } else {
        format!("{}.{}", p.name, p.namespace)
    }
}

/// `; did you mean ...?` with the names that would find a pod or workload called `name`
/// (in `namespace`, or any), each as short as it can be without being ambiguous.
fn suggest(
    pods: &[PodState],
    cluster: Option<&str>,
    namespace: Option<&str>,
    name: &str,
) -> String {
    let mut namespaces: Vec<&str> = pods
        .iter()
        .filter(|p| p.name == name || p.workload == name)
        .filter(|p| cluster.is_none_or(|c| p.cluster == c))
        .filter(|p| namespace.is_none_or(|n| p.namespace == n))
        .map(|p| p.namespace.as_str())
        .collect();
    namespaces.sort_unstable();
    namespaces.dedup();
    let mut names = Vec::new();
    for ns in namespaces {
        let found = candidates(pods, cluster, name, ns);
        match (found.as_slice(), cluster) {
            (_, Some(c)) => names.push(format!("{c}/{name}.{ns}")),
            ([_], None) => names.push(format!("{name}.{ns}")),
            (many, None) => names.extend(many.iter().map(|p| format!("{}/{name}.{ns}", p.cluster))),
        }
    }
    if names.is_empty() {
        String::new()
    } else {
        format!("; did you mean {}?", names.join(" or "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strait_local::up::state::ClusterState;

    fn pod(cluster: &str, namespace: &str, name: &str, workload: &str) -> PodState {
        let ip = std::net::IpAddr::from([127, 0, 0, 1]);
        PodState {
            cluster: cluster.into(),
            namespace: namespace.into(),
            name: name.into(),
            workload: workload.into(),
            service_account: "default".into(),
            network: String::new(),
            ip,
            app_ip: ip,
            app: None,
            ports: Vec::new(),
            sidecar: true,
            gateway: false,
            netns: None,
            proxy_pid: None,
            app_pids: Vec::new(),
        }
    }

    /// Two clusters; a StatefulSet's pod names (`web-0`) are the same in both.
    fn mesh() -> State {
        State {
            pid: 0,
            mesh: std::path::PathBuf::new(),
            mode: Default::default(),
            networks: Vec::new(),
            clusters: ["cluster1", "cluster2"]
                .map(|c| ClusterState {
                    name: c.into(),
                    network: String::new(),
                    control_plane_of: c.into(),
                    control_plane: None,
                })
                .to_vec(),
            pods: vec![
                pod("cluster1", "sample", "sleep-7f9c-k2x4q", "sleep"),
                pod("cluster1", "sample", "web-0", "web"),
                pod("cluster2", "sample", "web-0", "web"),
                pod("cluster2", "sample", "my.dotted.pod", "dotted"),
            ],
            load_balancers: Vec::new(),
            public_netns: None,
        }
    }

    fn key(st: &State, target: &str) -> String {
        find_proxy(st, target)
            .map(PodState::key)
            .unwrap_or_else(|e| e.to_string())
    }

    #[test]
    fn every_printed_form_names_its_proxy() {
        let st = mesh();
        for (target, want) in [
            (
                "sleep-7f9c-k2x4q.sample",
                "cluster1/sample/sleep-7f9c-k2x4q",
            ),
            ("cluster2/web-0.sample", "cluster2/sample/web-0"),
            ("cluster1/sample/web-0", "cluster1/sample/web-0"),
            ("cluster1/sample/sleep", "cluster1/sample/sleep-7f9c-k2x4q"),
            ("sleep.sample", "cluster1/sample/sleep-7f9c-k2x4q"),
            ("my.dotted.pod.sample", "cluster2/sample/my.dotted.pod"),
        ] {
            assert_eq!(key(&st, target), want, "{target}");
        }
    }

    #[test]
    fn a_name_in_two_clusters_is_an_error_listing_both() {
        let st = mesh();
        for target in ["web-0.sample", "web.sample"] {
            let e = key(&st, target);
            assert!(
                e.contains("2 clusters")
                    && e.contains("cluster1/web-0.sample")
                    && e.contains("cluster2/web-0.sample"),
                "{target}: {e}"
            );
        }
    }

    #[test]
    fn a_name_that_finds_nothing_says_what_would() {
        let st = mesh();
        let e = key(&st, "sleep");
        assert!(
            e.contains("no namespace") && e.contains("did you mean sleep.sample?"),
            "{e}"
        );
        let e = key(&st, "web");
        assert!(
            e.contains("did you mean cluster1/web.sample or cluster2/web.sample?"),
            "{e}"
        );
        let e = key(&st, "sample/sleep");
        assert!(
            e.contains("no cluster sample") && e.contains("sleep.sample"),
            "{e}"
        );
        let e = key(&st, "nosuch.sample");
        assert!(
            e.ends_with(
                "proxies in sample: cluster1/web-0.sample, cluster2/web-0.sample, \
                 my.dotted.pod.sample, sleep-7f9c-k2x4q.sample"
            ),
            "{e}"
        );
        assert!(key(&st, "sleep.other").contains("no proxies in other"));
        assert!(key(&st, "cluster2/sleep.sample").contains("proxies in cluster2/sample"));
        assert!(key(&st, ".sample").contains("no namespace"));
        assert!(key(&st, "a/b/c/d").contains("name a proxy as"));
        let mut big = mesh();
        big.pods = (0..12)
            .map(|i| pod("cluster1", "big", &format!("p{i:02}"), "p"))
            .collect();
        let e = key(&big, "nosuch.big");
        assert!(e.ends_with("p08.big, p09.big and 2 more"), "{e}");
    }
}
