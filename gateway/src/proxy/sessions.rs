//! Binds each `Mcp-Session-Id` to the subject that opened it, so that another user's token on that
//! session is answered as an unknown session would be (404), never served; and keeps a session's GET
//! stream ahead of the requests that follow it.
//!
//! Why the order matters: once the client is told its session is initialized (the answer to its
//! `notifications/initialized`), it opens its GET stream, the channel for server-to-client messages
//! not tied to a request, and, without waiting for it, sends its next request, say a `tools/call`.
//! A server that asks the client something during that call (an elicitation, a sampling request) on
//! the GET stream loses it if the GET has not reached the server yet: the TypeScript SDK stores it
//! for a replay that never comes, and the client waits until it times out. Direct, the server reads
//! the GET before it has got far with the call. Through a proxy the two travel on separate
//! connections and whichever the proxy reads first reaches the server well ahead. So the gateway
//! holds a session's other requests while its GET stream is expected (for at most
//! [`EXPECTED_STREAM_WAIT`], a client may never open one) or on its way to the backend (until the
//! backend has answered it, at most [`STREAM_OPEN_WAIT`]).

use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::cache::Cache;

/// Sessions idle longer than this are forgotten.
pub(super) const IDLE: Duration = Duration::from_secs(24 * 3600);
/// Sessions kept at most; beyond it, the idle ones are forgotten first, then the longest idle.
const SESSIONS_KEPT: usize = 100_000;
/// The longest a request waits for a GET stream that is expected but has not arrived. The client
/// sends its GET and its next request together, so they reach the gateway within a few milliseconds
/// of each other; a client that opens no GET stream pays this once per session.
pub(super) const EXPECTED_STREAM_WAIT: Duration = Duration::from_millis(50);
/// The longest a request waits for a GET that has arrived to be answered by the backend. A wait
/// that runs out ends the wait for every request of the session, so a backend that holds its
/// response headers back costs each GET at most this once.
pub(super) const STREAM_OPEN_WAIT: Duration = Duration::from_secs(1);

struct Binding {
    owner: String,
    stream: Option<StreamWait>,
}

/// A session's GET stream that its other requests must not overtake.
struct StreamWait {
    /// `false` while the GET is only expected, `true` once one arrived; closed when that GET's
    /// stream is open at the backend (or its request ended).
    receiver: watch::Receiver<bool>,
    /// Kept here while the GET is only expected; the GET takes it.
    expected: Option<watch::Sender<bool>>,
}

/// Who owns the sessions `caller` opens: their `sub` when the gateway issued their token to a user;
/// the client, marked as one, for a machine client's; else the issuer's too, since another issuer's
/// subject may spell a gateway user's (and its users another issuer's).
pub(super) fn session_owner<'a>(
    gateway_issuer: &str,
    caller: &'a crate::tokens::access::AccessClaims,
) -> std::borrow::Cow<'a, str> {
    if caller.iss != gateway_issuer {
        // A space is in no issuer URL.
        std::borrow::Cow::Owned(format!("{} {}", caller.iss, caller.sub))
    } else if caller.gid.is_none() && caller.sub == caller.client_id {
        // A machine client's token names the client as its subject: not a user of that name.
        std::borrow::Cow::Owned(format!("{} client {}", caller.iss, caller.client_id))
    } else {
        std::borrow::Cow::Borrowed(&caller.sub)
    }
}

/// The key a session is bound under: its route and its id, so that an id one backend issued means
/// nothing on another route. A route's path holds no space, and a session id only visible ASCII.
pub(super) fn session_key(route: &str, id: &str) -> String {
    format!("{route} {id}")
}

/// Each session's binding, until it has been idle for [`IDLE`].
pub(super) struct SessionBindings {
    map: Cache<String, Binding, Instant>,
}

impl Default for SessionBindings {
    fn default() -> Self {
        Self {
            map: Cache::new(SESSIONS_KEPT),
        }
    }
}

/// Where an admitted request stands in its session's order.
pub(super) enum Order {
    /// A GET: it opens the session's stream; the session's other requests wait until this guard is
    /// dropped (when the backend has answered it, or the request has ended otherwise).
    OpensStream(StreamOpening),
    /// Any other request: it goes to the backend once this stream is open, if one was expected or
    /// being opened when the request arrived.
    After(Option<PendingStream>),
}

/// Held by a GET on its way to the backend; dropping it lets the session's other requests go.
pub(crate) struct StreamOpening {
    _open_when_dropped: watch::Sender<bool>,
}

/// A GET stream that an admitted request must not overtake.
pub(crate) struct PendingStream(watch::Receiver<bool>);

impl PendingStream {
    /// Waits until the stream is open at the backend (or its request ended): at most
    /// [`EXPECTED_STREAM_WAIT`] for an expected GET to arrive, then at most [`STREAM_OPEN_WAIT`] for
    /// the backend to answer it. Returns `false` when it gave up waiting.
    pub(crate) async fn opened(&mut self) -> bool {
        let mut limit = if *self.0.borrow_and_update() {
            STREAM_OPEN_WAIT
        } else {
            EXPECTED_STREAM_WAIT
        };
        loop {
            match tokio::time::timeout(limit, self.0.changed()).await {
                Err(_) => return false,
                // The sender is gone: the stream is open, or its request ended.
                Ok(Err(_)) => return true,
                // The expected GET arrived: now wait for the backend to answer it.
                Ok(Ok(())) => limit = STREAM_OPEN_WAIT,
            }
        }
    }
}

impl SessionBindings {
    /// Whether `sub` may use `session`: only the user the backend opened it for. A session the
    /// gateway has not seen opened (or has forgotten) is answered as unknown (`None`), and the client
    /// starts a new one, rather than bound to whoever presents it first. `opens_stream` says the
    /// request is a GET, which the session's other requests must not overtake.
    pub(super) fn admit(&self, session: &str, sub: &str, opens_stream: bool) -> Option<Order> {
        let now = Instant::now();
        self.map
            .update(session, now, |binding, idle_at| {
                if binding.owner != sub {
                    return None;
                }
                *idle_at = now + IDLE;
                Some(Self::order(binding, opens_stream))
            })
            .flatten()
    }

    /// Where a request of the session `binding` stands in the order of its requests.
    fn order(binding: &mut Binding, opens_stream: bool) -> Order {
        if opens_stream {
            // The expected GET takes over the channel its session's requests already wait on.
            let sender = match binding.stream.as_mut().and_then(|w| w.expected.take()) {
                Some(sender) => sender,
                None => {
                    let (sender, receiver) = watch::channel(true);
                    binding.stream = Some(StreamWait {
                        receiver,
                        expected: None,
                    });
                    sender
                }
            };
            sender.send_replace(true);
            return Order::OpensStream(StreamOpening {
                _open_when_dropped: sender,
            });
        }
        let pending = match &binding.stream {
            Some(wait) if wait.receiver.has_changed().is_ok() => {
                Some(PendingStream(wait.receiver.clone()))
            }
            Some(_) => {
                // Opened (or ended) since: nothing left to wait for.
                binding.stream = None;
                None
            }
            None => None,
        };
        Order::After(pending)
    }

    /// Records that the client was told `session` is initialized: its GET stream is expected next.
    pub(super) fn expect_stream(&self, session: &str) {
        self.map.update(session, Instant::now(), |binding, _| {
            if binding.stream.is_none() {
                let (sender, receiver) = watch::channel(false);
                binding.stream = Some(StreamWait {
                    receiver,
                    expected: Some(sender),
                });
            }
        });
    }

    /// Stops holding `session`'s requests for `stream`: a request waited for it in vain. (A GET that
    /// came later is still waited for.)
    pub(super) fn stop_waiting(&self, session: &str, stream: &PendingStream) {
        self.map.update(session, Instant::now(), |binding, _| {
            let waits_for_it = binding
                .stream
                .as_ref()
                .is_some_and(|w| w.receiver.same_channel(&stream.0));
            if waits_for_it {
                binding.stream = None;
            }
        });
    }

    /// Records that the backend opened `session` for `sub`; whether it was not bound before.
    pub(super) fn bind(&self, session: &str, sub: &str) -> bool {
        let now = Instant::now();
        let mut made = false;
        let new = || {
            made = true;
            let binding = Binding {
                owner: sub.to_owned(),
                stream: None,
            };
            (binding, now + IDLE)
        };
        self.map.upsert(session.to_owned(), now, new, |_, _| ());
        made
    }

    pub(super) fn end(&self, session: &str) {
        self.map.remove(session);
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

    #[tokio::test(start_paused = true)]
    async fn after_initialized_a_request_waits_for_the_get_the_client_sends_with_it() {
        let sessions = SessionBindings::default();
        sessions.bind("s1", "alice");
        sessions.expect_stream("s1");
        // The call overtook the GET on the way to the gateway.
        let mut call = pending(sessions.admit("s1", "alice", false)).expect("a GET is expected");
        let waiting = tokio::spawn(async move { call.opened().await });
        tokio::time::sleep(EXPECTED_STREAM_WAIT / 2).await;
        let get = opening(sessions.admit("s1", "alice", true));
        // The GET arrived in time: now the call waits for the backend to answer it, longer than it
        // would wait for a GET that never comes.
        tokio::time::sleep(EXPECTED_STREAM_WAIT * 4).await;
        assert!(!waiting.is_finished(), "held while the GET is on its way");
        drop(get);
        assert!(waiting.await.unwrap(), "let go once the GET is open");
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_opens_no_get_stream_waits_once() {
        let sessions = SessionBindings::default();
        sessions.bind("s1", "alice");
        sessions.expect_stream("s1");
        let mut first = pending(sessions.admit("s1", "alice", false)).expect("a GET is expected");
        let mut second = pending(sessions.admit("s1", "alice", false)).expect("a GET is expected");
        let started = tokio::time::Instant::now();
        assert!(!first.opened().await, "gave up");
        assert_eq!(started.elapsed(), EXPECTED_STREAM_WAIT);
        sessions.stop_waiting("s1", &first);
        assert!(second.opened().await, "the others are let go with it");
        assert_eq!(started.elapsed(), EXPECTED_STREAM_WAIT);
        assert!(
            pending(sessions.admit("s1", "alice", false)).is_none(),
            "later requests do not wait"
        );
        sessions.expect_stream("s1");
        let _get = opening(sessions.admit("s1", "alice", true));
        assert!(
            pending(sessions.admit("s1", "alice", false)).is_some(),
            "a GET opened later is still waited for"
        );
    }

    #[test]
    fn other_sessions_do_not_wait() {
        let sessions = SessionBindings::default();
        sessions.bind("s1", "alice");
        sessions.bind("s2", "alice");
        let _get = opening(sessions.admit("s1", "alice", true));
        sessions.expect_stream("s1");
        assert!(pending(sessions.admit("s2", "alice", false)).is_none());
    }

    #[test]
    fn a_machine_client_never_owns_a_users_sessions_nor_another_issuers_user() {
        let gateway = "https://gw.example";
        let claims = |iss: &str, sub: &str, client_id: &str, gid: Option<&str>| {
            crate::tokens::access::AccessClaims {
                iss: iss.into(),
                sub: sub.into(),
                aud: crate::tokens::access::Audience::One(format!("{gateway}/mcp")),
                client_id: client_id.into(),
                scope: "mcp".into(),
                exp: 2,
                iat: 1,
                nbf: None,
                jti: "j".into(),
                email: None,
                preferred_username: None,
                groups: Vec::new(),
                groups_truncated: false,
                gid: gid.map(str::to_owned),
            }
        };
        let user = claims(gateway, "nightly", "some-app", Some("g1"));
        let machine = claims(gateway, "nightly", "nightly", None);
        let other_issuers = claims("https://idp.example", "nightly", "x", None);
        let owners = [&user, &machine, &other_issuers].map(|c| session_owner(gateway, c));
        assert_eq!(owners[0], "nightly", "a user's, as before");
        assert_ne!(
            owners[1], owners[0],
            "the machine client of a user's name is not the user"
        );
        assert_ne!(owners[2], owners[0]);
        assert_ne!(owners[2], owners[1]);
    }
}
