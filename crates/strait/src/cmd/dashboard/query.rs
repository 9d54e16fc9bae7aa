//! The query of `/api/trace`: which edge to trace. Parsed strictly, so a typo in a
//! hand-written URL is a 400 that names the parameter instead of a trace of something else.

use std::collections::BTreeMap;

/// An edge to trace: from a workload to a service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct EdgeQuery {
    /// The calling workload, `<cluster>/<namespace>/<workload>` (or any form `proxy-status`
    /// prints).
    pub from: String,
    /// The destination service's host, as `destination_service` names it.
    pub service: String,
    /// The service port; `None`: the service's only port.
    pub port: Option<u16>,
    /// The request path (default `/`).
    pub path: String,
}

const KNOWN: &[&str] = &["from", "service", "port", "path"];

/// Parses `from=...&service=...[&port=N][&path=/p]`; the error says what to fix.
pub(super) fn parse(query: &str) -> Result<EdgeQuery, String> {
    let mut params: BTreeMap<String, String> = BTreeMap::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = decode(k)?;
        if !KNOWN.contains(&k.as_str()) {
            return Err(format!(
                "unknown parameter {k:?}; expected {}",
                KNOWN.join(", ")
            ));
        }
        if params.insert(k.clone(), decode(v)?).is_some() {
            return Err(format!("parameter {k:?} given twice"));
        }
    }
    let mut required = |k: &str, what: &str| match params.remove(k) {
        Some(v) if !v.trim().is_empty() => Ok(v.trim().to_string()),
        _ => Err(format!("missing parameter {k:?} ({what})")),
    };
    let from = required(
        "from",
        "the calling workload, <cluster>/<namespace>/<workload>",
    )?;
    let service = required("service", "the destination service's host")?;
    if service.contains(['/', ':', ' ', '?', '#', '@']) {
        return Err(format!(
            "service {service:?}: a host name, without scheme, port or path (give the port as port=N)"
        ));
    }
    let port = match params.remove("port") {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => Some(n),
            _ => return Err(format!("port {p:?}: a number from 1 to 65535")),
        },
    };
    let path = params.remove("path").unwrap_or_else(|| "/".into());
    if !path.starts_with('/') || path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "path {path:?}: must start with / and hold no spaces"
        ));
    }
    Ok(EdgeQuery {
        from,
        service,
        port,
        path,
    })
}

/// Percent-decoding of a query component (`+` is a space, as forms send it).
fn decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| format!("{s:?}: % must be followed by two hex digits"))?;
                out.push(hex);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| format!("{s:?}: not UTF-8 once decoded"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_edge_query_with_defaults() {
        let q = parse("from=cluster1%2Fsample%2Fsleep&service=helloworld.sample.svc.cluster.local")
            .expect("valid");
        assert_eq!(q.from, "cluster1/sample/sleep");
        assert_eq!(q.service, "helloworld.sample.svc.cluster.local");
        assert_eq!((q.port, q.path.as_str()), (None, "/"));
        let q = parse("from=a/b/c&service=h&port=5000&path=/hello%3Fx%3D1").expect("valid");
        assert_eq!((q.port, q.path.as_str()), (Some(5000), "/hello?x=1"));
    }

    #[test]
    fn bad_queries_say_what_to_fix() {
        for (q, says) in [
            ("", "missing parameter \"from\""),
            ("from=a/b/c", "missing parameter \"service\""),
            ("from=a/b/c&service=", "missing parameter \"service\""),
            ("from=a/b/c&service=h&port=0", "port \"0\""),
            ("from=a/b/c&service=h&port=x", "port \"x\""),
            ("from=a/b/c&service=h&path=hello", "must start with /"),
            ("from=a/b/c&service=http://h", "a host name"),
            (
                "from=a/b/c&service=h&sevrice=h",
                "unknown parameter \"sevrice\"",
            ),
            ("from=a&from=b&service=h", "given twice"),
            ("from=%zz&service=h", "two hex digits"),
            ("from=%ff&service=h", "not UTF-8"),
        ] {
            let e = parse(q).expect_err(q);
            assert!(e.contains(says), "{q}: {e}");
        }
    }
}
