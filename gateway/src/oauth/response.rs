//! The authorization server's answers are `http` responses; this holds the shapes they take (a JSON
//! document that is never cached, a redirect) and the one way a handler adds a header.

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderName, LOCATION, PRAGMA};
use http::{HeaderValue, StatusCode};

/// A handler's answer.
pub(crate) type Response = http::Response<Bytes>;

/// `body` as JSON with `status`, not to be cached (RFC 6749 §5.1).
pub(crate) fn json(status: u16, body: &serde_json::Value) -> Response {
    let body = serde_json::to_vec(body).expect("a JSON value serialises");
    with_status(status, body.into())
        .with_header(CONTENT_TYPE, "application/json")
        .with_header(CACHE_CONTROL, "no-store")
        .with_header(PRAGMA, "no-cache")
}

/// A `302 Found` to `location`, not to be cached.
pub(crate) fn redirect(location: &str) -> Response {
    with_status(302, Bytes::new())
        .with_header(LOCATION, location)
        .with_header(CACHE_CONTROL, "no-store")
}

/// A response with `status` and `body` and no header yet.
pub(crate) fn with_status(status: u16, body: Bytes) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::from_u16(status).expect("a status the server chose");
    response
}

/// Headers added one by one; a header given twice (`Set-Cookie`) keeps both values.
pub(crate) trait WithHeader {
    fn with_header(self, name: HeaderName, value: &str) -> Self;
}

impl WithHeader for Response {
    fn with_header(mut self, name: HeaderName, value: &str) -> Self {
        match HeaderValue::from_str(value) {
            Ok(value) => {
                self.headers_mut().append(name, value);
                self
            }
            // Every value is the server's own (cookies, URLs it serialised, numbers); one that is not
            // a header value is a bug, answered as the server's error rather than sent without it.
            Err(_) => {
                tracing::error!(header = %name, "a response header value is not one");
                json(
                    500,
                    &super::json_error("server_error", "The server could not complete the request"),
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_and_headers() {
        let answer = json(400, &serde_json::json!({"error": "invalid_request"}));
        assert_eq!(answer.status(), 400);
        assert_eq!(answer.headers()[CONTENT_TYPE], "application/json");
        assert_eq!(answer.headers()[CACHE_CONTROL], "no-store");

        let answer = redirect("https://client.example/cb?code=x")
            .with_header(http::header::SET_COOKIE, "a=1")
            .with_header(http::header::SET_COOKIE, "b=2");
        assert_eq!(answer.status(), 302);
        assert_eq!(
            answer.headers()[LOCATION],
            "https://client.example/cb?code=x"
        );
        assert_eq!(
            answer
                .headers()
                .get_all(http::header::SET_COOKIE)
                .iter()
                .count(),
            2
        );

        let broken = redirect("https://client.example/\ncb");
        assert_eq!(broken.status(), 500);
        assert!(broken.headers().get(LOCATION).is_none());
    }
}
