//! Access ends, and streams with it: an open SSE stream ends when its token expires, when its grant
//! is revoked, when a reload removes its route, or when the route's policy would now refuse what it
//! carries. It ends cleanly (HTTP/1.1's last chunk, HTTP/2's end of stream), so that a client
//! reconnects and meets the answer a new request gets; a stream whose access stands goes on.

use std::time::{Duration, Instant};

use integration_tests::oauth::{revoke, signed_in};
use integration_tests::sse::OpenStream;
use integration_tests::{GatewayBuilder, GatewayTls, GatewayUnderTest, ScriptedBackend};
use serde_json::json;

use crate::oauth_flow::users_file;

/// How long after its cause a stream must have ended.
const WITHIN: Duration = Duration::from_secs(1);
/// What a test machine may add to it.
const SLACK: Duration = Duration::from_millis(500);

struct Stack {
    gateway: GatewayUnderTest,
    backend: ScriptedBackend,
    /// HTTPS (HTTP/2 and HTTP/1.1), except for the tests that sign in through the harness's own
    /// plain-HTTP OAuth client.
    tls: Option<GatewayTls>,
    _dir: tempfile::TempDir,
}

fn routes(backend: &ScriptedBackend, calls_policy: &str, with_stream_route: bool) -> String {
    let stream_route = if with_stream_route {
        format!(
            "[[routes]]\npath = \"/stream\"\nupstream = \"{}\"\n\
             [routes.policy]\ndefault = \"allow\"\n\n",
            backend.url("/sse")
        )
    } else {
        String::new()
    };
    format!(
        "{stream_route}[[routes]]\npath = \"/calls\"\nupstream = \"{}\"\n\
         [routes.policy]\ndefault = \"deny\"\n[[routes.policy.rules]]\neffect = \"{calls_policy}\"\ntools = [\"slow\"]\n\n\
         [[routes]]\npath = \"/plain\"\nupstream = \"{}\"\n",
        backend.url("/sse"),
        backend.url("/sse"),
    )
}

fn section(backend: &ScriptedBackend, calls_policy: &str, with_stream_route: bool) -> String {
    format!(
        "[provider]\nkind = \"local\"\nusers_file = {users:?}\n\n{}",
        routes(backend, calls_policy, with_stream_route),
        users = users_file().display().to_string(),
    )
}

async fn stack(https: bool) -> Stack {
    let backend = ScriptedBackend::start().await;
    let dir = tempfile::tempdir().unwrap();
    let tls = https.then(|| GatewayTls::issued(dir.path()));
    let mut builder = GatewayBuilder::new().tokens("clock_skew = \"0s\"");
    if let Some(tls) = &tls {
        builder = builder.tls(tls);
    }
    let gateway = builder
        .section(&section(&backend, "allow", true))
        .start()
        .await;
    Stack {
        gateway,
        backend,
        tls,
        _dir: dir,
    }
}

/// A stream opened by `request`, its first event come.
async fn open(
    client: &reqwest::Client,
    request: reqwest::RequestBuilder,
    version: http::Version,
) -> OpenStream {
    let response = client.execute(request.build().unwrap()).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), version);
    let mut open = OpenStream::of(response);
    open.until("data: first").await;
    open
}

/// A client speaking each HTTP version the stack serves.
fn clients(stack: &Stack) -> Vec<(http::Version, reqwest::Client)> {
    match &stack.tls {
        Some(tls) => vec![
            (
                http::Version::HTTP_11,
                tls.client_builder().http1_only().build().unwrap(),
            ),
            (http::Version::HTTP_2, tls.client_builder().build().unwrap()),
        ],
        None => vec![(http::Version::HTTP_11, reqwest::Client::new())],
    }
}

fn get(
    client: &reqwest::Client,
    gateway: &GatewayUnderTest,
    path: &str,
    token: &str,
) -> reqwest::RequestBuilder {
    client
        .get(gateway.url(path))
        .bearer_auth(token)
        .header("accept", "text/event-stream")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_ends_cleanly_when_its_token_expires() {
    let stack = stack(true).await;
    let gateway = &stack.gateway;
    for (version, client) in clients(&stack) {
        let claims = integration_tests::gateway::access_claims(
            &gateway.origin,
            &gateway.url("/plain"),
            "alice",
            "mcp",
            3,
        );
        let expires = Instant::now() + Duration::from_secs(3);
        let token = gateway.sign(&claims);
        let mut stream = open(&client, get(&client, gateway, "/plain", &token), version).await;
        let ended = stream
            .ends_cleanly_within(Duration::from_secs(4) + WITHIN + SLACK)
            .await;
        // Not before the token expired (a second's rounding of `exp`), and soon after.
        assert!(ended + Duration::from_secs(1) >= expires, "{version:?}");
        // A client reconnects: the stream's HTTP/1.1 connection is closed after its last chunk,
        // and a request sent on it before the client has seen that close is reset.
        let (_, reconnected) = clients(&stack)
            .into_iter()
            .find(|(v, _)| *v == version)
            .unwrap();
        let again = reconnected
            .execute(
                get(&reconnected, gateway, "/plain", &token)
                    .build()
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(again.status(), 401, "a new request with the token");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_ends_within_a_second_of_its_grants_revocation() {
    let stack = stack(false).await;
    let gateway = &stack.gateway;
    for (version, client) in clients(&stack) {
        let tokens = signed_in(gateway, "/plain", "alice", "wonderland").await;
        let access = tokens["access_token"].as_str().unwrap();
        let mut stream = open(&client, get(&client, gateway, "/plain", access), version).await;
        revoke(gateway, &tokens).await;
        let at = Instant::now();
        let ended = stream.ends_cleanly_within(WITHIN + SLACK).await;
        eprintln!("{version:?}: ended {:?} after the revocation", ended - at);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reload_ends_the_streams_it_takes_access_from_and_no_other() {
    let mut stack = stack(true).await;
    let client = stack
        .tls
        .as_ref()
        .unwrap()
        .client_builder()
        .build()
        .unwrap();
    let version = http::Version::HTTP_2;
    let stream_token = stack.gateway.token("/stream", "alice");
    let calls_token = stack.gateway.token("/calls", "alice");
    let plain_token = stack.gateway.token("/plain", "alice");
    let mut listening = open(
        &client,
        get(&client, &stack.gateway, "/stream", &stream_token),
        version,
    )
    .await;
    let call =
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "slow"}});
    let post = client
        .post(stack.gateway.url("/calls"))
        .bearer_auth(&calls_token)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(call.to_string());
    let mut calling = open(&client, post, version).await;
    let mut plain = open(
        &client,
        get(&client, &stack.gateway, "/plain", &plain_token),
        version,
    )
    .await;

    // The call's tool is denied from now on: its stream ends; the others go on.
    let config = stack.gateway.config.replace(
        &routes(&stack.backend, "allow", true),
        &routes(&stack.backend, "deny", true),
    );
    let line = stack.gateway.reload(&config).await;
    assert!(line.contains("reloaded"), "{line}");
    let at = Instant::now();
    calling.ends_cleanly_within(WITHIN + SLACK).await;
    eprintln!(
        "the call's stream ended {:?} after the reload",
        at.elapsed()
    );

    // The route of the listening stream is removed: it ends; the plain one goes on.
    let config = stack.gateway.config.replace(
        &routes(&stack.backend, "deny", true),
        &routes(&stack.backend, "deny", false),
    );
    let line = stack.gateway.reload(&config).await;
    assert!(line.contains("reloaded"), "{line}");
    listening.ends_cleanly_within(WITHIN + SLACK).await;
    let gone = client
        .execute(
            get(&client, &stack.gateway, "/stream", &stream_token)
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(gone.status(), 404, "a new request meets the new config");

    // The stream whose access stands was open all along: it gets the backend's next event.
    stack.backend.release();
    plain.until("data: second").await;
}
