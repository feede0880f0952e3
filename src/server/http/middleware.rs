//! Around every request on the TLS port: a panic guard, the in-flight gauge and the
//! request timeout.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use futures_util::FutureExt;
use tracing::error;

use crate::server::http::app::App;
use crate::server::http::refusal::{reject, route_label};

#[derive(Clone)]
pub struct Limits {
    pub app: Arc<App>,
    pub request_timeout: Duration,
}

/// Last resort: a panic anywhere below becomes a 500 and a metric, and the connection
/// (and every other request on it) lives on.
pub async fn catch_panic(State(limits): State<Limits>, request: Request, next: Next) -> Response {
    let route = route_label(request.uri().path());
    match AssertUnwindSafe(next.run(request)).catch_unwind().await {
        Ok(response) => response,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            limits.app.metrics.panics.inc();
            error!(route, panic = %what, "request handler panicked; answered 500");
            reject(
                &limits.app,
                route,
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error: the request handler panicked (this is a deployguard bug)"
                    .to_owned(),
            )
        }
    }
}

pub async fn count_in_flight(
    State(limits): State<Limits>,
    request: Request,
    next: Next,
) -> Response {
    struct InFlight(Arc<App>);
    impl Drop for InFlight {
        fn drop(&mut self) {
            self.0.metrics.in_flight.dec();
        }
    }
    limits.app.metrics.in_flight.inc();
    // Decremented on drop, so a panic or a cancelled request is not counted for ever.
    let _in_flight = InFlight(limits.app.clone());
    next.run(request).await
}

/// A slow body upload gets a 408 before the API server gives up on its side.
pub async fn request_timeout(
    State(limits): State<Limits>,
    request: Request,
    next: Next,
) -> Response {
    let route = route_label(request.uri().path());
    match tokio::time::timeout(limits.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            let message = format!(
                "request not received within {} s (--request-timeout)",
                limits.request_timeout.as_secs_f64()
            );
            let mut response = reject(&limits.app, route, StatusCode::REQUEST_TIMEOUT, message);
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Policy;
    use crate::server::metrics::Metrics;
    use axum::Router;
    use axum::body::Body;
    use axum::middleware::from_fn_with_state;
    use axum::routing::get;
    use http_body_util::BodyExt;
    use hyper::service::Service;
    use hyper_util::service::TowerToHyperService;

    fn app() -> Arc<App> {
        Arc::new(App::new(Policy::default(), Arc::new(Metrics::new()), 1024))
    }

    async fn boom() -> &'static str {
        panic!("boom")
    }

    #[tokio::test]
    async fn a_panic_becomes_a_500_and_a_metric() {
        let app = app();
        let limits = Limits {
            app: app.clone(),
            request_timeout: Duration::from_secs(5),
        };
        let router = TowerToHyperService::new(
            Router::new()
                .route("/validate", get(boom))
                .route("/healthz", get(|| async { "ok" }))
                .layer(from_fn_with_state(limits.clone(), count_in_flight))
                .layer(from_fn_with_state(limits, catch_panic)),
        );
        for _ in 0..2 {
            let request = Request::get("/validate").body(Body::empty()).unwrap();
            let response = router.call(request).await.unwrap();
            assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
            let body = response.into_body().collect().await.unwrap().to_bytes();
            assert!(String::from_utf8_lossy(&body).contains("panicked"));
        }
        let request = Request::get("/healthz").body(Body::empty()).unwrap();
        assert_eq!(router.call(request).await.unwrap().status(), StatusCode::OK);
        let metrics = app.metrics.encode().unwrap();
        assert!(
            metrics.contains("deployguard_panics_total 2\n"),
            "{metrics}"
        );
        assert!(
            metrics.contains("deployguard_in_flight_requests 0\n"),
            "{metrics}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_request_gets_a_408() {
        let app = app();
        let limits = Limits {
            app,
            request_timeout: Duration::from_secs(4),
        };
        let router = TowerToHyperService::new(
            Router::new()
                .route(
                    "/validate",
                    get(|| async {
                        tokio::time::sleep(Duration::from_secs(60)).await;
                        "late"
                    }),
                )
                .layer(from_fn_with_state(limits, request_timeout)),
        );
        let request = Request::get("/validate").body(Body::empty()).unwrap();
        let response = router.call(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
    }
}
