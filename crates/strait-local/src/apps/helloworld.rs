//! Istio's `samples/helloworld`: the version and pod that answered, one line of text.

use std::sync::Arc;

use http::{Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;

use super::AppConfig;
use super::AppError;
use super::server::{self, Body};
use crate::stop::Stop;

pub(super) async fn run(cfg: AppConfig, stop: Stop) -> Result<(), AppError> {
    // Same text as the sample's app.py, so scripts that grep its output keep working.
    let hello: Arc<str> = format!("Hello version: {}, instance: {}\n", cfg.version, cfg.pod).into();
    server::serve(cfg.listen, cfg.reach.clone(), stop, move |req| {
        let response = respond(&req, &hello);
        async move { response }
    })
    .await
}

fn respond(req: &Request<Incoming>, hello: &str) -> Response<Body> {
    let body = match req.uri().path() {
        "/hello" => hello.to_owned(),
        "/health" => "Helloworld is healthy\n".to_owned(),
        _ => return server::text(StatusCode::NOT_FOUND, "not found\n"),
    };
    match *req.method() {
        // hyper sends no body for HEAD but keeps the GET's content-length, as it should.
        Method::GET | Method::HEAD => server::text(StatusCode::OK, body),
        _ => {
            let mut response = server::text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
            response
                .headers_mut()
                .insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
            response
        }
    }
}
