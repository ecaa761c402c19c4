//! A request that failed: the status it is answered with (a JSON body, if nothing was written yet)
//! and the log line its cause deserves.

use pingora::proxy::{FailToProxy, Session};
use pingora::{Error, ErrorSource, ErrorType};

use super::ctx::RequestCtx;
use super::respond::{self, json_error};
use super::watchdog::Ending;

/// Answers a failed request, if the client can still be answered, and logs why it failed.
pub(super) async fn answer(
    session: &mut Session,
    e: &Error,
    ctx: &RequestCtx,
    route: &str,
) -> FailToProxy {
    log(e, route, &ctx.telemetry.request_id, ctx.backend.stream_open);
    let code = status(e);
    if code > 0 && session.response_written().is_none() {
        let (error, description) = match code {
            502 if e.esource() != &ErrorSource::Upstream => (
                "bad_gateway",
                "Your sign-in at the identity provider is not available; sign in again",
            ),
            502 => (
                "bad_gateway",
                "The MCP server behind the gateway could not be reached",
            ),
            504 => (
                "gateway_timeout",
                "The MCP server behind the gateway did not answer in time",
            ),
            413 => (super::body_limit::ERROR, super::body_limit::DESCRIPTION),
            408 => ("request_timeout", "The request body did not arrive in time"),
            400 => ("bad_request", "The request could not be read"),
            _ => ("internal_error", "The gateway failed to handle the request"),
        };
        let _ = respond::json(session, code, &json_error(error, description), &[]).await;
    }
    FailToProxy {
        error_code: code,
        can_reuse_downstream: false,
    }
}

/// Answers a request the gateway ended itself ([`super::watchdog`]): `408` for a body that did
/// not come in time; a stream whose access ended is ended cleanly (its last chunk, or HTTP/2's end
/// of stream), so that the client opens it again and meets the answer a new request gets.
pub(super) async fn ended(
    session: &mut Session,
    ending: Ending,
    ctx: &RequestCtx,
    route: &str,
) -> FailToProxy {
    let request_id = ctx.telemetry.request_id.to_str().unwrap_or("-");
    tracing::debug!(
        route,
        request_id,
        reason = ending.reason(),
        "the gateway ended a request"
    );
    let status = match session.response_written() {
        None if ending == Ending::BodyTimeout => {
            let body = json_error("request_timeout", "The request body did not arrive in time");
            let close = [("connection", "close".into())];
            let _ = respond::json(session, 408, &body, &close).await;
            408
        }
        None => {
            let body = json_error(
                "invalid_token",
                "The access this request began with has ended",
            );
            let _ = respond::json(session, 401, &body, &[]).await;
            401
        }
        Some(response) => {
            let status = response.status.as_u16();
            let _ = session.write_response_body(None, true).await;
            let _ = session.finish_body().await;
            status
        }
    };
    FailToProxy {
        error_code: status,
        can_reuse_downstream: false,
    }
}

/// Whether the client went away (closed its stream, say): a request's end, not its failure.
pub(super) fn client_went_away(e: &Error) -> bool {
    status(e) == 0
}

/// The status for a failure: 504 for a backend that timed out, 502 for one that failed otherwise,
/// 0 (nothing to answer) for a client that went away.
fn status(e: &Error) -> u16 {
    match e.etype() {
        ErrorType::HTTPStatus(code) => *code,
        ErrorType::ConnectTimedout | ErrorType::ReadTimedout | ErrorType::WriteTimedout
            if e.esource() == &ErrorSource::Upstream =>
        {
            504
        }
        _ => match e.esource() {
            ErrorSource::Upstream => 502,
            ErrorSource::Downstream => match e.etype() {
                ErrorType::WriteError | ErrorType::ReadError | ErrorType::ConnectionClosed => 0,
                // A body that stopped coming (Pingora bounds each read by the body timeout).
                ErrorType::ReadTimedout => 408,
                _ => 400,
            },
            ErrorSource::Internal | ErrorSource::Unset => 500,
        },
    }
}

/// Logs why a request failed, at the level its cause deserves: a client that went away, or sent
/// what could not be read or was too large, is normal on the open internet, and so is an SSE stream
/// cut after `read_timeout` of silence, as configured (DEBUG; the access line records either); a
/// backend that failed is the operator's concern (WARN); the gateway's own failure is an ERROR.
fn log(e: &Error, route: &str, request_id: &http::HeaderValue, stream_open: bool) {
    let request_id = request_id.to_str().unwrap_or("-");
    let client_side = match e.etype() {
        ErrorType::HTTPStatus(code) => *code < 500,
        _ => e.esource() == &ErrorSource::Downstream,
    };
    if matches!(e.etype(), ErrorType::HTTPStatus(502)) && !client_side {
        tracing::warn!(route, request_id, error = %e, "a request was refused for want of the caller's identity provider token");
        return;
    }
    let upstream = e.esource() == &ErrorSource::Upstream;
    if client_side {
        tracing::debug!(route, request_id, error = %e, "the client went away or sent a request that cannot be served");
    } else if upstream && stream_open && e.etype() == &ErrorType::ReadTimedout {
        tracing::debug!(route, request_id, error = %e, "a silent stream was cut after read_timeout");
    } else if upstream {
        tracing::warn!(route, request_id, error = %e, "the backend failed");
    } else {
        tracing::error!(route, request_id, error = %e, "the gateway failed to handle a request");
    }
}
