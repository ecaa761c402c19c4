//! The authorization server's rules, one bad input at a time, as unit tests of its handlers: each
//! gets its clear error, and nothing is issued or let in. The handlers take plain requests, so a
//! rule costs milliseconds; the chain itself (the data plane, real clients) is tested end to end.
//! This module is the harness: a server, a browser that keeps cookies, and the requests' parts.

mod authorization;
mod login;
mod machine;
mod registration;
mod token;

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine as _;
use serde_json::{Value, json};
use sha2::Digest as _;

use super::{AsEndpoint, AuthServer, Request, Response};
use crate::store::memory::MemoryStore;
use crate::tokens::access::AccessTokenVerifier;
use crate::tokens::keys::KeyRing;

const ORIGIN: &str = "https://gw.example";
use test_fixtures::{REDIRECT, exchange, refreshing};

/// An authorization server with the `local` provider (`alice`, password `wonderland`), a route at
/// `/mcp`, and its state in memory.
struct Harness {
    server: AuthServer,
    _dir: tempfile::TempDir,
}

impl Harness {
    fn new() -> Self {
        Self::configured("", "")
    }

    /// The same, with `user_lines` in alice's `[[users]]` entry and `route_lines` in the route's
    /// table (its scopes and policy, say).
    fn configured(user_lines: &str, route_lines: &str) -> Self {
        Self::built(user_lines, route_lines, "").0
    }

    /// The same, with `tables` after the route's (clients, issuers, `[auth]`), its secrets' variables
    /// read as `secret-of-<NAME>`; the config's clients written to the store.
    async fn with_tables(route_lines: &str, tables: &str) -> Self {
        let (harness, clients) = Self::built("", route_lines, tables);
        super::sync_config_clients(harness.server.store.as_ref(), &clients)
            .await
            .unwrap();
        harness
    }

    fn built(
        user_lines: &str,
        route_lines: &str,
        tables: &str,
    ) -> (Self, Vec<crate::config::ClientSettings>) {
        let dir = tempfile::tempdir().unwrap();
        let users = dir.path().join("users.toml");
        let hash = crate::idp::local::hash_password("wonderland").unwrap();
        std::fs::write(
            &users,
            format!("[[users]]\nusername = \"alice\"\npassword_hash = \"{hash}\"\n{user_lines}\n"),
        )
        .unwrap();
        let text = format!(
            "[server]\nlisten = \"127.0.0.1:1\"\npublic_url = \"{ORIGIN}\"\n\n\
             [provider]\nkind = \"local\"\nusers_file = {users:?}\n\n\
             [[routes]]\npath = \"/mcp\"\nupstream = \"http://127.0.0.1:9/mcp\"\n{route_lines}\n{tables}\n",
            users = users.display().to_string(),
        );
        let config_path = dir.path().join("gw.toml");
        let file = crate::config::file::FileConfig::parse(&text).unwrap();
        let env = |name: &str| Some(format!("secret-of-{name}"));
        let loaded = crate::config::Loaded::validate(file, &config_path, &env).unwrap();
        let (config, clients) = crate::config::Config::starting(loaded);
        let config = Arc::new(config);
        let now = crate::clock::now();
        let (keys, _) = KeyRing::from_stored(&config.start.tokens, &[], 3600, now).unwrap();
        let keys = Arc::new(keys);
        let verifier = Arc::new(AccessTokenVerifier::new(
            keys.clone(),
            config.start.tokens.issuer.clone(),
            config.start.tokens.clock_skew.as_secs(),
        ));
        let store = Arc::new(MemoryStore::default());
        let harness = Self {
            server: AuthServer::new(config, store, keys, verifier, None),
            _dir: dir,
        };
        (harness, clients)
    }

    async fn call(
        &self,
        endpoint: AsEndpoint,
        method: http::Method,
        query: Option<String>,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Response {
        let mut map = http::HeaderMap::new();
        for (name, value) in headers {
            map.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        let request = Request {
            method,
            query,
            headers: map,
            body: body.into(),
        };
        self.server.handle(endpoint, request).await
    }

    async fn register(&self, metadata: &Value) -> (u16, Value) {
        let body = serde_json::to_vec(metadata).unwrap();
        let headers = [("content-type", "application/json")];
        let response = self
            .call(
                AsEndpoint::Register,
                http::Method::POST,
                None,
                &headers,
                body,
            )
            .await;
        (response.status().as_u16(), json_of(&response))
    }

    /// A registered public client with [`REDIRECT`].
    async fn public_client(&self) -> String {
        let (status, body) = self
            .register(&json!({ "client_name": "Raw", "redirect_uris": [REDIRECT],
                "grant_types": ["authorization_code", "refresh_token"], "token_endpoint_auth_method": "none" }))
            .await;
        assert_eq!(status, 201, "{body}");
        body["client_id"].as_str().unwrap().to_owned()
    }

    /// A public client with [`REDIRECT`] that the operator configured, as `[[clients]]` writes it.
    async fn configured_client(&self) -> String {
        let client = crate::store::ClientRecord {
            client_id: "first-party".into(),
            secret_hash: None,
            secret_expires_at: 0,
            redirect_uris: vec![REDIRECT.into()],
            grant_types: vec!["authorization_code".into(), "refresh_token".into()],
            response_types: vec!["code".into()],
            token_endpoint_auth_method: "none".into(),
            client_name: Some("Ours".into()),
            client_uri: None,
            scope: None,
            application_type: None,
            issued_at: 0,
            origin: "config".into(),
            skip_consent: false,
            expires_at: 0,
            jwks: None,
            jwks_uri: None,
        };
        self.server.store.put_client(&client).await.unwrap();
        client.client_id
    }

    async fn token(&self, form: &[(&str, &str)]) -> (u16, Value) {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let headers = [("content-type", "application/x-www-form-urlencoded")];
        let response = self
            .call(
                AsEndpoint::Token,
                http::Method::POST,
                None,
                &headers,
                body.into_bytes(),
            )
            .await;
        (response.status().as_u16(), json_of(&response))
    }

    /// A client, a code for it, and its PKCE verifier.
    async fn code(&self) -> (String, String, Pkce) {
        let client = self.public_client().await;
        let pkce = Pkce::new();
        let query = authorize_query(&client, &pkce, &[]);
        let redirect = Browser::default().authorize(self, &query).await;
        (client, redirect["code"].clone(), pkce)
    }

    /// A public client's code exchanged: the client, and the tokens it got.
    async fn tokens(&self) -> (String, Value) {
        let (client, code, pkce) = self.code().await;
        let (status, tokens) = self.token(&exchange(&client, &code, &pkce.verifier)).await;
        assert_eq!(status, 200, "{tokens}");
        (client, tokens)
    }
}

/// A browser: it keeps the cookies the server sets, and sends them back.
#[derive(Default)]
struct Browser {
    cookies: HashMap<String, String>,
}

impl Browser {
    async fn get(&mut self, harness: &Harness, endpoint: AsEndpoint, query: &str) -> Response {
        self.send(
            harness,
            endpoint,
            http::Method::GET,
            Some(query.to_owned()),
            "",
        )
        .await
    }

    async fn post(
        &mut self,
        harness: &Harness,
        endpoint: AsEndpoint,
        form: &[(&str, &str)],
    ) -> Response {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        self.send(harness, endpoint, http::Method::POST, None, &body)
            .await
    }

    async fn send(
        &mut self,
        harness: &Harness,
        endpoint: AsEndpoint,
        method: http::Method,
        query: Option<String>,
        body: &str,
    ) -> Response {
        let cookie = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let mut headers = vec![("content-type", "application/x-www-form-urlencoded")];
        if !cookie.is_empty() {
            headers.push(("cookie", cookie.as_str()));
        }
        let response = harness
            .call(endpoint, method, query, &headers, body.as_bytes().to_vec())
            .await;
        for value in response.headers().get_all(http::header::SET_COOKIE) {
            let pair = value.to_str().unwrap().split(';').next().unwrap();
            let (k, v) = pair.split_once('=').unwrap();
            self.cookies.insert(k.to_owned(), v.to_owned());
        }
        response
    }

    /// Opens the login page of `pending` and signs alice in there: the page's text, and the answer.
    async fn sign_in(&mut self, harness: &Harness, pending: &str) -> (String, Response) {
        let login = self
            .get(harness, AsEndpoint::Login, &format!("pending={pending}"))
            .await;
        let page = text_of(&login);
        let csrf = hidden(&page, "csrf");
        let form = [
            ("pending", pending),
            ("csrf", &csrf),
            ("username", "alice"),
            ("password", "wonderland"),
        ];
        (page, self.post(harness, AsEndpoint::Login, &form).await)
    }

    /// Walks `/authorize` -> login -> consent (approve, unless approved before) and returns the
    /// redirect's query.
    async fn authorize(&mut self, harness: &Harness, query: &str) -> HashMap<String, String> {
        let response = self.get(harness, AsEndpoint::Authorize, query).await;
        assert_eq!(response.status().as_u16(), 302, "{}", text_of(&response));
        let pending = query_of(&location(&response))["pending"].clone();
        let (_, signed_in) = self.sign_in(harness, &pending).await;
        assert_eq!(signed_in.status(), 302, "{}", text_of(&signed_in));
        // Consent given before is not asked again.
        let next = location(&signed_in);
        if !next.contains(AsEndpoint::Consent.path()) {
            return query_of(&next);
        }
        let consent = self
            .get(harness, AsEndpoint::Consent, &format!("pending={pending}"))
            .await;
        let csrf = hidden(&text_of(&consent), "csrf");
        let form = [
            ("pending", pending.as_str()),
            ("csrf", &csrf),
            ("decision", "approve"),
        ];
        let approved = self.post(harness, AsEndpoint::Consent, &form).await;
        assert_eq!(approved.status(), 302, "{}", text_of(&approved));
        query_of(&location(&approved))
    }
}

struct Pkce {
    verifier: String,
    challenge: String,
}

impl Pkce {
    fn new() -> Self {
        let verifier = format!("verifier-{}", "x".repeat(50));
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(sha2::Sha256::digest(verifier.as_bytes()));
        Self {
            verifier,
            challenge,
        }
    }
}

/// The `/authorize` query for a client, with `overrides` replacing or (with an empty value)
/// removing parameters.
fn authorize_query(client_id: &str, pkce: &Pkce, overrides: &[(&str, &str)]) -> String {
    let resource = format!("{ORIGIN}/mcp");
    let mut params: Vec<(&str, &str)> = vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT),
        ("code_challenge", &pkce.challenge),
        ("code_challenge_method", "S256"),
        ("state", "st"),
        ("resource", &resource),
    ];
    for (k, v) in overrides {
        params.retain(|(name, _)| name != k);
        if !v.is_empty() {
            params.push((k, v));
        }
    }
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish()
}

fn json_of(response: &Response) -> Value {
    serde_json::from_slice(response.body()).unwrap_or(Value::Null)
}

fn text_of(response: &Response) -> String {
    String::from_utf8_lossy(response.body()).into_owned()
}

fn location(response: &Response) -> String {
    response
        .headers()
        .get(http::header::LOCATION)
        .map(|value| value.to_str().unwrap().to_owned())
        .unwrap_or_else(|| {
            panic!(
                "no location: {} {}",
                response.status().as_u16(),
                text_of(response)
            )
        })
}

fn has_location(response: &Response) -> bool {
    response.headers().contains_key(http::header::LOCATION)
}

fn query_of(url: &str) -> HashMap<String, String> {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        + marker.len();
    html[start..start + html[start..].find('"').unwrap()].to_owned()
}
