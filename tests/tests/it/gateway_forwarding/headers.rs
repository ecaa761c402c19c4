//! The headers a backend is sent: the gateway's internal ones never spoofed, in any spelling, what a
//! client claims about itself replaced by what the gateway says, and each credentials mode's own.

use std::time::Duration;

use gateway_assertion::jwk::JwkSet;
use gateway_assertion::{Expectations, Verifier, access_token_hash};
use integration_tests::ScriptedBackend;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{header, start};

#[tokio::test(flavor = "multi_thread")]
async fn spoofed_internal_headers_never_reach_the_backend() {
    let backend = ScriptedBackend::start().await;
    let gateway = start(&backend, "").await;
    let token = gateway.token("/echo/mcp", "alice");
    // Open a session first: the gateway binds it to alice from the backend's answer.
    let opened = reqwest::Client::new()
        .post(gateway.url("/echo/mcp"))
        .header("authorization", format!("Bearer {token}"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(opened.headers()["mcp-session-id"], "echo-session");
    let response = reqwest::Client::new()
        .post(gateway.url("/echo/mcp"))
        .header("authorization", format!("Bearer {token}"))
        .header("x-forwarded-user", "mallory")
        .header("X-FORWARDED-USER", "mallory2")
        .header("x-forwarded-access-token", "stolen-token")
        .header("X-Forwarded-Email", "mallory@evil.test")
        .header("x-forwarded-preferred-username", "mallory")
        .header("x-gateway-assertion", "forged.assertion.value")
        .header("x-request-id", "chosen-by-client")
        .header("cookie", "gateway-session=secret")
        .header("proxy-authorization", "Basic c2VjcmV0")
        // Second copies, in another case, of headers the gateway does not set again: every copy goes.
        .header("x-forwarded-email", "mallory2@evil.test")
        .header("X-Forwarded-Preferred-Username", "mallory2")
        .header("Cookie", "second=copy")
        .header("Proxy-Authorization", "Basic b3RoZXI=")
        // MCP's own headers pass through untouched.
        .header("mcp-session-id", "echo-session")
        .header("mcp-protocol-version", "2025-11-25")
        .header("last-event-id", "41")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "echo")
        .header("mcp-param-region", "=?base64?ZXU=?=")
        // A body that says what Mcp-Method and Mcp-Name say (else the gateway answers 400).
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["mcp-session-id"],
        "echo-session",
        "and back"
    );
    let seen = backend.requests();
    let seen = seen.last().expect("the request arrived");

    assert_eq!(header(seen, "x-forwarded-user"), vec!["alice"]);
    assert!(header(seen, "x-forwarded-email").is_empty());
    assert!(header(seen, "x-forwarded-preferred-username").is_empty());
    assert!(
        header(seen, "authorization").is_empty(),
        "the client's token is never passed through"
    );
    assert!(header(seen, "cookie").is_empty());
    assert!(header(seen, "proxy-authorization").is_empty());
    let request_id = header(seen, "x-request-id");
    assert_eq!(request_id.len(), 1);
    assert_ne!(request_id[0], "chosen-by-client");
    assert_eq!(
        header(seen, "host"),
        vec![format!("127.0.0.1:{}", backend.port)]
    );
    for (name, value) in [
        ("mcp-session-id", "echo-session"),
        ("mcp-protocol-version", "2025-11-25"),
        ("last-event-id", "41"),
        ("mcp-method", "tools/call"),
        ("mcp-name", "echo"),
        ("mcp-param-region", "=?base64?ZXU=?="),
    ] {
        assert_eq!(header(seen, name), vec![value], "{name}");
    }

    let forwarded = header(seen, "x-forwarded-access-token");
    assert_eq!(forwarded.len(), 1);
    assert_ne!(forwarded[0], "stolen-token");
    assert_ne!(
        forwarded[0], token,
        "the backend gets its own token, not the client's"
    );
    let assertion = header(seen, "x-gateway-assertion");
    assert_eq!(assertion.len(), 1);

    // The assertion is what mcp-backend checks: the gateway's key, issuer, the backend's audience,
    // and the forwarded token bound by `ath`.
    let jwks: JwkSet = reqwest::get(gateway.url("/.well-known/jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let verifier = Verifier::new(Expectations {
        issuer: gateway.origin.clone(),
        audience: "urn:test:echo".into(),
    });
    let key = jwks
        .find(&Verifier::key_id(assertion[0]).unwrap())
        .expect("the key is published");
    let claims = verifier
        .verify(
            assertion[0],
            key,
            Some(forwarded[0]),
            integration_tests::gateway_keys::now(),
        )
        .expect("a valid assertion");
    assert_eq!(claims.sub, "alice");
    assert_eq!(claims.client_id, "test-client");
    assert_eq!(
        claims.ath.as_deref(),
        Some(access_token_hash(forwarded[0]).as_str())
    );
    assert!(claims.exp - claims.iat <= 300);
}

#[tokio::test(flavor = "multi_thread")]
async fn what_a_client_claims_about_itself_never_reaches_the_backend_and_the_gateway_says_its_own()
{
    let backend = ScriptedBackend::start().await;
    let gateway = start(&backend, "").await;
    // On every credentials mode, `none` included, where nothing of the gateway's would replace them.
    for route in ["/echo/mcp", "/none/mcp"] {
        let token = gateway.token(route, "alice");
        let response = reqwest::Client::new()
            .post(gateway.url(route))
            .header("authorization", format!("Bearer {token}"))
            .header("x-forwarded-for", "6.6.6.6")
            .header("X-Forwarded-Host", "evil.test")
            .header("x-forwarded-proto", "https")
            .header("x-forwarded-port", "443")
            .header("x-forwarded-prefix", "/admin")
            .header("forwarded", "for=6.6.6.6;host=evil.test;proto=https")
            .header("x-real-ip", "6.6.6.6")
            // WSGI and CGI servers fold these onto the same variables as the dashed names.
            .header("x_forwarded_user", "mallory")
            .header("X_Forwarded_Email", "mallory@evil.test")
            .header("x-forwarded_access_token", "stolen")
            .header("x_gateway_assertion", "forged")
            .header("x_real_ip", "6.6.6.6")
            .header("x_forwarded_for", "6.6.6.6")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{route}");
        let seen = backend.requests();
        let seen = seen.last().expect("the request arrived");
        let names: Vec<&str> = seen.keys().map(http::HeaderName::as_str).collect();
        for name in &names {
            let folded = name.replace('_', "-");
            assert!(
                !folded.starts_with("x-forwarded-")
                    || ["x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"].contains(name)
                    || (route == "/echo/mcp"
                        && ["x-forwarded-user", "x-forwarded-access-token"].contains(name)),
                "{route}: {name} reached the backend"
            );
            assert!(!name.contains('_'), "{route}: {name} reached the backend");
        }
        assert!(header(seen, "forwarded").is_empty(), "{route}");
        assert!(header(seen, "x-real-ip").is_empty(), "{route}");
        // The gateway's own word: the client's address as the gateway saw it, and its public URL.
        assert_eq!(
            header(seen, "x-forwarded-for"),
            vec!["127.0.0.1"],
            "{route}"
        );
        assert_eq!(header(seen, "x-forwarded-proto"), vec!["http"], "{route}");
        let host = gateway.origin.trim_start_matches("http://");
        assert_eq!(header(seen, "x-forwarded-host"), vec![host], "{route}");
        if route == "/echo/mcp" {
            assert_eq!(header(seen, "x-forwarded-user"), vec!["alice"]);
            assert_ne!(header(seen, "x-forwarded-access-token"), vec!["stolen"]);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn odd_spellings_of_internal_headers_are_refused_or_stripped() {
    let backend = ScriptedBackend::start().await;
    let gateway = start(&backend, "").await;
    let token = gateway.token("/echo/mcp", "alice");
    let port: u16 = gateway.origin.rsplit(':').next().unwrap().parse().unwrap();
    let spellings = [
        "x-forwarded-user:    mallory   ",
        "X-Forwarded-User:\tmallory",
        "X-Forwarded-User : mallory",
        "X-Forwarded-User\t: mallory",
        " X-Forwarded-User: mallory",
    ];
    for spelling in spellings {
        let before = backend.requests().len();
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let request = format!(
            "POST /echo/mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n{spelling}\r\n\
             Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut reply = String::new();
        let _ =
            tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut reply)).await;
        let status: u16 = reply.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
        match status {
            200 => {
                let seen = backend.requests();
                assert_eq!(seen.len(), before + 1);
                assert_eq!(
                    header(seen.last().unwrap(), "x-forwarded-user"),
                    vec!["alice"],
                    "{spelling:?}"
                );
            }
            400..=499 => assert_eq!(
                backend.requests().len(),
                before,
                "{spelling:?} was refused yet forwarded"
            ),
            _ => panic!("{spelling:?}: unexpected reply {reply:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn each_credentials_mode_sends_what_it_says() {
    let backend = ScriptedBackend::start().await;
    let gateway = start(&backend, "").await;
    let http = reqwest::Client::new();
    for (path, expect_authorization, expect_internal) in [
        ("/bearer/mcp", true, false),
        ("/assertion/mcp", true, false),
        ("/none/mcp", false, false),
    ] {
        let token = gateway.token(path, "alice");
        let response = http
            .post(gateway.url(path))
            .header("authorization", format!("Bearer {token}"))
            .header("x-forwarded-user", "mallory")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let seen = backend.requests();
        let seen = seen.last().unwrap();
        let authorization = header(seen, "authorization");
        assert_eq!(
            authorization.len(),
            usize::from(expect_authorization),
            "{path}"
        );
        if let Some(value) = authorization.first() {
            assert!(
                value.starts_with("Bearer ") && !value.contains(&token),
                "{path}: never the client's token"
            );
        }
        assert_eq!(
            !header(seen, "x-gateway-assertion").is_empty(),
            expect_internal,
            "{path}"
        );
        assert!(
            header(seen, "x-forwarded-user").is_empty(),
            "{path}: spoofed header stripped"
        );
    }
    // `assertion` mode sends a JWT in the assertion's type; `bearer` an access token for the backend.
    let seen = backend.requests();
    let typ = |authorization: &str| {
        let jwt = authorization.trim_start_matches("Bearer ");
        jsonwebtoken_typ(jwt)
    };
    assert_eq!(typ(header(&seen[0], "authorization")[0]), "at+jwt");
    assert_eq!(
        typ(header(&seen[1], "authorization")[0]),
        gateway_assertion::ASSERTION_TYP
    );
}

fn jsonwebtoken_typ(jwt: &str) -> String {
    use base64::Engine as _;
    let head = jwt.split('.').next().unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(head)
        .unwrap();
    let header: Value = serde_json::from_slice(&bytes).unwrap();
    header["typ"].as_str().unwrap().to_owned()
}
