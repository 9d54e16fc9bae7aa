//! Telling the server who is calling: the client proxy adds a header with its workload's
//! metadata (the principal comes from the mTLS certificate, not from this), the server proxy
//! reads it for the `source_*` labels and removes it before the request reaches the app.

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use http::HeaderMap;
use serde::{Deserialize, Serialize};
use strait_config::NodeMeta;

use crate::metrics::Peer;

pub const HEADER: &str = "x-strait-peer";

#[derive(Debug, Default, Serialize, Deserialize)]
struct Wire {
    #[serde(default)]
    w: String,
    #[serde(default)]
    n: String,
    #[serde(default)]
    a: String,
    #[serde(default)]
    v: String,
    #[serde(default)]
    c: String,
}

/// The header value describing this proxy's workload.
pub fn encode(node: &NodeMeta) -> String {
    let wire = Wire {
        w: node.workload.clone(),
        n: node.namespace.clone(),
        a: node.app.clone(),
        v: node.version.clone(),
        c: node.cluster.clone(),
    };
    STANDARD_NO_PAD.encode(serde_json::to_vec(&wire).unwrap_or_default())
}

/// Longest accepted header value: five names well within Kubernetes' limits.
const MAX_LEN: usize = 2048;
/// Longest accepted field: a DNS subdomain (Kubernetes names and label values are shorter).
const MAX_FIELD: usize = 253;

/// Reads and removes the header, believing it only from an mTLS caller whose certificate
/// names the same namespace: the values become metric labels, so a plaintext client (or one
/// claiming another namespace) cannot mint series of its choosing. Anything else, malformed
/// or oversized is ignored (the labels say `unknown`).
pub fn take(headers: &mut HeaderMap, principal: Option<&str>) -> Option<Peer> {
    let v = headers.remove(HEADER)?;
    believe(&v, principal)
}

/// The peer a header value describes, if the caller's mTLS `principal` vouches for it (see
/// [`take`]).
pub fn believe(v: &http::HeaderValue, principal: Option<&str>) -> Option<Peer> {
    let id = strait_ca::SpiffeId::parse(principal?).ok()?;
    let peer = decode(v)?;
    (peer.namespace == id.namespace()).then_some(peer)
}

/// The header's value, if well formed and within bounds.
fn decode(v: &http::HeaderValue) -> Option<Peer> {
    if v.len() > MAX_LEN {
        return None;
    }
    let bytes = STANDARD_NO_PAD.decode(v.as_bytes().trim_ascii_end()).ok()?;
    let w: Wire = serde_json::from_slice(&bytes).ok()?;
    if [&w.w, &w.n, &w.a, &w.v, &w.c]
        .iter()
        .any(|f| f.len() > MAX_FIELD)
    {
        return None;
    }
    Some(Peer {
        workload: w.w,
        namespace: w.n,
        principal: String::new(),
        app: w.a,
        version: w.v,
        cluster: w.c,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_garbage() {
        let node = NodeMeta {
            cluster: "c1".into(),
            namespace: "ns".into(),
            workload: "sleep".into(),
            app: "sleep".into(),
            ..NodeMeta::default()
        };
        let mut h = HeaderMap::new();
        h.insert(HEADER, encode(&node).parse().expect("header"));
        let caller = Some("spiffe://cluster.local/ns/ns/sa/sleep");
        let p = take(&mut h, caller).expect("peer");
        assert_eq!((p.workload.as_str(), p.cluster.as_str()), ("sleep", "c1"));
        assert!(h.get(HEADER).is_none());
        h.insert(HEADER, "%%%".parse().expect("header"));
        assert!(take(&mut h, caller).is_none());
        assert!(h.get(HEADER).is_none());

        // Not believed from a plaintext caller, nor from another namespace; removed anyway.
        for other in [None, Some("spiffe://cluster.local/ns/other/sa/sleep")] {
            h.insert(HEADER, encode(&node).parse().expect("header"));
            assert!(take(&mut h, other).is_none());
            assert!(h.get(HEADER).is_none());
        }
    }
}
