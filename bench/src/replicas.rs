//! The gateway on the Redis store: beside itself on SQLite (CPU per proxied request with a token
//! from the real flow, whose grant a replica on a shared store checks once a second, and the
//! `refresh_token` grant's rate), then three replicas side by side on one Redis under one public URL,
//! the load and the refreshes spread over them, beside the one replica.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;

use crate::mcp::tools_call;
use crate::procs::Proc;
use crate::procs::program;
use crate::report::{Row, median};
use crate::targets::{GatewayRoutes, Store, Target, Workdir};
use crate::wrk::{self, Request, measure};
use crate::{Cli, refresh, sibling};

pub async fn run(
    cli: &Cli,
    work: &Workdir,
    private_key: &Path,
    routes: &GatewayRoutes,
    sqlite: &Target,
) -> Result<Vec<(String, String)>> {
    program("redis-server")?;
    let redis = work.redis().await?;
    let replica = async |name: &str, public_url: Option<String>| {
        let store = Store::Redis {
            port: redis.port,
            public_url,
        };
        let program = sibling("mcp-auth-gateway")?;
        let started = work
            .gateway(name, &program, private_key, routes, &store, &[])
            .await?;
        anyhow::Ok(started.0)
    };
    let a = replica("gateway-redis", None).await?;
    let public_url = a.url("");
    let b = replica("gateway-redis-b", Some(public_url.clone())).await?;
    let c = replica("gateway-redis-c", Some(public_url.clone())).await?;

    // One replica on Redis against the gateway on SQLite, one token from each's own flow.
    let targets = [sqlite, &a];
    let mut requests = Vec::new();
    for target in targets {
        let access = refresh::signed_in(&target.url("")).await?;
        requests.push(tools_call(target.url("/mcp"), format!("Bearer {access}")));
    }
    // The three replicas, each loaded with the same token (they share the issuer and the grant).
    let three = [&a, &b, &c];
    let spread: Vec<Request> = three
        .iter()
        .map(|r| tools_call(r.url("/mcp"), requests[1].headers[2].1.clone()))
        .collect();
    let mut rows = [Vec::new(), Vec::new(), Vec::new()];
    for run in 0..cli.runs {
        if run == 0 {
            for request in requests.iter().chain(&spread) {
                wrk::run(request, cli.connections, Duration::from_secs(1), &work.dir).await?;
            }
        }
        for (i, target) in targets.iter().enumerate() {
            rows[i].push(measure(&requests[i], cli, &work.dir, &target.proc).await?);
        }
        let procs: Vec<&Proc> = three.iter().map(|r| &r.proc).collect();
        rows[2].push(measure_together(&spread, cli, &work.dir, &procs).await?);
    }
    let [on_sqlite, one, together] = rows.map(|r| median(&r));

    let mut lines = vec![against_sqlite(one, on_sqlite)];
    lines.push(refreshes(&[&a], "Redis store", cli).await?);
    lines.push(side_by_side(cli, one, together));
    lines.push(
        refreshes(
            &three,
            "three replicas on one Redis, each loop going round them",
            cli,
        )
        .await?,
    );
    Ok(lines)
}

/// One replica on Redis against the gateway on SQLite.
fn against_sqlite(one: Row, on_sqlite: Row) -> (String, String) {
    (
        "c on the Redis store beside c on SQLite, token from the real flow".to_owned(),
        format!(
            "CPU µs per request: {:.1} on Redis, {:.1} on SQLite (ratio {:.2}); {:.0} and {:.0} requests/s",
            one.cpu_us,
            on_sqlite.cpu_us,
            one.cpu_us / on_sqlite.cpu_us,
            one.rate,
            on_sqlite.rate
        ),
    )
}

/// The three replicas loaded `together`, against `one`.
fn side_by_side(cli: &Cli, one: Row, together: Row) -> (String, String) {
    (
        format!(
            "Three replicas of c side by side on one Redis, {} connections each, the same token",
            per_replica(cli.connections)
        ),
        format!(
            "{:.0} requests/s in all ({:.2} × one replica's {:.0}); CPU µs per request, summed over \
             the three: {:.1} ({:.2} × one replica's {:.1})",
            together.rate,
            together.rate / one.rate,
            one.rate,
            together.cpu_us,
            together.cpu_us / one.cpu_us,
            one.cpu_us
        ),
    )
}

/// Each replica's share of the load generator's connections.
fn per_replica(connections: u32) -> u32 {
    connections.div_ceil(3).max(1)
}

/// One `wrk` per request at once, each target loaded by its share of the connections; the rate is
/// the sum of theirs, the CPU time that of all `measured` over all their requests.
async fn measure_together(
    requests: &[Request<'_>],
    cli: &Cli,
    work: &Path,
    measured: &[&Proc],
) -> Result<Row> {
    let cpu = || measured.iter().map(|p| p.cpu_seconds()).sum::<f64>();
    let before = cpu();
    let loads = futures::future::try_join_all(
        requests
            .iter()
            .map(|r| wrk::run(r, per_replica(cli.connections), cli.duration, work)),
    )
    .await?;
    let spent = cpu() - before;
    let answered: u64 = loads.iter().map(|l| l.requests).sum();
    Ok(Row {
        rate: loads.iter().map(|l| l.rate()).sum(),
        p50_ms: loads.iter().map(|l| l.p50_ms).fold(0.0, f64::max),
        p99_ms: loads.iter().map(|l| l.p99_ms).fold(0.0, f64::max),
        cpu_us: spent * 1e6 / answered as f64,
    })
}

/// The `refresh_token` grant's rate with 16 grants refreshed in loops over `replicas`, and the CPU
/// the replicas spent per refresh.
async fn refreshes(replicas: &[&Target], what: &str, cli: &Cli) -> Result<(String, String)> {
    let urls: Vec<String> = replicas.iter().map(|r| r.url("")).collect();
    let grants = refresh::grants(&urls[0], 16).await?;
    let cpu = || replicas.iter().map(|r| r.proc.cpu_seconds()).sum::<f64>();
    let before = cpu();
    let (refreshed, seconds) = refresh::run(&urls, grants, cli.duration).await?;
    let spent = cpu() - before;
    Ok((
        format!("`refresh_token` grant, {what}, 16 grants refreshed in loops"),
        format!(
            "{:.0} refreshes/s, {:.0} gateway CPU µs per refresh",
            refreshed as f64 / seconds,
            spent * 1e6 / refreshed as f64
        ),
    ))
}
