//! The gateway's tokens: its signing keys and JWKS ([`keys`]), the RFC 9068 access tokens it issues and
//! checks ([`access`]), and what it hands backends ([`backend`]).

pub(crate) mod access;
pub(crate) mod backend;
pub(crate) mod keys;
