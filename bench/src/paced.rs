//! Open-loop load at a fixed rate, for latency at a given throughput (what `wrk` cannot do): request `i`
//! is due at `start + i / rate`, and its latency is counted from when it was due, not from when it was
//! sent, so a stalled target cannot hide its queue (no coordinated omission).

use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::wrk::Request;

/// Latency percentiles at a fixed rate.
#[derive(Debug, Clone, Copy)]
pub struct Paced {
    pub p50_ms: f64,
    pub p99_ms: f64,
}

pub async fn run(request: &Request<'_>, rate: f64, duration: Duration) -> Result<Paced> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .http1_only()
        .build()?;
    let mut builder = client.request(request.method.parse()?, &request.url);
    for (name, value) in &request.headers {
        builder = builder.header(*name, value);
    }
    if let Some(body) = request.body {
        builder = builder.body(body.to_owned());
    }
    let template = builder.build()?;
    let total = (rate * duration.as_secs_f64()) as u64;
    let start = Instant::now() + Duration::from_millis(50);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..total {
        let due = start + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(due.into()).await;
        let request = template.try_clone().expect("a body that can be cloned");
        let client = client.clone();
        tasks.spawn(async move {
            let ok = client
                .execute(request)
                .await
                .is_ok_and(|r| r.status().is_success());
            (ok, due.elapsed())
        });
    }
    let mut latencies = Vec::with_capacity(total as usize);
    let mut failed = 0;
    while let Some(joined) = tasks.join_next().await {
        let (ok, latency) = joined?;
        if !ok {
            failed += 1;
        }
        latencies.push(latency);
    }
    if failed > 0 {
        bail!(
            "{failed} of {total} paced requests to {} failed",
            request.url
        );
    }
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e3;
    Ok(Paced {
        p50_ms: at(0.5),
        p99_ms: at(0.99),
    })
}
