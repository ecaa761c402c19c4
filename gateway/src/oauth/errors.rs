//! OAuth errors of the JSON endpoints (`/token`, `/register`, `/revoke`), as RFC 6749 §5.2 and RFC 7591
//! §3.2.2 spell them, mapped in one place to a status and a body; and the store's failures. Its
//! [`json_error`] is the one JSON error body every part of the gateway writes.

use http::header::WWW_AUTHENTICATE;

use super::Response;
use super::response;
use super::response::WithHeader as _;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub(crate) enum OAuthError {
    #[error("{1}")]
    InvalidRequest(&'static str, String),
    #[error("{0}")]
    InvalidClient(String),
    #[error("{0}")]
    InvalidGrant(String),
    #[error("{0}")]
    UnauthorizedClient(String),
    #[error("{0}")]
    UnsupportedGrantType(String),
    #[error("{0}")]
    InvalidScope(String),
    #[error("{0}")]
    InvalidTarget(String),
    #[error("{0}")]
    InvalidRedirectUri(String),
    #[error("{0}")]
    InvalidClientMetadata(String),
    /// A dependency (the identity provider) cannot answer now: 503, to retry.
    #[error("{0}")]
    TemporarilyUnavailable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The signing key would not sign a token.
    #[error("signing a token: {0}")]
    Signing(#[from] gateway_assertion::KeyError),
    /// A page, already rendered (for the browser endpoints).
    #[error("a page")]
    Page(Box<Response>),
}

impl OAuthError {
    pub(crate) fn invalid_request(description: impl Into<String>) -> Self {
        OAuthError::InvalidRequest("invalid_request", description.into())
    }

    /// The OAuth error code ("server_error" for a failed store or key, and a page).
    pub(crate) fn code(&self) -> &'static str {
        match self {
            OAuthError::InvalidRequest(code, _) => code,
            OAuthError::InvalidClient(_) => "invalid_client",
            OAuthError::InvalidGrant(_) => "invalid_grant",
            OAuthError::UnauthorizedClient(_) => "unauthorized_client",
            OAuthError::UnsupportedGrantType(_) => "unsupported_grant_type",
            OAuthError::InvalidScope(_) => "invalid_scope",
            OAuthError::InvalidTarget(_) => "invalid_target",
            OAuthError::InvalidRedirectUri(_) => "invalid_redirect_uri",
            OAuthError::InvalidClientMetadata(_) => "invalid_client_metadata",
            OAuthError::TemporarilyUnavailable(_) => "temporarily_unavailable",
            OAuthError::Store(error) if error.is_unreachable() => "temporarily_unavailable",
            OAuthError::Store(_) | OAuthError::Signing(_) | OAuthError::Page(_) => "server_error",
        }
    }

    pub(crate) fn into_response(self) -> Response {
        if let OAuthError::Page(page) = self {
            return *page;
        }
        let status = match &self {
            OAuthError::InvalidClient(_) => 401,
            OAuthError::TemporarilyUnavailable(reason) => {
                tracing::warn!(%reason, "a dependency is unavailable");
                503
            }
            OAuthError::Store(error) if error.is_unreachable() => {
                tracing::warn!(%error, "the store is unreachable");
                503
            }
            OAuthError::Store(error) => {
                tracing::error!(%error, "the store failed");
                500
            }
            OAuthError::Signing(error) => {
                tracing::error!(%error, "the signing key failed");
                500
            }
            _ => 400,
        };
        let description = match &self {
            OAuthError::Store(error) if error.is_unreachable() => {
                "The server cannot complete the request now; try again shortly".to_owned()
            }
            OAuthError::TemporarilyUnavailable(_) => {
                "The identity provider cannot be asked now; try again shortly".to_owned()
            }
            OAuthError::Store(_) | OAuthError::Signing(_) => {
                "The server could not complete the request".to_owned()
            }
            other => other.to_string(),
        };
        let response = response::json(status, &json_error(self.code(), &description));
        if status == 401 {
            // RFC 6749 §5.2: a failed client authentication names the scheme the client may use.
            response.with_header(WWW_AUTHENTICATE, "Basic realm=\"mcp-auth-gateway\"")
        } else if status == 503 {
            response.with_header(http::header::RETRY_AFTER, &RETRY_AFTER_SECS.to_string())
        } else {
            response
        }
    }
}

/// When a client may try again after the store was unreachable.
const RETRY_AFTER_SECS: u64 = 5;

/// The JSON error body of OAuth (RFC 6749 §5.2) and of bearer challenges (RFC 6750 §3), which every
/// JSON error the gateway writes uses: `{"error": …, "error_description": …}`.
pub(crate) fn json_error(error: &str, description: &str) -> serde_json::Value {
    serde_json::json!({ "error": error, "error_description": description })
}
