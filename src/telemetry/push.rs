//! `dpsbench run --metrics-push URL` and `--metrics-otlp URL`: the run's metrics pushed as
//! Prometheus remote write 1.0 or as OTLP/HTTP protobuf ([`Protocol`]), one push per tick (about
//! once a second) and a final one when the run ends, over HTTP/1.1 (hyper's client connection;
//! `https` through rustls with the public web's roots). Both protocols follow the same rules.
//!
//! A push that fails is counted and reported, never fatal: the next push carries the newer
//! figures anyway (the counters are cumulative), so only the final push is retried. Each push has
//! a deadline of [`DEADLINE`]; the connection is kept between pushes and made anew after a failure.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;

mod protocol;

pub use protocol::{Measured, Protocol};

/// How long one push has to connect, send and get its answer.
pub const DEADLINE: Duration = Duration::from_secs(5);
/// Attempts of the final push when the receiver is unreachable or answers 5xx or 429.
const FINAL_ATTEMPTS: u32 = 3;
/// The most of an error answer's body quoted in a report line.
const QUOTED: usize = 200;

/// A parsed `--metrics-push` URL: `http://HOST[:PORT]/PATH` or `https://…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushUrl {
    text: String,
    tls: bool,
    /// The host as a socket address or TLS server name takes it (no IPv6 brackets).
    host: String,
    port: u16,
    authority: String,
    path: String,
}

/// `--metrics-push`'s value parser: an absolute `http` or `https` URL with a host.
pub fn parse_push_url(text: &str) -> Result<PushUrl, String> {
    let uri: hyper::Uri =
        text.parse().map_err(|e| format!("not a URL ({e}); e.g. http://127.0.0.1:9090/api/v1/write"))?;
    let tls = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        Some(other) => return Err(format!("scheme {other:?}: use http or https")),
        None => return Err("no scheme: e.g. http://127.0.0.1:9090/api/v1/write".into()),
    };
    let authority = uri.authority().ok_or("no host: e.g. http://127.0.0.1:9090/api/v1/write")?;
    if authority.as_str().contains('@') {
        return Err("user information in the URL is not supported".into());
    }
    let host = authority.host().trim_start_matches('[').trim_end_matches(']').to_string();
    if host.is_empty() {
        return Err("no host: e.g. http://127.0.0.1:9090/api/v1/write".into());
    }
    let port = authority.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    Ok(PushUrl { text: text.to_string(), tls, host, port, authority: authority.to_string(), path })
}

impl std::fmt::Display for PushUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// Why one push failed.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("cannot connect to {address}: {source}")]
    Connect { address: String, source: std::io::Error },
    #[error("TLS with {host}: {source}")]
    Tls { host: String, source: std::io::Error },
    #[error("{0:?} is not a TLS server name")]
    ServerName(String),
    #[error("HTTP: {0}")]
    Http(#[from] hyper::Error),
    #[error("answered {status}{}", if body.is_empty() { String::new() } else { format!(": {body}") })]
    Status { status: u16, body: String },
    #[error("no answer within {} s", DEADLINE.as_secs())]
    Timeout,
}

impl PushError {
    /// Whether trying again soon may succeed: unreachable, 5xx, 429; not another 4xx, nor a
    /// certificate the receiver's chain does not pass (rustls's errors are `InvalidData`).
    fn retryable(&self) -> bool {
        match self {
            PushError::Status { status, .. } => *status >= 500 || *status == 429,
            PushError::Tls { source, .. } => source.kind() != std::io::ErrorKind::InvalidData,
            PushError::ServerName(_) => false,
            _ => true,
        }
    }
}

/// The pushing task of a run: [`Pusher::publish`] hands it each tick's figures, which it
/// pushes as they come (skipping any that came while a push was under way).
pub struct Pusher {
    url: PushUrl,
    name: &'static str,
    latest: watch::Sender<Option<Snapshot>>,
    notes: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<Tally>,
    last_ms: i64,
}

#[derive(Debug, Clone)]
struct Snapshot {
    measured: Arc<Measured>,
    timestamp_ms: i64,
    last: bool,
}

/// Pushes made and failed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    pub pushes: u64,
    pub failed: u64,
    pub last_error: Option<String>,
}

impl Pusher {
    /// Starts pushing to `url` by `protocol`; `tls` is used for `https`. The run's figures
    /// begin now (an OTLP point's start time).
    pub fn start(url: PushUrl, protocol: Protocol, tls: Arc<rustls::ClientConfig>) -> Self {
        let (latest, snapshots) = watch::channel(None);
        let notes = Arc::new(Mutex::new(Vec::new()));
        let name = protocol.name();
        let client = Client {
            url: url.clone(),
            headers: protocol.headers(),
            tls: tokio_rustls::TlsConnector::from(tls),
            sender: None,
        };
        let task = tokio::spawn(push_loop(client, protocol, now_ms(), snapshots, notes.clone()));
        Self { url, name, latest, notes, task, last_ms: 0 }
    }

    /// Whether it sends the latencies' histograms, not only the Prometheus page's families.
    pub fn wants_latencies(protocol: &Protocol) -> bool {
        matches!(protocol, Protocol::Otlp { .. })
    }

    /// Queues `measured` for the next push, stamped now; returns the lines to report about
    /// pushes that failed since the last call.
    pub fn publish(&mut self, measured: Arc<Measured>) -> Vec<String> {
        self.send(measured, false);
        std::mem::take(&mut *self.notes.lock().expect("no push note is written while panicking"))
    }

    /// Pushes the final `measured` figures (retried when the receiver is unreachable or busy)
    /// and stops; returns the line that sums up the run's pushes.
    pub async fn finish(mut self, measured: Arc<Measured>) -> String {
        self.send(measured, true);
        // Every attempt has its deadline, and so has the pause between them.
        let bound = (DEADLINE + Duration::from_secs(1)) * (FINAL_ATTEMPTS + 1);
        let (url, name) = (&self.url, self.name);
        let Ok(Ok(tally)) = tokio::time::timeout(bound, &mut self.task).await else {
            self.task.abort();
            return format!(
                "dpsbench: {name} push to {url}: the final push did not finish within {} s",
                bound.as_secs()
            );
        };
        match (&tally.last_error, tally.failed) {
            (_, 0) => format!("dpsbench: {name} pushed to {url}: {} pushes, none failed", tally.pushes),
            (error, failed) => format!(
                "dpsbench: {name} pushed to {url}: {failed} of {} pushes failed (last: {})",
                tally.pushes,
                error.as_deref().unwrap_or("unknown")
            ),
        }
    }

    fn send(&mut self, measured: Arc<Measured>, last: bool) {
        // Strictly increasing, so a receiver never sees two samples of a series at one instant.
        self.last_ms = now_ms().max(self.last_ms + 1);
        let _ = self.latest.send(Some(Snapshot { measured, timestamp_ms: self.last_ms, last }));
    }
}

/// The wall clock in Unix milliseconds.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| i64::try_from(since.as_millis()).unwrap_or(i64::MAX))
}

/// Pushes each snapshot as it comes until the last one (or until the pusher is dropped).
async fn push_loop(
    mut client: Client,
    protocol: Protocol,
    start_ms: i64,
    mut snapshots: watch::Receiver<Option<Snapshot>>,
    notes: Arc<Mutex<Vec<String>>>,
) -> Tally {
    let mut tally = Tally::default();
    while snapshots.changed().await.is_ok() {
        let Some(snapshot) = snapshots.borrow_and_update().clone() else { continue };
        let body = Bytes::from(protocol.body(&snapshot, start_ms));
        let attempts = if snapshot.last { FINAL_ATTEMPTS } else { 1 };
        let mut result = client.push(body.clone()).await;
        for _ in 1..attempts {
            match &result {
                Err(error) if error.retryable() => {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    result = client.push(body.clone()).await;
                }
                _ => break,
            }
        }
        tally.pushes += 1;
        if let Err(error) = result {
            let text = error.to_string();
            tally.failed += 1;
            // One line per failure that says something new, each with the count so far.
            if tally.last_error.as_ref() != Some(&text) {
                let line = format!(
                    "dpsbench: {} push to {} failed ({} so far): {text}",
                    protocol.name(),
                    client.url,
                    tally.failed
                );
                notes.lock().expect("no push note is written while panicking").push(line);
            }
            tally.last_error = Some(text);
        }
        if snapshot.last {
            break;
        }
    }
    tally
}

/// One receiver's connection, made when needed.
struct Client {
    url: PushUrl,
    /// The protocol's headers besides Host, User-Agent and the length.
    headers: &'static [(&'static str, &'static str)],
    tls: tokio_rustls::TlsConnector,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Client {
    /// One push within [`DEADLINE`]; the connection is dropped when it fails.
    async fn push(&mut self, body: Bytes) -> Result<(), PushError> {
        let result = tokio::time::timeout(DEADLINE, self.exchange(body)).await.unwrap_or(Err(PushError::Timeout));
        if result.is_err() {
            self.sender = None;
        }
        result
    }

    async fn exchange(&mut self, body: Bytes) -> Result<(), PushError> {
        let mut sender = match self.sender.take() {
            Some(sender) if !sender.is_closed() => sender,
            _ => self.connect().await?,
        };
        sender.ready().await?;
        let mut request = hyper::Request::post(self.url.path.as_str())
            .header(hyper::header::HOST, self.url.authority.as_str())
            .header(hyper::header::USER_AGENT, concat!("dpsbench/", env!("CARGO_PKG_VERSION")));
        for (name, value) in self.headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(body)).expect("the method, path and headers are valid");
        let response = sender.send_request(request).await?;
        let status = response.status();
        let answer = Limited::new(response.into_body(), 4096).collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        self.sender = Some(sender);
        if status.is_success() {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&answer);
        let mut body: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if let Some((cut, _)) = body.char_indices().nth(QUOTED) {
            body.truncate(cut);
            body.push('…');
        }
        Err(PushError::Status { status: status.as_u16(), body })
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, PushError> {
        let address = format!("{}:{}", self.url.host, self.url.port);
        let tcp = tokio::net::TcpStream::connect((self.url.host.as_str(), self.url.port))
            .await
            .map_err(|source| PushError::Connect { address, source })?;
        let _ = tcp.set_nodelay(true);
        if !self.url.tls {
            return handshake(tcp).await;
        }
        let name = rustls_pki_types::ServerName::try_from(self.url.host.clone())
            .map_err(|_| PushError::ServerName(self.url.host.clone()))?;
        let stream = self
            .tls
            .connect(name, tcp)
            .await
            .map_err(|source| PushError::Tls { host: self.url.host.clone(), source })?;
        handshake(stream).await
    }
}

/// An HTTP/1.1 client connection over `io`, driven by its own task until either side closes.
async fn handshake<T>(io: T) -> Result<SendRequest<Full<Bytes>>, PushError>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    // Ends when the sender is dropped or the receiver closes the connection.
    tokio::spawn(connection);
    Ok(sender)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use prost::Message as _;
    use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};

    use super::*;
    use crate::results::Tick;
    use crate::telemetry::prometheus::families;
    use crate::telemetry::remote_write;
    use crate::tls::{ServerIdentity, TlsPolicy, client_config, public_roots, roots_from_pem};

    trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
    impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

    /// A remote-write receiver on a free loopback port (TLS with `identity`), one connection at a
    /// time: answers each request with the next of `answers` (status lines; 200 once they run
    /// out) until the client closes; returns the port and the bodies received.
    async fn receiver(
        identity: Option<&ServerIdentity>,
        answers: &'static [&'static str],
    ) -> (u16, tokio::task::JoinHandle<Vec<Vec<u8>>>) {
        let acceptor =
            identity.map(|i| tokio_rustls::TlsAcceptor::from(i.server_config(TlsPolicy::default()).unwrap()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let mut bodies = Vec::new();
            let mut answers = answers.iter();
            // Done once no client came for two seconds.
            while let Ok(Ok((tcp, _))) = tokio::time::timeout(Duration::from_secs(2), listener.accept()).await {
                let stream: Box<dyn Stream> = match &acceptor {
                    Some(acceptor) => match acceptor.accept(tcp).await {
                        Ok(tls) => Box::new(tls),
                        Err(_) => continue,
                    },
                    None => Box::new(tcp),
                };
                let mut stream = BufReader::new(stream);
                while let Some(body) = read_request(&mut stream).await {
                    bodies.push(body);
                    let status = answers.next().unwrap_or(&"200 OK");
                    let response = format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n");
                    stream.get_mut().write_all(response.as_bytes()).await.unwrap();
                }
            }
            bodies
        });
        (port, task)
    }

    /// The body of the next request on `stream`, or `None` once the client closed it.
    async fn read_request(stream: &mut BufReader<Box<dyn Stream>>) -> Option<Vec<u8>> {
        let mut length = None;
        loop {
            let mut line = String::new();
            if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
                return None;
            }
            if line == "\r\n" {
                break;
            }
            if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = value.trim().parse().ok();
            }
        }
        let mut body = vec![0; length.expect("a push says its length")];
        stream.read_exact(&mut body).await.ok()?;
        Some(body)
    }

    fn final_families() -> Arc<Measured> {
        let tick = Tick { phases: crate::metrics::Metrics::new().live_buckets(), ..Tick::default() };
        Arc::new(Measured { families: families(&tick, true), latencies: None, phases: tick.phases })
    }

    fn remote_write(labels: Vec<(String, String)>) -> Protocol {
        Protocol::RemoteWrite { labels }
    }

    #[tokio::test]
    async fn pushes_over_https_to_a_receiver_it_trusts_and_not_to_another() {
        let identity = ServerIdentity::generate(&[]).unwrap();
        let (port, received) = receiver(Some(&identity), &[]).await;
        let url = parse_push_url(&format!("https://127.0.0.1:{port}/api/v1/write")).unwrap();
        let roots = roots_from_pem(identity.ca_pem().as_bytes(), Path::new("ca.pem")).unwrap();
        let pusher = Pusher::start(
            url.clone(),
            remote_write(vec![("job".into(), "t".into())]),
            client_config(roots, TlsPolicy::default()).unwrap(),
        );
        let line = pusher.finish(final_families()).await;
        assert!(line.ends_with(": 1 pushes, none failed"), "{line}");
        let bodies = tokio::time::timeout(DEADLINE * 2, received).await.unwrap().unwrap();
        assert_eq!(bodies.len(), 1);
        let decoded = snap::raw::Decoder::new().decompress_vec(&bodies[0]).unwrap();
        let request = remote_write::WriteRequest::decode(decoded.as_slice()).unwrap();
        let ended = request.timeseries.iter().find(|s| s.labels[0].value == "dpsbench_run_ended").unwrap();
        assert_eq!(ended.samples[0].value, 1.0);
        assert!(ended.labels.iter().any(|l| l.name == "job" && l.value == "t"));

        // The public roots do not trust the test CA: refused, counted, and never retried.
        let (port, _received) = receiver(Some(&identity), &[]).await;
        let url = parse_push_url(&format!("https://127.0.0.1:{port}/api/v1/write")).unwrap();
        let pusher =
            Pusher::start(url, remote_write(Vec::new()), client_config(public_roots(), TlsPolicy::default()).unwrap());
        let line = pusher.finish(final_families()).await;
        assert!(line.contains("1 of 1 pushes failed (last: TLS with 127.0.0.1: invalid peer certificate"), "{line}");
    }

    #[tokio::test]
    async fn the_final_push_is_retried_while_the_receiver_is_busy_but_not_when_it_refuses() {
        let (port, received) = receiver(None, &["503 Service Unavailable", "429 Too Many Requests"]).await;
        let url = parse_push_url(&format!("http://127.0.0.1:{port}/api/v1/write")).unwrap();
        let tls = client_config(public_roots(), TlsPolicy::default()).unwrap();
        let line = Pusher::start(url, remote_write(Vec::new()), tls.clone()).finish(final_families()).await;
        assert!(line.ends_with(": 1 pushes, none failed"), "{line}");
        let bodies = tokio::time::timeout(DEADLINE * 2, received).await.unwrap().unwrap();
        assert_eq!(bodies.len(), 3, "503, 429, then 200");

        let (port, received) = receiver(None, &["400 Bad Request"]).await;
        let url = parse_push_url(&format!("http://127.0.0.1:{port}/api/v1/write")).unwrap();
        let line = Pusher::start(url, remote_write(Vec::new()), tls).finish(final_families()).await;
        assert!(line.ends_with("1 of 1 pushes failed (last: answered 400)"), "{line}");
        let bodies = tokio::time::timeout(DEADLINE * 2, received).await.unwrap().unwrap();
        assert_eq!(bodies.len(), 1, "a 400 is not retried");
    }

    #[test]
    fn urls_parse_into_what_a_connection_needs() {
        let url = parse_push_url("https://[::1]:9443/api/v1/write?tenant=a").unwrap();
        assert_eq!((url.tls, url.host.as_str(), url.port), (true, "::1", 9443));
        assert_eq!((url.authority.as_str(), url.path.as_str()), ("[::1]:9443", "/api/v1/write?tenant=a"));
        let url = parse_push_url("http://prometheus/api/v1/write").unwrap();
        assert_eq!((url.tls, url.port, url.authority.as_str()), (false, 80, "prometheus"));
        for (bad, why) in [
            ("ftp://host/x", "scheme \"ftp\""),
            ("/api/v1/write", "no scheme"),
            ("http://user:secret@host/w", "user information"),
            ("not a url", "not a URL"),
        ] {
            let error = parse_push_url(bad).unwrap_err();
            assert!(error.contains(why), "{bad}: {error}");
        }
    }
}
