//! The one bounded, expiring map every cache of the gateway is: verified access tokens, backend
//! credentials, grants' revocation and identity provider tokens, client metadata documents, session
//! bindings and rate-limit buckets. Each entry lives until a time its owner gives; the map never holds
//! more than its named capacity: when full, the expired entries go first, then those expiring
//! soonest, a tenth at a time, so that a full map is swept once per tenth of its capacity.
//!
//! Time is the owner's: seconds since the epoch ([`crate::clock::now`]) for what tokens bound, an
//! [`std::time::Instant`] for what the data plane measures itself.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash};
use std::sync::RwLock;

struct Entry<V, T> {
    value: V,
    expires_at: T,
}

/// A map of at most `capacity` entries, each until its own expiry (`T`). Hashed with SipHash unless
/// the owner chooses otherwise (`S`), since most keys come from outside.
pub(crate) struct Cache<K, V, T = u64, S = RandomState> {
    entries: RwLock<HashMap<K, Entry<V, T>, S>>,
    capacity: usize,
}

impl<K, V, T, S> Cache<K, V, T, S>
where
    K: Hash + Eq,
    T: Ord + Copy,
    S: BuildHasher + Default,
{
    pub(crate) fn new(capacity: usize) -> Self {
        assert!(capacity > 0, "a cache holds something");
        Self {
            entries: RwLock::new(HashMap::default()),
            capacity,
        }
    }

    /// A copy of `key`'s value, unless it has expired by `now`.
    pub(crate) fn get<Q>(&self, key: &Q, now: T) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        self.read(key, now, V::clone)
    }

    /// What `f` makes of `key`'s value, unless it has expired by `now`.
    pub(crate) fn read<Q, R>(&self, key: &Q, now: T, f: impl FnOnce(&V) -> R) -> Option<R>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let entries = self.entries.read().expect("not poisoned");
        entries
            .get(key)
            .filter(|e| e.expires_at > now)
            .map(|e| f(&e.value))
    }

    /// Keeps `value` for `key` until `expires_at`, in place of any value before.
    pub(crate) fn insert(&self, key: K, value: V, expires_at: T, now: T) {
        let mut entries = self.entries.write().expect("not poisoned");
        if !entries.contains_key(&key) {
            make_room(&mut entries, self.capacity, now);
        }
        entries.insert(key, Entry { value, expires_at });
    }

    /// Runs `f` on `key`'s live value and its expiry, which `f` may change; `None` when there is none.
    pub(crate) fn update<Q, R>(
        &self,
        key: &Q,
        now: T,
        f: impl FnOnce(&mut V, &mut T) -> R,
    ) -> Option<R>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let mut entries = self.entries.write().expect("not poisoned");
        let entry = entries.get_mut(key).filter(|e| e.expires_at > now)?;
        Some(f(&mut entry.value, &mut entry.expires_at))
    }

    /// Runs `f` on `key`'s live value and its expiry, first made by `make` when there is none.
    pub(crate) fn upsert<R>(
        &self,
        key: K,
        now: T,
        make: impl FnOnce() -> (V, T),
        f: impl FnOnce(&mut V, &mut T) -> R,
    ) -> R {
        let mut entries = self.entries.write().expect("not poisoned");
        let live = entries.get(&key).is_some_and(|e| e.expires_at > now);
        if !live {
            if !entries.contains_key(&key) {
                make_room(&mut entries, self.capacity, now);
            }
            let (value, expires_at) = make();
            let entry = entries.entry(key).insert_entry(Entry { value, expires_at });
            let entry = entry.into_mut();
            return f(&mut entry.value, &mut entry.expires_at);
        }
        let entry = entries.get_mut(&key).expect("live");
        f(&mut entry.value, &mut entry.expires_at)
    }

    pub(crate) fn remove<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.entries.write().expect("not poisoned").remove(key);
    }

    /// Keeps only the entries `keep` says to.
    pub(crate) fn retain(&self, mut keep: impl FnMut(&K, &V) -> bool) {
        self.entries
            .write()
            .expect("not poisoned")
            .retain(|k, e| keep(k, &e.value));
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.read().expect("not poisoned").len()
    }
}

/// Makes room for one more entry: the expired ones go, and if that is not enough, the tenth of the
/// capacity that expires soonest (with any that expire at the same time as the last of them).
fn make_room<K, V, T: Ord + Copy, S>(
    entries: &mut HashMap<K, Entry<V, T>, S>,
    capacity: usize,
    now: T,
) {
    if entries.len() < capacity {
        return;
    }
    entries.retain(|_, e| e.expires_at > now);
    if entries.len() < capacity {
        return;
    }
    let mut expiries: Vec<T> = entries.values().map(|e| e.expires_at).collect();
    let evict = (capacity / 10).max(1);
    let (_, cutoff, _) = expiries.select_nth_unstable(evict - 1);
    let cutoff = *cutoff;
    entries.retain(|_, e| e.expires_at > cutoff);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_lives_until_its_expiry() {
        let cache: Cache<String, u32> = Cache::new(10);
        cache.insert("a".into(), 1, 100, 0);
        assert_eq!(cache.get("a", 99), Some(1));
        assert_eq!(cache.get("a", 100), None);
        assert_eq!(cache.update("a", 100, |v, _| *v += 1), None);
        assert_eq!(
            cache.update("a", 50, |v, until| {
                *until = 200;
                *v += 1
            }),
            Some(())
        );
        assert_eq!(cache.get("a", 150), Some(2));
        cache.remove("a");
        assert_eq!(cache.get("a", 0), None);
    }

    #[test]
    fn upsert_makes_an_entry_only_when_none_is_live() {
        let cache: Cache<&str, u32> = Cache::new(10);
        let made = |v| move || (v, 10);
        assert_eq!(cache.upsert("a", 0, made(1), |v, _| *v), 1);
        assert_eq!(
            cache.upsert("a", 5, made(7), |v, _| {
                *v += 1;
                *v
            }),
            2
        );
        // Expired: made again.
        assert_eq!(cache.upsert("a", 10, made(7), |v, _| *v), 7);
    }

    #[test]
    fn a_full_cache_drops_the_expired_then_the_soonest_to_expire() {
        let cache: Cache<u32, u32> = Cache::new(20);
        for key in 0..20 {
            cache.insert(key, key, 100 + u64::from(key), 0);
        }
        assert_eq!(cache.len(), 20);
        // Nothing expired: the two (a tenth) expiring soonest make room.
        cache.insert(100, 100, 1000, 0);
        assert_eq!(cache.len(), 19);
        assert_eq!(cache.get(&0, 0), None);
        assert_eq!(cache.get(&1, 0), None);
        assert_eq!(cache.get(&2, 0), Some(2));
        // Replacing a key makes no room.
        cache.insert(2, 22, 1000, 0);
        assert_eq!(cache.len(), 19);
        cache.insert(101, 101, 1000, 0);
        assert_eq!(cache.len(), 20);
        // At 110, keys 3 to 10 have expired (10 just now), and only they go.
        cache.insert(102, 102, 1000, 110);
        assert_eq!(cache.len(), 20 - 8 + 1);
        assert_eq!(cache.get(&2, 110), Some(22));
        assert_eq!(cache.get(&10, 109), None);
        assert_eq!(cache.get(&11, 110), Some(11));
    }

    #[test]
    fn the_capacity_is_never_exceeded() {
        let cache: Cache<u32, ()> = Cache::new(50);
        for key in 0..1000 {
            cache.insert(key, (), u64::MAX, 0);
            assert!(cache.len() <= 50);
        }
        assert_eq!(cache.get(&999, 0), Some(()));
    }
}
