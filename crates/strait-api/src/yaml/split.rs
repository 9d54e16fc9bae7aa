//! Splitting a file into YAML documents before parsing.
//!
//! A YAML parser stops at the first syntax error, which would lose every document after it.
//! Kubernetes' own reader splits a stream on `---` lines first; doing the same means one broken
//! document costs only itself, and the others still load with their real line numbers.

/// One document's text and the line (0-based) of the file it starts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk<'a> {
    pub text: &'a str,
    pub first_line: u32,
}

/// Splits `text` at lines that start a new document (`---`, optionally followed by a space and
/// more content). The separator line stays with the document it opens.
pub fn split_documents(text: &str) -> Vec<Chunk<'_>> {
    let mut chunks = Vec::new();
    let mut start = 0usize;
    let mut start_line = 0u32;
    let mut offset = 0usize;
    for (line_no, line) in (0u32..).zip(text.split_inclusive('\n')) {
        if offset != start && is_separator(line) {
            chunks.push(Chunk {
                text: &text[start..offset],
                first_line: start_line,
            });
            start = offset;
            start_line = line_no;
        }
        offset += line.len();
    }
    if start < text.len() || chunks.is_empty() {
        chunks.push(Chunk {
            text: &text[start..],
            first_line: start_line,
        });
    }
    chunks
}

fn is_separator(line: &str) -> bool {
    match line.strip_prefix("---") {
        Some(rest) => rest.is_empty() || rest.starts_with([' ', '\t', '\r', '\n']),
        None => false,
    }
}

/// Whether a chunk holds nothing but blank lines, comments and document markers.
pub fn is_blank(text: &str) -> bool {
    text.lines().all(|l| {
        let t = l.trim();
        t.is_empty() || t.starts_with('#') || t == "---" || t == "..." || t.starts_with("--- #")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_separator_lines_only() {
        let text = "a: 1\n---\nb: 2\n--- # c\nc: '---'\nd: |\n  ---x\n";
        let chunks = split_documents(text);
        assert_eq!(chunks.len(), 3);
        assert_eq!(chunks[0].text, "a: 1\n");
        assert_eq!(chunks[1].first_line, 1);
        assert_eq!(chunks[2].first_line, 3);
        assert!(chunks[2].text.starts_with("--- # c\n"));
    }

    #[test]
    fn leading_separator_does_not_make_an_empty_document() {
        let chunks = split_documents("---\na: 1\n");
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].first_line, 0);
    }

    #[test]
    fn blank_detection() {
        assert!(is_blank("# only a comment\n\n---\n"));
        assert!(!is_blank("a: 1"));
    }
}
