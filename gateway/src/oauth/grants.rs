//! What the data plane asks the authorization server about a grant: whether it is revoked, and the
//! identity provider's token it holds. Both are cached; the token is refreshed at the provider when
//! it is about to expire, by one caller at a time per grant, and written back without undoing a
//! revocation that landed meanwhile (the store keeps a revoked grant revoked).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::Mutex;

use super::AuthServer;
use crate::idp::{IdentityProvider, ProviderTokens, REFRESH_BEFORE_SECS};
use crate::store::GrantRecord;

/// How long a replica trusts what a shared store said of a grant in force: a revocation on another
/// replica is refused here within this.
pub(super) const SHARED_RECHECK_SECS: u64 = 1;
/// The longest a replica holds a grant's refresh lock in the store: longer than a refresh takes
/// (the provider's HTTP client gives up after 10 s).
const REFRESH_LOCK_MS: u64 = 15_000;
/// How often a replica waiting for another's refresh looks at the store, and for how long at most.
const REFRESH_POLL: std::time::Duration = std::time::Duration::from_millis(100);
const REFRESH_WAIT: std::time::Duration = std::time::Duration::from_secs(15);
/// How long a grant's refresh lock is kept once made: far longer than a refresh can take.
const LOCK_SECS: u64 = 60;
/// The revocation count before the store was first read.
pub(super) const UNREAD: u64 = u64::MAX;

impl AuthServer {
    /// Whether grants hold an identity provider's token (GitHub, OIDC), which [`Self::idp_token`]
    /// finds.
    pub(crate) fn keeps_idp_tokens(&self) -> bool {
        self.idp.is_some()
    }

    /// `caller`'s own token at `route`'s backend (`credentials = "oauth"`), for the data plane to
    /// forward; `None` when they are not connected there, or no longer (the server refused a
    /// refresh): then their grant for the route ends too, so that the client signs in again, which
    /// connects them, rather than refresh into the same refusal.
    pub(crate) async fn connection_bearer(
        &self,
        caller: &crate::tokens::access::AccessClaims,
        route: &crate::config::Route,
    ) -> Result<Option<String>, crate::connections::ConnectionError> {
        let (Some(connections), Some(settings)) = (&self.connections, &route.connection) else {
            return Ok(None);
        };
        let bearer = connections.bearer(&caller.sub, route, settings).await?;
        if bearer.is_none() {
            tracing::info!(user = %caller.sub, route = %route.path, "a caller not connected to the backend is to sign in again");
            self.to_sign_in_again(caller).await;
        }
        Ok(bearer)
    }

    /// Ends `caller`'s grant, so that the client signs in again (which connects the user) rather
    /// than refresh into the same refusal.
    pub(crate) async fn to_sign_in_again(&self, caller: &crate::tokens::access::AccessClaims) {
        if let Some(grant) = &caller.gid
            && let Err(error) = super::token::revoke_grant(self, grant).await
        {
            tracing::warn!(%error, "the grant of a caller to sign in again could not be ended");
        }
    }

    /// The backend of `route` refused `caller`'s token there: the token is refreshed before its
    /// next use; or, when the backend asks for more scope or the token cannot be renewed, the
    /// connection ends and the caller's grant with it, so that the client signs in again and the
    /// user connects again (asked for that scope too). Whether the token can be renewed.
    pub(crate) async fn backend_refused(
        &self,
        caller: &crate::tokens::access::AccessClaims,
        route: &crate::config::Route,
        refusal: &crate::connections::BackendRefusal,
    ) -> bool {
        let Some(connections) = &self.connections else {
            return false;
        };
        match connections
            .refused_by_backend(&caller.sub, route, refusal)
            .await
        {
            Ok(false) => true,
            Ok(true) => {
                self.to_sign_in_again(caller).await;
                false
            }
            Err(error) => {
                tracing::warn!(%error, route = %route.path, "a backend's refusal could not be recorded");
                false
            }
        }
    }

    /// The identity provider's token of a grant, for the data plane to forward; `None` when the
    /// grant has none or is revoked. An expiring token is refreshed at the provider (when it gave a
    /// refresh token) and stored again; concurrent callers wait for that one refresh and share its
    /// result, since providers that detect a refresh token's reuse revoke the user's grant.
    pub(crate) async fn idp_token(&self, grant_id: &str) -> Option<Arc<str>> {
        let now = crate::clock::now();
        if let Some(token) = self.idp_token_cache.get(grant_id, now) {
            return Some(token);
        }
        let new_lock = || (Arc::new(Mutex::new(())), now + LOCK_SECS);
        let lock = self
            .refresh_locks
            .upsert(grant_id.to_owned(), now, new_lock, |lock, _| lock.clone());
        let _refreshing = lock.lock().await;
        // Whoever held the lock may have refreshed it meanwhile.
        let now = crate::clock::now();
        if let Some(token) = self.idp_token_cache.get(grant_id, now) {
            return Some(token);
        }
        self.read_or_refresh(grant_id, now).await
    }

    async fn read_or_refresh(&self, grant_id: &str, now: u64) -> Option<Arc<str>> {
        let (_, mut tokens) = self.grant_tokens(grant_id).await?;
        if IdentityProvider::needs_refresh(&tokens, now)
            && let Some(fresh) = self.refresh_once(grant_id).await
        {
            tokens = fresh;
        }
        let token: Arc<str> = tokens.access_token.into();
        let refresh_at = tokens
            .expires_at
            .map_or(u64::MAX, |at| at.saturating_sub(REFRESH_BEFORE_SECS));
        self.idp_token_cache
            .insert(grant_id.to_owned(), token.clone(), refresh_at, now);
        Some(token)
    }

    /// A grant in force, and its identity provider's tokens unsealed.
    async fn grant_tokens(&self, grant_id: &str) -> Option<(GrantRecord, ProviderTokens)> {
        let idp = self.idp.as_ref()?;
        let grant = self.store.grant(grant_id).await.ok().flatten();
        let grant = grant.filter(|g| !g.revoked)?;
        let tokens = idp.unseal(grant.idp_tokens.as_deref()?)?;
        Some((grant, tokens))
    }

    /// Refreshes a grant's tokens at the provider, one replica at a time: the holder of the store's
    /// lock refreshes and stores them; the others wait for what it stores. `None`: nothing fresher
    /// (the caller forwards what it has). A store that cannot tell who holds the lock is not taken
    /// for one that says another does: this replica refreshes without it.
    async fn refresh_once(&self, grant_id: &str) -> Option<ProviderTokens> {
        let idp = self.idp.as_ref()?;
        let lock = format!("idp-refresh:{grant_id}");
        let holder = super::random_token(12);
        let waited = std::time::Instant::now();
        loop {
            match self.store.try_lock(&lock, &holder, REFRESH_LOCK_MS).await {
                Ok(true) => break,
                Ok(false) => {
                    tokio::time::sleep(REFRESH_POLL).await;
                    let (_, tokens) = self.grant_tokens(grant_id).await?;
                    if !IdentityProvider::needs_refresh(&tokens, crate::clock::now()) {
                        return Some(tokens);
                    }
                    if waited.elapsed() > REFRESH_WAIT {
                        return None;
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "the refresh lock cannot be taken; refreshing without it");
                    break;
                }
            }
        }
        // Whoever held the lock before may have refreshed them already.
        let fresh = match self.grant_tokens(grant_id).await {
            Some((_, tokens)) if !IdentityProvider::needs_refresh(&tokens, crate::clock::now()) => {
                Some(tokens)
            }
            Some((mut grant, tokens)) => {
                let fresh = idp.refreshed(&tokens, crate::clock::now()).await;
                if let Some(fresh) = &fresh {
                    grant.idp_tokens = Some(idp.seal(fresh));
                    if let Err(error) = self.store.put_grant(&grant).await {
                        tracing::warn!(%error, "keeping a refreshed identity provider's token failed");
                    }
                }
                fresh
            }
            None => None,
        };
        let _ = self.store.unlock(&lock, &holder).await;
        fresh
    }

    /// Adds the grant's access tokens that other replicas revoked on their own to this replica's
    /// revocations.
    async fn learn_revoked_tokens(&self, grant_id: &str, now: u64) {
        match self.store.revoked_tokens(grant_id, now).await {
            Ok(revoked) => {
                for (jti, until) in revoked {
                    self.verifier.revocations.revoke(&jti, until, now);
                }
            }
            Err(error) => {
                tracing::warn!(%error, "access tokens revoked on other replicas are not known here")
            }
        }
    }

    /// Ends every grant in force of the users whose subjects are `subs` (a reload took them out of
    /// the users file, or changed what it says of them): their tokens are refused from now on and
    /// their streams end. How many it ended.
    pub(crate) async fn end_grants_of(&self, subs: &[String]) -> Result<usize, super::OAuthError> {
        let mut ended = 0;
        for grant in self.store.grants().await? {
            if !grant.revoked && subs.contains(&grant.user.sub) {
                super::token::revoke_grant(self, &grant.grant_id).await?;
                ended += 1;
            }
        }
        Ok(ended)
    }

    /// Whether a revocation was made since this was last asked, by anyone: another replica, or
    /// `mcp-auth-gateway revoke` on the store. What this gateway remembered of grants in force is
    /// then forgotten, so that each is read again where it is next used. One read of the store.
    pub(crate) async fn revocations_changed(&self) -> bool {
        let epoch = match self.store.revocation_epoch().await {
            Ok(epoch) => epoch,
            Err(error) => {
                tracing::debug!(%error, "the store's count of revocations cannot be read");
                return false;
            }
        };
        let before = self.revocation_epoch.swap(epoch, Ordering::AcqRel);
        if before == epoch || before == UNREAD {
            return false;
        }
        self.grant_revoked_cache.retain(|_, revoked| *revoked);
        true
    }

    /// Whether a grant is revoked, for the data plane. Revocations made by this process reach the
    /// token verifier at once; this asks the store, once per grant, to catch those made before a
    /// restart, and, when replicas share the store, again every [`SHARED_RECHECK_SECS`] to catch
    /// theirs. A grant the store does not know counts as revoked. When a local store cannot tell,
    /// the grant counts as revoked; when a shared one cannot (Redis unreachable), the tokens
    /// already issued keep working with the revocations known so far.
    pub(crate) async fn grant_revoked(&self, grant_id: &str) -> bool {
        let now = crate::clock::now();
        if let Some(revoked) = self.grant_revoked_cache.get(grant_id, now) {
            return revoked;
        }
        let shared = self.store.is_shared();
        // With a shared store, what other replicas revoked of the grant's tokens comes along, in
        // parallel rather than a second round trip on this request's path.
        let (grant, ()) = tokio::join!(self.store.grant(grant_id), async {
            if shared {
                self.learn_revoked_tokens(grant_id, now).await;
            }
        });
        let revoked = match grant {
            Ok(grant) => grant.is_none_or(|g| g.revoked),
            Err(error) if shared => {
                tracing::warn!(%error, "the store cannot tell whether a grant is revoked; the revocations known so far apply");
                false
            }
            Err(_) => true,
        };
        // A revocation is for good; a grant in force is read again when replicas may revoke it.
        let until = if revoked || !shared {
            u64::MAX
        } else {
            now + SHARED_RECHECK_SECS
        };
        self.grant_revoked_cache
            .insert(grant_id.to_owned(), revoked, until, now);
        revoked
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use base64::Engine as _;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;
    use crate::config::Config;
    use crate::config::file::FileConfig;
    use crate::store::Store;
    use crate::store::contract::RedisServer;
    use crate::store::records::UserIdentity;
    use crate::tokens::access::AccessTokenVerifier;
    use crate::tokens::keys::KeyRing;

    /// GitHub's token endpoint as a stand-in: every refresh takes 200 ms and is counted.
    async fn slow_token_endpoint(refreshes: Arc<AtomicUsize>) -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                let refreshes = refreshes.clone();
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buffer = [0u8; 4096];
                    // The form is small: headers and body come in the first reads.
                    while !String::from_utf8_lossy(&request).contains("grant_type=") {
                        let n = socket.read(&mut buffer).await.unwrap();
                        if n == 0 {
                            return;
                        }
                        request.extend_from_slice(&buffer[..n]);
                    }
                    let n = refreshes.fetch_add(1, Ordering::SeqCst) + 1;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    let body = format!(
                        r#"{{"access_token":"fresh-{n}","token_type":"bearer","expires_in":3600,"refresh_token":"r{n}"}}"#
                    );
                    let response = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    socket.write_all(response.as_bytes()).await.unwrap();
                });
            }
        });
        port
    }

    /// An authorization server with GitHub (at `port`) as its identity provider, and a grant whose
    /// GitHub token expires in 10 s, so that its next use refreshes it.
    async fn server_with_expiring_grant(port: u16) -> AuthServer {
        let server = server(port, Arc::new(crate::store::memory::MemoryStore::default()));
        put_expiring_grant(&server).await;
        server
    }

    /// An authorization server with GitHub (at `port`) as its identity provider, on `store`.
    fn server(port: u16, store: Arc<dyn Store>) -> AuthServer {
        let text = format!(
            "[server]\nlisten = \"127.0.0.1:1\"\npublic_url = \"https://gw.example\"\n\
             [store]\nkind = \"memory\"\ntoken_key_env = \"KEY\"\n\
             [provider]\nkind = \"github\"\nclient_id = \"id\"\nclient_secret_env = \"SECRET\"\n\
             web_url = \"http://127.0.0.1:{port}\"\napi_url = \"http://127.0.0.1:{port}\"\n\
             [[routes]]\npath = \"/mcp\"\nupstream = \"http://127.0.0.1:9/mcp\"\n"
        );
        let key = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        let env = move |name: &str| match name {
            "KEY" => Some(key.clone()),
            "SECRET" => Some("secret".to_owned()),
            _ => None,
        };
        let file = FileConfig::parse(&text).unwrap();
        let config =
            Arc::new(Config::validate(file, std::path::Path::new("gw.toml"), &env).unwrap());
        let now = crate::clock::now();
        let (keys, _) = KeyRing::from_stored(&config.start.tokens, &[], 3600, now).unwrap();
        let keys = Arc::new(keys);
        let verifier = Arc::new(AccessTokenVerifier::new(
            keys.clone(),
            "https://gw.example".into(),
            60,
        ));
        AuthServer::new(config, store, keys, verifier, None)
    }

    /// A grant whose GitHub token expires in 10 s.
    async fn put_expiring_grant(server: &AuthServer) {
        let now = crate::clock::now();
        let tokens = ProviderTokens {
            access_token: "stale".into(),
            refresh_token: Some("r0".into()),
            expires_at: Some(now + 10),
        };
        let grant = GrantRecord {
            grant_id: "g1".into(),
            client_id: "c1".into(),
            scope: "mcp".into(),
            resource: "https://gw.example/mcp".into(),
            user: UserIdentity {
                sub: "github:1".into(),
                email: None,
                preferred_username: None,
                groups: Vec::new(),
                groups_truncated: false,
            },
            created_at: now,
            revoked: false,
            idp_tokens: Some(server.idp.as_ref().unwrap().seal(&tokens)),
            refreshed_at: None,
        };
        server.store.put_grant(&grant).await.unwrap();
    }

    #[tokio::test]
    async fn concurrent_uses_of_an_expiring_token_refresh_it_once() {
        let refreshes = Arc::new(AtomicUsize::new(0));
        let port = slow_token_endpoint(refreshes.clone()).await;
        let server = server_with_expiring_grant(port).await;
        let uses = (0..10).map(|_| server.idp_token("g1"));
        let tokens = futures::future::join_all(uses).await;
        for token in &tokens {
            assert_eq!(token.as_deref(), Some("fresh-1"));
        }
        assert_eq!(
            refreshes.load(Ordering::SeqCst),
            1,
            "one refresh at the provider"
        );
    }

    #[tokio::test]
    async fn a_revocation_during_a_refresh_is_not_undone() {
        let refreshes = Arc::new(AtomicUsize::new(0));
        let port = slow_token_endpoint(refreshes.clone()).await;
        let server = server_with_expiring_grant(port).await;
        let refreshing = server.idp_token("g1");
        let revoking = async {
            // While the provider takes its 200 ms, the grant is revoked.
            tokio::time::sleep(Duration::from_millis(50)).await;
            server.store.revoke_grant("g1").await.unwrap();
        };
        let (_, ()) = tokio::join!(refreshing, revoking);
        assert_eq!(refreshes.load(Ordering::SeqCst), 1);
        let grant = server.store.grant("g1").await.unwrap().unwrap();
        assert!(
            grant.revoked,
            "the refreshed token's write-back undid the revocation"
        );
    }

    #[tokio::test]
    async fn replicas_on_one_redis_refresh_a_grant_once() {
        let refreshes = Arc::new(AtomicUsize::new(0));
        let port = slow_token_endpoint(refreshes.clone()).await;
        let redis = RedisServer::start().await;
        let store: Arc<dyn Store> = Arc::new(redis.store().await);
        let replicas = [server(port, store.clone()), server(port, store)];
        put_expiring_grant(&replicas[0]).await;
        let uses = (0..10).map(|i| replicas[i % 2].idp_token("g1"));
        let tokens = futures::future::join_all(uses).await;
        for token in &tokens {
            assert_eq!(token.as_deref(), Some("fresh-1"));
        }
        assert_eq!(
            refreshes.load(Ordering::SeqCst),
            1,
            "one refresh at the provider across replicas"
        );
    }
}
