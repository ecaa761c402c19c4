//! What one client address may hold open at once: connections, and requests in flight (streams
//! included). An HTTP/2 connection carries many requests and an idle one costs little, so both are
//! counted ([`super::concurrency`]); a client over either limit is turned away (a connection closed
//! at once, a request answered 429) while everyone else is served. An IPv6 client counts by its
//! /64; the trusted proxies' own connections are not limited, since every client behind them
//! arrives on them. Here, the connections: the listener's app, around Pingora's HTTP proxy.

use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;
use pingora::apps::ServerApp;
use pingora::protocols::Stream;
use pingora::server::ShutdownWatch;

use super::client_address::limit_key;
use super::concurrency::Concurrency;
use super::generations::Generations;

/// The gateway's listener app: Pingora's HTTP proxy (`A`), behind a count of each client address's
/// connections.
pub(crate) struct PerClientConnections<A> {
    pub proxy: Arc<A>,
    pub generations: Generations,
    pub counts: Arc<Concurrency<IpAddr>>,
}

#[async_trait]
impl<A: ServerApp + Send + Sync + 'static> ServerApp for PerClientConnections<A> {
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
