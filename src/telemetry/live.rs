//! A run's live metrics, fed each tick: the tick's families served at `/metrics` and queued for
//! the pusher, and once more at the end with the final ones (`dpsbench_run_ended 1`), the page
//! lingering until scraped. The CLI binds the listener, sets up the pusher and says on stderr
//! what this hands it.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;

use super::endpoint::{Endpoint, Page};
use super::prometheus::{self, Family};
use super::push::Pusher;
use crate::results::Tick;

/// The endpoint and the pusher of a run, whichever it asked for, and the last families.
pub struct Live {
    endpoint: Option<Endpoint>,
    pusher: Option<Mutex<Pusher>>,
    last: Mutex<Arc<Vec<Family>>>,
}

impl Live {
    /// Serves on `listener` (already bound) and pushes with `pusher`, whichever is given, the
    /// families of a run before its first tick: every series from the start, at 0.
    pub fn start(listener: Option<TcpListener>, pusher: Option<Pusher>) -> std::io::Result<Self> {
        let empty = Tick { phases: crate::metrics::Metrics::new().live_buckets(), ..Tick::default() };
        let families = Arc::new(prometheus::families(&empty, false));
        let endpoint = match listener {
            Some(listener) => Some(Endpoint::start(listener, Page::new(prometheus::exposition(&families)))?),
            None => None,
        };
        Ok(Self { endpoint, pusher: pusher.map(Mutex::new), last: Mutex::new(families) })
    }

    /// The address `/metrics` is served on, when it is.
    pub fn address(&self) -> Option<SocketAddr> {
        self.endpoint.as_ref().map(Endpoint::address)
    }

    /// Serves and queues for pushing the metrics of `tick`; returns lines to report (failed
    /// pushes).
    pub fn publish(&self, tick: &Tick) -> Vec<String> {
        let families = Arc::new(prometheus::families(tick, false));
        *self.last.lock().expect("the last families are never held while panicking") = families.clone();
        if let Some(endpoint) = &self.endpoint {
            serve(endpoint, &families);
        }
        match &self.pusher {
            Some(pusher) => pusher.lock().expect("the pusher is never held while panicking").publish(families),
            None => Vec::new(),
        }
    }

    /// The run has ended: serves and pushes its final metrics, lingers at most `linger` until
    /// the final page is scraped or `interrupted` resolves, then closes the endpoint. Each line
    /// to report (the pusher's account, the linger's) goes to `say`.
    pub async fn finish(self, linger: Option<Duration>, interrupted: impl Future<Output = ()>, say: impl Fn(&str)) {
        let mut families = self.last.into_inner().expect("the last families are never held while panicking");
        prometheus::mark_ended(Arc::<Vec<Family>>::make_mut(&mut families));
        let page = self.endpoint.as_ref().map(|endpoint| serve(endpoint, &families));
        if let Some(pusher) = self.pusher {
            let pusher = pusher.into_inner().expect("the pusher is never held while panicking");
            say(&pusher.finish(families).await);
        }
        let Some(endpoint) = self.endpoint else { return };
        if let (Some(linger), Some(page)) = (linger, page) {
            let url = format!("http://{}/metrics", endpoint.address());
            say(&format!(
                "dpsbench: serving the final metrics at {url} until scraped, at most {linger:?} (Ctrl-C ends it)"
            ));
            tokio::select! {
                _ = page.scraped() => {}
                _ = tokio::time::sleep(linger) => say(&format!("dpsbench: the final metrics were not scraped within {linger:?}")),
                _ = interrupted => {}
            }
        }
        endpoint.stop().await;
    }

    /// Stops at once, with neither a final push nor lingering (the run could not start).
    pub async fn stop(self) {
        drop(self.pusher);
        if let Some(endpoint) = self.endpoint {
            endpoint.stop().await;
        }
    }
}

/// Serves the exposition of `families` from now on; returns its page.
fn serve(endpoint: &Endpoint, families: &[Family]) -> Page {
    let page = Page::new(prometheus::exposition(families));
    endpoint.publish(page.clone());
    page
}
