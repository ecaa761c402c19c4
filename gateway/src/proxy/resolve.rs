//! Where a route's backend is: an IP address as configured, or a host name resolved off the worker
//! thread and remembered for [`RESOLVE_EVERY`].
//!
//! Pingora's `HttpPeer::new((host, port))` resolves the name with the system's blocking resolver on
//! every call, on the thread that serves every request, and panics when the name does not resolve.
//! Here a name is resolved with Tokio's `lookup_host` (the system resolver, on the blocking pool),
//! the answer is kept, and when it is older than [`RESOLVE_EVERY`] one request starts a fresh lookup
//! in the background while every request goes on using the last answer. A name that has never
//! resolved is a backend error (a 502): one lookup at a time for it, the requests that arrive
//! meanwhile wait for its outcome, and a failure is remembered for [`RETRY_FAILED_AFTER`], so a name
//! whose resolver times out holds one blocking thread, not one per request. A failed refresh keeps
//! the last answer.
//!
//! Of the addresses a name has, the first IPv4 one is used if there is one: `localhost` is often
//! `::1` first, while servers behind a gateway commonly listen on 127.0.0.1 or 0.0.0.0 only.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long an answer is used before it is looked up again (nginx's `resolver … valid=` for names in
/// its configuration; the system resolver does not say how long an answer may be kept).
pub(super) const RESOLVE_EVERY: Duration = Duration::from_secs(30);

/// How long a name that has never resolved answers with its last failure before it is tried again.
pub(super) const RETRY_FAILED_AFTER: Duration = Duration::from_secs(5);

/// Why no address could be found for a host name.
#[derive(Debug, thiserror::Error)]
#[error("the backend host {host} cannot be resolved: {reason}")]
pub(super) struct ResolveError {
    host: String,
    reason: String,
}

/// One backend's address, as its route gives it.
pub(super) struct BackendAddress {
    host: String,
    port: u16,
    /// An IP address in the configuration needs no lookup.
    fixed: Option<SocketAddr>,
    answer: Mutex<Option<Answer>>,
    /// While a name has no answer: held by the one lookup in flight, and its last failure.
    first_lookup: tokio::sync::Mutex<Option<(Instant, String)>>,
}

#[derive(Clone, Copy)]
struct Answer {
    address: SocketAddr,
    at: Instant,
    refreshing: bool,
}

impl BackendAddress {
    /// `host` as in a URL: a name, an IPv4 address, or an IPv6 address in brackets.
    pub(super) fn new(host: &str, port: u16) -> Arc<Self> {
        let literal = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        Arc::new(Self {
            host: host.to_owned(),
            port,
            fixed: literal
                .parse::<IpAddr>()
                .ok()
                .map(|ip| SocketAddr::new(ip, port)),
            answer: Mutex::new(None),
            first_lookup: tokio::sync::Mutex::new(None),
        })
    }

    /// The address to connect to now.
    pub(super) async fn get(self: &Arc<Self>) -> Result<SocketAddr, ResolveError> {
        if let Some(address) = self.fixed {
            return Ok(address);
        }
        let now = Instant::now();
        let known = {
            let mut answer = self.answer.lock().unwrap_or_else(PoisonError::into_inner);
            match answer.as_mut() {
                Some(a) if a.refreshing || now.duration_since(a.at) < RESOLVE_EVERY => {
                    return Ok(a.address);
                }
                Some(a) => {
                    a.refreshing = true;
                    Some(a.address)
                }
                None => None,
            }
        };
        match known {
            Some(address) => {
                // Stale: this request goes on with the last answer; a fresh one is looked up meanwhile.
                let this = self.clone();
                tokio::spawn(async move { this.refresh().await });
                Ok(address)
            }
            None => self.first_answer().await,
        }
    }

    /// Never resolved: nothing to go on with, so the request waits for a lookup, one at a time.
    async fn first_answer(&self) -> Result<SocketAddr, ResolveError> {
        let mut failed = self.first_lookup.lock().await;
        if let Some(answer) = *self.answer.lock().unwrap_or_else(PoisonError::into_inner) {
            // Found by the lookup this request waited for.
            return Ok(answer.address);
        }
        if let Some((at, reason)) = failed.as_ref()
            && at.elapsed() < RETRY_FAILED_AFTER
        {
            return Err(ResolveError {
                host: self.host.clone(),
                reason: reason.clone(),
            });
        }
        let result = self.refresh().await;
        *failed = result
            .as_ref()
            .err()
            .map(|e| (Instant::now(), e.reason.clone()));
        result
    }

    /// Looks the name up and keeps the answer; on failure keeps the last one, to try again later.
    async fn refresh(&self) -> Result<SocketAddr, ResolveError> {
        let looked_up = tokio::net::lookup_host((self.host.as_str(), self.port))
            .await
            .map_err(|e| e.to_string())
            .and_then(|found| {
                let found: Vec<SocketAddr> = found.collect();
                found
                    .iter()
                    .find(|a| a.is_ipv4())
                    .or(found.first())
                    .copied()
                    .ok_or_else(|| "no address".to_owned())
            });
        let now = Instant::now();
        let mut answer = self.answer.lock().unwrap_or_else(PoisonError::into_inner);
        match (looked_up, answer.as_mut()) {
            (Ok(address), _) => {
                *answer = Some(Answer {
                    address,
                    at: now,
                    refreshing: false,
                });
                Ok(address)
            }
            (Err(reason), Some(last)) => {
                tracing::warn!(host = %self.host, %reason, "backend host not resolved again; the last address stays in use");
                last.at = now;
                last.refreshing = false;
                Ok(last.address)
            }
            (Err(reason), None) => Err(ResolveError {
                host: self.host.clone(),
                reason,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn addresses_are_taken_as_they_are_and_names_are_looked_up_once_then_kept() {
        for (host, expected) in [("127.0.0.1", "127.0.0.1:9000"), ("[::1]", "[::1]:9000")] {
            let address = BackendAddress::new(host, 9000);
            assert_eq!(address.get().await.unwrap().to_string(), expected);
            assert!(address.answer.lock().unwrap().is_none(), "no lookup");
        }

        let name = BackendAddress::new("localhost", 9000);
        let first = name.get().await.unwrap();
        assert!(first.ip().is_loopback() && first.port() == 9000);
        let kept = name.answer.lock().unwrap().unwrap();
        assert_eq!(name.get().await.unwrap(), first);
        assert_eq!(
            name.answer.lock().unwrap().unwrap().at,
            kept.at,
            "not looked up again"
        );
    }

    #[tokio::test]
    async fn a_name_that_never_resolved_is_an_error_and_a_failed_refresh_keeps_the_last_answer() {
        let name = BackendAddress::new("no-such-host.invalid", 9000);
        let error = name.get().await.unwrap_err();
        assert!(
            error.to_string().contains("no-such-host.invalid"),
            "{error}"
        );
        // Remembered: the next request is answered from the failure, without a lookup.
        let failed_at = name.first_lookup.lock().await.as_ref().unwrap().0;
        assert!(name.get().await.is_err());
        assert_eq!(
            name.first_lookup.lock().await.as_ref().unwrap().0,
            failed_at
        );

        // An answer from earlier, now stale: the request is given it at once, and the refresh that
        // fails keeps it.
        let stale = Instant::now() - RESOLVE_EVERY - Duration::from_secs(1);
        let earlier: SocketAddr = "192.0.2.7:9000".parse().unwrap();
        *name.answer.lock().unwrap() = Some(Answer {
            address: earlier,
            at: stale,
            refreshing: false,
        });
        assert_eq!(name.get().await.unwrap(), earlier);
        assert_eq!(name.refresh().await.unwrap(), earlier);
        let after = name.answer.lock().unwrap().unwrap();
        assert!(after.at > stale && !after.refreshing);
    }
}
