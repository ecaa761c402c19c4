//! The gateway as a resource server for tokens its own server did not issue (`[[issuers]]`): a
//! gateway with no `[provider]` fronting an MCP server for tokens of an Entra-shaped issuer (RS256,
//! v1 and v2 issuers, `api://` and application-id audiences, `scp`, `roles`, the user by `oid`,
//! keys found by OpenID discovery) and a Keycloak-shaped one (ES256, keys configured). What each
//! admits reaches the backend as the user; what each refuses reaches nothing.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gateway_assertion::{KeyAlgorithm, SigningKey, jwk_set};
use integration_tests::process::serve_on_free_port;
use integration_tests::{GatewayBuilder, GatewayUnderTest, ScriptedBackend};
use serde_json::{Value, json};

/// The issuers' keys, served as an Entra tenant and a Keycloak realm serve theirs.
struct TestIssuers {
    origin: String,
    keycloak: SigningKey,
    _server: tokio::task::JoinHandle<()>,
}

impl TestIssuers {
    async fn start() -> Self {
        let keycloak = SigningKey::generate(KeyAlgorithm::Es256).unwrap();
        let mut keys = serde_json::to_value(jwk_set([&keycloak])).unwrap();
        keys["keys"].as_array_mut().unwrap().push(json!({
            "kty": "RSA", "kid": "entra-1", "alg": "RS256", "use": "sig",
            "n": test_fixtures::TEST_RSA_N, "e": test_fixtures::TEST_RSA_E,
        }));
        // The tenant's metadata names its own origin, as the request reached it.
        let discovery = |headers: axum::http::HeaderMap| async move {
            let origin = format!("http://{}", headers["host"].to_str().unwrap());
            Json(json!({
                "issuer": format!("{origin}/tenant/v2.0"),
                "jwks_uri": format!("{origin}/keys"),
                "authorization_endpoint": format!("{origin}/tenant/oauth2/v2.0/authorize"),
            }))
        };
        let app = axum::Router::new()
            .route(
                "/tenant/v2.0/.well-known/openid-configuration",
                get(discovery),
            )
            .route("/keys", get(move || async move { Json(keys) }));
        let (port, server) = serve_on_free_port(app).await;
        Self {
            origin: format!("http://127.0.0.1:{port}"),
            keycloak,
            _server: server,
        }
    }

    fn entra_v2(&self) -> String {
        format!("{}/tenant/v2.0", self.origin)
    }

    /// An Entra-shaped RS256 token with `claims` over the usual ones.
    fn entra(&self, claims: Value) -> String {
        let mut all = json!({
            "iss": self.entra_v2(), "aud": "api://mcp-gateway", "oid": "0000-alice",
            "sub": "pairwise-sub", "azp": "client-app", "scp": "files.read", "roles": ["Reader"],
            "exp": now() + 600, "iat": now(), "nbf": now(),
        });
        merge(&mut all, claims);
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = Some("entra-1".into());
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(test_fixtures::TEST_RSA_PEM.as_bytes())
            .unwrap();
        jsonwebtoken::encode(&header, &all, &key).unwrap()
    }

    /// A Keycloak-shaped ES256 token for `resource` with `claims` over the usual ones.
    fn keycloak(&self, resource: &str, claims: Value) -> String {
        let mut all = json!({
            "iss": format!("{}/realms/mcp", self.origin), "aud": resource, "sub": "kc-bob",
            "azp": "cli", "scope": "profile mcp", "groups": ["ops"], "exp": now() + 600,
            "iat": now(),
        });
        merge(&mut all, claims);
        self.keycloak.sign("at+jwt", &all).unwrap()
    }
}

fn merge(into: &mut Value, from: Value) {
    for (k, v) in from.as_object().unwrap() {
        into[k] = v.clone();
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A gateway with no `[provider]`: `/mcp` takes only the two issuers' tokens; `/files` takes
/// Entra's (and the gateway's own) and requires `files.write`.
async fn gateway(issuers: &TestIssuers, backend: &ScriptedBackend) -> GatewayUnderTest {
    let origin = &issuers.origin;
    GatewayBuilder::new()
        .section(&format!(
            "[[issuers]]\nname = \"entra\"\nissuer = \"{origin}/tenant/v2.0\"\n\
             also_issuers = [\"{origin}/tenant/\"]\n\
             audiences = [\"api://mcp-gateway\", \"6f1c2d3e-0000-4000-8000-000000000001\"]\n\
             subject_claim = \"oid\"\nallow_private_network = true\n\n\
             [[issuers]]\nname = \"keycloak\"\nissuer = \"{origin}/realms/mcp\"\n\
             jwks_uri = \"{origin}/keys\"\nalgorithms = [\"ES256\"]\nrequire_typ = true\n\
             allow_private_network = true\n\n\
             [[routes]]\npath = \"/mcp\"\nupstream = \"{upstream}\"\n\
             issuers = [\"entra\", \"keycloak\"]\ngateway_tokens = false\n\
             scopes_supported = [\"files.read\", \"mcp\"]\nrequired_scopes = []\n\n\
             [[routes]]\npath = \"/files\"\nupstream = \"{upstream}\"\nissuers = [\"entra\"]\n\
             scopes_supported = [\"files.read\", \"files.write\"]\nrequired_scopes = [\"files.write\"]\n",
            upstream = backend.url("/mcp"),
        ))
        .start()
        .await
}

async fn call(gateway: &GatewayUnderTest, path: &str, token: &str) -> reqwest::Response {
    gateway
        .mcp_post_as(
            path,
            token,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
        )
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_of_the_configured_issuers_reach_the_backend_as_their_users() {
    let issuers = TestIssuers::start().await;
    let backend = ScriptedBackend::start().await;
    let gateway = gateway(&issuers, &backend).await;

    // The route's metadata names the two issuers, and not the gateway (it takes none of its own).
    let prm: Value = reqwest::get(gateway.url("/.well-known/oauth-protected-resource/mcp"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        prm["authorization_servers"],
        json!([issuers.entra_v2(), format!("{}/realms/mcp", issuers.origin)])
    );

    let v1 = format!("{}/tenant/", issuers.origin);
    let admitted = [
        (issuers.entra(json!({})), "0000-alice"),
        (
            issuers.entra(json!({"iss": v1, "aud": "6f1c2d3e-0000-4000-8000-000000000001", "scp": ["files.read"]})),
            "0000-alice",
        ),
        (issuers.keycloak(&gateway.url("/mcp"), json!({})), "kc-bob"),
    ];
    for (token, user) in &admitted {
        let answer = call(&gateway, "/mcp", token).await;
        assert_eq!(answer.status(), 200, "{token}");
        let seen = backend.requests();
        let last = seen.last().unwrap();
        // As this user: nothing made for another (the backend's credentials are kept per token).
        assert_eq!(last["x-forwarded-user"], *user);
        let forwarded = last["x-forwarded-access-token"].to_str().unwrap();
        let payload = forwarded.split('.').nth(1).unwrap();
        let minted: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        assert_eq!(minted["sub"], *user);
        assert!(last.get("x-gateway-assertion").is_some());
        // The client's token never reaches the backend.
        assert!(
            last.get("authorization")
                .is_none_or(|a| !a.to_str().unwrap().contains(token.as_str())),
            "{last:?}"
        );
    }
    assert_eq!(backend.requests().len(), admitted.len());

    // Scopes from `scp` and `roles`: files.write is needed on /files, and only asked for.
    let answer = call(&gateway, "/files", &issuers.entra(json!({}))).await;
    assert_eq!(answer.status(), 403);
    let challenge = answer.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains("insufficient_scope") && challenge.contains("scope=\"files.write\""),
        "{challenge}"
    );
    let answer = call(
        &gateway,
        "/files",
        &issuers.entra(json!({"aud": gateway.url("/files"), "roles": ["files.write"]})),
    )
    .await;
    assert_eq!(answer.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_the_issuers_did_not_make_for_this_route_reach_nothing() {
    let issuers = TestIssuers::start().await;
    let backend = ScriptedBackend::start().await;
    let gateway = gateway(&issuers, &backend).await;
    let b64 = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let claims = json!({
        "iss": issuers.entra_v2(), "aud": "api://mcp-gateway", "oid": "0000-mallory",
        "exp": now() + 600,
    });
    let none = format!("{}.{}.", b64(json!({"alg": "none"})), b64(claims.clone()));
    let forged_hmac = {
        // HS256 keyed with the issuer's public key, as if it were a shared secret.
        let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        let secret = test_fixtures::TEST_RSA_N.as_bytes();
        jsonwebtoken::encode(
            &header,
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(secret),
        )
        .unwrap()
    };
    let stranger = SigningKey::generate(KeyAlgorithm::Es256).unwrap();
    let unlisted = stranger
        .sign("at+jwt", &json!({"iss": "https://evil.example/", "aud": gateway.url("/mcp"), "sub": "x", "exp": now() + 600}))
        .unwrap();
    let gateways_own = gateway.sign(&integration_tests::gateway::access_claims(
        &gateway.origin,
        &gateway.url("/mcp"),
        "alice",
        "mcp",
        600,
    ));
    let refused = [
        ("alg none", none),
        ("HMAC with the public key", forged_hmac),
        ("unlisted issuer", unlisted),
        (
            "the gateway's own, where the route takes none",
            gateways_own,
        ),
        (
            "wrong audience",
            issuers.entra(json!({"aud": "api://another-app"})),
        ),
        (
            "another route's resource",
            issuers.entra(json!({"aud": gateway.url("/files")})),
        ),
        ("expired", issuers.entra(json!({"exp": now() - 3600}))),
        (
            "a trailing slash on the issuer",
            issuers.entra(json!({"iss": format!("{}/", issuers.entra_v2())})),
        ),
        ("no typ at+jwt where required", {
            let claims = json!({"iss": format!("{}/realms/mcp", issuers.origin), "aud": gateway.url("/mcp"), "sub": "kc", "exp": now() + 600});
            issuers.keycloak.sign("JWT", &claims).unwrap()
        }),
    ];
    for (what, token) in &refused {
        let answer = call(&gateway, "/mcp", token).await;
        assert_eq!(answer.status(), 401, "{what}");
        let challenge = answer.headers()["www-authenticate"].to_str().unwrap();
        assert!(
            challenge.contains("invalid_token") && challenge.contains("resource_metadata="),
            "{what}: {challenge}"
        );
    }
    assert!(backend.requests().is_empty(), "nothing reached the backend");
}

#[tokio::test(flavor = "multi_thread")]
async fn another_issuers_user_of_the_same_name_cannot_take_a_gateway_users_session() {
    let issuers = TestIssuers::start().await;
    let backend = ScriptedBackend::start().await;
    let gateway = gateway(&issuers, &backend).await;
    // `/files` takes the gateway's tokens and Entra's. The gateway's user "0000-alice" opens a
    // session there (the backend names it `echo-session`).
    let ours = gateway.sign(&integration_tests::gateway::access_claims(
        &gateway.origin,
        &gateway.url("/files"),
        "0000-alice",
        "files.write",
        600,
    ));
    let opened = call(&gateway, "/files", &ours).await;
    assert_eq!(opened.status(), 200);
    assert_eq!(opened.headers()["mcp-session-id"], "echo-session");
    let in_session = |token: String| {
        let gateway = &gateway;
        async move {
            let list = r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#;
            gateway
                .mcp_post_as("/files", &token, list)
                .header("mcp-session-id", "echo-session")
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(in_session(ours.clone()).await, 200, "her own session");
    // Entra's user whose `oid` spells the same: not hers.
    let theirs = issuers.entra(json!({"aud": gateway.url("/files"), "roles": ["files.write"]}));
    let before = backend.requests().len();
    assert_eq!(in_session(theirs).await, 404);
    assert_eq!(
        backend.requests().len(),
        before,
        "nothing reached the backend"
    );
}
