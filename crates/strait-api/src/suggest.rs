//! "Did you mean ...?" for misspelt field names, enum values and kinds.

/// The candidate closest to `input`, if it is close enough to be a likely typo: same letters in
/// another case, a snake_case spelling of a camelCase name, or a small edit distance.
pub fn did_you_mean<'a>(input: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let lower = input.to_ascii_lowercase();
    let squashed = lower.replace(['_', '-'], "");
    if let Some(c) = candidates
        .iter()
        .find(|c| c.to_ascii_lowercase().replace(['_', '-'], "") == squashed)
    {
        return Some(c);
    }
    let limit = (input.chars().count() / 3).clamp(1, 3);
    candidates
        .iter()
        .map(|c| (edit_distance(&lower, &c.to_ascii_lowercase()), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Optimal string alignment distance (Levenshtein plus adjacent transpositions).
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev2 = vec![0usize; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0usize; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                cur[j] = cur[j].min(prev2[j - 2] + 1);
            }
        }
        std::mem::swap(&mut prev2, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typical_typos() {
        let fields = ["hosts", "gateways", "http", "tls", "tcp", "exportTo"];
        assert_eq!(did_you_mean("hots", &fields), Some("hosts"));
        assert_eq!(did_you_mean("gatways", &fields), Some("gateways"));
        assert_eq!(did_you_mean("export_to", &fields), Some("exportTo"));
        assert_eq!(did_you_mean("Hosts", &fields), Some("hosts"));
        assert_eq!(did_you_mean("completely", &fields), None);
        assert_eq!(edit_distance("ab", "ba"), 1);
    }
}
