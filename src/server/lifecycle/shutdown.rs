//! The way down: on SIGTERM/SIGINT `/readyz` turns 503 at once, the listener keeps
//! accepting for `--drain-delay` (endpoints take a moment to drop this pod), then stops;
//! open connections finish their requests within `--shutdown-grace`.

use tokio::signal::unix::{SignalKind, signal};
use tracing::{info, warn};

use crate::server::lifecycle::start::{RunningServer, start};
use crate::server::{ServerConfig, ServerError};

impl RunningServer {
    /// Drains and stops: /readyz 503, accept for the drain delay, stop accepting, let open
    /// connections finish within the grace period, then close what is left.
    pub async fn shutdown(mut self) {
        self.app.set_not_ready();
        info!(
            drain_delay_s = self.drain_delay.as_secs(),
            "shutting down: /readyz answers 503; still accepting during the drain delay"
        );
        // Reloads after this point would only race the exit.
        self.reloader = None;
        tokio::time::sleep(self.drain_delay).await;

        let _ = self.stop_accepting.send(true);
        while self.listeners.join_next().await.is_some() {}
        let _ = self.graceful.send(true);
        info!(
            grace_s = self.grace.as_secs(),
            "listener closed; finishing in-flight requests"
        );
        // Every open connection holds a permit: all of them back means all closed.
        let all_closed = self.connections.acquire_many(self.max_connections);
        match tokio::time::timeout(self.grace, all_closed).await {
            Ok(_) => info!("all connections closed"),
            Err(_) => {
                let open = self.max_connections as usize - self.connections.available_permits();
                warn!(open, "grace period over; closing the remaining connections");
                let _ = self.abort.send(true);
            }
        }
        self.limit_range_watch = None;
        let _ = self.stop_metrics.send(true);
        let _ = (&mut self.metrics_server).await;
        info!("stopped");
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        let _ = self.abort.send(true);
        self.listeners.abort_all();
        self.metrics_server.abort();
    }
}

/// `deployguard serve`: start, wait for SIGTERM or SIGINT, drain. A second signal exits
/// without waiting.
pub async fn run_until_signal(config: ServerConfig) -> Result<(), ServerError> {
    let mut terminate = signal(SignalKind::terminate()).map_err(ServerError::Signals)?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(ServerError::Signals)?;
    let server = start(&config).await?;
    let first = tokio::select! {
        _ = terminate.recv() => "SIGTERM",
        _ = interrupt.recv() => "SIGINT",
    };
    info!(signal = first, "signal received");
    tokio::select! {
        () = server.shutdown() => {}
        _ = terminate.recv() => warn!(signal = "SIGTERM", "second signal: exiting without waiting"),
        _ = interrupt.recv() => warn!(signal = "SIGINT", "second signal: exiting without waiting"),
    }
    Ok(())
}
