//! The little HTTP/1.1 the benchmark speaks itself: finding where a response's head and body
//! end (the load generator's hot path, so no client library's tasks and channels sit between
//! the socket and the clock), and a blocking GET for admin endpoints.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail};

/// How a response's body ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    Length(usize),
    Chunked,
    /// No length: the body runs until the server closes the connection.
    UntilClose,
}

/// A response head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    /// Bytes of the head, the blank line included: where the body starts.
    pub len: usize,
    pub framing: Framing,
    /// The server said it closes the connection after this response.
    pub close: bool,
}

/// Parses a response head from the start of `buf`: `None` until the blank line that ends it
/// has arrived.
pub fn parse_head(buf: &[u8]) -> anyhow::Result<Option<Head>> {
    let Some(end) = find(buf, b"\r\n\r\n") else {
        if buf.len() > 64 * 1024 {
            bail!("response head over 64 KiB");
        }
        return Ok(None);
    };
    let head = std::str::from_utf8(&buf[..end]).context("response head is not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.splitn(3, ' ');
    let (version, code) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if !version.starts_with("HTTP/1.") {
        bail!("not an HTTP/1 response: {status_line:?}");
    }
    let status: u16 = code
        .parse()
        .with_context(|| format!("bad status line {status_line:?}"))?;
    let mut length = None;
    let mut chunked = false;
    let mut close = version == "HTTP/1.0";
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            bail!("bad header line {line:?}");
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(
                value
                    .parse::<usize>()
                    .with_context(|| format!("bad content-length {value:?}"))?,
            );
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value
                .rsplit(',')
                .next()
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("chunked"));
        } else if name.eq_ignore_ascii_case("connection") {
            close = value
                .split(',')
                .any(|v| v.trim().eq_ignore_ascii_case("close"));
        }
    }
    // RFC 9112 §6.3: no body for 1xx, 204 and 304; chunked wins over a length.
    let framing = if (100..200).contains(&status) || status == 204 || status == 304 {
        Framing::Length(0)
    } else if chunked {
        Framing::Chunked
    } else if let Some(n) = length {
        Framing::Length(n)
    } else {
        Framing::UntilClose
    };
    Ok(Some(Head {
        status,
        len: end + 4,
        framing,
        close: close || framing == Framing::UntilClose,
    }))
}

/// How many bytes of `body` (what followed the head) make up the whole body: `None` until
/// it has all arrived. For [`Framing::UntilClose`] that is only known at the end of the
/// stream, so always `None`.
pub fn body_len(framing: Framing, body: &[u8]) -> anyhow::Result<Option<usize>> {
    match framing {
        Framing::Length(n) => Ok((body.len() >= n).then_some(n)),
        Framing::UntilClose => Ok(None),
        Framing::Chunked => chunked_len(body),
    }
}

fn chunked_len(body: &[u8]) -> anyhow::Result<Option<usize>> {
    let mut at = 0;
    loop {
        let Some(line_end) = find(&body[at..], b"\r\n") else {
            return Ok(None);
        };
        let line = std::str::from_utf8(&body[at..at + line_end]).context("bad chunk size")?;
        let size = line.split(';').next().unwrap_or("").trim();
        let size =
            usize::from_str_radix(size, 16).with_context(|| format!("bad chunk size {size:?}"))?;
        at += line_end + 2;
        if size == 0 {
            // Trailers, if any, then a blank line.
            if body[at..].starts_with(b"\r\n") {
                return Ok(Some(at + 2));
            }
            return Ok(find(&body[at..], b"\r\n\r\n").map(|n| at + n + 4));
        }
        if body.len() < at + size + 2 {
            return Ok(None);
        }
        at += size + 2;
    }
}

/// The chunked body's data, without the framing (for reading admin answers).
fn dechunk(body: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(body.len());
    let mut at = 0;
    loop {
        let line_end = find(&body[at..], b"\r\n").context("truncated chunk")?;
        let line = std::str::from_utf8(&body[at..at + line_end]).context("bad chunk size")?;
        let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
            .context("bad chunk size")?;
        at += line_end + 2;
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(body.get(at..at + size).context("truncated chunk")?);
        at += size + 2;
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A blocking `GET path` from `addr` with `Connection: close`: the status and the body.
pub fn get(addr: SocketAddr, path: &str, timeout: Duration) -> anyhow::Result<(u16, Vec<u8>)> {
    let mut s = std::net::TcpStream::connect_timeout(&addr, timeout)
        .with_context(|| format!("connecting to {addr}"))?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    // One write: a server that answers after its first read and closes must not find
    // the rest of the request unread (it would reset the connection).
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(request.as_bytes())?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)
        .with_context(|| format!("reading {path} from {addr}"))?;
    let head = parse_head(&buf)?.with_context(|| format!("{addr}{path}: no HTTP head"))?;
    let body = &buf[head.len..];
    let body = match head.framing {
        Framing::Chunked => dechunk(body)?,
        Framing::Length(n) => body.get(..n).context("truncated body")?.to_vec(),
        Framing::UntilClose => body.to_vec(),
    };
    Ok((head.status, body))
}

/// [`get`], failing unless the status is 200.
pub fn get_ok(addr: SocketAddr, path: &str, timeout: Duration) -> anyhow::Result<Vec<u8>> {
    let (status, body) = get(addr, path, timeout)?;
    if status != 200 {
        bail!(
            "GET http://{addr}{path}: status {status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(200)]).trim()
        );
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_and_framing() {
        let r = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-type: text/plain\r\n\r\nhello";
        let h = parse_head(r).unwrap().unwrap();
        assert_eq!(
            h,
            Head {
                status: 200,
                len: r.len() - 5,
                framing: Framing::Length(5),
                close: false
            }
        );
        assert_eq!(body_len(h.framing, &r[h.len..]).unwrap(), Some(5));
        assert_eq!(body_len(h.framing, b"hel").unwrap(), None);

        assert_eq!(parse_head(b"HTTP/1.1 200 OK\r\ncontent-le").unwrap(), None);
        let close = parse_head(b"HTTP/1.1 503 x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(close.close);
        assert_eq!(close.status, 503);
        let old = parse_head(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(old.close);
        let no_length = parse_head(b"HTTP/1.1 200 OK\r\n\r\n").unwrap().unwrap();
        assert_eq!(no_length.framing, Framing::UntilClose);
        assert!(no_length.close);
        let empty = parse_head(b"HTTP/1.1 204 No Content\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(empty.framing, Framing::Length(0));
        assert!(!empty.close);
        assert!(parse_head(b"SSH-2.0\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 abc\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nbroken\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n").is_err());
    }

    #[test]
    fn chunked_bodies() {
        let head = parse_head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(head.framing, Framing::Chunked);
        let body = b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n";
        assert_eq!(body_len(Framing::Chunked, body).unwrap(), Some(body.len()));
        assert_eq!(dechunk(body).unwrap(), b"hello world");
        // Not all there yet, at every cut.
        for cut in 0..body.len() {
            assert_eq!(
                body_len(Framing::Chunked, &body[..cut]).unwrap(),
                None,
                "{cut}"
            );
        }
        let trailers = b"0\r\nx-trailer: 1\r\n\r\n";
        assert_eq!(
            body_len(Framing::Chunked, trailers).unwrap(),
            Some(trailers.len())
        );
        assert!(body_len(Framing::Chunked, b"zz\r\n").is_err());
    }

    #[test]
    fn blocking_get() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut req = Vec::new();
            let mut chunk = [0u8; 1024];
            while find(&req, b"\r\n\r\n").is_none() {
                let n = s.read(&mut chunk).unwrap();
                assert!(n > 0, "request cut short");
                req.extend_from_slice(&chunk[..n]);
            }
            s.write_all(
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
            )
            .unwrap();
        });
        let body = get_ok(addr, "/ready", Duration::from_secs(2)).unwrap();
        assert_eq!(body, b"ok");
        server.join().unwrap();
    }
}
