//! The HTTP surface: the page, `/api/mesh` and `/api/trace`. Every answer is built from
//! memory (the last snapshot) except a trace, which asks the proxies.

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;

use super::live::Live;
use super::{query, trace};

/// The page: plain HTML, inline SVG and script, no build step.
const PAGE: &str = include_str!("page.html");

/// Answers every request of the dashboard.
pub(super) fn handler(
    dir: PathBuf,
    live: Arc<Live>,
) -> impl Fn(&Request<Incoming>) -> Response<Full<Bytes>> + Send + Sync + 'static {
    move |req| route(&dir, &live, req.method(), req.uri())
}

fn route(
    dir: &std::path::Path,
    live: &Live,
    method: &Method,
    uri: &http::Uri,
) -> Response<Full<Bytes>> {
    if method != Method::GET && method != Method::HEAD {
        return error(StatusCode::METHOD_NOT_ALLOWED, "only GET is served".into());
    }
    match uri.path() {
        "/" | "/index.html" => answer(
            StatusCode::OK,
            "text/html; charset=utf-8",
            Bytes::from_static(PAGE.as_bytes()),
        ),
        "/api/mesh" => answer(StatusCode::OK, "application/json", live.get()),
        "/api/trace" => match query::parse(uri.query().unwrap_or("")) {
            Err(why) => error(StatusCode::BAD_REQUEST, why),
            // A trace asks several proxies in turn; `block_in_place` lets the runtime move
            // its other work (scrapes, other requests) off this thread meanwhile.
            Ok(q) => match tokio::task::block_in_place(|| trace::edge(dir, &q)) {
                Ok(v) => answer(
                    StatusCode::OK,
                    "application/json",
                    Bytes::from(v.to_string()),
                ),
                Err(trace::TraceError::Query(why)) => error(StatusCode::BAD_REQUEST, why),
                Err(trace::TraceError::Mesh(why)) => error(StatusCode::BAD_GATEWAY, why),
            },
        },
        other => error(
            StatusCode::NOT_FOUND,
            format!("no page {other}; try / or /api/mesh"),
        ),
    }
}

fn answer(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    // Live data: never from a cache.
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    r
}

/// `{"error": why}` with `status`.
fn error(status: StatusCode, why: String) -> Response<Full<Bytes>> {
    let body = serde_json::json!({ "error": why }).to_string();
    answer(status, "application/json", Bytes::from(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str) -> Response<Full<Bytes>> {
        let live = Live::default();
        let uri: http::Uri = path.parse().expect("uri");
        route(
            std::path::Path::new("/nonexistent"),
            &live,
            &Method::GET,
            &uri,
        )
    }

    #[test]
    fn pages_api_and_errors() {
        assert_eq!(get("/").status(), StatusCode::OK);
        assert_eq!(get("/api/mesh").status(), StatusCode::OK);
        assert_eq!(get("/nothing").status(), StatusCode::NOT_FOUND);
        assert_eq!(
            get("/api/trace?from=a/b/c").status(),
            StatusCode::BAD_REQUEST
        );
        let uri: http::Uri = "/".parse().expect("uri");
        let r = route(
            std::path::Path::new("/x"),
            &Live::default(),
            &Method::POST,
            &uri,
        );
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    }
}
