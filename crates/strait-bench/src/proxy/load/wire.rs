//! The generator's side of a connection: opening and priming connections, and one request
//! and its whole answer on a keep-alive connection.

use std::net::SocketAddr;
use std::ops::Range;
use std::sync::Arc;

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::CONNECT_TIMEOUT;
use crate::proxy::http;

/// Opens `n` connections to `addr` at once and sends one request on each, so that the
/// proxy has accepted each connection and set up what serves it before the run; `None` for
/// one that failed (its first request in the run tries again, and counts the error).
pub(super) async fn open_all(
    addr: SocketAddr,
    request: &Arc<[u8]>,
    n: usize,
) -> Vec<Option<TcpStream>> {
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        let request = request.clone();
        set.spawn(async move {
            let prime = async {
                let mut conn = Some(connect(addr).await?);
                let mut buf = Vec::with_capacity(16 * 1024);
                exchange(&mut conn, addr, &request, &mut buf).await?;
                Ok::<_, anyhow::Error>(conn)
            };
            (i, tokio::time::timeout(CONNECT_TIMEOUT, prime).await)
        });
    }
    let mut out: Vec<Option<TcpStream>> = Vec::new();
    out.resize_with(n, || None);
    while let Some(joined) = set.join_next().await {
        if let Ok((i, Ok(Ok(conn)))) = joined
            && let Some(slot) = out.get_mut(i)
        {
            *slot = conn;
        }
    }
    out
}

/// Sends one request on `conn` (connecting first if needed) and reads the whole answer into
/// `buf`: its status and where its body lies. A connection the server closes, or that
/// failed, is dropped; the next request opens another.
pub(super) async fn exchange(
    conn: &mut Option<TcpStream>,
    addr: SocketAddr,
    request: &[u8],
    buf: &mut Vec<u8>,
) -> anyhow::Result<(u16, Range<usize>)> {
    let stream = match conn {
        Some(s) => s,
        None => conn.insert(connect(addr).await?),
    };
    match roundtrip(stream, request, buf).await {
        Ok((status, body, close)) => {
            if close {
                *conn = None;
            }
            Ok((status, body))
        }
        Err(e) => {
            *conn = None;
            Err(e)
        }
    }
}

async fn connect(addr: SocketAddr) -> anyhow::Result<TcpStream> {
    let tcp = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    tcp.set_nodelay(true)?;
    Ok(tcp)
}

async fn roundtrip(
    stream: &mut TcpStream,
    request: &[u8],
    buf: &mut Vec<u8>,
) -> anyhow::Result<(u16, Range<usize>, bool)> {
    stream.write_all(request).await.context("sending")?;
    buf.clear();
    let head = loop {
        if let Some(head) = http::parse_head(buf)? {
            break head;
        }
        if read_more(stream, buf).await? == 0 {
            bail!("connection closed before the response");
        }
    };
    loop {
        if let Some(n) = http::body_len(head.framing, &buf[head.len..])? {
            return Ok((head.status, head.len..head.len + n, head.close));
        }
        if read_more(stream, buf).await? == 0 {
            if head.framing == http::Framing::UntilClose {
                return Ok((head.status, head.len..buf.len(), true));
            }
            bail!("connection closed in the middle of the body");
        }
    }
}

async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> anyhow::Result<usize> {
    if buf.capacity() - buf.len() < 4096 {
        buf.reserve(16 * 1024);
    }
    stream.read_buf(buf).await.context("reading the response")
}
