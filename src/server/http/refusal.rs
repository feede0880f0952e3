//! Refusals: every 4xx (and the panic guard's 500) is logged, counted under its route and
//! answered with a plain-text reason.

use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use tracing::warn;

use crate::server::http::app::App;
use crate::server::http::body::read_limited;

/// A refused request's body is read up to this size before the answer: an HTTP/2 client
/// still sending would otherwise see its stream reset where a plain 404 or 405 was meant.
/// Larger bodies are not worth reading (a 413 is immediate too).
const DRAINED_BODY_BYTES: usize = 64 * 1024;

/// Reads and drops a small request body (bounded in time by the request timeout).
pub async fn drain_small_body(request: Request) {
    let _ = read_limited(request, DRAINED_BODY_BYTES).await;
}

/// A 4xx (or the panic guard's 500): logged, counted, and the message as the body.
pub fn reject(app: &App, route: &'static str, status: StatusCode, message: String) -> Response {
    if status.is_client_error() {
        app.metrics.record_rejection(route, status);
    }
    warn!(route, status = status.as_u16(), reason = %message, "request refused");
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{message}\n"),
    )
        .into_response()
}

/// The metric label of a path: a known route or `other` (paths are client input).
pub fn route_label(path: &str) -> &'static str {
    match path {
        "/validate" => "validate",
        "/mutate" => "mutate",
        "/healthz" => "healthz",
        "/readyz" => "readyz",
        _ => "other",
    }
}
