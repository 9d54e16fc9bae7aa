//! A light RE2 check: constructs Envoy's RE2 engine rejects that users commonly write.

pub(super) fn re2_problem(re: &str) -> Option<String> {
    if re.len() > 1024 {
        return Some("longer than 1024 characters".into());
    }
    let chars: Vec<char> = re.chars().collect();
    let mut depth: i32 = 0;
    // Whether the previous item can take a repetition operator.
    let mut can_repeat = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' => {
                let Some(n) = chars.get(i + 1) else {
                    return Some("trailing backslash".into());
                };
                if n.is_ascii_digit() && *n != '0' {
                    return Some(format!("backreference \\{n}"));
                }
                can_repeat = true;
                i += 2;
                continue;
            }
            '[' => {
                let mut j = i + 1;
                if chars.get(j) == Some(&'^') {
                    j += 1;
                }
                if chars.get(j) == Some(&']') {
                    j += 1;
                }
                let mut closed = false;
                while j < chars.len() {
                    match chars[j] {
                        '\\' => j += 1,
                        '[' if chars.get(j + 1) == Some(&':') => {
                            // A POSIX class such as [:alpha:].
                            if let Some(end) = chars[j + 2..].iter().position(|c| *c == ']') {
                                j += end + 2;
                            }
                        }
                        ']' => {
                            closed = true;
                            break;
                        }
                        _ => {}
                    }
                    j += 1;
                }
                if !closed {
                    return Some("unclosed [".into());
                }
                can_repeat = true;
                i = j + 1;
                continue;
            }
            '(' => {
                depth += 1;
                can_repeat = false;
                if chars.get(i + 1) == Some(&'?') {
                    let rest: String = chars[i + 2..].iter().take(3).collect();
                    if rest.starts_with('=')
                        || rest.starts_with('!')
                        || rest.starts_with("<=")
                        || rest.starts_with("<!")
                    {
                        return Some("lookaround".into());
                    }
                    if rest.starts_with('>') {
                        return Some("atomic group".into());
                    }
                    if rest.starts_with("P<") || rest.starts_with('<') {
                        // A named group: its body follows the name.
                        let Some(end) = chars[i..].iter().position(|c| *c == '>') else {
                            return Some("unterminated group name".into());
                        };
                        i += end + 1;
                        continue;
                    }
                    // Flags, alone `(?i)` or opening a group `(?i:...)`.
                    let mut j = i + 2;
                    while chars
                        .get(j)
                        .is_some_and(|c| c.is_ascii_alphabetic() || *c == '-')
                    {
                        j += 1;
                    }
                    match chars.get(j) {
                        Some(')') => depth -= 1,
                        Some(':') => {}
                        _ => return Some("unknown group syntax after (?".into()),
                    }
                    i = j + 1;
                    continue;
                }
            }
            ')' => {
                depth -= 1;
                if depth < 0 {
                    return Some("unmatched )".into());
                }
                can_repeat = true;
            }
            '|' => can_repeat = false,
            '*' | '+' | '?' => {
                if !can_repeat {
                    return Some(format!("{c} has nothing to repeat"));
                }
                // A lazy marker may follow; another operator may not.
                if chars.get(i + 1) == Some(&'?') {
                    i += 1;
                }
                if matches!(chars.get(i + 1), Some('*' | '+')) {
                    return Some("nested repetition".into());
                }
                can_repeat = false;
            }
            '{' => {
                let close = chars[i..].iter().position(|c| *c == '}');
                let body: Option<String> = close.map(|e| chars[i + 1..i + e].iter().collect());
                let is_repeat = body.as_ref().is_some_and(|b| {
                    let (lo, hi) = b.split_once(',').unwrap_or((b, ""));
                    !lo.is_empty()
                        && lo.chars().all(|c| c.is_ascii_digit())
                        && hi.chars().all(|c| c.is_ascii_digit())
                });
                if is_repeat {
                    if !can_repeat {
                        return Some("{n} has nothing to repeat".into());
                    }
                    i += close.unwrap_or(0) + 1;
                    if chars.get(i) == Some(&'?') {
                        i += 1;
                    }
                    can_repeat = false;
                    continue;
                }
                can_repeat = true;
            }
            '^' | '$' => can_repeat = true,
            _ => can_repeat = true,
        }
        i += 1;
    }
    (depth > 0).then(|| "unclosed (".into())
}
