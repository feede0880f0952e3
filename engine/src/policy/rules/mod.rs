//! The rule families. Each pushes findings with the strictest mode it allows; the policy
//! then lowers the mode per namespace, controller ownership and exemptions.

pub mod goenv;
pub mod goruntime;
pub mod limitrange;
pub mod probes;
pub mod resources;
pub mod units;
