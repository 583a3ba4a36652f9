//! What the board and its pages read ([`crate::http::StatusSource`]): every configured
//! environment's state, in batches, kept for [`PAGE_CACHE`] and read one at a time
//! however many pages load; the releases the pages name, kept for [`RELEASE_CACHE`]
//! (found or not), a few reads at a time — so nobody who can reach a page can spend
//! the API budget the lease and deployments need.

use std::{sync::Arc, time::Duration};

use crate::{
    config::Config,
    model::{EnvKey, state::EnvState},
    store::StateStore,
};

/// The status page's view: every configured environment's state, read in batches and
/// kept for [`PAGE_CACHE`], one read at a time however many pages are loading, so
/// reloading the page cannot eat the API budget the lease and deployments need.
pub(super) struct Environments {
    pub(super) config: Arc<Config>,
    pub(super) state: StateStore,
    pub(super) releases: crate::store::ReleaseStore,
    pub(super) cached: tokio::sync::Mutex<Option<(tokio::time::Instant, View)>>,
    /// Releases the board names (for their descriptions), each read at most once per
    /// [`RELEASE_CACHE`].
    pub(super) described: tokio::sync::Mutex<
        std::collections::HashMap<String, (tokio::time::Instant, Option<crate::model::Release>)>,
    >,
    pub(super) reads: tokio::sync::Semaphore,
}

/// How long a release read for the board is reused.
const RELEASE_CACHE: Duration = Duration::from_secs(60);
/// The most releases the board reads in one load (the rest show no description).
const RELEASES_PER_LOAD: usize = 50;
/// The most releases (or ids found to be none) kept for the pages.
const RELEASES_KEPT: usize = 2000;
/// Release reads for the pages at once.
pub(super) const RELEASE_READS: usize = 4;

/// Every configured environment with its state.
type View = Vec<(EnvKey, EnvState)>;

/// How long the status page's view is reused.
const PAGE_CACHE: Duration = Duration::from_secs(2);

#[async_trait::async_trait]
impl crate::http::StatusSource for Environments {
    async fn environments(&self) -> Result<Vec<(EnvKey, EnvState)>, String> {
        let mut cached = self.cached.lock().await;
        if let Some((at, states)) = cached.as_ref()
            && at.elapsed() < PAGE_CACHE
        {
            return Ok(states.clone());
        }
        let keys: Vec<EnvKey> = self.config.keys().collect();
        let states = self
            .state
            .get_many(&keys)
            .await
            .map_err(|e| e.to_string())?;
        let states: Vec<(EnvKey, EnvState)> = keys.into_iter().zip(states).collect();
        *cached = Some((tokio::time::Instant::now(), states.clone()));
        Ok(states)
    }

    async fn releases(
        &self,
        wanted: &[(String, String)],
    ) -> std::collections::HashMap<String, crate::model::Release> {
        // What the cache lacks is read outside its lock: a slow table holds up no page.
        let missing: Vec<(String, String)> = {
            let mut described = self.described.lock().await;
            described.retain(|_, (at, _)| at.elapsed() < RELEASE_CACHE);
            wanted
                .iter()
                .filter(|(_, id)| !described.contains_key(id))
                .take(RELEASES_PER_LOAD)
                .cloned()
                .collect()
        };
        let mut read = Vec::new();
        for (project, id) in &missing {
            let Some(project) = self.config.project(project) else {
                continue;
            };
            let _turn = self.reads.acquire().await;
            let table = self.config.releases_table(project);
            // A release that cannot be read now is shown without its description.
            read.push((
                id.clone(),
                self.releases.get(table, id).await.ok().flatten(),
            ));
        }
        let mut described = self.described.lock().await;
        remember(&mut described, read);
        wanted
            .iter()
            .filter_map(|(_, id)| Some((id.clone(), described.get(id)?.1.clone()?)))
            .collect()
    }

    async fn release(&self, id: &str) -> Result<Option<crate::model::Release>, String> {
        if let Some((at, found)) = self.described.lock().await.get(id)
            && at.elapsed() < RELEASE_CACHE
        {
            return Ok(found.clone());
        }
        let found = {
            // A page anyone can ask for: a few reads at a time, whatever they ask.
            let _turn = self.reads.acquire().await;
            self.releases
                .find_in(&self.config.releases_tables(), id)
                .await
                .map_err(|e| e.to_string())?
                .map(|(_, release)| release)
        };
        remember(
            &mut *self.described.lock().await,
            vec![(id.to_owned(), found.clone())],
        );
        Ok(found)
    }
}

/// Keeps what was read (found or not), within [`RELEASES_KEPT`].
fn remember(
    described: &mut std::collections::HashMap<
        String,
        (tokio::time::Instant, Option<crate::model::Release>),
    >,
    read: Vec<(String, Option<crate::model::Release>)>,
) {
    if described.len() + read.len() > RELEASES_KEPT {
        described.retain(|_, (at, _)| at.elapsed() < RELEASE_CACHE);
    }
    if described.len() + read.len() > RELEASES_KEPT {
        described.clear();
    }
    let now = tokio::time::Instant::now();
    for (id, found) in read {
        described.insert(id, (now, found));
    }
}
