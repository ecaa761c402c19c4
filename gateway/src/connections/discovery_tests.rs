//! Tests of discovery (`discovery.rs`): challenges read, well-known URIs in order, the metadata
//! checked against the backend and the route, and what may not be fetched.

use super::*;

/// A route's connection settings with nothing set.
fn settings() -> ConnectionSettings {
    ConnectionSettings {
        client: None,
        scopes: Vec::new(),
        send_resource: true,
        authorization_servers: Vec::new(),
        allow_private_network: false,
    }
}

#[test]
fn a_bearer_challenge_is_read_with_its_quoted_and_escaped_values() {
    let challenge = Challenge::parse(
        r#"Bearer error="insufficient_scope", scope="files:read files:write", resource_metadata="https://mcp.example/.well-known/oauth-protected-resource/mcp""#,
    )
    .unwrap();
    assert_eq!(challenge.error.as_deref(), Some("insufficient_scope"));
    assert_eq!(challenge.scope.as_deref(), Some("files:read files:write"));
    assert_eq!(
        challenge.resource_metadata.as_deref(),
        Some("https://mcp.example/.well-known/oauth-protected-resource/mcp")
    );
    let challenge = Challenge::parse(r#"bearer realm="a \"b\"",error=invalid_token"#).unwrap();
    assert_eq!(challenge.error.as_deref(), Some("invalid_token"));
    assert_eq!(Challenge::parse(r#"Basic realm="x""#), None);
    assert_eq!(Challenge::parse("Bearer"), Some(Challenge::default()));
}

#[test]
fn well_known_uris_follow_the_spec_order() {
    let backend = Url::parse("https://mcp.example/tenant/mcp").unwrap();
    assert_eq!(
        resource_metadata_urls(&backend),
        [
            "https://mcp.example/.well-known/oauth-protected-resource/tenant/mcp",
            "https://mcp.example/.well-known/oauth-protected-resource",
        ]
    );
    let issuer = Url::parse("https://as.example/realms/main").unwrap();
    assert_eq!(
        server_metadata_urls(&issuer),
        [
            "https://as.example/.well-known/oauth-authorization-server/realms/main",
            "https://as.example/.well-known/openid-configuration/realms/main",
            "https://as.example/realms/main/.well-known/openid-configuration",
        ]
    );
    let issuer = Url::parse("https://as.example").unwrap();
    assert_eq!(
        server_metadata_urls(&issuer),
        [
            "https://as.example/.well-known/oauth-authorization-server",
            "https://as.example/.well-known/openid-configuration",
        ]
    );
}

#[test]
fn the_metadata_must_name_the_backend() {
    let backend = Url::parse("https://mcp.example/tenant/mcp").unwrap();
    for same in [
        "https://mcp.example/tenant/mcp",
        "https://mcp.example/tenant/mcp/",
        "https://mcp.example/tenant",
        "https://mcp.example",
        "https://mcp.example/",
    ] {
        assert!(same_resource(&backend, same), "{same}");
    }
    for other in [
        "https://mcp.example/other/mcp",
        "https://mcp.example/ten",
        "https://evil.example/tenant/mcp",
        "http://mcp.example/tenant/mcp",
        "https://mcp.example:8443/tenant/mcp",
        "not a url",
    ] {
        assert!(!same_resource(&backend, other), "{other}");
    }
}

#[test]
fn the_issuer_is_the_first_allowed_and_scopes_come_from_the_route_challenge_or_backend() {
    let mut settings = settings();
    let named = [
        "https://a.example".to_owned(),
        "https://b.example".to_owned(),
    ];
    assert_eq!(
        choose_issuer(&named, &settings).unwrap(),
        "https://a.example"
    );
    settings.authorization_servers = vec!["https://b.example".into()];
    assert_eq!(
        choose_issuer(&named, &settings).unwrap(),
        "https://b.example"
    );
    settings.authorization_servers = vec!["https://c.example".into()];
    assert!(matches!(
        choose_issuer(&named, &settings),
        Err(ConnectionError::NotAllowed(_))
    ));
    assert!(matches!(
        choose_issuer(&[], &settings),
        Err(ConnectionError::Discovery(_))
    ));

    let supported = Some(vec!["a".to_owned()]);
    let challenge = Challenge {
        scope: Some("b c".into()),
        ..Challenge::default()
    };
    let server = server_at("https://as.example/token");
    assert_eq!(
        scopes(&settings, &challenge, supported.clone(), &server),
        ["b", "c"]
    );
    assert_eq!(
        scopes(&settings, &Challenge::default(), supported.clone(), &server),
        ["a"]
    );
    // A server that offers refresh tokens by `offline_access` is asked for one (SEP-2207).
    let offering = ServerMetadata {
        scopes_supported: Some(vec!["a".into(), "offline_access".into()]),
        ..server.clone()
    };
    assert_eq!(
        scopes(&settings, &challenge, supported.clone(), &offering),
        ["b", "c", "offline_access"]
    );
    // The route's own scopes are asked for as they are.
    settings.scopes = vec!["d".into()];
    assert_eq!(scopes(&settings, &challenge, supported, &offering), ["d"]);
}

/// A server with https endpoints but its token endpoint at `token_endpoint`.
fn server_at(token_endpoint: &str) -> ServerMetadata {
    ServerMetadata {
        issuer: "https://as.example".into(),
        authorization_endpoint: "https://as.example/authorize".into(),
        token_endpoint: token_endpoint.into(),
        registration_endpoint: Some("https://as.example/register".into()),
        revocation_endpoint: None,
        code_challenge_methods_supported: vec!["S256".into()],
        token_endpoint_auth_methods_supported: None,
        client_id_metadata_document_supported: false,
        authorization_response_iss_parameter_supported: true,
        scopes_supported: None,
    }
}

#[tokio::test]
async fn metadata_on_a_private_address_is_not_fetched_unless_allowed() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let settings = settings();
    let public_only = Outbound::new(false, TIMEOUT);
    // The backend itself, and metadata its challenge names on a private address.
    let backend = "https://mcp.example/mcp".to_owned();
    let challenge = Challenge {
        resource_metadata: Some(format!(
            "http://127.0.0.1:{port}/.well-known/oauth-protected-resource"
        )),
        ..Challenge::default()
    };
    let refused = discover(&public_only, &backend, &settings, Some(challenge))
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("private or reserved address"),
        "{refused}"
    );
    let refused = discover(
        &public_only,
        &format!("http://127.0.0.1:{port}/mcp"),
        &settings,
        None,
    )
    .await
    .unwrap_err();
    assert!(
        refused.to_string().contains("private or reserved address"),
        "{refused}"
    );
    drop(listener);
}

#[test]
fn a_server_whose_endpoints_are_not_https_is_refused_unless_the_network_is_private() {
    let server = server_at;
    let mut settings = settings();
    assert!(require_https(&server("https://as.example/token"), &settings).is_ok());
    let refused = require_https(&server("http://as.example/token"), &settings).unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("http://as.example/token is not https"),
        "{refused}"
    );
    settings.allow_private_network = true;
    assert!(require_https(&server("http://10.0.0.5/token"), &settings).is_ok());
}

#[test]
fn a_backend_refusal_is_about_the_token_or_its_scope_and_nothing_else() {
    assert_eq!(BackendRefusal::of(401, None), Some(BackendRefusal::Token));
    assert_eq!(
        BackendRefusal::of(
            403,
            Some(r#"Bearer error="insufficient_scope", scope="a b""#)
        ),
        Some(BackendRefusal::MoreScope(Some("a b".into())))
    );
    assert_eq!(
        BackendRefusal::of(403, Some(r#"Bearer error="insufficient_scope""#)),
        Some(BackendRefusal::MoreScope(None))
    );
    // A plain 403, even one whose text mentions the scope, is about what was asked.
    for challenge in [
        None,
        Some(r#"Bearer error="access_denied", error_description="insufficient_scope""#),
    ] {
        assert_eq!(BackendRefusal::of(403, challenge), None, "{challenge:?}");
    }
    assert_eq!(BackendRefusal::of(500, None), None);
}
