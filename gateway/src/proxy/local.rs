//! The gateway's own endpoints, apart from the proxying: liveness, readiness, the signing keys
//! (JWKS), and the metadata documents (RFC 8414, RFC 9728), which browsers of any origin may read.

use std::sync::atomic::Ordering;

use bytes::Bytes;
use pingora::proxy::Session;

use super::cors;
use super::respond::{self, json_error};
use super::router::Endpoint;
use super::state::Gateway;

/// Answers `endpoint`, one of the gateway's own (404 for anything else).
pub(super) async fn serve(
    gateway: &Gateway,
    session: &mut Session,
    endpoint: Endpoint,
) -> pingora::Result<()> {
    let method = &session.req_header().method;
    if endpoint.is_public_document() {
        if method == http::Method::OPTIONS {
            return respond::local(
                session,
                204,
                Bytes::new(),
                &cors::any_origin_preflight("GET, HEAD, OPTIONS"),
            )
            .await;
        }
        if method != http::Method::GET && method != http::Method::HEAD {
            let body = json_error("method_not_allowed", "Use GET");
            let allow = [("allow", "GET, HEAD, OPTIONS".to_owned())];
            return respond::json(session, 405, &body, &allow).await;
        }
    }
    let cors_any = [("access-control-allow-origin", "*".to_owned())];
    let (status, body, headers): (u16, Bytes, &[_]) = match endpoint {
        Endpoint::Health => (200, Bytes::from_static(br#"{"status":"ok"}"#), &[]),
        Endpoint::Ready
            if gateway
                .readiness
                .iter()
                .all(|up| up.load(Ordering::Acquire)) =>
        {
            (200, Bytes::from_static(br#"{"status":"ready"}"#), &[])
        }
        Endpoint::Ready => (503, Bytes::from_static(br#"{"status":"starting"}"#), &[]),
        Endpoint::Jwks => (200, gateway.keys.jwks(), &cors_any),
        Endpoint::AuthServerMetadata => (200, gateway.as_metadata.clone(), &cors_any),
        Endpoint::ResourceMetadata(i) => (200, gateway.resource_metadata[i].clone(), &cors_any),
        Endpoint::NotFound | Endpoint::Mcp(_) | Endpoint::AuthServer(_) => {
            let body = json_error("not_found", "Nothing is served at this path");
            return respond::json(session, 404, &body, &[]).await;
        }
    };
    respond::local(session, status, body, headers).await
}
