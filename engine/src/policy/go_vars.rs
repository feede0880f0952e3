//! The Go runtime variables deployguard writes and judges, named once for the record
//! (`injected`), the injection (`rules::goruntime`) and the checks of what users wrote
//! (`rules::goenv`).

pub const GOMAXPROCS: &str = "GOMAXPROCS";
pub const GOMEMLIMIT: &str = "GOMEMLIMIT";
/// The variables deployguard manages, in the order it writes them.
pub const GO_VARS: [&str; 2] = [GOMAXPROCS, GOMEMLIMIT];
