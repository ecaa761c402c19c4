//! How large a request body may be (`limits.max_request_body_bytes`), checked in one place and
//! refused with one answer: the body's declared `Content-Length`, read once at admission and kept
//! in the request's state, and what comes as it streams, when it declares none. A route that reads
//! its body before forwarding reads at most this much too ([`super::inspect`]).

use http::HeaderMap;

use super::respond::{self, Headers};
use crate::config::Config;
use crate::oauth::json_error;

/// The OAuth-style error and description of every 413 the gateway writes.
pub(super) const ERROR: &str = "payload_too_large";
pub(super) const DESCRIPTION: &str = "The request body is too large";

/// The length a request declares for its body (`Content-Length`), if it declares one that reads.
pub(super) fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// The most a body may hold under `config`.
pub(super) fn max(config: &Config) -> u64 {
    config.server.max_request_body_bytes
}

/// Whether `bytes` of body are more than `config` allows.
pub(super) fn exceeds(bytes: u64, config: &Config) -> bool {
    bytes > max(config)
}

/// The 413 of a body too large, with the CORS `headers` of where it was sent.
pub(super) async fn refuse(
    session: &mut pingora::proxy::Session,
    headers: &Headers,
) -> pingora::Result<()> {
    respond::json(session, 413, &json_error(ERROR, DESCRIPTION), headers).await
}
