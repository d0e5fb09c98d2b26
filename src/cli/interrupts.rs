//! SIGINT and SIGTERM for the commands that run until stopped: a count the runner drains on
//! (first) and stops on (second), and a future that resolves on either. Nothing else.

/// Counts SIGINT/SIGTERM: the runner drains on the first and stops on the second.
pub(super) fn interrupt_counter() -> tokio::sync::watch::Receiver<u32> {
    let (sender, receiver) = tokio::sync::watch::channel(0u32);
    tokio::spawn(async move {
        loop {
            interrupted().await;
            sender.send_modify(|count| *count += 1);
            if sender.is_closed() {
                return;
            }
        }
    });
    receiver
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed when this is called, not when
/// first polled, so a signal that comes before the await is not lost (nor fatal).
pub(super) fn interrupted() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let signals = signal(SignalKind::interrupt()).and_then(|i| Ok((i, signal(SignalKind::terminate())?)));
        async move {
            match signals {
                Ok((mut interrupt, mut terminate)) => {
                    tokio::select! {
                        _ = interrupt.recv() => {}
                        _ = terminate.recv() => {}
                    }
                }
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
