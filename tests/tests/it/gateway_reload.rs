//! Reloading the config while the gateway runs (SIGHUP, or `server.watch_config`): new requests meet
//! the new routes, limits, policies, clients and users while a stream opened before carries on; a bad
//! config is refused with one log line and the old one keeps serving; what only a restart changes is
//! named.

use std::time::Duration;

use integration_tests::oauth::{Agent, Pkce, authorize_url};
use integration_tests::{GatewayBuilder, GatewayUnderTest, ScriptedBackend, free_port};
use serde_json::json;

use crate::oauth_flow::auth_stack_with;

/// The routes of the first config: a held SSE stream, and `/a/mcp`.
fn routes(backend: &ScriptedBackend) -> String {
    format!(
        "[[routes]]\npath = \"/sse/mcp\"\nupstream = \"{sse}\"\n\n\
         [[routes]]\npath = \"/a/mcp\"\nupstream = \"{echo}\"\n",
        sse = backend.url("/sse"),
        echo = backend.url("/mcp"),
    )
}

/// A POST to `path` with a token for it and `body`: the status.
async fn post(gateway: &GatewayUnderTest, path: &str, body: String) -> u16 {
    gateway
        .mcp_post(path, body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn call(tool: &str) -> String {
    json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": tool, "arguments": {}}})
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reload_applies_to_new_requests_while_an_open_stream_carries_on() {
    let backend = ScriptedBackend::start().await;
    let mut gateway = GatewayBuilder::new()
        .section(&format!(
            "[limits]\nmax_request_body_bytes = 100000\n\n{}",
            routes(&backend)
        ))
        .start()
        .await;
    let mut stream = gateway.stream_get("/sse/mcp").send().await.unwrap();
    assert_eq!(stream.status(), 200);
    let first = stream.chunk().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("data: first"));
    let big = call(&"x".repeat(60_000));
    assert_eq!(post(&gateway, "/a/mcp", big.clone()).await, 200);
    assert_eq!(post(&gateway, "/a/mcp", call("danger")).await, 200);

    // The next config: /a/mcp gone, /b/mcp new with a policy, a smaller body limit, and a listen
    // address and store that only a restart changes.
    let elsewhere = free_port();
    let next = gateway
        .config
        .replace(
            &format!(
                "listen = \"127.0.0.1:{}\"",
                gateway.origin.rsplit(':').next().unwrap()
            ),
            &format!("listen = \"127.0.0.1:{elsewhere}\""),
        )
        .replace(
            "max_request_body_bytes = 100000",
            "max_request_body_bytes = 50000",
        )
        .replace("gateway.db", "other.db")
        .replace("path = \"/a/mcp\"", "path = \"/b/mcp\"")
        + "\n[routes.policy]\n[[routes.policy.rules]]\neffect = \"deny\"\ntools = [\"danger\"]\n\
           [[routes.policy.rules]]\neffect = \"allow\"\ntools = [\"*\"]\n";
    let line = gateway.reload(&next).await;
    assert!(line.contains("SIGHUP: reloaded"), "{line}");
    assert!(
        line.contains("unchanged until a restart: server.listen, store"),
        "{line}"
    );

    // New requests meet the new config, on the old address.
    assert_eq!(post(&gateway, "/a/mcp", call("echo")).await, 404);
    assert_eq!(post(&gateway, "/b/mcp", call("echo")).await, 200);
    assert_eq!(post(&gateway, "/b/mcp", big).await, 413);
    let forwarded = backend.bodies().len();
    let denied = gateway
        .mcp_post("/b/mcp", call("danger"))
        .send()
        .await
        .unwrap();
    let denied: serde_json::Value = denied.json().await.unwrap();
    assert!(denied.get("error").is_some(), "{denied}");
    assert_eq!(
        backend.bodies().len(),
        forwarded,
        "the denied call was not forwarded"
    );
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", elsewhere))
            .await
            .is_err(),
        "nothing listens at the new address before a restart"
    );

    // The stream opened before the reload carries on to its end.
    backend.release();
    let mut rest = Vec::new();
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(10), stream.chunk())
        .await
        .expect("the stream goes on")
        .unwrap()
    {
        rest.extend_from_slice(&chunk);
    }
    assert!(String::from_utf8_lossy(&rest).contains("data: second"));

    let metrics = gateway.metrics().await;
    assert_eq!(
        metrics["mcp_gateway_config_reloads_total{result=\"applied\"}"],
        1.0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_config_is_refused_with_one_line_and_the_old_one_keeps_serving() {
    let backend = ScriptedBackend::start().await;
    let mut gateway = GatewayBuilder::new()
        .section(&routes(&backend))
        .start()
        .await;
    let good = gateway.config.clone();
    for (bad, reason) in [
        (
            good.replace("path = \"/a/mcp\"", "path = \"a/mcp\""),
            "`routes[1].path`",
        ),
        (
            good.replace("[[routes]]", "[[routes]]\nsurprise = 1"),
            "surprise",
        ),
        ("[server\n".to_owned(), "gateway.toml"),
        (
            good.replace(
                "public_url = \"http://127.0.0.1:",
                "public_url = \"http://localhost:",
            ),
            "server.public_url changed",
        ),
    ] {
        let line = gateway.reload(&bad).await;
        assert!(
            line.contains("SIGHUP: reload refused, still serving the previous config:"),
            "{line}"
        );
        assert!(line.contains(reason), "{reason}: {line}");
        assert_eq!(post(&gateway, "/a/mcp", call("echo")).await, 200, "{line}");
    }
    let refusals = gateway.process.stderr().matches("reload refused").count();
    assert_eq!(refusals, 4, "one line each");
    let metrics = gateway.metrics().await;
    assert_eq!(
        metrics["mcp_gateway_config_reloads_total{result=\"refused\"}"],
        4.0
    );
    assert_eq!(
        metrics["mcp_gateway_config_reloads_total{result=\"applied\"}"],
        0.0
    );
    assert_eq!(metrics["mcp_gateway_config_last_reload_successful"], 0.0);
    // And the good one again is taken.
    let line = gateway.reload(&good).await;
    assert!(line.contains("SIGHUP: reloaded"), "{line}");
    assert!(!line.contains("until a restart"), "{line}");
    let metrics = gateway.metrics().await;
    assert_eq!(metrics["mcp_gateway_config_last_reload_successful"], 1.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn with_watch_config_an_edited_users_file_or_client_list_applies_without_a_signal() {
    let stack = auth_stack_with("", GatewayBuilder::new().server("watch_config = true")).await;
    let mut gateway = stack.gateway;
    let users = gateway
        .config
        .lines()
        .find_map(|l| l.strip_prefix("users_file = "))
        .map(|v| v.trim_matches('"').to_owned())
        .expect("the users file");

    // carol is not a user yet.
    let sign_in = |gateway: &GatewayUnderTest, client: &str, user: &str, password: &str| {
        let url = authorize_url(gateway, client, &Pkce::new(), &[]);
        let login = gateway.url("/login");
        let (user, password) = (user.to_owned(), password.to_owned());
        async move {
            let mut agent = Agent::new();
            let (status, next, page) = agent.get(&url).await;
            let Some(next) = next else {
                return (status, page);
            };
            let (_, _, page) = agent.get(&next).await;
            let form = [
                (
                    "pending",
                    integration_tests::oauth::hidden(&page, "pending"),
                ),
                ("csrf", integration_tests::oauth::hidden(&page, "csrf")),
                ("username", user),
                ("password", password),
            ];
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let (status, _, page) = agent.post_form(&login, &form).await;
            (status, page)
        }
    };
    let client = integration_tests::oauth::public_client(&gateway).await;
    let (status, page) = sign_in(&gateway, &client, "carol", "wonderland").await;
    assert_eq!(status, 401, "{page}");

    // The users file gets carol (alice's hash: the same password).
    let text = std::fs::read_to_string(&users).unwrap();
    let alice_hash = text
        .lines()
        .find_map(|l| l.strip_prefix("password_hash = "))
        .unwrap()
        .to_owned();
    let with_carol =
        format!("{text}\n[[users]]\nusername = \"carol\"\npassword_hash = {alice_hash}\n");
    let line = gateway
        .reloaded_after(|_| replace(std::path::Path::new(&users), &with_carol))
        .await;
    assert!(
        line.contains(&format!("{users} changed: reloaded")),
        "{line}"
    );
    let (status, page) = sign_in(&gateway, &client, "carol", "wonderland").await;
    assert_eq!(status, 302, "carol signs in: {page}");

    // A client added to the config is known at /authorize at once.
    let (status, page) = sign_in(&gateway, "configured-app", "alice", "wonderland").await;
    assert_eq!(status, 400, "an unknown client: {page}");
    let config = gateway.config.clone()
        + "\n[[clients]]\nclient_id = \"configured-app\"\nredirect_uris = [\"http://127.0.0.1:1/callback\"]\n";
    let path = gateway.dir().join("gateway.toml");
    let line = gateway.reloaded_after(|_| replace(&path, &config)).await;
    assert!(line.contains("gateway.toml changed: reloaded"), "{line}");
    let (status, page) = sign_in(&gateway, "configured-app", "alice", "wonderland").await;
    assert_eq!(
        status, 302,
        "the configured client goes on to consent: {page}"
    );
}

/// Replaces `path` with `text` at once (a new file renamed over it), as deployment tools do, so
/// that the watch never reads half a file.
fn replace(path: &std::path::Path, text: &str) {
    let fresh = path.with_extension("new");
    std::fs::write(&fresh, text).unwrap();
    std::fs::rename(&fresh, path).unwrap();
}
