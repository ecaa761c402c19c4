//! The scenarios that load a proxy with requests: the main table, the policy route, the open-loop
//! latency, the full path to mcp-backend, the metadata document and the refresh grant.

use std::time::Duration;

use anyhow::Result;

use super::{Bench, Line};
use crate::mcp::{mcp_session, tools_call};
use crate::report::{Row, median};
use crate::targets::{EXTERNAL_ISSUER, Target};
use crate::wrk::{self, Request, measure};
use crate::{paced, refresh};

impl Bench<'_> {
    /// The main table, and the gateway's median row: each target in turn within a run, so that
    /// drift on the machine touches all alike. The measured process is the target itself: for a,
    /// the upstream.
    pub(super) async fn main_table(
        &self,
    ) -> Result<(Vec<(&'static str, &'static str, Vec<Row>)>, Row)> {
        let main: [(&str, &str, &Target); 5] = [
            ("a", "direct to the upstream (the limit)", &self.upstream),
            ("b", "nginx proxy_pass, no auth", &self.nginx_proxy),
            ("p", "bare Pingora pass-through (the floor)", &self.pingora),
            ("h", "HAProxy, ES256 JWT checked by jwt_verify", &self.hap),
            ("c", "mcp-auth-gateway", &self.gateway),
        ];
        let (cli, dir) = (self.cli, &self.work.dir);
        let mut rows: Vec<Vec<Row>> = vec![Vec::new(); main.len()];
        for run in 0..cli.runs {
            for (i, (key, _, target)) in main.iter().enumerate() {
                let request = self.post(target);
                if run == 0 {
                    // Warm-up: connections, caches, the gateway's verified-token cache.
                    wrk::run(&request, cli.connections, Duration::from_secs(1), dir).await?;
                }
                let row = measure(&request, cli, dir, &target.proc).await?;
                eprintln!("run {} {key}: {row:?}", run + 1);
                rows[i].push(row);
            }
        }
        let c = median(&rows[4]);
        let table = main
            .iter()
            .zip(rows)
            .map(|((key, label, _), runs)| (*key, *label, runs))
            .collect();
        Ok((table, c))
    }

    /// The same call on the route with 20 policy rules, beside c again (measured in turn, so that
    /// drift touches both alike).
    pub(super) async fn policy_rules(&self) -> Result<Line> {
        let (cli, dir, gateway) = (self.cli, &self.work.dir, &self.gateway);
        let policy_request =
            tools_call(gateway.url("/policy"), self.bearer_for(gateway, "/policy")?);
        wrk::run(
            &policy_request,
            cli.connections,
            Duration::from_secs(1),
            dir,
        )
        .await?;
        let (mut plain, mut ruled) = (Vec::new(), Vec::new());
        for _ in 0..cli.runs {
            plain.push(measure(&self.post(gateway), cli, dir, &gateway.proc).await?);
            ruled.push(measure(&policy_request, cli, dir, &gateway.proc).await?);
        }
        let (plain, ruled) = (median(&plain), median(&ruled));
        Ok((
            "c on a route with 20 policy rules (`/policy`), beside c's `/mcp`".to_owned(),
            format!(
                "{:.0} against {:.0} requests/s; CPU µs per request {:.1} against {:.1}: {:.3}×",
                ruled.rate,
                plain.rate,
                ruled.cpu_us,
                plain.cpu_us,
                ruled.cpu_us / plain.cpu_us
            ),
        ))
    }

    /// The CPU a request costs on a route that takes another issuer's tokens (`/external`), against
    /// the gateway's own on `/mcp`: the same checks, but the issuer's keys found by name.
    pub(super) async fn external_issuer(&self) -> Result<Line> {
        let (cli, dir, gateway) = (self.cli, &self.work.dir, &self.gateway);
        let theirs = format!(
            "Bearer {}",
            crate::token::mint(&self.key, EXTERNAL_ISSUER, &gateway.url("/external"))?
        );
        let external_request = tools_call(gateway.url("/external"), theirs);
        // Warm-up: the issuer's keys are fetched on the first token.
        wrk::run(
            &external_request,
            cli.connections,
            Duration::from_secs(1),
            dir,
        )
        .await?;
        let (mut own, mut external) = (Vec::new(), Vec::new());
        for _ in 0..cli.runs {
            own.push(measure(&self.post(gateway), cli, dir, &gateway.proc).await?);
            external.push(measure(&external_request, cli, dir, &gateway.proc).await?);
        }
        let (own, external) = (median(&own), median(&external));
        let ratio = external.cpu_us / own.cpu_us;
        Ok((
            "c on a route taking another issuer's tokens (`/external`), beside c's `/mcp`"
                .to_owned(),
            format!(
                "{:.0} against {:.0} requests/s; CPU µs per request {:.1} against {:.1}: {ratio:.3}× (at most 1.03×: {})",
                external.rate,
                own.rate,
                external.cpu_us,
                own.cpu_us,
                if ratio <= 1.03 { "met" } else { "**not met**" }
            ),
        ))
    }

    /// Latency at half of the gateway's maximum rate `c`, open loop, against the direct path. The
    /// bare Pingora at the same rate shows how much of the tail is the framework's on this machine.
    pub(super) async fn paced(&self, c: Row) -> Result<Line> {
        let rate = (c.rate / 2.0).max(100.0);
        let mut paced_rows = Vec::new();
        for (key, target) in [
            ("a", &self.upstream),
            ("p", &self.pingora),
            ("c", &self.gateway),
        ] {
            let row = paced::run(&self.post(target), rate, self.cli.duration).await?;
            paced_rows.push((key, row));
        }
        let direct = paced_rows[0].1;
        let through = paced_rows[2].1;
        Ok((
            format!("Latency at {rate:.0} requests/s (half of c's maximum), open loop"),
            format!(
                "{}; c's p99 is {:+.3} ms above a's",
                paced_rows
                    .iter()
                    .map(|(key, r)| format!("{key} p50 {:.3} / p99 {:.3} ms", r.p50_ms, r.p99_ms))
                    .collect::<Vec<_>>()
                    .join(", "),
                through.p99_ms - direct.p99_ms
            ),
        ))
    }

    /// The full path: through the gateway to the real mcp-backend, in one MCP session.
    pub(super) async fn full_path(&self) -> Result<Line> {
        let backend = &self.backend;
        let (cli, dir, gateway) = (self.cli, &self.work.dir, &self.gateway);
        let backend_bearer = self.bearer_for(gateway, "/backend")?;
        let session = mcp_session(&gateway.url("/backend"), &backend_bearer).await?;
        let mut full = tools_call(gateway.url("/backend"), backend_bearer);
        full.headers.extend([
            ("Mcp-Session-Id", session),
            ("Mcp-Protocol-Version", "2025-11-25".into()),
        ]);
        wrk::run(&full, cli.connections, Duration::from_secs(1), dir).await?;
        let (g0, b0) = (gateway.proc.cpu_seconds(), backend.proc.cpu_seconds());
        let load = wrk::run(&full, cli.connections, cli.duration, dir).await?;
        let (g1, b1) = (gateway.proc.cpu_seconds(), backend.proc.cpu_seconds());
        Ok((
            "Full path to mcp-backend (`show_auth_token`)".to_owned(),
            format!(
                "{:.0} requests/s, p50 {:.3} ms, p99 {:.3} ms; CPU µs per request: gateway {:.1}, backend {:.1}",
                load.rate(),
                load.p50_ms,
                load.p99_ms,
                (g1 - g0) * 1e6 / load.requests as f64,
                (b1 - b0) * 1e6 / load.requests as f64
            ),
        ))
    }

    /// The protected resource metadata document.
    pub(super) async fn metadata(&self) -> Result<Line> {
        let prm = Request {
            method: "GET",
            url: self
                .gateway
                .url("/.well-known/oauth-protected-resource/mcp"),
            headers: vec![],
            body: None,
        };
        let row = measure(&prm, self.cli, &self.work.dir, &self.gateway.proc).await?;
        Ok((
            "Protected resource metadata (`GET /.well-known/oauth-protected-resource/mcp`)"
                .to_owned(),
            format!(
                "{:.0} requests/s, p99 {:.3} ms, {:.1} CPU µs per request",
                row.rate, row.p99_ms, row.cpu_us
            ),
        ))
    }

    /// The refresh_token grant on the sqlite store.
    pub(super) async fn refresh(&self) -> Result<Line> {
        let grants = refresh::grants(&self.origin, 16).await?;
        let g0 = self.gateway.proc.cpu_seconds();
        let (refreshed, seconds) = refresh::run(
            std::slice::from_ref(&self.origin),
            grants,
            self.cli.duration,
        )
        .await?;
        let g1 = self.gateway.proc.cpu_seconds();
        Ok((
            "`refresh_token` grant, sqlite store, 16 grants refreshed in loops".to_owned(),
            format!(
                "{:.0} refreshes/s, {:.0} gateway CPU µs per refresh",
                refreshed as f64 / seconds,
                (g1 - g0) * 1e6 / refreshed as f64
            ),
        ))
    }
}
