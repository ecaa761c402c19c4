//! One writer for every response the gateway makes itself (refusals, its own documents, the
//! authorization server's answers, errors in place of a backend's); the JSON error body they share
//! is the authorization server's ([`json_error`]).

use bytes::Bytes;
use pingora::Error;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;

/// Extra headers of a response: names are static, values made per response.
pub(super) type Headers = Vec<(&'static str, String)>;

/// The JSON error body, as the authorization server defines it.
pub(super) use crate::oauth::json_error;

/// Writes `body` as JSON with `status`, `no-store` and `headers`.
pub(super) async fn json(
    session: &mut Session,
    status: u16,
    body: &serde_json::Value,
    headers: &[(&'static str, String)],
) -> pingora::Result<()> {
    let body = serde_json::to_vec(body).expect("JSON");
    local(session, status, body.into(), headers).await
}

/// Writes a whole local response: a JSON body (or none), `no-store`, and `headers`.
pub(super) async fn local(
    session: &mut Session,
    status: u16,
    body: Bytes,
    headers: &[(&'static str, String)],
) -> pingora::Result<()> {
    let mut all = Vec::with_capacity(headers.len() + 2);
    if !body.is_empty() {
        all.push(("content-type", "application/json".to_owned()));
    }
    all.push(("cache-control", "no-store".to_owned()));
    all.extend_from_slice(headers);
    exact(session, status, body, &all).await
}

/// Writes an answer made elsewhere (the authorization server's), with `extra` headers.
pub(super) async fn answer(
    session: &mut Session,
    answer: http::Response<Bytes>,
    extra: &[(&'static str, String)],
) -> pingora::Result<()> {
    let (parts, body) = answer.into_parts();
    let mut response = ResponseHeader::from(parts);
    for (name, value) in extra {
        response.append_header(*name, value.as_str())?;
    }
    write(session, response, body).await
}

/// Writes a whole response with exactly `headers` (and its length).
pub(super) async fn exact(
    session: &mut Session,
    status: u16,
    body: Bytes,
    headers: &[(&'static str, String)],
) -> pingora::Result<()> {
    let mut response = ResponseHeader::build(status, Some(2 + headers.len()))?;
    for (name, value) in headers {
        // Appended, not inserted: several Set-Cookie headers must each stay.
        response.append_header(*name, value.as_str())?;
    }
    write(session, response, body).await
}

/// Writes `response` and its whole `body`, with the body's length.
async fn write(
    session: &mut Session,
    mut response: ResponseHeader,
    body: Bytes,
) -> pingora::Result<()> {
    response.insert_header(http::header::CONTENT_LENGTH, body.len().to_string())?;
    let head_only = session.req_header().method == http::Method::HEAD || body.is_empty();
    // A failure to write is the client's (it went away), and is logged as such.
    session
        .write_response_header(Box::new(response), head_only)
        .await
        .map_err(Error::into_down)?;
    if !head_only {
        session
            .write_response_body(Some(body), true)
            .await
            .map_err(Error::into_down)?;
    }
    Ok(())
}
