//! Fleet benchmark: assigned devices per second against the machine's TLS ceiling, both measured
//! in this one process on this machine, so their ratio is honest.
//!
//! - **TLS ceiling**: a loop of full TLS 1.2 handshakes plus one small round trip, client and
//!   server in one process on the same stack as dpsbench (tokio-rustls, ring, ECDSA P-256
//!   server certificate, client resumption off).
//! - **Fleet**: `dpsbench run` of the embedded emulator with `retry-after` 0 and no assignment
//!   delay, every device doing a full handshake and the whole DPS flow.
//!
//! Run: `cargo bench --bench fleet` (`FLEET_DEVICES`, `FLEET_CONCURRENCY`, `FLEET_SECONDS` tune it).
//! Loopback only; every loop is bounded in count and time.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use dpsbench::metrics::Phase;
use dpsbench::runner;
use dpsbench::scenario::{Plan, ScenarioFile};
use dpsbench::tls::{self, ServerIdentity, TlsVersions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Full TLS 1.2 handshakes plus one 64-byte round trip per connection, for `seconds`.
async fn tls_ceiling(concurrency: u64, seconds: u64) -> f64 {
    let identity = ServerIdentity::generate(&[]).unwrap();
    let acceptor = TlsAcceptor::from(identity.server_config(TlsVersions::Tls12Only).unwrap());
    let roots = tls::roots_from_pem(identity.ca_pem().as_bytes(), std::path::Path::new("ca")).unwrap();
    let connector = TlsConnector::from(tls::client_config(roots, TlsVersions::Tls12Only).unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let _ = stream.set_nodelay(true);
                let Ok(mut tls) = acceptor.accept(stream).await else { return };
                let mut message = [0u8; 64];
                if tls.read_exact(&mut message).await.is_ok() {
                    let _ = tls.write_all(&message).await;
                    let _ = tls.shutdown().await;
                }
            });
        }
    });
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..concurrency)
        .map(|_| {
            let (connector, done, stop) = (connector.clone(), done.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    if handshake_round_trip(&connector, address).await {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await; // warm-up
    let (start, before) = (Instant::now(), done.load(Ordering::Relaxed));
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let rate = (done.load(Ordering::Relaxed) - before) as f64 / start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        let _ = client.await;
    }
    server.abort();
    rate
}

async fn handshake_round_trip(connector: &TlsConnector, address: SocketAddr) -> bool {
    let Ok(tcp) = TcpStream::connect(address).await else { return false };
    let _ = tcp.set_nodelay(true);
    let Ok(mut tls) = connector.connect("localhost".try_into().unwrap(), tcp).await else { return false };
    let mut message = [7u8; 64];
    tls.write_all(&message).await.is_ok() && tls.read_exact(&mut message).await.is_ok()
}

/// The whole DPS flow for `devices` devices, `concurrency` in flight (closed model).
async fn fleet(devices: u64, concurrency: u64) -> runner::RunSummary {
    let scenario = format!(
        "name = \"fleet\"\n[target]\nkind = \"embedded\"\nretry_after_seconds = 0\nassign_delay_ms = 0\n\
         [devices]\ncount = {devices}\nregistration_id = \"fleet-{{index:07}}\"\n\
         [arrival]\nmodel = \"closed\"\nconcurrency = {concurrency}\n[run]\nmax_duration_seconds = 600\n"
    );
    let file: ScenarioFile = toml::from_str(&scenario).unwrap();
    let plan = Plan::resolve(file, std::path::Path::new("fleet.toml"), &|_| None).unwrap();
    let (_keep, interrupts) = tokio::sync::watch::channel(0);
    runner::run(&plan, interrupts, |_| {}).await.unwrap()
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    // `cargo test --benches` runs every bench target once in test mode: keep that quick.
    let smoke = std::env::args().any(|a| a == "--test") || !std::env::args().any(|a| a == "--bench");
    let (devices, concurrency, seconds, rounds) = if smoke {
        (200, 16, 1, 1)
    } else {
        (env("FLEET_DEVICES", 20_000), env("FLEET_CONCURRENCY", 128), env("FLEET_SECONDS", 5), env("FLEET_ROUNDS", 5))
    };
    let runtime = runner::runtime().unwrap();
    runtime.block_on(async {
        // Rounds interleave the two measurements, so drifting machine speed (a shared VM) hits
        // both alike; the ratio is of the medians.
        let (mut ceilings, mut flows) = (Vec::new(), Vec::new());
        let mut last = None;
        for round in 1..=rounds {
            let ceiling = tls_ceiling(concurrency, seconds).await;
            let summary = fleet(devices, concurrency).await;
            assert_eq!(summary.results.devices.assigned, devices, "failures: {:?}", summary.results.failures);
            let fleet_rate = summary.results.flows_per_second;
            println!(
                "round {round}: tls ceiling {ceiling:>6.0}/s  fleet {fleet_rate:>6.0}/s  ratio {:>5.1} %",
                100.0 * fleet_rate / ceiling
            );
            ceilings.push(ceiling);
            flows.push(fleet_rate);
            last = Some(summary);
        }
        let summary = last.expect("at least one round");
        let (ceiling, fleet_rate) = (median(&mut ceilings), median(&mut flows));
        println!(
            "host {} ({} cpus); {} devices per fleet round, {} in flight, {} rounds",
            summary.host.hostname, summary.host.cpus, devices, concurrency, rounds
        );
        println!("tls ceiling   {ceiling:>8.0} handshakes+round trips/s (median)");
        println!("fleet         {fleet_rate:>8.0} assigned devices/s (median)");
        println!("ratio         {:>8.1} %", 100.0 * fleet_rate / ceiling);
        let shown =
            [Phase::TlsHandshake, Phase::Connack, Phase::Suback, Phase::RegisterAccepted, Phase::Poll, Phase::EndToEnd];
        for phase in shown {
            let p = summary.results.phase(phase).expect("every phase is in the summary");
            println!("  {:<18} p50 {:>7} us  p99 {:>7} us (last round)", phase.as_str(), p.p50_us, p.p99_us);
        }
    });
}
