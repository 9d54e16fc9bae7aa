//! Which local user owns the other end of a TCP connection on this host.
//!
//! A loopback address can be bound by any local user, so on one machine an address alone does
//! not say who is calling. The kernel does: both ends of a connection within a host are its
//! sockets, each with the uid of its owner. Looking up the peer's end (local address = the
//! peer, remote address = us) tells whose process dialled. The lookup asks the kernel for that
//! one socket ([`diag`]); where netlink is not available, it reads `/proc/net/tcp` (`tcp6`).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

mod diag;

/// The uid owning the socket at `peer` that is connected to `local`, when that socket is in
/// this process's network namespace. `None`: not found (the peer is on another host or in
/// another namespace, or has already closed).
pub fn peer_uid(peer: SocketAddr, local: SocketAddr) -> io::Result<Option<u32>> {
    let (peer, local) = (canonical(peer), canonical(local));
    if let Ok(found) = by_diag(peer, local) {
        return Ok(found);
    }
    by_proc(peer, local)
}

/// Through socket diagnostics: the peer's socket as IPv4, or as IPv6 with mapped addresses
/// when it dialled a dual-stack listener.
fn by_diag(peer: SocketAddr, local: SocketAddr) -> io::Result<Option<u32>> {
    if let Some(uid) = diag::uid_of(peer, local)? {
        return Ok(Some(uid));
    }
    match (peer.ip(), local.ip()) {
        (IpAddr::V4(p), IpAddr::V4(l)) => diag::uid_of(
            SocketAddr::new(IpAddr::V6(p.to_ipv6_mapped()), peer.port()),
            SocketAddr::new(IpAddr::V6(l.to_ipv6_mapped()), local.port()),
        ),
        _ => Ok(None),
    }
}

/// Through the socket tables in `/proc`.
fn by_proc(peer: SocketAddr, local: SocketAddr) -> io::Result<Option<u32>> {
    // IPv4 connections to a dual-stack listener are listed in tcp6 as mapped addresses.
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = match std::fs::read_to_string(table) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io::Error::new(e.kind(), format!("{table}: {e}"))),
        };
        if let Some(uid) = find_uid(&text, peer, local) {
            return Ok(Some(uid));
        }
    }
    Ok(None)
}

/// The uid of the row whose local end is `peer` and remote end is `local`.
fn find_uid(table: &str, peer: SocketAddr, local: SocketAddr) -> Option<u32> {
    table.lines().skip(1).find_map(|line| {
        let mut fields = line.split_whitespace();
        let _slot = fields.next()?;
        let ours = parse_endpoint(fields.next()?)?;
        let theirs = parse_endpoint(fields.next()?)?;
        if ours != peer || theirs != local {
            return None;
        }
        // state, queues, timer, retransmits, then the uid.
        fields.nth(4)?.parse().ok()
    })
}

/// `0100007F:1F90` (IPv4) or 32 hex digits and a port (IPv6). The kernel prints each 32-bit
/// word of the address as a native-endian number, the port as a plain number.
fn parse_endpoint(field: &str) -> Option<SocketAddr> {
    let (addr, port) = field.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let ip = match addr.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(addr)?.to_ne_bytes())),
        32 => {
            let mut bytes = [0u8; 16];
            for (i, chunk) in bytes.chunks_mut(4).enumerate() {
                chunk.copy_from_slice(&word(addr.get(i * 8..i * 8 + 8)?)?.to_ne_bytes());
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some(canonical(SocketAddr::new(ip, port)))
}

fn word(hex: &str) -> Option<u32> {
    u32::from_str_radix(hex, 16).ok()
}

fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), addr.port()),
            None => addr,
        },
        IpAddr::V4(_) => addr,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex4(ip: [u8; 4]) -> String {
        format!("{:08X}", u32::from_ne_bytes(ip))
    }

    #[test]
    fn finds_the_peer_end_of_a_connection() {
        let table = format!(
            "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
             0: {a}:3A98 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000  0 1 1\n\
             1: {a}:3A98 {b}:C350 01 00000000:00000000 00:00000000 00000000  1000  0 2 1\n\
             2: {b}:C350 {a}:3A98 01 00000000:00000000 00:00000000 00000000  1001  0 3 1\n",
            a = hex4([127, 10, 1, 1]),
            b = hex4([127, 10, 1, 2]),
        );
        let server: SocketAddr = "127.10.1.1:15000".parse().expect("addr");
        let client: SocketAddr = "127.10.1.2:50000".parse().expect("addr");
        assert_eq!(find_uid(&table, client, server), Some(1001));
        assert_eq!(find_uid(&table, server, client), Some(1000));
        let stranger: SocketAddr = "127.10.1.3:50000".parse().expect("addr");
        assert_eq!(find_uid(&table, stranger, server), None);
        assert_eq!(
            find_uid("garbage\nnot a table at all", client, server),
            None
        );
    }

    #[test]
    fn reads_mapped_and_plain_ipv6() {
        // ::ffff:127.0.0.1, words in native order as the kernel prints them.
        let words = [
            0u32,
            0,
            u32::from_ne_bytes([0, 0, 0xff, 0xff]),
            u32::from_ne_bytes([127, 0, 0, 1]),
        ];
        let printed: String = words.iter().map(|w| format!("{w:08X}")).collect();
        assert_eq!(
            parse_endpoint(&format!("{printed}:0050")),
            Some("127.0.0.1:80".parse().expect("addr"))
        );
        assert_eq!(parse_endpoint("0100007F"), None);
        assert_eq!(parse_endpoint("XYZ:0050"), None);
    }

    #[test]
    fn a_real_loopback_connection_belongs_to_us() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let server = listener.local_addr().expect("addr");
        let client = std::net::TcpStream::connect(server).expect("connect");
        let (_accepted, peer) = listener.accept().expect("accept");
        assert_eq!(peer, client.local_addr().expect("addr"));
        let me = Some(nix::unistd::getuid().as_raw());
        assert_eq!(peer_uid(peer, server).expect("look up"), me);
        assert_eq!(by_proc(peer, server).expect("read /proc"), me);
    }
}
