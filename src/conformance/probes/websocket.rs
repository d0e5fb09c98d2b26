//! WebSocket probes: the registration lifecycle over `wss` in every SDK's dialect, and a wrong
//! subprotocol refused.

use std::sync::Arc;

use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::TlsConnector;

use super::{ProbeTarget, Verdict};
use crate::device::driver::{never_abort, now};
use crate::device::{Outcome, Target, Transport, run_device};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use crate::websocket::DEFAULT_PATH;

/// Why a WebSocket upgrade could not be tried.
#[derive(Debug, thiserror::Error)]
pub enum UpgradeError {
    #[error("connect: {0}")]
    Connect(std::io::Error),
    #[error("TLS: {0}")]
    Tls(std::io::Error),
    #[error(transparent)]
    Request(#[from] tokio_tungstenite::tungstenite::Error),
}

/// The dialects SDKs speak: Python/Node/C's path, C#'s root path, the C SDK's `MQTT`.
const DIALECTS: [(&str, &str, &str); 3] =
    [("sdk default", DEFAULT_PATH, "mqtt"), ("C# path /", "/", "mqtt"), ("C SDK MQTT", DEFAULT_PATH, "MQTT")];

/// DPS-WS-001: the lifecycle completes over WebSocket in every dialect.
pub async fn lifecycle_over_websocket(target: &ProbeTarget) -> Verdict {
    let Some(address) = target.ws_address else {
        return Verdict::Skipped("the target has no WebSocket endpoint (give --ws-target)".into());
    };
    let settings = Arc::new(target.flow_settings(4));
    let mut done = Vec::new();
    for (i, (name, path, subprotocol)) in DIALECTS.iter().enumerate() {
        let device_target = Target {
            address,
            server_name: target.server_name.clone(),
            tls: target.tls12(),
            transport: Transport::WebSocket { path: path.to_string(), subprotocol: subprotocol.to_string() },
            watch: None,
        };
        let report =
            run_device(&device_target, settings.clone(), target.device(&format!("ws-{i}")), now(), never_abort()).await;
        match report.outcome {
            Outcome::Assigned { .. } => done.push(format!("{name} ({path}, {subprotocol})")),
            Outcome::Connected => unreachable!("probes run whole flows, never connect-only ones"),
            Outcome::Failed(kind) => {
                let failed = format!("{name} ({path}, subprotocol {subprotocol}): {}", kind.label());
                return super::flow_failed(&kind, failed);
            }
        }
    }
    Verdict::Pass(format!("assigned over WebSocket: {}", done.join("; ")))
}

/// DPS-WS-002: an upgrade offering another subprotocol is refused.
pub async fn wrong_subprotocol_refused(target: &ProbeTarget) -> Verdict {
    let Some(address) = target.ws_address else {
        return Verdict::Skipped("the target has no WebSocket endpoint (give --ws-target)".into());
    };
    let upgrade = async {
        let tcp = TcpStream::connect(address).await.map_err(UpgradeError::Connect)?;
        let tls = TlsConnector::from(target.tls12())
            .connect(target.server_name.clone(), tcp)
            .await
            .map_err(UpgradeError::Tls)?;
        let host = match &target.server_name {
            rustls_pki_types::ServerName::DnsName(name) => name.as_ref().to_string(),
            _ => address.ip().to_string(),
        };
        // The raw upgrade: what matters is the server's answer (101 or a refusal), not whether
        // a device would accept the subprotocol it selected.
        let mut request = format!("wss://{host}{DEFAULT_PATH}").into_client_request()?;
        request.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static("wamp"));
        Ok::<_, UpgradeError>(
            tokio_tungstenite::client_async(request, tls).await.map(|(_, response)| response.status()),
        )
    };
    match timeout(target.deadline * 2, upgrade).await {
        Ok(Ok(Err(refused))) => Verdict::Pass(format!("subprotocol wamp refused: {refused}")),
        Ok(Ok(Ok(status))) => {
            Verdict::Fail(format!("an upgrade offering only subprotocol wamp was accepted ({status})"))
        }
        Ok(Err(UpgradeError::Tls(e))) => Verdict::Inconclusive {
            blocked_by: "DPS-TLS-003".into(),
            reason: format!("could not reach the WebSocket endpoint: TLS handshake failed: {e}"),
        },
        Ok(Err(e)) => Verdict::Fail(format!("could not reach the WebSocket endpoint: {e}")),
        Err(_) => Verdict::Fail("no answer to the upgrade within the deadline".into()),
    }
}
