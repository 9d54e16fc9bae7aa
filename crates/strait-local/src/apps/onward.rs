//! The echo app's client for `?call=URL`: one GET per call, through `HTTP_PROXY` when set.
//!
//! Local mode has no iptables, so an app reaches the mesh the way curl does behind a
//! forward proxy: it connects to its sidecar and sends the request in absolute form
//! (`GET http://helloworld.sample:5000/hello HTTP/1.1`), and the sidecar resolves the
//! service name. Plain HTTP only: mTLS is the sidecar's job.

use std::io;
use std::time::Duration;

use bytes::Bytes;
use http::uri::{Authority, PathAndQuery};
use http::{HeaderMap, Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use tracing::debug;

use super::AppError;

/// Bound on one onward call, connect to last byte.
const TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on an onward response body kept in the echo's answer, in bytes.
const MAX_BODY: usize = 1 << 20;
/// curl's default proxy port, used when `HTTP_PROXY` names none.
const DEFAULT_PROXY_PORT: u16 = 1080;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Onward {
    proxy: Option<Proxy>,
    /// `NO_PROXY` entries: host names, domain suffixes, or `*`.
    no_proxy: Vec<String>,
    /// Where the calls leave from (the pod's address).
    reach: strait_net::Reach,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Proxy {
    /// Without IPv6 brackets.
    host: String,
    port: u16,
}

#[derive(Debug)]
pub(crate) struct Reply {
    pub status: StatusCode,
    pub body: Bytes,
}

/// An onward call failed; the echo app reports it as a 502 from itself.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CallError {
    #[error("invalid URL: {0}")]
    Url(&'static str),
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        #[source]
        source: io::Error,
    },
    #[error("{0}")]
    Http(#[from] hyper::Error),
    #[error("cannot read the response body: {0}")]
    Body(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("no complete answer within {0:?}")]
    Timeout(Duration),
}

impl Onward {
    /// `http_proxy` or `HTTP_PROXY` (curl's order), and `no_proxy` or `NO_PROXY`.
    pub(crate) fn from_env() -> Result<Self, AppError> {
        let proxy = match env_var(["http_proxy", "HTTP_PROXY"]) {
            Some((var, value)) => Some(Proxy::parse(&value).map_err(|reason| AppError::Proxy {
                var,
                value,
                reason,
            })?),
            None => None,
        };
        let no_proxy = env_var(["no_proxy", "NO_PROXY"])
            .map(|(_, value)| parse_no_proxy(&value))
            .unwrap_or_default();
        Ok(Self {
            proxy,
            no_proxy,
            reach: strait_net::Reach::default(),
        })
    }

    /// The same client, connecting from the addresses `reach` says.
    pub(crate) fn leaving_from(self, reach: strait_net::Reach) -> Self {
        Self { reach, ..self }
    }

    #[cfg(test)]
    pub(crate) fn via(proxy: Proxy) -> Self {
        Self {
            proxy: Some(proxy),
            no_proxy: Vec::new(),
            reach: strait_net::Reach::default(),
        }
    }

    /// GETs `url` (`http://` assumed when no scheme is given) with `headers` added.
    pub(crate) async fn get(&self, url: &str, headers: HeaderMap) -> Result<Reply, CallError> {
        tokio::time::timeout(TIMEOUT, self.get_within(url, headers))
            .await
            .map_err(|_| CallError::Timeout(TIMEOUT))?
    }

    async fn get_within(&self, url: &str, headers: HeaderMap) -> Result<Reply, CallError> {
        let uri = parse_url(url)?;
        let authority = uri.authority().ok_or(CallError::Url("no host"))?.clone();
        let host = unbracket(authority.host());
        let proxy = self.proxy.as_ref().filter(|_| !self.bypass(host));
        let (connect_host, connect_port) = match proxy {
            Some(p) => (p.host.as_str(), p.port),
            None => (host, authority.port_u16().unwrap_or(80)),
        };
        let connect_err = |source| CallError::Connect {
            addr: format!("{connect_host}:{connect_port}"),
            source,
        };
        let addr = tokio::net::lookup_host((connect_host, connect_port))
            .await
            .map_err(connect_err)?
            .next()
            .ok_or_else(|| connect_err(io::Error::other("no address")))?;
        let stream = self.reach.connect(addr).await.map_err(connect_err)?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                debug!(error = %e, "onward connection failed");
            }
        });
        // A proxy needs the absolute form to know where to go; a server gets the origin form.
        let target = if proxy.is_some() {
            uri.clone()
        } else {
            Uri::from(
                uri.path_and_query()
                    .cloned()
                    .unwrap_or_else(|| PathAndQuery::from_static("/")),
            )
        };
        let mut request = Request::new(Empty::<Bytes>::new());
        *request.uri_mut() = target;
        request.headers_mut().extend(headers);
        request.headers_mut().insert(
            header::HOST,
            header::HeaderValue::from_str(authority.as_str())
                .map_err(|_| CallError::Url("invalid host"))?,
        );
        let response = sender.send_request(request).await?;
        let status = response.status();
        let body = Limited::new(response.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(CallError::Body)?
            .to_bytes();
        Ok(Reply { status, body })
    }

    fn bypass(&self, host: &str) -> bool {
        self.no_proxy.iter().any(|entry| {
            entry == "*"
                || host.eq_ignore_ascii_case(entry)
                || host.len() > entry.len()
                    && host.as_bytes()[host.len() - entry.len() - 1] == b'.'
                    && host[host.len() - entry.len()..].eq_ignore_ascii_case(entry)
        })
    }
}

impl Proxy {
    /// `[http://]host[:port][/]`, as curl accepts it.
    pub(crate) fn parse(value: &str) -> Result<Self, &'static str> {
        let value = value.trim();
        let rest = match value.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
            Some(_) => return Err("only http:// proxies are supported"),
            None => value,
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains('@') {
            return Err("proxy credentials are not supported");
        }
        let authority: Authority = rest.parse().map_err(|_| "expected [http://]host:port")?;
        Ok(Self {
            host: unbracket(authority.host()).to_owned(),
            port: authority.port_u16().unwrap_or(DEFAULT_PROXY_PORT),
        })
    }
}

fn parse_url(url: &str) -> Result<Uri, CallError> {
    let uri: Uri = if url.contains("://") {
        url.parse()
    } else {
        format!("http://{url}").parse()
    }
    .map_err(|_| CallError::Url("not a URL"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(CallError::Url(
                "https is not supported: call http:// and let the sidecar originate TLS",
            ));
        }
        _ => return Err(CallError::Url("only http:// URLs are supported")),
    }
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(CallError::Url("credentials in URLs are not supported"));
    }
    Ok(uri)
}

fn parse_no_proxy(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(|entry| entry.trim().trim_start_matches('.'))
        .filter(|entry| !entry.is_empty())
        .map(str::to_owned)
        .collect()
}

fn env_var(names: [&'static str; 2]) -> Option<(&'static str, String)> {
    names.into_iter().find_map(|name| {
        std::env::var(name)
            .ok()
            .filter(|value| !value.trim().is_empty())
            .map(|value| (name, value))
    })
}

fn unbracket(host: &str) -> &str {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_values_as_curl_accepts_them() {
        let p = |host: &str, port| {
            Ok(Proxy {
                host: host.to_owned(),
                port,
            })
        };
        assert_eq!(
            Proxy::parse("http://127.0.0.1:15001"),
            p("127.0.0.1", 15001)
        );
        assert_eq!(
            Proxy::parse("http://127.0.0.1:15001/"),
            p("127.0.0.1", 15001)
        );
        assert_eq!(Proxy::parse("127.0.0.1:15001"), p("127.0.0.1", 15001));
        assert_eq!(Proxy::parse("http://[::1]:3128"), p("::1", 3128));
        assert_eq!(Proxy::parse("localhost"), p("localhost", 1080));
        assert!(Proxy::parse("https://127.0.0.1:15001").is_err());
        assert!(Proxy::parse("http://user:pw@127.0.0.1:1").is_err());
    }

    #[test]
    fn no_proxy_matches_hosts_and_domain_suffixes() {
        let onward = Onward {
            proxy: None,
            no_proxy: parse_no_proxy("localhost, .internal.example,127.0.0.1"),
            ..Onward::default()
        };
        assert!(onward.bypass("localhost"));
        assert!(onward.bypass("api.internal.example"));
        assert!(onward.bypass("internal.example"));
        assert!(onward.bypass("127.0.0.1"));
        assert!(!onward.bypass("xinternal.example"));
        assert!(!onward.bypass("helloworld.sample"));
        let all = Onward {
            proxy: None,
            no_proxy: parse_no_proxy("*"),
            ..Onward::default()
        };
        assert!(all.bypass("helloworld.sample"));
    }

    #[test]
    fn urls_default_to_http_and_refuse_tls() {
        let uri = parse_url("helloworld.sample:5000/hello").unwrap();
        assert_eq!(uri.to_string(), "http://helloworld.sample:5000/hello");
        assert!(parse_url("https://helloworld.sample:5000/").is_err());
        assert!(parse_url("ftp://x/").is_err());
    }
}
