//! [`Watch`]: the background service that looks at every request the [`super::watchdog`] holds,
//! five times a second, and ends those whose time or access is up: a body past its deadline, and
//! a stream that would no longer be let in by the config in force (its token expired or revoked,
//! its route gone or changed, its policy changed under what it carries) or whose grant a
//! revocation made elsewhere ended (learnt from the store's revocation epoch).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;

use super::generations::Generations;
use super::state::Gateway;
use super::watchdog::{Ending, StreamAccess, Watchdog};
use crate::policy::{self, Caller, Target};
use crate::tokens::access::has_scopes;

/// How often watched requests are looked at: a revocation ends a stream well within a second.
const TICK: Duration = Duration::from_millis(200);

/// Whether a stream would still be let in by `gateway` (the config in force), as far as can be
/// told without the store: `None`, or why not.
fn still_admitted(access: &StreamAccess, gateway: &Gateway, now: u64) -> Option<Ending> {
    let claims = &access.claims;
    if gateway.verifier.expired(claims, now) {
        return Some(Ending::Expired);
    }
    if gateway.verifier.revocations.covers(claims) {
        return Some(Ending::Revoked);
    }
    let opened = &access.config.routes[access.route];
    let config = gateway.config();
    let Some(route) = config.routes.iter().find(|r| r.path == opened.path) else {
        return Some(Ending::RouteRemoved);
    };
    if !claims.is_for(&route.resource) || !has_scopes(claims.scopes(), &route.required_scopes) {
        return Some(Ending::AccessChanged);
    }
    fn written(route: &crate::config::Route) -> Option<&str> {
        route.policy.as_ref().map(|p| p.written.as_str())
    }
    if written(route) != written(opened) {
        if access.lists {
            return Some(Ending::PolicyChanged);
        }
        if let Some(policy) = &route.policy {
            let caller = Caller::of(claims);
            let refused = access.calls.iter().any(|(kind, name)| {
                let target = Target { kind: *kind, name };
                !policy::decide(policy, &caller, kind.call_method(), target).allows()
            });
            if refused {
                return Some(Ending::PolicyChanged);
            }
        }
    }
    None
}

/// Looks at every watched request, five times a second.
pub(crate) struct Watch {
    pub watchdog: Arc<Watchdog>,
    pub generations: Generations,
}

impl Watch {
    async fn tick(&self) {
        let gateway = self.generations.current();
        // A revocation made elsewhere (another replica, the command line) is learnt from the
        // store; each grant with a stream open is then asked about again, once.
        let revoked_elsewhere = match &gateway.auth {
            Some(auth) => auth.revocations_changed().await,
            None => false,
        };
        let now = Instant::now();
        let seconds = crate::clock::now();
        // What the store said of each grant this look, asked once however many streams it has.
        let mut grants: HashMap<String, bool> = HashMap::new();
        for watched in self.watchdog.all() {
            let (ending, grant) = {
                let state = watched.state();
                if state.ending.is_some() {
                    continue;
                }
                let stream = state.stream.as_ref();
                let ending = if state.body_deadline.is_some_and(|d| d <= now) {
                    Some(Ending::BodyTimeout)
                } else {
                    stream.and_then(|s| still_admitted(s, &gateway, seconds))
                };
                let grant = stream
                    .filter(|_| revoked_elsewhere && ending.is_none())
                    .and_then(|s| s.claims.gid.clone());
                (ending, grant)
            };
            let ending = match (ending, grant, &gateway.auth) {
                (Some(ending), ..) => Some(ending),
                (None, Some(grant), Some(auth)) => {
                    let revoked = match grants.get(&grant) {
                        Some(revoked) => *revoked,
                        None => {
                            let revoked = auth.grant_revoked(&grant).await;
                            grants.insert(grant, revoked);
                            revoked
                        }
                    };
                    revoked.then_some(Ending::Revoked)
                }
                _ => None,
            };
            if let Some(ending) = ending {
                if ending != Ending::BodyTimeout {
                    tracing::info!(
                        reason = ending.reason(),
                        "ended a stream whose access ended"
                    );
                }
                watched.end(ending);
            }
        }
    }
}

#[async_trait]
impl BackgroundService for Watch {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => self.tick().await,
                _ = shutdown.changed() => return,
            }
        }
    }
}
