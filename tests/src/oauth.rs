//! A raw OAuth client for the authorization server's negative tests: registration, PKCE, a user agent
//! with cookies that walks login and consent, and token requests. The happy path with the real SDK
//! lives in `tests/e2e/oauth-flow.mjs`.

use std::collections::HashMap;

use base64::Engine as _;
use serde_json::{Value, json};
use sha2::Digest as _;

use crate::GatewayUnderTest;

/// Where a gateway answers: a [`GatewayUnderTest`], or just its origin (the bench drives a gateway it
/// started itself).
pub trait Origin {
    fn url(&self, path: &str) -> String;
}

impl Origin for GatewayUnderTest {
    fn url(&self, path: &str) -> String {
        GatewayUnderTest::url(self, path)
    }
}

impl Origin for str {
    fn url(&self, path: &str) -> String {
        format!("{self}{path}")
    }
}

pub use test_fixtures::{REDIRECT, exchange, refreshing};

pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

impl Pkce {
    pub fn new() -> Self {
        let verifier = format!("verifier-{}-{}", uuid_like(), "x".repeat(40));
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(sha2::Sha256::digest(verifier.as_bytes()));
        Self {
            verifier,
            challenge,
        }
    }
}

impl Default for Pkce {
    fn default() -> Self {
        Self::new()
    }
}

fn uuid_like() -> String {
    format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

/// A browser: no automatic redirects, cookies kept.
pub struct Agent {
    http: reqwest::Client,
    cookies: HashMap<String, String>,
}

impl Default for Agent {
    fn default() -> Self {
        Self::new()
    }
}

impl Agent {
    pub fn new() -> Self {
        Self::with_headers(http::HeaderMap::new())
    }

    /// A browser behind a proxy that says it is at `address` (in `X-Forwarded-For`).
    pub fn behind_proxy(address: &str) -> Self {
        let mut headers = http::HeaderMap::new();
        headers.insert("x-forwarded-for", address.parse().unwrap());
        Self::with_headers(headers)
    }

    fn with_headers(headers: http::HeaderMap) -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .default_headers(headers)
                .build()
                .unwrap(),
            cookies: HashMap::new(),
        }
    }

    fn remember(&mut self, response: &reqwest::Response) {
        for value in response.headers().get_all("set-cookie") {
            let pair = value.to_str().unwrap().split(';').next().unwrap();
            let (k, v) = pair.split_once('=').unwrap();
            if v.is_empty() {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), v.to_owned());
            }
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub async fn get(&mut self, url: &str) -> (u16, Option<String>, String) {
        let request = self.http.get(url);
        self.send(request).await
    }

    pub async fn post_form(
        &mut self,
        url: &str,
        form: &[(&str, &str)],
    ) -> (u16, Option<String>, String) {
        let request = self.http.post(url).form(form);
        self.send(request).await
    }

    /// Sends with this agent's cookies, keeps the ones set, and returns the status, `Location` and body.
    async fn send(&mut self, request: reqwest::RequestBuilder) -> (u16, Option<String>, String) {
        let response = request
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.remember(&response);
        let location = response
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned());
        (
            response.status().as_u16(),
            location,
            response.text().await.unwrap(),
        )
    }

    pub fn forget_cookies(&mut self) {
        self.cookies.clear();
    }
}

/// A hidden form field's value in a page.
pub fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        + marker.len();
    html[start..start + html[start..].find('"').unwrap()].to_owned()
}

/// Query parameters of a URL.
pub fn query_of(url: &str) -> HashMap<String, String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

/// `POST /register` with `body`: the whole answer, headers included.
pub async fn register_response(
    gateway: &(impl Origin + ?Sized),
    body: &Value,
) -> reqwest::Response {
    reqwest::Client::new()
        .post(gateway.url("/register"))
        .json(body)
        .send()
        .await
        .unwrap()
}

pub async fn register(gateway: &(impl Origin + ?Sized), body: Value) -> (u16, Value) {
    let response = register_response(gateway, &body).await;
    (
        response.status().as_u16(),
        response.json().await.unwrap_or(Value::Null),
    )
}

/// A registered public client with [`REDIRECT`].
pub async fn public_client(gateway: &(impl Origin + ?Sized)) -> String {
    let (status, body) = register(
        gateway,
        json!({ "client_name": "Raw", "redirect_uris": [REDIRECT], "grant_types": ["authorization_code", "refresh_token"],
                "token_endpoint_auth_method": "none" }),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body["client_id"].as_str().unwrap().to_owned()
}

/// The `/authorize` URL for a client, with `overrides` replacing or (with an empty value) removing
/// parameters.
pub fn authorize_url(
    gateway: &(impl Origin + ?Sized),
    client_id: &str,
    pkce: &Pkce,
    overrides: &[(&str, &str)],
) -> String {
    let mut params: Vec<(String, String)> = vec![
        ("response_type".into(), "code".into()),
        ("client_id".into(), client_id.into()),
        ("redirect_uri".into(), REDIRECT.into()),
        ("code_challenge".into(), pkce.challenge.clone()),
        ("code_challenge_method".into(), "S256".into()),
        ("state".into(), "st".into()),
        ("resource".into(), gateway.url("/mcp")),
    ];
    for (k, v) in overrides {
        params.retain(|(name, _)| name != k);
        if !v.is_empty() {
            params.push(((*k).into(), (*v).into()));
        }
    }
    let mut url = url::Url::parse(&gateway.url("/authorize")).unwrap();
    url.query_pairs_mut().extend_pairs(params);
    url.to_string()
}

/// Walks `/authorize` -> login -> consent (approve) and returns the redirect's query.
pub async fn authorize(
    gateway: &(impl Origin + ?Sized),
    agent: &mut Agent,
    url: &str,
    user: &str,
    password: &str,
) -> HashMap<String, String> {
    match to_consent(gateway, agent, url, user, password).await {
        Ok(consent) => query_of(&decide(gateway, agent, &consent, "approve").await),
        Err(redirect) => query_of(&redirect),
    }
}

/// Walks `/authorize` -> login and returns the consent page; `Err` holds where the browser was sent
/// instead when the authorization ended before it (an error, or consent already given).
pub async fn to_consent(
    gateway: &(impl Origin + ?Sized),
    agent: &mut Agent,
    url: &str,
    user: &str,
    password: &str,
) -> Result<String, String> {
    let (status, location, body) = agent.get(url).await;
    assert_eq!(status, 302, "{body}");
    let location = location.unwrap();
    if !location.starts_with(&gateway.url("/")) {
        return Err(location);
    }
    let (status, _, login) = agent.get(&location).await;
    assert_eq!(status, 200, "{login}");
    let (status, location, body) = agent
        .post_form(
            &gateway.url("/login"),
            &[
                ("pending", &hidden(&login, "pending")),
                ("csrf", &hidden(&login, "csrf")),
                ("username", user),
                ("password", password),
            ],
        )
        .await;
    assert_eq!(status, 302, "{body}");
    let location = location.unwrap();
    if !location.starts_with(&gateway.url("/")) {
        return Err(location);
    }
    let (_, _, consent) = agent.get(&location).await;
    Ok(consent)
}

/// Submits the consent page's form with `decision` and returns where the browser is sent.
pub async fn decide(
    gateway: &(impl Origin + ?Sized),
    agent: &mut Agent,
    consent: &str,
    decision: &str,
) -> String {
    let (status, location, body) = agent
        .post_form(
            &gateway.url("/consent"),
            &[
                ("pending", &hidden(consent, "pending")),
                ("csrf", &hidden(consent, "csrf")),
                ("decision", decision),
            ],
        )
        .await;
    assert_eq!(status, 302, "{body}");
    location.unwrap()
}

pub async fn token(gateway: &(impl Origin + ?Sized), form: &[(&str, &str)]) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(gateway.url("/token"))
        .form(form)
        .send()
        .await
        .unwrap();
    (
        response.status().as_u16(),
        response.json().await.unwrap_or(Value::Null),
    )
}

/// Signs `user` in through the whole flow for the route at `path` as a new public client: the
/// tokens it is issued (`access_token`, `refresh_token`) and its `client_id`.
pub async fn signed_in(
    gateway: &(impl Origin + ?Sized),
    path: &str,
    user: &str,
    password: &str,
) -> Value {
    let client = public_client(gateway).await;
    let pkce = Pkce::new();
    let url = authorize_url(gateway, &client, &pkce, &[("resource", &gateway.url(path))]);
    let redirect = authorize(gateway, &mut Agent::new(), &url, user, password).await;
    let (status, mut tokens) = token(
        gateway,
        &exchange(&client, &redirect["code"], &pkce.verifier),
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    tokens["client_id"] = json!(client);
    tokens
}

/// Revokes the refresh token of `tokens` (as [`signed_in`] gave them) at `/revoke`: its grant ends.
pub async fn revoke(gateway: &(impl Origin + ?Sized), tokens: &Value) {
    let response = reqwest::Client::new()
        .post(gateway.url("/revoke"))
        .form(&[
            ("token", tokens["refresh_token"].as_str().unwrap()),
            ("client_id", tokens["client_id"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

/// Asserts an OAuth error answer: `status`, the `error` code, and a description that mentions
/// `mentions`.
pub fn assert_oauth_error(answer: &(u16, Value), status: u16, error: &str, mentions: &str) {
    let (got, body) = answer;
    assert_eq!(
        (*got, body["error"].as_str()),
        (status, Some(error)),
        "{body}"
    );
    let description = body["error_description"].as_str().unwrap_or_default();
    assert!(description.contains(mentions), "{body}");
}

/// The claims of a JWT (an access token the gateway issued, say), unverified.
pub fn jwt_claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT has a payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON claims")
}
