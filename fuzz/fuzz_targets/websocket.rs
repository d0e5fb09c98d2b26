//! The WebSocket adapter's framing, server side: an upgrade request then frames, whatever the
//! bytes. Must never panic; the stream ends when the input does.
#![no_main]

use dpsbench::websocket::SubprotocolRule;
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fuzz_target!(|data: &[u8]| {
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a current-thread runtime");
    runtime.block_on(async {
        let (mut client, server) = tokio::io::duplex(1 << 20);
        // The whole input is written, then the client's side closes: every read ends.
        let _ = client.write_all(data).await;
        let _ = client.shutdown().await;
        // The first byte also picks the subprotocol rule, so every rule's path is explored.
        let rule = match data.first().map(|b| b % 3) {
            Some(0) => SubprotocolRule::AnyOffered,
            Some(1) => SubprotocolRule::MqttExactly,
            _ => SubprotocolRule::MqttAnyCase,
        };
        let Ok(mut ws) = dpsbench::websocket::server_handshake(server, rule).await else {
            return;
        };
        let mut buf = [0u8; 4096];
        // Each read consumes input or ends: bounded by the input's length.
        for _ in 0..=data.len() {
            match ws.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        drop(client);
    });
});
