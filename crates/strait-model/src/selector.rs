//! Label selectors: Istio's plain maps and Kubernetes' `matchLabels`/`matchExpressions`.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// A map selector: every pair must be present. An empty selector selects everything.
pub fn map_selects(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// A Kubernetes `LabelSelector` (empty selects everything).
pub fn label_selector_matches(sel: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    if let Some(ml) = &sel.match_labels
        && !map_selects(ml, labels)
    {
        return false;
    }
    sel.match_expressions.iter().flatten().all(|e| {
        let values = e.values.as_deref().unwrap_or(&[]);
        let have = labels.get(&e.key);
        match e.operator.as_str() {
            "In" => have.is_some_and(|v| values.contains(v)),
            "NotIn" => have.is_none_or(|v| !values.contains(v)),
            "Exists" => have.is_some(),
            "DoesNotExist" => have.is_none(),
            _ => false,
        }
    })
}

/// Whether two map selectors can select a common pod: no key with conflicting values.
pub fn may_overlap(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> bool {
    a.iter().all(|(k, v)| b.get(k).is_none_or(|w| w == v))
}

/// Whether pods selected by `a` may be the ones `b` selects: no conflicting label, and at
/// least one label in common (unrelated selectors such as app=x and istio=y do not count).
pub fn plausibly_same_pods(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> bool {
    may_overlap(a, b) && a.iter().any(|(k, v)| b.get(k) == Some(v))
}

/// `k1=v1,k2=v2`, for messages.
pub fn describe(sel: &BTreeMap<String, String>) -> String {
    sel.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    use super::*;

    fn m(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn selectors() {
        let labels = m(&[("app", "a"), ("version", "v1")]);
        assert!(map_selects(&m(&[("app", "a")]), &labels));
        assert!(map_selects(&m(&[]), &labels));
        assert!(!map_selects(&m(&[("app", "b")]), &labels));
        let sel = LabelSelector {
            match_labels: Some(m(&[("app", "a")])),
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "version".into(),
                operator: "NotIn".into(),
                values: Some(vec!["v2".into()]),
            }]),
        };
        assert!(label_selector_matches(&sel, &labels));
        assert!(may_overlap(&m(&[("app", "a")]), &m(&[("version", "v1")])));
        assert!(!may_overlap(&m(&[("app", "a")]), &m(&[("app", "b")])));
    }
}
