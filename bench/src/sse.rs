//! Idle SSE streams held open through the gateway: the upstream side (a process of its own, so each side
//! has its own file-descriptor budget) answers `GET` with an event stream and then stays quiet; the client
//! side opens the streams, waits until each has its first event, and holds them.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Serves idle event streams on `port` until killed.
pub async fn serve_upstream(port: u16) -> Result<()> {
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    loop {
        let (mut stream, _) = listener.accept().await?;
        tokio::spawn(async move {
            if read_head(&mut stream).await.is_err() {
                return;
            }
            let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n\
                        transfer-encoding: chunked\r\n\r\n";
            if stream.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            // A comment now, so the client knows the stream is open, then one every 30 s, as servers do
            // to keep intermediaries from timing out an idle stream; until the proxy closes its side,
            // so that closed streams give their descriptors back at once.
            let mut closed = [0u8; 64];
            while stream.write_all(b"8\r\n: open\n\n\r\n").await.is_ok() {
                tokio::select! {
                    _ = stream.read(&mut closed) => return,
                    _ = tokio::time::sleep(Duration::from_secs(30)) => {}
                }
            }
        });
    }
}

/// Reads up to the end of an HTTP head (a `GET` has no body to follow it).
async fn read_head(stream: &mut TcpStream) -> Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            bail!("closed before the end of the head");
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.windows(4).any(|w| w == b"\r\n\r\n") {
            return Ok(());
        }
        if buf.len() > 64 * 1024 {
            bail!("a head over 64 KiB");
        }
    }
}

/// Opens `count` streams to `port` at `path` with `token`, at most `parallel` being set up at once, and
/// returns them once every one has answered 200 and delivered its first event.
pub async fn open(
    port: u16,
    path: &str,
    token: &str,
    count: usize,
    parallel: usize,
) -> Result<Vec<TcpStream>> {
    let request = format!(
        "GET {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\nauthorization: Bearer {token}\r\n\
         accept: text/event-stream\r\n\r\n"
    );
    let mut streams = Vec::with_capacity(count);
    let mut pending = tokio::task::JoinSet::new();
    let mut started = 0;
    while streams.len() < count {
        while started < count && pending.len() < parallel {
            let request = request.clone();
            pending.spawn(async move {
                let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
                stream.write_all(request.as_bytes()).await?;
                let mut seen = Vec::new();
                let mut chunk = [0u8; 1024];
                // The status first: a refusal keeps the connection open and would never send an event.
                while !seen.windows(6).any(|w| w == b": open") {
                    let n = stream.read(&mut chunk).await?;
                    if n == 0 {
                        bail!("closed: {}", String::from_utf8_lossy(&seen));
                    }
                    seen.extend_from_slice(&chunk[..n]);
                    if seen.len() >= 12 && !seen.starts_with(b"HTTP/1.1 200") {
                        bail!("refused: {}", String::from_utf8_lossy(&seen));
                    }
                }
                Ok::<_, anyhow::Error>(stream)
            });
            started += 1;
        }
        let stream = pending.join_next().await.context("no stream pending")???;
        streams.push(stream);
    }
    Ok(streams)
}

/// The soft limit on open files of this process (the gateway, started from it, has the same).
pub fn open_files_limit() -> usize {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|limits| {
            limits
                .lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(1024)
}
