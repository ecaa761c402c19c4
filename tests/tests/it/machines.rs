//! Machines and organisations' own identity providers, with real parts:
//! - machine clients at the gateway's own server, through the official TypeScript SDK's
//!   client-credentials support (a secret, and a `private_key_jwt` assertion), named by a policy;
//! - an enterprise-managed sign-in: an ID-JAG from a test enterprise identity provider, presented
//!   at the gateway's token endpoint;
//! - an organisation's authorization server (npm `oidc-provider`) whose JWT and opaque access
//!   tokens, got with its client credentials, the gateway takes without a server of its own.
//!
//! Each bad input gets its error, and reaches nothing.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gateway_assertion::{KeyAlgorithm, SigningKey, jwk_set};
use integration_tests::process::serve_on_free_port;
use integration_tests::{
    EchoTarget, GatewayBuilder, GatewayUnderTest, Running, ScriptedBackend, free_port, node,
    supervised_backend_route, wait_for_port, workspace_root,
};
use serde_json::{Value, json};

use crate::oauth_flow::users_file;

const CI_SECRET: &str = "ci-secret-0123456789abcdef";
const AGENT_SECRET: &str = "agent-secret-0123456789abcdef";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The payload of a JWT, unverified.
fn payload(token: &str) -> Value {
    let part = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn machine_clients_sign_in_with_the_official_sdk_and_a_policy_names_them() {
    let echo = EchoTarget::start().await;
    let users = users_file();
    let builder = GatewayBuilder::new().env("CI_SECRET", CI_SECRET);
    let origin = builder.origin();
    let backend_port = free_port();
    // `signer` authenticates with an RS256 key; the route's policy keeps one tool from it.
    let route = supervised_backend_route(&origin, backend_port, &echo.url(), "");
    let gateway = builder
        .section(&format!(
            "[provider]\nkind = \"local\"\nusers_file = {users:?}\n\n\
             [[clients]]\nclient_id = \"ci\"\ngrant_types = [\"client_credentials\"]\n\
             token_endpoint_auth_method = \"client_secret_basic\"\nclient_secret_env = \"CI_SECRET\"\n\n\
             [[clients]]\nclient_id = \"signer\"\ngrant_types = [\"client_credentials\"]\n\
             token_endpoint_auth_method = \"private_key_jwt\"\n\
             jwks = {{ keys = [{{ kty = \"RSA\", alg = \"RS256\", use = \"sig\", kid = \"signer-1\", n = \"{n}\", e = \"{e}\" }}] }}\n\n\
             {route}\n\
             [routes.policy]\ndefault = \"allow\"\n\
             [[routes.policy.rules]]\nname = \"no tokens shown to the signer\"\neffect = \"deny\"\n\
             clients = [\"signer\"]\ntools = [\"show_auth_token\"]\n",
            users = users.display().to_string(),
            n = test_fixtures::TEST_RSA_N,
            e = test_fixtures::TEST_RSA_E,
        ))
        .start()
        .await;
    wait_for_port(backend_port, "the supervised mcp-backend").await;

    // The metadata says what machines may do.
    let metadata: Value = reqwest::get(gateway.url("/.well-known/oauth-authorization-server"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let grants = metadata["grant_types_supported"].as_array().unwrap();
    assert!(grants.contains(&json!("client_credentials")), "{metadata}");
    let methods = metadata["token_endpoint_auth_methods_supported"]
        .as_array()
        .unwrap();
    assert!(methods.contains(&json!("private_key_jwt")), "{metadata}");
    assert!(
        metadata["token_endpoint_auth_signing_alg_values_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("RS256"))
    );

    let by_secret = node::run(
        "machine-client.mjs",
        &json!({ "url": gateway.url("/mcp"), "clientId": "ci", "clientSecret": CI_SECRET,
                 "expectedIssuer": origin, "tool": "make_authenticated_request" }),
    )
    .await;
    assert!(by_secret.get("error").is_none(), "{by_secret:#}");
    assert_eq!(
        by_secret["refreshTokens"], 0,
        "no refresh token for a machine"
    );
    let claims = payload(by_secret["accessToken"].as_str().unwrap());
    assert_eq!(
        (&claims["sub"], &claims["client_id"]),
        (&json!("ci"), &json!("ci"))
    );
    assert_eq!(claims["aud"], gateway.url("/mcp"));
    assert_eq!(
        by_secret["tools"],
        json!(["make_authenticated_request", "show_auth_token"])
    );

    let by_key = node::run(
        "machine-client.mjs",
        &json!({ "url": gateway.url("/mcp"), "clientId": "signer",
                 "privateKeyPem": test_fixtures::TEST_RSA_PEM, "algorithm": "RS256",
                 "expectedIssuer": origin, "tool": "make_authenticated_request" }),
    )
    .await;
    assert!(by_key.get("error").is_none(), "{by_key:#}");
    assert_eq!(
        payload(by_key["accessToken"].as_str().unwrap())["sub"],
        "signer"
    );
    assert_eq!(
        by_key["tools"],
        json!(["make_authenticated_request"]),
        "the policy names the client: its denied tool is not listed"
    );

    // A wrong secret, through the same SDK, gets no token and so no tools.
    let wrong = node::run(
        "machine-client.mjs",
        &json!({ "url": gateway.url("/mcp"), "clientId": "ci", "clientSecret": "not-the-secret-at-all",
                 "expectedIssuer": origin }),
    )
    .await;
    assert!(
        wrong["error"]
            .as_str()
            .unwrap_or_default()
            .contains("invalid_client")
            || wrong["error"]
                .as_str()
                .unwrap_or_default()
                .contains("Client authentication"),
        "{wrong:#}"
    );
}

/// A test enterprise identity provider: its keys served at `/keys`.
struct EnterpriseIdp {
    issuer: String,
    key: SigningKey,
    _server: tokio::task::JoinHandle<()>,
}

impl EnterpriseIdp {
    async fn start() -> Self {
        let key = SigningKey::generate(KeyAlgorithm::Es256).unwrap();
        let keys = serde_json::to_value(jwk_set([&key])).unwrap();
        let app = axum::Router::new().route("/keys", get(move || async move { Json(keys) }));
        let (port, server) = serve_on_free_port(app).await;
        Self {
            issuer: format!("http://127.0.0.1:{port}"),
            key,
            _server: server,
        }
    }

    /// An ID-JAG for `agent`, the user alice and `resource`, with `claims` over those.
    fn id_jag(&self, audience: &str, resource: &str, claims: Value) -> String {
        let mut all = json!({
            "iss": self.issuer, "sub": "alice", "aud": audience, "client_id": "agent",
            "resource": resource, "scope": "mcp", "jti": format!("jag-{}", now_nanos()),
            "iat": now(), "exp": now() + 300, "email": "alice@example.com",
        });
        for (k, v) in claims.as_object().unwrap() {
            all[k] = v.clone();
        }
        self.key.sign("oauth-id-jag+jwt", &all).unwrap()
    }
}

fn now_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

async fn present(gateway: &GatewayUnderTest, assertion: &str) -> (u16, Value) {
    let answer = reqwest::Client::new()
        .post(gateway.url("/token"))
        .basic_auth("agent", Some(AGENT_SECRET))
        .form(&[("grant_type", JWT_BEARER), ("assertion", assertion)])
        .send()
        .await
        .unwrap();
    let status = answer.status().as_u16();
    (status, answer.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_enterprise_managed_sign_in_presents_an_id_jag_once() {
    let idp = EnterpriseIdp::start().await;
    let backend = ScriptedBackend::start().await;
    let users = users_file();
    let gateway = GatewayBuilder::new()
        .env("AGENT_SECRET", AGENT_SECRET)
        .section(&format!(
            "[provider]\nkind = \"local\"\nusers_file = {users:?}\n\n\
             [auth]\nenterprise_issuers = [\"acme\"]\n\n\
             [[issuers]]\nname = \"acme\"\nissuer = \"{issuer}\"\njwks_uri = \"{issuer}/keys\"\n\
             algorithms = [\"ES256\"]\nallow_private_network = true\n\n\
             [[clients]]\nclient_id = \"agent\"\ngrant_types = [\"{JWT_BEARER}\"]\n\
             token_endpoint_auth_method = \"client_secret_basic\"\nclient_secret_env = \"AGENT_SECRET\"\n\n\
             [[routes]]\npath = \"/mcp\"\nupstream = \"{upstream}\"\n",
            users = users.display().to_string(),
            issuer = idp.issuer,
            upstream = backend.url("/mcp"),
        ))
        .start()
        .await;
    let metadata: Value = reqwest::get(gateway.url("/.well-known/oauth-authorization-server"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        metadata["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&json!(JWT_BEARER)),
        "{metadata}"
    );

    let (origin, resource) = (gateway.origin.clone(), gateway.url("/mcp"));
    let good = idp.id_jag(&origin, &resource, json!({}));
    let (status, answer) = present(&gateway, &good).await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer.get("refresh_token").is_none());
    let token = answer["access_token"].as_str().unwrap();
    let called = gateway
        .mcp_post_as(
            "/mcp",
            token,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
        )
        .send()
        .await
        .unwrap();
    let status = called.status();
    assert_eq!(status, 200, "{:?}", called.text().await);
    assert_eq!(
        backend.requests().last().unwrap()["x-forwarded-user"],
        "alice"
    );

    let stranger = SigningKey::generate(KeyAlgorithm::Es256).unwrap();
    let forged = {
        let claims = payload(&idp.id_jag(&origin, &resource, json!({})));
        stranger.sign("oauth-id-jag+jwt", &claims).unwrap()
    };
    let refused = [
        ("replayed", good.clone()),
        (
            "expired",
            idp.id_jag(&origin, &resource, json!({ "exp": now() - 600 })),
        ),
        (
            "for another audience",
            idp.id_jag("https://other-as.example", &resource, json!({})),
        ),
        (
            "for another client",
            idp.id_jag(&origin, &resource, json!({ "client_id": "other-app" })),
        ),
        (
            "for another resource",
            idp.id_jag(&origin, "https://elsewhere.example/mcp", json!({})),
        ),
        (
            "for a user the gateway does not know",
            idp.id_jag(&origin, &resource, json!({ "sub": "mallory" })),
        ),
        ("signed by another key", forged),
    ];
    for (why, assertion) in refused {
        let (status, answer) = present(&gateway, &assertion).await;
        assert_eq!(status, 400, "{why}: {answer}");
        assert!(
            ["invalid_grant", "invalid_target"].contains(&answer["error"].as_str().unwrap()),
            "{why}: {answer}"
        );
        assert!(answer.get("access_token").is_none(), "{why}");
    }
    assert_eq!(
        backend.requests().len(),
        1,
        "nothing refused reached the backend"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_organisations_own_server_issues_jwt_and_opaque_tokens_the_gateway_takes() {
    let (provider, issuer) = organisations_server(None).await;
    let backend = ScriptedBackend::start().await;
    // No [provider]: the gateway has no server of its own. Introspection answers are not kept, so
    // that a revocation there acts at once.
    let gateway = GatewayBuilder::new()
        .env("ORG_SECRET", AGENT_SECRET)
        .section(&format!(
            "[[issuers]]\nname = \"org\"\nissuer = \"{issuer}\"\nallow_private_network = true\n\
             [issuers.introspection]\nclient_id = \"gateway\"\nclient_secret_env = \"ORG_SECRET\"\ncache = \"0s\"\n\n\
             [[routes]]\npath = \"/jwt\"\nupstream = \"{upstream}\"\nissuers = [\"org\"]\ngateway_tokens = false\n\
             scopes_supported = [\"mcp\"]\nrequired_scopes = [\"mcp\"]\n\n\
             [[routes]]\npath = \"/opaque\"\nupstream = \"{upstream}\"\nissuers = [\"org\"]\ngateway_tokens = false\n\
             scopes_supported = [\"mcp\"]\nrequired_scopes = [\"mcp\"]\n",
            upstream = backend.url("/mcp"),
        ))
        .start()
        .await;
    let http = reqwest::Client::new();
    let token_for = async |resource: &str| -> String {
        let answer: Value = http
            .post(format!("{issuer}/token"))
            .basic_auth("machine", Some(CI_SECRET))
            .form(&[
                ("grant_type", "client_credentials"),
                ("scope", "mcp"),
                ("resource", resource),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        answer["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("{answer}"))
            .to_owned()
    };
    let call = async |path: &str, token: &str| {
        gateway
            .mcp_post_as(
                path,
                token,
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
            )
            .send()
            .await
            .unwrap()
    };

    let jwt = token_for(&gateway.url("/jwt")).await;
    assert_eq!(jwt.split('.').count(), 3, "a JWT access token: {jwt}");
    assert_eq!(call("/jwt", &jwt).await.status(), 200);
    assert_eq!(
        backend.requests().last().unwrap()["x-forwarded-user"],
        "machine"
    );
    let opaque = token_for(&gateway.url("/opaque")).await;
    assert!(!opaque.contains('.'), "an opaque token: {opaque}");
    assert_eq!(call("/opaque", &opaque).await.status(), 200);
    assert_eq!(
        backend.requests().last().unwrap()["x-forwarded-user"],
        "machine"
    );
    assert_eq!(backend.requests().len(), 2);

    // Each is for its own resource only.
    let answer = call("/jwt", &opaque).await;
    assert_eq!(answer.status(), 401);
    let answer = call("/opaque", &jwt).await;
    assert_eq!(answer.status(), 401);
    // An opaque token nobody issued; one revoked at its server.
    let answer = call("/opaque", "made-up-opaque-token-0123456789").await;
    assert_eq!(answer.status(), 401);
    let challenge = answer.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.contains("invalid_token"), "{challenge}");
    let revoked = http
        .post(format!("{issuer}/token/revocation"))
        .basic_auth("machine", Some(CI_SECRET))
        .form(&[("token", opaque.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    let answer = call("/opaque", &opaque).await;
    assert_eq!(answer.status(), 401, "revoked there, refused here");
    assert_eq!(
        backend.requests().len(),
        2,
        "nothing refused reached the backend"
    );

    // The server gone: its opaque tokens cannot be checked, which is not the caller's fault.
    drop(provider);
    let answer = call("/opaque", "another-opaque-token-0123456789").await;
    assert_eq!(answer.status(), 503);
    assert!(answer.headers().get("www-authenticate").is_none());
}

/// The organisation's server (npm `oidc-provider`), and its issuer; with `gateway_origin`, it
/// exchanges the assertions of the gateway there, refusing mallory.
async fn organisations_server(gateway_origin: Option<&str>) -> (Running, String) {
    let port = free_port();
    let mut plan =
        json!({ "port": port, "machineSecret": CI_SECRET, "gatewaySecret": AGENT_SECRET });
    if let Some(origin) = gateway_origin {
        plan["gatewayIssuer"] = json!(origin);
        plan["refuse"] = json!(["mallory"]);
    }
    let provider = Running::start(
        std::path::Path::new("node"),
        &[
            workspace_root()
                .join("tests/e2e/external-as.mjs")
                .to_str()
                .unwrap(),
            &plan.to_string(),
        ],
        &[],
    );
    wait_for_port(port, "the organisation's oidc-provider").await;
    (provider, format!("http://127.0.0.1:{port}"))
}

async fn exchanges_made(server: &str) -> u64 {
    let count: Value = reqwest::get(format!("{server}/test/exchanges"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    count["exchanges"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_exchange_route_hands_its_backend_a_token_for_its_own_audience() {
    let builder = GatewayBuilder::new().env("EXCHANGE_SECRET", AGENT_SECRET);
    let origin = builder.origin();
    let (provider, server) = organisations_server(Some(&origin)).await;
    let backend = ScriptedBackend::start().await;
    let users = users_file();
    let gateway = builder
        .section(&format!(
            "[provider]\nkind = \"local\"\nusers_file = {users:?}\n\n\
             [[routes]]\npath = \"/crm\"\nupstream = \"{upstream}\"\ncredentials = \"exchange\"\n\
             [routes.exchange]\ntoken_endpoint = \"{server}/token\"\nclient_id = \"gateway\"\n\
             client_secret_env = \"EXCHANGE_SECRET\"\naudience = \"https://crm.internal\"\nscope = \"mcp\"\n\
             subject_token = \"assertion\"\nallow_private_network = true\n",
            users = users.display().to_string(),
            upstream = backend.url("/mcp"),
        ))
        .start()
        .await;
    let list = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
    let call = async |user: &str| {
        gateway
            .mcp_post_as("/crm", &gateway.token("/crm", user), list)
            .send()
            .await
            .unwrap()
    };
    let bearer_seen = || {
        let last = backend.requests().last().cloned().unwrap();
        let value = last["authorization"].to_str().unwrap().to_owned();
        value.strip_prefix("Bearer ").unwrap().to_owned()
    };

    assert_eq!(call("alice").await.status(), 200);
    let token = bearer_seen();
    let claims = payload(&token);
    assert_eq!(
        (&claims["sub"], &claims["aud"], &claims["iss"]),
        (
            &json!("alice"),
            &json!("https://crm.internal"),
            &json!(server)
        ),
        "a token of the organisation's, for the backend's audience, naming the user"
    );
    assert!(
        backend
            .requests()
            .last()
            .unwrap()
            .get("x-forwarded-user")
            .is_none(),
        "the exchanged token, and nothing of the gateway's"
    );
    // Kept: alice's next requests cost the server nothing.
    assert_eq!(call("alice").await.status(), 200);
    assert_eq!(bearer_seen(), token);
    assert_eq!(exchanges_made(&server).await, 1);
    // Each user their own; a burst of one user's requests, one exchange.
    let burst = futures::future::join_all((0..6).map(|_| call("bob"))).await;
    assert!(burst.iter().all(|r| r.status() == 200));
    assert_eq!(payload(&bearer_seen())["sub"], "bob");
    assert_eq!(exchanges_made(&server).await, 2);
    // The backend refuses alice's token: her next request is exchanged anew.
    backend.refuse_next();
    assert_eq!(call("alice").await.status(), 401);
    assert_eq!(call("alice").await.status(), 200);
    assert_ne!(bearer_seen(), token, "a new token");
    assert_eq!(exchanges_made(&server).await, 3);

    // The server refuses mallory: she signs in again (401), and nothing reaches the backend.
    let before = backend.requests().len();
    let refused = call("mallory").await;
    assert_eq!(refused.status(), 401);
    let challenge = refused.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains("invalid_token"), "{challenge}");
    // The server gone: a 502 with a JSON body, for a user it has not exchanged for yet.
    drop(provider);
    let unreachable = call("carol").await;
    assert_eq!(unreachable.status(), 502);
    let body: Value = unreachable.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable", "{body}");
    assert_eq!(
        backend.requests().len(),
        before,
        "nothing refused reached the backend"
    );
    // Alice's kept token still serves while it lives.
    assert_eq!(call("alice").await.status(), 200);
}
