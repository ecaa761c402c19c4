//! Connections: a route whose backend is a remote MCP server with its own OAuth (the official
//! TypeScript SDK server behind `requireBearerAuth`, trusting a real authorization server,
//! `oidc-provider`), each user connecting their own account there through one sign-in at the
//! gateway, driven by the official TypeScript SDK client.

use base64::Engine as _;
use integration_tests::{
    GatewayBuilder, GatewayUnderTest, RedisServer, Running, free_port, node, workspace_root,
};
use serde_json::{Value, json};

use integration_tests::oauth::{
    Agent, Pkce, authorize_url, decide, public_client, query_of, to_consent,
};

use super::oauth_flow::users_file;

/// The remote server: its authorization server and its MCP endpoint (`tests/e2e/remote-server.mjs`).
pub struct Remote {
    pub as_port: u16,
    pub mcp_port: u16,
    process: Running,
}

impl Remote {
    /// Started, its access tokens living `access_token_ttl` seconds; ready once it says so.
    pub async fn start(access_token_ttl: u64) -> Self {
        Self::start_with(json!({ "accessTokenTtl": access_token_ttl })).await
    }

    /// Started with `plan` (`remote-server.mjs`'s, its ports added).
    pub async fn start_with(mut plan: Value) -> Self {
        let (as_port, mcp_port) = (free_port(), free_port());
        plan["asPort"] = json!(as_port);
        plan["mcpPort"] = json!(mcp_port);
        let process = Running::start(
            &node::node_for("e2e"),
            &[
                workspace_root()
                    .join("tests/e2e/remote-server.mjs")
                    .to_str()
                    .unwrap(),
                &plan.to_string(),
            ],
            &[],
        );
        let said = process.wait_for_output(|out| out.contains("ready")).await;
        assert!(
            said.contains("ready"),
            "the remote server did not start: {said}"
        );
        Self {
            as_port,
            mcp_port,
            process,
        }
    }

    pub fn mcp_url(&self) -> String {
        format!("http://127.0.0.1:{}/mcp", self.mcp_port)
    }

    /// What it saw: the tokens it was sent (SHA-256), how many it refused, the clients registered.
    pub async fn stats(&self) -> Value {
        reqwest::get(format!("http://127.0.0.1:{}/_stats", self.mcp_port))
            .await
            .unwrap()
            .json()
            .await
            .unwrap_or_else(|e| panic!("stats: {e}; {}", self.process.stderr()))
    }
}

/// A gateway whose `/tracker` route connects each user to `remote` (on loopback, so private
/// addresses are allowed), with the `local` provider's alice and bob, and `route_extra` lines in
/// `[routes.oauth]`.
pub async fn connected_gateway(remote: &Remote, route_extra: &str) -> GatewayUnderTest {
    connecting(GatewayBuilder::new(), remote, route_extra)
        .start()
        .await
}

/// `builder` with what [`connected_gateway`] has.
fn connecting(builder: GatewayBuilder, remote: &Remote, route_extra: &str) -> GatewayBuilder {
    builder
        .env(
            "TOKEN_KEY",
            &base64::engine::general_purpose::STANDARD.encode([9u8; 32]),
        )
        .store("token_key_env = \"TOKEN_KEY\"")
        .section(&format!(
            "[provider]\nkind = \"local\"\nusers_file = {users:?}\n\n\
             [[routes]]\npath = \"/tracker\"\nupstream = \"{upstream}\"\ncredentials = \"oauth\"\n\
             [routes.oauth]\nallow_private_network = true\n{route_extra}\n",
            users = users_file().display().to_string(),
            upstream = remote.mcp_url(),
        ))
}

fn plan(gateway: &GatewayUnderTest, username: &str, password: &str) -> Value {
    json!({ "url": gateway.url("/tracker"), "username": username, "password": password })
}

#[tokio::test(flavor = "multi_thread")]
async fn each_user_signs_in_once_and_the_remote_server_gets_their_own_token() {
    let remote = Remote::start(3600).await;
    let gateway = connected_gateway(&remote, "").await;

    let alice = node::run(
        "connections-flow.mjs",
        &plan(&gateway, "alice", "wonderland"),
    )
    .await;
    assert!(alice.get("error").is_none(), "{alice:#}");
    // One sign-in: the gateway's login and consent, then the remote server's own sign-in and
    // consent, back at the gateway's callback, and only then the app's code.
    assert_eq!(
        node::forms(&alice),
        ["login", "consent", "upstream-login", "upstream-consent"],
        "{alice:#}"
    );
    let paths = node::visited_paths(&alice);
    assert!(paths.contains(&"/connect/callback"), "{paths:?}");
    assert!(alice["redirect"]["code"].is_string(), "{alice:#}");
    assert_eq!(alice["tools"], json!(["whoami"]));
    assert_eq!(alice["whoami"]["sub"], "alice", "{alice:#}");

    let bob = node::run("connections-flow.mjs", &plan(&gateway, "bob", "builder")).await;
    assert!(bob.get("error").is_none(), "{bob:#}");
    assert_eq!(bob["whoami"]["sub"], "bob", "{bob:#}");
    assert_ne!(
        bob["whoami"]["token"], alice["whoami"]["token"],
        "each user's own token"
    );

    let stats = remote.stats().await;
    // The gateway registered itself once, at its callback, and both users connected through it.
    let registered = stats["registered"].as_array().unwrap();
    assert_eq!(registered.len(), 1, "{stats:#}");
    assert_eq!(
        registered[0]["redirect_uris"],
        json!([gateway.url("/connect/callback")])
    );
    // Never the client's token at the gateway: the remote server saw only its own users' tokens.
    let seen = stats["seen"].as_array().unwrap();
    for app in [&alice, &bob] {
        assert!(
            !seen.contains(&app["gatewayAccessToken"]),
            "the client's token reached the remote server"
        );
    }
    assert_eq!(stats["refused"], 0, "{stats:#}");
}

/// A sign-in through a gateway in front of a remote server started with `remote_plan`: the
/// flow's report, and what the remote server saw.
async fn refused_sign_in(remote_plan: Value) -> (Value, Value) {
    let remote = Remote::start_with(remote_plan).await;
    let gateway = connected_gateway(&remote, "").await;
    let report = node::run(
        "connections-flow.mjs",
        &plan(&gateway, "alice", "wonderland"),
    )
    .await;
    (report, remote.stats().await)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backend_or_server_that_is_wrong_is_refused_with_a_clear_error_and_nothing_kept() {
    for (case, says, registers) in [
        (
            json!({ "authServer": "issuer-mismatch" }),
            "metadata names the issuer",
            false,
        ),
        (
            json!({ "authServer": "no-pkce" }),
            "does not support PKCE with S256",
            false,
        ),
        (
            json!({ "resource": "http://127.0.0.1:1/elsewhere" }),
            "metadata is for http://127.0.0.1:1/elsewhere",
            false,
        ),
        (
            json!({ "authServer": "no-access-token" }),
            "answer is not valid: the token response",
            true,
        ),
    ] {
        let (report, stats) = refused_sign_in(case.clone()).await;
        // The app's sign-in ends with an error it can show, naming the cause; it gets no code.
        let denied = &report["denied"];
        assert!(denied["error"].is_string(), "{case}: {report:#}");
        assert!(denied.get("code").is_none(), "{case}: {report:#}");
        let description = denied["error_description"].as_str().unwrap_or_default();
        assert!(description.contains(says), "{case}: {description:?}");
        // No token reached the backend, and the gateway registered only where discovery passed.
        assert_eq!(stats["seen"], json!([]), "{case}: {stats:#}");
        assert_eq!(
            !stats["registered"].as_array().unwrap().is_empty(),
            registers,
            "{case}: {stats:#}"
        );
    }
}

/// Signs alice in at `gateway` in `agent` up to where the browser is sent on to `remote`'s server:
/// the `state` it carries there.
async fn sent_on(gateway: &GatewayUnderTest, remote: &Remote, agent: &mut Agent) -> String {
    let client = public_client(gateway).await;
    let pkce = Pkce::new();
    let url = authorize_url(
        gateway,
        &client,
        &pkce,
        &[("resource", &gateway.url("/tracker"))],
    );
    let consent = to_consent(gateway, agent, &url, "alice", "wonderland")
        .await
        .expect("the consent page");
    let onwards = decide(gateway, agent, &consent, "approve").await;
    assert!(
        onwards.starts_with(&format!("http://127.0.0.1:{}/", remote.as_port)),
        "sent on to the remote server: {onwards}"
    );
    query_of(&onwards)["state"].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_callback_with_an_unknown_state_another_browser_or_another_issuer_connects_no_one() {
    let remote = Remote::start(3600).await;
    let gateway = connected_gateway(&remote, "").await;
    let mut agent = Agent::new();

    // A state the gateway never sent.
    let (status, _, page) = agent
        .get(&gateway.url("/connect/callback?state=forged&code=x"))
        .await;
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("unknown or expired"), "{page}");

    // A real sign-in, sent on to the remote server. Its link, followed by another browser (a victim
    // signed in there, say), must not connect the first user with the second's account: the flow
    // ends before any code is exchanged.
    let state = sent_on(&gateway, &remote, &mut agent).await;
    let issuer = format!("http://127.0.0.1:{}", remote.as_port);
    let back = format!(
        "{}?state={state}&code=x&iss={}",
        gateway.url("/connect/callback"),
        url::form_urlencoded::byte_serialize(issuer.as_bytes()).collect::<String>()
    );
    let (status, _, page) = Agent::new().get(&back).await;
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("another browser"), "{page}");
    assert_eq!(
        remote.stats().await["tokenRequests"],
        0,
        "no code was exchanged"
    );
    let (status, _, page) = agent.get(&back).await;
    assert_eq!(status, 400, "the flow is spent: {page}");

    // Another sign-in; the browser comes back naming another issuer.
    let state = sent_on(&gateway, &remote, &mut agent).await;
    let forged = format!(
        "{}?state={state}&code=x&iss=http%3A%2F%2Fevil.example",
        gateway.url("/connect/callback")
    );
    let (status, location, body) = agent.get(&forged).await;
    assert_eq!(status, 302, "{body}");
    let back = query_of(&location.unwrap());
    assert_eq!(back["error"], "server_error", "{back:?}");
    assert!(
        back["error_description"].contains("names the issuer"),
        "{back:?}"
    );
    assert!(!back.contains_key("code"));
    // The flow is spent: the right issuer afterwards finds nothing to complete.
    let (status, _, page) = agent
        .get(&format!(
            "{}?state={state}&code=x",
            gateway.url("/connect/callback")
        ))
        .await;
    assert_eq!(status, 400, "{page}");
    assert_eq!(remote.stats().await["tokenRequests"], 0);
    assert_eq!(remote.stats().await["seen"], json!([]));
}

/// The sum of the samples of `name` whose labels include each of `labels`.
fn sample(metrics: &std::collections::BTreeMap<String, f64>, name: &str, labels: &[&str]) -> f64 {
    metrics
        .iter()
        .filter(|(series, _)| {
            series.starts_with(&format!("{name}{{")) && labels.iter().all(|l| series.contains(l))
        })
        .map(|(_, value)| value)
        .sum()
}

/// The remote server's control `name` (`remote-server.mjs`), as a step of the flow.
fn control(remote: &Remote, name: &str) -> Value {
    json!({ "post": format!("http://127.0.0.1:{}/{name}", remote.mcp_port) })
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_are_refreshed_and_a_server_that_forgot_the_user_gets_them_to_sign_in_again() {
    // Tokens that live 30 s are refreshed before every use (a minute ahead of their expiry).
    let remote = Remote::start(30).await;
    let gateway = connected_gateway(&remote, "").await;
    let mut plan = plan(&gateway, "alice", "wonderland");
    plan["steps"] = json!(["whoami", "whoami", control(&remote, "_forget"), "whoami"]);
    let report = node::run("connections-flow.mjs", &plan).await;
    assert!(report.get("error").is_none(), "{report:#}");
    let steps = &report["steps"];

    // Refreshed: another token of alice's at each use.
    assert_eq!(steps[1]["whoami"]["sub"], "alice", "{report:#}");
    assert_ne!(steps[0]["whoami"]["token"], steps[1]["whoami"]["token"]);
    assert!(steps[1].get("signedInAgain").is_none(), "{report:#}");

    // The server forgot everything: the refresh is refused, the connection ends, the app is asked
    // to sign in again (its own refresh at the gateway refused too), and that sign-in connects
    // alice anew, the gateway registering again at the server that forgot it.
    assert!(steps[3]["signedInAgain"]["code"].is_string(), "{report:#}");
    assert_eq!(steps[3]["whoami"]["sub"], "alice", "{report:#}");
    let stats = remote.stats().await;
    assert_eq!(
        stats["registered"].as_array().unwrap().len(),
        2,
        "{stats:#}"
    );

    let metrics = gateway.metrics().await;
    let refreshes = |result: &str| {
        sample(
            &metrics,
            "mcp_gateway_connection_refreshes_total",
            &["route=\"/tracker\"", &format!("result=\"{result}\"")],
        )
    };
    assert!(refreshes("ok") >= 1.0, "{metrics:#?}");
    assert!(refreshes("refused") >= 1.0, "{metrics:#?}");
    let completed = sample(
        &metrics,
        "mcp_gateway_connections_completed_total",
        &["route=\"/tracker\""],
    );
    assert_eq!(completed, 2.0, "{metrics:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_the_backend_refuses_is_refreshed_and_more_scope_reconnects_the_user() {
    let remote = Remote::start(3600).await;
    let gateway = connected_gateway(&remote, "").await;
    let mut plan = plan(&gateway, "alice", "wonderland");
    plan["steps"] = json!([
        "whoami",
        control(&remote, "_refuse-next"),
        "whoami",
        control(&remote, "_require-write"),
        "whoami",
    ]);
    let report = node::run("connections-flow.mjs", &plan).await;
    assert!(report.get("error").is_none(), "{report:#}");
    let steps = &report["steps"];
    let first = &steps[0]["whoami"];
    assert_eq!(first["scopes"], json!(["tracker:read"]), "{report:#}");

    // A token the backend refused though it was in force: the client got the gateway's own 401,
    // refreshed its token and tried again, and the gateway had refreshed alice's token at the
    // backend's server meanwhile: no new sign-in.
    let after_refusal = &steps[2];
    assert!(after_refusal.get("signedInAgain").is_none(), "{report:#}");
    assert_eq!(after_refusal["whoami"]["sub"], "alice");
    assert_ne!(
        after_refusal["whoami"]["token"], first["token"],
        "refreshed"
    );

    // The backend wants tracker:write: alice signs in again and connects again, asked for it.
    let more = &steps[4];
    assert!(more["signedInAgain"]["code"].is_string(), "{report:#}");
    assert_eq!(
        more["whoami"]["scopes"],
        json!(["tracker:read", "tracker:write"]),
        "{report:#}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn revoking_a_user_ends_their_connections_and_they_must_connect_again() {
    let remote = Remote::start(3600).await;
    let gateway = connected_gateway(&remote, "").await;
    let alice = node::run(
        "connections-flow.mjs",
        &plan(&gateway, "alice", "wonderland"),
    )
    .await;
    assert_eq!(alice["whoami"]["sub"], "alice", "{alice:#}");

    let (ok, said) = gateway.command(&["revoke", "--user", "alice"]).await;
    assert!(ok, "{said}");
    assert!(
        said.contains("1 connection of the user alice to backends ended"),
        "{said}"
    );
    let (ok, said) = gateway.command(&["revoke", "--user", "alice"]).await;
    assert!(ok && !said.contains("connection"), "ended once: {said}");

    // Signing in again goes through the remote server's sign-in again: the connection was gone.
    let again = node::run(
        "connections-flow.mjs",
        &plan(&gateway, "alice", "wonderland"),
    )
    .await;
    assert!(again.get("error").is_none(), "{again:#}");
    assert!(
        node::visited_paths(&again).contains(&"/connect/callback"),
        "{again:#}"
    );
    assert_eq!(again["whoami"]["sub"], "alice");
    assert_ne!(again["whoami"]["token"], alice["whoami"]["token"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn on_three_replicas_each_step_may_land_anywhere_and_the_connection_is_shared() {
    // Tokens that live 30 s: every use refreshes, on whichever replica it lands.
    let remote = Remote::start(30).await;
    let redis = RedisServer::start().await;
    let builders: Vec<GatewayBuilder> = (0..3).map(|_| GatewayBuilder::new()).collect();
    let public_url = builders[0].origin();
    let starts = builders.into_iter().map(|builder| {
        connecting(
            builder.replica(&redis.url(), None, &public_url),
            &remote,
            "",
        )
        .start()
    });
    let replicas = futures::future::join_all(starts).await;
    let mut plan = json!({
        "url": format!("{public_url}/tracker"), "username": "alice", "password": "wonderland",
        "publicUrl": public_url,
        "replicas": replicas.iter().map(|r| r.url("")).collect::<Vec<_>>(),
        "steps": ["whoami", "whoami", "whoami", "whoami"],
    });
    let report = node::run("connections-flow.mjs", &plan).await;
    assert!(report.get("error").is_none(), "{report:#}");
    let steps = report["steps"].as_array().unwrap();
    for step in steps {
        assert_eq!(step["whoami"]["sub"], "alice", "{report:#}");
        assert!(step.get("signedInAgain").is_none(), "{report:#}");
    }
    // The app's calls went to every replica.
    for replica in &replicas {
        let metrics = replica.metrics().await;
        let served = sample(
            &metrics,
            "mcp_gateway_requests_total",
            &["route=\"/tracker\""],
        );
        assert!(served > 0.0, "{} served none", replica.url(""));
    }
    // One registration for the three, kept in Redis; each use a refreshed token.
    let stats = remote.stats().await;
    assert_eq!(
        stats["registered"].as_array().unwrap().len(),
        1,
        "{stats:#}"
    );
    let tokens: std::collections::BTreeSet<&str> = steps
        .iter()
        .map(|s| s["whoami"]["token"].as_str().unwrap())
        .collect();
    assert_eq!(tokens.len(), steps.len(), "{report:#}");

    // Bob, on the same replicas, has his own connection.
    plan["username"] = json!("bob");
    plan["password"] = json!("builder");
    plan["steps"] = json!(["whoami"]);
    let bob = node::run("connections-flow.mjs", &plan).await;
    assert_eq!(bob["whoami"]["sub"], "bob", "{bob:#}");
    assert!(!tokens.contains(bob["whoami"]["token"].as_str().unwrap()));
}
