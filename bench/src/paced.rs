//! Open-loop load at a fixed rate, for latency at a given throughput (what `wrk` cannot do): request `i`
//! is due at `start + i / rate`, and its latency is counted from when it was due, not from when it was
//! sent, so a stalled target cannot hide its queue (no coordinated omission).
//!
//! The client is a bare HTTP/1.1 one over kept-alive connections — one write and a read or two per
//! request — because it shares the machine with what it measures: a full HTTP client (reqwest was tried)
//! took most of a core at 13,000 requests/s and starved the proxy it was timing.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use std::io::{Read, Write};
use std::net::TcpStream;

use crate::wrk::Request;

/// Connections the due requests are spread over, each one's requests in turn.
const CONNECTIONS: usize = 64;

/// Latency percentiles at a fixed rate.
#[derive(Debug, Clone, Copy)]
pub struct Paced {
    pub p50_ms: f64,
    pub p99_ms: f64,
}

pub async fn run(request: &Request<'_>, rate: f64, duration: Duration) -> Result<Paced> {
    let url = url::Url::parse(&request.url)?;
    let address = format!(
        "{}:{}",
        url.host_str().context("a host")?,
        url.port_or_known_default().context("a port")?
    );
    let wire = wire(request, &url);
    let total = (rate * duration.as_secs_f64()) as usize;
    tokio::task::block_in_place(|| paced(&address, &wire, rate, total))
}

/// One OS thread per connection, blocking: its sleep wakes within tens of microseconds of when it was
/// asked to, where Tokio's timer has a 1 ms grain that would release each millisecond's requests at once.
fn paced(address: &str, wire: &[u8], rate: f64, total: usize) -> Result<Paced> {
    let start = Instant::now() + Duration::from_millis(50);
    let mut latencies = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..CONNECTIONS)
            .map(|k| {
                scope.spawn(move || -> Result<Vec<Duration>> {
                    let mut stream = TcpStream::connect(address)?;
                    stream.set_nodelay(true)?;
                    let mut latencies = Vec::new();
                    let mut buf = Vec::with_capacity(4096);
                    // This connection's share: requests k, k + CONNECTIONS, k + 2 × CONNECTIONS, …
                    for i in (k..total).step_by(CONNECTIONS) {
                        let due = start + Duration::from_secs_f64(i as f64 / rate);
                        // Late because the previous answer was late: that wait is the target's, so it
                        // counts. Early: the clock starts when the request goes, after the sleep.
                        let now = Instant::now();
                        let sent = if now >= due {
                            due
                        } else {
                            std::thread::sleep(due - now);
                            Instant::now()
                        };
                        stream.write_all(wire)?;
                        read_response(&mut stream, &mut buf)?;
                        latencies.push(sent.elapsed());
                    }
                    Ok(latencies)
                })
            })
            .collect();
        let mut all = Vec::with_capacity(total);
        for thread in threads {
            all.extend(thread.join().expect("a load thread does not panic")?);
        }
        Ok::<_, anyhow::Error>(all)
    })?;
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e3;
    Ok(Paced {
        p50_ms: at(0.5),
        p99_ms: at(0.99),
    })
}

/// The request as it goes on the wire.
fn wire(request: &Request<'_>, url: &url::Url) -> Vec<u8> {
    let body = request.body.unwrap_or("");
    let mut head = format!(
        "{} {} HTTP/1.1\r\nhost: {}\r\ncontent-length: {}\r\n",
        request.method,
        &url[url::Position::BeforePath..],
        &url[url::Position::BeforeHost..url::Position::AfterPort],
        body.len()
    );
    for (name, value) in &request.headers {
        head += &format!("{name}: {value}\r\n");
    }
    head += "\r\n";
    head += body;
    head.into_bytes()
}

/// Reads one response (`Content-Length` framed, as every target here answers) and fails unless it is 2xx.
fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<()> {
    buf.clear();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = std::str::from_utf8(&buf[..end])?;
            if !head.starts_with("HTTP/1.1 2") {
                bail!("refused: {}", head.lines().next().unwrap_or(""));
            }
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .context("a response without Content-Length")?;
            if buf.len() >= end + 4 + length {
                return Ok(());
            }
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            bail!("the connection closed mid-response");
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}
