//! The `admission.k8s.io/v1` AdmissionReview envelope: what the API server posts to `/inject`
//! and what it expects back. k8s-openapi has no types for it (it is not a stored resource), so
//! the few fields the injector reads and writes are declared here.
//!
//! Failure policy. A review whose envelope cannot be read (not JSON, no `request.uid`) gets an
//! HTTP 400: there is no uid to answer, and the API server then applies the webhook's
//! `failurePolicy` (`Fail` in Istio's and strait's manifests). A review the injector can read
//! but whose pod it cannot is *denied* with a message naming the problem: admitting it would
//! create a pod that should be in the mesh without its sidecar, bypassing mTLS and
//! authorization silently, which is the failure the analyzer exists to catch. A review that is
//! not a Pod CREATE (a webhook rule broader than it should be) is admitted unchanged, with a
//! warning: there is nothing to inject, and refusing would block unrelated writes.

use base64::Engine;
use k8s_openapi::api::core::v1::Pod;
use serde::{Deserialize, Serialize};

use super::config::Config;
use super::mutate::{self, Outcome};

const API_VERSION: &str = "admission.k8s.io/v1";
const KIND: &str = "AdmissionReview";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Review {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    request: Option<Request>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Request {
    uid: String,
    #[serde(default)]
    kind: GroupVersionKind,
    #[serde(default)]
    operation: String,
    /// The namespace of the request: a pod created by a controller has none in its own
    /// metadata yet.
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    object: Option<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
struct GroupVersionKind {
    #[serde(default)]
    group: String,
    #[serde(default)]
    kind: String,
}

/// A review that cannot be answered as a review at all.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("the body is not an AdmissionReview: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the AdmissionReview is {0}, not admission.k8s.io/v1 AdmissionReview")]
    WrongKind(String),
    #[error("the AdmissionReview has no request")]
    NoRequest,
    #[error("the AdmissionReview request has no uid")]
    NoUid,
}

/// The answer to one review, ready to send back.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviewResponse {
    api_version: &'static str,
    kind: &'static str,
    pub response: Response,
}

/// `response` of an AdmissionReview.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Response {
    pub uid: String,
    pub allowed: bool,
    /// `JSONPatch` when a patch is sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch_type: Option<&'static str>,
    /// The JSON Patch (RFC 6902), base64.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch: Option<String>,
    /// Shown to the user by kubectl (and in the API server's audit log).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Why a review is denied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Status {
    pub code: u16,
    pub message: String,
}

impl Response {
    fn allow(uid: String) -> Response {
        Response {
            uid,
            allowed: true,
            patch_type: None,
            patch: None,
            warnings: Vec::new(),
            status: None,
        }
    }

    /// The patch the response carries, decoded (none when the pod is admitted unchanged).
    pub fn decoded_patch(&self) -> Option<serde_json::Value> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(self.patch.as_deref()?)
            .ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

/// Answers one AdmissionReview (the request body of `/inject`).
pub fn review(body: &[u8], config: &Config) -> Result<ReviewResponse, ReviewError> {
    let review: Review = serde_json::from_slice(body)?;
    if review.kind != KIND || review.api_version != API_VERSION {
        return Err(ReviewError::WrongKind(format!(
            "{} {}",
            if review.api_version.is_empty() {
                "(no apiVersion)"
            } else {
                &review.api_version
            },
            if review.kind.is_empty() {
                "(no kind)"
            } else {
                &review.kind
            }
        )));
    }
    let request = review.request.ok_or(ReviewError::NoRequest)?;
    if request.uid.is_empty() {
        return Err(ReviewError::NoUid);
    }
    Ok(ReviewResponse {
        api_version: API_VERSION,
        kind: KIND,
        response: answer(request, config),
    })
}

fn answer(request: Request, config: &Config) -> Response {
    let mut response = Response::allow(request.uid);
    let is_pod = request.kind.group.is_empty() && request.kind.kind == "Pod";
    if !is_pod || request.operation != "CREATE" {
        response.warnings.push(format!(
            "strait injector: only Pod CREATE is injected, this is {} {}; check the webhook's rules",
            request.operation,
            if request.kind.kind.is_empty() {
                "(no kind)"
            } else {
                &request.kind.kind
            }
        ));
        return response;
    }
    let pod = match request.object.map(serde_json::from_value::<Pod>) {
        Some(Ok(pod)) => pod,
        Some(Err(e)) => return deny(response, format!("the pod cannot be read: {e}")),
        None => return deny(response, "the review carries no pod object".into()),
    };
    match mutate::mutate(&pod, &request.namespace, config) {
        Outcome::Unchanged(why) => {
            tracing::debug!(namespace = %request.namespace, reason = %why, "not injected");
        }
        Outcome::Patched { patch, warnings } => {
            match serde_json::to_vec(&patch) {
                Ok(bytes) => {
                    response.patch_type = Some("JSONPatch");
                    response.patch = Some(base64::engine::general_purpose::STANDARD.encode(bytes));
                }
                Err(e) => return deny(response, format!("the patch cannot be encoded: {e}")),
            }
            response.warnings = warnings;
        }
    }
    response
}

fn deny(mut response: Response, message: String) -> Response {
    tracing::warn!(uid = %response.uid, %message, "admission denied");
    response.allowed = false;
    response.status = Some(Status {
        code: 400,
        message: format!("strait injector: {message}"),
    });
    response
}
