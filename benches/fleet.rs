//! Fleet benchmark: what dpsbench sustains against what this machine's TLS stack can do, each
//! pair measured in this one run on this machine, so their ratios are honest.
//!
//! - **TLS ceiling**: full TLS 1.2 handshakes plus one 64-byte round trip per connection, client
//!   and server in this process, with rustls' fastest provider here (aws-lc-rs, the one dpsbench
//!   uses), an ECDSA P-256 server certificate, client resumption off and no close_notify (each
//!   side just drops the connection), at the fleet's concurrency.
//! - **Protocol floor**: the same loop with the DPS flow's four round trips (CONNECT, SUBSCRIBE,
//!   register, poll) instead of one: what the protocol's shape alone costs on this stack.
//! - **Fleet**: `dpsbench run` of the embedded emulator with `retry-after` 0 and no assignment
//!   delay (closed model), every device doing a full handshake and the whole DPS flow.
//! - **Client CPU**: with `dpsbench emulator` in another process, this process's CPU per flow
//!   (summary.json's `generator.cpu_us_per_device`) against its CPU per connection of a bare
//!   TLS handshake loop (connect, handshake, drop) on the same emulator: what the harness adds
//!   to the handshake every device must pay.
//!
//! Run: `cargo bench --bench fleet` (`FLEET_DEVICES`, `FLEET_CONCURRENCY`, `FLEET_SECONDS`,
//! `FLEET_ROUNDS` tune it). Loopback only; every loop is bounded in count and time.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use dpsbench::metrics::Phase;
use dpsbench::results::CpuTime;
use dpsbench::runner;
use dpsbench::scenario::{Plan, ScenarioFile};
use dpsbench::tls::{self, ServerIdentity, TlsVersions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// The enrollment group key of the external emulator (a bench-only secret).
const GROUP_KEY: &str = "8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw==";

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Runs `one` from `concurrency` tasks for `seconds` after a one-second warm-up; returns the
/// completions per second and this process's CPU per completion in microseconds.
async fn closed_loop<F, Fut>(concurrency: u64, seconds: u64, one: F) -> (f64, f64)
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..concurrency)
        .map(|_| {
            let (one, done, stop) = (one.clone(), done.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    if one().await {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await; // warm-up
    let (start, cpu, before) = (Instant::now(), CpuTime::of_process(), done.load(Ordering::Relaxed));
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let count = (done.load(Ordering::Relaxed) - before).max(1) as f64;
    let used = CpuTime::of_process().since(cpu);
    let rate = count / start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        let _ = client.await;
    }
    (rate, (used.user_seconds + used.system_seconds) * 1e6 / count)
}

/// Full TLS 1.2 handshakes plus `trips` 64-byte round trips per connection, both sides here.
async fn tls_ceiling(concurrency: u64, seconds: u64, trips: u32) -> f64 {
    let identity = ServerIdentity::generate(&[]).unwrap();
    let acceptor = TlsAcceptor::from(identity.server_config(TlsVersions::Tls12Only).unwrap());
    let roots = tls::roots_from_pem(identity.ca_pem().as_bytes(), Path::new("ca")).unwrap();
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
                for _ in 0..trips {
                    if tls.read_exact(&mut message).await.is_err() || tls.write_all(&message).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    let (rate, _) = closed_loop(concurrency, seconds, move || {
        let connector = connector.clone();
        async move { handshake_round_trips(&connector, address, trips).await }
    })
    .await;
    server.abort();
    rate
}

async fn handshake_round_trips(connector: &TlsConnector, address: SocketAddr, trips: u32) -> bool {
    let Ok(tcp) = TcpStream::connect(address).await else { return false };
    let _ = tcp.set_nodelay(true);
    let Ok(mut tls) = connector.connect("localhost".try_into().unwrap(), tcp).await else { return false };
    let mut message = [7u8; 64];
    for _ in 0..trips {
        if tls.write_all(&message).await.is_err() || tls.read_exact(&mut message).await.is_err() {
            return false;
        }
    }
    true
}

fn plan(scenario: &str, dir: &Path) -> Plan {
    let file: ScenarioFile = toml::from_str(scenario).unwrap();
    Plan::resolve(file, &dir.join("fleet.toml"), &|name| (name == "FLEET_KEY").then(|| GROUP_KEY.to_string())).unwrap()
}

/// The whole DPS flow for `devices` devices, `concurrency` in flight (closed model).
async fn fleet(devices: u64, concurrency: u64) -> dpsbench::results::RunSummary {
    let scenario = format!(
        "name = \"fleet\"\n[target]\nkind = \"embedded\"\nretry_after_seconds = 0\nassign_delay_ms = 0\n\
         [devices]\ncount = {devices}\nregistration_id = \"fleet-{{index:07}}\"\n\
         [arrival]\nmodel = \"closed\"\nconcurrency = {concurrency}\n[run]\nmax_duration_seconds = 600\n"
    );
    let (_keep, interrupts) = tokio::sync::watch::channel(0);
    let plan = plan(&scenario, Path::new("."));
    runner::run(&plan, &runner::RunOptions::whole(&plan), interrupts, |_| {}).await.unwrap()
}

/// `dpsbench emulator` in another process on a free loopback port; killed on drop.
struct ExternalEmulator {
    child: Child,
    address: SocketAddr,
    dir: PathBuf,
}

impl ExternalEmulator {
    fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("dpsbench-fleet-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("emulator.toml");
        std::fs::write(
            &config,
            format!(
                "id_scope = \"0ne00FLEET1\"\nhubs = [\"hub-a.azure-devices.net\"]\nretry_after_seconds = 0\n\
                 assign_delay_ms = 0\n[[enrollment_groups]]\nname = \"fleet\"\nprimary_key = \"{GROUP_KEY}\"\n"
            ),
        )
        .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_dpsbench"))
            .args(["emulator", "--config", config.to_str().unwrap(), "--listen", "127.0.0.1:0", "--ca-out"])
            .arg(dir.join("ca.pem"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the dpsbench binary runs");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = lines.next().expect("the emulator prints its address").unwrap();
        // Keep reading, so the emulator never writes into a closed pipe.
        std::thread::spawn(move || lines.for_each(drop));
        let address = ready
            .split_whitespace()
            .find_map(|word| word.parse::<SocketAddr>().ok())
            .unwrap_or_else(|| panic!("no address in {ready:?}"));
        Self { child, address, dir }
    }

    /// Bare handshakes against it: TCP connect, TLS 1.2 full handshake, drop.
    async fn handshake_loop(&self, concurrency: u64, seconds: u64) -> (f64, f64) {
        let pem = std::fs::read(self.dir.join("ca.pem")).unwrap();
        let roots = tls::roots_from_pem(&pem, Path::new("ca.pem")).unwrap();
        let connector = TlsConnector::from(tls::client_config(roots, TlsVersions::Tls12Only).unwrap());
        let address = self.address;
        closed_loop(concurrency, seconds, move || {
            let connector = connector.clone();
            async move { handshake_round_trips(&connector, address, 0).await }
        })
        .await
    }

    /// Exactly `count` bare handshakes against it, `concurrency` at a time; returns those done.
    async fn handshakes(&self, count: u64, concurrency: u64) -> u64 {
        let pem = std::fs::read(self.dir.join("ca.pem")).unwrap();
        let roots = tls::roots_from_pem(&pem, Path::new("ca.pem")).unwrap();
        let connector = TlsConnector::from(tls::client_config(roots, TlsVersions::Tls12Only).unwrap());
        let next = Arc::new(AtomicU64::new(0));
        let clients: Vec<_> = (0..concurrency)
            .map(|_| {
                let (connector, next, address) = (connector.clone(), next.clone(), self.address);
                tokio::spawn(async move {
                    let mut done = 0;
                    while next.fetch_add(1, Ordering::Relaxed) < count {
                        done += u64::from(handshake_round_trips(&connector, address, 0).await);
                    }
                    done
                })
            })
            .collect();
        let mut done = 0;
        for client in clients {
            done += client.await.unwrap();
        }
        done
    }

    /// The whole DPS flow against it, as a capacity test against a remote DPS runs.
    async fn fleet(&self, devices: u64, concurrency: u64) -> dpsbench::results::RunSummary {
        let scenario = format!(
            "name = \"fleet-client\"\n[target]\nkind = \"dps\"\nhost = \"127.0.0.1\"\nport = {}\n\
             id_scope = \"0ne00FLEET1\"\nca_certificate = \"ca.pem\"\n\
             [devices]\ncount = {devices}\nregistration_id = \"client-{{index:07}}\"\ngroup_key_env = \"FLEET_KEY\"\n\
             [arrival]\nmodel = \"closed\"\nconcurrency = {concurrency}\n[run]\nmax_duration_seconds = 600\n",
            self.address.port()
        );
        let (_keep, interrupts) = tokio::sync::watch::channel(0);
        let plan = plan(&scenario, &self.dir);
        runner::run(&plan, &runner::RunOptions::whole(&plan), interrupts, |_| {}).await.unwrap()
    }
}

impl Drop for ExternalEmulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[derive(Default)]
struct Series {
    ceiling: Vec<f64>,
    floor: Vec<f64>,
    fleet: Vec<f64>,
    bare_client_us: Vec<f64>,
    harness_client_us: Vec<f64>,
}

fn main() {
    // `cargo test --benches` runs every bench target once in test mode: keep that quick.
    let smoke = std::env::args().any(|a| a == "--test") || !std::env::args().any(|a| a == "--bench");
    let (devices, concurrency, seconds, rounds) = if smoke {
        (200, 16, 1, 1)
    } else {
        (env("FLEET_DEVICES", 20_000), env("FLEET_CONCURRENCY", 256), env("FLEET_SECONDS", 5), env("FLEET_ROUNDS", 5))
    };
    let runtime = runner::runtime().unwrap();
    // `FLEET_PROFILE=ceiling|floor` runs only that loop (for `perf record` of one side of a ratio).
    let profile = std::env::var("FLEET_PROFILE").unwrap_or_default();
    if profile == "ceiling" || profile == "floor" {
        let trips = if profile == "floor" { 4 } else { 1 };
        let rate = runtime.block_on(tls_ceiling(concurrency, seconds, trips));
        println!("{profile}: {rate:.0}/s");
        return;
    }
    assert!(
        profile.is_empty() || profile.contains(':'),
        "FLEET_PROFILE={profile}: use ceiling, floor, client:N or bare:N"
    );
    let external = ExternalEmulator::start();
    // `FLEET_PROFILE=client:N` or `bare:N`: exactly N flows (or bare handshakes) against the
    // external emulator and nothing else, so `valgrind --tool=callgrind` counts the client's
    // instructions alone (the emulator is another process); two counts' difference is per flow.
    if let Some((which, count)) = profile.split_once(':') {
        let count: u64 = count.parse().expect("FLEET_PROFILE=client:N or bare:N takes a count");
        runtime.block_on(async {
            match which {
                "bare" => println!("bare: {} handshakes", external.handshakes(count, 16).await),
                "client" => println!("client: {} assigned", external.fleet(count, 16).await.results.devices.assigned),
                other => panic!("FLEET_PROFILE={other}:N: the counted profiles are client:N and bare:N"),
            }
        });
        return;
    }
    runtime.block_on(async {
        // Rounds interleave the measurements, so drifting machine speed (a shared VM) hits
        // them alike; each ratio is of the medians.
        let mut series = Series::default();
        let mut last = None;
        for round in 1..=rounds {
            let ceiling = tls_ceiling(concurrency, seconds, 1).await;
            let floor = tls_ceiling(concurrency, seconds, 4).await;
            let summary = fleet(devices, concurrency).await;
            assert_eq!(summary.results.devices.assigned, devices, "failures: {:?}", summary.results.failures);
            let (_, bare_us) = external.handshake_loop(concurrency, seconds).await;
            let client = external.fleet(devices, concurrency).await;
            assert_eq!(client.results.devices.assigned, devices, "failures: {:?}", client.results.failures);
            let harness_us = client.generator.as_ref().expect("a run reports its CPU").cpu_us_per_device;
            let rate = summary.results.flows_per_second;
            println!(
                "round {round}: tls ceiling {ceiling:>5.0}/s  4-trip floor {floor:>5.0}/s  fleet {rate:>5.0}/s \
                 ({:>4.1} % of ceiling)  client CPU: bare handshake {bare_us:>4.0} us, harness flow {harness_us:>4.0} us \
                 ({:.2}x)",
                100.0 * rate / ceiling,
                harness_us / bare_us
            );
            series.ceiling.push(ceiling);
            series.floor.push(floor);
            series.fleet.push(rate);
            series.bare_client_us.push(bare_us);
            series.harness_client_us.push(harness_us);
            last = Some(summary);
        }
        let summary = last.expect("at least one round");
        let ceiling = median(&mut series.ceiling);
        let floor = median(&mut series.floor);
        let rate = median(&mut series.fleet);
        let (bare, harness) = (median(&mut series.bare_client_us), median(&mut series.harness_client_us));
        println!(
            "host {} ({} cpus); {devices} devices per fleet run, {concurrency} in flight, {rounds} rounds; medians:",
            summary.host.hostname, summary.host.cpus
        );
        println!("tls ceiling        {ceiling:>8.0} handshakes + 1 round trip /s");
        println!("protocol floor     {floor:>8.0} handshakes + 4 round trips /s ({:.1} % of the ceiling)", 100.0 * floor / ceiling);
        println!("fleet              {rate:>8.0} assigned devices/s");
        println!("fleet / ceiling    {:>8.1} %", 100.0 * rate / ceiling);
        println!("fleet / floor      {:>8.1} %", 100.0 * rate / floor);
        println!("client CPU         {harness:>8.0} us per flow (harness) against {bare:.0} us per bare handshake: {:.2}x", harness / bare);
        let shown =
            [Phase::TlsHandshake, Phase::Connack, Phase::Suback, Phase::RegisterAccepted, Phase::Poll, Phase::EndToEnd];
        for phase in shown {
            let p = summary.results.phase(phase).expect("every phase is in the summary");
            println!("  {:<18} p50 {:>7} us  p99 {:>7} us (last fleet run)", phase.as_str(), p.p50_us, p.p99_us);
        }
    });
}
