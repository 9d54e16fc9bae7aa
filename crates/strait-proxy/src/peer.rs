//! Telling the server who is calling: the client proxy adds a header with its workload's
//! metadata (the principal comes from the mTLS certificate, not from this), the server proxy
//! reads it for the `source_*` labels and removes it before the request reaches the app.

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use http::HeaderMap;
use serde::{Deserialize, Serialize};
use strait_config::NodeMeta;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

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

/// Writes the TCP preamble of [`crate::tls::ALPN_TCP_PEER`]: the header's value, prefixed
/// with its length (two bytes, big-endian); length 0 when this proxy has no metadata.
pub async fn write_preamble<W: AsyncWrite + Unpin>(
    w: &mut W,
    value: Option<&http::HeaderValue>,
) -> std::io::Result<()> {
    let bytes = value.map(|v| v.as_bytes()).unwrap_or_default();
    let len = u16::try_from(bytes.len().min(MAX_LEN)).unwrap_or(0);
    let mut frame = Vec::with_capacity(2 + usize::from(len));
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(&bytes[..usize::from(len)]);
    w.write_all(&frame).await?;
    w.flush().await
}

/// Reads the TCP preamble: the client's metadata header value (`None` for an empty one).
/// A length over the header's bound, or bytes that are no header value, are an error: the
/// connection is closed rather than passed on with the bytes in it.
pub async fn read_preamble<R: AsyncRead + Unpin>(
    r: &mut R,
) -> std::io::Result<Option<http::HeaderValue>> {
    let mut len = [0u8; 2];
    r.read_exact(&mut len).await?;
    let len = usize::from(u16::from_be_bytes(len));
    if len > MAX_LEN {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("peer metadata of {len} bytes (at most {MAX_LEN})"),
        ));
    }
    if len == 0 {
        return Ok(None);
    }
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf).await?;
    http::HeaderValue::from_bytes(&buf)
        .map(Some)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))
}

#[cfg(test)]
mod tests {

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(f)
    }

    #[test]
    fn the_tcp_preamble_round_trips_and_is_bounded() {
        let v = http::HeaderValue::from_static("eyJ3Ijoic2xlZXAifQ");
        let mut wire = Vec::new();
        block_on(write_preamble(&mut wire, Some(&v))).expect("write");
        wire.extend_from_slice(b"payload");
        let mut r = wire.as_slice();
        assert_eq!(block_on(read_preamble(&mut r)).expect("read"), Some(v));
        assert_eq!(r, b"payload", "the preamble alone is consumed");
        let mut empty = Vec::new();
        block_on(write_preamble(&mut empty, None)).expect("write");
        assert_eq!(empty, [0, 0]);
        assert_eq!(
            block_on(read_preamble(&mut empty.as_slice())).expect("read"),
            None
        );
        let too_long = [0xff_u8, 0xff];
        assert!(block_on(read_preamble(&mut too_long.as_slice())).is_err());
        let not_a_value = [0_u8, 1, b'\n'];
        assert!(block_on(read_preamble(&mut not_a_value.as_slice())).is_err());
        let cut = [0_u8, 5, b'a'];
        assert!(block_on(read_preamble(&mut cut.as_slice())).is_err());
    }

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
