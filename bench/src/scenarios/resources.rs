//! The scenarios that measure what a proxy holds and spends: memory per idle SSE stream, and
//! instructions per request under callgrind.

use anyhow::Result;

use super::{Bench, Line};
use crate::mcp::tools_call;
use crate::procs::{program, wait_descriptors_closed};
use crate::targets::{EXTERNAL_ISSUER, Store};
use crate::{instructions, sibling, sse, token};

impl Bench<'_> {
    /// Idle SSE streams: each holds a client connection and an upstream connection, so a proxy
    /// needs two file descriptors per stream. The bare Pingora holds the same streams, for the
    /// floor.
    pub(super) async fn idle_streams(&self) -> Result<Vec<Line>> {
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
    pub(super) async fn instructions(&self) -> Result<Vec<Line>> {
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
        for (dump, path) in [(1, "/mcp"), (2, "/policy"), (3, "/allow"), (4, "/external")] {
            let bearer = if path == "/external" {
                let token = token::mint(&self.key, EXTERNAL_ISSUER, &gateway.url(path))?;
                format!("Bearer {token}")
            } else {
                self.bearer_for(&gateway, path)?
            };
            let request = tools_call(gateway.url(path), bearer);
            let count =
                instructions::per_request(&gateway, &request, self.cli.duration, &out, dump, dir)
                    .await?;
            counts.push(count);
        }
        let [c, with_rules, read_only, external] = counts[..] else {
            unreachable!("four counts")
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
            (
                "c on a route taking another issuer's tokens (callgrind, as above)".to_owned(),
                format!(
                    "{external:.0} instructions per request: {:.3}× the gateway's own on `/mcp` (at most 1.03×: {})",
                    external / c,
                    if external / c <= 1.03 {
                        "met"
                    } else {
                        "**not met**"
                    }
                ),
            ),
        ])
    }
}
