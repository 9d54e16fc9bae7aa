//! A live picture of a running local mesh: what it is made of ([`topology`]) and the traffic
//! between its workloads ([`traffic`]), read from the proxies' own Istio metrics
//! ([`prom`]). The functions here are pure over the state file, the mesh model and scrapes;
//! [`scrape`] is the one that asks a proxy.

pub mod prom;
pub mod topology;
pub mod traffic;

use std::time::Duration;

use crate::fetch::FetchError;
use crate::up::state::PodState;

/// A proxy's Prometheus exposition (its admin port's `/stats/prometheus`, the same metrics
/// 15090 serves), asked from where the pod runs.
pub async fn scrape(pod: &PodState, timeout: Duration) -> Result<String, ScrapeError> {
    let path = "/stats/prometheus";
    let (status, body) = crate::fetch::get_from(&pod.vantage(), pod.admin(), path, timeout).await?;
    if !status.is_success() {
        return Err(ScrapeError::Status {
            proxy: pod.key(),
            status: status.as_u16(),
        });
    }
    String::from_utf8(body.to_vec()).map_err(|_| ScrapeError::NotText { proxy: pod.key() })
}

#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("{proxy}: /stats/prometheus answered {status}")]
    Status { proxy: String, status: u16 },
    #[error("{proxy}: /stats/prometheus is not UTF-8 text")]
    NotText { proxy: String },
}
