//! `run --metrics-listen`: the live metrics page, replaced each tick, and the task serving it.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};

use super::metrics_endpoint;
use super::sinks::Sink;
use crate::report;
use crate::results::Tick;

/// `--metrics-listen`: the endpoint's task and the page it serves, replaced each second.
pub(super) struct LiveMetrics {
    page: tokio::sync::watch::Sender<Arc<str>>,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl LiveMetrics {
    pub(super) async fn start(address: SocketAddr) -> Result<Self> {
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .with_context(|| format!("cannot listen on --metrics-listen {address}"))?;
        let bound = listener.local_addr().with_context(|| format!("--metrics-listen {address}"))?;
        let empty = Tick { phases: crate::metrics::Metrics::new().live_buckets(), ..Tick::default() };
        let (page, pages) = tokio::sync::watch::channel::<Arc<str>>(report::prometheus::exposition(&empty).into());
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(metrics_endpoint::serve(listener, pages, stopped));
        eprintln!("dpsbench: live metrics at http://{bound}/metrics");
        Ok(Self { page, stop, task })
    }

    pub(super) fn publish(&self, tick: &Tick) {
        let _ = self.page.send(report::prometheus::exposition(tick).into());
    }

    pub(super) async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

impl Sink for &LiveMetrics {
    fn tick(&mut self, tick: &Tick) -> Result<()> {
        self.publish(tick);
        Ok(())
    }
}
