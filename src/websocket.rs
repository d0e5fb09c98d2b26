//! MQTT over WebSocket (RFC 6455, subprotocol `mqtt`), as DPS serves it on port 443.
//!
//! [`WsStream`] turns a WebSocket into a byte stream, so MQTT framing runs unchanged over it:
//! each write is one binary message; reads concatenate binary messages (an MQTT packet may span
//! messages, or a message carry several packets). `client_handshake` and `server_handshake`
//! do the upgrade on each side over an already established TLS stream.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
use futures_util::{Sink, Stream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::{self, Message, client::IntoClientRequest};

/// The path SDKs use (Python, Node, C); C# uses `/`.
pub const DEFAULT_PATH: &str = "/$iothub/websocket";
/// Paths the emulator serves.
pub const SERVED_PATHS: [&str; 2] = [DEFAULT_PATH, "/"];
/// The subprotocol DPS requires, matched without regard to case (the C SDK sends `MQTT`).
pub const SUBPROTOCOL: &str = "mqtt";

/// Errors of the WebSocket upgrade.
#[derive(Debug, thiserror::Error)]
pub enum WsError {
    #[error("WebSocket upgrade failed: {0}")]
    Handshake(#[from] tungstenite::Error),
    #[error("the server did not select the subprotocol {0:?}")]
    Subprotocol(String),
}

/// A WebSocket carrying a byte stream in binary messages.
pub struct WsStream<S> {
    inner: WebSocketStream<S>,
    pending: Bytes,
}

impl<S> WsStream<S> {
    pub fn new(inner: WebSocketStream<S>) -> Self {
        Self { inner, pending: Bytes::new() }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WsStream<S> {
    /// The stream the WebSocket runs on.
    pub fn get_ref(&self) -> &S {
        self.inner.get_ref()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for WsStream<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        while self.pending.is_empty() {
            match ready!(Pin::new(&mut self.inner).poll_next(cx)) {
                Some(Ok(Message::Binary(bytes))) => self.pending = bytes,
                // Pings are answered by tungstenite itself; pongs and frames carry no data.
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                Some(Ok(Message::Text(_))) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "text message on an MQTT WebSocket",
                    )));
                }
                // A close or the end of the stream is the end of the byte stream.
                Some(Ok(Message::Close(_))) | None => return Poll::Ready(Ok(())),
                Some(Err(e)) => return Poll::Ready(Err(io::Error::other(e))),
            }
        }
        let n = self.pending.len().min(buf.remaining());
        buf.put_slice(&self.pending[..n]);
        self.pending.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for WsStream<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let inner = Pin::new(&mut self.inner);
        ready!(Sink::<Message>::poll_ready(inner, cx)).map_err(io::Error::other)?;
        Pin::new(&mut self.inner).start_send(Message::Binary(Bytes::copy_from_slice(buf))).map_err(io::Error::other)?;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Sink::<Message>::poll_flush(Pin::new(&mut self.inner), cx).map_err(io::Error::other)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match ready!(Sink::<Message>::poll_close(Pin::new(&mut self.inner), cx)) {
            Ok(()) | Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                Poll::Ready(Ok(()))
            }
            Err(e) => Poll::Ready(Err(io::Error::other(e))),
        }
    }
}

/// Upgrades `stream` to MQTT over WebSocket as a device: `wss://{host}{path}`, subprotocol
/// `subprotocol` (SDKs send `mqtt`; the C SDK `MQTT`).
pub async fn client_handshake<S>(stream: S, host: &str, path: &str, subprotocol: &str) -> Result<WsStream<S>, WsError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut request = format!("wss://{host}{path}").into_client_request()?;
    let offered = HeaderValue::from_str(subprotocol).map_err(|_| WsError::Subprotocol(subprotocol.to_string()))?;
    request.headers_mut().insert("Sec-WebSocket-Protocol", offered);
    let (socket, response) = tokio_tungstenite::client_async(request, stream).await?;
    let selected = response.headers().get("Sec-WebSocket-Protocol").and_then(|v| v.to_str().ok());
    if !selected.is_some_and(|s| s.eq_ignore_ascii_case(SUBPROTOCOL)) {
        return Err(WsError::Subprotocol(selected.unwrap_or_default().to_string()));
    }
    Ok(WsStream::new(socket))
}

/// Which offered subprotocols a server takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubprotocolRule {
    /// `mqtt` in any case, as DPS does (the C SDK offers `MQTT`).
    MqttAnyCase,
    /// `mqtt` spelled exactly so: a deliberate deviation that refuses the C SDK.
    MqttExactly,
    /// Whatever is offered: a deliberate deviation.
    AnyOffered,
}

/// Accepts the upgrade as DPS does: path `/$iothub/websocket` or `/`, subprotocol `mqtt` in any
/// case (answered with the client's own spelling). Anything else gets HTTP 400. Other `rule`s
/// are deliberate deviations.
#[allow(clippy::result_large_err, reason = "the callback's types are tungstenite's Callback trait")]
pub async fn server_handshake<S>(stream: S, rule: SubprotocolRule) -> Result<WsStream<S>, WsError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let check = move |request: &Request, response: Response| check_upgrade(request, response, rule);
    let socket = tokio_tungstenite::accept_hdr_async(stream, check).await?;
    Ok(WsStream::new(socket))
}

#[allow(clippy::result_large_err, reason = "the callback's types are tungstenite's Callback trait")]
fn check_upgrade(request: &Request, mut response: Response, rule: SubprotocolRule) -> Result<Response, ErrorResponse> {
    let refuse = |why: &str| {
        let mut refusal = ErrorResponse::new(Some(why.to_string()));
        *refusal.status_mut() = StatusCode::BAD_REQUEST;
        refusal
    };
    if !SERVED_PATHS.contains(&request.uri().path()) {
        return Err(refuse("unknown path"));
    }
    let offered = request
        .headers()
        .get_all("Sec-WebSocket-Protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .find(|p| match rule {
            SubprotocolRule::MqttAnyCase => p.eq_ignore_ascii_case(SUBPROTOCOL),
            SubprotocolRule::MqttExactly => *p == SUBPROTOCOL,
            SubprotocolRule::AnyOffered => true,
        });
    let Some(offered) = offered else { return Err(refuse("subprotocol mqtt required")) };
    let echoed = HeaderValue::from_str(offered).map_err(|_| refuse("bad subprotocol"))?;
    response.headers_mut().insert("Sec-WebSocket-Protocol", echoed);
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mqtt::{Framed, QoS, v4};

    #[tokio::test]
    async fn mqtt_packets_cross_a_websocket_both_ways() {
        let (client_io, server_io) = tokio::io::duplex(4096);
        let server = tokio::spawn(async move {
            let ws = server_handshake(server_io, SubprotocolRule::MqttAnyCase).await.unwrap();
            let mut framed = Framed::new(ws);
            let packet = framed.read_packet().await.unwrap();
            framed.send(&packet).await.unwrap();
        });
        let ws = client_handshake(client_io, "localhost", DEFAULT_PATH, "MQTT").await.unwrap();
        let mut framed = Framed::new(ws);
        let mut publish =
            v4::Publish::new("$dps/registrations/PUT/iotdps-register/?$rid=1", QoS::AtLeastOnce, vec![7; 300]);
        publish.pkid = 1;
        let sent = v4::Packet::Publish(publish);
        framed.send(&sent).await.unwrap();
        assert_eq!(framed.read_packet().await.unwrap(), sent, "echoed through the WebSocket");
        server.await.unwrap();
    }

    #[tokio::test]
    async fn wrong_paths_and_subprotocols_are_refused() {
        for (path, subprotocol) in [("/mqtt", "mqtt"), (DEFAULT_PATH, "wamp"), ("/", "")] {
            let (client_io, server_io) = tokio::io::duplex(4096);
            let server =
                tokio::spawn(async move { server_handshake(server_io, SubprotocolRule::MqttAnyCase).await.is_err() });
            let client = if subprotocol.is_empty() {
                let request = format!("wss://localhost{path}").into_client_request().unwrap();
                tokio_tungstenite::client_async(request, client_io).await.map(drop).map_err(WsError::from)
            } else {
                client_handshake(client_io, "localhost", path, subprotocol).await.map(drop)
            };
            assert!(client.is_err(), "{path} {subprotocol:?} accepted");
            assert!(server.await.unwrap(), "{path} {subprotocol:?}");
        }
    }
}
