//! `[run]` and `[flow]`: how long the run may last, how it drains, where devices connect from,
//! and the device flow's timeouts and retry behaviour.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use serde::Deserialize;

use super::FieldError;
use crate::device::{FlowSettings, RetryPolicy, RetryProfile, Timeouts};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowSection {
    pub api_version: Option<String>,
    pub keep_alive_seconds: Option<u16>,
    /// Whose retry behaviour devices mirror: dpsbench, python, node, c, csharp, embedded-c.
    pub retry_profile: Option<RetryProfile>,
    pub max_retries: Option<u32>,
    pub default_wait_ms: Option<u64>,
    pub connect_timeout_ms: Option<u64>,
    pub reply_timeout_ms: Option<u64>,
    pub flow_timeout_seconds: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSection {
    /// Stop starting devices after this long (whichever of this and the device count comes first).
    pub duration_seconds: Option<f64>,
    /// Hard limit on the whole run; devices still in flight then are aborted.
    pub max_duration_seconds: Option<u64>,
    /// Most devices in flight at once; a start that must wait for a free slot is late.
    pub max_in_flight: Option<u64>,
    /// After an interrupt, how long in-flight devices may finish (default 30).
    pub drain_seconds: Option<f64>,
    /// A run whose schedule lag p99 exceeds this is invalid (default 10).
    pub max_schedule_lag_p99_ms: Option<f64>,
    /// Local addresses devices connect from, in turn: `"127.0.0.2"` or `"127.0.0.10-127.0.0.40"`.
    #[serde(default)]
    pub source_addresses: Vec<String>,
    /// Connect one device before the plan starts and stop on a setup mistake (default true);
    /// off for runs whose every device is meant to fail.
    pub preflight: Option<bool>,
}

/// An entry of `run.source_addresses` that does not expand.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressPoolError {
    #[error("{0:?} is not an IP address")]
    NotAnAddress(String),
    #[error("{0:?} mixes IPv4 and IPv6")]
    MixedFamilies(String),
    #[error("{0:?} runs backwards")]
    Backwards(String),
    #[error("the pool has more than {MAX_POOL} addresses")]
    TooLarge,
}

/// Most addresses a pool may expand to.
const MAX_POOL: u128 = 65_536;

/// Expands `"127.0.0.2"` and `"127.0.0.10-127.0.0.40"` entries into addresses.
pub fn address_pool(entries: &[String]) -> Result<Vec<IpAddr>, AddressPoolError> {
    let mut pool = Vec::new();
    for entry in entries {
        let parse =
            |text: &str| text.trim().parse::<IpAddr>().map_err(|_| AddressPoolError::NotAnAddress(text.to_string()));
        let (first, last) = match entry.split_once('-') {
            Some((first, last)) => (parse(first)?, parse(last)?),
            None => (parse(entry)?, parse(entry)?),
        };
        let (start, end) = match (first, last) {
            (IpAddr::V4(a), IpAddr::V4(b)) => (u128::from(u32::from(a)), u128::from(u32::from(b))),
            (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b)),
            _ => return Err(AddressPoolError::MixedFamilies(entry.clone())),
        };
        if start > end {
            return Err(AddressPoolError::Backwards(entry.clone()));
        }
        if (end - start + 1) + pool.len() as u128 > MAX_POOL {
            return Err(AddressPoolError::TooLarge);
        }
        for n in start..=end {
            pool.push(match first {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(n as u32)),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(n)),
            });
        }
    }
    Ok(pool)
}

/// `[run]` and `[flow]` resolved (all but the duration, which the stop condition needs first).
pub(super) struct RunSettings {
    pub max_in_flight: Option<u64>,
    pub drain: Duration,
    pub max_schedule_lag_p99: Duration,
    pub source_addresses: Vec<IpAddr>,
    pub flow: FlowSettings,
    pub max_duration: Duration,
    pub preflight: bool,
}

/// `run.duration_seconds`: how long devices keep starting, when given.
pub(super) fn duration(run: &RunSection) -> Result<Option<Duration>, FieldError> {
    match run.duration_seconds {
        Some(s) if !(s.is_finite() && s > 0.0) => {
            Err(FieldError::new("run.duration_seconds", format!("{s} is not a positive number of seconds")))
        }
        Some(s) => Ok(Some(Duration::from_secs_f64(s))),
        None => Ok(None),
    }
}

pub(super) fn resolve(run: &RunSection, flow: &FlowSection) -> Result<RunSettings, FieldError> {
    let seconds = |name: &'static str, value: Option<f64>, default: f64| match value {
        Some(v) if !(v.is_finite() && v >= 0.0) => {
            Err(FieldError::new(name, format!("{v} is not a number of seconds")))
        }
        v => Ok(Duration::from_secs_f64(v.unwrap_or(default))),
    };
    let drain = seconds("run.drain_seconds", run.drain_seconds, 30.0)?;
    let max_schedule_lag_p99 =
        seconds("run.max_schedule_lag_p99_ms", run.max_schedule_lag_p99_ms.map(|ms| ms / 1000.0), 0.010)?;
    let source_addresses =
        address_pool(&run.source_addresses).map_err(|e| FieldError::new("run.source_addresses", e.to_string()))?;
    if run.max_in_flight == Some(0) {
        return Err(FieldError::new("run.max_in_flight", "must be at least 1"));
    }
    let flow = flow_settings(flow)?;
    let max_duration = Duration::from_secs(run.max_duration_seconds.unwrap_or(3600));
    if max_duration.is_zero() {
        return Err(FieldError::new("run.max_duration_seconds", "must be at least 1"));
    }
    Ok(RunSettings {
        max_in_flight: run.max_in_flight,
        drain,
        max_schedule_lag_p99,
        source_addresses,
        flow,
        max_duration,
        preflight: run.preflight.unwrap_or(true),
    })
}

fn flow_settings(flow: &FlowSection) -> Result<FlowSettings, FieldError> {
    let defaults = FlowSettings::default();
    let ms = |v: Option<u64>, default: Duration| v.map(Duration::from_millis).unwrap_or(default);
    let timeouts = Timeouts {
        tcp_connect: ms(flow.connect_timeout_ms, defaults.timeouts.tcp_connect),
        tls_handshake: ms(flow.connect_timeout_ms, defaults.timeouts.tls_handshake),
        connack: ms(flow.connect_timeout_ms, defaults.timeouts.connack),
        suback: ms(flow.connect_timeout_ms, defaults.timeouts.suback),
        reply: ms(flow.reply_timeout_ms, defaults.timeouts.reply),
        flow: flow.flow_timeout_seconds.map(Duration::from_secs).unwrap_or(defaults.timeouts.flow),
    };
    for (name, value) in [
        ("flow.connect_timeout_ms", timeouts.connack),
        ("flow.reply_timeout_ms", timeouts.reply),
        ("flow.flow_timeout_seconds", timeouts.flow),
    ] {
        if value.is_zero() {
            return Err(FieldError::new(name, "must be greater than 0"));
        }
    }
    let api_version = flow.api_version.clone().unwrap_or(defaults.api_version);
    if api_version.is_empty() || api_version.contains(['&', '/', ' ']) {
        return Err(FieldError::new("flow.api_version", format!("{api_version:?} is not an api-version")));
    }
    Ok(FlowSettings {
        api_version,
        keep_alive: flow.keep_alive_seconds.unwrap_or(defaults.keep_alive),
        timeouts,
        retry: {
            let profile = RetryPolicy::profile(flow.retry_profile.unwrap_or_default());
            RetryPolicy {
                max_retries: flow.max_retries.or(profile.max_retries),
                default_wait: ms(flow.default_wait_ms, profile.default_wait),
                ..profile
            }
        },
        ..defaults
    })
}
