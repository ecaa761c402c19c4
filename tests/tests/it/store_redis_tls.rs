//! The Redis store as a Redis reached over a network is run: TLS with a CA of its own, a client
//! certificate asked of every client, and an ACL user whose name and password come from the
//! gateway's environment. A Redis the gateway cannot use stops its start, with the reason.

use integration_tests::oauth::Agent;
use integration_tests::oauth::refreshing;
use integration_tests::oauth::{Pkce, authorize, authorize_url, exchange, public_client, token};
use integration_tests::tls::TestCa;
use integration_tests::{GatewayBuilder, RedisServer, RedisUser};

use crate::oauth_flow::users_file;

const PASSWORD: &str = "s3cret-redis-password";

struct TlsRedis {
    server: RedisServer,
    ca: TestCa,
    _dir: tempfile::TempDir,
}

async fn tls_redis() -> TlsRedis {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path());
    let certificate = ca.server("redis");
    let user = RedisUser {
        name: "gateway",
        password: PASSWORD,
    };
    let server = RedisServer::start_tls(&ca.ca_file(), &certificate, user).await;
    TlsRedis {
        server,
        ca,
        _dir: dir,
    }
}

/// A gateway on `redis` with the `local` provider, its `[store]` table given `store` lines, and
/// `password` in REDIS_PASSWORD.
fn gateway(redis: &TlsRedis, store: &str, password: &str) -> GatewayBuilder {
    let builder = GatewayBuilder::new();
    let origin = builder.origin();
    builder
        .replica(&redis.server.tls_url(), None, &origin)
        .env("REDIS_USER", "gateway")
        .env("REDIS_PASSWORD", password)
        .store("username_env = \"REDIS_USER\"\npassword_env = \"REDIS_PASSWORD\"")
        .store(store)
        .section(&format!(
            "[provider]\nkind = \"local\"\nusers_file = {:?}\n\n\
             [[routes]]\npath = \"/mcp\"\nupstream = \"http://127.0.0.1:9/mcp\"\n",
            users_file().display().to_string()
        ))
}

/// The `[store]` lines that name the CA and the client certificate.
fn tls_files(redis: &TlsRedis) -> String {
    let client = redis.ca.client("gateway");
    format!(
        "tls_ca_file = {:?}\ntls_cert_file = {:?}\ntls_key_file = {:?}",
        redis.ca.ca_file().display().to_string(),
        client.cert.display().to_string(),
        client.key.display().to_string()
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn the_redis_store_works_over_tls_with_a_client_certificate_and_an_acl_user() {
    let redis = tls_redis().await;
    let gateway = gateway(&redis, &tls_files(&redis), PASSWORD).start().await;
    // The whole flow, then a refresh: registration, the pending authorization, the code, the
    // grant, the rotation script and the signing key all went through Redis over TLS.
    let client = public_client(&gateway).await;
    let pkce = Pkce::new();
    let url = authorize_url(&gateway, &client, &pkce, &[]);
    let back = authorize(&gateway, &mut Agent::new(), &url, "alice", "wonderland").await;
    let (status, tokens) = token(&gateway, &exchange(&client, &back["code"], &pkce.verifier)).await;
    assert_eq!(status, 200, "{tokens}");
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let form = refreshing(client.as_str(), refresh);
    let (status, refreshed) = token(&gateway, &form).await;
    assert_eq!(status, 200, "{refreshed}");
    assert_ne!(refreshed["refresh_token"].as_str(), Some(refresh));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redis_the_gateway_cannot_use_stops_its_start_with_the_reason() {
    let redis = tls_redis().await;
    let at = format!("connecting to Redis at {}", redis.server.tls_url());
    let client = redis.ca.client("gateway");
    let (ca, cert, key) = (
        redis.ca.ca_file().display().to_string(),
        client.cert.display().to_string(),
        client.key.display().to_string(),
    );
    let client_files = format!("tls_cert_file = {cert:?}\ntls_key_file = {key:?}");
    for (what, store, password, reason) in [
        (
            "a wrong password",
            tls_files(&redis),
            "not-the-password",
            "Password authentication failed",
        ),
        (
            "a server certificate from a CA the gateway does not trust",
            client_files.clone(),
            PASSWORD,
            "invalid peer certificate: UnknownIssuer",
        ),
        (
            "no client certificate",
            format!("tls_ca_file = {ca:?}"),
            PASSWORD,
            "CertificateRequired",
        ),
    ] {
        let stderr = gateway(&redis, &store, password).start_refused().await;
        assert!(stderr.contains(&at), "{what}: {stderr}");
        assert!(stderr.contains(reason), "{what}: {stderr}");
        assert!(!stderr.contains("panicked"), "{what}: {stderr}");
        assert!(!stderr.contains(PASSWORD), "{what}: {stderr}");
        assert!(!stderr.contains("not-the-password"), "{what}: {stderr}");
    }
}
