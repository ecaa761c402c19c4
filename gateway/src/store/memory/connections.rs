//! Users' connections, the gateway's registrations and connect flows, in the memory store's maps.

use async_trait::async_trait;

use super::MemoryStore;
use crate::store::{
    ConnectFlow, ConnectionRecord, ConnectionStore, RegistrationRecord, StoreResult,
};

fn pair(a: &str, b: &str) -> (String, String) {
    (a.to_owned(), b.to_owned())
}

#[async_trait]
impl ConnectionStore for MemoryStore {
    async fn put_connection(&self, connection: &ConnectionRecord) -> StoreResult<()> {
        self.lock()
            .connections
            .insert(pair(&connection.sub, &connection.route), connection.clone());
        Ok(())
    }

    async fn connection(&self, sub: &str, route: &str) -> StoreResult<Option<ConnectionRecord>> {
        Ok(self.lock().connections.get(&pair(sub, route)).cloned())
    }

    async fn connections(&self, sub: &str) -> StoreResult<Vec<ConnectionRecord>> {
        let mut found: Vec<ConnectionRecord> = self
            .lock()
            .connections
            .values()
            .filter(|c| c.sub == sub)
            .cloned()
            .collect();
        found.sort_by(|a, b| a.route.cmp(&b.route));
        Ok(found)
    }

    async fn replace_connection(&self, refreshed: &ConnectionRecord) -> StoreResult<bool> {
        let mut inner = self.lock();
        match inner
            .connections
            .get_mut(&pair(&refreshed.sub, &refreshed.route))
        {
            Some(current) if current.connected_at == refreshed.connected_at => {
                *current = refreshed.clone();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn delete_connection(
        &self,
        sub: &str,
        route: &str,
    ) -> StoreResult<Option<ConnectionRecord>> {
        Ok(self.lock().connections.remove(&pair(sub, route)))
    }

    async fn put_registration(&self, registration: &RegistrationRecord) -> StoreResult<()> {
        self.lock().registrations.insert(
            pair(&registration.issuer, &registration.redirect_uri),
            registration.clone(),
        );
        Ok(())
    }

    async fn registration(
        &self,
        issuer: &str,
        redirect_uri: &str,
    ) -> StoreResult<Option<RegistrationRecord>> {
        Ok(self
            .lock()
            .registrations
            .get(&pair(issuer, redirect_uri))
            .cloned())
    }

    async fn delete_registration(&self, issuer: &str, redirect_uri: &str) -> StoreResult<()> {
        self.lock()
            .registrations
            .remove(&pair(issuer, redirect_uri));
        Ok(())
    }

    async fn put_connect_flow(&self, state_hash: &str, flow: &ConnectFlow) -> StoreResult<()> {
        self.lock()
            .connect_flows
            .insert(state_hash.to_owned(), flow.clone());
        Ok(())
    }

    async fn take_connect_flow(
        &self,
        state_hash: &str,
        now: u64,
    ) -> StoreResult<Option<ConnectFlow>> {
        Ok(self
            .lock()
            .connect_flows
            .remove(state_hash)
            .filter(|f| f.expires_at > now))
    }
}
