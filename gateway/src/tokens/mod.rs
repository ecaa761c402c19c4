//! The gateway's tokens: its signing keys and JWKS ([`keys`]), the RFC 9068 access tokens it issues and
//! checks ([`access`]), those of other authorization servers a route accepts ([`external`]), what
//! it hands backends ([`backend`]), the secrets it keeps sealed in the store
//! ([`sealed`]), and how it makes and keeps its other secrets ([`secrets`]).

pub(crate) mod access;
pub(crate) mod backend;
pub(crate) mod exchange;
pub(crate) mod external;
mod introspection;
pub(crate) mod issuer_keys;
pub(crate) mod keys;
pub(crate) mod sealed;
pub(crate) mod secrets;
