//! The `refresh_token` grant under load: several users' grants, obtained through the real flow (dynamic
//! registration, `/authorize`, the `local` login, consent, `/token`), each refreshed in a loop — every
//! answer's rotated refresh token is the next request's — until the time is up.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use integration_tests::oauth::{
    Agent, Pkce, authorize, authorize_url, exchange, public_client, token,
};
use serde_json::Value;

/// Refresh tokens, one grant each, with the client they belong to.
pub struct Grants {
    client_id: String,
    refresh_tokens: Vec<String>,
}

/// Signs the quickstart's demo user in `count` times through `gateway`'s authorization server.
pub async fn grants(gateway: &str, count: usize) -> Result<Grants> {
    let client_id = public_client(gateway).await;
    let mut refresh_tokens = Vec::new();
    let mut agent = Agent::new();
    for _ in 0..count {
        let pkce = Pkce::new();
        let url = authorize_url(gateway, &client_id, &pkce, &[]);
        let back = authorize(gateway, &mut agent, &url, "demo", "demo").await;
        let code = back.get("code").context("no code came back")?;
        let (_, tokens) = token(gateway, &exchange(&client_id, code, &pkce.verifier)).await;
        let refresh = tokens["refresh_token"]
            .as_str()
            .with_context(|| format!("no refresh token: {tokens}"))?;
        refresh_tokens.push(refresh.to_owned());
    }
    Ok(Grants {
        client_id,
        refresh_tokens,
    })
}

/// Signs the quickstart's demo user in once through `gateway`'s authorization server: an access
/// token bound to a grant, as clients hold them.
pub async fn signed_in(gateway: &str) -> Result<String> {
    let client_id = public_client(gateway).await;
    let pkce = Pkce::new();
    let url = authorize_url(gateway, &client_id, &pkce, &[]);
    let back = authorize(gateway, &mut Agent::new(), &url, "demo", "demo").await;
    let code = back.get("code").context("no code came back")?;
    let (_, tokens) = token(gateway, &exchange(&client_id, code, &pkce.verifier)).await;
    let access = tokens["access_token"]
        .as_str()
        .with_context(|| format!("no access token: {tokens}"))?;
    Ok(access.to_owned())
}

/// Refreshes every grant in its own loop for `duration`, each loop sending its refreshes to the
/// `gateways` in turn (replicas of one gateway, or just one); returns how many refreshes succeeded and
/// the seconds it took. Any refusal fails the run: a rotation that loses a grant is a bug, not a slow
/// answer.
pub async fn run(gateways: &[String], grants: Grants, duration: Duration) -> Result<(u64, f64)> {
    let client = reqwest::Client::new();
    let start = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for (i, mut refresh) in grants.refresh_tokens.into_iter().enumerate() {
        let urls: Vec<String> = gateways.iter().map(|g| format!("{g}/token")).collect();
        let (client, client_id) = (client.clone(), grants.client_id.clone());
        workers.spawn(async move {
            let mut done = 0u64;
            while start.elapsed() < duration {
                let url = &urls[(i + done as usize) % urls.len()];
                let answer: Value = client
                    .post(url)
                    .form(&[
                        ("grant_type", "refresh_token"),
                        ("refresh_token", refresh.as_str()),
                        ("client_id", client_id.as_str()),
                    ])
                    .send()
                    .await?
                    .json()
                    .await?;
                let Some(next) = answer["refresh_token"].as_str() else {
                    bail!("a refresh was refused: {answer}");
                };
                refresh = next.to_owned();
                done += 1;
            }
            Ok(done)
        });
    }
    let mut total = 0;
    while let Some(done) = workers.join_next().await {
        total += done??;
    }
    Ok((total, start.elapsed().as_secs_f64()))
}
