use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, RootCertStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;

/// The first flight of a real rustls client: its ClientHello in one record.
fn rustls_hello(name: ServerName<'static>, alpn: &[&[u8]], tls12_only: bool) -> Vec<u8> {
    let builder = ClientConfig::builder_with_provider(crate::tls::provider());
    let builder = if tls12_only {
        builder.with_protocol_versions(&[&rustls::version::TLS12])
    } else {
        builder.with_safe_default_protocol_versions()
    };
    // The handshake never gets past the hello, so no root is needed.
    let mut cfg = builder
        .expect("versions")
        .with_root_certificates(RootCertStore::empty())
        .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let mut conn = ClientConnection::new(Arc::new(cfg), name).expect("client");
    let mut out = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut out).expect("write_tls");
    }
    out
}

fn dns(name: &str) -> ServerName<'static> {
    ServerName::try_from(name.to_string()).expect("dns name")
}

fn istio_hello() -> Vec<u8> {
    rustls_hello(
        dns("outbound_.5000_._.hw.sample.svc.cluster.local"),
        &[b"istio-peer-exchange", b"istio"],
        false,
    )
}

fn complete(buf: &[u8]) -> ClientHello {
    match parse(buf) {
        Ok(Parse::Complete(h)) => h,
        other => panic!("expected a complete hello, got {other:?}"),
    }
}

/// The handshake message (header included) inside a single-record hello.
fn message(record: &[u8]) -> &[u8] {
    let len = usize::from(u16::from_be_bytes([record[3], record[4]]));
    assert_eq!(record.len(), 5 + len, "one record");
    &record[5..]
}

/// `message` split into records of the given sizes (the last one takes the rest).
fn records(message: &[u8], sizes: &[usize]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = message;
    for (i, size) in sizes.iter().enumerate() {
        let n = if i + 1 == sizes.len() {
            rest.len()
        } else {
            *size
        };
        let (fragment, after) = rest.split_at(n);
        out.extend_from_slice(&[22, 3, 1]);
        out.extend_from_slice(&u16::try_from(n).expect("record size").to_be_bytes());
        out.extend_from_slice(fragment);
        rest = after;
    }
    out
}

/// A hand-built hello (TLS 1.2 layout) with the given extensions, in one record; `None` leaves
/// the extensions block out altogether.
fn hello_with(extensions: Option<&[(u16, Vec<u8>)]>) -> Vec<u8> {
    let mut body = vec![3, 3];
    body.extend_from_slice(&[7; 32]);
    body.push(0); // no session id
    body.extend_from_slice(&[0, 2, 0x13, 0x01]);
    body.extend_from_slice(&[1, 0]);
    if let Some(extensions) = extensions {
        let mut block = Vec::new();
        for (kind, data) in extensions {
            block.extend_from_slice(&kind.to_be_bytes());
            block.extend_from_slice(&u16::try_from(data.len()).expect("len").to_be_bytes());
            block.extend_from_slice(data);
        }
        body.extend_from_slice(&u16::try_from(block.len()).expect("len").to_be_bytes());
        body.extend_from_slice(&block);
    }
    let len = u32::try_from(body.len()).expect("len").to_be_bytes();
    let mut msg = vec![1, len[1], len[2], len[3]];
    msg.extend_from_slice(&body);
    records(&msg, &[msg.len()])
}

fn sni_ext(names: &[(u8, &[u8])]) -> (u16, Vec<u8>) {
    let mut list = Vec::new();
    for (kind, name) in names {
        list.push(*kind);
        list.extend_from_slice(&u16::try_from(name.len()).expect("len").to_be_bytes());
        list.extend_from_slice(name);
    }
    let mut data = u16::try_from(list.len())
        .expect("len")
        .to_be_bytes()
        .to_vec();
    data.extend_from_slice(&list);
    (0, data)
}

fn alpn_ext(names: &[&[u8]]) -> (u16, Vec<u8>) {
    let mut list = Vec::new();
    for name in names {
        list.push(u8::try_from(name.len()).expect("len"));
        list.extend_from_slice(name);
    }
    let mut data = u16::try_from(list.len())
        .expect("len")
        .to_be_bytes()
        .to_vec();
    data.extend_from_slice(&list);
    (16, data)
}

fn host(name: &[u8]) -> Result<Parse, HelloError> {
    parse(&hello_with(Some(&[sni_ext(&[(0, name)])])))
}

#[test]
fn rustls_hello_gives_sni_and_alpn() {
    let hello = complete(&istio_hello());
    assert_eq!(
        hello.sni.as_deref(),
        Some("outbound_.5000_._.hw.sample.svc.cluster.local")
    );
    assert_eq!(
        hello.alpn,
        vec![b"istio-peer-exchange".to_vec(), b"istio".to_vec()]
    );
}

#[test]
fn tls12_hello_without_alpn() {
    let hello = complete(&rustls_hello(dns("Example.COM"), &[], true));
    assert_eq!(hello.sni.as_deref(), Some("example.com"));
    assert!(hello.alpn.is_empty());
}

#[test]
fn ip_address_server_name_sends_no_sni() {
    let ip = ServerName::IpAddress(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)).into());
    let hello = complete(&rustls_hello(ip, &[b"h2"], false));
    assert_eq!(hello.sni, None);
    assert_eq!(hello.alpn, vec![b"h2".to_vec()]);
}

#[test]
fn every_prefix_is_incomplete() {
    let full = istio_hello();
    for n in 0..full.len() {
        assert_eq!(
            parse(&full[..n]),
            Ok(Parse::Incomplete),
            "prefix of {n} bytes"
        );
    }
    complete(&full);
}

#[test]
fn bytes_after_the_hello_are_ignored() {
    let mut stream = istio_hello();
    let expected = complete(&stream);
    // A ChangeCipherSpec record, as TLS 1.3 middlebox-compatibility mode sends next.
    stream.extend_from_slice(&[20, 3, 3, 0, 1, 1]);
    assert_eq!(complete(&stream), expected);
}

#[test]
fn hello_split_across_records() {
    let record = istio_hello();
    let expected = complete(&record);
    let msg = message(&record);
    // Splitting inside the handshake header too.
    for sizes in [
        &[2, 100][..],
        &[1, 1, 1, 1, 1],
        &[4, 50, 50],
        &[msg.len() - 1, 1],
    ] {
        let split = records(msg, sizes);
        assert_eq!(complete(&split), expected, "records of {sizes:?}");
        for n in 0..split.len() {
            assert_eq!(parse(&split[..n]), Ok(Parse::Incomplete), "{sizes:?} {n}");
        }
    }
}

#[test]
fn fragmentation_is_bounded() {
    let record = istio_hello();
    let msg = message(&record);
    let at_limit = records(msg, &vec![1; MAX_RECORDS]);
    complete(&at_limit);
    let over = records(msg, &vec![1; MAX_RECORDS + 1]);
    assert_eq!(parse(&over), Err(HelloError::TooManyRecords));
    // Decided without waiting for the record after the limit.
    let cut = MAX_RECORDS * 6;
    assert_eq!(parse(&over[..cut]), Err(HelloError::TooManyRecords));
}

#[test]
fn largest_hello_fits_the_peek_buffer() {
    // A padding extension (21) sized so the body is exactly MAX_CLIENT_HELLO bytes.
    let base = hello_with(Some(&[(21, Vec::new())])).len() - 9;
    let largest = hello_with(Some(&[(21, vec![0; MAX_CLIENT_HELLO - base])]));
    let msg = &largest[5..];
    assert_eq!(msg.len(), 4 + MAX_CLIENT_HELLO);
    let mut sizes = vec![1; MAX_RECORDS - 1];
    sizes.push(0);
    let stream = records(msg, &sizes);
    assert_eq!(stream.len(), PEEK_BUFFER);
    complete(&stream);

    let too_large = hello_with(Some(&[(21, vec![0; MAX_CLIENT_HELLO - base + 1])]));
    // Refused from the handshake header alone.
    assert_eq!(
        parse(&too_large[..9]),
        Err(HelloError::TooLarge(MAX_CLIENT_HELLO + 1))
    );
}

#[test]
fn not_tls() {
    assert_eq!(parse(b"GET / HTTP/1.1\r\n"), Err(HelloError::NotTls));
    assert_eq!(parse(b"P"), Err(HelloError::NotTls));
    // An SSL 2.0-style hello.
    assert_eq!(parse(&[0x80, 0x2e, 1, 3, 1]), Err(HelloError::NotTls));
}

#[test]
fn record_header_errors() {
    assert_eq!(parse(&[22, 2]), Err(HelloError::RecordVersion(2)));
    assert_eq!(
        parse(&[22, 3, 3, 0x48, 0x01]),
        Err(HelloError::RecordTooLong(0x4801))
    );
    assert_eq!(parse(&[22, 3, 3, 0x48, 0x00]), Ok(Parse::Incomplete));
    assert_eq!(
        parse(&[22, 3, 3, 0, 0]),
        Err(HelloError::Malformed("empty handshake record"))
    );
    let msg = message(&istio_hello()).to_vec();
    let mut split = records(&msg, &[10, 0]);
    split[15] = 23;
    assert_eq!(parse(&split), Err(HelloError::UnexpectedRecord(23)));
}

#[test]
fn handshake_header_errors() {
    // A ServerHello, refused on its type byte.
    assert_eq!(
        parse(&[22, 3, 3, 0, 80, 2]),
        Err(HelloError::NotClientHello)
    );
    assert_eq!(
        parse(&[22, 3, 3, 0, 80, 1, 1, 0, 0]),
        Err(HelloError::TooLarge(65536))
    );
}

#[test]
fn truncated_and_corrupted_hellos() {
    let full = istio_hello();
    let msg = message(&full);
    // A handshake length shorter than the body: fields overrun the message.
    for cut in [1, 10, 40, 100, msg.len() - 5] {
        let len = msg.len() - 4 - cut;
        let mut short = msg[..4 + len].to_vec();
        short[1..4].copy_from_slice(&u32::try_from(len).expect("len").to_be_bytes()[1..]);
        let err = parse(&records(&short, &[short.len()]));
        assert!(
            matches!(err, Err(HelloError::Malformed(_))),
            "{cut}: {err:?}"
        );
    }
    // Bytes after the extensions block.
    let mut long = msg.to_vec();
    long.push(0);
    let len = u32::try_from(long.len() - 4).expect("len").to_be_bytes();
    long[1..4].copy_from_slice(&len[1..]);
    assert_eq!(
        parse(&records(&long, &[long.len()])),
        Err(HelloError::Malformed("bytes after the extensions"))
    );
    // Session id longer than 32 bytes (offset: record 5, handshake 4, version 2, random 32).
    let mut bad = full.clone();
    bad[43] = 33;
    assert!(matches!(parse(&bad), Err(HelloError::Malformed(_))));
    // A client version that is not 3.x.
    let mut bad = full.clone();
    bad[9] = 4;
    assert_eq!(
        parse(&bad),
        Err(HelloError::Malformed("legacy_version is not 3.x"))
    );
}

#[test]
fn hello_without_extensions() {
    let hello = complete(&hello_with(None));
    assert_eq!(
        hello,
        ClientHello {
            sni: None,
            alpn: Vec::new()
        }
    );
    assert_eq!(complete(&hello_with(Some(&[]))), hello);
}

#[test]
fn cipher_suites_and_compression_are_checked() {
    let mut odd = hello_with(None);
    // cipher_suites length at 5 + 4 + 2 + 32 + 1.
    odd[45] = 1;
    assert!(matches!(parse(&odd), Err(HelloError::Malformed(_))));
    let mut none = hello_with(None);
    none[48] = 0; // compression methods length
    assert!(matches!(parse(&none), Err(HelloError::Malformed(_))));
}

#[test]
fn host_names() {
    let sni = |name: &[u8]| match host(name) {
        Ok(Parse::Complete(h)) => Ok(h.sni),
        Ok(Parse::Incomplete) => panic!("incomplete"),
        Err(e) => Err(e),
    };
    assert_eq!(sni(b"Hw.Sample.SVC."), Ok(Some("hw.sample.svc".into())));
    assert_eq!(sni(b"a-b_c.9"), Ok(Some("a-b_c.9".into())));
    let long_label = [b'a'; 64];
    let long_name = [
        &[b'a'; 63][..],
        b".",
        &[b'a'; 63],
        b".",
        &[b'a'; 63],
        b".",
        &[b'a'; 62],
    ]
    .concat();
    assert_eq!(long_name.len(), 254);
    for bad in [
        &b""[..],
        b".",
        b"a..b",
        b".a",
        b"a b",
        b"a/b",
        b"caf\xc3\xa9",
        b"a\0",
        b"a:443",
        &long_label[..],
        long_name.as_slice(),
    ] {
        assert!(
            matches!(sni(bad), Err(HelloError::InvalidServerName(_))),
            "{bad:?}"
        );
    }
    assert_eq!(
        sni(&long_name[1..]).map(|s| s.map(|s| s.len())),
        Ok(Some(253))
    );
}

#[test]
fn server_name_list_rules() {
    let two = hello_with(Some(&[sni_ext(&[(0, b"a.b"), (0, b"c.d")])]));
    assert_eq!(
        parse(&two),
        Err(HelloError::Malformed(
            "server_name holds more than one host_name"
        ))
    );
    // Unknown name types are skipped.
    let other = hello_with(Some(&[sni_ext(&[(7, b"\x01\x02"), (0, b"a.b")])]));
    assert_eq!(complete(&other).sni.as_deref(), Some("a.b"));
    let empty = hello_with(Some(&[(0, vec![0, 0])]));
    assert_eq!(
        parse(&empty),
        Err(HelloError::Malformed("empty server_name_list"))
    );
    let overrun = hello_with(Some(&[(0, vec![0, 9, 0, 0, 1, b'a'])]));
    assert!(matches!(parse(&overrun), Err(HelloError::Malformed(_))));
}

#[test]
fn alpn_rules() {
    let ok = hello_with(Some(&[alpn_ext(&[b"h2", b"http/1.1"])]));
    assert_eq!(
        complete(&ok).alpn,
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    );
    let empty_name = hello_with(Some(&[alpn_ext(&[b"h2", b""])]));
    assert_eq!(
        parse(&empty_name),
        Err(HelloError::Malformed("empty protocol name"))
    );
    let empty_list = hello_with(Some(&[alpn_ext(&[])]));
    assert_eq!(
        parse(&empty_list),
        Err(HelloError::Malformed("empty protocol_name_list"))
    );
}

#[test]
fn duplicate_extensions() {
    let dup_sni = hello_with(Some(&[
        sni_ext(&[(0, b"a.b")]),
        (5, vec![]),
        sni_ext(&[(0, b"c.d")]),
    ]));
    assert_eq!(parse(&dup_sni), Err(HelloError::DuplicateExtension(0)));
    let dup_other = hello_with(Some(&[(43, vec![2, 3, 4]), (43, vec![2, 3, 4])]));
    assert_eq!(parse(&dup_other), Err(HelloError::DuplicateExtension(43)));
}

/// A connected loopback pair: (client, server side as the gateway accepted it).
async fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
    (client.expect("connect"), accepted.expect("accept").0)
}

#[tokio::test]
async fn peek_waits_for_the_second_part_and_consumes_nothing() {
    let (mut client, mut server) = pair().await;
    let hello = istio_hello();
    let (first, second) = hello.split_at(hello.len() / 2);
    let (first, second) = (first.to_vec(), second.to_vec());
    let writer = tokio::spawn(async move {
        client.write_all(&first).await.expect("write");
        tokio::time::sleep(Duration::from_millis(100)).await;
        client.write_all(&second).await.expect("write");
        client
    });
    let peeked = peek_client_hello(&server, Duration::from_secs(10))
        .await
        .expect("hello");
    assert_eq!(
        peeked.sni.as_deref(),
        Some("outbound_.5000_._.hw.sample.svc.cluster.local")
    );
    let _client = writer.await.expect("writer");
    let mut relayed = vec![0; hello.len()];
    server.read_exact(&mut relayed).await.expect("read");
    assert_eq!(relayed, hello);
}

#[tokio::test]
async fn peek_reports_an_early_close() {
    let (mut client, server) = pair().await;
    client.write_all(&istio_hello()[..20]).await.expect("write");
    client.shutdown().await.expect("shutdown");
    let err = peek_client_hello(&server, Duration::from_secs(10)).await;
    assert!(matches!(err, Err(PeekError::Closed(20))), "{err:?}");

    let (client, server) = pair().await;
    drop(client);
    let err = peek_client_hello(&server, Duration::from_secs(10)).await;
    assert!(matches!(err, Err(PeekError::Closed(0))), "{err:?}");
}

#[tokio::test]
async fn peek_gives_up_at_the_deadline() {
    let (mut client, server) = pair().await;
    client.write_all(&istio_hello()[..30]).await.expect("write");
    let err = peek_client_hello(&server, Duration::from_millis(200)).await;
    assert!(
        matches!(err, Err(PeekError::Timeout { received: 30, .. })),
        "{err:?}"
    );
    drop(client);
}

#[tokio::test]
async fn peek_refuses_plaintext_at_once() {
    let (mut client, server) = pair().await;
    client
        .write_all(b"GET / HTTP/1.1\r\n")
        .await
        .expect("write");
    let err = peek_client_hello(&server, Duration::from_secs(10)).await;
    assert!(
        matches!(err, Err(PeekError::Hello(HelloError::NotTls))),
        "{err:?}"
    );
}
