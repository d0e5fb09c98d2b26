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
use super::push::{Measured, Pusher};
use crate::metrics::PhaseHistograms;
use crate::results::Tick;

/// The endpoint and the pushers of a run, whichever it asked for, and the last figures.
pub struct Live {
    endpoint: Option<Endpoint>,
    pushers: Vec<Mutex<Pusher>>,
    /// Every phase's latencies so far, kept when a pusher sends them.
    latencies: Option<Mutex<PhaseHistograms>>,
    last: Mutex<Arc<Measured>>,
}

impl Live {
    /// Serves on `listener` (already bound) and pushes with `pushers` (`keep_latencies` when one
    /// sends the latencies' histograms), the figures of a run before its first tick: every
    /// series from the start, at 0.
    pub fn start(listener: Option<TcpListener>, pushers: Vec<Pusher>, keep_latencies: bool) -> std::io::Result<Self> {
        let empty = Tick { phases: crate::metrics::Metrics::new().live_buckets(), ..Tick::default() };
        let families = prometheus::families(&empty, false);
        let endpoint = match listener {
            Some(listener) => Some(Endpoint::start(listener, Page::new(prometheus::exposition(&families)))?),
            None => None,
        };
        let latencies = keep_latencies.then(PhaseHistograms::new);
        let last = Measured { families, latencies: latencies.clone(), phases: empty.phases };
        Ok(Self {
            endpoint,
            pushers: pushers.into_iter().map(Mutex::new).collect(),
            latencies: latencies.map(Mutex::new),
            last: Mutex::new(Arc::new(last)),
        })
    }

    /// The address `/metrics` is served on, when it is.
    pub fn address(&self) -> Option<SocketAddr> {
        self.endpoint.as_ref().map(Endpoint::address)
    }

    /// Serves and queues for pushing the metrics of `tick`; returns lines to report (failed
    /// pushes).
    pub fn publish(&self, tick: &Tick) -> Vec<String> {
        let latencies = self.latencies.as_ref().map(|kept| {
            let mut kept = kept.lock().expect("the latencies are never held while panicking");
            kept.add_all(&tick.latencies);
            kept.clone()
        });
        let families = prometheus::families(tick, false);
        let measured = Arc::new(Measured { families, latencies, phases: tick.phases.clone() });
        *self.last.lock().expect("the last figures are never held while panicking") = measured.clone();
        if let Some(endpoint) = &self.endpoint {
            serve(endpoint, &measured.families);
        }
        self.pushers
            .iter()
            .flat_map(|pusher| pusher.lock().expect("a pusher is never held while panicking").publish(measured.clone()))
            .collect()
    }

    /// The run has ended: serves and pushes its final metrics, lingers at most `linger` until
    /// the final page is scraped or `interrupted` resolves, then closes the endpoint. Each line
    /// to report (the pusher's account, the linger's) goes to `say`.
    pub async fn finish(self, linger: Option<Duration>, interrupted: impl Future<Output = ()>, say: impl Fn(&str)) {
        let mut measured = self.last.into_inner().expect("the last figures are never held while panicking");
        prometheus::mark_ended(&mut Arc::<Measured>::make_mut(&mut measured).families);
        let page = self.endpoint.as_ref().map(|endpoint| serve(endpoint, &measured.families));
        // Each final push has its own deadline; together they wait for the slowest.
        let finals = self.pushers.into_iter().map(|pusher| {
            let pusher = pusher.into_inner().expect("a pusher is never held while panicking");
            pusher.finish(measured.clone())
        });
        for line in futures_util::future::join_all(finals).await {
            say(&line);
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
        drop(self.pushers);
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
