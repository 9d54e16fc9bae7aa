//! Spotting unrendered Helm/Go templates.
//!
//! A chart's `templates/*.yaml` is not Kubernetes YAML until `helm template` has run; feeding it
//! to a YAML parser gives baffling errors (`{{ .Values.x }}` is a flow mapping). When a document
//! is not YAML Kubernetes can read, the loader looks here for the template action that explains
//! it ([`find_template`]) and says what to do. A document that *is* such YAML is a document,
//! whatever its values hold: Prometheus alert text (`{{ $labels.pod }}`), Alertmanager
//! templates (`{{ template "slack.default.title" . }}`) and arguments of programs that template
//! their own input are values. [`find_helm_action`] only spots a chart's own vocabulary left in
//! a value, for a warning.

/// Where a template action starts: 0-based line within the chunk, 0-based char column, and the
/// action's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateAction {
    pub line: u32,
    pub column: u32,
    pub text: String,
}

/// Finds the first Go template action in `text`, if any.
pub fn find_template(text: &str) -> Option<TemplateAction> {
    let mut block_parent: Option<usize> = None;
    for (line_no, line) in text.lines().enumerate() {
        let indent = line.len() - line.trim_start_matches(' ').len();
        if let Some(parent) = block_parent {
            if line.trim().is_empty() || indent > parent {
                continue;
            }
            block_parent = None;
        }
        let code = strip_comment(line);
        if let Some((col, action)) = find_action(code) {
            return Some(TemplateAction {
                line: line_no as u32,
                column: line[..col].chars().count() as u32,
                text: action.to_string(),
            });
        }
        if opens_block_scalar(code) {
            block_parent = Some(indent);
        }
    }
    None
}

/// The line without a trailing `# comment` (a `#` outside quotes, at the start or after a space).
fn strip_comment(line: &str) -> &str {
    let mut quote: Option<char> = None;
    let mut prev = ' ';
    for (i, c) in line.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == '#' && (prev == ' ' || prev == '\t' || i == 0) => return &line[..i],
            None => {}
        }
        prev = c;
    }
    line
}

fn find_action(code: &str) -> Option<(usize, &str)> {
    let mut search = 0;
    while let Some(rel) = code[search..].find("{{") {
        let at = search + rel;
        let end_rel = code[at + 2..].find("}}")?;
        let action = &code[at..at + 2 + end_rel + 2];
        let inner = action[2..action.len() - 2]
            .trim_start_matches('-')
            .trim_end_matches('-')
            .trim();
        let quoted = inside_quotes(code, at);
        if looks_like_template(inner, quoted) {
            return Some((at, action));
        }
        search = at + 2;
    }
    None
}

fn inside_quotes(code: &str, at: usize) -> bool {
    let mut quote: Option<char> = None;
    for c in code[..at].chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None => {}
        }
    }
    quote.is_some()
}

/// Outside quotes any `{{ ... }}` is a template (YAML has no such syntax in practice). Inside a
/// quoted string we only claim the forms Helm charts use, so that literal Go-template text in a
/// value (alert annotations, say) is left alone.
fn looks_like_template(inner: &str, quoted: bool) -> bool {
    if !quoted {
        return !inner.is_empty()
            && inner
                .chars()
                .next()
                .is_some_and(|c| c == '.' || c == '$' || c == '/' || c.is_ascii_alphabetic());
    }
    const HELM: &[&str] = &[
        ".Values",
        ".Release",
        ".Chart",
        ".Capabilities",
        ".Files",
        ".Template",
        "include ",
        "tpl ",
        "toYaml",
        "required ",
        "default ",
        "template ",
        "printf ",
    ];
    HELM.iter()
        .any(|h| inner.starts_with(h) || inner.contains(&format!("| {}", h.trim())))
}

/// Actions only a Helm chart writes; Go templates elsewhere (Prometheus, Alertmanager) use
/// `$labels`, `template`, `printf` and the like, which are left alone.
const HELM_ONLY: &[&str] = &[
    ".Values",
    ".Release",
    ".Chart",
    ".Capabilities",
    ".Files",
    "include ",
    "tpl ",
    "toYaml",
    "required ",
];

/// The first Helm chart action (`{{ .Values.x }}`, `{{ include "x" . }}`) in one value, as
/// written: what a chart rendered by hand, or rendered twice, leaves behind.
pub fn find_helm_action(value: &str) -> Option<&str> {
    let mut search = 0;
    while let Some(rel) = value[search..].find("{{") {
        let at = search + rel;
        let end_rel = value[at + 2..].find("}}")?;
        let action = &value[at..at + 2 + end_rel + 2];
        let inner = action[2..action.len() - 2]
            .trim_start_matches('-')
            .trim_end_matches('-')
            .trim();
        if HELM_ONLY
            .iter()
            .any(|h| inner.starts_with(h) || inner.contains(&format!("| {}", h.trim())))
        {
            return Some(action);
        }
        search = at + 2;
    }
    None
}

fn opens_block_scalar(code: &str) -> bool {
    let t = code.trim_end();
    let Some(idx) = t.rfind(['|', '>']) else {
        return false;
    };
    let (before, after) = (&t[..idx], &t[idx + 1..]);
    let header_ok = after
        .chars()
        .all(|c| c == '-' || c == '+' || c.is_ascii_digit());
    let before = before.trim_end();
    header_ok && (before.is_empty() || before.ends_with(':') || before.ends_with('-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_plain_and_quoted_helm_actions() {
        let t = "metadata:\n  name: {{ .Values.name }}\n";
        let a = find_template(t).expect("template");
        assert_eq!((a.line, a.column), (1, 8));
        assert_eq!(a.text, "{{ .Values.name }}");
        let q = "spec:\n  image: \"{{ .Values.image }}\"\n";
        assert_eq!(find_template(q).map(|a| a.line), Some(1));
        let ctl = "{{- if .Values.enabled }}\nkind: Service\n";
        assert_eq!(find_template(ctl).map(|a| a.line), Some(0));
    }

    #[test]
    fn ignores_comments_block_scalars_and_literal_text() {
        let t = "# {{ .Values.x }}\ndata:\n  tpl: |\n    {{ $labels.instance }} is down\n  b: ok\n";
        assert_eq!(find_template(t), None);
        let q = "metadata:\n  annotations:\n    summary: \"{{ $value }} errors\"\n";
        assert_eq!(find_template(q), None);
    }

    #[test]
    fn helm_actions_in_values() {
        assert_eq!(
            find_helm_action("--x={{ .Values.x }} --y"),
            Some("{{ .Values.x }}")
        );
        assert_eq!(
            find_helm_action("{{- include \"app.name\" . | trunc 63 }}"),
            Some("{{- include \"app.name\" . | trunc 63 }}")
        );
        assert_eq!(
            find_helm_action("{{ $labels.pod }} {{ .Values.x }}"),
            Some("{{ .Values.x }}")
        );
        for other in [
            "Pod is crash looping {{ $labels.pod }}.",
            "value is \"{{ $value }}\"",
            "{{ template \"slack.default.title\" . }}",
            "{{ printf \"%.2f\" $value }}",
            "{{ unclosed .Values.x",
        ] {
            assert_eq!(find_helm_action(other), None, "{other}");
        }
    }

    #[test]
    fn block_scalar_ends_at_dedent() {
        let t = "a: |\n  {{ x }}\nb: {{ .Values.b }}\n";
        assert_eq!(find_template(t).map(|a| a.line), Some(2));
    }
}
