//! One bench run: start everything, measure each scenario, and gather the report.

use std::time::Duration;

use anyhow::{Context, Result};
use integration_tests::free_port;

use crate::mcp::{mcp_session, tools_call};
use crate::procs::{Proc, version};
use crate::procs::{program, wait_descriptors_closed};
use crate::report::setup;
use crate::report::{Report, Row, median};
use crate::targets::{GatewayRoutes, Store, Target, Workdir};
use crate::wrk::{self, Request, measure};
use crate::{Cli, instructions, paced, refresh, replicas, sibling, sse, token};

pub fn today() -> String {
    version("date", &["-u", "+%Y-%m-%d"])
}

pub async fn run(cli: &Cli) -> Result<Option<Report>> {
    let (nginx, haproxy) = (program("nginx")?, program("haproxy")?);
    program("wrk")?;
    program("openssl")?;
    let temp = tempfile::tempdir()?;
    let work = Workdir {
        dir: temp.path().to_owned(),
    };
    eprintln!("starting the servers (logs in {})", work.dir.display());
    let (key, private_key, public_key) = token::generate_key(&work.dir)?;

    let upstream = work.upstream(&nginx).await?;
    let sse_port = free_port();
    let mut sse_upstream = Proc::start(
        "sse-upstream",
        &std::env::current_exe()?,
        &["sse-upstream", &sse_port.to_string()],
        &[],
        &work.dir,
    )?;
    sse_upstream.wait_port(sse_port).await?;
    let backend_port = free_port();
    let routes = GatewayRoutes {
        upstream: upstream.port,
        backend: backend_port,
        sse: sse_port,
    };
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
    let origin = gateway.url("");
    let idle_rss = gateway.proc.rss_bytes();
    let backend = work
        .backend(&sibling("mcp-backend")?, backend_port, &origin)
        .await?;
    let nginx_proxy = work.nginx_proxy(&nginx, upstream.port).await?;
    let pingora = work
        .pingora(
            "pingora",
            &sibling("pingora-passthrough")?,
            upstream.port,
            &[],
        )
        .await?;
    // The framework's floor for idle streams too: a bare Pingora in front of the stream holder.
    let pingora_sse = work
        .pingora(
            "pingora-sse",
            &sibling("pingora-passthrough")?,
            sse_port,
            &[],
        )
        .await?;
    let mcp_audience = gateway.url("/mcp");
    let hap = work
        .haproxy(&haproxy, upstream.port, &public_key, &origin, &mcp_audience)
        .await?;
    let bearer = format!("Bearer {}", token::mint(&key, &origin, &mcp_audience)?);

    if cli.hold {
        for (name, target) in [
            ("upstream", &upstream),
            ("nginx", &nginx_proxy),
            ("pingora", &pingora),
            ("haproxy", &hap),
            ("gateway", &gateway),
        ] {
            println!(
                "{name:9} {} (pid {})",
                target.url("/mcp"),
                target.proc.pid()
            );
        }
        println!("metrics   http://127.0.0.1:{metrics_port}/metrics");
        let sse_token = token::mint(&key, &origin, &gateway.url("/sse"))?;
        println!(
            "Authorization: {bearer}\nidle SSE streams: {} with Authorization: Bearer {sse_token}\n\
             Ctrl-C to stop.",
            gateway.url("/sse")
        );
        tokio::signal::ctrl_c().await?;
        return Ok(None);
    }

    let post = |target: &Target| tools_call(target.url("/mcp"), bearer.clone());

    // The main table: each target in turn within a run, so that drift on the machine touches all alike.
    // The measured process is the target itself: for a, the upstream.
    let main: [(&str, &str, &Target); 5] = [
        ("a", "direct to the upstream (the limit)", &upstream),
        ("b", "nginx proxy_pass, no auth", &nginx_proxy),
        ("p", "bare Pingora pass-through (the floor)", &pingora),
        ("h", "HAProxy, ES256 JWT checked by jwt_verify", &hap),
        ("c", "mcp-auth-gateway", &gateway),
    ];
    let mut rows: Vec<Vec<Row>> = vec![Vec::new(); main.len()];
    for run in 0..cli.runs {
        for (i, (key, _, target)) in main.iter().enumerate() {
            let request = post(target);
            if run == 0 {
                // Warm-up: connections, caches, the gateway's verified-token cache.
                wrk::run(&request, cli.connections, Duration::from_secs(1), &work.dir).await?;
            }
            let row = measure(&request, cli, &work.dir, &target.proc).await?;
            eprintln!("run {} {key}: {row:?}", run + 1);
            rows[i].push(row);
        }
    }
    let c = median(&rows[4]);
    let main_rows: Vec<(&str, &str, Vec<Row>)> = main
        .iter()
        .zip(rows)
        .map(|((key, label, _), runs)| (*key, *label, runs))
        .collect();

    let mut extra = Vec::new();
    extra.push((
        "Gateway RSS at idle, after start".to_owned(),
        format!("{:.1} MiB", idle_rss as f64 / 1048576.0),
    ));

    // The same call on the route with 20 policy rules, beside c again (measured in turn, so that
    // drift touches both alike).
    let policy_request = tools_call(
        gateway.url("/policy"),
        format!(
            "Bearer {}",
            token::mint(&key, &origin, &gateway.url("/policy"))?
        ),
    );
    wrk::run(
        &policy_request,
        cli.connections,
        Duration::from_secs(1),
        &work.dir,
    )
    .await?;
    let (mut plain, mut ruled) = (Vec::new(), Vec::new());
    for _ in 0..cli.runs {
        plain.push(measure(&post(&gateway), cli, &work.dir, &gateway.proc).await?);
        ruled.push(measure(&policy_request, cli, &work.dir, &gateway.proc).await?);
    }
    let (plain, ruled) = (median(&plain), median(&ruled));
    extra.push((
        "c on a route with 20 policy rules (`/policy`), beside c's `/mcp`".to_owned(),
        format!(
            "{:.0} against {:.0} requests/s; CPU µs per request {:.1} against {:.1}: {:.3}×",
            ruled.rate,
            plain.rate,
            ruled.cpu_us,
            plain.cpu_us,
            ruled.cpu_us / plain.cpu_us
        ),
    ));

    // Latency at half of the gateway's maximum rate, open loop, against the direct path.
    let rate = (c.rate / 2.0).max(100.0);
    // The bare Pingora at the same rate shows how much of the tail is the framework's on this machine.
    let mut paced_rows = Vec::new();
    for (key, target) in [("a", &upstream), ("p", &pingora), ("c", &gateway)] {
        paced_rows.push((key, paced::run(&post(target), rate, cli.duration).await?));
    }
    let direct = paced_rows[0].1;
    let through = paced_rows[2].1;
    extra.push((
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
    ));

    // The full path: through the gateway to the real mcp-backend, in one MCP session.
    let backend_bearer = format!(
        "Bearer {}",
        token::mint(&key, &origin, &gateway.url("/backend"))?
    );
    let session = mcp_session(&gateway.url("/backend"), &backend_bearer).await?;
    let mut full = tools_call(gateway.url("/backend"), backend_bearer.clone());
    full.headers.extend([
        ("Mcp-Session-Id", session),
        ("Mcp-Protocol-Version", "2025-11-25".into()),
    ]);
    wrk::run(&full, cli.connections, Duration::from_secs(1), &work.dir).await?;
    let (g0, b0) = (gateway.proc.cpu_seconds(), backend.proc.cpu_seconds());
    let load = wrk::run(&full, cli.connections, cli.duration, &work.dir).await?;
    let (g1, b1) = (gateway.proc.cpu_seconds(), backend.proc.cpu_seconds());
    extra.push((
        "Full path to mcp-backend (`show_auth_token`)".to_owned(),
        format!(
            "{:.0} requests/s, p50 {:.3} ms, p99 {:.3} ms; CPU µs per request: gateway {:.1}, backend {:.1}",
            load.rate(),
            load.p50_ms,
            load.p99_ms,
            (g1 - g0) * 1e6 / load.requests as f64,
            (b1 - b0) * 1e6 / load.requests as f64
        ),
    ));

    // The protected resource metadata document.
    let prm = Request {
        method: "GET",
        url: gateway.url("/.well-known/oauth-protected-resource/mcp"),
        headers: vec![],
        body: None,
    };
    let row = measure(&prm, cli, &work.dir, &gateway.proc).await?;
    extra.push((
        "Protected resource metadata (`GET /.well-known/oauth-protected-resource/mcp`)".to_owned(),
        format!(
            "{:.0} requests/s, p99 {:.3} ms, {:.1} CPU µs per request",
            row.rate, row.p99_ms, row.cpu_us
        ),
    ));

    // The refresh_token grant on the sqlite store.
    let grants = refresh::grants(&origin, 16).await?;
    let g0 = gateway.proc.cpu_seconds();
    let (refreshed, seconds) =
        refresh::run(std::slice::from_ref(&origin), grants, cli.duration).await?;
    let g1 = gateway.proc.cpu_seconds();
    extra.push((
        "`refresh_token` grant, sqlite store, 16 grants refreshed in loops".to_owned(),
        format!(
            "{:.0} refreshes/s, {:.0} gateway CPU µs per refresh",
            refreshed as f64 / seconds,
            (g1 - g0) * 1e6 / refreshed as f64
        ),
    ));

    extra.extend(replicas::run(cli, &work, &private_key, &routes, &gateway).await?);

    // Idle SSE streams: each holds a client connection and an upstream connection, so a proxy needs
    // two file descriptors per stream. The bare Pingora holds the same streams, for the floor.
    let fd_cap = sse::open_files_limit().saturating_sub(256) / 2;
    let sse_token = token::mint(&key, &origin, &gateway.url("/sse"))?;
    for &wanted in &cli.streams {
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
            ("the gateway", &gateway),
            ("the bare Pingora", &pingora_sse),
        ] {
            let descriptors = target.proc.open_descriptors();
            let before = target.proc.rss_bytes();
            let streams = sse::open(target.port, "/sse", &sse_token, count, 256).await?;
            let after = target.proc.rss_bytes();
            let per_stream = after.saturating_sub(before) as f64 / count as f64 / 1024.0;
            extra.push((
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

    // Instructions per request, p and c each under callgrind: repeatable where CPU time is not.
    let valgrind = program("valgrind")?;
    let mut counted = Vec::new();
    let mut policy_bearer = String::new();
    let mut allow_bearer = String::new();
    let mut gateway_callgrind = None;
    for which in ["p", "c"] {
        let out = work.dir.join(format!("{which}.callgrind"));
        let wrapper = instructions::under_callgrind(&valgrind, &out);
        let (target, bearer) = if which == "p" {
            let name = "pingora-callgrind";
            let target = work
                .pingora(
                    name,
                    &sibling("pingora-passthrough")?,
                    upstream.port,
                    &wrapper,
                )
                .await?;
            (target, bearer.clone())
        } else {
            let (target, _) = work
                .gateway(
                    "gateway-callgrind",
                    &sibling("mcp-auth-gateway")?,
                    &private_key,
                    &routes,
                    &Store::Sqlite,
                    &wrapper,
                )
                .await?;
            let origin = target.url("");
            let bearer = format!(
                "Bearer {}",
                token::mint(&key, &origin, &target.url("/mcp"))?
            );
            policy_bearer = format!(
                "Bearer {}",
                token::mint(&key, &origin, &target.url("/policy"))?
            );
            allow_bearer = format!(
                "Bearer {}",
                token::mint(&key, &origin, &target.url("/allow"))?
            );
            (target, bearer)
        };
        let request = tools_call(target.url("/mcp"), bearer);
        let count =
            instructions::per_request(&target, &request, cli.duration, &out, 1, &work.dir).await?;
        counted.push(count);
        if which == "c" {
            gateway_callgrind = Some((target, out));
        }
    }
    // The same gateway, the same call, on the route with 20 rules: the body is read before it is
    // forwarded and every rule is tried.
    let (target, out) = gateway_callgrind.context("the gateway ran under callgrind")?;
    let request = tools_call(target.url("/policy"), policy_bearer);
    let with_rules =
        instructions::per_request(&target, &request, cli.duration, &out, 2, &work.dir).await?;
    // And on a route whose policy has no rule: what reading and parsing the body costs alone.
    let request = tools_call(target.url("/allow"), allow_bearer);
    let read_only =
        instructions::per_request(&target, &request, cli.duration, &out, 3, &work.dir).await?;
    extra.push((
        "Instructions per request (callgrind, user space only; 8 connections)".to_owned(),
        format!(
            "p {:.0}, c {:.0}: c/p {:.2}",
            counted[0],
            counted[1],
            counted[1] / counted[0]
        ),
    ));
    extra.push((
        "c on a route with 20 policy rules (callgrind, as above)".to_owned(),
        format!(
            "{with_rules:.0} instructions per request: {:.3}× the route without a policy; \
             a policy without rules (the body read and parsed before forwarding): {read_only:.0}, {:.3}×",
            with_rules / counted[1],
            read_only / counted[1]
        ),
    ));

    Ok(Some(Report {
        title: format!("mcp-auth-gateway benchmark, {}", today()),
        setup: setup(cli, &nginx, &haproxy),
        main: main_rows,
        extra,
    }))
}
