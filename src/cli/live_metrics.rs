//! The live-metrics flags of `dpsbench run`: the `/metrics` endpoint (`--metrics-listen`,
//! lingering after the end with `--metrics-linger`), the remote-write pushes (`--metrics-push`,
//! `--metrics-push-label`) and the OpenTelemetry pushes (`--metrics-otlp`), parsed, bound and
//! said on stderr; the metrics themselves are `telemetry::live`'s.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context as _, Result};
use clap::Args;

use super::sinks::Sink;
use crate::results::Tick;
use crate::shard::Shard;
use crate::telemetry::live::Live;
use crate::telemetry::push::{Protocol, PushUrl, Pusher, parse_push_url};

/// The longest `--metrics-linger`.
const MAX_LINGER: Duration = Duration::from_secs(3600);
/// Label names the metrics themselves use, which `--metrics-push-label` may not set.
const OWN_LABELS: [&str; 3] = ["kind", "phase", "le"];

/// The live-metrics flags of `dpsbench run`.
#[derive(Debug, Clone, Default, Args)]
pub struct MetricsArgs {
    /// Serve live Prometheus metrics at http://ADDR/metrics while the run lasts (and after it
    /// with --metrics-linger), e.g. 127.0.0.1:9464 (port 0 picks a free port; the bound address
    /// is printed on stderr). Every failure kind without a number, and each phase, has its
    /// series from the start, at 0.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
    /// After the run, keep serving its final metrics (with dpsbench_run_ended 1) until one GET
    /// /metrics has read them, or for at most DURATION (500ms, 30s, 2m; at most 1h), whichever
    /// comes first; Ctrl-C ends it sooner. Give more than the scrape interval, so the final
    /// state is scraped [default: the endpoint closes when the run ends].
    #[arg(long, value_name = "DURATION", requires = "metrics_listen", value_parser = parse_linger)]
    pub metrics_linger: Option<Duration>,
    /// Push the metrics by Prometheus remote write 1.0 (protobuf, snappy) to URL at each
    /// second's figures and once more at the end, e.g. http://127.0.0.1:9090/api/v1/write (a
    /// Prometheus started with --web.enable-remote-write-receiver). http, or https trusting the
    /// public web's roots. A push that fails is reported on stderr and counted; the run goes on.
    #[arg(long, value_name = "URL", value_parser = parse_push_url)]
    pub metrics_push: Option<PushUrl>,
    /// A label on every pushed series, NAME=VALUE (repeatable), e.g. instance=run-7 when
    /// several runs push to one receiver [default: job=dpsbench, instance=<host name>, and
    /// shard=K/N with --shard].
    #[arg(long, value_name = "NAME=VALUE", requires = "metrics_push", value_parser = parse_label)]
    pub metrics_push_label: Vec<(String, String)>,
    /// Push the metrics as OpenTelemetry (OTLP over HTTP, protobuf) to URL at each second's
    /// figures and once more at the end, e.g. http://127.0.0.1:4318/v1/metrics (an
    /// OpenTelemetry Collector's otlphttp receiver): the counters of the Prometheus page as
    /// cumulative sums, each phase's latencies as an exponential histogram in seconds; resource
    /// attributes service.name=dpsbench, host.name, dpsbench.scenario, dpsbench.run (the report
    /// folder's name) and dpsbench.shard with --shard. Same rules as --metrics-push: a failed
    /// push is reported and counted, the final one retried, the run goes on.
    #[arg(long, value_name = "URL", value_parser = parse_push_url)]
    pub metrics_otlp: Option<PushUrl>,
}

/// What names a run in the metrics it pushes.
pub struct RunIdentity<'a> {
    pub scenario: &'a str,
    /// The run's report folder.
    pub folder: &'a std::path::Path,
    pub shard: Option<Shard>,
}

/// The live metrics of a run, and how long its final page lingers.
pub struct LiveMetrics {
    live: Live,
    linger: Option<Duration>,
}

impl LiveMetrics {
    /// Binds the endpoint and starts the pushers (their series labelled with the shard when the
    /// run is one); `None` when `args` ask for none of them.
    pub async fn start(args: &MetricsArgs, run: &RunIdentity<'_>) -> Result<Option<Self>> {
        if args.metrics_listen.is_none() && args.metrics_push.is_none() && args.metrics_otlp.is_none() {
            return Ok(None);
        }
        let shard = run.shard;
        let listener = match args.metrics_listen {
            Some(address) => Some(
                tokio::net::TcpListener::bind(address)
                    .await
                    .with_context(|| format!("cannot listen on --metrics-listen {address}"))?,
            ),
            None => None,
        };
        let mut pushers = Vec::new();
        let mut keep_latencies = false;
        let host = host_name();
        let protocols = [
            (
                &args.metrics_push,
                "--metrics-push",
                Protocol::RemoteWrite { labels: push_labels(&args.metrics_push_label, &host, shard) },
            ),
            (&args.metrics_otlp, "--metrics-otlp", Protocol::Otlp { attributes: resource_attributes(&host, run) }),
        ];
        for (url, flag, protocol) in protocols {
            let Some(url) = url else { continue };
            let tls = crate::tls::client_config(crate::tls::public_roots(), crate::tls::TlsPolicy::default())
                .with_context(|| format!("{flag}: cannot set up TLS"))?;
            keep_latencies |= Pusher::wants_latencies(&protocol);
            pushers.push(Pusher::start(url.clone(), protocol, tls));
        }
        let live = Live::start(listener, pushers, keep_latencies).context("--metrics-listen")?;
        if let Some(bound) = live.address() {
            errln!("dpsbench: live metrics at http://{bound}/metrics");
        }
        if let Some(url) = &args.metrics_push {
            errln!("dpsbench: pushing live metrics to {url}");
        }
        if let Some(url) = &args.metrics_otlp {
            errln!("dpsbench: pushing OpenTelemetry metrics to {url}");
        }
        Ok(Some(Self { live, linger: args.metrics_linger }))
    }

    /// Serves and queues for pushing the metrics of `tick`; returns lines to report (failed
    /// pushes).
    pub fn publish(&self, tick: &Tick) -> Vec<String> {
        self.live.publish(tick)
    }

    /// The run has ended: serves and pushes its final metrics, lingers as `--metrics-linger`
    /// says (Ctrl-C ends it), then closes the endpoint.
    pub async fn finish(self) {
        self.live.finish(self.linger, super::interrupted(), |line| errln!("{line}")).await;
    }

    /// Stops at once, with neither a final push nor lingering (the run could not start).
    pub async fn stop(self) {
        self.live.stop().await;
    }
}

/// The live metrics as one of the run's sinks: a failed push since the last tick is its error.
impl Sink for &LiveMetrics {
    fn tick(&mut self, tick: &Tick) -> Result<()> {
        let lines = self.publish(tick);
        match lines.is_empty() {
            true => Ok(()),
            false => Err(anyhow::anyhow!(lines.join("\n"))),
        }
    }
}

/// `--metrics-linger`: a duration of at most [`MAX_LINGER`].
fn parse_linger(text: &str) -> Result<Duration, String> {
    let duration = crate::arrival::parse_duration(text.trim())
        .ok_or_else(|| format!("{text:?} is not a duration: e.g. 500ms, 30s, 2m"))?;
    if duration > MAX_LINGER {
        return Err(format!("{text:?} is longer than 1h"));
    }
    Ok(duration)
}

/// `--metrics-push-label`: `NAME=VALUE`, NAME a Prometheus label name not reserved (`__…`) nor
/// one the metrics use, VALUE not empty.
fn parse_label(text: &str) -> Result<(String, String), String> {
    let (name, value) = text.split_once('=').ok_or_else(|| format!("{text:?} is not NAME=VALUE"))?;
    let mut chars = name.chars();
    let well_formed = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !well_formed {
        return Err(format!("label name {name:?}: use letters, digits and _, not starting with a digit"));
    }
    if name.starts_with("__") {
        return Err(format!("label name {name:?}: names starting with __ are reserved"));
    }
    if OWN_LABELS.contains(&name) {
        return Err(format!("label name {name:?} is one the metrics use ({})", OWN_LABELS.join(", ")));
    }
    if value.is_empty() {
        return Err(format!("label {name:?} has an empty value"));
    }
    Ok((name.to_string(), value.to_string()))
}

/// The pushed labels: `given` (the last value of a name given twice), then `job`, `instance`
/// and, for a shard, `shard` (`K/N`: shards on one host push apart), unless given.
fn push_labels(given: &[(String, String)], host: &str, shard: Option<Shard>) -> Vec<(String, String)> {
    let mut labels: Vec<(String, String)> = Vec::new();
    for (name, value) in given {
        match labels.iter_mut().find(|(known, _)| known == name) {
            Some(label) => label.1 = value.clone(),
            None => labels.push((name.clone(), value.clone())),
        }
    }
    let shard = shard.map(|shard| shard.to_string());
    let defaults = [("job", Some("dpsbench")), ("instance", Some(host)), ("shard", shard.as_deref())];
    for (name, value) in defaults {
        if let Some(value) = value
            && !labels.iter().any(|(given, _)| given == name)
        {
            labels.push((name.to_string(), value.to_string()));
        }
    }
    labels
}

/// The OTLP resource's attributes: the service, the host, and the run's scenario, report folder
/// and shard.
fn resource_attributes(host: &str, run: &RunIdentity<'_>) -> Vec<(String, String)> {
    let folder =
        run.folder.file_name().map_or_else(|| run.folder.display().to_string(), |name| name.to_string_lossy().into());
    let mut attributes = vec![
        ("service.name", "dpsbench".to_string()),
        ("service.version", env!("CARGO_PKG_VERSION").to_string()),
        ("host.name", host.to_string()),
        ("dpsbench.scenario", run.scenario.to_string()),
        ("dpsbench.run", folder),
    ];
    if let Some(shard) = run.shard {
        attributes.push(("dpsbench.shard", shard.to_string()));
    }
    attributes.into_iter().map(|(key, value)| (key.to_string(), value)).collect()
}

/// This machine's host name (Linux), or `dpsbench` where it cannot be read.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "dpsbench".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_parse_or_say_why_not() {
        assert_eq!(parse_label("instance=shard-3"), Ok(("instance".into(), "shard-3".into())));
        assert_eq!(parse_label("env=a=b"), Ok(("env".into(), "a=b".into())));
        for (bad, why) in [
            ("instance", "NAME=VALUE"),
            ("9x=1", "not starting with a digit"),
            ("a-b=1", "letters, digits"),
            ("__name__=x", "reserved"),
            ("kind=x", "one the metrics use"),
            ("job=", "empty value"),
        ] {
            let error = parse_label(bad).unwrap_err();
            assert!(error.contains(why), "{bad}: {error}");
        }
    }

    #[test]
    fn given_labels_win_over_the_defaults() {
        let given = [("instance".to_string(), "shard-3".to_string())];
        let pairs = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs.iter().map(|(name, value)| (name.to_string(), value.to_string())).collect()
        };
        assert_eq!(push_labels(&given, "host", None), pairs(&[("instance", "shard-3"), ("job", "dpsbench")]));
        assert_eq!(push_labels(&[], "host", None), pairs(&[("job", "dpsbench"), ("instance", "host")]));
        let shard = Some(Shard { index: 2, count: 4 });
        assert_eq!(
            push_labels(&[], "host", shard),
            pairs(&[("job", "dpsbench"), ("instance", "host"), ("shard", "2/4")])
        );
        let twice = pairs(&[("team", "a"), ("team", "b")]);
        assert_eq!(
            push_labels(&twice, "host", None),
            pairs(&[("team", "b"), ("job", "dpsbench"), ("instance", "host")])
        );
    }

    #[test]
    fn lingers_are_bounded_durations() {
        assert_eq!(parse_linger("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_linger("1h"), Ok(MAX_LINGER));
        assert!(parse_linger("2h").unwrap_err().contains("longer than 1h"));
        assert!(parse_linger("30").unwrap_err().contains("e.g. 500ms"));
    }
}
