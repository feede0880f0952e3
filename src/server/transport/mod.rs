//! Transport: binding the ports, the TLS accept loop with its connection cap and
//! timeouts, HTTP/1.1 or HTTP/2 as ALPN chose, and closing connections after a
//! certificate swap.

pub(crate) mod bind;
pub(crate) mod close_after_swap;
pub(crate) mod connection_timeouts;
pub(crate) mod listener;
