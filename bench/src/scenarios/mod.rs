//! One bench run: start everything, measure each scenario, and gather the report. The scenarios are
//! methods of [`Bench`]: the proxied requests and their latency in [`requests`], the idle streams'
//! memory and the instructions per request in [`resources`].

mod requests;
mod resources;

use std::path::Path;

use anyhow::Result;
use integration_tests::free_port;

use crate::mcp::tools_call;
use crate::procs::program;
use crate::procs::{Proc, version};
use crate::report::Report;
use crate::report::setup;
use crate::targets::{GatewayRoutes, Store, Target, Workdir};
use crate::wrk::Request;
use crate::{Cli, replicas, sibling, token};
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
    extra.push(bench.external_issuer().await?);
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
}
