//! The operator's kill switch, for the day someone leaves: `mcp-auth-gateway grants` lists what is
//! held in the configured store, and `mcp-auth-gateway revoke --user ID` (or `--client ID`) ends
//! every grant of that user or client while the gateway runs: their tokens are refused and their
//! open streams end within a second, and everyone else's go on. (Across three replicas on Redis:
//! `replicas.rs`.)

use std::time::Duration;

use integration_tests::oauth::refreshing;
use integration_tests::oauth::{signed_in, token};
use integration_tests::sse::OpenStream;
use integration_tests::{GatewayBuilder, GatewayUnderTest, ScriptedBackend};
use serde_json::Value;

use crate::oauth_flow::users_file;
use crate::oauth_rules::mcp_status;

async fn stack(backend: &ScriptedBackend) -> GatewayUnderTest {
    GatewayBuilder::new()
        .section(&format!(
            "[provider]\nkind = \"local\"\nusers_file = {:?}\n\n\
             [[routes]]\npath = \"/mcp\"\nupstream = \"{}\"\n",
            users_file().display().to_string(),
            backend.url("/mcp"),
        ))
        .start()
        .await
}

/// A GET stream of `/mcp` with `access`, its first event come.
pub async fn stream(gateway: &GatewayUnderTest, access: &str) -> OpenStream {
    let response = reqwest::Client::new()
        .get(gateway.url("/mcp"))
        .bearer_auth(access)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut stream = OpenStream::of(response);
    stream.until("data: first").await;
    stream
}

/// The lines `grants` printed, each split into its columns, under the header.
pub fn grant_lines(printed: &str) -> Vec<Vec<String>> {
    let mut lines = printed.lines();
    assert_eq!(
        lines.next(),
        Some("GRANT\tUSER\tCLIENT\tSCOPES\tCREATED\tLAST REFRESHED"),
        "{printed}"
    );
    lines
        .map(|l| l.split('\t').map(str::to_owned).collect())
        .collect()
}

fn refresh_form(tokens: &Value) -> Vec<(&str, &str)> {
    refreshing(
        tokens["client_id"].as_str().unwrap(),
        tokens["refresh_token"].as_str().unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn revoke_user_ends_their_grants_tokens_and_streams_while_the_gateway_runs() {
    let backend = ScriptedBackend::start().await;
    let gateway = stack(&backend).await;
    // alice signs in from two clients; bob from one; alice's first client refreshes once.
    let alice_cli = signed_in(&gateway, "/mcp", "alice", "wonderland").await;
    let alice_ide = signed_in(&gateway, "/mcp", "alice", "wonderland").await;
    let bob = signed_in(&gateway, "/mcp", "bob", "builder").await;
    let (status, mut refreshed) = token(&gateway, &refresh_form(&alice_cli)).await;
    assert_eq!(status, 200, "{refreshed}");
    refreshed["client_id"] = alice_cli["client_id"].clone();
    let alice_cli = refreshed;

    let (ok, printed) = gateway.command(&["grants"]).await;
    assert!(ok, "{printed}");
    let lines = grant_lines(&printed);
    assert_eq!(lines.len(), 3, "{printed}");
    let users: Vec<&str> = lines.iter().map(|l| l[1].as_str()).collect();
    assert_eq!(users.iter().filter(|u| **u == "alice").count(), 2);
    assert!(users.contains(&"bob"));
    assert!(lines.iter().all(|l| l[3] == "mcp" && l[4].ends_with('Z')));
    assert_eq!(
        lines.iter().filter(|l| l[5] != "never").count(),
        1,
        "one grant was refreshed: {printed}"
    );
    let (ok, printed) = gateway.command(&["grants", "--user", "bob"]).await;
    assert!(ok);
    assert_eq!(grant_lines(&printed).len(), 1);

    let alice_access = [
        alice_cli["access_token"].as_str().unwrap().to_owned(),
        alice_ide["access_token"].as_str().unwrap().to_owned(),
    ];
    let mut alice_streams = Vec::new();
    for access in &alice_access {
        alice_streams.push(stream(&gateway, access).await);
    }
    let bob_access = bob["access_token"].as_str().unwrap();
    let mut bob_stream = stream(&gateway, bob_access).await;

    let (ok, printed) = gateway.command(&["revoke", "--user", "alice"]).await;
    assert!(ok, "{printed}");
    assert!(
        printed.contains("2 grants of the user alice revoked"),
        "{printed}"
    );
    let at = std::time::Instant::now();
    for stream in &mut alice_streams {
        stream.ends_cleanly_within(Duration::from_secs(1)).await;
    }
    eprintln!(
        "alice's streams ended {:?} after the revocation",
        at.elapsed()
    );
    for access in &alice_access {
        assert_eq!(mcp_status(&gateway, access).await, 401);
    }
    let (status, answer) = token(&gateway, &refresh_form(&alice_ide)).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (ok, printed) = gateway.command(&["grants", "--user", "alice"]).await;
    assert!(ok);
    assert_eq!(printed, "no grants held by the user alice\n");

    // bob's grant, token and stream are untouched.
    assert_eq!(mcp_status(&gateway, bob_access).await, 200);
    backend.release();
    bob_stream.until("data: second").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn revoke_client_ends_that_clients_grants_and_a_bad_command_says_why() {
    let backend = ScriptedBackend::start().await;
    let gateway = stack(&backend).await;
    let first = signed_in(&gateway, "/mcp", "alice", "wonderland").await;
    let second = signed_in(&gateway, "/mcp", "alice", "wonderland").await;
    let client = first["client_id"].as_str().unwrap();
    let (ok, printed) = gateway.command(&["revoke", "--client", client]).await;
    assert!(ok, "{printed}");
    assert!(
        printed.contains(&format!("1 grant of the client {client} revoked")),
        "{printed}"
    );
    assert_eq!(
        mcp_status(&gateway, first["access_token"].as_str().unwrap()).await,
        401
    );
    assert_eq!(
        mcp_status(&gateway, second["access_token"].as_str().unwrap()).await,
        200
    );
    // Nothing to name, or both: refused with the reason, nothing revoked.
    for args in [&["revoke"][..], &["revoke", "--user", "a", "--client", "b"]] {
        let (ok, printed) = gateway.command(args).await;
        assert!(!ok, "{args:?}: {printed}");
        assert!(
            printed.contains("--user") || printed.contains("--client"),
            "{printed}"
        );
    }
    assert_eq!(
        mcp_status(&gateway, second["access_token"].as_str().unwrap()).await,
        200
    );
}

/// A reload that takes a user out of the users file, or gives them other groups, ends what they
/// hold: their grants, their tokens, their open streams; the others' go on.
#[tokio::test(flavor = "multi_thread")]
async fn a_reload_that_removes_or_regroups_a_user_ends_their_grants_and_streams() {
    use crate::oauth_flow::hash_password;
    let backend = ScriptedBackend::start().await;
    let users = tempfile::NamedTempFile::new().unwrap();
    let user = |name: &str, password: &str, groups: &str| {
        format!(
            "[[users]]\nusername = \"{name}\"\npassword_hash = \"{}\"\ngroups = [{groups}]\n\n",
            hash_password(password)
        )
    };
    let (alice, bob, carol) = (
        user("alice", "wonderland", "\"admins\""),
        user("bob", "builder", ""),
        user("carol", "singer", "\"staff\""),
    );
    std::fs::write(users.path(), format!("{alice}{bob}{carol}")).unwrap();
    let mut gateway = GatewayBuilder::new()
        .section(&format!(
            "[provider]\nkind = \"local\"\nusers_file = {:?}\n\n\
             [[routes]]\npath = \"/mcp\"\nupstream = \"{}\"\n",
            users.path().display().to_string(),
            backend.url("/mcp"),
        ))
        .start()
        .await;
    let mut held = Vec::new();
    for (name, password) in [
        ("alice", "wonderland"),
        ("bob", "builder"),
        ("carol", "singer"),
    ] {
        let tokens = signed_in(&gateway, "/mcp", name, password).await;
        let access = tokens["access_token"].as_str().unwrap().to_owned();
        let open = stream(&gateway, &access).await;
        held.push((access, open));
    }
    // alice is taken out; carol moves to another group; bob stays as he is.
    let regrouped = user("carol", "singer", "\"contractors\"");
    std::fs::write(users.path(), format!("{bob}{regrouped}")).unwrap();
    let config = gateway.config.clone();
    let line = gateway.reload(&config).await;
    assert!(line.contains("reloaded"), "{line}");
    let [
        (alice, alice_stream),
        (bob, bob_stream),
        (carol, carol_stream),
    ] = &mut held[..]
    else {
        unreachable!()
    };
    alice_stream
        .ends_cleanly_within(Duration::from_secs(1))
        .await;
    carol_stream
        .ends_cleanly_within(Duration::from_secs(1))
        .await;
    assert_eq!(mcp_status(&gateway, alice).await, 401);
    assert_eq!(mcp_status(&gateway, carol).await, 401);
    assert_eq!(mcp_status(&gateway, bob).await, 200);
    backend.release();
    bob_stream.until("data: second").await;
    assert!(
        gateway
            .process
            .stderr()
            .contains("ended the grants of users the users file removed or changed"),
        "the log says why"
    );
}
