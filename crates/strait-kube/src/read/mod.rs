//! Reading a whole mesh from its clusters' API servers, once, for the commands that look at it
//! from a workstation (`strait analyze --context ...`): every kind of [`objects::OWN`] in
//! every namespace of every cluster, page by page, written out as the documents the loader
//! reads ([`objects::render`]), each cluster declared as its Istio namespace says
//! ([`objects::declare`]), and put together as a mesh directory would be
//! ([`objects::to_input`]). What the analyzers then find points at `kube://` positions.
//!
//! A cluster that cannot be read (unreachable, credentials refused) stops the read: an
//! analysis that silently lacks a cluster would report everything that cluster defines as
//! missing. A kind the API server does not serve (its CRD is not installed: the Gateway API,
//! often) has nothing to read and is noted; a kind the credentials may not list is a warning
//! naming the permission, and the rest is read.
//!
//! [`proxies`] says which pods have a proxy; [`pod_proxy`] reads a pod's port (the control
//! plane's debug port, a proxy's admin port) through the API server.

use std::fmt;

use futures::{StreamExt, TryStreamExt};
use kube::Client;
use kube::api::ListParams;
use kube::core::{DynamicObject, Resource};
use serde_json::Value;
use strait_api::Kind;
use strait_api::layout::{Input, MeshFile};

use crate::objects::{self, ClusterObjects};

pub mod pod_proxy;
pub mod proxies;

/// One cluster to read: the name it has in the mesh, and how to reach its API server.
#[derive(Clone)]
pub struct ClusterClient {
    /// Istio's cluster ID for it.
    pub name: String,
    /// Where its client came from, for messages (`context c1 of ~/.kube/config`).
    pub origin: String,
    pub client: Client,
}

impl fmt::Debug for ClusterClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterClient")
            .field("name", &self.name)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

/// How to read.
#[derive(Clone, Debug)]
pub struct ReadOptions {
    /// The namespace whose labels declare each cluster's network and role (default
    /// `istio-system`).
    pub istio_namespace: String,
    /// Objects per list request (default 500, kubectl's page size): bounds what one response
    /// holds, on the API server and here.
    pub page_size: u32,
    /// The kinds read (default [`objects::OWN`]).
    pub kinds: &'static [Kind],
    /// Lists in flight at once per cluster (default 6).
    pub concurrency: usize,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            istio_namespace: "istio-system".into(),
            page_size: 500,
            kinds: objects::OWN,
            concurrency: 6,
        }
    }
}

/// Why a cluster could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(
        "cluster {cluster} ({origin}): cannot reach its API server (listing {kind}): {message}"
    )]
    Unreachable {
        cluster: String,
        origin: String,
        kind: Kind,
        message: String,
    },
    #[error(
        "cluster {cluster} ({origin}): the API server refused the credentials (401 listing {kind}): \
         they are missing or expired; check that `kubectl get namespaces` works with this context"
    )]
    Unauthorized {
        cluster: String,
        origin: String,
        kind: Kind,
    },
    #[error("cluster {cluster} ({origin}): listing {kind} ({path}) failed with {code}: {message}")]
    Api {
        cluster: String,
        origin: String,
        kind: Kind,
        path: String,
        code: u16,
        message: String,
    },
    #[error("cluster {cluster}: cannot make the request listing {kind}: {message}")]
    Request {
        cluster: String,
        kind: Kind,
        message: String,
    },
    #[error("cluster {cluster} ({origin}): the list of {kind} ({path}) is not a list: {message}")]
    Malformed {
        cluster: String,
        origin: String,
        kind: Kind,
        path: String,
        message: String,
    },
}

/// Something left out of the read, which the caller shows the operator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Note {
    /// The API server does not serve the kind: its CRD is not installed, so there are none.
    NotServed { cluster: String, kind: Kind },
    /// The credentials may not list the kind: its objects are missing from the analysis.
    Forbidden {
        cluster: String,
        origin: String,
        kind: Kind,
        /// `group/resource`, as RBAC names it.
        resource: String,
        /// The API server's own words (they name the user).
        message: String,
    },
}

impl Note {
    /// Whether the read is incomplete because of it (a forbidden kind) rather than complete
    /// (a kind that does not exist there).
    pub fn is_warning(&self) -> bool {
        matches!(self, Note::Forbidden { .. })
    }
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Note::NotServed { cluster, kind } => write!(
                f,
                "cluster {cluster}: the API server does not serve {kind} ({}): its CRD is not installed, none read",
                objects::api_resource(*kind).api_version
            ),
            Note::Forbidden {
                cluster,
                origin,
                kind,
                resource,
                message,
            } => write!(
                f,
                "cluster {cluster} ({origin}): not allowed to list {kind}: grant \"list\" on {resource} in all namespaces \
                 (a ClusterRole) to read them; going on without them ({message})"
            ),
        }
    }
}

/// The mesh as its clusters' API servers hold it.
#[derive(Debug)]
pub struct Read {
    pub input: Input,
    /// Kinds not read, per cluster, in the order the clusters were given.
    pub notes: Vec<Note>,
}

/// Reads every cluster (concurrently) and builds the loader's input, clusters in the order
/// given.
pub async fn read(clusters: &[ClusterClient], opts: &ReadOptions) -> Result<Read, ReadError> {
    let results = futures::future::join_all(clusters.iter().map(|c| read_cluster(c, opts))).await;
    let mut objects = Vec::with_capacity(clusters.len());
    let mut notes = Vec::new();
    for r in results {
        let (o, mut n) = r?;
        objects.push(o);
        notes.append(&mut n);
    }
    let mesh = MeshFile {
        clusters: objects.iter().map(|c| c.decl.clone()).collect(),
        ..MeshFile::default()
    };
    Ok(Read {
        input: objects::to_input(mesh, objects, None),
        notes,
    })
}

/// One cluster: its objects, rendered, and what was left out.
pub async fn read_cluster(
    c: &ClusterClient,
    opts: &ReadOptions,
) -> Result<(ClusterObjects, Vec<Note>), ReadError> {
    let lists: Vec<(Kind, Option<Vec<Value>>, Option<Note>)> =
        futures::stream::iter(opts.kinds.iter().copied())
            .map(|kind| async move {
                Ok::<_, ReadError>(match list(c, kind, opts.page_size).await? {
                    Listed::Items(items) => (kind, Some(items), None),
                    Listed::Skipped(n) => (kind, None, Some(n)),
                })
            })
            .buffered(opts.concurrency.max(1))
            .try_collect()
            .await?;
    let mut istio_namespace = None;
    let mut rendered = Vec::new();
    let mut notes = Vec::new();
    for (kind, items, note) in lists {
        notes.extend(note);
        for item in items.iter().flatten() {
            if kind == Kind::Namespace
                && item["metadata"]["name"].as_str() == Some(opts.istio_namespace.as_str())
            {
                istio_namespace = Some(item.clone());
            }
            rendered.push(objects::render(&c.name, kind, item));
        }
    }
    Ok((
        ClusterObjects {
            decl: objects::declare(&c.name, istio_namespace.as_ref(), None),
            objects: rendered,
        },
        notes,
    ))
}

/// What listing one kind gave.
#[derive(Debug)]
pub enum Listed {
    Items(Vec<Value>),
    /// Not read: not served, or not allowed.
    Skipped(Note),
}

/// Every object of `kind` in all namespaces, `page_size` at a time.
pub async fn list(c: &ClusterClient, kind: Kind, page_size: u32) -> Result<Listed, ReadError> {
    list_where(c, kind, None, "", page_size).await
}

/// The objects of `kind` in `namespace` (all when `None`) that match `label_selector` (all
/// when empty), following `continue` from page to page. A continue token that expired mid-way
/// (410: the list was too slow against the API server's compaction) starts the list over
/// once.
pub async fn list_where(
    c: &ClusterClient,
    kind: Kind,
    namespace: Option<&str>,
    label_selector: &str,
    page_size: u32,
) -> Result<Listed, ReadError> {
    let ar = objects::api_resource(kind);
    let path = DynamicObject::url_path(&ar, namespace);
    let mut restarted = false;
    let mut items = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut lp = ListParams::default().limit(page_size);
        if !label_selector.is_empty() {
            lp = lp.labels(label_selector);
        }
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        let request = kube::core::Request::new(path.as_str())
            .list(&lp)
            .map_err(|e| ReadError::Request {
                cluster: c.name.clone(),
                kind,
                message: e.to_string(),
            })?;
        let page: Value = match c.client.request(request).await {
            Ok(v) => v,
            Err(kube::Error::Api(s)) if s.code == 410 && token.is_some() && !restarted => {
                restarted = true;
                token = None;
                items.clear();
                continue;
            }
            Err(e) => return classify(c, kind, &ar, &path, e).map(Listed::Skipped),
        };
        let Some(page_items) = page.get("items").and_then(Value::as_array) else {
            return Err(ReadError::Malformed {
                cluster: c.name.clone(),
                origin: c.origin.clone(),
                kind,
                path,
                message: "no items".into(),
            });
        };
        items.extend(page_items.iter().cloned());
        token = page["metadata"]["continue"]
            .as_str()
            .filter(|t| !t.is_empty())
            .map(str::to_string);
        if token.is_none() {
            return Ok(Listed::Items(items));
        }
    }
}

/// What a failed list means for the read.
fn classify(
    c: &ClusterClient,
    kind: Kind,
    ar: &kube::discovery::ApiResource,
    path: &str,
    e: kube::Error,
) -> Result<Note, ReadError> {
    let cluster = c.name.clone();
    let origin = c.origin.clone();
    match e {
        kube::Error::Api(s) => match s.code {
            404 => Ok(Note::NotServed { cluster, kind }),
            401 => Err(ReadError::Unauthorized {
                cluster,
                origin,
                kind,
            }),
            403 => Ok(Note::Forbidden {
                cluster,
                origin,
                kind,
                resource: if ar.group.is_empty() {
                    ar.plural.clone()
                } else {
                    format!("{}/{}", ar.group, ar.plural)
                },
                message: s.message.clone(),
            }),
            code => Err(ReadError::Api {
                cluster,
                origin,
                kind,
                path: path.to_string(),
                code,
                message: s.message.clone(),
            }),
        },
        kube::Error::SerdeError(e) => Err(ReadError::Malformed {
            cluster,
            origin,
            kind,
            path: path.to_string(),
            message: e.to_string(),
        }),
        other => Err(ReadError::Unreachable {
            cluster,
            origin,
            kind,
            message: error_chain(&other),
        }),
    }
}

/// An error with its causes: a connection failure's reason (refused, TLS, DNS) is in them.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cause = c.source();
    }
    s
}
