//! Lifecycle: the command line and the typed configuration, start-up, reloads of the
//! certificate and policy, grant expiry, logging, and shutdown on a signal.

pub(crate) mod args;
pub(crate) mod config;
pub(crate) mod grant_expiry;
pub(crate) mod logging;
pub(crate) mod reload;
pub(crate) mod shutdown;
pub(crate) mod start;
