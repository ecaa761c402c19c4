//! The gateway's tokens: its signing keys and JWKS ([`keys`]), the RFC 9068 access tokens it issues and
//! checks ([`access`]), and what it hands backends ([`backend`]).

pub mod access;
pub mod backend;
pub mod keys;
