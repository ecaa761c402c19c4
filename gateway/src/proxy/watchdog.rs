//! Requests the gateway ends itself: a body that has not arrived whole within `limits.body_timeout`
//! (on HTTP/2 nothing else bounds it), and a stream whose access has ended — its token expired, its
//! grant revoked (here, on another replica, or from the command line), its route removed or
//! changed by a reload so that the token no longer passes, or a policy that would now refuse what
//! it carries or filters.
//!
//! Pingora lets no one end a request from outside its own task, so the gateway ends it where it
//! can: at its backend connection. That socket is shut down, the proxying fails at once, and
//! [`super::failure`] answers `408` for a body too slow, or ends a stream's response cleanly (the
//! last chunk of HTTP/1.1, `END_STREAM` of HTTP/2), so that the client reconnects and meets the
//! answer a new request gets. The socket is a copy of the connection's descriptor taken while the
//! request holds it, so a shut-down never reaches a connection that has moved on.
//!
//! [`super::watch`], a background service, looks at every watched request five times a second.

use std::collections::HashMap;
use std::os::fd::{BorrowedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::config::{Config, Kind};
use crate::tokens::access::AccessClaims;

/// Why the gateway ended a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// The body did not arrive whole in time.
    BodyTimeout,
    /// The stream's token expired.
    Expired,
    /// Its token or grant was revoked.
    Revoked,
    /// A reload removed its route.
    RouteRemoved,
    /// A reload changed its route so that the token no longer passes (its audience or scopes).
    AccessChanged,
    /// A reload changed the route's policy: a call the stream carries is no longer allowed, or the
    /// lists it filters would be filtered otherwise.
    PolicyChanged,
}

impl Ending {
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Ending::BodyTimeout => "body_timeout",
            Ending::Expired => "token_expired",
            Ending::Revoked => "revoked",
            Ending::RouteRemoved => "route_removed",
            Ending::AccessChanged => "access_changed",
            Ending::PolicyChanged => "policy_changed",
        }
    }
}

/// What a stream was let in on, to ask again whether it would be.
pub(crate) struct StreamAccess {
    pub claims: Arc<AccessClaims>,
    /// The config the request began under, and its route there.
    pub config: Arc<Config>,
    pub route: usize,
    /// The tools, resources and prompts its request was allowed to use.
    pub calls: Vec<(Kind, String)>,
    /// Whether its answers are lists the route's policy filters (a GET stream, or lists asked).
    pub lists: bool,
}

/// The backend connection of a watched request.
enum Backend {
    NotYet,
    /// A copy of the connection's socket, shut down to end the request.
    Connected(std::net::TcpStream),
    /// The response is done and the connection may serve another request: not to be touched.
    Released,
}

pub(super) struct State {
    pub body_deadline: Option<Instant>,
    pub stream: Option<StreamAccess>,
    backend: Backend,
    pub ending: Option<Ending>,
}

/// One watched request.
pub(crate) struct Watched {
    state: Mutex<State>,
}

impl Watched {
    pub(super) fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("not poisoned")
    }

    /// Why the gateway ended the request, if it did.
    pub(crate) fn ending(&self) -> Option<Ending> {
        self.state().ending
    }

    /// Ends the request: its backend connection is shut down (at once, or as soon as it has one).
    pub(crate) fn end(&self, why: Ending) {
        let mut state = self.state();
        if state.ending.is_some() {
            return;
        }
        state.ending = Some(why);
        if let Backend::Connected(socket) = &state.backend {
            let _ = socket.shutdown(std::net::Shutdown::Both);
        }
    }

    /// The body has arrived whole.
    pub(crate) fn body_done(&self) {
        self.state().body_deadline = None;
    }

    /// The response is done: the backend connection is no longer this request's.
    pub(crate) fn released(&self) {
        self.state().backend = Backend::Released;
    }

    /// The request's backend connection: `fd` is its descriptor, open while the request holds it.
    pub(crate) fn connected(&self, fd: RawFd) {
        let mut state = self.state();
        if !matches!(state.backend, Backend::NotYet) {
            return;
        }
        // SAFETY: Pingora hands the descriptor of the connection it is about to use for this
        // request, open for as long as the request holds it; it is only copied here.
        #[allow(unsafe_code)]
        let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
        let Ok(copy) = borrowed.try_clone_to_owned() else {
            return;
        };
        let socket = std::net::TcpStream::from(copy);
        if state.ending.is_some() {
            let _ = socket.shutdown(std::net::Shutdown::Both);
        }
        state.backend = Backend::Connected(socket);
    }

    /// Watches the request as a stream that ends when its access does.
    pub(crate) fn stream(&self, access: StreamAccess) {
        self.state().stream = Some(access);
    }
}

/// Every watched request, by a number of its own.
#[derive(Default)]
pub(crate) struct Watchdog {
    watched: Mutex<HashMap<u64, Arc<Watched>>>,
    next: AtomicU64,
}

/// A request's place among the watched; dropped with the request.
pub(crate) struct WatchHandle {
    id: u64,
    pub watched: Arc<Watched>,
    watchdog: Arc<Watchdog>,
}

impl Drop for WatchHandle {
    fn drop(&mut self) {
        self.watchdog
            .watched
            .lock()
            .expect("not poisoned")
            .remove(&self.id);
    }
}

impl Watchdog {
    /// Watches a request whose body must have arrived by `body_deadline`, if given.
    pub(crate) fn watch(self: &Arc<Self>, body_deadline: Option<Instant>) -> WatchHandle {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let watched = Arc::new(Watched {
            state: Mutex::new(State {
                body_deadline,
                stream: None,
                backend: Backend::NotYet,
                ending: None,
            }),
        });
        self.watched
            .lock()
            .expect("not poisoned")
            .insert(id, watched.clone());
        WatchHandle {
            id,
            watched,
            watchdog: self.clone(),
        }
    }

    /// Every request watched now.
    pub(crate) fn all(&self) -> Vec<Arc<Watched>> {
        self.watched
            .lock()
            .expect("not poisoned")
            .values()
            .cloned()
            .collect()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.watched.lock().unwrap().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handle_dropped_is_no_longer_watched() {
        let watchdog = Arc::new(Watchdog::default());
        let first = watchdog.watch(None);
        let second = watchdog.watch(Some(Instant::now()));
        assert_eq!(watchdog.len(), 2);
        drop(first);
        assert_eq!(watchdog.len(), 1);
        drop(second);
        assert_eq!(watchdog.len(), 0);
    }

    #[test]
    fn ending_shuts_the_backend_socket_down_now_or_once_connected() {
        use std::io::Read as _;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        let watchdog = Arc::new(Watchdog::default());
        let handle = watchdog.watch(None);
        handle.watched.end(Ending::Revoked);
        handle
            .watched
            .connected(std::os::fd::AsRawFd::as_raw_fd(&client));
        // The backend sees the connection end; the request's own descriptor stays open.
        let mut buffer = [0u8; 1];
        assert_eq!(server.read(&mut buffer).unwrap(), 0);
        assert_eq!(handle.watched.ending(), Some(Ending::Revoked));
        drop(client);
    }
}
