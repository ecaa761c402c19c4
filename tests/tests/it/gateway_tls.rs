//! The gateway's own HTTPS (`[server.tls]`): a CA made in the test, clients that trust it (the SDK
//! client, curl, reqwest), HTTP/2 and HTTP/1.1 by ALPN, and a certbot-style renewal picked up live
//! while the connections already open carry on.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use integration_tests::tls::{Issued, TestCa};
use integration_tests::{GatewayBuilder, GatewayTls, node};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;
use serde_json::json;

use crate::oauth_flow::auth_stack_with;

/// certbot's layout: `archive/` keeps every version of the files, `live/` links to the current one,
/// and the gateway is given the `live/` paths.
pub struct Certbot {
    dir: PathBuf,
    ca_file: PathBuf,
}

impl Certbot {
    fn new(dir: &Path, ca: &TestCa, first: &Issued) -> Self {
        std::fs::create_dir_all(dir.join("archive")).unwrap();
        std::fs::create_dir_all(dir.join("live")).unwrap();
        let certbot = Self {
            dir: dir.to_owned(),
            ca_file: ca.ca_file(),
        };
        certbot.renew(first, 1);
        certbot
    }

    fn tls(&self) -> GatewayTls {
        GatewayTls {
            cert_file: self.dir.join("live/fullchain.pem"),
            key_file: self.dir.join("live/privkey.pem"),
            ca_file: self.ca_file.clone(),
        }
    }

    /// Version `n` of the files goes to `archive/`, and each `live/` link is swapped to it in turn
    /// (a new link renamed over the old, as certbot does).
    fn renew(&self, issued: &Issued, n: u32) {
        for (from, name) in [(&issued.cert, "fullchain"), (&issued.key, "privkey")] {
            let archived = self.dir.join(format!("archive/{name}{n}.pem"));
            std::fs::copy(from, &archived).unwrap();
            let link = self.dir.join(format!("live/{name}.pem"));
            let fresh = self.dir.join(format!("live/{name}.pem.new"));
            std::os::unix::fs::symlink(&archived, &fresh).unwrap();
            std::fs::rename(&fresh, &link).unwrap();
        }
    }
}

/// A gateway builder serving HTTPS with a certificate from a CA made in `dir`; the certbot-style
/// files it serves, and the CA, to renew them.
pub fn https(dir: &Path) -> (GatewayBuilder, Certbot, TestCa) {
    let ca = TestCa::new(dir);
    let certbot = Certbot::new(&dir.join("letsencrypt"), &ca, &ca.server("gateway"));
    (GatewayBuilder::new().tls(&certbot.tls()), certbot, ca)
}

/// Waits until a new connection to `url` is served `cert`'s certificate.
async fn wait_for_certificate(tls: &GatewayTls, url: &str, cert: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let fresh = tls.client_builder().build().unwrap();
        let response = fresh.get(url).send().await.unwrap();
        if served_by(&response) == leaf_of(cert) {
            return;
        }
        assert!(Instant::now() < deadline, "the renewal was not picked up");
        // Polling interval while waiting for the watch, not a guess at how long it takes.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The DER of the first certificate in a PEM file.
fn leaf_of(pem_file: &Path) -> Vec<u8> {
    CertificateDer::from_pem_file(pem_file)
        .expect("a PEM certificate")
        .to_vec()
}

/// The certificate the connection that answered `response` was made with.
fn served_by(response: &reqwest::Response) -> Vec<u8> {
    response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|info| info.peer_certificate())
        .expect("the connection's certificate")
        .to_vec()
}

/// curl, trusting `ca`, fetching `url` over `protocol` (`--http2`, `--http1.1`): "<version> <status>".
fn curl(ca: &Path, protocol: &str, url: &str) -> String {
    let output = std::process::Command::new("curl")
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_version} %{http_code}",
        ])
        .arg("--cacert")
        .arg(ca)
        .args([protocol, url])
        .output()
        .expect("curl runs");
    assert!(
        output.status.success(),
        "curl {protocol} {url}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sdk_client_signs_in_and_calls_tools_over_the_gateways_own_https() {
    let dir = tempfile::tempdir().unwrap();
    let (builder, certbot, ca) = https(dir.path());
    let tls = certbot.tls();
    // The supervised mcp-backend fetches the gateway's JWKS over HTTPS: it trusts the CA too.
    let builder = builder.env("SSL_CERT_FILE", tls.ca_file.to_str().unwrap());
    let stack = auth_stack_with("", builder).await;
    let gateway = &stack.gateway;
    assert!(gateway.origin.starts_with("https://"), "{}", gateway.origin);

    // HTTP/2 and HTTP/1.1, chosen by ALPN, from two TLS stacks (rustls in reqwest, OpenSSL in curl).
    let metadata = gateway.url("/.well-known/oauth-protected-resource/mcp");
    let h2 = gateway.http.get(&metadata).send().await.unwrap();
    assert_eq!(h2.version(), reqwest::Version::HTTP_2);
    assert_eq!(h2.status(), 200);
    let h1 = tls.client_builder().http1_only().build().unwrap();
    let h1 = h1.get(&metadata).send().await.unwrap();
    assert_eq!(h1.version(), reqwest::Version::HTTP_11);
    assert_eq!(h1.status(), 200);
    assert_eq!(curl(&tls.ca_file, "--http2", &metadata), "2 200");
    assert_eq!(curl(&tls.ca_file, "--http1.1", &metadata), "1.1 200");
    // The metadata speaks of https URLs, and an unauthenticated request is pointed at it.
    let body: serde_json::Value = h2.json().await.unwrap();
    assert_eq!(body["resource"], gateway.url("/mcp"));
    let refused = gateway.http.post(gateway.url("/mcp")).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    let challenge = refused.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains(&format!("resource_metadata=\"{metadata}\"")),
        "{challenge}"
    );

    // The whole flow with the SDK client (Node's TLS, trusting the CA), on HTTP/1.1 as Node's fetch
    // speaks it.
    let plan = json!({ "url": gateway.url("/mcp"), "username": "alice", "password": "wonderland" });
    let ca_file = tls.ca_file.to_str().unwrap();
    let trust = [("NODE_EXTRA_CA_CERTS", ca_file)];
    let flow = || node::run_with_env("oauth-flow.mjs", &plan, &trust);
    let report = flow().await;
    assert!(report.get("error").is_none(), "{report:#}");
    assert_eq!(report["redirect"]["iss"], gateway.origin);
    assert_eq!(
        report["tools"],
        json!(["make_authenticated_request", "show_auth_token"])
    );
    assert_ne!(report["request"]["isError"], true, "{}", report["request"]);
    assert_eq!(report["refresh"]["result"], "AUTHORIZED", "{report:#}");

    // MCP itself over HTTP/2: an initialize through to mcp-backend.
    let initialize = gateway
        .mcp_post("/mcp", r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"h2","version":"1"}}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(initialize.version(), reqwest::Version::HTTP_2);
    assert_eq!(initialize.status(), 200);
    let answer = initialize.text().await.unwrap();
    assert!(answer.contains("mcp-backend"), "{answer}");

    // A renewed certificate, and the whole flow again over it.
    let renewed = ca.server("gateway-renewed");
    certbot.renew(&renewed, 2);
    wait_for_certificate(&tls, &metadata, &renewed.cert).await;
    let report = flow().await;
    assert!(
        report.get("error").is_none(),
        "after the renewal: {report:#}"
    );
    assert_ne!(report["request"]["isError"], true, "{}", report["request"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_renewed_certificate_is_served_to_new_connections_while_open_ones_carry_on() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path());
    let first = ca.server_until("gateway-1", (2030, 1, 1));
    let certbot = Certbot::new(&dir.path().join("letsencrypt"), &ca, &first);
    let tls = certbot.tls();
    let gateway = GatewayBuilder::new()
        .tls(&tls)
        .section("[[routes]]\npath = \"/mcp\"\nupstream = \"http://127.0.0.1:9/mcp\"\n")
        .start()
        .await;
    let expiry = "mcp_gateway_tls_certificate_expiry_timestamp_seconds";
    assert_eq!(gateway.metrics().await[expiry], 1_893_456_000.0);

    // A connection made before the renewal, which must outlive it.
    let open = tls.client_builder().build().unwrap();
    let before = open.get(gateway.url("/healthz")).send().await.unwrap();
    assert_eq!(served_by(&before), leaf_of(&first.cert));

    let second = ca.server_until("gateway-2", (2031, 1, 1));
    certbot.renew(&second, 2);
    // New connections get the new certificate once the gateway has seen the files change.
    wait_for_certificate(&tls, &gateway.url("/healthz"), &second.cert).await;
    assert_eq!(gateway.metrics().await[expiry], 1_924_992_000.0);
    // The connection opened before is still the same one, answering with the old certificate.
    let after = open.get(gateway.url("/healthz")).send().await.unwrap();
    assert_eq!(after.status(), 200);
    assert_eq!(served_by(&after), leaf_of(&first.cert));

    // A renewal gone wrong (a key that is not the certificate's) is refused with one log line, and
    // the gateway keeps serving the certificate it had.
    let third = ca.server("gateway-3");
    let mismatched = Issued {
        cert: third.cert.clone(),
        key: second.key.clone(),
    };
    let refusals = |log: &str| {
        log.matches("keeping the TLS certificate served until now")
            .count()
    };
    let before = refusals(&gateway.process.stderr());
    certbot.renew(&mismatched, 3);
    let log = gateway
        .process
        .wait_for_output(|log| refusals(log) > before)
        .await;
    assert!(
        refusals(&log) > before,
        "the bad renewal was not logged: {log}"
    );
    assert!(
        log.contains("is not the key of the first certificate in"),
        "{log}"
    );
    let fresh = tls.client_builder().build().unwrap();
    let response = fresh.get(gateway.url("/healthz")).send().await.unwrap();
    assert_eq!(served_by(&response), leaf_of(&second.cert));
    assert_eq!(gateway.metrics().await[expiry], 1_924_992_000.0);
}

/// Serving HTTPS itself, the gateway tells browsers to keep to it (`Strict-Transport-Security`) on
/// its own pages and documents, its refusals and what it passes on; `server.tls.hsts` sets what it
/// says, or (`""`) nothing.
#[tokio::test(flavor = "multi_thread")]
async fn responses_over_the_gateways_own_https_carry_strict_transport_security() {
    let dir = tempfile::tempdir().unwrap();
    let tls = integration_tests::GatewayTls::issued(dir.path());
    let backend = integration_tests::ScriptedBackend::start().await;
    let route = format!(
        "[[routes]]\npath = \"/mcp\"\nupstream = \"{}\"\n",
        backend.url("/mcp")
    );
    let hsts = |response: &reqwest::Response| {
        response
            .headers()
            .get("strict-transport-security")
            .map(|v| v.to_str().unwrap().to_owned())
    };
    for (lines, expected) in [
        ("", Some("max-age=31536000")),
        (
            "hsts = \"max-age=600; includeSubDomains\"",
            Some("max-age=600; includeSubDomains"),
        ),
        ("hsts = \"\"", None),
    ] {
        let gateway = GatewayBuilder::new()
            .tls(&tls)
            .tls_lines(lines)
            .section(&route)
            .start()
            .await;
        for version in [reqwest::Version::HTTP_11, reqwest::Version::HTTP_2] {
            let mut builder = tls.client_builder();
            if version == reqwest::Version::HTTP_11 {
                builder = builder.http1_only();
            }
            let client = builder.build().unwrap();
            let document = client
                .get(gateway.url("/.well-known/oauth-protected-resource/mcp"))
                .send()
                .await
                .unwrap();
            assert_eq!(document.version(), version);
            assert_eq!(hsts(&document).as_deref(), expected, "{lines}");
            let refused = client.post(gateway.url("/mcp")).send().await.unwrap();
            assert_eq!(refused.status(), 401);
            assert_eq!(hsts(&refused).as_deref(), expected, "{lines}");
            let proxied = gateway
                .mcp_post_on(&client, "/mcp", "{}")
                .send()
                .await
                .unwrap();
            assert_eq!(proxied.status(), 200);
            assert_eq!(hsts(&proxied).as_deref(), expected, "{lines}");
        }
    }
    // Plain HTTP says nothing of it (RFC 6797 §7.2).
    let gateway = GatewayBuilder::new().section(&route).start().await;
    let document = reqwest::get(gateway.url("/.well-known/oauth-protected-resource/mcp"))
        .await
        .unwrap();
    assert_eq!(hsts(&document), None);
}
