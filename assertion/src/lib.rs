//! The trust contract between `mcp-auth-gateway` and the MCP servers behind it.
//!
//! The gateway forwards the caller's backend token and identity in plain internal headers. A backend
//! must not believe such headers from just anyone, so the gateway also sends `X-Gateway-Assertion`: a
//! short-lived JWT it signs (EdDSA or ES256, `kid` in the header, published in its JWKS) that names the
//! caller and binds the forwarded token by hash (`ath`, as DPoP does). This crate holds both halves of
//! that contract — minting ([`SigningKey`]) and checking ([`Verifier`]) — so that they cannot drift apart.

mod claims;
mod keys;
mod verify;

/// The JWK types the keys are published in, re-exported so that users need not pin `jsonwebtoken`.
pub use jsonwebtoken::jwk;

pub use claims::{AssertionClaims, access_token_hash};
pub use keys::{KeyAlgorithm, KeyError, SigningKey, jwk_set};
pub use verify::{AssertionError, Expectations, Verifier};

/// The request header that carries the assertion.
pub const ASSERTION_HEADER: &str = "x-gateway-assertion";

/// The internal headers the gateway sets on what it forwards (and strips from every request it
/// receives), by their lower-case names: the caller's backend token, their identity, and the
/// request's id. Believed by a backend only together with a valid assertion.
pub const TOKEN_HEADER: &str = "x-forwarded-access-token";
pub const USER_HEADER: &str = "x-forwarded-user";
pub const EMAIL_HEADER: &str = "x-forwarded-email";
pub const USERNAME_HEADER: &str = "x-forwarded-preferred-username";
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The JOSE `typ` of an assertion. Explicit typing (RFC 8725 §3.11) keeps the gateway's own access
/// tokens, signed with the same keys, from ever being accepted as an assertion.
pub const ASSERTION_TYP: &str = "gateway-assertion+jwt";

/// The longest lifetime (`exp - iat`) a backend accepts, in seconds.
pub const MAX_LIFETIME_SECS: u64 = 300;

/// Clock skew tolerated on `exp` and `iat`, in seconds.
pub const CLOCK_SKEW_SECS: u64 = 30;
