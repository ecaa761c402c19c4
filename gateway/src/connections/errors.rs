//! What can go wrong connecting a user to a backend's authorization server, and keeping the
//! connection: each a reason the metrics count by and an error the user or the operator reads.

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectionError {
    /// The backend's or its server's metadata could not be fetched or read.
    #[error("discovery: {0}")]
    Discovery(String),
    /// The backend's metadata names another resource than the backend.
    #[error("the backend's metadata is for {found}, not {expected}")]
    ResourceMismatch { expected: String, found: String },
    /// The server's metadata names another issuer than the one it was fetched for.
    #[error("the authorization server's metadata names the issuer {found}, not {expected}")]
    IssuerMismatch { expected: String, found: String },
    /// The server does not say it supports PKCE with S256.
    #[error("the authorization server {0} does not support PKCE with S256")]
    NoPkce(String),
    /// The backend names no authorization server the route allows.
    #[error("the backend names no allowed authorization server (it names {0})")]
    NotAllowed(String),
    /// The gateway could not become a client of the server.
    #[error("registration at {issuer}: {reason}")]
    Registration { issuer: String, reason: String },
    /// The server (or the user there) refused: an OAuth error, or a 4xx.
    #[error("the authorization server refused: {0}")]
    Refused(String),
    /// The server answered what is not an answer of its kind (a token response without a token).
    #[error("the authorization server's answer is not valid: {0}")]
    BadAnswer(String),
    /// The server answered with a 5xx, or not in time: the same may work later.
    #[error("the authorization server is unavailable: {0}")]
    Unavailable(String),
    /// The browser came back with a `state` the gateway did not send, or too late.
    #[error("this connection attempt is unknown or expired; start again")]
    UnknownState,
    /// Another browser than the one that started the flow came back with its `state`.
    #[error("this connection was started in another browser; start again")]
    OtherBrowser,
    /// The browser came back naming another issuer (RFC 9207), or none where one is required.
    #[error("the response names the issuer {found:?}, not {expected}")]
    WrongIssuer {
        expected: String,
        found: Option<String>,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ConnectionError {
    /// The reason as metrics label it.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            ConnectionError::Discovery(_) => "discovery",
            ConnectionError::ResourceMismatch { .. } => "resource_mismatch",
            ConnectionError::IssuerMismatch { .. } => "issuer_mismatch",
            ConnectionError::NoPkce(_) => "no_pkce",
            ConnectionError::NotAllowed(_) => "not_allowed",
            ConnectionError::Registration { .. } => "registration",
            ConnectionError::Refused(_) => "refused",
            ConnectionError::BadAnswer(_) => "bad_answer",
            ConnectionError::Unavailable(_) => "unavailable",
            ConnectionError::UnknownState => "unknown_state",
            ConnectionError::OtherBrowser => "other_browser",
            ConnectionError::WrongIssuer { .. } => "wrong_issuer",
            ConnectionError::Store(_) => "store",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::metrics::connections::FAILURE_REASONS;

    #[test]
    fn every_reason_is_one_the_metrics_know() {
        let errors = [
            ConnectionError::Discovery(String::new()),
            ConnectionError::ResourceMismatch {
                expected: String::new(),
                found: String::new(),
            },
            ConnectionError::IssuerMismatch {
                expected: String::new(),
                found: String::new(),
            },
            ConnectionError::NoPkce(String::new()),
            ConnectionError::NotAllowed(String::new()),
            ConnectionError::Registration {
                issuer: String::new(),
                reason: String::new(),
            },
            ConnectionError::Refused(String::new()),
            ConnectionError::BadAnswer(String::new()),
            ConnectionError::Unavailable(String::new()),
            ConnectionError::UnknownState,
            ConnectionError::OtherBrowser,
            ConnectionError::WrongIssuer {
                expected: String::new(),
                found: None,
            },
            ConnectionError::Store(StoreError::Poisoned),
        ];
        let reasons: Vec<&str> = errors.iter().map(ConnectionError::reason).collect();
        assert_eq!(reasons, FAILURE_REASONS);
    }
}
