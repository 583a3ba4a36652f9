//! What one leadership term shares: the configuration, the stores (fenced by the lease),
//! each environment's pin and actuator, the queue and the metrics. Intake, the watcher,
//! the resync and the reconcile all take it; it depends on none of them.

use std::{collections::HashMap, sync::Arc};

use tokio::sync::Notify;

use crate::{
    adapters::Adapters,
    config::Config,
    metrics::Metrics,
    model::{EnvKey, Timestamp},
    queue::{Backoffs, Queue},
    store::{ReleaseStore, StateStore, attestations::Attestations, setup::TableProblems},
};

/// What proves who did what: the approvals table, and the unique ids of the principals
/// the configuration lists.
pub struct Trust {
    pub attestations: Attestations,
    pub principals: Arc<crate::aws::principals::Resolver>,
}

pub struct Context {
    pub config: Arc<Config>,
    pub releases: ReleaseStore,
    pub state: StateStore,
    /// Who approved and who requested deployments, as the approvals table proves.
    pub attestations: Attestations,
    /// Each configured environment's pin and actuator.
    pub adapters: HashMap<EnvKey, Adapters>,
    pub queue: Arc<Queue<EnvKey>>,
    pub backoffs: Backoffs<EnvKey>,
    pub metrics: Arc<Metrics>,
    /// Environments whose pins drifted from the deployed release.
    pub drifted: std::sync::Mutex<std::collections::HashSet<EnvKey>>,
    /// Wakes the resync loop early (trimmed stream data, an expired checkpoint).
    pub resync_now: Notify,
    /// Releases tables relctl cannot use now: resync skips their environments.
    pub tables: Arc<TableProblems>,
    /// What the last resync of each environment in this term found (`None`: no error),
    /// as recorded in its state item; absent until its first resync in this term.
    pub resync_errors: std::sync::Mutex<HashMap<EnvKey, Option<String>>>,
    /// Tells the environments' sinks what happened (never waited for).
    pub notifier: crate::notify::Notifier,
    /// The unique ids of the principals `approvers` and `break_glass` list.
    pub principals: Arc<crate::aws::principals::Resolver>,
}

impl Context {
    pub fn new(
        config: Arc<Config>,
        releases: ReleaseStore,
        state: StateStore,
        trust: Trust,
        adapters: HashMap<EnvKey, Adapters>,
        metrics: Arc<Metrics>,
        tables: Arc<TableProblems>,
    ) -> Self {
        let Trust {
            attestations,
            principals,
        } = trust;
        let backoffs = Backoffs::new(config.controller.backoff_min, config.controller.backoff_max);
        let metrics_for_notify = metrics.clone();
        Self {
            config,
            releases,
            state,
            attestations,
            adapters,
            queue: Arc::new(Queue::new()),
            backoffs,
            resync_now: Notify::new(),
            metrics,
            drifted: Default::default(),
            tables,
            resync_errors: Default::default(),
            notifier: crate::notify::Notifier::new(metrics_for_notify),
            principals,
        }
    }

    /// The pin and actuator of `key`'s environment (every configured one has them).
    pub fn adapters(&self, key: &EnvKey) -> Option<&Adapters> {
        self.adapters.get(key)
    }

    /// Tells `key`'s sinks of `event` (in the background).
    pub fn notify(&self, key: &EnvKey, event: crate::notify::Event) {
        if let Some(adapters) = self.adapters.get(key)
            && !adapters.sinks.is_empty()
        {
            self.notifier.send(&adapters.sinks, event);
        }
    }

    pub fn now(&self) -> Timestamp {
        Timestamp::from_utc(chrono::Utc::now())
    }
}
