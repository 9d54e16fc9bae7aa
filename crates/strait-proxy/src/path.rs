//! Request path normalization as `meshConfig.pathNormalization` asks (Istio's default BASE:
//! RFC 3986, Envoy's `normalize_path`; MERGE_SLASHES; DECODE_AND_MERGE_SLASHES; NONE),
//! applied where requests arrive at a server side (a sidecar's inbound port, a gateway)
//! before policy and routing look at the path.
//!
//! Without it, `DENY paths: ["/admin"]` would not match `/public/../admin` or `/%61dmin`,
//! which the application resolves to `/admin`: a policy would be bypassed by spelling.

use std::borrow::Cow;

use strait_config::PathNormalization;

/// A path no server can resolve (a broken percent escape): refused with 400, as Envoy does.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid request path {0:?}: a '%' must be followed by two hexadecimal digits")]
pub struct BadPath(pub String);

/// The normalized form of a request target's path (the part before `?`) under `mode`. BASE:
/// percent escapes of unreserved characters decoded, other escapes upper-cased, `.` and `..`
/// segments resolved. MERGE_SLASHES: also `//` into `/`. DECODE_AND_MERGE_SLASHES: `%2F` and
/// `%5C` decoded first. A target that is not a path (`*`) is left alone.
pub fn normalize(path: &str, mode: PathNormalization) -> Result<Cow<'_, str>, BadPath> {
    if mode == PathNormalization::None || !path.starts_with('/') {
        return Ok(Cow::Borrowed(path));
    }
    let decode_slashes = mode == PathNormalization::DecodeAndMergeSlashes;
    let merge = mode != PathNormalization::Base;
    let needs_work = path.contains('%')
        || path.split('/').any(|s| s == "." || s == "..")
        || (merge && path.contains("//"));
    if !needs_work {
        return Ok(Cow::Borrowed(path));
    }
    let decoded = decode(path, decode_slashes).ok_or_else(|| BadPath(path.to_string()))?;
    let merged = if merge {
        merge_slashes(&decoded)
    } else {
        decoded
    };
    Ok(Cow::Owned(remove_dot_segments(&merged)))
}

fn merge_slashes(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if !(c == '/' && out.ends_with('/')) {
            out.push(c);
        }
    }
    out
}

fn hex(c: u8) -> Option<u8> {
    char::from(c)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

fn is_unreserved(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~')
}

/// `%61` → `a`; `%2f` → `%2F` (reserved characters stay encoded: decoding `%2F` would change
/// which segments the path has, unless `slashes` asks for exactly that, with `%5C` too).
/// `None` on a broken escape.
fn decode(path: &str, slashes: bool) -> Option<String> {
    let b = path.as_bytes();
    let mut out = String::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let (h, l) = (hex(*b.get(i + 1)?)?, hex(*b.get(i + 2)?)?);
            let c = (h << 4) | l;
            if is_unreserved(c) || (slashes && matches!(c, b'/' | b'\\')) {
                out.push(char::from(c));
            } else {
                out.push('%');
                out.push(char::from(b[i + 1]).to_ascii_uppercase());
                out.push(char::from(b[i + 2]).to_ascii_uppercase());
            }
            i += 3;
            continue;
        }
        // Multi-byte UTF-8 passes through whole: find the next ASCII byte.
        let next = b[i + 1..]
            .iter()
            .position(|&c| c.is_ascii())
            .map_or(b.len(), |p| i + 1 + p);
        out.push_str(path.get(i..next)?);
        i = next;
    }
    Some(out)
}

/// RFC 3986 §5.2.4 on an absolute path: `.` segments dropped, `..` removes the segment
/// before it (never above the root), a trailing `.` or `..` leaves a trailing slash.
fn remove_dot_segments(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let last = segments.len().saturating_sub(1);
    for (i, seg) in segments.iter().enumerate() {
        match *seg {
            "." => {
                if i == last {
                    out.push("");
                }
            }
            ".." => {
                out.pop();
                if i == last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    format!("/{}", out.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(p: &str) -> String {
        normalize(p, PathNormalization::Base)
            .expect("valid")
            .into_owned()
    }

    #[test]
    fn resolves_what_an_application_would() {
        assert_eq!(n("/hello"), "/hello");
        assert_eq!(n("/public/../admin"), "/admin");
        assert_eq!(n("/a/./b/../../admin"), "/admin");
        assert_eq!(n("/../../admin"), "/admin");
        assert_eq!(n("/%61dmin"), "/admin");
        assert_eq!(n("/%2e%2E/admin"), "/admin");
        assert_eq!(n("/a/.."), "/");
        assert_eq!(n("/a/b/."), "/a/b/");
        assert_eq!(n("/a/b/.."), "/a/");
        assert_eq!(n("/a%2fb"), "/a%2Fb", "reserved characters stay encoded");
        assert_eq!(n("/caf\u{e9}/../x"), "/x");
        assert_eq!(n("*"), "*");
        assert_eq!(
            n("/..hidden/.x"),
            "/..hidden/.x",
            "only whole segments are dots"
        );
    }

    #[test]
    fn broken_escapes_are_refused() {
        for p in ["/a%zz", "/a%4", "/a%"] {
            assert!(normalize(p, PathNormalization::Base).is_err(), "{p}");
        }
    }

    #[test]
    fn the_mesh_chooses_how_far_to_go() {
        let with = |p: &str, m| normalize(p, m).expect("valid").into_owned();
        assert_eq!(with("//admin/./x", PathNormalization::None), "//admin/./x");
        assert_eq!(with("//admin", PathNormalization::Base), "//admin");
        assert_eq!(
            with("//admin//x", PathNormalization::MergeSlashes),
            "/admin/x"
        );
        assert_eq!(
            with("/%2Fadmin", PathNormalization::MergeSlashes),
            "/%2Fadmin"
        );
        assert_eq!(
            with(
                "/%2Fadmin%2f..%2fsecret",
                PathNormalization::DecodeAndMergeSlashes
            ),
            "/secret"
        );
        assert_eq!(
            with("/a%5cb", PathNormalization::DecodeAndMergeSlashes),
            "/a\\b"
        );
    }
}
