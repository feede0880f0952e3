//! HTTP: the routes (`/validate`, `/mutate`, health), the shared application state,
//! request bodies read within their limit, and the refusals (4xx) with their metrics.

pub(crate) mod app;
pub(crate) mod body;
pub(crate) mod middleware;
pub(crate) mod refusal;
pub(crate) mod routes;
