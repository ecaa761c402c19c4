//! What crosses the gateway: internal headers only as the gateway sets them, SSE unbuffered and
//! unhurried, clear errors for dead, slow or oversized traffic.

use std::time::Duration;

use gateway_assertion::jwk::JwkSet;
use gateway_assertion::{Expectations, Verifier, access_token_hash};
use integration_tests::{GatewayBuilder, GatewayUnderTest, ScriptedBackend, free_port};
use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn start(backend: &ScriptedBackend, extra: &str) -> GatewayUnderTest {
    let down = format!("http://127.0.0.1:{}/mcp", free_port());
    GatewayBuilder::new()
        .section(&format!(
            "[limits]\nmax_request_body_bytes = 65536\n\n\
             [[routes]]\npath = \"/echo/mcp\"\nupstream = \"{echo}\"\nbackend_audience = \"urn:test:echo\"\n\n\
             [[routes]]\npath = \"/bearer/mcp\"\nupstream = \"{echo}\"\ncredentials = \"bearer\"\n\n\
             [[routes]]\npath = \"/assertion/mcp\"\nupstream = \"{echo}\"\ncredentials = \"assertion\"\n\n\
             [[routes]]\npath = \"/none/mcp\"\nupstream = \"{echo}\"\ncredentials = \"none\"\n\n\
             [[routes]]\npath = \"/sse/mcp\"\nupstream = \"{sse}\"\nread_timeout = \"1s\"\n\n\
             [[routes]]\npath = \"/keepalive/mcp\"\nupstream = \"{keepalive}\"\nread_timeout = \"1s\"\nwrite_timeout = \"1s\"\n\n\
             [[routes]]\npath = \"/slow/mcp\"\nupstream = \"{hang}\"\nread_timeout = \"1s\"\n\n\
             [[routes]]\npath = \"/down/mcp\"\nupstream = \"{down}\"\nconnect_timeout = \"1s\"\n{extra}",
            echo = backend.url("/mcp"),
            sse = backend.url("/sse"),
            keepalive = backend.url("/keepalive?ms=400&count=8"),
            hang = backend.url("/hang"),
        ))
        .start()
        .await
}

fn header<'a>(headers: &'a http::HeaderMap, name: &str) -> Vec<&'a str> {
    headers
        .get_all(name)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect()
}

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

#[tokio::test(flavor = "multi_thread")]
async fn an_sse_event_arrives_before_the_backend_ends_the_stream() {
    let backend = ScriptedBackend::start().await;
    let gateway = start(&backend, "").await;
    let mut response = gateway.stream_get("/sse/mcp").send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    assert_eq!(response.headers()["x-accel-buffering"], "no");
    assert!(response.headers().get("content-encoding").is_none());
    let first = tokio::time::timeout(Duration::from_secs(10), response.chunk())
        .await
        .expect("the first event came while the backend still held the stream open")
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&first).contains("data: first"));
    let open = gateway.metrics().await;
    assert_eq!(
        open.get("mcp_gateway_active_streams{route=\"/sse/mcp\"}"),
        Some(&1.0)
    );

    backend.release();
    let mut rest = Vec::new();
    while let Some(chunk) = response.chunk().await.unwrap() {
        rest.extend_from_slice(&chunk);
    }
    assert!(String::from_utf8_lossy(&rest).contains("data: second"));
    // The gauge falls once the stream has ended (the access log phase runs just after).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let closed = gateway.metrics().await;
        if closed.get("mcp_gateway_active_streams{route=\"/sse/mcp\"}") == Some(&0.0) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the stream gauge never fell"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_long_stream_outlives_the_timeouts_while_keep_alives_flow() {
    let backend = ScriptedBackend::start().await;
    let gateway = start(&backend, "").await;
    let started = std::time::Instant::now();
    let response = gateway.stream_get("/keepalive/mcp").send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body = response.text().await.expect("the stream ends cleanly");
    // 8 keep-alives 400 ms apart: 3.2 s, over three times the route's 1 s read and write timeouts.
    assert!(started.elapsed() >= Duration::from_millis(3000));
    assert_eq!(body.matches(": keep-alive").count(), 8, "{body}");
    assert!(body.contains("data: done"), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_or_slow_backend_gets_502_or_504_with_a_json_body() {
    let backend = ScriptedBackend::start().await;
    let gateway = start(&backend, "").await;
    let http = reqwest::Client::new();
    for (path, status, error) in [
        ("/down/mcp", 502, "bad_gateway"),
        ("/slow/mcp", 504, "gateway_timeout"),
    ] {
        let started = std::time::Instant::now();
        let response = http
            .post(gateway.url(path))
            .header(
                "authorization",
                format!("Bearer {}", gateway.token(path, "alice")),
            )
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status, "{path}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{path} answered without hanging"
        );
        let body: Value = response.json().await.expect("a JSON body");
        assert_eq!(body["error"], error, "{path}");
    }
}

/// A backend named by a host name is resolved (off the worker thread) and reached; one whose name
/// does not resolve gets a 502 with a JSON body, and the gateway goes on serving the others.
#[tokio::test(flavor = "multi_thread")]
async fn backends_by_host_name_are_reached_and_an_unknown_name_gets_502() {
    let backend = ScriptedBackend::start().await;
    // The test backend listens on 127.0.0.1; the gateway takes a name's IPv4 address when it has one,
    // so this holds where `localhost` is `::1` first too.
    let named = backend.url("/mcp").replace("127.0.0.1", "localhost");
    let extra = format!(
        "\n[[routes]]\npath = \"/named/mcp\"\nupstream = \"{named}\"\n\n\
         [[routes]]\npath = \"/nowhere/mcp\"\nupstream = \"http://no-such-host.invalid:9/mcp\"\n"
    );
    let gateway = start(&backend, &extra).await;
    let http = reqwest::Client::new();
    let call = |path: &'static str| {
        http.post(gateway.url(path))
            .header(
                "authorization",
                format!("Bearer {}", gateway.token(path, "alice")),
            )
            .body("{}")
            .send()
    };
    for round in 0..2 {
        let response = call("/nowhere/mcp").await.unwrap();
        assert_eq!(response.status().as_u16(), 502, "round {round}");
        let body: Value = response.json().await.expect("a JSON body");
        assert_eq!(body["error"], "bad_gateway");
        let response = call("/named/mcp").await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "round {round}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn oversize_bodies_and_headers_get_413_and_431() {
    let backend = ScriptedBackend::start().await;
    let gateway = start(&backend, "").await;
    let http = reqwest::Client::new();
    let token = gateway.token("/echo/mcp", "alice");
    let big = "x".repeat(70_000);

    let response = http
        .post(gateway.url("/echo/mcp"))
        .header("authorization", format!("Bearer {token}"))
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"],
        "payload_too_large"
    );

    // The same size without a Content-Length, streamed in chunks.
    let chunks: Vec<Result<String, std::io::Error>> =
        (0..70).map(|_| Ok("y".repeat(1000))).collect();
    let response = http
        .post(gateway.url("/echo/mcp"))
        .header("authorization", format!("Bearer {token}"))
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await;
    if let Ok(response) = response {
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }

    let response = http
        .post(gateway.url("/echo/mcp"))
        .header("authorization", format!("Bearer {token}"))
        .header("x-padding", "p".repeat(40_000))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    );
    assert!(
        backend.requests().is_empty(),
        "nothing oversized was forwarded"
    );
}

/// MCP 2026-07-28 makes `Mcp-Method` required: a POST declaring that version (or a later one)
/// without it is refused with `400` and `-32020`, on a route without a policy too, and never
/// reaches the backend; older versions send none and go on.
#[tokio::test(flavor = "multi_thread")]
async fn a_2026_07_28_request_without_mcp_method_is_refused() {
    let backend = ScriptedBackend::start().await;
    let gateway = start(&backend, "").await;
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
    for version in ["2026-07-28", "2027-03-01"] {
        let response = gateway
            .mcp_post("/none/mcp", body)
            .header("mcp-protocol-version", version)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{version}");
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["error"]["code"], -32020, "{answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .contains("Mcp-Method header is required"),
            "{answer}"
        );
    }
    assert!(backend.requests().is_empty(), "nothing reached the backend");
    for (version, method) in [("2026-07-28", Some("tools/list")), ("2025-11-25", None)] {
        let mut request = gateway
            .mcp_post("/none/mcp", body)
            .header("mcp-protocol-version", version);
        if let Some(method) = method {
            request = request.header("mcp-method", method);
        }
        assert_eq!(
            request.send().await.unwrap().status(),
            StatusCode::OK,
            "{version}"
        );
    }
    assert_eq!(backend.requests().len(), 2);
}
