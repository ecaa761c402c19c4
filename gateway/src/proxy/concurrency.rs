//! [`Concurrency`]: how many of something each key holds at once, up to a limit, each one given back
//! when its [`Held`] is dropped. The gateway counts a client address's connections
//! ([`super::connections`]) and requests in flight (at a request's start) with it.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

/// Keys counted at most: past this many addresses at once, a new one is turned away too (a flood
/// from as many addresses is not the per-client limit's to stop, and the map stays bounded).
const KEYS_KEPT: usize = 100_000;

/// How many of something each key holds at once, up to a limit.
pub(crate) struct Concurrency<K: Hash + Eq + Clone> {
    held: Mutex<HashMap<K, u32, foldhash::fast::RandomState>>,
}

impl<K: Hash + Eq + Clone> Default for Concurrency<K> {
    fn default() -> Self {
        Self {
            held: Mutex::default(),
        }
    }
}

/// One held: given back when dropped.
pub(crate) struct Held<K: Hash + Eq + Clone> {
    counts: Arc<Concurrency<K>>,
    key: K,
}

impl<K: Hash + Eq + Clone> Concurrency<K> {
    /// Takes one for `key` if it holds fewer than `limit` (0: no limit, and nothing is counted).
    pub(crate) fn acquire(self: &Arc<Self>, key: K, limit: u32) -> Result<Option<Held<K>>, ()> {
        if limit == 0 {
            return Ok(None);
        }
        let mut held = self.held.lock().expect("not poisoned");
        if !held.contains_key(&key) && held.len() >= KEYS_KEPT {
            return Err(());
        }
        let count = held.entry(key.clone()).or_default();
        if *count >= limit {
            return Err(());
        }
        *count += 1;
        Ok(Some(Held {
            counts: self.clone(),
            key,
        }))
    }

    #[cfg(test)]
    fn held(&self, key: &K) -> u32 {
        self.held
            .lock()
            .unwrap()
            .get(key)
            .copied()
            .unwrap_or_default()
    }
}

impl<K: Hash + Eq + Clone> Drop for Held<K> {
    fn drop(&mut self) {
        let mut held = self.counts.held.lock().expect("not poisoned");
        if let Some(count) = held.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                held.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_key_holds_at_most_its_limit_and_gets_back_what_it_drops() {
        let counts = Arc::new(Concurrency::<u8>::default());
        let first = counts.acquire(1, 2).unwrap();
        let second = counts.acquire(1, 2).unwrap();
        assert!(counts.acquire(1, 2).is_err());
        assert!(counts.acquire(2, 2).unwrap().is_some(), "another key");
        drop(first);
        assert_eq!(counts.held(&1), 1);
        let third = counts.acquire(1, 2).unwrap();
        drop((second, third));
        assert_eq!(counts.held(&1), 0);
        assert!(counts.acquire(1, 0).unwrap().is_none(), "0 counts nothing");
    }
}
