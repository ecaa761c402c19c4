//! The signed-in user's connections page in a real browser (Debian's Chromium through
//! playwright-core), with a screenshot of each page kept in `target/e2e-screenshots/`: signing in
//! to it, what it lists, a form another site posts refused, disconnecting (revoked at the backend's
//! server, RFC 7009) and revoking the app's grant.

use integration_tests::{node, workspace_root};
use serde_json::json;

use super::{Remote, audit_trail, audited_gateway_with_alice_connected, plan};

#[tokio::test(flavor = "multi_thread")]
async fn a_user_sees_disconnects_and_revokes_on_their_page_and_another_site_cannot() {
    assert!(
        std::path::Path::new("/usr/bin/chromium").is_file(),
        "Chromium is missing: `apt-get install chromium` (.ci/run does)"
    );
    let remote = Remote::start(3600).await;
    let (gateway, _) = audited_gateway_with_alice_connected(&remote).await;
    // Bob's connection and grant are his: never on alice's page, never touched by her.
    let bob = node::run("connections-flow.mjs", &plan(&gateway, "bob", "builder")).await;
    assert_eq!(bob["whoami"]["sub"], "bob", "{bob:#}");

    let screenshots = workspace_root().join("target/e2e-screenshots");
    let report = node::run(
        "connections-page.mjs",
        &json!({
            "url": gateway.url("/connections"),
            "username": "alice",
            "password": "wonderland",
            "screenshots": screenshots,
        }),
    )
    .await;
    assert!(report.get("error").is_none(), "{report:#}");
    assert_eq!(
        report["titles"],
        json!([
            "Sign in",
            "Your connections",
            "Your connections",
            "Your connections"
        ]),
        "{report:#}"
    );
    for path in report["screenshots"].as_array().unwrap() {
        let bytes = std::fs::read(path.as_str().unwrap()).unwrap();
        assert!(
            bytes.starts_with(b"\x89PNG") && bytes.len() > 1000,
            "{path} is a real screenshot"
        );
    }
    let issuer = format!("http://127.0.0.1:{}", remote.as_port);
    let listed = report["listed"].as_str().unwrap();
    assert!(
        listed.contains("alice")
            && listed.contains("/tracker")
            && listed.contains(&issuer)
            && listed.contains("Connections Test App")
            && !listed.contains("bob"),
        "{listed}"
    );

    // The form another site posted came without the session (a `Lax` cookie stays home), and
    // the connection is still there; the page's own form without its token is refused too.
    assert_eq!(report["forged"]["status"], 401, "{report:#}");
    assert!(
        report["forged"]["after"]
            .as_str()
            .unwrap()
            .contains(&format!("/tracker at {issuer}")),
        "{report:#}"
    );
    assert_eq!(report["emptyToken"], 403, "{report:#}");

    // Disconnected: gone from the page, and its token revoked at the server; bob's untouched.
    let after = report["afterDisconnect"].as_str().unwrap();
    let (connected, apps) = after.split_once("Apps you signed in to").unwrap();
    assert!(
        !connected.contains("/tracker") && apps.contains("Connections Test App"),
        "{after}"
    );
    assert_eq!(remote.stats().await["revoked"], 1);
    let after = report["afterRevoke"].as_str().unwrap();
    assert!(!after.contains("Connections Test App"), "{after}");

    // Her app's grant is over; bob's is in force.
    let (ok, grants) = gateway.command(&["grants"]).await;
    assert!(ok, "{grants}");
    assert!(
        grants.contains("bob") && !grants.contains("alice"),
        "{grants}"
    );
    let audit = audit_trail(&gateway, |text| text.contains(r#""reason":"user""#)).await;
    assert!(
        audit.contains(r#""event":"disconnected","route":"/tracker","user":"alice""#),
        "{audit}"
    );
}
