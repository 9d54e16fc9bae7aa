//! The TLS ClientHello as the east-west gateway sees it: enough of the first flight to route a
//! connection by SNI without terminating TLS (Istio's `AUTO_PASSTHROUGH`), read with `peek` so
//! that every byte is still relayed, untouched, to the chosen endpoint.
//!
//! Written from the specifications: the record layer (RFC 8446 §5.1), the ClientHello (RFC 8446
//! §4.1.2, RFC 5246 §7.4.1.2 for the optional extensions block of TLS 1.2), `server_name`
//! (RFC 6066 §3) and ALPN (RFC 7301 §3.1). Only the framing of the hello and those two
//! extensions is checked; everything else (cipher suites, key shares, versions) is the
//! endpoint's business, since the gateway never speaks TLS itself.
//!
//! The input is an unauthenticated peer's, so the parser reads through a bounds-checked
//! [`Reader`], caps the hello at [`MAX_CLIENT_HELLO`] and its fragmentation at
//! [`MAX_RECORDS`], and looks only at record headers until the whole message has arrived: a
//! client trickling bytes costs a few comparisons per peek, not a re-parse.

use std::io;
use std::time::Duration;

use tokio::io::Interest;
use tokio::net::TcpStream;

#[cfg(test)]
mod tests;

/// Largest ClientHello the gateway reads before refusing the connection.
pub const MAX_CLIENT_HELLO: usize = 16 * 1024;

/// Most records a ClientHello may be fragmented into. Real clients use one, or two when the
/// hello outgrows 2^14 bytes; some middlebox-evasion tools split it into a handful.
pub const MAX_RECORDS: usize = 64;

/// Largest record fragment accepted: RFC 8446 §5.1 allows 2^14 bytes of plaintext, the extra
/// 2048 is the TLS 1.2 allowance for compressed records, tolerated as most stacks do.
const MAX_RECORD: usize = (1 << 14) + 2048;

/// Bytes that always hold a complete ClientHello or enough to reject it: the largest message
/// with its 4-byte handshake header, fragmented over the most records (5-byte headers).
pub(crate) const PEEK_BUFFER: usize = MAX_CLIENT_HELLO + 4 + MAX_RECORDS * 5;

const CONTENT_HANDSHAKE: u8 = 22;
const HANDSHAKE_CLIENT_HELLO: u8 = 1;
const EXT_SERVER_NAME: u16 = 0;
const EXT_ALPN: u16 = 16;
const NAME_TYPE_HOST_NAME: u8 = 0;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientHello {
    /// The server_name (host_name type), lower-cased, without a trailing dot; None when absent.
    pub sni: Option<String>,
    /// ALPN protocol names offered, in order.
    pub alpn: Vec<Vec<u8>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parse {
    Complete(ClientHello),
    /// More bytes are needed.
    Incomplete,
}

/// Why a stream's first bytes are not an acceptable ClientHello. Every variant is the client's
/// fault and none is worth retrying: the gateway closes the connection.
#[derive(Clone, Copy, Debug, thiserror::Error, PartialEq, Eq)]
pub enum HelloError {
    #[error("not TLS: the stream does not start with a handshake record")]
    NotTls,
    #[error("the first handshake message is not a ClientHello")]
    NotClientHello,
    #[error("ClientHello of {0} bytes exceeds the {MAX_CLIENT_HELLO}-byte limit")]
    TooLarge(usize),
    #[error("TLS record with major version {0}, not 3")]
    RecordVersion(u8),
    #[error("TLS record of {0} bytes exceeds 2^14 + 2048")]
    RecordTooLong(usize),
    #[error("record of content type {0} inside the ClientHello")]
    UnexpectedRecord(u8),
    #[error("ClientHello fragmented over more than {MAX_RECORDS} records")]
    TooManyRecords,
    #[error("extension {0} appears twice in the ClientHello")]
    DuplicateExtension(u16),
    #[error("server_name is not a valid host name: {0}")]
    InvalidServerName(&'static str),
    #[error("malformed ClientHello: {0}")]
    Malformed(&'static str),
}

/// Why [`peek_client_hello`] gave up.
#[derive(Debug, thiserror::Error)]
pub enum PeekError {
    /// The socket failed (reset by the peer, usually).
    #[error("reading the ClientHello: {0}")]
    Io(#[from] io::Error),
    #[error("client closed the connection after {0} bytes, before a full ClientHello")]
    Closed(usize),
    #[error("no full ClientHello within {timeout:?} ({received} bytes received)")]
    Timeout { timeout: Duration, received: usize },
    #[error(transparent)]
    Hello(#[from] HelloError),
}

/// Parses the start of a TLS stream: one or more TLS plaintext records (content type 22,
/// handshake) carrying one ClientHello handshake message, possibly split across several records.
///
/// Bytes after the ClientHello (the rest of its record, a ChangeCipherSpec, early data) are
/// ignored. Errors are reported as soon as the bytes that prove them have arrived, so a
/// connection that is not TLS is refused on its first byte.
pub fn parse(buf: &[u8]) -> Result<Parse, HelloError> {
    let mut rest = buf;
    let mut fragments: Vec<&[u8]> = Vec::new();
    loop {
        if fragments.len() == MAX_RECORDS {
            return Err(HelloError::TooManyRecords);
        }
        let Some(len) = record_header(rest, fragments.is_empty())? else {
            return Ok(Parse::Incomplete);
        };
        let body = rest.get(5..).unwrap_or_default();
        let (fragment, after) = body.split_at_checked(len).unwrap_or((body, &[]));
        fragments.push(fragment);
        if let Some(message) = handshake_message(&fragments)? {
            return client_hello(&message).map(Parse::Complete);
        }
        if fragment.len() < len {
            return Ok(Parse::Incomplete);
        }
        rest = after;
    }
}

/// Checks as much of a record header as `h` holds; the fragment length once all 5 bytes are
/// there.
fn record_header(h: &[u8], first: bool) -> Result<Option<usize>, HelloError> {
    match h.first() {
        None => return Ok(None),
        Some(&CONTENT_HANDSHAKE) => {}
        Some(_) if first => return Err(HelloError::NotTls),
        // RFC 8446 §5.1: handshake messages may not be interleaved with other record types.
        Some(&other) => return Err(HelloError::UnexpectedRecord(other)),
    }
    // The minor version varies (0x0301 is common for compatibility) and is not checked.
    if let Some(&major) = h.get(1)
        && major != 3
    {
        return Err(HelloError::RecordVersion(major));
    }
    let Some(&[hi, lo]) = h.get(3..5) else {
        return Ok(None);
    };
    let len = usize::from(u16::from_be_bytes([hi, lo]));
    if len > MAX_RECORD {
        return Err(HelloError::RecordTooLong(len));
    }
    if len == 0 {
        // RFC 8446 §5.1: zero-length handshake fragments must not be sent.
        return Err(HelloError::Malformed("empty handshake record"));
    }
    Ok(Some(len))
}

/// The ClientHello body once the fragments hold all of it; checks its type and length as soon
/// as they are there. Until then it only sums fragment lengths.
fn handshake_message(fragments: &[&[u8]]) -> Result<Option<Vec<u8>>, HelloError> {
    let mut bytes = fragments.iter().flat_map(|f| f.iter().copied());
    match bytes.next() {
        None => return Ok(None),
        Some(HANDSHAKE_CLIENT_HELLO) => {}
        Some(_) => return Err(HelloError::NotClientHello),
    }
    let (Some(a), Some(b), Some(c)) = (bytes.next(), bytes.next(), bytes.next()) else {
        return Ok(None);
    };
    let len = (usize::from(a) << 16) | (usize::from(b) << 8) | usize::from(c);
    if len > MAX_CLIENT_HELLO {
        return Err(HelloError::TooLarge(len));
    }
    let available: usize = fragments.iter().map(|f| f.len()).sum();
    if available < 4 + len {
        return Ok(None);
    }
    Ok(Some(bytes.take(len).collect()))
}

/// RFC 8446 §4.1.2 (and RFC 5246 §7.4.1.2, where the extensions may be absent).
fn client_hello(body: &[u8]) -> Result<ClientHello, HelloError> {
    let mut r = Reader(body);
    let [major, _] = r.array("truncated legacy_version")?;
    if major != 3 {
        return Err(HelloError::Malformed("legacy_version is not 3.x"));
    }
    r.take(32, "truncated random")?;
    if r.vec8("truncated legacy_session_id")?.len() > 32 {
        return Err(HelloError::Malformed("legacy_session_id over 32 bytes"));
    }
    let suites = r.vec16("truncated cipher_suites")?;
    if suites.is_empty() || suites.len() % 2 != 0 {
        return Err(HelloError::Malformed(
            "cipher_suites not a non-empty list of pairs",
        ));
    }
    if r.vec8("truncated legacy_compression_methods")?.is_empty() {
        return Err(HelloError::Malformed("no compression method"));
    }
    let mut hello = ClientHello {
        sni: None,
        alpn: Vec::new(),
    };
    if r.is_empty() {
        return Ok(hello);
    }
    let mut extensions = r.vec16("truncated extensions")?;
    if !r.is_empty() {
        return Err(HelloError::Malformed("bytes after the extensions"));
    }
    let mut seen = Vec::new();
    while !extensions.is_empty() {
        let kind = extensions.u16("truncated extension type")?;
        let data = extensions.vec16("truncated extension data")?;
        seen.push(kind);
        match kind {
            EXT_SERVER_NAME => hello.sni = server_name(data)?,
            EXT_ALPN => hello.alpn = alpn(data)?,
            _ => {}
        }
    }
    // Sorting rather than a set: a hello has at most a few thousand extensions (4 bytes each).
    seen.sort_unstable();
    if let Some(pair) = seen.windows(2).find(|p| p.first() == p.last()) {
        let kind = pair.first().copied().unwrap_or_default();
        return Err(HelloError::DuplicateExtension(kind));
    }
    Ok(hello)
}

/// RFC 6066 §3: a list of (name type, name); only `host_name` is defined, and at most one.
fn server_name(mut data: Reader<'_>) -> Result<Option<String>, HelloError> {
    let mut list = data.vec16("truncated server_name_list")?;
    if !data.is_empty() {
        return Err(HelloError::Malformed("bytes after server_name_list"));
    }
    if list.is_empty() {
        return Err(HelloError::Malformed("empty server_name_list"));
    }
    let mut host = None;
    while !list.is_empty() {
        let kind = list.u8("truncated server name type")?;
        // RFC 6066 requires names of future types to start with a 16-bit length too, so
        // unknown ones can be skipped.
        let name = list.vec16("truncated server name")?;
        if kind != NAME_TYPE_HOST_NAME {
            continue;
        }
        if host.is_some() {
            return Err(HelloError::Malformed(
                "server_name holds more than one host_name",
            ));
        }
        host = Some(host_name(name.0)?);
    }
    Ok(host)
}

/// An ASCII host name, lower-cased, its trailing dot dropped. Underscores are allowed because
/// Istio's own SNIs (`outbound_.80_._.svc.ns.svc.cluster.local`) use them.
fn host_name(raw: &[u8]) -> Result<String, HelloError> {
    let name = raw.strip_suffix(b".").unwrap_or(raw);
    if name.is_empty() {
        return Err(HelloError::InvalidServerName("empty"));
    }
    if name.len() > 253 {
        return Err(HelloError::InvalidServerName("longer than 253 characters"));
    }
    for label in name.split(|b| *b == b'.') {
        if label.is_empty() {
            return Err(HelloError::InvalidServerName("empty label"));
        }
        if label.len() > 63 {
            return Err(HelloError::InvalidServerName(
                "label longer than 63 characters",
            ));
        }
    }
    if !name
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(HelloError::InvalidServerName(
            "character other than a letter, digit, '-', '_' or '.'",
        ));
    }
    Ok(name
        .iter()
        .map(|b| char::from(b.to_ascii_lowercase()))
        .collect())
}

/// RFC 7301 §3.1: a non-empty list of non-empty protocol names.
fn alpn(mut data: Reader<'_>) -> Result<Vec<Vec<u8>>, HelloError> {
    let mut list = data.vec16("truncated protocol_name_list")?;
    if !data.is_empty() {
        return Err(HelloError::Malformed("bytes after protocol_name_list"));
    }
    if list.is_empty() {
        return Err(HelloError::Malformed("empty protocol_name_list"));
    }
    let mut names = Vec::new();
    while !list.is_empty() {
        let name = list.vec8("truncated protocol name")?;
        if name.is_empty() {
            return Err(HelloError::Malformed("empty protocol name"));
        }
        names.push(name.0.to_vec());
    }
    Ok(names)
}

/// A cursor over untrusted bytes: every read is bounds-checked and fails with what was being
/// read.
#[derive(Debug)]
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], HelloError> {
        let (head, rest) = self
            .0
            .split_at_checked(n)
            .ok_or(HelloError::Malformed(what))?;
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], HelloError> {
        self.take(N, what)?
            .try_into()
            .map_err(|_| HelloError::Malformed(what))
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, HelloError> {
        let [b] = self.array(what)?;
        Ok(b)
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, HelloError> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }

    /// A vector with a one-byte length prefix.
    fn vec8(&mut self, what: &'static str) -> Result<Reader<'a>, HelloError> {
        let n = self.u8(what)?;
        Ok(Reader(self.take(usize::from(n), what)?))
    }

    /// A vector with a two-byte length prefix.
    fn vec16(&mut self, what: &'static str) -> Result<Reader<'a>, HelloError> {
        let n = self.u16(what)?;
        Ok(Reader(self.take(usize::from(n), what)?))
    }
}

/// Reads (with `TcpStream::peek`, so no byte is consumed: the bytes are relayed untouched
/// afterwards) until a full ClientHello is available, with a deadline; errors name what went wrong.
pub async fn peek_client_hello(
    stream: &TcpStream,
    timeout: Duration,
) -> Result<ClientHello, PeekError> {
    let mut buf = vec![0u8; PEEK_BUFFER];
    let mut received = 0;
    let work = async {
        let peeker = Peeker::new(stream)?;
        loop {
            received = match peeker.more(&mut buf, received).await? {
                Some(n) => n,
                None => return Err(PeekError::Closed(received)),
            };
            let bytes = buf.get(..received).unwrap_or_default();
            match parse(bytes)? {
                Parse::Complete(hello) => return Ok(hello),
                // Cannot happen (PEEK_BUFFER bounds every incomplete hello), but must not loop.
                Parse::Incomplete if received == buf.len() => {
                    return Err(HelloError::TooLarge(received).into());
                }
                Parse::Incomplete => {}
            }
        }
    };
    let outcome = tokio::time::timeout(timeout, work).await;
    match outcome {
        Ok(r) => r,
        Err(_) => Err(PeekError::Timeout { timeout, received }),
    }
}

/// Waits for the peer's buffered bytes to grow. `peek` returns the same bytes again and again
/// while nothing new arrives, and the socket stays "readable" all that time, so a plain
/// `readable()` + `peek` loop would spin. Instead the peek runs inside `try_io`: when it shows
/// nothing new, returning `WouldBlock` clears tokio's readiness, and the next new segment (or
/// FIN) sets it again. tokio clears only the readiness it observed before the peek, so a
/// segment landing just after the peek is not lost, and no timer adds latency.
///
/// `try_io` needs a synchronous peek that leaves tokio's readiness alone; on Unix that is a
/// duplicate of the socket's descriptor (non-blocking like the original, since the two share
/// their file status flags), so no unsafe code is needed. Elsewhere, polling with a short sleep.
struct Peeker<'a> {
    stream: &'a TcpStream,
    #[cfg(unix)]
    dup: std::net::TcpStream,
}

impl<'a> Peeker<'a> {
    #[cfg(unix)]
    fn new(stream: &'a TcpStream) -> io::Result<Self> {
        use std::os::fd::AsFd;
        let dup = std::net::TcpStream::from(stream.as_fd().try_clone_to_owned()?);
        Ok(Peeker { stream, dup })
    }

    #[cfg(not(unix))]
    fn new(stream: &'a TcpStream) -> io::Result<Self> {
        Ok(Peeker { stream })
    }

    /// Peeks into `buf` once more than `seen` bytes are buffered; None when the peer closed
    /// before that.
    #[cfg(unix)]
    async fn more(&self, buf: &mut [u8], seen: usize) -> io::Result<Option<usize>> {
        loop {
            let ready = self.stream.ready(Interest::READABLE).await?;
            let peeked = self
                .stream
                .try_io(Interest::READABLE, || match self.dup.peek(buf)? {
                    n if n > 0 && n <= seen => Err(io::ErrorKind::WouldBlock.into()),
                    n => Ok(n),
                });
            match peeked {
                Ok(0) => return Ok(None),
                Ok(n) => return Ok(Some(n)),
                // The FIN came before the peek, so the peek saw everything the peer sent.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && ready.is_read_closed() => {
                    return Ok(None);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    }

    #[cfg(not(unix))]
    async fn more(&self, buf: &mut [u8], seen: usize) -> io::Result<Option<usize>> {
        loop {
            let ready = self.stream.ready(Interest::READABLE).await?;
            match self.stream.peek(buf).await? {
                0 => return Ok(None),
                n if n > seen => return Ok(Some(n)),
                _ if ready.is_read_closed() => return Ok(None),
                _ => tokio::time::sleep(Duration::from_millis(2)).await,
            }
        }
    }
}
