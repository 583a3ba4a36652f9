//! The reconcile's decisions, pure: [`decide`] looks at what was read (the environment's
//! state and configuration, the desired intent's entry and release, what the pin and
//! the actuator reported so far in this reconcile) and says what to do next, as a
//! closed [`Step`]. It reads no clock (`now` is passed in) and touches no AWS type; the
//! reconcile carries each step out, then asks again, until a step ends it.
//!
//! [`on_error`] is the same for a failed reconcile: retry, or give up on the intent.

use std::time::Duration;

use crate::{
    actuator::Progress,
    aws::ErrorClass,
    config::Environment,
    model::{
        Change, Images, IntentRef, Release, Status, Timestamp,
        approval::{Approvals, approval_missing},
        gate, images_digest,
        record::Deployment,
        resolve_images,
        state::{Activity, Current, EnvState, Run},
    },
    store::verified::Verified,
};

/// How soon a deployment waiting for an approval looks for one again: approvals are
/// recorded in a table this controller reads, not on a stream it watches.
pub(crate) mod controls;

pub const APPROVAL_POLL: Duration = Duration::from_secs(5);

/// Everything [`decide`] looks at.
pub struct Facts<'a> {
    /// The project's id.
    pub project: &'a str,
    pub env: &'a Environment,
    /// The project's `image_uri_template`.
    pub template: Option<&'a str>,
    pub state: &'a EnvState,
    /// The desired intent, as found in the releases table.
    pub found: Found<'a>,
    /// The environment's actuator, if it has one.
    pub actuator: Option<ActuatorFacts>,
    /// What the approvals table holds for the desired intent (read where the
    /// environment is protected).
    pub approvals: Option<&'a Approvals>,
    /// The environments of `requires` where the controller's own records say the
    /// release succeeded, with the images it has now.
    pub verified: &'a [String],
    /// The controller's own record of the release's success here, if any.
    pub own: Option<&'a Verified>,
    /// What this reconcile has seen and done so far.
    pub seen: &'a Seen,
    /// The environments of the project that are promoted to from this one
    /// (`auto_promote_from`), with their soak times.
    pub promotes_to: &'a [(String, Duration)],
    /// The environment's pause and the intent's break-glass, once read.
    pub controls: Option<&'a controls::Controls>,
    /// The desired intent was cancelled by someone, as their cancel attestation proves:
    /// "cancelled by {arn}: {reason}".
    pub cancelled: Option<&'a str>,
}

/// The desired intent's entry in the releases table.
pub enum Found<'a> {
    /// Not looked for (there is no desired intent).
    NotRead,
    /// Its release or its entry is gone.
    Missing,
    Entry {
        /// The intent, its index corrected if the list moved.
        intent: &'a IntentRef,
        release: &'a Release,
        entry: &'a Deployment,
    },
}

#[derive(Debug, Clone, Copy)]
pub struct ActuatorFacts {
    pub kind: &'static str,
    pub timeout: Duration,
    /// A protected environment's approval is of the actuator's plan, after it is made.
    pub approves_plans: bool,
    /// How often the actuator checks the deployed release for drift (a plan).
    pub drift_every: Option<Duration>,
}

/// What one reconcile has learnt and done, step by step.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    /// The entry was marked in progress in this reconcile.
    pub started: bool,
    /// What the pin reported last: the changes that would make it hold the images.
    pub pins: Option<Vec<Change>>,
    /// What this reconcile wrote to the pin.
    pub written: Option<Vec<Change>>,
    /// The pin refused the release (it can never be pinned this way).
    pub refused: Option<String>,
    /// What the actuator reported of the run.
    pub progress: Option<Progress>,
    /// The environment's alarms, as read in this reconcile.
    pub alarms: Option<Vec<crate::watch::alarms::AlarmSeen>>,
    /// What the `before` (and, for a rollback, `on_rollback`) hooks said in this
    /// reconcile: Ok (a note for the status) or why one failed the deployment.
    pub before_hooks: Option<Result<String, String>>,
    /// The same for the `after` hooks.
    pub after_hooks: Option<Result<String, String>>,
}

/// What to do next. Each variant carries what carrying it out needs.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Nothing to do until a new intent or the next resync.
    Nothing,
    /// Look again after this long, writing nothing (a freeze already recorded).
    WaitFor(Duration),
    /// Read the desired intent's release.
    ReadDesired,
    /// The desired intent is no longer in the releases table.
    Lost { intent: IntentRef },
    /// The unfinished intent relctl was working on lost to a newer one.
    Supersede { older: Current, by: IntentRef },
    /// Refused for good, before anything is pinned.
    Refuse { intent: IntentRef, why: String },
    /// Held back until an approval is recorded, or (`gate`) until the release has
    /// succeeded in every environment this one requires.
    Block {
        intent: IntentRef,
        message: String,
        gate: bool,
    },
    /// Stop the deployment in flight (its run, if any) and record it `cancelled`.
    Cancel { intent: IntentRef, message: String },
    /// Held back until the environment is resumed.
    Pause { intent: IntentRef, message: String },
    /// Read the environment's pause and the intent's break-glass.
    LookAtControls,
    /// Run the environment's hooks of `phase` (`before`, with `on_rollback` for a
    /// rollback; or `after`).
    RunHooks {
        intent: IntentRef,
        images: Images,
        after: bool,
    },
    /// Held back until a freeze window ends.
    Freeze {
        intent: IntentRef,
        message: String,
        wait: Duration,
    },
    /// Mark the entry in progress and start pinning (over a status the entry claimed);
    /// `break_glass`: through a pause or a freeze, by whom and why.
    Start {
        intent: IntentRef,
        message: String,
        claimed: Option<Status>,
        break_glass: Option<String>,
    },
    /// Ask the pin what differs from `images` (before writing, or to verify after).
    LookAtPins { images: Images },
    /// Write `changes` to the pin (none: nothing to write).
    Pin {
        images: Images,
        changes: Vec<Change>,
    },
    /// The pin does not hold what was written: an error, retried with backoff.
    VerifyFailed { left: Change },
    /// Pinned and verified: start the actuator.
    StartRun {
        intent: IntentRef,
        images: Images,
        pinned: String,
        /// The wave of `order` to apply (0: the first, or all).
        wave: usize,
    },
    /// Ask the actuator where the run is.
    LookAtRun { images: Images, run: Run },
    /// The run goes on: record what it says (if new), look again after `after`.
    Follow {
        intent: IntentRef,
        awaiting_approval: bool,
        message: String,
        after: Duration,
        write: bool,
    },
    /// Applied and verified: watch the alarms until `until` before it succeeds.
    Bake {
        intent: IntentRef,
        images: Images,
        message: String,
        run: Option<&'static str>,
        until: Timestamp,
    },
    /// Read the environment's alarms.
    LookAtAlarms,
    /// Write the pending automatic rollback's deployment entry.
    RollBack,
    /// Request the release that succeeded (and soaked) here in `targets`.
    Promote {
        intent: IntentRef,
        targets: Vec<String>,
    },
    /// What runs is what was asked for.
    Succeed {
        intent: IntentRef,
        images: Images,
        message: String,
        run: Option<&'static str>,
    },
    /// The run failed or timed out, or the pin refused the release.
    Fail {
        intent: IntentRef,
        message: String,
        run: Option<&'static str>,
    },
    /// A deployment that succeeded: record it as running (with the entry's message,
    /// where the state lost track, e.g. after a crash), and its drift.
    Observe {
        intent: IntentRef,
        images: Images,
        drift: Vec<String>,
        record_observed: bool,
        message: String,
    },
    /// Start (`run` none) or follow the drift check of the deployed release.
    CheckDrift {
        intent: IntentRef,
        images: Images,
        run: Option<String>,
    },
    /// Put drifted pins back (`self_heal`).
    Heal {
        intent: IntentRef,
        images: Images,
        changes: Vec<Change>,
        record_observed: bool,
    },
    /// The deployed release's pins cannot be read this way: say so, do nothing.
    Unverifiable { why: String },
}

pub fn decide(facts: &Facts<'_>, now: Timestamp) -> Step {
    match after_hooks(facts, decide_next(facts, now)) {
        // A success is first baked, where the environment bakes (once: a bake's own
        // end is the success).
        Step::Succeed {
            intent,
            images,
            message,
            run,
        } if facts.env.verify.bakes()
            && !baking(facts.state, &intent)
            && !is_rollback(facts, &intent) =>
        {
            Step::Bake {
                until: Timestamp::from_utc(
                    now.as_utc()
                        + chrono::Duration::from_std(facts.env.verify.bake).unwrap_or_default(),
                ),
                intent,
                images,
                message,
                run,
            }
        }
        // A rollback is not baked: its own verification ran, and what it replaces is
        // already known bad.
        Step::Succeed {
            intent,
            images,
            message,
            run,
        } if facts.env.verify.bakes() && is_rollback(facts, &intent) => Step::Succeed {
            intent,
            images,
            message: format!("{message}; a rollback: not baked"),
            run,
        },
        step => step,
    }
}

/// Whether `intent` rolls back to a release that ran here: relctl's own automatic
/// rollback, or an entry of `relctl rollback` (`rollback_of`) to a release the
/// controller verified here with the images it has now. Such a deployment is not baked
/// and promotes nothing onwards.
pub(crate) fn is_rollback(facts: &Facts<'_>, intent: &IntentRef) -> bool {
    let Found::Entry { entry, release, .. } = &facts.found else {
        return false;
    };
    let Ok(images) = resolve_images(release, facts.template) else {
        return false;
    };
    let digest = images_digest(&images);
    let automatic = facts
        .state
        .rollback
        .as_ref()
        .is_some_and(|m| m.is(intent) && m.images == digest);
    automatic || (entry.rollback_of.is_some() && facts.own.is_some_and(|v| v.images == digest))
}

/// An apply that is done and verified runs the `after` hooks before it succeeds (or
/// bakes): an enforced one failing fails it (after its apply: `on_failure` applies).
fn after_hooks(facts: &Facts<'_>, step: Step) -> Step {
    let Step::Succeed {
        intent,
        images,
        message,
        run,
    } = step
    else {
        return step;
    };
    if facts.env.hooks.after.is_empty() || baking(facts.state, &intent) {
        return Step::Succeed {
            intent,
            images,
            message,
            run,
        };
    }
    match &facts.seen.after_hooks {
        None => Step::RunHooks {
            intent,
            images,
            after: true,
        },
        Some(Err(why)) => Step::Fail {
            intent,
            message: why.clone(),
            run: None,
        },
        Some(Ok(note)) => Step::Succeed {
            intent,
            images,
            message: format!("{message}{note}"),
            run,
        },
    }
}

fn baking(state: &EnvState, intent: &IntentRef) -> bool {
    matches!(&state.activity, Activity::Baking { current, .. } if current.intent.same_entry(intent))
}

/// A deployment baking: failed by an alarm, succeeded once the bake is over, else
/// looked at again (by requeue) as often as the alarms are polled.
fn bake(facts: &Facts<'_>, intent: &IntentRef, now: Timestamp) -> Step {
    let Activity::Baking {
        images,
        until,
        message,
        ..
    } = &facts.state.activity
    else {
        return Step::Nothing;
    };
    let verify = &facts.env.verify;
    let mut observed = String::new();
    if !verify.watched().is_empty() {
        let Some(alarms) = &facts.seen.alarms else {
            return Step::LookAtAlarms;
        };
        for a in alarms
            .iter()
            .filter(|a| a.is_bad() && verify.observes(&a.name))
        {
            observed.push_str(&format!("; observe-only {} (not enforced)", a.describe()));
        }
        if let Some(bad) = alarms
            .iter()
            .find(|a| a.is_bad() && !verify.observes(&a.name))
        {
            return Step::Fail {
                intent: intent.clone(),
                message: format!("{} during the bake after: {message}", bad.describe()),
                run: None,
            };
        }
    }
    let left = (until.as_utc() - now.as_utc()).to_std().unwrap_or_default();
    if left.is_zero() {
        let watched = if verify.alarms.is_empty() {
            String::new()
        } else {
            format!(" with alarms {} quiet", verify.alarms.join(", "))
        };
        return Step::Succeed {
            intent: intent.clone(),
            images: images.clone(),
            message: format!(
                "{message}; baked {}{watched}{observed}",
                humantime::format_duration(verify.bake)
            ),
            run: None,
        };
    }
    Step::WaitFor(if verify.watched().is_empty() {
        left
    } else {
        left.min(verify.poll_interval)
    })
}

fn decide_next(facts: &Facts<'_>, now: Timestamp) -> Step {
    let state = facts.state;
    // A failure saved with its rollback, the rollback's entry not written yet (a crash).
    if state.rollback.as_ref().is_some_and(|m| m.pending) {
        return Step::RollBack;
    }
    let Some(desired) = &state.desired else {
        return Step::Nothing;
    };
    if let Some(current) = state.activity.current()
        && state.activity.is_unfinished()
        && !current.intent.same_entry(desired)
    {
        return Step::Supersede {
            older: current.clone(),
            by: desired.clone(),
        };
    }
    let (intent, release, entry) = match &facts.found {
        Found::NotRead => return Step::ReadDesired,
        Found::Missing => {
            return Step::Lost {
                intent: desired.clone(),
            };
        }
        Found::Entry {
            intent,
            release,
            entry,
        } => (*intent, *release, *entry),
    };
    let finished = entry.status.is_some_and(Status::is_terminal);
    let images = match resolve_images(release, facts.template) {
        Ok(images) => images,
        Err(_) if finished => return Step::Nothing,
        Err(refusal) => {
            return Step::Refuse {
                intent: intent.clone(),
                why: refusal.to_string(),
            };
        }
    };
    // An entry's `failed` or `superseded` only ever holds back its own intent; its
    // `succeeded` counts only where the controller's own records agree. A success
    // anyone could have written is a claim: the intent is applied like any other.
    let claimed = match entry.status {
        Some(Status::Succeeded) if succeeded_here(facts, intent) => {
            return observe(facts, intent, entry, images, now);
        }
        Some(status @ Status::Succeeded) => Some(status),
        _ if finished => return Step::Nothing,
        _ => None,
    };
    if let Some(by) = facts.cancelled {
        return Step::Cancel {
            intent: intent.clone(),
            message: by.to_owned(),
        };
    }
    if let Some(step) = controls::past_deadline(facts, intent, now) {
        return step;
    }
    if baking(state, intent) {
        return bake(facts, intent, now);
    }
    let run = state
        .activity
        .run()
        .filter(|_| {
            state
                .activity
                .intent()
                .is_some_and(|i| i.same_entry(intent))
        })
        .filter(|_| facts.actuator.is_some());
    match run {
        Some(run) => follow(facts, intent, images, run, now),
        None => {
            if let Some(step) = rolled_back(facts, intent) {
                return step;
            }
            if let Some(step) = held_back(facts, intent, &images, now) {
                return step;
            }
            apply(facts, intent, images, claimed, now)
        }
    }
}

/// A release rolled back here is not deployed again unless its entry says `force`.
fn rolled_back(facts: &Facts<'_>, intent: &IntentRef) -> Option<Step> {
    let mark = facts.state.rolled_back(&intent.release_id)?;
    if matches!(&facts.found, Found::Entry { entry, .. } if entry.force == Some(true)) {
        return None;
    }
    Some(Step::Refuse {
        intent: intent.clone(),
        why: format!(
            "release {} was rolled back in {} ({}, at {}); deploy it again with `relctl deploy {} --env {} --force`",
            intent.release_id,
            facts.env.id,
            mark.reason,
            mark.at.to_wire(),
            intent.release_id,
            facts.env.id
        ),
    })
}

/// Policies hold a deployment back only before its actuator started.
fn held_back(
    facts: &Facts<'_>,
    intent: &IntentRef,
    images: &Images,
    now: Timestamp,
) -> Option<Step> {
    let env = facts.env;
    // relctl's own rollback to a release that ran here: not held by the gate, and (with
    // `rollback_skips_approval`) not by an approval.
    // (Only while the release has exactly the images that ran: one edited since is an
    // ordinary deployment.)
    let rollback = facts
        .state
        .rollback
        .as_ref()
        .is_some_and(|m| m.is(intent) && m.images == images_digest(images));
    let recorded = |message: &str| {
        matches!(&facts.state.activity, Activity::Waiting { current, message: m, .. }
            if current.intent == *intent && m == message)
    };
    if let Err(refusal) = gate(&intent.release_id, &env.id, &env.requires, facts.verified)
        && !rollback
    {
        let message = crate::model::text::message(&refusal.to_string());
        return Some(if recorded(&message) {
            Step::Nothing
        } else {
            Step::Block {
                intent: intent.clone(),
                message,
                gate: true,
            }
        });
    }
    let none = Approvals::default();
    let plan_approved_later = facts.actuator.as_ref().is_some_and(|a| a.approves_plans);
    if env.protected
        && !plan_approved_later
        && !(rollback && env.rollback_skips_approval)
        && let Some(message) = approval_missing(
            facts.approvals.unwrap_or(&none),
            &intent.release_id,
            &env.id,
            env.four_eyes,
        )
    {
        let message = crate::model::text::message(&message);
        return Some(if recorded(&message) {
            Step::WaitFor(APPROVAL_POLL)
        } else {
            Step::Block {
                intent: intent.clone(),
                message,
                gate: false,
            }
        });
    }
    controls::held_by_pause_or_freeze(facts, intent, now)
}

/// Why (and how long) a deployment waits for a freeze window to end, if it does.
pub(crate) fn frozen(env: &Environment, now: Timestamp) -> Option<(String, Duration)> {
    let now = now.as_utc();
    let window = env.frozen_at(now)?;
    let wait = (window.until - now).to_std().unwrap_or_default() + Duration::from_millis(100);
    let reason = window
        .reason
        .as_deref()
        .map(|r| format!(" ({r})"))
        .unwrap_or_default();
    Some((
        format!(
            "environment {} is frozen until {}{reason}; the deployment goes ahead then",
            env.id,
            window.until.to_rfc3339()
        ),
        wait,
    ))
}

/// The controller's own records say this intent succeeded here.
fn succeeded_here(facts: &Facts<'_>, intent: &IntentRef) -> bool {
    let finished = matches!(&facts.state.activity, Activity::Finished { current, outcome: crate::model::state::Outcome::Succeeded, .. }
        if current.intent.same_entry(intent));
    let recorded = facts
        .own
        .is_some_and(|v| v.date_created == intent.date_created);
    finished || recorded
}

/// Pin what differs, verify, then finish or start the actuator. `claimed`: the entry
/// carries a status the controller did not write, which the start overwrites.
fn apply(
    facts: &Facts<'_>,
    intent: &IntentRef,
    images: Images,
    claimed: Option<Status>,
    now: Timestamp,
) -> Step {
    let seen = facts.seen;
    if !seen.started {
        let break_glass = controls::broken_glass(facts, now);
        let pinning = format!(
            "pinning {} images of release {}",
            images.len(),
            intent.release_id
        );
        return Step::Start {
            intent: intent.clone(),
            message: match &break_glass {
                Some(glass) => format!("{glass}; {pinning}"),
                None => pinning,
            },
            claimed,
            break_glass,
        };
    }
    if let Some(why) = &seen.refused {
        return Step::Fail {
            intent: intent.clone(),
            message: why.clone(),
            run: None,
        };
    }
    // The `before` hooks (and a rollback's `on_rollback`), before anything is pinned.
    if !facts
        .env
        .hooks
        .before(is_rollback(facts, intent))
        .is_empty()
        && !facts.state.activity.hooked(intent)
    {
        match &seen.before_hooks {
            None => {
                return Step::RunHooks {
                    intent: intent.clone(),
                    images,
                    after: false,
                };
            }
            Some(Err(why)) => {
                return Step::Fail {
                    intent: intent.clone(),
                    message: why.clone(),
                    run: None,
                };
            }
            Some(Ok(_)) => {}
        }
    }
    // A protected environment whose actuator approves its plan: nothing is pinned
    // before that approval; the plan runs first, the pins are written once it is
    // approved (the module reads the release's images from TF_VAR_relctl_images).
    if facts.env.protected && facts.actuator.as_ref().is_some_and(|a| a.approves_plans) {
        // The pins are read (not written) first, so a release the pin refuses fails now
        // rather than after a person approved its plan.
        if seen.pins.is_none() {
            return Step::LookAtPins { images };
        }
        return Step::StartRun {
            intent: intent.clone(),
            images,
            pinned: "pinned once the plan was approved".into(),
            wave: 0,
        };
    }
    match (&seen.written, &seen.pins) {
        (_, None) => Step::LookAtPins { images },
        (None, Some(changes)) => Step::Pin {
            images,
            changes: changes.clone(),
        },
        (Some(_), Some(left)) if !left.is_empty() => Step::VerifyFailed {
            left: left[0].clone(),
        },
        (Some(written), Some(_)) => {
            let pinned = pinned_words(written, images.len());
            match facts.actuator {
                None => Step::Succeed {
                    intent: intent.clone(),
                    images,
                    message: pinned,
                    run: None,
                },
                Some(_) => Step::StartRun {
                    intent: intent.clone(),
                    images,
                    pinned,
                    wave: 0,
                },
            }
        }
    }
}

/// What pinning did, in words.
pub(crate) fn pinned_words(written: &[Change], total: usize) -> String {
    if written.is_empty() {
        return format!("all {total} images were already pinned; verified");
    }
    // Named up to a handful; beyond that a count (the full list is in the log), so the
    // message stays small however large the release.
    const NAMED: usize = 10;
    let mut named: Vec<&str> = written
        .iter()
        .take(NAMED)
        .map(|c| c.service.as_str())
        .collect();
    if written.len() > NAMED {
        named.push("…");
    }
    format!(
        "pinned {} of {total} images ({}); verified",
        written.len(),
        named.join(", ")
    )
}

/// Follow a started run until it is done, failed or timed out.
fn follow(
    facts: &Facts<'_>,
    intent: &IntentRef,
    images: Images,
    run: &Run,
    now: Timestamp,
) -> Step {
    let Some(actuator) = facts.actuator else {
        return Step::Nothing;
    };
    let elapsed = (now.as_utc() - run.started_at.as_utc())
        .to_std()
        .unwrap_or_default();
    // Waiting for a person to approve a plan is not the run taking long: the clock
    // starts again when the approved plan's apply starts.
    let waiting_for_approval = actuator.approves_plans
        && matches!(
            &facts.state.activity,
            Activity::Applying {
                awaiting_approval: true,
                ..
            }
        );
    if elapsed > actuator.timeout && !waiting_for_approval {
        return Step::Fail {
            intent: intent.clone(),
            message: format!(
                "{} did not finish within {} (handle {})",
                run.kind,
                humantime::format_duration(actuator.timeout),
                run.handle
            ),
            run: Some("timed_out"),
        };
    }
    let Some(progress) = &facts.seen.progress else {
        return Step::LookAtRun {
            images,
            run: run.clone(),
        };
    };
    let (awaiting_approval, message, after) = match progress {
        Progress::Done { message } => {
            // `order`: the next wave starts once this one is verified.
            let waves = super::waves::count(&facts.env.order, &images);
            if run.wave + 1 < waves {
                return Step::StartRun {
                    intent: intent.clone(),
                    images,
                    pinned: run.pinned.clone(),
                    wave: run.wave + 1,
                };
            }
            let waved = if waves > 1 {
                format!(" (in {waves} waves)")
            } else {
                String::new()
            };
            return Step::Succeed {
                intent: intent.clone(),
                images,
                message: format!("{}; {message}{waved}", run.pinned),
                run: Some("succeeded"),
            };
        }
        Progress::Failed { message } => {
            return Step::Fail {
                intent: intent.clone(),
                message: message.clone(),
                run: Some("failed"),
            };
        }
        Progress::Waiting { after, message } => (false, message, *after),
        Progress::AwaitingApproval { after, message, .. } => (true, message, *after),
    };
    let unchanged = matches!(&facts.state.activity, Activity::Applying { message: m, awaiting_approval: a, .. }
        if m == message && *a == awaiting_approval);
    Step::Follow {
        intent: intent.clone(),
        awaiting_approval,
        message: message.clone(),
        after,
        write: !unchanged,
    }
}

/// For an intent that succeeded: record it as running if the state lost track, and
/// report drift where the pins no longer hold its images (or heal it).
fn observe(
    facts: &Facts<'_>,
    intent: &IntentRef,
    entry: &Deployment,
    images: Images,
    now: Timestamp,
) -> Step {
    let seen = facts.seen;
    if let Some(why) = &seen.refused {
        return Step::Unverifiable { why: why.clone() };
    }
    let state = facts.state;
    let observed = state
        .observed
        .as_ref()
        .filter(|o| o.release_id == intent.release_id && o.date_created == intent.date_created);
    let known = observed.is_some();
    // Drift is against what was verified, never against the release item as it is now
    // (its images may have been changed since).
    let images = match observed {
        Some(observed) => observed.images.clone(),
        None if facts
            .own
            .is_some_and(|v| v.images == images_digest(&images)) =>
        {
            images
        }
        None => {
            return Step::Unverifiable {
                why: format!(
                    "release {}'s images changed since they were verified here; deploy it again to apply them",
                    intent.release_id
                ),
            };
        }
    };
    let Some(changes) = &seen.pins else {
        return Step::LookAtPins { images };
    };
    if !changes.is_empty() && facts.env.self_heal && seen.written.is_none() {
        // Not while the environment is paused: the drift is reported, not put back.
        match facts.controls {
            None => return Step::LookAtControls,
            Some(controls) if controls.paused.is_some() => {}
            Some(_) => {
                return Step::Heal {
                    intent: intent.clone(),
                    images,
                    changes: changes.clone(),
                    record_observed: !known,
                };
            }
        }
    }
    let drift: Vec<String> = changes.iter().map(|c| c.service.clone()).collect();
    if known && drift == state.drift {
        return promote(facts, intent, &images, now)
            .or_else(|| drift_check(facts, intent, images, now))
            .unwrap_or(Step::Nothing);
    }
    Step::Observe {
        intent: intent.clone(),
        images,
        drift,
        record_observed: !known,
        message: entry
            .status_message
            .clone()
            .unwrap_or_else(|| "succeeded".into()),
    }
}

/// The environments the deployed release is due to be promoted to: those naming this
/// one in `auto_promote_from`, once it has run here for their `soak` with this
/// environment's alarms quiet (an alarm's change of state starts the soak again; one in
/// ALARM holds it).
fn promote(facts: &Facts<'_>, intent: &IntentRef, images: &Images, now: Timestamp) -> Option<Step> {
    if facts.promotes_to.is_empty() || is_rollback(facts, intent) {
        return None;
    }
    let observed = facts.state.observed.as_ref()?;
    // Only what this environment still runs as verified: no drift (of pins or by
    // plan), and the release's images as they were verified here.
    let drifted = !facts.state.drift.is_empty()
        || facts
            .state
            .plan_drift
            .as_ref()
            .is_some_and(|p| p.found.is_some());
    let release_now = match &facts.found {
        Found::Entry { release, .. } => resolve_images(release, facts.template).ok(),
        _ => None,
    };
    if drifted || release_now.as_ref() != Some(images) || observed.images != *images {
        return None;
    }
    let done = facts
        .state
        .promotion
        .as_ref()
        .filter(|p| p.release_id == intent.release_id && p.date_created == intent.date_created)
        .map_or(&[][..], |p| &p.done[..]);
    let pending: Vec<&(String, Duration)> = facts
        .promotes_to
        .iter()
        .filter(|(env, _)| !done.contains(env))
        .collect();
    if pending.is_empty() {
        return None;
    }
    // Nothing is promoted out of a paused environment.
    match facts.controls {
        None => return Some(Step::LookAtControls),
        Some(controls) if controls.paused.is_some() => return None,
        Some(_) => {}
    }
    let mut since = observed.since;
    let verify = &facts.env.verify;
    if !verify.alarms.is_empty() {
        let Some(alarms) = &facts.seen.alarms else {
            return Some(Step::LookAtAlarms);
        };
        let enforced = || alarms.iter().filter(|a| !verify.observes(&a.name));
        if enforced().any(|a| a.is_bad()) {
            return Some(Step::WaitFor(verify.poll_interval));
        }
        if let Some(changed) = enforced().filter_map(|a| a.since).max() {
            since = since.max(changed);
        }
    }
    let ran = (now.as_utc() - since.as_utc()).to_std().unwrap_or_default();
    let targets: Vec<String> = pending
        .iter()
        .filter(|(_, soak)| ran >= *soak)
        .map(|(env, _)| env.clone())
        .collect();
    if !targets.is_empty() {
        return Some(Step::Promote {
            intent: intent.clone(),
            targets,
        });
    }
    let wait = pending.iter().map(|(_, soak)| *soak - ran).min()?;
    Some(Step::WaitFor(if verify.alarms.is_empty() {
        wait
    } else {
        wait.min(verify.poll_interval)
    }))
}

/// The deployed release's drift check, where the actuator makes one and it is due (or
/// one is in flight).
fn drift_check(
    facts: &Facts<'_>,
    intent: &IntentRef,
    images: Images,
    now: Timestamp,
) -> Option<Step> {
    let every = facts.actuator.as_ref()?.drift_every?;
    let last = facts.state.plan_drift.as_ref();
    let step = |run: Option<String>| Step::CheckDrift {
        intent: intent.clone(),
        images: images.clone(),
        run,
    };
    if let Some(run) = last.and_then(|l| l.run.clone()) {
        return Some(step(Some(run)));
    }
    // An interval after the last check of this release, or after it was deployed.
    let checked = last
        .filter(|l| l.release_id.as_deref() == Some(intent.release_id.as_str()))
        .and_then(|l| l.checked_at);
    let deployed = facts.state.observed.as_ref().map(|o| o.since);
    let since = checked.into_iter().chain(deployed).max();
    let due = since.is_none_or(|at| {
        (now.as_utc() - at.as_utc())
            .to_std()
            .is_ok_and(|since| since >= every)
    });
    due.then(|| step(None))
}

/// What to do after a reconcile failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OnError {
    /// Retry with backoff; `note` is written on the deployment in flight, if any.
    Retry {
        note: Option<String>,
        throttled: bool,
    },
    /// Out of attempts (or an error no retry can fix): the intent in flight fails.
    GiveUp { intent: IntentRef, message: String },
}

/// A failed attempt at the deployment in flight counts; past `max_attempts`, or when no
/// retry can help, it fails. An error outside a deployment (a table read, say) is
/// retried with backoff until the next succeeds.
pub fn on_error(state: &EnvState, class: ErrorClass, message: &str, max_attempts: u32) -> OnError {
    let throttled = class == ErrorClass::Throttled;
    let Some(attempts) = state.activity.attempts() else {
        return OnError::Retry {
            note: None,
            throttled,
        };
    };
    let Some(intent) = state.activity.intent() else {
        return OnError::Retry {
            note: None,
            throttled,
        };
    };
    let count = attempts.count.saturating_add(1);
    if class == ErrorClass::Permanent {
        return OnError::GiveUp {
            intent: intent.clone(),
            message: format!("gave up: {message} (a retry cannot help)"),
        };
    }
    if count >= max_attempts {
        return OnError::GiveUp {
            intent: intent.clone(),
            message: format!("gave up after {count} attempts: {message}"),
        };
    }
    OnError::Retry {
        note: Some(format!("attempt {count} failed, retrying: {message}")),
        throttled,
    }
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
