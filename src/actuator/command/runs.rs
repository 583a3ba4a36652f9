//! The registry of the command runs this controller follows (its runner processes:
//! pid, heartbeat, how each ended) and the drain that interrupts them on shutdown.

use std::{collections::HashMap, path::PathBuf, sync::Mutex, time::Duration};

use tokio::time::Instant;
use tracing::warn;

use super::HEARTBEAT;
use crate::{model::EnvKey, store::StateStore};

/// Run records and the controller's own runs, shared by every command actuator.
#[derive(Debug)]
pub struct Runs {
    /// This controller process, as run records name it.
    pub owner: String,
    pub store: StateStore,
    /// How long a runner waits without a keepalive before it stops by itself.
    pub keepalive: Duration,
    /// The `relctl` binary a run is started with (`relctl runner`).
    pub exe: Option<PathBuf>,
    pub(super) local: Mutex<HashMap<String, Local>>,
    pub(super) draining: std::sync::atomic::AtomicBool,
}

#[derive(Debug)]
pub(super) struct Local {
    pub(super) key: EnvKey,
    pub(super) pid: Option<u32>,
    pub(super) state: LocalState,
    pub(super) heartbeat: Instant,
}

#[derive(Debug, Clone)]
pub(super) enum LocalState {
    Running {
        last_line: Option<String>,
    },
    /// With its message: how many commands, and the source revision applied.
    Succeeded(String),
    /// A plan run ended with a kept plan: its digest and summary, for an approval.
    Planned {
        digest: String,
        summary: String,
    },
    /// A drift check found changes: what the plan would change.
    Drifted(String),
    Failed(String),
    Interrupted,
}

impl Runs {
    pub fn new(
        owner: String,
        store: StateStore,
        keepalive: Duration,
        exe: Option<PathBuf>,
    ) -> Self {
        Self {
            owner,
            store,
            keepalive,
            exe,
            local: Mutex::default(),
            draining: Default::default(),
        }
    }

    pub(super) fn local(&self) -> std::sync::MutexGuard<'_, HashMap<String, Local>> {
        self.local.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn running(&self) -> Vec<(String, Option<u32>)> {
        self.local()
            .iter()
            .filter(|(_, l)| matches!(l.state, LocalState::Running { .. }))
            .map(|(id, l)| (id.clone(), l.pid))
            .collect()
    }

    /// Interrupts every run this controller follows (the lease is lost, or the drain
    /// ran out): each runner stops its command gracefully and the run is recorded
    /// `interrupted`.
    pub fn interrupt_all(&self) {
        for (run_id, pid) in self.running() {
            warn!(run_id, "interrupting the run");
            signal(pid, rustix::process::Signal::INT);
        }
    }

    /// On shutdown: no new runs; the running ones get until `deadline`, then are
    /// interrupted, and their end (or interruption) is awaited for `grace` more.
    pub async fn drain(&self, deadline: Duration, grace: Duration) {
        self.draining
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let until = Instant::now() + deadline;
        while !self.running().is_empty() && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if self.running().is_empty() {
            return;
        }
        self.interrupt_all();
        let until = Instant::now() + grace + Duration::from_secs(6);
        while !self.running().is_empty() && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub(super) fn stale_before_ms(&self, grace: Duration) -> i64 {
        now_ms() - settle(self.keepalive, grace).as_millis() as i64
    }
}

/// How long after its last heartbeat a run is known to be over: its runner's own stop
/// (keepalive, then grace, then SIGTERM's 5 s), plus the heartbeat interval and a
/// margin for clocks.
pub fn settle(keepalive: Duration, grace: Duration) -> Duration {
    keepalive + grace + Duration::from_secs(5) + HEARTBEAT + Duration::from_secs(5)
}

pub(super) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

pub(super) fn signal(pid: Option<u32>, sig: rustix::process::Signal) {
    if let Some(pid) = pid.and_then(|p| rustix::process::Pid::from_raw(p as i32)) {
        let _ = rustix::process::kill_process(pid, sig);
    }
}
