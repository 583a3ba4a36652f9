//! An environment's state as the controller keeps it: what is desired (the pointer that
//! intake moves forward), what runs (`observed`), and what the controller is doing
//! about it — one enum, [`Activity`], whose variants carry their own data, changed only
//! by carrying out a reconcile's [`Step`](crate::reconciler::decide::Step)s.
//!
//! Stored as one state-table item with `version = 2`; an item written by an older
//! controller (loose `phase`, `status`, `active`, `actuation`… attributes) is read into
//! the same shape, and the next write replaces it.

use serde::{Deserialize, Serialize};

use super::{Images, IntentRef, Status, Timestamp};

/// The version of the item shape this controller writes.
pub const STATE_VERSION: u32 = 2;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "Wire")]
pub struct EnvState {
    /// The newest intent seen for this environment; only ever moves forward.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired: Option<IntentRef>,
    /// The release last confirmed running, and its images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed: Option<Observed>,
    /// What the controller is doing (or last did) about the environment.
    #[serde(default)]
    pub activity: Activity,
    /// Services whose pinned image differs from `observed`, found on resync.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drift: Vec<String>,
    /// The periodic drift check of a Terraform environment (`drift_check`): a plan of
    /// the deployed release, made in a runner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_drift: Option<PlanDrift>,
    /// The last automatic rollback (`on_failure = "rollback"`): the controller's own
    /// record of the entry it wrote, which no writer of the releases table can forge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<RollbackMark>,
    /// The environments the release running here was promoted to (`auto_promote_from`
    /// naming this one), so each promotion is written once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promotion: Option<Promotion>,
    /// Releases rolled back here (automatically, or by `relctl rollback`), newest first:
    /// deploying one again needs `--force`, and auto-promotion never brings one here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rolled_back: Vec<RolledBack>,
    /// Every finished deployment, compactly (newest first), for the delivery metrics.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deliveries: Vec<super::dora::Delivery>,
    #[serde(default)]
    pub history: Vec<HistoryEntry>,
    /// Why the last resync of this environment failed, and when; written only by the
    /// resync, never by a reconcile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resync_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resync_error_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

/// Where the drift check of a Terraform environment is: `terraform plan
/// -detailed-exitcode` of the deployed release, in a runner, every `drift_check`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanDrift {
    /// The check in flight: its run id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    /// The release the last check planned, and when that check ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked_at: Option<Timestamp>,
    /// What the plan would change (its summary and addresses): the infrastructure
    /// drifted from the deployed release. None: it matched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub found: Option<String>,
    /// Why the last check could not tell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// An automatic rollback: the release that failed and why, and the deployment entry
/// relctl wrote of the release it rolls back to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackMark {
    pub failed_release: String,
    pub failed_date_created: Timestamp,
    pub reason: String,
    /// The entry written (or to be written): this release, this `date_created`.
    pub release_id: String,
    pub date_created: Timestamp,
    /// The digest of the images that ran (what the controller verified): the rollback
    /// is waved past the gate and (where allowed) the approval only while the release
    /// still has exactly these.
    #[serde(default)]
    pub images: String,
    /// Not written yet (a crash came between the failure and the entry).
    #[serde(default)]
    pub pending: bool,
}

impl RollbackMark {
    /// Whether `intent` is the entry this rollback wrote.
    pub fn is(&self, intent: &IntentRef) -> bool {
        self.release_id == intent.release_id && self.date_created == intent.date_created
    }
}

/// A release rolled back in an environment: why, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolledBack {
    pub release_id: String,
    pub reason: String,
    pub at: Timestamp,
}

/// Releases remembered as rolled back per environment.
pub const ROLLED_BACK_KEPT: usize = 20;

impl EnvState {
    /// Why `release_id` was rolled back here, if it was.
    pub fn rolled_back(&self, release_id: &str) -> Option<&RolledBack> {
        self.rolled_back.iter().find(|r| r.release_id == release_id)
    }

    /// Marks `release_id` rolled back here (once; the newest first).
    pub fn mark_rolled_back(&mut self, release_id: &str, reason: String, at: Timestamp) {
        self.rolled_back.retain(|r| r.release_id != release_id);
        self.rolled_back.insert(
            0,
            RolledBack {
                release_id: release_id.to_owned(),
                reason,
                at,
            },
        );
        self.rolled_back.truncate(ROLLED_BACK_KEPT);
    }
}

/// Where the deployment that succeeded here was promoted onwards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Promotion {
    pub release_id: String,
    pub date_created: Timestamp,
    /// Environments it was promoted to (or that needed no promotion: already asked for
    /// there, or running something newer).
    #[serde(default)]
    pub done: Vec<String>,
}

/// The intent the controller is working on (or finished last), and since when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Current {
    pub intent: IntentRef,
    /// Who requested it (their name, else their id), for the history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_by: Option<String>,
    pub since: Timestamp,
    /// Let through a pause or a freeze: "break-glass by {arn}: {reason}".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub break_glass: Option<String>,
    /// When it first went in progress (after any wait): what `deadline` counts from,
    /// across every attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<Timestamp>,
}

/// Failed attempts at the intent in flight.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempts {
    #[serde(default)]
    pub count: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// What holds a deployment back before anything is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Wait {
    /// A protected environment: an approval is missing.
    Approval,
    /// The promotion gate: the release has not succeeded upstream yet.
    Gate,
    /// A freeze window.
    Freeze,
    /// The environment is paused (`relctl pause`).
    Pause,
}

/// How an intent ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Succeeded,
    Failed,
    Superseded,
    /// Stopped by a person (`relctl cancel`).
    Cancelled,
}

impl Outcome {
    pub fn status(self) -> Status {
        match self {
            Self::Succeeded => Status::Succeeded,
            Self::Failed => Status::Failed,
            Self::Superseded => Status::Superseded,
            Self::Cancelled => Status::Cancelled,
        }
    }
}

/// What the controller is doing about an environment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum Activity {
    /// Nothing yet.
    #[default]
    Idle,
    /// Held back by a policy, before anything was applied.
    Waiting {
        current: Current,
        why: Wait,
        message: String,
    },
    /// Pinning the images (`verifying`: reading them back).
    Pinning {
        current: Current,
        message: String,
        #[serde(default)]
        verifying: bool,
        #[serde(default)]
        attempts: Attempts,
        /// Services whose pins an attempt was about to write, recorded before it wrote
        /// them where the actuator redeploys exactly those (a floating ECR tag): a
        /// crash or a failure part-way leaves pins that the next attempt's diff finds
        /// already moved, and these are redeployed all the same.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        moving: Vec<String>,
        /// The `before` hooks passed for this intent: not run again by a retry.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        hooked: bool,
    },
    /// An actuator run started for the intent is being followed; never started twice.
    Applying {
        current: Current,
        run: Run,
        message: String,
        #[serde(default)]
        awaiting_approval: bool,
        #[serde(default)]
        attempts: Attempts,
    },
    /// Applied and verified; watched (its alarms) for the bake time before it counts
    /// as succeeded.
    Baking {
        current: Current,
        /// The images applied: what its success records.
        images: Images,
        until: Timestamp,
        /// What applying did, for the final status message.
        message: String,
        /// Failed attempts at reading the alarms: counted like any, so a bake that can
        /// never read them ends `failed` rather than waits for ever.
        #[serde(default)]
        attempts: Attempts,
    },
    /// The intent finished.
    Finished {
        current: Current,
        outcome: Outcome,
        message: String,
    },
}

/// An actuator run: what it is followed by, and what pinning did before it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    pub kind: String,
    /// What the actuator follows the run by (an execution id, say).
    pub handle: String,
    pub started_at: Timestamp,
    /// What pinning did, for the final status message.
    pub pinned: String,
    /// Which wave of the environment's `order` this run applies (0: the first, or
    /// the only one).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub wave: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl Activity {
    pub fn current(&self) -> Option<&Current> {
        match self {
            Self::Idle => None,
            Self::Waiting { current, .. }
            | Self::Pinning { current, .. }
            | Self::Applying { current, .. }
            | Self::Baking { current, .. }
            | Self::Finished { current, .. } => Some(current),
        }
    }

    /// Whether the `before` hooks passed for `intent`, being pinned.
    pub fn hooked(&self, intent: &IntentRef) -> bool {
        matches!(self, Self::Pinning { current, hooked: true, .. } if current.intent.same_entry(intent))
    }

    /// The intent being worked on, or finished last.
    pub fn intent(&self) -> Option<&IntentRef> {
        self.current().map(|c| &c.intent)
    }

    /// Still to be finished: waiting, pinning or applying.
    pub fn is_unfinished(&self) -> bool {
        matches!(
            self,
            Self::Waiting { .. }
                | Self::Pinning { .. }
                | Self::Applying { .. }
                | Self::Baking { .. }
        )
    }

    /// The status the deployment entry carries in this activity.
    pub fn status(&self) -> Option<Status> {
        match self {
            Self::Idle => None,
            Self::Waiting {
                why: Wait::Approval | Wait::Gate,
                ..
            } => Some(Status::Blocked),
            Self::Waiting {
                why: Wait::Freeze, ..
            } => Some(Status::Frozen),
            Self::Waiting {
                why: Wait::Pause, ..
            } => Some(Status::Paused),
            Self::Pinning { .. } => Some(Status::InProgress),
            Self::Applying {
                awaiting_approval: true,
                ..
            } => Some(Status::AwaitingApproval),
            Self::Applying { .. } | Self::Baking { .. } => Some(Status::InProgress),
            Self::Finished { outcome, .. } => Some(outcome.status()),
        }
    }

    /// Where the environment is, in one word (`relctl status`, the page, `--wait`).
    pub fn phase(&self) -> Option<&'static str> {
        Some(match self {
            Self::Idle => return None,
            Self::Waiting {
                why: Wait::Pause, ..
            } => "paused",
            Self::Waiting { .. } => "blocked",
            Self::Pinning {
                verifying: false, ..
            } => "pinning",
            Self::Pinning {
                verifying: true, ..
            } => "verifying",
            Self::Applying { .. } => "applying",
            Self::Baking { .. } => "baking",
            Self::Finished {
                outcome: Outcome::Succeeded,
                ..
            } => "converged",
            Self::Finished {
                outcome: Outcome::Failed,
                ..
            } => "failed",
            Self::Finished {
                outcome: Outcome::Superseded,
                ..
            } => "superseded",
            Self::Finished {
                outcome: Outcome::Cancelled,
                ..
            } => "cancelled",
        })
    }

    pub fn message(&self) -> Option<&str> {
        match self {
            Self::Idle => None,
            Self::Waiting { message, .. }
            | Self::Pinning { message, .. }
            | Self::Applying { message, .. }
            | Self::Baking { message, .. }
            | Self::Finished { message, .. } => Some(message),
        }
    }

    pub fn since(&self) -> Option<Timestamp> {
        self.current().map(|c| c.since)
    }

    /// Services whose pins were being written for the intent in flight (see
    /// `Activity::Pinning::moving`).
    pub fn moving(&self) -> &[String] {
        match self {
            Self::Pinning { moving, .. } => moving,
            _ => &[],
        }
    }

    pub fn attempts(&self) -> Option<&Attempts> {
        match self {
            Self::Pinning { attempts, .. }
            | Self::Applying { attempts, .. }
            | Self::Baking { attempts, .. } => Some(attempts),
            _ => None,
        }
    }

    /// The last error: of a failed attempt while retrying, or of a failure.
    pub fn last_error(&self) -> Option<&str> {
        match self {
            Self::Finished {
                outcome: Outcome::Failed,
                message,
                ..
            } => Some(message),
            _ => self.attempts()?.last_error.as_deref(),
        }
    }

    /// The last error where it says more than the message does (a failed attempt's,
    /// while the message says what is being tried now): what a reader is shown beside it.
    pub fn error_beside_message(&self) -> Option<&str> {
        self.last_error().filter(|e| self.message() != Some(*e))
    }

    /// The actuator run being followed.
    pub fn run(&self) -> Option<&Run> {
        match self {
            Self::Applying { run, .. } => Some(run),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observed {
    pub release_id: String,
    pub date_created: Timestamp,
    pub images: Images,
    pub since: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// A deployment's outcome, or something the controller did on its own.
    #[serde(default, skip_serializing_if = "HistoryKind::is_deployment")]
    pub kind: HistoryKind,
    pub release_id: String,
    /// Who requested the deployment (their name, else their id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_by: Option<String>,
    /// Let through a pause or a freeze: by whom and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub break_glass: Option<String>,
    pub date_created: Timestamp,
    pub status: Status,
    pub message: String,
    pub at: Timestamp,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HistoryKind {
    #[default]
    Deployment,
    /// Drifted pins put back by `self_heal`.
    SelfHeal,
    /// An automatic rollback recorded after a failure (`on_failure = "rollback"`).
    Rollback,
}

impl HistoryKind {
    pub fn is_deployment(&self) -> bool {
        *self == Self::Deployment
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deployment => "deployment",
            Self::SelfHeal => "self_heal",
            Self::Rollback => "rollback",
        }
    }
}

/// The item as either shape has it: version 2's `activity`, or the loose attributes of
/// the shape before it.
#[derive(Deserialize)]
struct Wire {
    #[serde(default)]
    version: Option<u32>,
    #[serde(default)]
    desired: Option<IntentRef>,
    #[serde(default)]
    observed: Option<Observed>,
    #[serde(default)]
    activity: Option<Activity>,
    #[serde(default)]
    drift: Vec<String>,
    #[serde(default)]
    plan_drift: Option<PlanDrift>,
    #[serde(default)]
    rollback: Option<RollbackMark>,
    #[serde(default)]
    promotion: Option<Promotion>,
    #[serde(default)]
    deliveries: Vec<super::dora::Delivery>,
    #[serde(default)]
    rolled_back: Vec<RolledBack>,
    #[serde(default)]
    history: Vec<HistoryEntry>,
    #[serde(default)]
    resync_error: Option<String>,
    #[serde(default)]
    resync_error_at: Option<Timestamp>,
    #[serde(default)]
    updated_at: Option<Timestamp>,
    #[serde(flatten)]
    legacy: Legacy,
}

/// The attributes of the shape before version 2.
#[derive(Default, Deserialize)]
struct Legacy {
    #[serde(default)]
    active: Option<IntentRef>,
    #[serde(default)]
    phase: Option<String>,
    #[serde(default)]
    status: Option<Status>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    last_error: Option<String>,
    #[serde(default)]
    attempts: Option<u32>,
    #[serde(default)]
    requested_by: Option<String>,
    #[serde(default)]
    actuation: Option<LegacyActuation>,
    #[serde(default)]
    since: Option<Timestamp>,
}

#[derive(Deserialize)]
struct LegacyActuation {
    intent: IntentRef,
    kind: String,
    handle: String,
    started_at: Timestamp,
    pinned: String,
}

impl From<Wire> for EnvState {
    fn from(wire: Wire) -> Self {
        let activity = match (wire.version, wire.activity) {
            (Some(v), Some(activity)) if v >= STATE_VERSION => activity,
            (_, Some(activity)) => activity,
            (_, None) => wire.legacy.into_activity(wire.updated_at),
        };
        Self {
            desired: wire.desired,
            observed: wire.observed,
            activity,
            drift: wire.drift,
            plan_drift: wire.plan_drift,
            rollback: wire.rollback,
            promotion: wire.promotion,
            deliveries: wire.deliveries,
            rolled_back: wire.rolled_back,
            history: wire.history,
            resync_error: wire.resync_error,
            resync_error_at: wire.resync_error_at,
            updated_at: wire.updated_at,
        }
    }
}

impl Legacy {
    /// What the old loose attributes meant, as one activity.
    fn into_activity(self, updated_at: Option<Timestamp>) -> Activity {
        let Some(intent) = self.active else {
            return Activity::Idle;
        };
        let since = self.since.or(updated_at).unwrap_or(intent.date_created);
        let current = Current {
            intent,
            requested_by: self.requested_by,
            since,
            break_glass: None,
            started: None,
        };
        let message = self.message.unwrap_or_default();
        let attempts = Attempts {
            count: self.attempts.unwrap_or_default(),
            last_error: self.last_error.clone(),
        };
        let finished = |outcome| Activity::Finished {
            current: current.clone(),
            outcome,
            message: message.clone(),
        };
        match (self.status, self.phase.as_deref()) {
            (Some(Status::Succeeded), _) | (_, Some("converged")) => finished(Outcome::Succeeded),
            (Some(Status::Superseded), _) => finished(Outcome::Superseded),
            (Some(Status::Failed), _) | (_, Some("failed")) => Activity::Finished {
                message: self.last_error.unwrap_or(message),
                current,
                outcome: Outcome::Failed,
            },
            (Some(status @ (Status::Blocked | Status::Frozen)), _) => Activity::Waiting {
                why: if status == Status::Frozen {
                    Wait::Freeze
                } else {
                    Wait::Approval
                },
                current,
                message,
            },
            _ => match self
                .actuation
                .filter(|a| a.intent.same_entry(&current.intent))
            {
                Some(run) => Activity::Applying {
                    run: Run {
                        kind: run.kind,
                        handle: run.handle,
                        started_at: run.started_at,
                        pinned: run.pinned,
                        wave: 0,
                    },
                    awaiting_approval: self.status == Some(Status::AwaitingApproval),
                    current,
                    message,
                    attempts,
                },
                None => Activity::Pinning {
                    verifying: self.phase.as_deref() == Some("verifying"),
                    current,
                    message,
                    attempts,
                    moving: Vec::new(),
                    hooked: false,
                },
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        Timestamp::parse(text).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn an_item_written_by_the_previous_controller_mid_apply_reads_as_applying_its_run() {
        let old = serde_json::json!({
            "desired": { "date_created": "2024-05-01T10:00:00.000000", "release_id": "r2", "index": 0 },
            "active": { "date_created": "2024-05-01T10:00:00.000000", "release_id": "r2", "index": 0 },
            "phase": "applying",
            "status": "in_progress",
            "message": "pipeline running",
            "attempts": 2,
            "last_error": "timed out",
            "requested_by": "someone",
            "actuation": {
                "intent": { "date_created": "2024-05-01T10:00:00.000000", "release_id": "r2", "index": 0 },
                "kind": "codepipeline", "handle": "exec-1",
                "started_at": "2024-05-01T10:00:01.000000", "pinned": "pinned 1 of 1 images"
            },
            "since": "2024-05-01T10:00:00.500000",
            "history": []
        });
        let state: EnvState = serde_json::from_value(old).unwrap_or_else(|e| panic!("{e}"));
        let Activity::Applying {
            run,
            attempts,
            current,
            ..
        } = &state.activity
        else {
            panic!("{:?}", state.activity);
        };
        assert_eq!(run.handle, "exec-1");
        assert_eq!(attempts.count, 2);
        assert_eq!(current.requested_by.as_deref(), Some("someone"));
        assert_eq!(current.since, at("2024-05-01T10:00:00.5"));
        assert_eq!(state.activity.phase(), Some("applying"));
    }

    #[test]
    fn old_converged_blocked_frozen_and_failed_items_keep_their_meaning() {
        let shape = |status: &str, phase: &str| {
            serde_json::from_value::<EnvState>(serde_json::json!({
                "active": { "date_created": "2024-05-01T10:00:00.000000", "release_id": "r1", "index": 0 },
                "status": status, "phase": phase, "message": "m", "last_error": "boom"
            }))
            .unwrap_or_else(|e| panic!("{e}"))
            .activity
        };
        assert_eq!(
            shape("succeeded", "converged").status(),
            Some(Status::Succeeded)
        );
        assert_eq!(shape("blocked", "blocked").status(), Some(Status::Blocked));
        assert_eq!(shape("frozen", "blocked").status(), Some(Status::Frozen));
        let failed = shape("failed", "failed");
        assert_eq!(failed.status(), Some(Status::Failed));
        assert_eq!(failed.last_error(), Some("boom"));
        assert_eq!(shape("in_progress", "verifying").phase(), Some("verifying"));
    }

    #[test]
    fn the_new_shape_round_trips_with_its_version() {
        let state = EnvState {
            activity: Activity::Waiting {
                current: Current {
                    intent: IntentRef {
                        date_created: at("2024-05-01T10:00:00"),
                        release_id: "r1".into(),
                        index: 3,
                        date_created_raw: None,
                    },
                    requested_by: None,
                    since: at("2024-05-01T10:00:01"),
                    break_glass: None,
                    started: None,
                },
                why: Wait::Freeze,
                message: "frozen until …".into(),
            },
            ..Default::default()
        };
        let mut value = serde_json::to_value(&state).unwrap_or_default();
        assert_eq!(value["activity"]["phase"], "waiting");
        value["version"] = STATE_VERSION.into();
        let back: EnvState = serde_json::from_value(value).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, state);
    }

    #[test]
    fn nothing_stored_reads_as_idle() {
        let state: EnvState =
            serde_json::from_value(serde_json::json!({})).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(state.activity, Activity::Idle);
        assert_eq!(state.activity.status(), None);
    }
}
