//! An SSE stream a test holds open through the gateway: read until an event has come, and watched
//! for its end, which must be clean (the last chunk of HTTP/1.1, HTTP/2's end of stream), not a cut.

use std::time::{Duration, Instant};

use axum::body::Bytes;
use futures::StreamExt as _;
use futures::stream::BoxStream;

pub struct OpenStream {
    body: BoxStream<'static, reqwest::Result<Bytes>>,
}

impl OpenStream {
    /// The stream of a response (whose head has come).
    pub fn of(response: reqwest::Response) -> Self {
        Self {
            body: response.bytes_stream().boxed(),
        }
    }

    /// Reads until `text` has come (within 5 s).
    pub async fn until(&mut self, text: &str) {
        let mut seen = String::new();
        while !seen.contains(text) {
            let chunk = tokio::time::timeout(Duration::from_secs(5), self.body.next())
                .await
                .unwrap_or_else(|_| panic!("{text:?} did not come; came {seen:?}"))
                .unwrap_or_else(|| panic!("the stream ended before {text:?}; came {seen:?}"))
                .expect("the stream is readable");
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// Waits for the stream to end, which it must do cleanly and within `within`: when it did.
    pub async fn ends_cleanly_within(&mut self, within: Duration) -> Instant {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.body.next()).await {
                Err(_) => panic!("the stream was still open after {within:?}"),
                Ok(None) => return Instant::now(),
                Ok(Some(Ok(_))) => continue,
                Ok(Some(Err(error))) => panic!("the stream was cut, not ended: {error:?}"),
            }
        }
    }
}
