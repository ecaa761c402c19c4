//! Hands the authorization server's endpoints their requests, as plain requests, and writes their
//! answers: CORS for the endpoints browsers call, the per-client-IP rate limits, and a bound on the
//! body read.

use std::net::IpAddr;
use std::time::Instant;

use bytes::Bytes;
use pingora::Error;
use pingora::proxy::Session;

use super::client_address::limit_key;
use super::cors;
use super::respond::{self, json_error};
use super::state::Gateway;
use crate::oauth::AsEndpoint;
use crate::store::count_against;

/// The largest body the authorization server's endpoints read.
const MAX_AS_BODY: usize = 64 * 1024;

/// Serves `endpoint` of the authorization server (404 without one).
pub(super) async fn serve(
    gateway: &Gateway,
    session: &mut Session,
    endpoint: AsEndpoint,
    client: Option<IpAddr>,
    body_deadline: Instant,
) -> pingora::Result<()> {
    let Some(auth) = &gateway.auth else {
        let body = json_error("not_found", "Nothing is served at this path");
        return respond::json(session, 404, &body, &[]).await;
    };
    let cors: respond::Headers = if endpoint.is_cors() {
        vec![("access-control-allow-origin", "*".into())]
    } else {
        Vec::new()
    };
    if session.req_header().method == http::Method::OPTIONS && endpoint.is_cors() {
        return respond::local(
            session,
            204,
            Bytes::new(),
            &cors::any_origin_preflight("POST, OPTIONS"),
        )
        .await;
    }
    if let Err(wait) = rate_limited(gateway, client, endpoint).await {
        let mut headers = cors;
        headers.push(("retry-after", wait.to_string()));
        let body = json_error(
            "rate_limited",
            "Too many requests from this address; retry later",
        );
        return respond::json(session, 429, &body, &headers).await;
    }
    let header = session.req_header();
    let method = header.method.clone();
    let query = header.uri.query().map(str::to_owned);
    let headers = header.headers.clone();
    // The whole body by the deadline, over HTTP/1.1 and HTTP/2 alike. A failure to read is the
    // client's (it went away), and is logged as such.
    let read = async {
        let mut body = Vec::new();
        while let Some(chunk) = session
            .read_request_body()
            .await
            .map_err(Error::into_down)?
        {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_AS_BODY {
                return Ok(None);
            }
        }
        Ok::<_, Box<Error>>(Some(body))
    };
    let left = body_deadline.saturating_duration_since(Instant::now());
    let body = match pingora_timeout::fast_timeout::fast_timeout(left, read).await {
        Ok(Ok(Some(body))) => body,
        Ok(Ok(None)) => return super::body_limit::refuse(session, &cors).await,
        Ok(Err(error)) => return Err(error),
        Err(_) => {
            let error = json_error("request_timeout", "The request body did not arrive in time");
            let mut headers = cors;
            headers.push(("connection", "close".into()));
            return respond::json(session, 408, &error, &headers).await;
        }
    };
    let request = crate::oauth::Request {
        method,
        query,
        headers,
        body: body.into(),
    };
    let response = auth.handle(endpoint, request).await;
    respond::answer(session, response, &cors).await
}

/// `Err` with the seconds to wait when the client's address (an IPv6 client's /64) is over
/// `endpoint`'s limit. Replicas that share a store count together there (a window from an address's
/// first request); when the store cannot count, or there is none, each replica limits on its own.
async fn rate_limited(
    gateway: &Gateway,
    client: Option<IpAddr>,
    endpoint: AsEndpoint,
) -> Result<(), u64> {
    let Some((_, limiter)) = gateway.limits.iter().find(|(e, _)| *e == endpoint) else {
        return Ok(());
    };
    // A peer with no address (a Unix socket) is the operator's own.
    let Some(key) = client.map(limit_key) else {
        return Ok(());
    };
    let bucket = format!("{}:{key}", endpoint.path());
    count_against(gateway.shared_store.as_deref(), &bucket, limiter, key).await
}
