//! What people do to an environment's loop, as the approvals table proves it: a pause
//! (`relctl pause`, ended by `relctl resume`) holds new deployments as `paused` and
//! stops self-heal and auto-promotion there; a break-glass (`relctl deploy
//! --break-glass --reason …`) by a principal the environment's `break_glass` lists lets
//! one deployment through a pause or a freeze, recorded and notified as such; a
//! `deadline` ends a deployment that takes too long, whatever its phase.

use std::time::Duration;

use super::{Facts, Step, frozen};
use crate::{
    model::{IntentRef, state::Activity},
    store::attestations::Paused,
};

/// How soon a deployment waiting for a pause to end looks again: a resume is recorded
/// in a table this controller reads, not on a stream it watches.
pub const PAUSE_POLL: Duration = Duration::from_secs(10);

/// The controls read for an environment and its desired intent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Controls {
    /// The pause in force, if any.
    pub paused: Option<Paused>,
    /// A listed principal's break-glass for the desired intent (with these images):
    /// "break-glass by {arn}: {reason}".
    pub break_glass: Option<String>,
    /// Why a break-glass asked for on the entry does not count.
    pub glass_refused: Option<String>,
}

impl Controls {
    pub fn paused_words(&self, environment: &str) -> Option<String> {
        let p = self.paused.as_ref()?;
        Some(format!(
            "environment {environment} is paused by {} since {} ({})",
            who(&p.by),
            p.at,
            p.reason
        ))
    }
}

/// The break-glass that lets `intent` through a pause or a freeze in force now, if one
/// does (none where nothing holds it).
pub fn broken_glass(facts: &Facts<'_>, now: crate::model::Timestamp) -> Option<String> {
    let controls = facts.controls?;
    let held = controls.paused.is_some() || frozen(facts.env, now).is_some();
    controls.break_glass.clone().filter(|_| held)
}

/// A pause or a freeze holding `intent` back (after the gate and the approval), unless
/// a listed principal broke the glass.
pub fn held_by_pause_or_freeze(
    facts: &Facts<'_>,
    intent: &IntentRef,
    now: crate::model::Timestamp,
) -> Option<Step> {
    let env = facts.env;
    let Some(controls) = facts.controls else {
        return Some(Step::LookAtControls);
    };
    if controls.break_glass.is_some() {
        return None;
    }
    let refused = controls
        .glass_refused
        .as_deref()
        .map(|why| format!("; {why}"))
        .unwrap_or_default();
    let recorded = |message: &str| {
        matches!(&facts.state.activity, Activity::Waiting { current, message: m, .. }
            if current.intent == *intent && m == message)
    };
    // A pause stops forward changes; the way back (a rollback to a release that ran
    // here) is not held by it.
    if let Some(paused) = controls
        .paused_words(&env.id)
        .filter(|_| !super::is_rollback(facts, intent))
    {
        let message = crate::model::text::message(&format!(
            "{paused}; the deployment goes ahead after `relctl resume --project {} --env {}`{refused}",
            facts.project, env.id
        ));
        return Some(if recorded(&message) {
            Step::WaitFor(PAUSE_POLL)
        } else {
            Step::Pause {
                intent: intent.clone(),
                message,
            }
        });
    }
    let (message, wait) = frozen(env, now)?;
    let message = crate::model::text::message(&format!("{message}{refused}"));
    Some(if recorded(&message) {
        Step::WaitFor(wait)
    } else {
        Step::Freeze {
            intent: intent.clone(),
            message,
            wait,
        }
    })
}

/// A deployment in flight past the environment's `deadline` (counted from when it
/// first went in progress, across attempts): it fails, its run stopped. Waiting for a
/// person to approve a Terraform plan is not counted against it.
pub fn past_deadline(
    facts: &Facts<'_>,
    intent: &IntentRef,
    now: crate::model::Timestamp,
) -> Option<Step> {
    let deadline = facts.env.deadline?;
    let activity = &facts.state.activity;
    let waiting_for_a_person = facts.actuator.as_ref().is_some_and(|a| a.approves_plans)
        && matches!(
            activity,
            Activity::Applying {
                awaiting_approval: true,
                ..
            }
        );
    let in_flight = matches!(
        activity,
        Activity::Pinning { .. } | Activity::Applying { .. } | Activity::Baking { .. }
    );
    let current = activity.current()?;
    if !in_flight || waiting_for_a_person || !current.intent.same_entry(intent) {
        return None;
    }
    let mut started = current.started?;
    // Where a person approves the plan, the clock starts again with the approved
    // apply (the run's start moves to it), as the actuator's timeout does.
    if let Activity::Applying { run, .. } = activity
        && facts.actuator.as_ref().is_some_and(|a| a.approves_plans)
    {
        started = started.max(run.started_at);
    }
    let took = (now.as_utc() - started.as_utc()).to_std().ok()?;
    if took <= deadline {
        return None;
    }
    Some(Step::Fail {
        intent: intent.clone(),
        message: format!(
            "deadline passed: not finished within {} of going in progress at {} (it was {})",
            humantime::format_duration(deadline),
            started.to_wire(),
            activity.phase().unwrap_or("in progress")
        ),
        run: activity.run().map(|_| "timed_out"),
    })
}

/// A writer as the approvals table proves it: the ARN it wrote, and the `aws:userid`
/// its item's key proves (the ARN alone is the writer's claim).
pub fn who(by: &crate::model::approval::Principal) -> String {
    format!("{} (aws:userid {})", by.arn, by.id)
}
