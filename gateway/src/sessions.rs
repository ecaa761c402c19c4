//! Binds each `Mcp-Session-Id` to the subject that opened it, so that another user's token on that
//! session is answered as an unknown session would be (404), never served; and keeps a session's GET
//! stream ahead of the requests that follow it.
//!
//! Why the order matters: a client opens its GET stream (the channel for server-to-client messages
//! not tied to a request) and, without waiting for it, sends its next request, say a `tools/call`. A
//! server that asks the client something during that call (an elicitation, a sampling request) and
//! sends it on the GET stream loses it if the GET has not reached the server yet: the TypeScript SDK
//! stores it for a replay that never comes, and the client waits until it times out. Direct, the
//! GET nearly always gets there first. Through a proxy the two travel on separate upstream
//! connections (one reused from the pool, one newly opened), so the later request could overtake
//! the GET. The gateway therefore holds a session's requests until a GET that arrived before them
//! has been answered by the backend (its stream is open there), for at most [`STREAM_OPEN_WAIT`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::watch;

/// Sessions idle longer than this are forgotten.
const IDLE: Duration = Duration::from_secs(24 * 3600);
const CAPACITY: usize = 100_000;
/// The longest a request waits for its session's GET stream to open. A backend that has not
/// answered the GET by then is not waited for any longer, by this request or any later one, so a
/// backend that holds its response headers back costs each session at most this once.
pub const STREAM_OPEN_WAIT: Duration = Duration::from_secs(1);

struct Binding {
    owner: String,
    seen: Instant,
    /// A GET stream of this session on its way to the backend: closed once it is open there.
    opening: Option<watch::Receiver<()>>,
}

#[derive(Default)]
pub struct SessionBindings {
    map: Mutex<HashMap<String, Binding>>,
}

/// Where an admitted request stands in its session's order.
pub enum Order {
    /// A GET: it opens the session's stream; later requests wait until this guard is dropped (when
    /// the backend has answered it, or the request has ended otherwise).
    OpensStream(StreamOpening),
    /// Any other request: it goes to the backend once this stream is open, if one was being opened
    /// when the request arrived.
    After(Option<PendingStream>),
}

/// Held by a GET on its way to the backend; dropping it lets the session's later requests go.
pub struct StreamOpening {
    _open_when_dropped: watch::Sender<()>,
}

/// A GET stream that an admitted request must not overtake.
pub struct PendingStream(watch::Receiver<()>);

impl PendingStream {
    /// Waits until the stream is open at the backend (or its request ended), at most
    /// [`STREAM_OPEN_WAIT`]. Returns `false` when it gave up waiting.
    pub async fn opened(&mut self) -> bool {
        // The sender never sends: `changed` resolves (with an error) when it is dropped.
        tokio::time::timeout(STREAM_OPEN_WAIT, self.0.changed())
            .await
            .is_ok()
    }
}

impl SessionBindings {
    /// Whether `sub` may use `session`: only the user the upstream opened it for. A session the
    /// gateway has not seen opened (or has forgotten) is answered as unknown (`None`), and the client
    /// starts a new one, rather than bound to whoever presents it first. `opens_stream` says the
    /// request is a GET, which later requests of the session must not overtake.
    pub fn admit(&self, session: &str, sub: &str, opens_stream: bool) -> Option<Order> {
        let mut map = self.map.lock().expect("not poisoned");
        let binding = map.get_mut(session).filter(|b| b.owner == sub)?;
        binding.seen = Instant::now();
        if opens_stream {
            let (sender, receiver) = watch::channel(());
            binding.opening = Some(receiver);
            return Some(Order::OpensStream(StreamOpening {
                _open_when_dropped: sender,
            }));
        }
        let pending = match &binding.opening {
            Some(receiver) if receiver.has_changed().is_ok() => {
                Some(PendingStream(receiver.clone()))
            }
            Some(_) => {
                // Opened (or ended) since: nothing left to wait for.
                binding.opening = None;
                None
            }
            None => None,
        };
        Some(Order::After(pending))
    }

    /// Stops holding `session`'s requests for `stream`: a request waited [`STREAM_OPEN_WAIT`] for it
    /// in vain. (A GET that came later is still waited for.)
    pub fn stop_waiting(&self, session: &str, stream: &PendingStream) {
        if let Some(binding) = self.map.lock().expect("not poisoned").get_mut(session)
            && binding
                .opening
                .as_ref()
                .is_some_and(|o| o.same_channel(&stream.0))
        {
            binding.opening = None;
        }
    }

    /// Records that the upstream opened `session` for `sub`.
    pub fn bind(&self, session: &str, sub: &str) {
        let mut map = self.map.lock().expect("not poisoned");
        Self::make_room(&mut map);
        map.entry(session.to_owned()).or_insert_with(|| Binding {
            owner: sub.to_owned(),
            seen: Instant::now(),
            opening: None,
        });
    }

    pub fn end(&self, session: &str) {
        self.map.lock().expect("not poisoned").remove(session);
    }

    fn make_room(map: &mut HashMap<String, Binding>) {
        if map.len() >= CAPACITY {
            map.retain(|_, b| b.seen.elapsed() < IDLE);
            if map.len() >= CAPACITY {
                // Still full of live sessions: drop the oldest tenth.
                let mut ages: Vec<Instant> = map.values().map(|b| b.seen).collect();
                ages.sort_unstable();
                let cutoff = ages[ages.len() / 10];
                map.retain(|_, b| b.seen > cutoff);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(order: Option<Order>) -> Option<PendingStream> {
        match order.expect("admitted") {
            Order::After(pending) => pending,
            Order::OpensStream(_) => panic!("not a GET"),
        }
    }

    fn opening(order: Option<Order>) -> StreamOpening {
        match order.expect("admitted") {
            Order::OpensStream(opening) => opening,
            Order::After(_) => panic!("a GET"),
        }
    }

    #[test]
    fn a_session_serves_only_its_owner() {
        let sessions = SessionBindings::default();
        sessions.bind("s1", "alice");
        assert!(sessions.admit("s1", "alice", false).is_some());
        assert!(sessions.admit("s1", "bob", false).is_none());
        assert!(sessions.admit("s1", "bob", true).is_none());
        assert!(
            sessions.admit("s2", "bob", false).is_none(),
            "a session never opened through the gateway is unknown"
        );
        sessions.end("s1");
        assert!(
            sessions.admit("s1", "alice", false).is_none(),
            "an ended session is unknown"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_waits_for_the_get_stream_that_arrived_before_it() {
        let sessions = SessionBindings::default();
        sessions.bind("s1", "alice");
        assert!(
            pending(sessions.admit("s1", "alice", false)).is_none(),
            "no stream being opened: nothing to wait for"
        );
        let get = opening(sessions.admit("s1", "alice", true));
        let mut call = pending(sessions.admit("s1", "alice", false)).expect("the GET is pending");
        let waiting = tokio::spawn(async move { call.opened().await });
        tokio::time::sleep(STREAM_OPEN_WAIT / 2).await;
        assert!(!waiting.is_finished(), "held while the GET is on its way");
        drop(get);
        assert!(waiting.await.unwrap(), "let go once the GET is open");
        assert!(
            pending(sessions.admit("s1", "alice", false)).is_none(),
            "an open stream holds nothing back"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_get_that_is_never_answered_is_waited_for_once() {
        let sessions = SessionBindings::default();
        sessions.bind("s1", "alice");
        let _get = opening(sessions.admit("s1", "alice", true));
        let mut call = pending(sessions.admit("s1", "alice", false)).expect("the GET is pending");
        let started = tokio::time::Instant::now();
        assert!(!call.opened().await, "gave up");
        assert_eq!(started.elapsed(), STREAM_OPEN_WAIT);
        sessions.stop_waiting("s1", &call);
        assert!(
            pending(sessions.admit("s1", "alice", false)).is_none(),
            "later requests do not wait for it again"
        );
    }

    #[test]
    fn other_sessions_do_not_wait() {
        let sessions = SessionBindings::default();
        sessions.bind("s1", "alice");
        sessions.bind("s2", "alice");
        let _get = opening(sessions.admit("s1", "alice", true));
        assert!(pending(sessions.admit("s2", "alice", false)).is_none());
    }
}
