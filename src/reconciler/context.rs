//! Everything a reconcile needs, built once and shared.

use std::sync::Arc;

use tokio::sync::Notify;

use crate::{
    config::Config,
    model::{EnvKey, Timestamp},
    pin::Pin,
    queue::{Backoffs, Queue},
    store::{ReleaseStore, StateStore},
};

pub struct Context {
    pub config: Arc<Config>,
    pub releases: ReleaseStore,
    pub state: StateStore,
    pub pin: Arc<dyn Pin>,
    pub queue: Arc<Queue<EnvKey>>,
    pub backoffs: Backoffs<EnvKey>,
    /// Wakes the resync loop early (trimmed stream data, an expired checkpoint).
    pub resync_now: Notify,
}

impl Context {
    pub fn new(
        config: Arc<Config>,
        releases: ReleaseStore,
        state: StateStore,
        pin: Arc<dyn Pin>,
    ) -> Self {
        let backoffs = Backoffs::new(config.controller.backoff_min, config.controller.backoff_max);
        Self {
            config,
            releases,
            state,
            pin,
            queue: Arc::new(Queue::new()),
            backoffs,
            resync_now: Notify::new(),
        }
    }

    /// The pin adapter for `key`'s environment.
    pub fn pin_for(&self, _key: &EnvKey) -> Arc<dyn Pin> {
        self.pin.clone()
    }

    pub fn now(&self) -> Timestamp {
        Timestamp::from_utc(chrono::Utc::now())
    }
}
