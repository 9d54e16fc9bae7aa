//! Label selectors: Istio's plain maps and Kubernetes' `matchLabels`/`matchExpressions`.

use std::collections::{BTreeMap, HashMap};

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

/// Label sets (workloads' labels) indexed by `key=value`, so that a map selector looks only at
/// the label sets holding its rarest pair instead of at every one: the analyzers and the
/// model ask "what does this selector select" for every policy and service, and scanning
/// every workload for each made a large namespace quadratic.
#[derive(Debug, Default)]
pub struct LabelIndex<'a> {
    len: usize,
    by_pair: HashMap<(&'a str, &'a str), Vec<usize>>,
}

impl<'a> LabelIndex<'a> {
    /// Indexes label sets by their position in `sets`.
    pub fn new<I>(sets: I) -> LabelIndex<'a>
    where
        I: IntoIterator<Item = &'a BTreeMap<String, String>>,
    {
        let mut index = LabelIndex::default();
        for (i, labels) in sets.into_iter().enumerate() {
            for (k, v) in labels {
                index
                    .by_pair
                    .entry((k.as_str(), v.as_str()))
                    .or_default()
                    .push(i);
            }
            index.len = i + 1;
        }
        index
    }

    /// Positions of the label sets `sel` selects ([`map_selects`]), ascending. `labels` gives
    /// the label set at a position (the same sets the index was built from).
    pub fn select<'s>(
        &'s self,
        sel: &'s BTreeMap<String, String>,
        labels: impl Fn(usize) -> &'s BTreeMap<String, String> + 's,
    ) -> impl Iterator<Item = usize> + 's {
        // The candidates are the sets holding the selector's rarest pair; an empty selector
        // selects everything.
        let rarest: Option<&[usize]> = sel
            .iter()
            .map(|(k, v)| {
                self.by_pair
                    .get(&(k.as_str(), v.as_str()))
                    .map_or(&[][..], Vec::as_slice)
            })
            .min_by_key(|c| c.len());
        let candidates: Box<dyn Iterator<Item = usize> + 's> = match rarest {
            Some(c) => Box::new(c.iter().copied()),
            None => Box::new(0..self.len),
        };
        candidates.filter(move |i| map_selects(sel, labels(*i)))
    }
}

/// Map selectors indexed by their rarest `key=value` pair, so that the selectors selecting a
/// label set are found by looking up each of its labels instead of trying every selector (the
/// reverse of [`LabelIndex`]: services selecting a workload).
#[derive(Debug, Default)]
pub struct SelectorIndex<'a> {
    /// Selectors by the pair they are filed under, as positions.
    by_pair: HashMap<(&'a str, &'a str), Vec<usize>>,
    /// Empty selectors, which select every label set.
    empty: Vec<usize>,
}

impl<'a> SelectorIndex<'a> {
    /// Indexes selectors by their position in `selectors`.
    pub fn new<I>(selectors: I) -> SelectorIndex<'a>
    where
        I: IntoIterator<Item = &'a BTreeMap<String, String>>,
        I::IntoIter: Clone,
    {
        let selectors = selectors.into_iter();
        // Filing each selector under its least common pair keeps the lists short when many
        // selectors share a pair (`team: payments` on every Service of a namespace).
        let mut count: HashMap<(&str, &str), usize> = HashMap::new();
        for sel in selectors.clone() {
            for (k, v) in sel {
                *count.entry((k.as_str(), v.as_str())).or_default() += 1;
            }
        }
        let mut index = SelectorIndex::default();
        for (i, sel) in selectors.enumerate() {
            let rarest = sel
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .min_by_key(|pair| count.get(pair).copied().unwrap_or(0));
            match rarest {
                Some(pair) => index.by_pair.entry(pair).or_default().push(i),
                None => index.empty.push(i),
            }
        }
        index
    }

    /// Positions of the selectors that select `labels` ([`map_selects`]), ascending.
    /// `selector` gives the selector at a position (the same ones the index was built from).
    pub fn selecting<'s>(
        &self,
        labels: &BTreeMap<String, String>,
        selector: impl Fn(usize) -> &'s BTreeMap<String, String>,
    ) -> Vec<usize> {
        let mut out: Vec<usize> = self.empty.clone();
        for (k, v) in labels {
            if let Some(c) = self.by_pair.get(&(k.as_str(), v.as_str())) {
                out.extend(
                    c.iter()
                        .copied()
                        .filter(|i| map_selects(selector(*i), labels)),
                );
            }
        }
        // A selector is filed under one pair and a label set has one value per key, so no
        // position comes twice.
        out.sort_unstable();
        out
    }
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

    /// A small deterministic generator, so the index tests cover many label sets.
    fn sets(n: usize, seed: u64) -> Vec<BTreeMap<String, String>> {
        let mut x = seed;
        let mut next = move |m: u64| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) % m
        };
        (0..n)
            .map(|_| {
                let len = next(4);
                (0..len)
                    .map(|_| (format!("k{}", next(4)), format!("v{}", next(3))))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn label_index_selects_what_a_scan_selects() {
        let labels = sets(300, 1);
        let selectors = sets(200, 2);
        let index = LabelIndex::new(&labels);
        for sel in &selectors {
            let scan: Vec<usize> = (0..labels.len())
                .filter(|i| map_selects(sel, &labels[*i]))
                .collect();
            let indexed: Vec<usize> = index.select(sel, |i| &labels[i]).collect();
            assert_eq!(indexed, scan, "{sel:?}");
        }
        let empty: Vec<BTreeMap<String, String>> = Vec::new();
        let none = LabelIndex::new(&empty);
        assert_eq!(none.select(&m(&[]), |i| &empty[i]).count(), 0);
    }

    #[test]
    fn selector_index_finds_what_a_scan_finds() {
        let labels = sets(300, 3);
        let selectors = sets(200, 4);
        let index = SelectorIndex::new(&selectors);
        for l in &labels {
            let scan: Vec<usize> = (0..selectors.len())
                .filter(|i| map_selects(&selectors[*i], l))
                .collect();
            assert_eq!(index.selecting(l, |i| &selectors[i]), scan, "{l:?}");
        }
    }
}
