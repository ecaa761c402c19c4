//! What one client address may hold open at once: connections, and requests in flight (streams
//! included). An HTTP/2 connection carries many requests and an idle one costs little, so both are
//! counted; a client over either limit is turned away (a connection closed at once, a request
//! answered 429) while everyone else is served. An IPv6 client counts by its /64; the trusted
//! proxies' own connections are not limited, since every client behind them arrives on them.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use pingora::apps::ServerApp;
use pingora::protocols::Stream;
use pingora::proxy::HttpProxy;
use pingora::server::ShutdownWatch;

use super::client_address::limit_key;
use super::live::{Generations, LiveGateway};

/// Keys counted at most: past this many addresses at once, a new one is turned away too (a flood
/// from as many addresses is not the per-client limit's to stop, and the map stays bounded).
const KEYS_KEPT: usize = 100_000;

/// How many of something each key holds at once, up to a limit.
pub struct Concurrency<K: Hash + Eq + Clone> {
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
pub struct Held<K: Hash + Eq + Clone> {
    counts: Arc<Concurrency<K>>,
    key: K,
}

impl<K: Hash + Eq + Clone> Concurrency<K> {
    /// Takes one for `key` if it holds fewer than `limit` (0: no limit, and nothing is counted).
    pub fn acquire(self: &Arc<Self>, key: K, limit: u32) -> Result<Option<Held<K>>, ()> {
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

/// The gateway's listener app: Pingora's HTTP proxy, behind a count of each client address's
/// connections.
pub struct PerClientConnections {
    pub proxy: Arc<HttpProxy<LiveGateway>>,
    pub generations: Generations,
    pub counts: Arc<Concurrency<IpAddr>>,
}

#[async_trait]
impl ServerApp for PerClientConnections {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let peer = stream
            .get_socket_digest()
            .and_then(|d| d.peer_addr().and_then(|a| a.as_inet()).map(|a| a.ip()));
        let _held = match peer {
            Some(ip) => {
                let gateway = self.generations.current();
                let server = &gateway.config().server;
                if server.trusted_proxies.contains(ip) {
                    None
                } else {
                    let limit = server.max_connections_per_client;
                    match self.counts.acquire(limit_key(ip), limit) {
                        Ok(held) => held,
                        Err(()) => {
                            tracing::debug!(client = %ip, "too many connections from one address; closed");
                            return None;
                        }
                    }
                }
            }
            // A Unix socket's peer is the operator's own.
            None => None,
        };
        self.proxy.process_new(stream, shutdown).await
    }

    async fn cleanup(&self) {
        self.proxy.cleanup().await;
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
