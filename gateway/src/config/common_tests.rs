//! What the config's tests share: the smallest valid file, and its validation as `load` does it.

use std::path::Path;

use super::file::FileConfig;
use super::{Config, ConfigError};

// One route, the rest defaults.
pub(super) use test_fixtures::MINIMAL_CONFIG as MINIMAL;

/// Parses and validates `text` as [`crate::config::load`] does a file called `gw.toml`.
pub(super) fn validate(text: &str) -> Result<Config, String> {
    validate_with_env(text, &[])
}

/// [`validate`] in an environment that also holds `vars`.
pub(super) fn validate_with_env(text: &str, vars: &[(&str, &str)]) -> Result<Config, String> {
    let path = Path::new("gw.toml");
    let file = FileConfig::parse(text)
        .map_err(|(key, reason)| ConfigError::new(path, key.as_deref(), reason).to_string())?;
    Config::validate(file, path, &|name| match name {
        "KEY_PEM" => Some("pem".to_owned()),
        _ => vars
            .iter()
            .find(|(var, _)| *var == name)
            .map(|(_, value)| (*value).to_owned()),
    })
    .map_err(|e| e.to_string())
}
