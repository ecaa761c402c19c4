//! A connection's life: its tokens refreshed, a backend that refuses them or wants more scope, a
//! server that forgot the user, the operator revoking the user, and all of it on three replicas.

use integration_tests::{GatewayBuilder, RedisServer, node};
use serde_json::{Value, json};

use super::{
    Remote, audit_trail, audited_gateway_with_alice_connected, connected_gateway, connecting, plan,
};

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

    // A token the backend refused though it was in force: the gateway refreshed alice's token at
    // the backend's server and sent the call again with it. The app saw no refusal at all, and
    // signed in no more.
    let after_refusal = &steps[2];
    assert!(after_refusal.get("signedInAgain").is_none(), "{report:#}");
    assert_eq!(after_refusal["unauthorized"], 0, "{report:#}");
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
    let (gateway, alice) = audited_gateway_with_alice_connected(&remote).await;

    let (ok, said) = gateway.command(&["revoke", "--user", "alice"]).await;
    assert!(ok, "{said}");
    assert!(
        said.contains("1 connection of the user alice to backends ended"),
        "{said}"
    );
    let (ok, said) = gateway.command(&["revoke", "--user", "alice"]).await;
    assert!(ok && !said.contains("connection"), "ended once: {said}");

    // The audit trail has her connecting (the gateway's line, written within 100 ms) and the
    // operator ending it (the command's own line), once each, and no token.
    // Each line as it is but its time, which every line has.
    let events = |text: &str| -> Vec<Value> {
        text.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|l| l.get("event").is_some())
            .map(|mut l| {
                let time = l.as_object_mut().unwrap().remove("time");
                assert!(time.is_some_and(|t| t.is_string()), "{l}");
                l
            })
            .collect()
    };
    let audit = audit_trail(&gateway, |text| events(text).len() >= 2).await;
    let issuer = format!("http://127.0.0.1:{}", remote.as_port);
    assert_eq!(
        events(&audit),
        [
            json!({"event": "connected", "route": "/tracker", "user": "alice", "issuer": issuer}),
            json!({"event": "disconnected", "route": "/tracker", "user": "alice", "issuer": issuer, "reason": "operator"}),
        ],
        "{audit}"
    );

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
