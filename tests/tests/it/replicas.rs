//! Several gateway replicas on one Redis: any step of a flow may land on any replica. Each replica
//! here listens on its own port but is named by one public URL, as behind a load balancer.

use integration_tests::oauth::refreshing;
use integration_tests::oauth::{
    Agent, Pkce, REDIRECT, authorize, authorize_url, exchange, register, register_response, token,
};
use integration_tests::{
    GatewayBuilder, GatewayUnderTest, RedisCluster, RedisServer, ScriptedBackend,
};
use serde_json::json;

use crate::oauth_flow::users_file;
use crate::oauth_rules::mcp_status;

/// Where the replicas keep their state.
enum Redis {
    Node(RedisServer),
    Cluster(RedisCluster),
}

struct Replicas {
    gateways: Vec<GatewayUnderTest>,
    backend: ScriptedBackend,
    _redis: Redis,
}

/// Three replicas started at once on `redis`, making and sharing their signing key there.
async fn three_replicas(redis: Redis, extra: &str) -> Replicas {
    let (url, cluster) = match &redis {
        Redis::Node(node) => (node.url(), false),
        Redis::Cluster(cluster) => (cluster.url(), true),
    };
    let backend = ScriptedBackend::start().await;
    let users = users_file();
    let builders: Vec<GatewayBuilder> = (0..3).map(|_| GatewayBuilder::new()).collect();
    let public_url = builders[0].origin();
    let section = format!(
        "[provider]\nkind = \"local\"\nusers_file = {users:?}\n\n{extra}\n\n\
         [[routes]]\npath = \"/mcp\"\nupstream = \"{backend}\"\n",
        users = users.display().to_string(),
        backend = backend.url("/mcp"),
    );
    let starts = builders.into_iter().map(|builder| {
        builder
            .replica(&url, None, &public_url)
            .store(&format!("cluster = {cluster}"))
            .section(&section)
            .start()
    });
    let gateways = futures::future::join_all(starts).await;
    Replicas {
        gateways,
        backend,
        _redis: redis,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_step_of_a_flow_may_land_on_another_replica() {
    let stack = three_replicas(Redis::Node(RedisServer::start().await), "").await;
    flow_over_replicas(&stack).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn replicas_count_an_address_against_one_rate_limit() {
    let redis = Redis::Node(RedisServer::start().await);
    let stack = three_replicas(redis, "[rate_limits]\nregister = 3").await;
    let metadata = json!({ "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none" });
    for i in 0..3 {
        let (status, body) = register(&stack.gateways[i % 3], metadata.clone()).await;
        assert_eq!(status, 201, "{body}");
    }
    for gateway in &stack.gateways {
        let response = register_response(gateway, &metadata).await;
        assert_eq!(response.status(), 429, "the fourth, on {}", gateway.origin);
        let wait: u64 = response.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&wait), "{wait}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn replicas_share_their_state_on_a_redis_cluster() {
    let stack = three_replicas(Redis::Cluster(RedisCluster::start().await), "").await;
    flow_over_replicas(&stack).await;
}

/// Register on B, authorize on C (signing in on A), the code on C, MCP on A and B; a replayed code;
/// 20 refreshes at once over the three; a revocation on A seen by B and C within a second.
async fn flow_over_replicas(stack: &Replicas) {
    let [a, b, c] = &stack.gateways[..] else {
        unreachable!()
    };
    // Register on B.
    let (status, client) = register(
        b,
        json!({ "redirect_uris": [REDIRECT], "grant_types": ["authorization_code", "refresh_token"],
                "token_endpoint_auth_method": "none" }),
    )
    .await;
    assert_eq!(status, 201, "{client}");
    let client = client["client_id"].as_str().unwrap().to_owned();
    // Authorize on C; the login and consent pages it sends the browser to are A's (the public URL).
    let pkce = Pkce::new();
    let url = authorize_url(c, &client, &pkce, &[("resource", &a.url("/mcp"))]);
    let redirect = authorize(a, &mut Agent::new(), &url, "alice", "wonderland").await;
    let code = redirect["code"].clone();
    // The code on C, the MCP requests on A and B.
    let (status, tokens) = token(c, &exchange(&client, &code, &pkce.verifier)).await;
    assert_eq!(status, 200, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(mcp_status(a, access).await, 200);
    assert_eq!(mcp_status(b, access).await, 200);
    assert_eq!(stack.backend.requests().len(), 2);
    // A session opened through A goes on through B and C; one no replica opened is unknown.
    let (status, session) = mcp_in_session(a, access, None).await;
    assert_eq!(status, 200);
    let session = session.expect("the backend opened a session");
    assert_eq!(mcp_in_session(b, access, Some(&session)).await.0, 200);
    assert_eq!(mcp_in_session(c, access, Some(&session)).await.0, 200);
    assert_eq!(mcp_in_session(c, access, Some("never-opened")).await.0, 404);
    // A replay of the code on B finds it used, and revokes what it issued.
    let (status, _) = token(b, &exchange(&client, &code, &pkce.verifier)).await;
    assert_eq!(status, 400, "a code is used once across replicas");

    // A second authorization, then 20 refreshes at once with its refresh token, spread over the
    // replicas: one chain, every caller served, the grant standing.
    let pkce = Pkce::new();
    let url = authorize_url(b, &client, &pkce, &[("resource", &a.url("/mcp"))]);
    let redirect = authorize(a, &mut Agent::new(), &url, "alice", "wonderland").await;
    let (status, tokens) = token(a, &exchange(&client, &redirect["code"], &pkce.verifier)).await;
    assert_eq!(status, 200, "{tokens}");
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let form = refreshing(client.as_str(), refresh.as_str());
    let refreshes = (0..20).map(|i| token(&stack.gateways[i % 3], &form));
    let answers = futures::future::join_all(refreshes).await;
    let mut successors: Vec<&str> = answers
        .iter()
        .map(|(status, body)| {
            assert_eq!(*status, 200, "{body}");
            body["refresh_token"].as_str().unwrap()
        })
        .collect();
    successors.dedup();
    assert_eq!(successors.len(), 1, "one chain: {successors:?}");
    let next = refreshing(client.as_str(), successors[0]);
    let (status, body) = token(c, &next).await;
    assert_eq!(status, 200, "the grant stands: {body}");
    let access = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(mcp_status(c, &access).await, 200);
    assert_eq!(mcp_status(b, &access).await, 200);
    let next = refreshing(client.as_str(), body["refresh_token"].as_str().unwrap());
    let (status, body) = token(b, &next).await;
    assert_eq!(status, 200, "{body}");
    let later_access = body["access_token"].as_str().unwrap().to_owned();

    // An access token revoked on its own on A: refused on A at once, on B and C within a second;
    // the grant's other access token still works.
    revoke(a, &access, &client).await;
    refused_everywhere_soon(&stack.gateways, &access).await;
    assert_eq!(mcp_status(b, &later_access).await, 200);

    // The grant revoked on A (its refresh token): the same for every token of it.
    revoke(a, body["refresh_token"].as_str().unwrap(), &client).await;
    refused_everywhere_soon(&stack.gateways, &later_access).await;
}

async fn revoke(gateway: &GatewayUnderTest, token: &str, client: &str) {
    let revoked = reqwest::Client::new()
        .post(gateway.url("/revoke"))
        .form(&[("token", token), ("client_id", client)])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
}

/// Asserts that the first replica refuses `access` at once (it revoked it), and the others within a
/// second.
async fn refused_everywhere_soon(gateways: &[GatewayUnderTest], access: &str) {
    let at = std::time::Instant::now();
    assert_eq!(mcp_status(&gateways[0], access).await, 401);
    for replica in &gateways[1..] {
        while mcp_status(replica, access).await != 401 {
            assert!(
                at.elapsed() < std::time::Duration::from_millis(1500),
                "{} still admits a token revoked on another replica",
                replica.origin
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_down_is_a_503_to_retry_and_redis_back_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut redis = RedisServer::start_persistent(dir.path()).await;
    let backend = ScriptedBackend::start().await;
    let users = users_file();
    let builder = GatewayBuilder::new();
    let public_url = builder.origin();
    let gateway = builder
        .replica(&redis.url(), None, &public_url)
        .section(&format!(
            "[provider]\nkind = \"local\"\nusers_file = {users:?}\n\n\
             [[routes]]\npath = \"/mcp\"\nupstream = \"{backend}\"\n",
            users = users.display().to_string(),
            backend = backend.url("/mcp"),
        ))
        .start()
        .await;
    let metadata = json!({ "redirect_uris": [REDIRECT], "grant_types": ["authorization_code", "refresh_token"],
                           "token_endpoint_auth_method": "none" });
    let (_, client) = register(&gateway, metadata.clone()).await;
    let client = client["client_id"].as_str().unwrap().to_owned();
    let pkce = Pkce::new();
    let url = authorize_url(&gateway, &client, &pkce, &[]);
    let redirect = authorize(&gateway, &mut Agent::new(), &url, "alice", "wonderland").await;
    let (_, tokens) = token(
        &gateway,
        &exchange(&client, &redirect["code"], &pkce.verifier),
    )
    .await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();

    redis.stop();
    // The authorization server says to come back, in JSON, never a 500.
    let response = register_response(&gateway, &metadata).await;
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "5");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable", "{body}");
    // Tokens already issued keep working, past the second after which a replica asks the store
    // about their grant again.
    let since = std::time::Instant::now();
    while since.elapsed() < std::time::Duration::from_millis(1500) {
        assert_eq!(mcp_status(&gateway, &access).await, 200);
    }

    // Back, from its append-only file: the client, the grant and its refresh token are all there,
    // and the gateway was not restarted.
    redis.restart().await;
    let form = refreshing(client.as_str(), refresh.as_str());
    let mut answer = token(&gateway, &form).await;
    // The connection comes back at the next request that finds Redis again.
    for _ in 0..20 {
        if answer.0 != 503 {
            break;
        }
        answer = token(&gateway, &form).await;
    }
    assert_eq!(answer.0, 200, "{}", answer.1);
    let (status, _) = register(&gateway, metadata).await;
    assert_eq!(status, 201);
}

/// A POST to `/mcp` in `session` (none: a new one); its status and the session it answered in.
async fn mcp_in_session(
    gateway: &GatewayUnderTest,
    access: &str,
    session: Option<&str>,
) -> (u16, Option<String>) {
    let mut request = reqwest::Client::new()
        .post(gateway.url("/mcp"))
        .bearer_auth(access)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#);
    if let Some(session) = session {
        request = request.header("mcp-session-id", session);
    }
    let response = request.send().await.unwrap();
    let session = response
        .headers()
        .get("mcp-session-id")
        .map(|v| v.to_str().unwrap().to_owned());
    (response.status().as_u16(), session)
}

/// A client of the replicas, signed in through them: its access token.
async fn signed_in(stack: &Replicas) -> String {
    let [a, b, _] = &stack.gateways[..] else {
        unreachable!()
    };
    let metadata = json!({ "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none" });
    let (_, client) = register(b, metadata).await;
    let client = client["client_id"].as_str().unwrap().to_owned();
    let pkce = Pkce::new();
    let url = authorize_url(b, &client, &pkce, &[("resource", &a.url("/mcp"))]);
    let redirect = authorize(a, &mut Agent::new(), &url, "alice", "wonderland").await;
    let (status, tokens) = token(b, &exchange(&client, &redirect["code"], &pkce.verifier)).await;
    assert_eq!(status, 200, "{tokens}");
    tokens["access_token"].as_str().unwrap().to_owned()
}

/// A GET of `session`'s stream on `/mcp`.
async fn open_stream(gateway: &GatewayUnderTest, access: &str, session: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(gateway.url("/mcp"))
        .bearer_auth(access)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", session)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_cut_by_a_replica_that_died_reopens_through_another() {
    use futures::StreamExt as _;
    let mut stack = three_replicas(Redis::Node(RedisServer::start().await), "").await;
    let access = signed_in(&stack).await;
    let (status, session) = mcp_in_session(&stack.gateways[0], &access, None).await;
    assert_eq!(status, 200);
    let session = session.expect("a session");
    let response = open_stream(&stack.gateways[0], &access, &session).await;
    assert_eq!(response.status(), 200);
    let mut stream = response.bytes_stream();
    let first = stream.next().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("data: first"));

    // The replica carrying the stream dies; the client sees its stream end.
    stack.gateways[0].process.stop();
    assert!(
        !matches!(stream.next().await, Some(Ok(_))),
        "the stream went on through a dead replica"
    );
    // It reconnects through another replica, in the same session.
    let response = open_stream(&stack.gateways[1], &access, &session).await;
    assert_eq!(
        response.status(),
        200,
        "the session goes on through another replica"
    );
    let mut stream = response.bytes_stream();
    let first = stream.next().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("data: first"));
    stack.backend.release();
}

/// A grant revoked through one replica ends the streams its tokens opened on the others within a
/// second, as it refuses their new requests.
#[tokio::test(flavor = "multi_thread")]
async fn a_revocation_on_one_replica_ends_the_streams_open_on_the_others_within_a_second() {
    let stack = three_replicas(Redis::Node(RedisServer::start().await), "").await;
    let [a, b, c] = &stack.gateways[..] else {
        unreachable!()
    };
    let tokens = integration_tests::oauth::signed_in(a, "/mcp", "alice", "wonderland").await;
    let access = tokens["access_token"].as_str().unwrap();
    let mut streams = Vec::new();
    for replica in [b, c] {
        streams.push(crate::kill_switch::stream(replica, access).await);
    }
    integration_tests::oauth::revoke(a, &tokens).await;
    let at = std::time::Instant::now();
    for stream in &mut streams {
        stream
            .ends_cleanly_within(std::time::Duration::from_secs(1))
            .await;
    }
    eprintln!("both streams ended {:?} after the revocation", at.elapsed());
    for replica in [b, c] {
        assert_eq!(mcp_status(replica, access).await, 401);
    }
}

/// `mcp-auth-gateway revoke --user` on the replicas' store (a Redis Cluster, whose grants live on
/// one slot's node) ends the user's grants on every replica: tokens refused and streams ended
/// within a second on each; another user's go on.
#[tokio::test(flavor = "multi_thread")]
async fn revoke_user_on_the_store_ends_their_streams_on_every_replica_within_a_second() {
    use crate::kill_switch::{grant_lines, stream};
    let stack = three_replicas(Redis::Cluster(RedisCluster::start().await), "").await;
    let [a, b, c] = &stack.gateways[..] else {
        unreachable!()
    };
    let alice = integration_tests::oauth::signed_in(a, "/mcp", "alice", "wonderland").await;
    let bob = integration_tests::oauth::signed_in(a, "/mcp", "bob", "builder").await;
    let (ok, printed) = c.command(&["grants"]).await;
    assert!(ok, "{printed}");
    assert_eq!(grant_lines(&printed).len(), 2, "{printed}");
    let alice_access = alice["access_token"].as_str().unwrap();
    let bob_access = bob["access_token"].as_str().unwrap();
    let mut streams = Vec::new();
    for replica in [a, b, c] {
        streams.push(stream(replica, alice_access).await);
    }
    let mut bobs = stream(c, bob_access).await;
    let (ok, printed) = b.command(&["revoke", "--user", "alice"]).await;
    assert!(ok, "{printed}");
    assert!(
        printed.contains("1 grant of the user alice revoked"),
        "{printed}"
    );
    let at = std::time::Instant::now();
    for stream in &mut streams {
        stream
            .ends_cleanly_within(std::time::Duration::from_secs(1))
            .await;
    }
    eprintln!(
        "alice's streams ended {:?} after the revocation",
        at.elapsed()
    );
    for replica in [a, b, c] {
        assert_eq!(mcp_status(replica, alice_access).await, 401);
        assert_eq!(mcp_status(replica, bob_access).await, 200);
    }
    stack.backend.release();
    bobs.until("data: second").await;
}
