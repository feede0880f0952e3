//! Bounded waiting: every wait ends in a pass or a failure, never a hang.

use std::future::Future;
use std::time::Duration;

/// Upper bound of every wait in these tests; reaching it is a failure, never a pass.
pub const PATIENCE: Duration = Duration::from_secs(15);

/// Polls `check` until it returns Some, failing the test after PATIENCE.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
