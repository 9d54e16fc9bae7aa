//! Access logs in Istio's formats, so that the tools and habits built on Istio's logs work
//! unchanged: its default text format (`EnvoyTextLogFormat`), or the same fields as one JSON
//! object per line (`meshConfig.accessLogEncoding: JSON`), written to standard output (or
//! standard error for `accessLogFile: /dev/stderr`). A value the proxy does not have is `-`
//! in text and `null` in JSON, as Envoy writes it; numbers stay numbers in JSON.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::SocketAddr;
use std::time::SystemTime;

use http::{HeaderMap, Request, Version};
use serde_json::{Value, json};
use strait_config::{AccessLogEncoding, MeshSettings};

/// What is known of a request when it arrives; completed by [`Entry::write`].
#[derive(Clone, Debug)]
pub struct Entry {
    start: SystemTime,
    method: String,
    /// `x-envoy-original-path` if set, else the path with its query.
    path: String,
    protocol: &'static str,
    x_forwarded_for: Option<String>,
    user_agent: Option<String>,
    request_id: Option<String>,
    authority: Option<String>,
    pub downstream_local: Option<SocketAddr>,
    pub downstream_remote: Option<SocketAddr>,
    pub requested_server_name: Option<String>,
    pub route_name: Option<String>,
    pub upstream_cluster: Option<String>,
    pub upstream_host: Option<String>,
    encoding: AccessLogEncoding,
    stderr: bool,
}

/// How the request ended.
#[derive(Clone, Copy, Debug, Default)]
pub struct Outcome<'a> {
    pub code: u16,
    /// Envoy's response flags (`UF`, `UH`, ...); empty for none.
    pub flags: &'a str,
    /// Envoy's response code details (`via_upstream`, `rbac_access_denied_matched_policy[...]`).
    pub details: &'a str,
    pub bytes_received: u64,
    pub bytes_sent: u64,
    pub duration_ms: u64,
    /// Why the connection to the upstream failed, when it did.
    pub upstream_failure: Option<&'a str>,
}

fn header(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

impl Entry {
    /// The request's part of the entry, when `mesh` turns access logs on.
    pub fn request<B>(req: &Request<B>, mesh: &MeshSettings) -> Option<Box<Entry>> {
        if !mesh.access_log || silenced() {
            return None;
        }
        let h = req.headers();
        let path = header(h, "x-envoy-original-path").unwrap_or_else(|| {
            req.uri().path_and_query().map_or_else(
                || req.uri().path().to_string(),
                |pq| pq.as_str().to_string(),
            )
        });
        let authority = req
            .uri()
            .authority()
            .map(|a| a.as_str().to_string())
            .or_else(|| header(h, "host"));
        Some(Box::new(Entry {
            start: SystemTime::now(),
            method: req.method().as_str().to_string(),
            path,
            protocol: match req.version() {
                Version::HTTP_10 => "HTTP/1.0",
                Version::HTTP_2 => "HTTP/2",
                Version::HTTP_3 => "HTTP/3",
                _ => "HTTP/1.1",
            },
            x_forwarded_for: header(h, "x-forwarded-for"),
            user_agent: header(h, "user-agent"),
            request_id: header(h, "x-request-id"),
            authority,
            downstream_local: None,
            downstream_remote: None,
            requested_server_name: None,
            route_name: None,
            upstream_cluster: None,
            upstream_host: None,
            encoding: mesh.access_log_encoding,
            stderr: mesh.access_log_stderr,
        }))
    }

    /// The line for this entry and outcome, without its newline.
    pub fn line(&self, o: &Outcome<'_>) -> String {
        let opt = |v: &Option<String>| v.clone();
        let addr = |a: &Option<SocketAddr>| a.map(|a| a.to_string());
        let flags = (!o.flags.is_empty()).then(|| o.flags.to_string());
        let details = (!o.details.is_empty()).then(|| o.details.to_string());
        match self.encoding {
            AccessLogEncoding::Json => json!({
                "start_time": timestamp(self.start),
                "route_name": opt(&self.route_name),
                "method": self.method,
                "path": self.path,
                "protocol": self.protocol,
                "response_code": o.code,
                "response_flags": flags,
                "response_code_details": details,
                "connection_termination_details": Value::Null,
                "bytes_received": o.bytes_received,
                "bytes_sent": o.bytes_sent,
                "duration": o.duration_ms,
                "upstream_service_time": Value::Null,
                "x_forwarded_for": opt(&self.x_forwarded_for),
                "user_agent": opt(&self.user_agent),
                "request_id": opt(&self.request_id),
                "authority": opt(&self.authority),
                "upstream_host": opt(&self.upstream_host),
                "upstream_cluster": opt(&self.upstream_cluster),
                "upstream_local_address": Value::Null,
                "downstream_local_address": addr(&self.downstream_local),
                "downstream_remote_address": addr(&self.downstream_remote),
                "requested_server_name": opt(&self.requested_server_name),
                "upstream_transport_failure_reason": o.upstream_failure,
            })
            .to_string(),
            AccessLogEncoding::Text => {
                let d = |v: Option<String>| v.unwrap_or_else(|| "-".into());
                let mut s = String::new();
                let _ = write!(
                    s,
                    "[{}] \"{} {} {}\" {} {} {} - \"{}\" {} {} {} - \"{}\" \"{}\" \"{}\" \"{}\" \"{}\" {} - {} {} {} {}",
                    timestamp(self.start),
                    self.method,
                    self.path,
                    self.protocol,
                    o.code,
                    d(flags),
                    d(details),
                    o.upstream_failure.unwrap_or("-"),
                    o.bytes_received,
                    o.bytes_sent,
                    o.duration_ms,
                    d(opt(&self.x_forwarded_for)),
                    d(opt(&self.user_agent)),
                    d(opt(&self.request_id)),
                    d(opt(&self.authority)),
                    d(opt(&self.upstream_host)),
                    d(opt(&self.upstream_cluster)),
                    d(addr(&self.downstream_local)),
                    d(addr(&self.downstream_remote)),
                    d(opt(&self.requested_server_name)),
                    d(opt(&self.route_name)),
                );
                s
            }
        }
    }

    /// Writes the line: to standard output, or standard error when the mesh config says so.
    pub fn write(&self, o: &Outcome<'_>) {
        let mut line = self.line(o);
        line.push('\n');
        // A closed or full stream loses the line, never the request.
        let _ = if self.stderr {
            std::io::stderr().lock().write_all(line.as_bytes())
        } else {
            std::io::stdout().lock().write_all(line.as_bytes())
        };
    }
}

/// `STRAIT_ACCESS_LOG=off` in the proxy's environment: the runner of a tour (`strait demo`)
/// keeps its terminal for the story, whatever the mesh config asks.
fn silenced() -> bool {
    static OFF: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *OFF.get_or_init(|| std::env::var("STRAIT_ACCESS_LOG").is_ok_and(|v| v == "off"))
}

/// Envoy's `%START_TIME%`: UTC, milliseconds (`2026-12-06T21:40:00.123Z`).
fn timestamp(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, day) = civil(days as i64);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01.
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn entry(encoding: AccessLogEncoding) -> Entry {
        let mesh = MeshSettings {
            access_log: true,
            access_log_encoding: encoding,
            ..MeshSettings::default()
        };
        let req = Request::get("http://helloworld.sample:5000/hello?x=1")
            .header("user-agent", "curl/8.5.0")
            .header("x-request-id", "r-1")
            .body(())
            .expect("request");
        let mut e = *Entry::request(&req, &mesh).expect("access logs on");
        e.start = SystemTime::UNIX_EPOCH + Duration::from_millis(1_796_593_200_123);
        e.upstream_cluster = Some("outbound|5000||helloworld.sample.svc.cluster.local".into());
        e.upstream_host = Some("10.0.0.5:5000".into());
        e.downstream_remote = Some(SocketAddr::from(([10, 0, 0, 7], 40000)));
        e.route_name = Some("default".into());
        e
    }

    const OK: Outcome<'static> = Outcome {
        code: 200,
        flags: "",
        details: "via_upstream",
        bytes_received: 0,
        bytes_sent: 29,
        duration_ms: 3,
        upstream_failure: None,
    };

    #[test]
    fn text_is_istios_default_format() {
        assert_eq!(
            entry(AccessLogEncoding::Text).line(&OK),
            "[2026-12-06T21:40:00.123Z] \"GET /hello?x=1 HTTP/1.1\" 200 - via_upstream - \"-\" 0 29 3 - \"-\" \"curl/8.5.0\" \"r-1\" \"helloworld.sample:5000\" \"10.0.0.5:5000\" outbound|5000||helloworld.sample.svc.cluster.local - - 10.0.0.7:40000 - default"
        );
    }

    #[test]
    fn json_has_istios_keys_and_types() {
        let v: Value =
            serde_json::from_str(&entry(AccessLogEncoding::Json).line(&OK)).expect("json");
        assert_eq!(v["start_time"], "2026-12-06T21:40:00.123Z");
        assert_eq!(v["response_code"], 200);
        assert_eq!(v["bytes_sent"], 29);
        assert_eq!(v["response_flags"], Value::Null);
        assert_eq!(v["authority"], "helloworld.sample:5000");
        assert_eq!(v["path"], "/hello?x=1");
        assert_eq!(v.as_object().map(|o| o.len()), Some(24));
    }

    #[test]
    fn dates_are_gregorian() {
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(11_016), (2000, 2, 29));
        assert_eq!(civil(20_793), (2026, 12, 6));
        assert_eq!(civil(-1), (1969, 12, 31));
    }
}
