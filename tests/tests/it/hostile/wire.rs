//! A request sent as raw bytes on a connection of its own, and the answer read back as it came:
//! nothing in between tidies either up.

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use super::ANSWER_WITHIN;

/// What came back: the status, the body, and whether all of the body came (a gateway that closes
/// a connection with the client's bytes still unread resets it, and the end of an answer in flight
/// may be lost).
pub(super) struct Answer {
    pub(super) status: u16,
    pub(super) head: String,
    pub(super) body: Vec<u8>,
    pub(super) whole: bool,
}

/// Sends `bytes` on a new connection and reads the answer, `None` if the gateway closed without one.
/// Panics if nothing comes within [`ANSWER_WITHIN`].
pub(super) async fn exchange_raw(port: u16, bytes: &[u8]) -> Option<Answer> {
    let read = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        // The gateway may answer and close before it has read everything: not an error here.
        let _ = stream.write_all(bytes).await;
        let mut answer = Vec::new();
        let mut buffer = [0u8; 16 * 1024];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buffer[..n]),
            }
            if complete(&answer, bytes.starts_with(b"HEAD ")) {
                break;
            }
        }
        answer
    };
    let answer = tokio::time::timeout(ANSWER_WITHIN, read)
        .await
        .unwrap_or_else(|_| panic!("no answer within {ANSWER_WITHIN:?} to {:?}", preview(bytes)));
    let whole = complete(&answer, bytes.starts_with(b"HEAD "));
    let text = String::from_utf8_lossy(&answer);
    let status = text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()?;
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    Some(Answer {
        status,
        head: head.to_owned(),
        body: body.as_bytes().to_vec(),
        whole,
    })
}

/// Whether a response has all arrived: its head, and the body its `Content-Length` announces (none
/// for a `HEAD`, and only the head of an SSE stream).
fn complete(answer: &[u8], to_head: bool) -> bool {
    let text = String::from_utf8_lossy(answer);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    // A stream (the backend holds a session's GET open) is answered once its head is.
    if to_head
        || head
            .to_ascii_lowercase()
            .contains("content-type: text/event-stream")
    {
        return true;
    }
    let length = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse::<usize>().ok())?
    });
    match length {
        Some(length) => body.len() >= length,
        // Chunked or until close: the gateway closes (the requests say `Connection: close`).
        None => head.starts_with("HTTP/1.1 1") || body.ends_with("0\r\n\r\n"),
    }
}

pub(super) fn preview(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).into_owned()
}
