//! What the control plane does with the API servers of its clusters beyond reading them:
//!
//! - [`token_review`]: checks a proxy's bootstrap token (its projected service-account token)
//!   with the TokenReview API of the cluster the proxy names, as istiod's CA does;
//! - [`lease`]: leader election on a Lease in the Istio namespace, so that of several
//!   replicas only one writes shared objects;
//! - [`root_cert`]: while leading, the `istio-ca-root-cert` ConfigMap with the mesh's trust
//!   bundle in every namespace of every cluster it serves (istiod's namespace controller);
//! - [`remote_webhooks`]: while leading, the `caBundle` of each served remote's injector
//!   webhook, which calls this control plane's injector.
//!
//! A control plane in a pod puts them together around `strait_control::run`:
//!
//! ```text
//! clients  = Clusters::new(own, in_cluster())         (remote secrets add the others)
//! tokens   = Tokens::Review(Arc::new(TokenReview::new(clients.clone(), own)))
//! bundle   = watch::channel(None); on_roots = OnRoots(|pem| bundle.send_replace(Some(pem)))
//! elector  = Elector::new(own client, ElectionConfig::new(istio ns,
//!                         lease::NAMESPACE_CONTROLLER, pod name))
//! spawn elector.run(stop); spawn RootCertWriter::every_cluster(clients)
//!                                    .run(elector's leadership, bundle receiver, stop)
//! strait_control::run(Options { tokens, on_roots, retry_first_load: true, .. }, stop)
//! ```

pub mod lease;
pub mod remote_webhooks;
pub mod root_cert;
pub mod token_review;

pub use lease::{ElectionConfig, Elector, Leadership, Moment};
pub use root_cert::RootCertWriter;
pub use token_review::TokenReview;
