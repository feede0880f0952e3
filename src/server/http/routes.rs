//! The TLS port's routes: `POST /validate`, `POST /mutate`, `GET /healthz`, `GET /readyz`.
//! Every 4xx body says what was wrong.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, Uri, Version, header};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use tracing::info;

use crate::admission::{Cluster, Endpoint, ReviewSummary, review};
use crate::policy::limitrange::NO_LIMIT_RANGES;
use crate::server::http::app::App;
use crate::server::http::body::{BodyError, read_limited};
use crate::server::http::middleware::{self, Limits};
use crate::server::http::refusal::{drain_small_body, reject, route_label};
use crate::server::limit_ranges::second_look;

pub fn router(app: Arc<App>, request_timeout: Duration) -> Router {
    let limits = Limits {
        app: app.clone(),
        request_timeout,
    };
    Router::new()
        .route("/validate", only(Method::POST, post(validate)))
        .route("/mutate", only(Method::POST, post(mutate)))
        .route("/healthz", only(Method::GET, get(healthz)))
        .route("/readyz", only(Method::GET, get(readyz)))
        .fallback(not_found)
        // Outermost last: the panic guard also covers the timeout and the in-flight count.
        .layer(from_fn_with_state(
            limits.clone(),
            middleware::request_timeout,
        ))
        .layer(from_fn_with_state(
            limits.clone(),
            middleware::count_in_flight,
        ))
        .layer(from_fn_with_state(limits, middleware::catch_panic))
        .with_state(app)
}

/// A route that names its one method in the 405 it answers to the others.
fn only(allowed: Method, route: MethodRouter<Arc<App>>) -> MethodRouter<Arc<App>> {
    route.fallback(
        move |State(app): State<Arc<App>>, method: Method, uri: Uri, request: Request| async move {
            drain_small_body(request).await;
            let message = format!(
                "method {method} is not allowed on {}: use {allowed}",
                uri.path()
            );
            let mut response = reject(
                &app,
                route_label(uri.path()),
                StatusCode::METHOD_NOT_ALLOWED,
                message,
            );
            if let Ok(value) = HeaderValue::from_str(allowed.as_str()) {
                response.headers_mut().insert(header::ALLOW, value);
            }
            response
        },
    )
}

async fn not_found(State(app): State<Arc<App>>, uri: Uri, request: Request) -> Response {
    drain_small_body(request).await;
    let message = format!(
        "no route {}: this server answers POST /validate, POST /mutate, GET /healthz and GET /readyz",
        uri.path()
    );
    reject(&app, "other", StatusCode::NOT_FOUND, message)
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(app): State<Arc<App>>) -> Response {
    if !app.is_ready() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    }
    match app.limit_ranges.as_deref().map(|view| view.readiness()) {
        None => "ok\n".into_response(),
        Some((true, detail)) => format!("{detail}\n").into_response(),
        Some((false, detail)) => {
            (StatusCode::SERVICE_UNAVAILABLE, format!("{detail}\n")).into_response()
        }
    }
}

async fn validate(State(app): State<Arc<App>>, request: Request) -> Response {
    answer(&app, Endpoint::Validate, request).await
}

async fn mutate(State(app): State<Arc<App>>, request: Request) -> Response {
    answer(&app, Endpoint::Mutate, request).await
}

async fn answer(app: &App, endpoint: Endpoint, request: Request) -> Response {
    let started = Instant::now();
    let route = endpoint.as_str();
    let version = request.version();
    let response = match read_limited(request, app.max_body_bytes).await {
        Err(BodyError::TooLarge) => {
            let message = format!(
                "request body is larger than the limit of {} bytes (--max-body-bytes)",
                app.max_body_bytes
            );
            let mut response = reject(app, route, StatusCode::PAYLOAD_TOO_LARGE, message);
            // HTTP/1.1: the rest of the body is never read, so the connection cannot carry
            // another request. (HTTP/2 resets just the stream, with NO_ERROR.)
            if version != Version::HTTP_2 {
                response
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            response
        }
        Err(BodyError::Read(error)) => reject(
            app,
            route,
            StatusCode::BAD_REQUEST,
            format!("cannot read the request body: {error}"),
        ),
        Ok(body) => {
            // One load per request: a reload in the middle never mixes two policies, nor
            // two views of the LimitRanges.
            let policy = app.policy.load_full();
            let snapshot = app.limit_ranges_snapshot();
            let limit_ranges = snapshot.as_deref().unwrap_or(&NO_LIMIT_RANGES);
            let cluster = Cluster {
                limit_ranges,
                today: crate::clock::today_utc(),
            };
            match review(&policy, cluster, endpoint, &body) {
                Ok(outcome) => {
                    let outcome = match &app.limit_ranges {
                        Some(view) => {
                            second_look(view, &policy, cluster, endpoint, &body, outcome).await
                        }
                        None => outcome,
                    };
                    log_review(endpoint, &outcome.summary, started.elapsed());
                    let named = &policy.findings_namespaces;
                    app.metrics.record_review(endpoint, &outcome.summary, named);
                    (
                        [(header::CONTENT_TYPE, "application/json")],
                        Body::from(outcome.body),
                    )
                        .into_response()
                }
                Err(error) => reject(app, route, StatusCode::BAD_REQUEST, error.to_string()),
            }
        }
    };
    app.metrics.observe_duration(endpoint, started.elapsed());
    response
}

/// One line per review. Object bodies never reach the log, only names and rule ids.
fn log_review(endpoint: Endpoint, summary: &ReviewSummary, elapsed: Duration) {
    let mut rules: Vec<&str> = Vec::new();
    for finding in &summary.findings {
        if !rules.contains(&finding.rule.as_str()) {
            rules.push(finding.rule.as_str());
        }
    }
    let exempted: Vec<&str> = summary.exempted.iter().map(|rule| rule.as_str()).collect();
    let granted: Vec<String> = summary.granted.iter().map(ToString::to_string).collect();
    info!(
        uid = %summary.uid,
        kind = %summary.kind,
        namespace = %summary.namespace,
        name = %summary.name,
        operation = summary.operation,
        endpoint = endpoint.as_str(),
        decision = summary.decision.as_str(),
        rules = %rules.join(","),
        exempted = %exempted.join(","),
        granted = %granted.join("; "),
        untrusted_owner = summary.untrusted_owner.as_ref().map(tracing::field::display),
        patch_ops = summary.patch_ops,
        skipped = summary.skipped.unwrap_or(""),
        latency_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
        "review"
    );
}
