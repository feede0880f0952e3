//! The log subscriber: JSON lines in production, readable text by hand. `RUST_LOG`
//! overrides the level (default `info`).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use super::LogFormat;

pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout);
    // Err only means a subscriber is already set (a test, an embedding program): keep it.
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init(),
        // Colour codes would break `grep listen=` on a piped log.
        LogFormat::Text => builder
            .with_ansi(std::io::stdout().is_terminal())
            .try_init(),
    };
}
