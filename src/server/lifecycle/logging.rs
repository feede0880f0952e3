//! The log subscriber: JSON lines in production, readable text at a terminal. `RUST_LOG`
//! overrides the level (default `info`, without kube-rs's line per failed API request:
//! the LimitRange watch and live read log each failure themselves, with what it means).
//!
//! Lines are handed to a writer thread that writes them in batches: one `write` per line
//! on the request path cost about a tenth of the throughput (BENCHMARKS.md). The queue
//! blocks rather than drops when full, so no line is lost.

use std::io::{BufWriter, IsTerminal};

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

use crate::server::LogFormat;

/// Keep the guard until exit: dropping it flushes the lines still queued.
pub fn init(format: LogFormat) -> WorkerGuard {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,kube_client::client::builder=off"));
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(false)
        // 16 Ki lines (~2 s of logs at full load) bound the queue's memory.
        .buffered_lines_limit(16 * 1024)
        .thread_name("deployguard-log")
        .finish(BufWriter::with_capacity(64 * 1024, std::io::stdout()));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let on_terminal = std::io::stdout().is_terminal();
    // Err only means a subscriber is already set (a test, an embedding program): keep it.
    let _ = match resolve(format, on_terminal) {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init(),
        // Colour codes would break `grep listen=` on a piped log.
        LogFormat::Text | LogFormat::Auto => builder.with_ansi(on_terminal).try_init(),
    };
    guard
}

/// `auto` is text for a person at a terminal, JSON lines for a log collector.
fn resolve(format: LogFormat, on_terminal: bool) -> LogFormat {
    match format {
        LogFormat::Auto if on_terminal => LogFormat::Text,
        LogFormat::Auto => LogFormat::Json,
        chosen => chosen,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_is_text_on_a_terminal_and_json_otherwise() {
        assert_eq!(resolve(LogFormat::Auto, true), LogFormat::Text);
        assert_eq!(resolve(LogFormat::Auto, false), LogFormat::Json);
        for on_terminal in [true, false] {
            assert_eq!(resolve(LogFormat::Json, on_terminal), LogFormat::Json);
            assert_eq!(resolve(LogFormat::Text, on_terminal), LogFormat::Text);
        }
    }
}
