//! Connections: a route whose backend is a remote MCP server with its own OAuth (the official
//! TypeScript SDK server behind `requireBearerAuth`, trusting a real authorization server,
//! `oidc-provider`), each user connecting their own account there through one sign-in at the
//! gateway, driven by the official TypeScript SDK client. Here the harness and the sign-in itself;
//! what is refused in [`refusals`]; refreshes, refusals by the backend, revocation and replicas in
//! [`lifetime`]; the user's own page in [`page`]; the official conformance suite's client
//! scenarios in [`conformance`].

mod conformance;
mod lifetime;
mod page;
mod refusals;

use base64::Engine as _;
use integration_tests::{
    GatewayBuilder, GatewayUnderTest, Running, free_port, node, workspace_root,
};
use serde_json::{Value, json};

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
pub fn connecting(builder: GatewayBuilder, remote: &Remote, route_extra: &str) -> GatewayBuilder {
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

/// A gateway like [`connected_gateway`]'s keeping an audit trail (`audit.jsonl`), at which alice
/// has signed in and connected (what her app reported).
pub async fn audited_gateway_with_alice_connected(remote: &Remote) -> (GatewayUnderTest, Value) {
    let gateway = connecting(
        GatewayBuilder::new().section("[audit]\nfile = \"audit.jsonl\"\n"),
        remote,
        "",
    )
    .start()
    .await;
    let alice = node::run(
        "connections-flow.mjs",
        &plan(&gateway, "alice", "wonderland"),
    )
    .await;
    assert_eq!(alice["whoami"]["sub"], "alice", "{alice:#}");
    (gateway, alice)
}

/// The gateway's audit trail (`audit.jsonl` in its directory) once `complete` says it is: the
/// gateway writes it in batches, within 100 ms (read as it is after 5 s).
pub async fn audit_trail(gateway: &GatewayUnderTest, complete: impl Fn(&str) -> bool) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let text = std::fs::read_to_string(gateway.dir().join("audit.jsonl")).unwrap_or_default();
        if complete(&text) || std::time::Instant::now() > deadline {
            return text;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

pub fn plan(gateway: &GatewayUnderTest, username: &str, password: &str) -> Value {
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
