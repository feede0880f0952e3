//! The policy file on disk: the one reader behind `--config` for the CLI, the server's
//! start-up and its reloads. The engine parses the text; reading it is IO, so it is here.

use std::path::Path;

use crate::config::{ConfigError, policy_from_bytes};
use crate::policy::Policy;

/// Reads and validates a policy file.
pub fn load_policy(path: &Path) -> Result<Policy, ConfigError> {
    policy_from_bytes(&read_policy_file(path)?, &path.display().to_string())
}

/// A policy file's bytes (the server keeps them to tell a change from a touch).
pub fn read_policy_file(path: &Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|error| ConfigError::Read {
        path: path.display().to_string(),
        error,
    })
}
