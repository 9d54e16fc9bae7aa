//! The kernel's socket diagnostics (`NETLINK_SOCK_DIAG`, what `ss` uses), asked for one
//! socket by its four-tuple: a hash lookup in the kernel, where reading `/proc/net/tcp` has the
//! kernel format every socket of the namespace (milliseconds with a few thousand sockets, paid
//! per accepted connection).
//!
//! Layouts are those of `linux/netlink.h` and `linux/inet_diag.h`, in host byte order except
//! ports and addresses (network order).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;

use nix::sys::socket::{
    AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType, recv, send, socket,
};

const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLM_F_REQUEST: u16 = 1;
const NLMSG_HDRLEN: usize = 16;
const NLMSG_ERROR: u16 = 2;
const ENOENT: i32 = 2;
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;
const IPPROTO_TCP: u8 = 6;
/// `inet_diag_msg`: family, state, timer, retrans (4), sockid (48), expires, rqueue, wqueue
/// (12), then the uid.
const UID_OFFSET: usize = NLMSG_HDRLEN + 4 + 48 + 12;

/// The uid owning the TCP socket whose local end is `socket` and remote end is `remote`.
/// `Ok(None)`: no such socket in this network namespace. `Err`: netlink is not available.
pub fn uid_of(socket_addr: SocketAddr, remote: SocketAddr) -> io::Result<Option<u32>> {
    let fd = socket(
        AddressFamily::Netlink,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkSockDiag,
    )?;
    send(
        fd.as_raw_fd(),
        &request(socket_addr, remote),
        MsgFlags::empty(),
    )?;
    let mut buf = [0u8; 512];
    let n = recv(fd.as_raw_fd(), &mut buf, MsgFlags::empty())?;
    parse_reply(buf.get(..n).unwrap_or(&[]))
}

/// A `SOCK_DIAG_BY_FAMILY` request for exactly one socket (no dump).
fn request(local: SocketAddr, remote: SocketAddr) -> Vec<u8> {
    let family = if local.is_ipv4() { AF_INET } else { AF_INET6 };
    let mut m = Vec::with_capacity(NLMSG_HDRLEN + 56);
    m.extend_from_slice(&72u32.to_ne_bytes()); // nlmsg_len
    m.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    m.extend_from_slice(&NLM_F_REQUEST.to_ne_bytes());
    m.extend_from_slice(&1u32.to_ne_bytes()); // seq
    m.extend_from_slice(&0u32.to_ne_bytes()); // pid: the kernel fills it in
    // inet_diag_req_v2
    m.extend_from_slice(&[family, IPPROTO_TCP, 0, 0]);
    m.extend_from_slice(&u32::MAX.to_ne_bytes()); // every state
    // inet_diag_sockid
    m.extend_from_slice(&local.port().to_be_bytes());
    m.extend_from_slice(&remote.port().to_be_bytes());
    m.extend_from_slice(&address(local.ip()));
    m.extend_from_slice(&address(remote.ip()));
    m.extend_from_slice(&0u32.to_ne_bytes()); // any interface
    m.extend_from_slice(&u32::MAX.to_ne_bytes()); // INET_DIAG_NOCOOKIE
    m.extend_from_slice(&u32::MAX.to_ne_bytes());
    m
}

/// An address as `inet_diag_sockid` holds it: 16 bytes, an IPv4 one in the first four.
fn address(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => {
            let mut out = [0u8; 16];
            out[..4].copy_from_slice(&v4.octets());
            out
        }
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// The uid in a reply; `Ok(None)` when the kernel has no such socket (`NLMSG_ERROR` with
/// `ENOENT`) or the reply is malformed; `Err` for any other error the kernel reports (socket
/// diagnostics for TCP not available, say), so that the caller can look elsewhere.
fn parse_reply(reply: &[u8]) -> io::Result<Option<u32>> {
    let Some(kind) = field(reply, 4).map(u16::from_ne_bytes) else {
        return Ok(None);
    };
    if kind == NLMSG_ERROR {
        let errno = field(reply, NLMSG_HDRLEN).map_or(0, i32::from_ne_bytes);
        return match -errno {
            0 | ENOENT => Ok(None),
            e => Err(io::Error::from_raw_os_error(e)),
        };
    }
    if kind != SOCK_DIAG_BY_FAMILY {
        return Ok(None);
    }
    Ok(field(reply, UID_OFFSET).map(u32::from_ne_bytes))
}

/// `N` bytes of `reply` at `at`, if it is that long.
fn field<const N: usize>(reply: &[u8], at: usize) -> Option<[u8; N]> {
    reply.get(at..at + N)?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_72_bytes_with_ports_and_addresses_in_network_order() {
        let local: SocketAddr = "127.10.1.2:50000".parse().expect("addr");
        let remote: SocketAddr = "127.10.1.1:15001".parse().expect("addr");
        let m = request(local, remote);
        assert_eq!(m.len(), 72);
        assert_eq!(m[16], AF_INET);
        assert_eq!(&m[24..26], &50000u16.to_be_bytes());
        assert_eq!(&m[26..28], &15001u16.to_be_bytes());
        assert_eq!(&m[28..32], &[127, 10, 1, 2]);
        assert_eq!(&m[44..48], &[127, 10, 1, 1]);
    }

    #[test]
    fn replies_short_or_for_no_socket_give_nothing_and_other_errors_fail() {
        let parsed = |r: &[u8]| parse_reply(r).map_err(|e| e.raw_os_error());
        assert_eq!(parsed(&[]), Ok(None));
        let mut error = vec![0u8; 36];
        error[4..6].copy_from_slice(&NLMSG_ERROR.to_ne_bytes());
        error[16..20].copy_from_slice(&(-ENOENT).to_ne_bytes());
        assert_eq!(parsed(&error), Ok(None), "no such socket");
        error[16..20].copy_from_slice(&(-22i32).to_ne_bytes());
        assert_eq!(parsed(&error), Err(Some(22)), "EINVAL: look elsewhere");
        let mut ok = vec![0u8; UID_OFFSET + 8];
        ok[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
        ok[UID_OFFSET..UID_OFFSET + 4].copy_from_slice(&1001u32.to_ne_bytes());
        assert_eq!(parsed(&ok), Ok(Some(1001)));
        assert_eq!(parsed(&ok[..UID_OFFSET]), Ok(None), "truncated");
    }

    #[test]
    fn the_kernel_finds_a_real_loopback_connection_and_not_a_closed_one() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let server = listener.local_addr().expect("addr");
        let client = std::net::TcpStream::connect(server).expect("connect");
        let (_accepted, peer) = listener.accept().expect("accept");
        let uid = uid_of(peer, server).expect("netlink sock_diag");
        assert_eq!(uid, Some(nix::unistd::getuid().as_raw()));
        let stranger: SocketAddr = "127.0.0.1:1".parse().expect("addr");
        assert_eq!(uid_of(stranger, server).expect("netlink sock_diag"), None);
        drop(client);
    }
}
