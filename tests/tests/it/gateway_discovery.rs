//! Discovery: protected resource metadata per route, authorization server metadata, the JWKS, the
//! 401 challenge that points at them, and CORS for browser clients.

use integration_tests::{GatewayBuilder, ScriptedBackend};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn get_json(url: &str) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let response = reqwest::get(url).await.expect("the gateway answers");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, headers, body)
}

#[tokio::test(flavor = "multi_thread")]
async fn metadata_documents_are_exact_for_every_route() {
    let backend = ScriptedBackend::start().await;
    let builder = GatewayBuilder::new();
    let gateway = builder
        .section(&format!(
            "[[routes]]\npath = \"/mcp\"\nupstream = \"{}\"\nresource_name = \"Demo\"\nscopes_supported = [\"mcp\", \"files:read\"]\nrequired_scopes = [\"mcp\"]\n\n\
             [[routes]]\npath = \"/github/mcp\"\nupstream = \"{}\"\nscopes_supported = [\"repo\"]\n",
            backend.url("/mcp"),
            backend.url("/mcp")
        ))
        .start()
        .await;
    let issuer = gateway.origin.clone();

    let (status, headers, mcp) =
        get_json(&gateway.url("/.well-known/oauth-protected-resource/mcp")).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["access-control-allow-origin"], "*");
    assert_eq!(
        mcp,
        json!({
            "resource": gateway.url("/mcp"),
            "authorization_servers": [issuer],
            "scopes_supported": ["mcp", "files:read"],
            "bearer_methods_supported": ["header"],
            "resource_name": "Demo",
        })
    );
    // The default route's document is also at the root.
    let (_, _, root) = get_json(&gateway.url("/.well-known/oauth-protected-resource")).await;
    assert_eq!(root, mcp);

    let (status, _, github) =
        get_json(&gateway.url("/.well-known/oauth-protected-resource/github/mcp")).await;
    assert_eq!(status, 200);
    assert_eq!(github["resource"], gateway.url("/github/mcp"));
    assert_eq!(github["scopes_supported"], json!(["repo"]));
    assert_eq!(github["authorization_servers"], json!([issuer]));
    assert_eq!(github["resource_name"], "MCP server at /github/mcp");

    let (status, _, server) =
        get_json(&gateway.url("/.well-known/oauth-authorization-server")).await;
    assert_eq!(status, 200);
    assert_eq!(
        server["issuer"], issuer,
        "byte-identical to authorization_servers[0]"
    );
    assert_eq!(server["response_types_supported"], json!(["code"]));
    assert_eq!(
        server["scopes_supported"],
        json!(["files:read", "mcp", "repo"])
    );
    let jwks_uri = server["jwks_uri"].as_str().expect("a jwks_uri");

    let (status, _, jwks) = get_json(jwks_uri).await;
    assert_eq!(status, 200);
    let keys = jwks["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["kid"], gateway.key.kid());
    assert_eq!(keys[0]["alg"], "EdDSA");
    assert_eq!(keys[0]["use"], "sig");
    assert!(keys[0].get("d").is_none(), "no private part");

    // Unknown paths are 404, and never the backend's.
    let (status, _, _) = get_json(&gateway.url("/.well-known/oauth-protected-resource/nope")).await;
    assert_eq!(status, 404);
    assert!(backend.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_challenge_names_each_routes_own_metadata() {
    let backend = ScriptedBackend::start().await;
    let gateway = GatewayBuilder::new()
        .section(&format!(
            "[[routes]]\npath = \"/mcp\"\nupstream = \"{u}\"\n\n[[routes]]\npath = \"/github/mcp\"\nupstream = \"{u}\"\nscopes_supported = [\"repo\", \"user\"]\n",
            u = backend.url("/mcp")
        ))
        .start()
        .await;
    let http = reqwest::Client::new();
    for (path, scope) in [("/mcp", "mcp"), ("/github/mcp", "repo user")] {
        for method in [
            reqwest::Method::POST,
            reqwest::Method::GET,
            reqwest::Method::DELETE,
        ] {
            let response = http
                .request(method.clone(), gateway.url(path))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 401, "{method} {path}");
            let challenge = response.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .to_owned();
            assert_eq!(
                challenge,
                format!(
                    "Bearer resource_metadata=\"{}\", scope=\"{scope}\"",
                    gateway.url(&format!("/.well-known/oauth-protected-resource{path}"))
                ),
                "no error parameter when no token was sent"
            );
            let body: Value = response.json().await.expect("a JSON body");
            assert_eq!(body["error"], "unauthorized");
        }
    }
    assert!(backend.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn browsers_get_cors_on_documents_and_allowed_origins_on_routes() {
    let backend = ScriptedBackend::start().await;
    let gateway = GatewayBuilder::new()
        .server("allowed_origins = [\"http://localhost:6274\"]")
        .section(&format!(
            "[[routes]]\npath = \"/mcp\"\nupstream = \"{}\"\n",
            backend.url("/mcp")
        ))
        .start()
        .await;
    let http = reqwest::Client::new();

    // A preflight for a discovery document, from anywhere.
    let response = http
        .request(
            reqwest::Method::OPTIONS,
            gateway.url("/.well-known/oauth-protected-resource/mcp"),
        )
        .header("origin", "http://anywhere.example")
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "mcp-protocol-version")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
    assert!(
        response.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("MCP-Protocol-Version")
    );

    // A preflight for the MCP route from MCP Inspector's origin.
    let response = http
        .request(reqwest::Method::OPTIONS, gateway.url("/mcp"))
        .header("origin", "http://localhost:6274")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type, mcp-session-id, mcp-protocol-version, mcp-param-region",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let h = response.headers();
    assert_eq!(h["access-control-allow-origin"], "http://localhost:6274");
    assert!(
        h["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("DELETE")
    );
    assert!(
        h["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("mcp-param-region")
    );
    let exposed = h["access-control-expose-headers"].to_str().unwrap();
    assert!(exposed.contains("Mcp-Session-Id") && exposed.contains("WWW-Authenticate"));

    // The 401 is readable by that browser, challenge included.
    let response = http
        .post(gateway.url("/mcp"))
        .header("origin", "http://localhost:6274")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "http://localhost:6274"
    );

    // Another origin is refused outright, preflight or not.
    for method in [reqwest::Method::OPTIONS, reqwest::Method::POST] {
        let response = http
            .request(method.clone(), gateway.url("/mcp"))
            .header("origin", "http://evil.example")
            .header(
                "authorization",
                format!("Bearer {}", gateway.token("/mcp", "alice")),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{method}");
        assert!(
            response
                .headers()
                .get("access-control-allow-origin")
                .is_none()
        );
    }
    assert!(backend.requests().is_empty(), "nothing reached the backend");
}
