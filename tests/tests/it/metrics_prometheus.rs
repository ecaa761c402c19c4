//! The metrics as an operator's monitoring sees them: a real Prometheus (Debian's package) scrapes a
//! gateway that has run the whole sign-in flow through an OpenID provider with a policy on its route,
//! and one that serves HTTPS; every metric the README lists is there, nothing unlisted is, the
//! shipped alert rules load and evaluate, and promtool finds nothing wrong with either.

use std::collections::BTreeSet;

use integration_tests::prometheus::{JOB, PrometheusServer, promtool, shipped};
use integration_tests::{node, workspace_root};
use serde_json::Value;

use crate::oauth_oidc::{oidc_stack_routed, plan};

/// The metric names in the README's Metrics table (`process_*` aside).
fn readme_metrics() -> BTreeSet<String> {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
    let table = readme
        .split("### Metrics")
        .nth(1)
        .expect("a Metrics section");
    table
        .lines()
        .filter_map(|l| l.strip_prefix("| `mcp_gateway_"))
        .map(|l| format!("mcp_gateway_{}", &l[..l.find('`').unwrap()]))
        .collect()
}

/// A sample's metric name, with a histogram's `_bucket`, `_sum` and `_count` taken as their family.
fn family(name: &str, histograms: &BTreeSet<String>) -> String {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix)
            && histograms.contains(base)
        {
            return base.to_owned();
        }
    }
    name.to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_prometheus_scrapes_every_metric_the_readme_lists() {
    let listed = readme_metrics();
    assert!(listed.len() >= 20, "{listed:?}");

    // A route that connects users to its backend's own server has the connections' metrics.
    let connecting = "[[routes]]\npath = \"/tracker\"\nupstream = \"http://127.0.0.1:9/mcp\"\n\
                      credentials = \"oauth\"\n[routes.oauth]\nallow_private_network = true\n";
    let stack =
        oidc_stack_routed(connecting, &crate::policy::requests_only_for("oidc-admins")).await;
    let report = node::run("oauth-flow.mjs", &plan(&stack)).await;
    assert!(report.get("error").is_none(), "{report:#}");
    let dir = tempfile::tempdir().unwrap();
    let (https, _certbot, _ca) = crate::gateway_tls::https(dir.path());
    let https = https
        .section("[[routes]]\npath = \"/mcp\"\nupstream = \"http://127.0.0.1:9/mcp\"\n")
        .start()
        .await;

    // What the gateway serves passes promtool's lint.
    for gateway in [&stack.gateway, &https] {
        let text = reqwest::get(format!("http://127.0.0.1:{}/metrics", gateway.metrics_port))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        promtool(&["check", "metrics"], Some(&text));
    }

    let targets = [&stack.gateway, &https].map(|g| format!("127.0.0.1:{}", g.metrics_port));
    let prometheus = PrometheusServer::scraping(&targets).await;
    let up = format!("sum(up{{job=\"{JOB}\"}}) == 2");
    assert_eq!(prometheus.wait_for(&up).await, 2.0);

    // Every listed metric reached Prometheus, and every gateway metric there is listed.
    let names = prometheus.api("label/__name__/values").await;
    let histograms: BTreeSet<String> = listed
        .iter()
        .filter(|n| n.ends_with("_seconds") && n.contains("duration"))
        .cloned()
        .collect();
    let scraped: BTreeSet<String> = names
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .filter(|n| n.starts_with("mcp_gateway_"))
        .map(|n| family(n, &histograms))
        .collect();
    let missing: Vec<_> = listed.difference(&scraped).collect();
    assert!(missing.is_empty(), "listed but not scraped: {missing:?}");
    let unlisted: Vec<_> = scraped.difference(&listed).collect();
    assert!(
        unlisted.is_empty(),
        "scraped but not in the README: {unlisted:?}"
    );

    // The flow's steps are counted as they happened.
    let value = |query: &str| {
        let prometheus = &prometheus;
        let query = query.to_owned();
        async move { prometheus.wait_for(&query).await }
    };
    assert_eq!(
        value("sum(mcp_gateway_authorizations_started_total)").await,
        1.0
    );
    assert_eq!(
        value("sum(mcp_gateway_authorizations_completed_total{result=\"approved\"})").await,
        1.0
    );
    assert_eq!(
        value("sum(mcp_gateway_logins_total{provider=\"oidc\",result=\"success\"})").await,
        1.0
    );
    for grant in ["authorization_code", "refresh_token"] {
        let issued = format!("sum(mcp_gateway_tokens_issued_total{{grant=\"{grant}\"}})");
        assert!(value(&issued).await >= 1.0, "{grant}");
    }
    assert_eq!(
        value("sum(mcp_gateway_client_registrations_total{result=\"created\"})").await,
        1.0
    );
    assert_eq!(value("sum(mcp_gateway_revocations_total)").await, 1.0);
    // The refresh after revocation was refused.
    assert!(
        value("sum(mcp_gateway_oauth_errors_total{endpoint=\"token\",error=\"invalid_grant\"})")
            .await
            >= 1.0
    );
    assert_eq!(
        value(
            "sum(mcp_gateway_idp_requests_total{provider=\"oidc\",call=\"sign_in\",result=\"ok\"})"
        )
        .await,
        1.0
    );
    assert!(
        value("sum(mcp_gateway_store_operation_duration_seconds_count{operation=\"take_code\"})")
            .await
            >= 1.0
    );
    assert!(value("max(mcp_gateway_signing_key_age_seconds)").await < 600.0);
    assert!(value("mcp_gateway_tls_certificate_expiry_timestamp_seconds - time()").await > 86400.0);

    // The shipped rules loaded and evaluate without error; promtool agrees with them and their tests.
    let rules = prometheus.api("rules").await;
    let evaluated: Vec<&Value> = rules["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap())
        .collect();
    assert_eq!(evaluated.len(), 11, "{rules:#}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let rules = prometheus.api("rules").await;
        let healthy = rules["groups"][0]["rules"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["health"] == "ok");
        if healthy {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{rules:#}");
        // Polling interval while waiting for an evaluation, not a guess at how long it takes.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let alerts = shipped("alerts.yml").display().to_string();
    promtool(&["check", "rules", &alerts], None);
    let tests = shipped("alerts.test.yml").display().to_string();
    promtool(&["test", "rules", &tests], None);
    let example = shipped("prometheus.yml").display().to_string();
    promtool(&["check", "config", &example], None);
}
