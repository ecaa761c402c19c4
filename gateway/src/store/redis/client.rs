//! Connecting to Redis, one node or a Cluster, on a runtime of the store's own, and the keys the
//! store's records live under: each in a slot of its own, the grants and their refresh tokens in
//! one slot together.

use std::sync::LazyLock;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{ClientTlsConfig, Cmd, Pipeline, RedisFuture, TlsCertificates, Value};
use sha2::{Digest as _, Sha256};

use crate::config::{RedisSettings, RedisTls};
use crate::store::{StoreError, StoreResult};

impl From<redis::RedisError> for StoreError {
    fn from(e: redis::RedisError) -> Self {
        let unreachable = e.is_io_error()
            || e.is_timeout()
            || e.is_connection_refusal()
            || e.is_connection_dropped()
            || e.is_unrecoverable_error()
            || e.is_cluster_error();
        StoreError::Redis {
            error: e,
            unreachable,
        }
    }
}

/// One multiplexed connection to a node, or to a Cluster; either reconnects by itself.
#[derive(Clone)]
pub(super) enum Connection {
    Node(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Connection::Node(c) => c.req_packed_command(cmd),
            Connection::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Connection::Node(c) => c.req_packed_commands(pipeline, offset, count),
            Connection::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Node(c) => c.get_db(),
            Connection::Cluster(c) => c.get_db(),
        }
    }
}

/// Where the connections' drivers run: one thread of its own, for the life of the process.
static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("redis")
        .enable_all()
        .build()
        .expect("a runtime for Redis")
});

pub(crate) struct RedisStore {
    connection: Connection,
    pub(super) prefix: String,
}

impl RedisStore {
    /// Connects to the server (or Cluster) `settings` names. The connection's driver runs on a
    /// runtime of the store's own, which lives as long as the process: the gateway opens its state
    /// on a runtime that ends before Pingora's start, and a connection whose driver ended with it
    /// would answer nothing.
    pub(crate) async fn connect(settings: &RedisSettings) -> StoreResult<Self> {
        let settings = settings.clone();
        RUNTIME
            .spawn(async move { Self::connect_here(&settings).await })
            .await
            .map_err(StoreError::Task)?
    }

    async fn connect_here(settings: &RedisSettings) -> StoreResult<Self> {
        let certificates = (settings.tls != RedisTls::default()).then(|| TlsCertificates {
            root_cert: settings.tls.ca.clone(),
            client_tls: settings
                .tls
                .client
                .clone()
                .map(|(cert, key)| ClientTlsConfig {
                    client_cert: cert,
                    client_key: key,
                }),
        });
        let connection = if settings.cluster {
            let mut builder = redis::cluster::ClusterClient::builder(vec![settings.url.as_str()])
                .connection_timeout(settings.connect_timeout)
                .response_timeout(settings.response_timeout);
            if let Some(certificates) = certificates {
                builder = builder.certs(certificates);
            }
            Connection::Cluster(builder.build()?.get_async_connection().await?)
        } else {
            let client = match certificates {
                Some(certificates) => {
                    redis::Client::build_with_tls(settings.url.as_str(), certificates)?
                }
                None => redis::Client::open(settings.url.as_str())?,
            };
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(settings.connect_timeout))
                .set_response_timeout(Some(settings.response_timeout))
                .set_number_of_retries(2);
            Connection::Node(ConnectionManager::new_with_config(client, config).await?)
        };
        Ok(Self {
            connection,
            prefix: settings.key_prefix.clone(),
        })
    }

    pub(super) fn conn(&self) -> Connection {
        self.connection.clone()
    }

    /// The key of one record of `family`, in a slot of its own.
    pub(super) fn key(&self, family: &str, id: &str) -> String {
        format!("{}:{family}:{{{id}}}", self.prefix)
    }

    /// Keys of the grants' slot: a grant, its refresh tokens, and the set of them.
    pub(super) fn grants(&self, family: &str) -> String {
        format!("{}:{{grants}}:{family}:", self.prefix)
    }

    /// The count of revocations, in the grants' slot so that a revocation's script counts it.
    pub(super) fn revocations(&self) -> String {
        format!("{}:{{grants}}:revocations", self.prefix)
    }

    /// The key of one record of the grants' slot, by its id.
    pub(super) fn grant_slot(&self, family: &str, id: &str) -> String {
        format!("{}{id}", self.grants(family))
    }

    /// The keys of the grants' slot that match `pattern`, scanned on the node that holds the slot
    /// (in a Cluster, that slot's primary).
    pub(super) async fn scan_grants_slot(&self, pattern: &str) -> StoreResult<Vec<String>> {
        let mut keys = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let mut scan = redis::cmd("SCAN");
            scan.arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(1000);
            let (next, found): (u64, Vec<String>) = match &self.connection {
                Connection::Node(node) => scan.query_async(&mut node.clone()).await?,
                Connection::Cluster(cluster) => {
                    let route = Route::with_key(self.grants("grant"), SlotAddr::Master);
                    let routing =
                        RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route));
                    let value = cluster.clone().route_command(scan, routing).await?;
                    redis::from_redis_value(value).map_err(redis::RedisError::from)?
                }
            };
            keys.extend(found);
            if next == 0 {
                return Ok(keys);
            }
            cursor = next;
        }
    }

    /// The set of the clients the config declared.
    pub(super) fn config_clients(&self) -> String {
        format!("{}:config-clients", self.prefix)
    }

    /// An MCP session's key: its id hashed, since clients send it and a key must name one slot.
    pub(super) fn session_key(&self, session: &str) -> String {
        self.key("session", &hex(&Sha256::digest(session.as_bytes())))
    }

    pub(super) fn consent_key(&self, sub: &str, client_id: &str, resource: &str) -> String {
        // Hashed: the three are anyone's strings, and a key must name one slot.
        let id = Sha256::digest(format!("{sub}\0{client_id}\0{resource}").as_bytes());
        self.key("consent", &hex(&id))
    }
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
