//! A local stand-in for GitHub's OAuth app endpoints and the few API calls the gateway makes, so that
//! the `github` provider is tested through its real HTTP exchanges with endpoint overrides. It
//! approves every authorization at once (the user already signed in at GitHub) and checks PKCE and
//! the app's secret as GitHub does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use serde_json::json;
use sha2::Digest as _;

pub const CLIENT_ID: &str = "gateway-github-app";
pub const CLIENT_SECRET: &str = "github-app-secret-0123456789";

#[derive(Default)]
struct Inner {
    /// Code -> PKCE challenge.
    codes: HashMap<String, String>,
    /// Access tokens issued.
    tokens: Vec<String>,
    /// Organisations the user is in besides `acme`, listed 100 to a page.
    more_orgs: usize,
}

pub struct GitHubStandIn {
    pub origin: String,
    inner: Arc<Mutex<Inner>>,
    server: tokio::task::JoinHandle<()>,
}

impl GitHubStandIn {
    pub async fn start() -> Self {
        Self::with_orgs(0).await
    }

    /// The same, with the user in `more` organisations besides `acme` (id 777), each `org<i>` with
    /// the id 9000 + i, which GitHub lists 100 to a page.
    pub async fn with_orgs(more: usize) -> Self {
        let inner = Arc::new(Mutex::new(Inner {
            more_orgs: more,
            ..Inner::default()
        }));
        let app = axum::Router::new()
            .route("/login/oauth/authorize", get(authorize))
            .route("/login/oauth/access_token", post(access_token))
            .route("/user", get(|h: HeaderMap, s: State<Arc<Mutex<Inner>>>| api(h, s, json!({"id": 4242, "login": "octocat", "email": null}))))
            .route(
                "/user/emails",
                get(|h: HeaderMap, s: State<Arc<Mutex<Inner>>>| {
                    api(h, s, json!([{"email": "cat@example.com", "primary": false, "verified": true},
                                     {"email": "octocat@example.com", "primary": true, "verified": true}]))
                }),
            )
            .route("/user/orgs", get(orgs))
            .route(
                "/user/teams",
                get(|h: HeaderMap, s: State<Arc<Mutex<Inner>>>| {
                    api(h, s, json!([{"id": 31337, "slug": "Platform", "organization": {"id": 777, "login": "Acme"}}]))
                }),
            )
            .with_state(inner.clone());
        let (port, server) = crate::process::serve_on_free_port(app).await;
        let origin = format!("http://127.0.0.1:{port}");
        Self {
            origin,
            inner,
            server,
        }
    }

    /// The access tokens issued so far.
    pub fn tokens(&self) -> Vec<String> {
        self.inner.lock().expect("not poisoned").tokens.clone()
    }
}

impl Drop for GitHubStandIn {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn authorize(
    State(inner): State<Arc<Mutex<Inner>>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if q.get("client_id").map(String::as_str) != Some(CLIENT_ID)
        || q.get("code_challenge_method").map(String::as_str) != Some("S256")
    {
        return (StatusCode::BAD_REQUEST, "bad authorization request").into_response();
    }
    let code = format!("ghcode{}", inner.lock().unwrap().codes.len());
    inner
        .lock()
        .unwrap()
        .codes
        .insert(code.clone(), q["code_challenge"].clone());
    let mut back = url::Url::parse(&q["redirect_uri"]).unwrap();
    back.query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &q["state"]);
    Redirect::to(back.as_str()).into_response()
}

async fn access_token(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<HashMap<String, String>>,
) -> Response {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
    );
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return axum::Json(json!({"error": "incorrect_client_credentials"})).into_response();
    }
    let challenge = inner
        .lock()
        .unwrap()
        .codes
        .remove(form.get("code").map(String::as_str).unwrap_or_default());
    let verifier = form.get("code_verifier").cloned().unwrap_or_default();
    let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    if challenge.as_deref() != Some(computed.as_str()) {
        return axum::Json(json!({"error": "bad_verification_code"})).into_response();
    }
    let token = format!("gho_{:0>36}", inner.lock().unwrap().tokens.len() + 1000);
    inner.lock().unwrap().tokens.push(token.clone());
    axum::Json(
        json!({"access_token": token, "token_type": "bearer", "scope": "read:user,user:email"}),
    )
    .into_response()
}

/// `/user/orgs`, 100 to a page, with GitHub's `Link` to the next.
async fn orgs(
    headers: HeaderMap,
    State(inner): State<Arc<Mutex<Inner>>>,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let more = inner.lock().unwrap().more_orgs;
    let all: Vec<serde_json::Value> = std::iter::once(json!({"id": 777, "login": "acme"}))
        .chain((0..more).map(|i| json!({"id": 9000 + i, "login": format!("org{i}")})))
        .collect();
    let page: usize = q.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
    let items: Vec<_> = all
        .iter()
        .skip((page - 1) * 100)
        .take(100)
        .cloned()
        .collect();
    let mut response = api(headers.clone(), State(inner), json!(items)).await;
    if page * 100 < all.len() {
        let host = headers
            .get("host")
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default();
        let next = format!(
            "<http://{host}{}?per_page=100&page={}>; rel=\"next\"",
            uri.path(),
            page + 1
        );
        response
            .headers_mut()
            .insert("link", next.parse().expect("a header value"));
    }
    response
}

async fn api(
    headers: HeaderMap,
    State(inner): State<Arc<Mutex<Inner>>>,
    body: serde_json::Value,
) -> Response {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !inner.lock().unwrap().tokens.iter().any(|t| t == token) {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"message": "Bad credentials"})),
        )
            .into_response();
    }
    axum::Json(body).into_response()
}
