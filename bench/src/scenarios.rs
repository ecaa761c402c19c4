//! One bench run: start everything, measure each scenario, and gather the report.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use integration_tests::free_port;

use crate::mcp::{mcp_session, tools_call};
use crate::procs::{Proc, version};
use crate::procs::{program, wait_descriptors_closed};
use crate::report::setup;
use crate::report::{Report, Row, median};
use crate::targets::{GatewayRoutes, Store, Target, Workdir};
use crate::wrk::{self, Request, measure};
use crate::{Cli, instructions, paced, refresh, replicas, sibling, sse, token};
use gateway_assertion::SigningKey;

pub fn today() -> String {
    version("date", &["-u", "+%Y-%m-%d"])
}

/// What every scenario measures against: the servers started once, and what signs their tokens.
struct Bench<'a> {
    cli: &'a Cli,
    work: Workdir,
    /// The key that signs the gateway's tokens, and where its private half is for the gateway.
    key: SigningKey,
    private_key: std::path::PathBuf,
    routes: GatewayRoutes,
    upstream: Target,
    nginx_proxy: Target,
    pingora: Target,
    hap: Target,
    gateway: Target,
    /// Where the gateway serves its metrics.
    metrics_port: u16,
    /// The gateway's resident memory once started, before any other server or request.
    idle_rss: u64,
    /// The gateway's origin, the issuer of its tokens.
    origin: String,
    /// The Authorization header of a call to the gateway's `/mcp`.
    bearer: String,
    /// The real MCP backend behind the gateway's `/backend`.
    backend: Target,
    /// The framework's floor for idle streams too: a bare Pingora in front of the stream holder.
    pingora_sse: Target,
    /// Held for as long as the bench runs: the stream holder, and the directory of logs and files.
    _sse_upstream: Proc,
    _temp: tempfile::TempDir,
}

/// A line of the report beside the main table: what was measured, and what it came to.
type Line = (String, String);

pub async fn run(cli: &Cli) -> Result<Option<Report>> {
    let (nginx, haproxy) = (program("nginx")?, program("haproxy")?);
    program("wrk")?;
    program("openssl")?;
    let bench = Bench::start(cli, &nginx, &haproxy).await?;
    if cli.hold {
        bench.hold().await?;
        return Ok(None);
    }

    let (main, c) = bench.main_table().await?;
    let mut extra = vec![(
        "Gateway RSS at idle, after start".to_owned(),
        format!("{:.1} MiB", bench.idle_rss as f64 / 1048576.0),
    )];
    extra.push(bench.policy_rules().await?);
    extra.push(bench.paced(c).await?);
    extra.push(bench.full_path().await?);
    extra.push(bench.metadata().await?);
    extra.push(bench.refresh().await?);
    extra.extend(
        replicas::run(
            cli,
            &bench.work,
            &bench.private_key,
            &bench.routes,
            &bench.gateway,
        )
        .await?,
    );
    extra.extend(bench.idle_streams().await?);
    extra.extend(bench.instructions().await?);

    Ok(Some(Report {
        title: format!("mcp-auth-gateway benchmark, {}", today()),
        setup: setup(cli, &nginx, &haproxy),
        main,
        extra,
    }))
}

impl<'a> Bench<'a> {
    /// Starts every server the scenarios measure.
    async fn start(cli: &'a Cli, nginx: &Path, haproxy: &Path) -> Result<Self> {
        let temp = tempfile::tempdir()?;
        let work = Workdir {
            dir: temp.path().to_owned(),
        };
        eprintln!("starting the servers (logs in {})", work.dir.display());
        let (key, private_key, public_key) = token::generate_key(&work.dir)?;

        let upstream = work.upstream(nginx).await?;
        let sse_port = free_port();
        let mut sse_upstream = Proc::start(
            "sse-upstream",
            &std::env::current_exe()?,
            &["sse-upstream", &sse_port.to_string()],
            &[],
            &work.dir,
        )?;
        sse_upstream.wait_port(sse_port).await?;
        let routes = GatewayRoutes {
            upstream: upstream.port,
            backend: free_port(),
            sse: sse_port,
        };
        let passthrough = sibling("pingora-passthrough")?;
        let (gateway, metrics_port) = work
            .gateway(
                "gateway",
                &sibling("mcp-auth-gateway")?,
                &private_key,
                &routes,
                &Store::Sqlite,
                &[],
            )
            .await?;
        let idle_rss = gateway.proc.rss_bytes();
        let origin = gateway.url("");
        let mcp_audience = gateway.url("/mcp");
        let bearer = format!("Bearer {}", token::mint(&key, &origin, &mcp_audience)?);
        Ok(Self {
            cli,
            backend: work
                .backend(&sibling("mcp-backend")?, routes.backend, &origin)
                .await?,
            nginx_proxy: work.nginx_proxy(nginx, upstream.port).await?,
            pingora: work
                .pingora("pingora", &passthrough, upstream.port, &[])
                .await?,
            pingora_sse: work
                .pingora("pingora-sse", &passthrough, sse_port, &[])
                .await?,
            hap: work
                .haproxy(haproxy, upstream.port, &public_key, &origin, &mcp_audience)
                .await?,
            work,
            key,
            private_key,
            routes,
            upstream,
            gateway,
            metrics_port,
            idle_rss,
            origin,
            bearer,
            _sse_upstream: sse_upstream,
            _temp: temp,
        })
    }
}

impl Bench<'_> {
    /// A tools/call to `target`'s `/mcp` with the gateway's token.
    fn post(&self, target: &Target) -> Request<'static> {
        tools_call(target.url("/mcp"), self.bearer.clone())
    }

    /// The Authorization header of a call to `path` on the gateway at `origin`.
    fn bearer_for(&self, target: &Target, path: &str) -> Result<String> {
        let origin = target.url("");
        Ok(format!(
            "Bearer {}",
            token::mint(&self.key, &origin, &target.url(path))?
        ))
    }

    /// `--hold`: prints where everything is and waits for Ctrl-C.
    async fn hold(&self) -> Result<()> {
        for (name, target) in [
            ("upstream", &self.upstream),
            ("nginx", &self.nginx_proxy),
            ("pingora", &self.pingora),
            ("haproxy", &self.hap),
            ("gateway", &self.gateway),
        ] {
            println!(
                "{name:9} {} (pid {})",
                target.url("/mcp"),
                target.proc.pid()
            );
        }
        println!("metrics   http://127.0.0.1:{}/metrics", self.metrics_port);
        println!(
            "Authorization: {}\nidle SSE streams: {} with Authorization: {}\nCtrl-C to stop.",
            self.bearer,
            self.gateway.url("/sse"),
            self.bearer_for(&self.gateway, "/sse")?
        );
        tokio::signal::ctrl_c().await?;
        Ok(())
    }

    /// The main table, and the gateway's median row: each target in turn within a run, so that
    /// drift on the machine touches all alike. The measured process is the target itself: for a,
    /// the upstream.
    async fn main_table(&self) -> Result<(Vec<(&'static str, &'static str, Vec<Row>)>, Row)> {
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
    async fn policy_rules(&self) -> Result<Line> {
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

    /// Latency at half of the gateway's maximum rate `c`, open loop, against the direct path. The
    /// bare Pingora at the same rate shows how much of the tail is the framework's on this machine.
    async fn paced(&self, c: Row) -> Result<Line> {
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
    async fn full_path(&self) -> Result<Line> {
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
    async fn metadata(&self) -> Result<Line> {
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
    async fn refresh(&self) -> Result<Line> {
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

    /// Idle SSE streams: each holds a client connection and an upstream connection, so a proxy
    /// needs two file descriptors per stream. The bare Pingora holds the same streams, for the
    /// floor.
    async fn idle_streams(&self) -> Result<Vec<Line>> {
        let fd_cap = sse::open_files_limit().saturating_sub(256) / 2;
        let sse_token = token::mint(&self.key, &self.origin, &self.gateway.url("/sse"))?;
        let mut lines = Vec::new();
        for &wanted in &self.cli.streams {
            let count = wanted.min(fd_cap);
            let note = if count < wanted {
                format!(
                    " (asked for {wanted}; this machine's limit of {} open files per process allows {count})",
                    sse::open_files_limit()
                )
            } else {
                String::new()
            };
            for (name, target) in [
                ("the gateway", &self.gateway),
                ("the bare Pingora", &self.pingora_sse),
            ] {
                let descriptors = target.proc.open_descriptors();
                let before = target.proc.rss_bytes();
                let streams = sse::open(target.port, "/sse", &sse_token, count, 256).await?;
                let after = target.proc.rss_bytes();
                let per_stream = after.saturating_sub(before) as f64 / count as f64 / 1024.0;
                lines.push((
                    format!("{count} idle SSE streams through {name}{note}"),
                    format!(
                        "RSS {:.1} → {:.1} MiB: {per_stream:.1} KiB per stream",
                        before as f64 / 1048576.0,
                        after as f64 / 1048576.0
                    ),
                ));
                drop(streams);
                // Let the proxy see the closes before the next count is measured.
                wait_descriptors_closed(&target.proc, descriptors).await?;
            }
        }
        Ok(lines)
    }

    /// Instructions per request, p and c each under callgrind: repeatable where CPU time is not.
    /// Then the same gateway, the same call, on the route with 20 rules (the body read before it
    /// is forwarded and every rule tried), and on a route whose policy has no rule (what reading
    /// and parsing the body costs alone).
    async fn instructions(&self) -> Result<Vec<Line>> {
        let valgrind = program("valgrind")?;
        let dir = &self.work.dir;
        let pingora_out = dir.join("p.callgrind");
        let pingora = self
            .work
            .pingora(
                "pingora-callgrind",
                &sibling("pingora-passthrough")?,
                self.upstream.port,
                &instructions::under_callgrind(&valgrind, &pingora_out),
            )
            .await?;
        let request = tools_call(pingora.url("/mcp"), self.bearer.clone());
        let p =
            instructions::per_request(&pingora, &request, self.cli.duration, &pingora_out, 1, dir)
                .await?;

        let out = dir.join("c.callgrind");
        let (gateway, _) = self
            .work
            .gateway(
                "gateway-callgrind",
                &sibling("mcp-auth-gateway")?,
                &self.private_key,
                &self.routes,
                &Store::Sqlite,
                &instructions::under_callgrind(&valgrind, &out),
            )
            .await?;
        let mut counts = Vec::new();
        for (dump, path) in [(1, "/mcp"), (2, "/policy"), (3, "/allow")] {
            let request = tools_call(gateway.url(path), self.bearer_for(&gateway, path)?);
            let count =
                instructions::per_request(&gateway, &request, self.cli.duration, &out, dump, dir)
                    .await?;
            counts.push(count);
        }
        let [c, with_rules, read_only] = counts[..] else {
            unreachable!("three counts")
        };
        Ok(vec![
            (
                "Instructions per request (callgrind, user space only; 8 connections)".to_owned(),
                format!("p {p:.0}, c {c:.0}: c/p {:.2}", c / p),
            ),
            (
                "c on a route with 20 policy rules (callgrind, as above)".to_owned(),
                format!(
                    "{with_rules:.0} instructions per request: {:.3}× the route without a policy; \
                     a policy without rules (the body read and parsed before forwarding): {read_only:.0}, {:.3}×",
                    with_rules / c,
                    read_only / c
                ),
            ),
        ])
    }
}
