//! Binds each `Mcp-Session-Id` to the subject that opened it, so that another user's token on that
//! session is answered as an unknown session would be (404), never served.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Sessions idle longer than this are forgotten.
const IDLE: Duration = Duration::from_secs(24 * 3600);
const CAPACITY: usize = 100_000;

#[derive(Default)]
pub struct SessionBindings {
    map: Mutex<HashMap<String, (String, Instant)>>,
}

impl SessionBindings {
    /// Whether `sub` may use `session`: only the user the upstream opened it for. A session the
    /// gateway has not seen opened (or has forgotten) is answered as unknown, and the client starts a
    /// new one, rather than bound to whoever presents it first.
    pub fn admit(&self, session: &str, sub: &str) -> bool {
        let mut map = self.map.lock().expect("not poisoned");
        match map.get_mut(session) {
            Some((owner, seen)) if owner == sub => {
                *seen = Instant::now();
                true
            }
            _ => false,
        }
    }

    /// Records that the upstream opened `session` for `sub`.
    pub fn bind(&self, session: &str, sub: &str) {
        let mut map = self.map.lock().expect("not poisoned");
        Self::make_room(&mut map);
        map.entry(session.to_owned())
            .or_insert_with(|| (sub.to_owned(), Instant::now()));
    }

    pub fn end(&self, session: &str) {
        self.map.lock().expect("not poisoned").remove(session);
    }

    fn make_room(map: &mut HashMap<String, (String, Instant)>) {
        if map.len() >= CAPACITY {
            map.retain(|_, (_, seen)| seen.elapsed() < IDLE);
            if map.len() >= CAPACITY {
                // Still full of live sessions: drop the oldest tenth.
                let mut ages: Vec<Instant> = map.values().map(|(_, seen)| *seen).collect();
                ages.sort_unstable();
                let cutoff = ages[ages.len() / 10];
                map.retain(|_, (_, seen)| *seen > cutoff);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_serves_only_its_owner() {
        let sessions = SessionBindings::default();
        sessions.bind("s1", "alice");
        assert!(sessions.admit("s1", "alice"));
        assert!(!sessions.admit("s1", "bob"));
        assert!(
            !sessions.admit("s2", "bob"),
            "a session never opened through the gateway is unknown"
        );
        sessions.end("s1");
        assert!(
            !sessions.admit("s1", "alice"),
            "an ended session is unknown"
        );
    }
}
