//! What real clients send: the redirect URIs of Claude, ChatGPT, Cursor, VS Code and MCP Inspector
//! (including a native app's private-use scheme, through the whole flow), and the standard scopes
//! they add that the gateway does not issue.

use integration_tests::GatewayUnderTest;
use integration_tests::oauth::{
    Agent, Pkce, REDIRECT, authorize, authorize_url, decide, exchange, public_client, query_of,
    register, to_consent, token,
};
use serde_json::{Value, json};

use crate::oauth_flow::{auth_stack, auth_stack_routed};
use crate::oauth_rules::mcp_status;

const CURSOR: &str = "cursor://anysphere.cursor-retrieval/oauth/user-mcp/callback";

/// Registration bodies as each client sends them (redirect URIs and the metadata around them).
fn real_clients() -> Vec<(&'static str, Value)> {
    vec![
        (
            "Claude",
            json!({ "client_name": "Claude", "redirect_uris": ["https://claude.ai/api/mcp/auth_callback"],
                    "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
                    "token_endpoint_auth_method": "client_secret_post", "scope": "mcp" }),
        ),
        (
            "Claude Code",
            json!({ "client_name": "Claude Code (gateway)", "redirect_uris": ["http://localhost:54212/callback"],
                    "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
                    "token_endpoint_auth_method": "none" }),
        ),
        (
            "ChatGPT",
            json!({ "client_name": "ChatGPT", "redirect_uris": ["https://chatgpt.com/connector_platform_oauth_redirect"],
                    "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
                    "token_endpoint_auth_method": "client_secret_post" }),
        ),
        (
            "Cursor",
            json!({ "client_name": "Cursor", "redirect_uris": [CURSOR],
                    "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
                    "token_endpoint_auth_method": "none" }),
        ),
        (
            "VS Code",
            json!({ "client_name": "Visual Studio Code",
                    "redirect_uris": ["https://insiders.vscode.dev/redirect", "https://vscode.dev/redirect",
                                      "http://localhost/", "http://127.0.0.1/", "http://localhost:33418/",
                                      "http://127.0.0.1:33418/"],
                    "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
                    "token_endpoint_auth_method": "none" }),
        ),
        (
            "MCP Inspector",
            json!({ "client_name": "MCP Inspector",
                    "redirect_uris": ["http://localhost:6274/oauth/callback", "http://localhost:6274/oauth/callback/debug"],
                    "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
                    "token_endpoint_auth_method": "none", "scope": "mcp offline_access" }),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn the_redirect_uris_of_real_clients_register() {
    let stack = auth_stack("").await;
    for (name, metadata) in real_clients() {
        let (status, body) = register(&stack.gateway, metadata.clone()).await;
        assert_eq!(status, 201, "{name}: {body}");
        assert_eq!(body["redirect_uris"], metadata["redirect_uris"], "{name}");
    }
}

/// Cursor's redirect URI, a private-use scheme, through registration, sign-in, consent (which shows
/// the whole URI, since an app's "host" is whatever it made up), the code and the token, which then
/// opens the MCP route.
#[tokio::test(flavor = "multi_thread")]
async fn a_private_use_redirect_completes_the_flow() {
    let stack = auth_stack("").await;
    let gateway = &stack.gateway;
    let (_, cursor) = real_clients().remove(3);
    let (status, registered) = register(gateway, cursor).await;
    assert_eq!(status, 201, "{registered}");
    let client = registered["client_id"].as_str().unwrap();
    let pkce = Pkce::new();
    let mut agent = Agent::new();

    // Before the user has done anything, an error is shown here: a link cannot make the gateway
    // launch the app.
    let bad = authorize_url(
        gateway,
        client,
        &pkce,
        &[("redirect_uri", CURSOR), ("response_type", "token")],
    );
    let (status, location, body) = agent.get(&bad).await;
    assert_eq!((status, location), (400, None), "{body}");
    assert!(body.contains("unsupported_response_type"), "{body}");

    let url = authorize_url(gateway, client, &pkce, &[("redirect_uri", CURSOR)]);
    let consent = to_consent(gateway, &mut agent, &url, "alice", "wonderland")
        .await
        .expect("the consent page");
    assert!(
        consent.contains(&format!("<code>{CURSOR}</code>")),
        "the consent page shows where the code goes: {consent}"
    );
    assert!(consent.contains("an app on this device"), "{consent}");
    let location = decide(gateway, &mut agent, &consent, "approve").await;
    assert!(
        location.starts_with(&format!("{CURSOR}?")),
        "back to the app: {location}"
    );
    let query = query_of(&location);
    assert_eq!(query["state"], "st");
    assert_eq!(query["iss"], gateway.origin);

    let (status, tokens) = token(
        gateway,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", client),
            ("code", &query["code"]),
            ("code_verifier", &pkce.verifier),
            ("redirect_uri", CURSOR),
        ],
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(mcp_status(gateway, access).await, 200);
}

/// Schemes the browser runs or reads itself, and those of the operating system's own programs,
/// never register, whatever the client; nor does a short scheme outside the `app://host/…` shape
/// apps use. An operator can narrow the app schemes, and the narrower rule also holds for clients
/// registered before.
#[tokio::test(flavor = "multi_thread")]
async fn browser_and_system_schemes_are_refused_and_app_schemes_can_be_narrowed() {
    let stack = auth_stack("").await;
    for (uri, reason) in [
        ("javascript:alert(document.domain)", "browser runs or reads"),
        (
            "data:text/html,<script>alert(1)</script>",
            "browser runs or reads",
        ),
        ("file:///etc/passwd", "browser runs or reads"),
        ("\tjava\nscript:alert(1)", "browser runs or reads"),
        ("vbscript:msgbox(1)", "browser runs or reads"),
        ("blob:https://app.example/0b6c", "browser runs or reads"),
        ("about:blank", "browser runs or reads"),
        ("ms-msdt:/id PCWDiagnostic", "operating system"),
        ("search-ms:query=x", "operating system"),
        ("smb://evil.example/share", "operating system"),
        ("mailto:someone@example.com", "operating system"),
        ("myapp:/callback", "does not accept for apps"),
    ] {
        let (status, body) = register(&stack.gateway, json!({ "redirect_uris": [uri] })).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_redirect_uri")),
            "{uri}: {body}"
        );
        assert!(
            body["error_description"].as_str().unwrap().contains(reason),
            "{uri}: {body}"
        );
    }

    let narrowed = auth_stack("[auth]\nprivate_use_redirect_schemes = [\"vscode\"]").await;
    let (status, body) = register(&narrowed.gateway, json!({ "redirect_uris": [CURSOR] })).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_redirect_uri")),
        "{body}"
    );
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("one of: vscode"),
        "{body}"
    );
    let (status, body) = register(
        &narrowed.gateway,
        json!({ "redirect_uris": ["vscode://vscode.github-authentication/did-authenticate"] }),
    )
    .await;
    assert_eq!(status, 201, "{body}");

    // Registered under the wider rule (here, in the store of a gateway that accepted any app scheme,
    // then restarted narrowed): refused at /authorize, on a page, never redirected to.
    let mut wide = auth_stack("").await;
    let (status, registered) = register(&wide.gateway, json!({ "redirect_uris": [CURSOR] })).await;
    assert_eq!(status, 201, "{registered}");
    let client = registered["client_id"].as_str().unwrap();
    narrow(&mut wide.gateway).await;
    let (status, location, body) = Agent::new()
        .get(&authorize_url(
            &wide.gateway,
            client,
            &Pkce::new(),
            &[("redirect_uri", CURSOR)],
        ))
        .await;
    assert_eq!((status, location), (400, None), "{body}");
    assert!(body.contains("does not accept for apps"), "{body}");
}

/// Restarts `gateway` with its app schemes narrowed to none.
async fn narrow(gateway: &mut GatewayUnderTest) {
    let config = gateway.config.replacen(
        "[provider]",
        "[auth]\nprivate_use_redirect_schemes = []\n\n[provider]",
        1,
    );
    gateway.rewrite_config(&config).await;
}

/// The `scope` of the token response, after the whole flow with `asked`.
async fn granted(
    gateway: &GatewayUnderTest,
    client: &str,
    asked: &str,
) -> (serde_json::Value, String) {
    let pkce = Pkce::new();
    let url = authorize_url(gateway, client, &pkce, &[("scope", asked)]);
    let query = authorize(gateway, &mut Agent::new(), &url, "alice", "wonderland").await;
    assert!(query.contains_key("code"), "{asked}: {query:?}");
    let (status, tokens) = token(gateway, &exchange(client, &query["code"], &pkce.verifier)).await;
    assert_eq!(status, 200, "{asked}: {tokens}");
    let scope = tokens["scope"].as_str().unwrap().to_owned();
    (tokens, scope)
}

/// `offline_access`, `openid`, `profile` and `email` are dropped from a request instead of failing
/// it: the token response and a refresh carry what was asked of the route's scopes (all of them
/// when only dropped ones were asked); any other unknown scope is still `invalid_scope`.
#[tokio::test(flavor = "multi_thread")]
async fn standard_scopes_the_gateway_does_not_issue_are_dropped() {
    let stack = auth_stack_routed(
        "",
        "scopes_supported = [\"mcp\", \"files:read\"]\nrequired_scopes = [\"mcp\"]",
        integration_tests::GatewayBuilder::new(),
    )
    .await;
    let gateway = &stack.gateway;
    let client = public_client(gateway).await;
    for (asked, expected) in [
        ("files:read offline_access", "files:read"),
        ("openid mcp", "mcp"),
        ("mcp offline_access files:read", "mcp files:read"),
        ("openid profile email offline_access", "mcp files:read"),
    ] {
        let (tokens, scope) = granted(gateway, &client, asked).await;
        assert_eq!(scope, expected, "{asked}");
        assert!(tokens["refresh_token"].is_string(), "{asked}");
    }

    // A refresh that asks for less, plus a dropped scope, narrows.
    let (tokens, _) = granted(gateway, &client, "mcp files:read offline_access").await;
    assert_eq!(
        mcp_status(gateway, tokens["access_token"].as_str().unwrap()).await,
        200
    );
    let (status, refreshed) = token(
        gateway,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &client),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
            ("scope", "files:read openid"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{refreshed}");
    assert_eq!(refreshed["scope"], "files:read");

    // A scope no route supports: the error is shown on the gateway's page, since the client
    // registered itself and the user has not acted yet (RFC 9700 §4.11.1).
    let (status, location, page) = Agent::new()
        .get(&authorize_url(
            gateway,
            &client,
            &Pkce::new(),
            &[("scope", "mcp offline_access admin")],
        ))
        .await;
    assert_eq!((status, location), (400, None));
    assert!(page.contains("invalid_scope"), "{page}");

    let (status, body) = register(
        gateway,
        json!({ "redirect_uris": [REDIRECT], "scope": "mcp offline_access" }),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["scope"], "mcp", "registered as it will be granted");
}
