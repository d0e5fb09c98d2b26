//! The `/metrics` endpoint of `dpsbench run --metrics-listen`: a minimal HTTP/1.1 responder
//! for Prometheus scrapes. It serves the latest page the run published and nothing else.
//!
//! Bounded: a request is read up to [`MAX_REQUEST`] bytes within [`DEADLINE`], at most
//! [`MAX_CONNECTIONS`] are served at once (others are closed), and every connection is closed
//! after one response. `GET /metrics` (or `HEAD`) gets the page, other paths 404, other methods
//! 405, anything unreadable 400.
//!
//! Each [`Page`] counts the GETs it was served to whole, so a run that lingers after its end
//! (`--metrics-linger`) can tell when its final page has been scraped.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::report::prometheus::CONTENT_TYPE;

/// How long a scraper has to send its request and read the response.
pub const DEADLINE: Duration = Duration::from_secs(5);
/// The largest request head read; a longer one is refused.
pub const MAX_REQUEST: usize = 8 * 1024;
/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 16;

/// One exposition to serve, and the number of GETs it was served to whole.
#[derive(Debug, Clone)]
pub struct Page {
    body: Arc<str>,
    served: Arc<watch::Sender<u64>>,
}

impl Page {
    pub fn new(body: String) -> Self {
        Self { body: body.into(), served: Arc::new(watch::channel(0).0) }
    }

    /// Resolves once this page has been served whole to a `GET /metrics`.
    pub async fn scraped(&self) {
        let mut served = self.served.subscribe();
        let _ = served.wait_for(|count| *count > 0).await;
    }
}

/// Serves `page` (the latest exposition) on `listener` until `shutdown` changes or closes.
pub async fn serve(listener: TcpListener, page: watch::Receiver<Page>, mut shutdown: watch::Receiver<bool>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    // Out of descriptors, most likely: give the run a moment rather than spin.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                if connections.len() >= MAX_CONNECTIONS {
                    drop(stream);
                    continue;
                }
                let page = page.borrow().clone();
                connections.spawn(async move {
                    let _ = tokio::time::timeout(DEADLINE, respond(stream, &page)).await;
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = shutdown.changed() => break,
        }
    }
    connections.shutdown().await;
}

/// Reads one request head and writes the response.
async fn respond(mut stream: TcpStream, page: &Page) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut buffer = [0u8; 1024];
    let complete = loop {
        if head.windows(4).any(|w| w == b"\r\n\r\n") {
            break true;
        }
        if head.len() >= MAX_REQUEST {
            break false;
        }
        let n = stream.read(&mut buffer).await?;
        if n == 0 {
            break false;
        }
        head.extend_from_slice(&buffer[..n.min(MAX_REQUEST - head.len())]);
    };
    let (status, body) = if complete { route(&head, &page.body) } else { ("400 Bad Request", "bad request\n") };
    let content_type = if status.starts_with("200") { CONTENT_TYPE } else { "text/plain; charset=utf-8" };
    let head_only = head.starts_with(b"HEAD ");
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    if !head_only {
        stream.write_all(body.as_bytes()).await?;
    }
    stream.shutdown().await?;
    if status.starts_with("200") && !head_only {
        page.served.send_modify(|count| *count += 1);
    }
    Ok(())
}

/// The status and body for a request head.
fn route<'a>(head: &[u8], page: &'a str) -> (&'static str, &'a str) {
    let line = head.split(|b| *b == b'\r').next().unwrap_or_default();
    let mut parts = line.split(|b| *b == b' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next()) else {
        return ("400 Bad Request", "bad request\n");
    };
    if !version.starts_with(b"HTTP/1.") {
        return ("400 Bad Request", "bad request\n");
    }
    if method != b"GET" && method != b"HEAD" {
        return ("405 Method Not Allowed", "only GET /metrics\n");
    }
    let path = target.split(|b| *b == b'?').next().unwrap_or_default();
    if path == b"/metrics" { ("200 OK", page) } else { ("404 Not Found", "not found: try /metrics\n") }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Starts the endpoint on a free loopback port serving `page`.
    async fn start(page: &str) -> (std::net::SocketAddr, watch::Sender<bool>, tokio::task::JoinHandle<()>) {
        start_page(Page::new(page.into())).await
    }

    async fn start_page(page: Page) -> (std::net::SocketAddr, watch::Sender<bool>, tokio::task::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (_, pages) = watch::channel(page);
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(serve(listener, pages, stopped));
        (address, stop, task)
    }

    async fn exchange(address: std::net::SocketAddr, request: &[u8]) -> String {
        let mut stream = TcpStream::connect(address).await.unwrap();
        stream.write_all(request).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        response
    }

    #[tokio::test]
    async fn serves_the_page_at_metrics_and_404_elsewhere() {
        let (address, stop, task) = start("dpsbench_devices_started_total 3\n").await;
        let ok = exchange(address, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.contains("Content-Type: text/plain; version=0.0.4"), "{ok}");
        assert!(ok.contains("Content-Length: 33\r\n"), "{ok}");
        assert!(ok.ends_with("\r\n\r\ndpsbench_devices_started_total 3\n"), "{ok}");
        let query = exchange(address, b"GET /metrics?x=1 HTTP/1.0\r\n\r\n").await;
        assert!(query.starts_with("HTTP/1.1 200 OK"), "{query}");
        let head = exchange(address, b"HEAD /metrics HTTP/1.1\r\n\r\n").await;
        assert!(head.starts_with("HTTP/1.1 200 OK") && head.ends_with("\r\n\r\n"), "{head}");
        let missing = exchange(address, b"GET / HTTP/1.1\r\n\r\n").await;
        assert!(missing.starts_with("HTTP/1.1 404 Not Found"), "{missing}");
        let post = exchange(address, b"POST /metrics HTTP/1.1\r\n\r\n").await;
        assert!(post.starts_with("HTTP/1.1 405"), "{post}");
        let garbage = exchange(address, b"\x16\x03\x01 hello\r\n\r\n").await;
        assert!(garbage.starts_with("HTTP/1.1 400"), "{garbage}");
        let _ = stop.send(true);
        task.await.unwrap();
        assert!(TcpStream::connect(address).await.is_err(), "the listener is closed after shutdown");
    }

    #[tokio::test]
    async fn a_page_is_scraped_once_a_get_has_read_it_whole() {
        let page = Page::new("dpsbench_run_ended 1\n".into());
        let (address, _stop, _task) = start_page(page.clone()).await;
        let scraped = tokio::spawn({
            let page = page.clone();
            async move { page.scraped().await }
        });
        for request in
            [&b"HEAD /metrics HTTP/1.1\r\n\r\n"[..], b"GET /other HTTP/1.1\r\n\r\n", b"POST /metrics HTTP/1.1\r\n\r\n"]
        {
            exchange(address, request).await;
        }
        tokio::task::yield_now().await;
        assert!(!scraped.is_finished(), "HEAD, 404 and 405 are no scrape");
        assert_eq!(*page.served.borrow(), 0);
        exchange(address, b"GET /metrics HTTP/1.1\r\n\r\n").await;
        tokio::time::timeout(DEADLINE, scraped).await.expect("scraped after a GET").unwrap();
        assert_eq!(*page.served.borrow(), 1);
    }

    #[tokio::test]
    async fn an_oversized_request_is_refused() {
        let (address, _stop, _task) = start("x").await;
        let mut request = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
        request.resize(MAX_REQUEST, b'a');
        let response = exchange(address, &request).await;
        assert!(response.starts_with("HTTP/1.1 400"), "{response}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_client_is_dropped_at_the_deadline() {
        let (address, _stop, _task) = start("x").await;
        let mut stream = TcpStream::connect(address).await.unwrap();
        stream.write_all(b"GET /metrics HTTP/1.1\r\n").await.unwrap();
        let begin = tokio::time::Instant::now();
        let mut response = Vec::new();
        let read = tokio::time::timeout(DEADLINE * 2, stream.read_to_end(&mut response)).await;
        assert!(matches!(read, Ok(Ok(0))), "closed without a response: {read:?} {response:?}");
        assert!(begin.elapsed() >= DEADLINE, "held until the deadline");
    }

    proptest::proptest! {
        #[test]
        fn routing_never_panics(head in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let (status, _) = route(&head, "page");
            proptest::prop_assert!(["200", "400", "404", "405"].iter().any(|code| status.starts_with(code)));
        }
    }
}
