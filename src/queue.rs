//! A keyed delay queue, after kube-runtime's `scheduler.rs` and `runner.rs`:
//!
//! - one pending entry per key; scheduling a key again keeps the earliest due time and the
//!   higher priority;
//! - a key handed out by [`Queue::next`] is *in flight* until [`Queue::done`]: it is never
//!   handed out twice at once, and a schedule that arrives meanwhile is held and runs after;
//! - among due entries, [`Priority::Fresh`] (stream intents, retries) goes before
//!   [`Priority::Resync`], so a deployment never waits behind a resync of every environment.
//!
//! Bounded global concurrency is the caller's semaphore; per-key backoff is [`Backoffs`].

use std::{
    collections::{BTreeSet, HashMap, HashSet},
    hash::Hash,
    sync::Mutex,
    time::Duration,
};

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use tokio::{sync::Notify, time::Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    Resync = 0,
    Fresh = 1,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    due: Instant,
    priority: Priority,
    seq: u64,
}

#[derive(Debug)]
struct Inner<K> {
    pending: HashMap<K, Entry>,
    /// Pending keys that are not in flight, per priority, ordered by (due, arrival).
    ready: [BTreeSet<(Instant, u64, K)>; 2],
    in_flight: HashSet<K>,
    seq: u64,
    closed: bool,
}

#[derive(Debug)]
pub struct Queue<K> {
    inner: Mutex<Inner<K>>,
    changed: Notify,
}

impl<K: Clone + Eq + Hash + Ord> Default for Queue<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Clone + Eq + Hash + Ord> Queue<K> {
    pub fn new() -> Self {
        Self {
            inner: Mutex::new(Inner {
                pending: HashMap::new(),
                ready: [BTreeSet::new(), BTreeSet::new()],
                in_flight: HashSet::new(),
                seq: 0,
                closed: false,
            }),
            changed: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<K>> {
        // The lock is never held across a panic point that leaves state half-written.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Asks for `key` to be reconciled after `delay`.
    pub fn schedule(&self, key: K, delay: Duration, priority: Priority) {
        let due = Instant::now() + delay;
        let mut inner = self.lock();
        let flying = inner.in_flight.contains(&key);
        let entry = match inner.pending.get(&key).copied() {
            Some(old) => {
                let merged = Entry {
                    due: old.due.min(due),
                    priority: old.priority.max(priority),
                    seq: old.seq,
                };
                if merged.due == old.due && merged.priority == old.priority {
                    return;
                }
                if !flying {
                    inner.ready[old.priority as usize].remove(&(old.due, old.seq, key.clone()));
                }
                merged
            }
            None => {
                inner.seq += 1;
                Entry {
                    due,
                    priority,
                    seq: inner.seq,
                }
            }
        };
        inner.pending.insert(key.clone(), entry);
        if !flying {
            inner.ready[entry.priority as usize].insert((entry.due, entry.seq, key));
        }
        drop(inner);
        self.changed.notify_one();
    }

    /// The next due key, marked in flight; `None` once the queue is closed.
    pub async fn next(&self) -> Option<K> {
        loop {
            // Register interest before looking, so a schedule in between is not missed.
            let changed = self.changed.notified();
            let wake_at = {
                let mut inner = self.lock();
                if inner.closed {
                    return None;
                }
                let now = Instant::now();
                for priority in [Priority::Fresh, Priority::Resync] {
                    let set = &mut inner.ready[priority as usize];
                    if set.first().is_some_and(|(due, _, _)| *due <= now)
                        && let Some((_, _, key)) = set.pop_first()
                    {
                        inner.pending.remove(&key);
                        inner.in_flight.insert(key.clone());
                        return Some(key);
                    }
                }
                inner
                    .ready
                    .iter()
                    .filter_map(|set| set.first().map(|(due, _, _)| *due))
                    .min()
            };
            match wake_at {
                Some(at) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(at) => {}
                        _ = changed => {}
                    }
                }
                None => changed.await,
            }
        }
    }

    /// Ends `key`'s reconcile: an entry scheduled meanwhile becomes eligible.
    pub fn done(&self, key: &K) {
        let mut inner = self.lock();
        inner.in_flight.remove(key);
        if let Some(entry) = inner.pending.get(key).copied() {
            inner.ready[entry.priority as usize].insert((entry.due, entry.seq, key.clone()));
        }
        drop(inner);
        self.changed.notify_one();
    }

    /// Wakes [`Queue::next`] with `None`: no more work is handed out.
    pub fn close(&self) {
        self.lock().closed = true;
        self.changed.notify_one();
    }

    /// Pending entries (in flight ones not counted).
    pub fn len(&self) -> usize {
        self.lock().pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn in_flight(&self) -> usize {
        self.lock().in_flight.len()
    }
}

/// Per-key exponential backoff with jitter that resets on success.
#[derive(Debug)]
pub struct Backoffs<K> {
    builder: ExponentialBuilder,
    /// Each key's backoff, and its failures since it last succeeded.
    running: Mutex<HashMap<K, (ExponentialBackoff, u32)>>,
}

impl<K: Eq + Hash + Clone> Backoffs<K> {
    pub fn new(min: Duration, max: Duration) -> Self {
        Self {
            builder: ExponentialBuilder::default()
                .with_min_delay(min)
                .with_max_delay(max)
                .with_factor(2.0)
                .with_jitter()
                .without_max_times(),
            running: Mutex::new(HashMap::new()),
        }
    }

    /// The delay before retrying `key` after one more failure.
    pub fn failed(&self, key: &K) -> Duration {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let (backoff, failures) = running
            .entry(key.clone())
            .or_insert_with(|| (self.builder.build(), 0));
        *failures = failures.saturating_add(1);
        backoff.next().unwrap_or(Duration::from_secs(60))
    }

    /// Starts counting `key`'s failures afresh, keeping its backoff: the failures so far
    /// are counted elsewhere (in the environment's state).
    pub fn forget_failures(&self, key: &K) {
        if let Some((_, failures)) = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(key)
        {
            *failures = 0;
        }
    }

    /// Failures of `key` since it last succeeded (or was given up on).
    pub fn failures(&self, key: &K) -> u32 {
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .map_or(0, |(_, failures)| *failures)
    }

    pub fn succeeded(&self, key: &K) {
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    #[tokio::test(start_paused = true)]
    async fn a_key_has_at_most_one_pending_entry() {
        let queue = Queue::new();
        queue.schedule("a", Duration::ZERO, Priority::Fresh);
        queue.schedule("a", Duration::ZERO, Priority::Fresh);
        queue.schedule("a", SEC, Priority::Resync);
        assert_eq!(queue.len(), 1);
        assert_eq!(queue.next().await, Some("a"));
        assert!(queue.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn the_earliest_due_time_wins() {
        let queue = Queue::new();
        queue.schedule("a", 10 * SEC, Priority::Fresh);
        queue.schedule("a", 2 * SEC, Priority::Fresh);
        queue.schedule("a", 5 * SEC, Priority::Fresh);
        let start = Instant::now();
        assert_eq!(queue.next().await, Some("a"));
        assert_eq!(start.elapsed(), 2 * SEC);
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_is_never_handed_out_twice_at_once() {
        let queue = Arc::new(Queue::new());
        queue.schedule("a", Duration::ZERO, Priority::Fresh);
        assert_eq!(queue.next().await, Some("a"));
        queue.schedule("a", Duration::ZERO, Priority::Fresh);
        queue.schedule("b", SEC, Priority::Fresh);
        // "a" is in flight: the next key is "b", a second later, not "a" again.
        let start = Instant::now();
        assert_eq!(queue.next().await, Some("b"));
        assert_eq!(start.elapsed(), SEC);
        let waiting = {
            let queue = queue.clone();
            tokio::spawn(async move { queue.next().await })
        };
        tokio::time::sleep(10 * SEC).await;
        assert!(!waiting.is_finished(), "a in-flight key must be held");
        queue.done(&"a");
        assert_eq!(waiting.await.unwrap(), Some("a"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_scheduled_during_its_reconcile_runs_again_after() {
        let queue = Queue::new();
        queue.schedule("a", Duration::ZERO, Priority::Fresh);
        assert_eq!(queue.next().await, Some("a"));
        queue.schedule("a", Duration::ZERO, Priority::Fresh);
        assert_eq!(queue.len(), 1, "held, not dropped");
        queue.done(&"a");
        assert_eq!(queue.next().await, Some("a"));
    }

    #[tokio::test(start_paused = true)]
    async fn fresh_work_is_served_before_resync_work() {
        let queue = Queue::new();
        for key in ["r1", "r2", "r3"] {
            queue.schedule(key, Duration::ZERO, Priority::Resync);
        }
        queue.schedule("fresh", Duration::ZERO, Priority::Fresh);
        assert_eq!(queue.next().await, Some("fresh"));
        assert_eq!(queue.next().await, Some("r1"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_fresh_schedule_promotes_a_pending_resync_entry() {
        let queue = Queue::new();
        queue.schedule("a", Duration::ZERO, Priority::Resync);
        queue.schedule("b", Duration::ZERO, Priority::Resync);
        queue.schedule("b", Duration::ZERO, Priority::Fresh);
        assert_eq!(queue.next().await, Some("b"));
    }

    #[tokio::test(start_paused = true)]
    async fn close_wakes_a_waiting_consumer_with_none() {
        let queue = Arc::new(Queue::<&str>::new());
        let waiting = {
            let queue = queue.clone();
            tokio::spawn(async move { queue.next().await })
        };
        tokio::task::yield_now().await;
        queue.close();
        assert_eq!(waiting.await.unwrap(), None);
    }

    #[test]
    fn backoff_grows_per_key_and_resets_on_success() {
        let backoffs = Backoffs::new(SEC, 100 * SEC);
        let first = backoffs.failed(&"a");
        let _ = backoffs.failed(&"a");
        let third = backoffs.failed(&"a");
        assert!((SEC..2 * SEC).contains(&first), "{first:?}");
        assert!((4 * SEC..8 * SEC).contains(&third), "{third:?}");
        let other = backoffs.failed(&"b");
        assert!(other < 2 * SEC, "keys back off independently: {other:?}");
        assert_eq!(backoffs.failures(&"a"), 3);
        assert_eq!(backoffs.failures(&"b"), 1);
        backoffs.succeeded(&"a");
        assert_eq!(backoffs.failures(&"a"), 0);
        assert!(backoffs.failed(&"a") < 2 * SEC);
    }

    #[test]
    fn backoff_is_capped() {
        let backoffs = Backoffs::new(SEC, 10 * SEC);
        let last = (0..20).map(|_| backoffs.failed(&"a")).last().unwrap();
        assert!(last <= 20 * SEC, "{last:?}");
    }
}
