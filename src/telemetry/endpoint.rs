//! The `/metrics` endpoint of `dpsbench run --metrics-listen`: hyper's HTTP/1.1 server
//! answering Prometheus scrapes with the latest page the run published, and nothing else.
//!
//! Bounded: a connection has [`DEADLINE`] to send its request and read the response, a request
//! head longer than [`MAX_REQUEST`] bytes is refused (431), at most [`MAX_CONNECTIONS`] are served
//! at once (others are closed), and every connection is closed after one response.
//! `GET /metrics` (or `HEAD`) gets the page, other paths 404, other methods 405, anything
//! unreadable 400.
//!
//! Each [`Page`] counts the GETs it was served to whole, so a run that lingers after its end
//! (`--metrics-linger`) can tell when its final page has been scraped.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONNECTION, CONTENT_TYPE as CONTENT_TYPE_HEADER};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::prometheus::CONTENT_TYPE;

/// How long a scraper has to send its request and read the response.
pub const DEADLINE: Duration = Duration::from_secs(5);
/// The largest request head read; a longer one is refused (hyper's smallest read buffer).
pub const MAX_REQUEST: usize = 8 * 1024;
/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 16;

/// One exposition to serve, and the number of GETs it was served to whole.
#[derive(Debug, Clone)]
pub struct Page {
    body: Bytes,
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

/// The endpoint of a run: the serving task on its listener, and the page it serves.
pub struct Endpoint {
    address: SocketAddr,
    page: watch::Sender<Page>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Endpoint {
    /// Serves `page` on `listener` (already bound, so a test can bind port 0) until stopped.
    pub fn start(listener: TcpListener, page: Page) -> std::io::Result<Self> {
        let address = listener.local_addr()?;
        let (publish, pages) = watch::channel(page);
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(serve(listener, pages, stopped));
        Ok(Self { address, page: publish, stop, task })
    }

    /// The address it listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Serves `page` from now on.
    pub fn publish(&self, page: Page) {
        let _ = self.page.send(page);
    }

    /// Closes the listener and waits for the serving task, which ends every connection.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
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
                    let _ = tokio::time::timeout(DEADLINE, respond(stream, page)).await;
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = shutdown.changed() => break,
        }
    }
    connections.shutdown().await;
}

/// Serves one request on `stream` and closes it; counts the page served once a GET of it was
/// written whole.
async fn respond(stream: TcpStream, page: Page) -> Result<(), hyper::Error> {
    let scraped = Arc::new(AtomicBool::new(false));
    let service = {
        let (scraped, body) = (scraped.clone(), page.body.clone());
        service_fn(move |request: Request<Incoming>| {
            let response = route(request.method(), request.uri().path(), &body);
            if response.status() == StatusCode::OK && request.method() == Method::GET {
                scraped.store(true, Ordering::Relaxed);
            }
            std::future::ready(Ok::<_, Infallible>(response))
        })
    };
    http1::Builder::new()
        .keep_alive(false)
        .title_case_headers(true)
        .max_buf_size(MAX_REQUEST)
        .serve_connection(TokioIo::new(stream), service)
        .await?;
    if scraped.load(Ordering::Relaxed) {
        page.served.send_modify(|count| *count += 1);
    }
    Ok(())
}

/// The response to a request for `path` with `method`.
fn route(method: &Method, path: &str, page: &Bytes) -> Response<Full<Bytes>> {
    let (status, content_type, body) = if method != Method::GET && method != Method::HEAD {
        (StatusCode::METHOD_NOT_ALLOWED, "text/plain; charset=utf-8", Bytes::from_static(b"only GET /metrics\n"))
    } else if path == "/metrics" {
        (StatusCode::OK, CONTENT_TYPE, page.clone())
    } else {
        (StatusCode::NOT_FOUND, "text/plain; charset=utf-8", Bytes::from_static(b"not found: try /metrics\n"))
    };
    Response::builder()
        .status(status)
        .header(CONTENT_TYPE_HEADER, content_type)
        .header(CONNECTION, "close")
        .body(Full::new(body))
        .expect("a status and two valid headers make a response")
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

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
        // hyper answers an HTTP/1.0 request in HTTP/1.0.
        let query = exchange(address, b"GET /metrics?x=1 HTTP/1.0\r\n\r\n").await;
        assert!(query.starts_with("HTTP/1.0 200 OK"), "{query}");
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
        assert!(response.starts_with("HTTP/1.1 431"), "{response}");
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
        fn routing_never_panics(
            method in proptest::collection::vec(proptest::prelude::any::<u8>(), 1..12),
            path in ".{0,100}",
        ) {
            let method = Method::from_bytes(&method).unwrap_or(Method::PUT);
            let status = route(&method, &path, &Bytes::from_static(b"page")).status().as_u16();
            proptest::prop_assert!([200, 404, 405].contains(&status));
        }
    }
}
