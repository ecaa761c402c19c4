//! Admission on a protected route: each rule, for POST, GET and DELETE, with tokens minted by the test
//! with the gateway's own key; and proof that nothing refused reached the backend.

use base64::Engine as _;
use gateway_assertion::{KeyAlgorithm, SigningKey};
use integration_tests::{GatewayBuilder, GatewayUnderTest, ScriptedBackend};
use reqwest::Method;
use serde_json::{Value, json};

async fn start() -> (ScriptedBackend, GatewayUnderTest) {
    let backend = ScriptedBackend::start().await;
    let gateway = GatewayBuilder::new()
        .section(&format!(
            "[[routes]]\npath = \"/a/mcp\"\nupstream = \"{u}\"\nscopes_supported = [\"mcp\", \"admin\"]\nrequired_scopes = [\"mcp\"]\n\n\
             [[routes]]\npath = \"/b/mcp\"\nupstream = \"{u}\"\nscopes_supported = [\"mcp\", \"admin\"]\nrequired_scopes = [\"mcp\", \"admin\"]\n",
            u = backend.url("/mcp")
        ))
        .start()
        .await;
    (backend, gateway)
}

fn b64(value: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
}

struct Outcome {
    status: u16,
    challenge: Option<String>,
    body: Value,
}

async fn call(
    gateway: &GatewayUnderTest,
    method: Method,
    path: &str,
    token: Option<&str>,
) -> Outcome {
    let mut request = reqwest::Client::new()
        .request(method, gateway.url(path))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = request
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#)
        .send()
        .await
        .unwrap();
    Outcome {
        status: response.status().as_u16(),
        challenge: response
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned()),
        body: response.json().await.unwrap_or(Value::Null),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn each_bad_token_gets_invalid_token_and_reaches_nothing() {
    let (backend, gateway) = start().await;
    let claims = || gateway.claims("/a/mcp", "alice", "mcp");
    let with = |change: &dyn Fn(&mut Value)| {
        let mut c = claims();
        change(&mut c);
        gateway.sign(&c)
    };
    let other_key = SigningKey::generate(KeyAlgorithm::EdDsa).unwrap();
    let valid = gateway.sign(&claims());
    let (head, _) = valid.rsplit_once('.').unwrap();
    let forged_signature = other_key.sign("at+jwt", &claims()).unwrap();
    let spliced = format!("{head}.{}", forged_signature.rsplit_once('.').unwrap().1);
    let kid = gateway.key.kid().to_owned();
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "at+jwt", "kid": kid})),
        b64(&claims())
    );
    let hs256 = format!(
        "{}.{}.AAAA",
        b64(&json!({"alg": "HS256", "typ": "at+jwt", "kid": kid})),
        b64(&claims())
    );
    let now = integration_tests::gateway_keys::now();

    let cases: Vec<(&str, String)> = vec![
        ("malformed", "not-a-jwt".into()),
        (
            "signed by an unknown key",
            other_key.sign("at+jwt", &claims()).unwrap(),
        ),
        ("bad signature", spliced),
        ("alg none", none),
        ("alg HS256", hs256),
        ("wrong typ", gateway.key.sign("JWT", &claims()).unwrap()),
        (
            "wrong issuer",
            with(&|c| c["iss"] = json!("http://evil.test")),
        ),
        (
            "wrong audience",
            with(&|c| c["aud"] = json!(gateway.url("/b/mcp"))),
        ),
        (
            "audience of a prefix",
            with(&|c| c["aud"] = json!(gateway.url("/a"))),
        ),
        (
            "expired",
            with(&|c| {
                c["iat"] = json!(now - 7200);
                c["exp"] = json!(now - 3600);
            }),
        ),
        ("not yet valid", with(&|c| c["nbf"] = json!(now + 3600))),
        (
            "issued in the future",
            with(&|c| c["iat"] = json!(now + 3600)),
        ),
        (
            "no jti",
            with(&|c| {
                c.as_object_mut()
                    .unwrap()
                    .remove("jti")
                    .map(|_| ())
                    .unwrap_or(())
            }),
        ),
    ];
    for (case, token) in &cases {
        for method in [Method::POST, Method::GET, Method::DELETE] {
            let outcome = call(&gateway, method.clone(), "/a/mcp", Some(token)).await;
            assert_eq!(outcome.status, 401, "{case} ({method})");
            let challenge = outcome.challenge.expect("a challenge");
            assert!(
                challenge.starts_with("Bearer error=\"invalid_token\", error_description=\""),
                "{case}: {challenge}"
            );
            assert!(
                challenge.contains(&format!(
                    "resource_metadata=\"{}\"",
                    gateway.url("/.well-known/oauth-protected-resource/a/mcp")
                )),
                "{case}: {challenge}"
            );
            assert_eq!(outcome.body["error"], "invalid_token", "{case}");
        }
    }
    assert!(
        backend.requests().is_empty(),
        "a refused request reached the backend"
    );

    // The untouched token passes, and so does its audience with a trailing slash.
    assert_eq!(
        call(&gateway, Method::POST, "/a/mcp", Some(&valid))
            .await
            .status,
        200
    );
    let slash = with(&|c| c["aud"] = json!(format!("{}/", gateway.url("/a/mcp"))));
    assert_eq!(
        call(&gateway, Method::POST, "/a/mcp", Some(&slash))
            .await
            .status,
        200
    );
    assert_eq!(backend.requests().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_for_one_route_is_refused_on_another() {
    let (backend, gateway) = start().await;
    let for_a = gateway.sign(&gateway.claims("/a/mcp", "alice", "mcp admin"));
    let for_b = gateway.sign(&gateway.claims("/b/mcp", "alice", "mcp admin"));
    assert_eq!(
        call(&gateway, Method::POST, "/a/mcp", Some(&for_a))
            .await
            .status,
        200
    );
    assert_eq!(
        call(&gateway, Method::POST, "/b/mcp", Some(&for_b))
            .await
            .status,
        200
    );
    assert_eq!(
        call(&gateway, Method::POST, "/b/mcp", Some(&for_a))
            .await
            .status,
        401
    );
    assert_eq!(
        call(&gateway, Method::POST, "/a/mcp", Some(&for_b))
            .await
            .status,
        401
    );
    assert_eq!(backend.requests().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_lacking_a_required_scope_gets_403_with_the_scopes_needed() {
    let (backend, gateway) = start().await;
    let token = gateway.sign(&gateway.claims("/b/mcp", "alice", "mcp"));
    for method in [Method::POST, Method::GET, Method::DELETE] {
        let outcome = call(&gateway, method, "/b/mcp", Some(&token)).await;
        assert_eq!(outcome.status, 403);
        let challenge = outcome.challenge.unwrap();
        assert!(
            challenge.starts_with(
                "Bearer error=\"insufficient_scope\", scope=\"mcp admin\", resource_metadata=\""
            ),
            "{challenge}"
        );
        assert_eq!(outcome.body["error"], "insufficient_scope");
    }
    assert!(backend.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_in_the_query_string_is_400_and_never_accepted() {
    let (backend, gateway) = start().await;
    let token = gateway.token("/a/mcp", "alice");
    let http = reqwest::Client::new();
    for with_header in [false, true] {
        let mut request = http.post(gateway.url(&format!("/a/mcp?access_token={token}")));
        if with_header {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 400);
        let challenge = response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            challenge.starts_with("Bearer error=\"invalid_request\""),
            "{challenge}"
        );
    }
    assert!(backend.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn no_token_or_another_scheme_gets_a_bare_challenge() {
    let (backend, gateway) = start().await;
    let outcome = call(&gateway, Method::POST, "/a/mcp", None).await;
    assert_eq!(outcome.status, 401);
    assert!(!outcome.challenge.unwrap().contains("error="));
    let response = reqwest::Client::new()
        .post(gateway.url("/a/mcp"))
        .header("authorization", "Basic dXNlcjpwYXNz")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert!(
        !response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("error=")
    );
    assert!(backend.requests().is_empty());
}

/// A POST to `path` as `token` with `headers` added; the status, and whether the backend saw it.
async fn post_with(
    gateway: &GatewayUnderTest,
    backend: &ScriptedBackend,
    path: &str,
    token: &str,
    headers: &[(&str, &[u8])],
) -> (u16, bool) {
    let before = backend.requests().len();
    let mut request = reqwest::Client::new()
        .post(gateway.url(path))
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(
            *name,
            reqwest::header::HeaderValue::from_bytes(value).unwrap(),
        );
    }
    let status = request
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    (status, backend.requests().len() > before)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_id_sent_twice_or_not_in_visible_ascii_is_refused_and_reaches_nothing() {
    let (backend, gateway) = start().await;
    let token = gateway.token("/a/mcp", "alice");
    // alice opens her session.
    assert_eq!(
        post_with(&gateway, &backend, "/a/mcp", &token, &[]).await,
        (200, true)
    );
    let ours: &[u8] = b"echo-session";
    for (what, headers) in [
        (
            "twice",
            vec![("mcp-session-id", ours), ("mcp-session-id", b"other")],
        ),
        (
            "twice, the first unknown",
            vec![("mcp-session-id", b"other"), ("mcp-session-id", ours)],
        ),
        (
            "with a byte beyond ASCII",
            vec![("mcp-session-id", "echo-séssion".as_bytes())],
        ),
        ("with a space", vec![("mcp-session-id", b"echo session")]),
        ("with a tab", vec![("mcp-session-id", b"echo\tsession")]),
        ("empty", vec![("mcp-session-id", b"")]),
    ] {
        let outcome = post_with(&gateway, &backend, "/a/mcp", &token, &headers).await;
        assert_eq!(outcome, (400, false), "a session id {what}");
    }
    assert_eq!(
        post_with(
            &gateway,
            &backend,
            "/a/mcp",
            &token,
            &[("mcp-session-id", ours)]
        )
        .await,
        (200, true)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_opened_on_one_route_is_unknown_on_another() {
    let (backend, gateway) = start().await;
    let on_a = gateway.token("/a/mcp", "alice");
    assert_eq!(
        post_with(&gateway, &backend, "/a/mcp", &on_a, &[]).await,
        (200, true)
    );
    let claims = gateway.claims("/b/mcp", "alice", "mcp admin");
    let on_b = gateway.sign(&claims);
    let session: &[u8] = b"echo-session";
    assert_eq!(
        post_with(
            &gateway,
            &backend,
            "/b/mcp",
            &on_b,
            &[("mcp-session-id", session)]
        )
        .await,
        (404, false),
        "the id /a's backend issued means nothing to /b's"
    );
    assert_eq!(
        post_with(
            &gateway,
            &backend,
            "/a/mcp",
            &on_a,
            &[("mcp-session-id", session)]
        )
        .await,
        (200, true)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upgrade_is_refused_and_one_to_h2c_is_ignored() {
    let (backend, gateway) = start().await;
    let token = gateway.token("/a/mcp", "alice");
    for upgrade in [&b"websocket"[..], b"h2c, websocket", b"TLS/1.0"] {
        let headers = [("connection", &b"upgrade"[..]), ("upgrade", upgrade)];
        let outcome = post_with(&gateway, &backend, "/a/mcp", &token, &headers).await;
        assert_eq!(
            outcome,
            (400, false),
            "{}",
            String::from_utf8_lossy(upgrade)
        );
    }
    let h2c = [
        ("connection", &b"Upgrade, HTTP2-Settings"[..]),
        ("upgrade", b"h2c"),
        ("http2-settings", b"AAMAAABkAAQCAAAAAAIAAAAA"),
    ];
    assert_eq!(
        post_with(&gateway, &backend, "/a/mcp", &token, &h2c).await,
        (200, true)
    );
    let seen = backend.requests();
    let seen = seen.last().unwrap();
    assert!(seen.get("upgrade").is_none());
    assert!(seen.get("http2-settings").is_none());
}
