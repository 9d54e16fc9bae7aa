//! Reading a proxy's Prometheus text exposition (`/stats/prometheus`): the sample lines, with
//! their labels unescaped. Only what the mesh's own proxies write is needed (counters and
//! histogram lines of the text and OpenMetrics formats), so this is a line reader, not a full
//! Prometheus parser: comments, `# EOF` and anything unreadable are skipped, never an error,
//! since one odd line must not hide a proxy's traffic.

use std::collections::BTreeMap;

/// One sample line: `name{labels} value`.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

impl Sample {
    /// A label's value; `""` when the series has no such label.
    pub fn label(&self, name: &str) -> &str {
        self.labels.get(name).map_or("", String::as_str)
    }
}

/// Every sample of `text` whose metric name is one of `names` (all when `names` is empty).
pub fn parse(text: &str, names: &[&str]) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| sample(l.trim(), names))
        .collect()
}

fn sample(line: &str, names: &[&str]) -> Option<Sample> {
    let name_end = line.find(|c: char| c == '{' || c.is_whitespace())?;
    let name = &line[..name_end];
    if name.is_empty() || (!names.is_empty() && !names.contains(&name)) {
        return None;
    }
    let (labels, rest) = if line[name_end..].starts_with('{') {
        labels(&line[name_end + 1..])?
    } else {
        (BTreeMap::new(), &line[name_end..])
    };
    // A timestamp may follow the value.
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// `k="v",...}` and what follows the closing brace; values keep `\\`, `\"` and `\n` escapes
/// unescaped, so a label value holding `",` cannot split a series in two.
fn labels(mut s: &str) -> Option<(BTreeMap<String, String>, &str)> {
    let mut out = BTreeMap::new();
    loop {
        s = s.trim_start_matches([',', ' ']);
        if let Some(rest) = s.strip_prefix('}') {
            return Some((out, rest));
        }
        let (key, rest) = s.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next()? {
                (i, '"') => break i,
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                (_, c) => value.push(c),
            }
        };
        out.insert(key.trim().to_string(), value);
        s = &rest[end + 1..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_with_and_without_labels() {
        let text = "# HELP istio_requests Requests.\n# TYPE istio_requests counter\n\
            istio_requests_total{reporter=\"source\",response_code=\"200\"} 12\n\
            istio_build{component=\"proxy\"} 1\n\
            up 1 1700000000000\n\
            # EOF\n";
        let all = parse(text, &[]);
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].name, "istio_requests_total");
        assert_eq!(all[0].label("reporter"), "source");
        assert_eq!(all[0].label("response_code"), "200");
        assert_eq!(all[0].value, 12.0);
        assert_eq!(all[2].value, 1.0, "a timestamp is not the value");
        let only = parse(text, &["istio_build"]);
        assert_eq!(only.len(), 1);
        assert_eq!(only[0].label("missing"), "");
    }

    #[test]
    fn escaped_label_values_stay_whole() {
        let text = r#"istio_requests_total{source_workload="odd\",name\\",reporter="source"} 3"#;
        let s = parse(text, &["istio_requests_total"]);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].label("source_workload"), "odd\",name\\");
        assert_eq!(s[0].label("reporter"), "source");
    }

    #[test]
    fn unreadable_lines_are_skipped() {
        let text = "istio_requests_total{reporter=\"source\" 3\nistio_requests_total{} x\n\
            istio_requests_total{a=\"b\"} +Inf\n";
        let s = parse(text, &[]);
        assert_eq!(s.len(), 1);
        assert!(s[0].value.is_infinite());
    }
}
