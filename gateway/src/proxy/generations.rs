//! [`Generations`]: the gateway of the config in force, which a reload replaces, and which the proxy,
//! the watchdog and the listener read.

use std::sync::Arc;

use arc_swap::ArcSwap;

use super::state::Gateway;

/// The gateway in force, shared by the proxy and whoever reloads it.
#[derive(Clone)]
pub(crate) struct Generations(Arc<ArcSwap<Gateway>>);

impl Generations {
    pub(crate) fn new(first: Gateway) -> Self {
        Self(Arc::new(ArcSwap::from_pointee(first)))
    }

    /// The gateway new requests meet.
    pub(crate) fn current(&self) -> Arc<Gateway> {
        self.0.load_full()
    }

    /// Makes `next` the gateway new requests meet.
    pub(crate) fn replace(&self, next: Gateway) {
        self.0.store(Arc::new(next));
    }
}
