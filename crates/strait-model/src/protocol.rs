//! Which protocol a port speaks, decided the way istiod decides it: from the port name
//! (`<proto>` or `<proto>-<suffix>`, case-insensitive) or `appProtocol`.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    Http,
    Http2,
    Grpc,
    GrpcWeb,
    HttpProxy,
    Https,
    Tls,
    Tcp,
    Udp,
    Mongo,
    Redis,
    Mysql,
    /// Nothing recognisable: the proxy sniffs the first bytes.
    Unsupported,
}

impl Protocol {
    /// Parses a protocol name (`http`, `HTTP2`, `grpc-web`, ...).
    pub fn parse(s: &str) -> Protocol {
        match s.to_ascii_lowercase().as_str() {
            "http" => Protocol::Http,
            "http2" => Protocol::Http2,
            "grpc" => Protocol::Grpc,
            "grpc-web" => Protocol::GrpcWeb,
            "http_proxy" => Protocol::HttpProxy,
            "https" => Protocol::Https,
            "tls" => Protocol::Tls,
            "tcp" => Protocol::Tcp,
            "udp" => Protocol::Udp,
            "mongo" => Protocol::Mongo,
            "redis" => Protocol::Redis,
            "mysql" => Protocol::Mysql,
            _ => Protocol::Unsupported,
        }
    }

    /// A Kubernetes Service port's protocol (istiod's `ConvertProtocol`).
    pub fn of_port(
        number: u32,
        name: &str,
        k8s_protocol: Option<&str>,
        app_protocol: Option<&str>,
    ) -> Protocol {
        if k8s_protocol.is_some_and(|p| p.eq_ignore_ascii_case("UDP")) {
            return Protocol::Udp;
        }
        let p = match app_protocol {
            Some("kubernetes.io/h2c") => Protocol::Http2,
            Some("kubernetes.io/ws") => Protocol::Http,
            Some("kubernetes.io/wss") => Protocol::Https,
            Some(a) => Protocol::parse(a),
            None => Self::of_port_name(name),
        };
        if p == Protocol::Unsupported && matches!(number, 25 | 53 | 3306 | 27017) {
            return Protocol::Tcp;
        }
        p
    }

    /// The protocol a port name declares (`http-web` is HTTP, `grpc-web` is gRPC-Web).
    pub fn of_port_name(name: &str) -> Protocol {
        if name
            .get(..8)
            .is_some_and(|p| p.eq_ignore_ascii_case("grpc-web"))
        {
            return Protocol::GrpcWeb;
        }
        let prefix = name.split('-').next().unwrap_or("");
        Protocol::parse(prefix)
    }

    pub fn is_http(self) -> bool {
        matches!(
            self,
            Protocol::Http
                | Protocol::Http2
                | Protocol::Grpc
                | Protocol::GrpcWeb
                | Protocol::HttpProxy
        )
    }

    pub fn is_tls(self) -> bool {
        matches!(self, Protocol::Https | Protocol::Tls)
    }

    pub fn is_tcp(self) -> bool {
        matches!(
            self,
            Protocol::Tcp
                | Protocol::Https
                | Protocol::Tls
                | Protocol::Mongo
                | Protocol::Redis
                | Protocol::Mysql
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            Protocol::Http => "HTTP",
            Protocol::Http2 => "HTTP2",
            Protocol::Grpc => "GRPC",
            Protocol::GrpcWeb => "GRPC-Web",
            Protocol::HttpProxy => "HTTP_PROXY",
            Protocol::Https => "HTTPS",
            Protocol::Tls => "TLS",
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Mongo => "Mongo",
            Protocol::Redis => "Redis",
            Protocol::Mysql => "MySQL",
            Protocol::Unsupported => "auto",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_names_like_istiod() {
        assert_eq!(Protocol::of_port(80, "http", None, None), Protocol::Http);
        assert_eq!(
            Protocol::of_port(80, "HTTP-web", None, None),
            Protocol::Http
        );
        assert_eq!(
            Protocol::of_port(80, "http2-foo", None, None),
            Protocol::Http2
        );
        assert_eq!(
            Protocol::of_port(80, "grpc-web-x", None, None),
            Protocol::GrpcWeb
        );
        assert_eq!(
            Protocol::of_port(80, "httpfoo", None, None),
            Protocol::Unsupported
        );
        assert_eq!(Protocol::of_port(3306, "db", None, None), Protocol::Tcp);
        assert_eq!(
            Protocol::of_port(80, "web", None, Some("kubernetes.io/h2c")),
            Protocol::Http2
        );
        assert_eq!(
            Protocol::of_port(80, "web", None, Some("http")),
            Protocol::Http
        );
        assert_eq!(
            Protocol::of_port(53, "dns", Some("UDP"), None),
            Protocol::Udp
        );
    }
}
