//! The gateway's tokens: its signing keys and JWKS ([`keys`]), the RFC 9068 access tokens it issues and
//! checks ([`access`]), and what it hands backends ([`backend`]).

pub mod access;
pub mod backend;
pub mod keys;

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}
