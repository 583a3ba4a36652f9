//! Carrying out a reconcile's steps, one [`decide`] at a time: each step either reads
//! something (the release, the pin, the actuator) and asks again, does something (pins,
//! starts a run) and asks again, or writes the outcome and ends the reconcile.

use tracing::{info, warn};

use super::{
    Action, Error,
    decide::{ActuatorFacts, Facts, Found, Seen, Step, decide},
    outcome::Writer,
};
use crate::{
    actuator::{Progress, Run as ActuatorRun, Start},
    adapters::Adapters,
    config::{Environment, Project},
    context::Context,
    metrics::{ActuatorLabels, KindLabels},
    model::approval::Approvals,
    model::{
        Change, EnvKey, Images, IntentRef, Release,
        record::Deployment,
        state::{Run, Wait},
    },
    model::{images_digest, resolve_images},
    pin::{PinError, Target, Written},
    store::{
        attestations::{approvals, subject},
        releases::StatusWrite,
        verified::Verified,
    },
};

mod drift;
mod promote;

/// More than any reconcile takes (read, start, look, pin, look, start a run, look,
/// finish): a decision that never ends is a bug, reported rather than spun on.
const MAX_STEPS: usize = 24;

pub struct Steps<'a> {
    ctx: &'a Context,
    key: &'a EnvKey,
    project: &'a Project,
    env: &'a Environment,
    adapters: &'a Adapters,
    writer: Writer<'a>,
    seen: Seen,
    /// The desired intent's release and entry, once read (None inside: not found).
    found: Option<Option<(Release, IntentRef, Deployment)>>,
    /// What the approvals table holds for it (protected environments).
    approvals: Option<Approvals>,
    /// The required environments the controller saw the release succeed in.
    verified: Vec<String>,
    /// The controller's record of the release's success in this environment.
    own: Option<Verified>,
    /// What the pins name now, per service, for the actuator (see `Pin::identities`).
    pinned: std::collections::BTreeMap<String, String>,
    /// The environment's pause and the intent's break-glass, once read.
    controls: Option<super::decide::controls::Controls>,
    /// Who cancelled the desired intent, and why (see `Facts::cancelled`).
    cancelled: Option<String>,
    /// The desired intent's attestations (approvals, requests, a break-glass, a
    /// cancel), by subject: read once per reconcile, whichever decision asks first.
    attested: Option<(String, Vec<crate::store::attestations::Attestation>)>,
}

impl<'a> Steps<'a> {
    pub fn new(
        ctx: &'a Context,
        key: &'a EnvKey,
        project: &'a Project,
        env: &'a Environment,
        adapters: &'a Adapters,
        writer: Writer<'a>,
    ) -> Self {
        Self {
            ctx,
            key,
            project,
            env,
            adapters,
            writer,
            seen: Seen::default(),
            found: None,
            approvals: None,
            verified: Vec::new(),
            own: None,
            pinned: Default::default(),
            controls: None,
            cancelled: None,
            attested: None,
        }
    }

    fn step(&self) -> Step {
        let now = self.ctx.now();
        self.with_facts(|facts| decide(facts, now))
    }

    /// What was read so far, as the decisions take it.
    fn with_facts<T>(&self, then: impl FnOnce(&Facts<'_>) -> T) -> T {
        let found = match &self.found {
            None => Found::NotRead,
            Some(None) => Found::Missing,
            Some(Some((release, intent, entry))) => Found::Entry {
                intent,
                release,
                entry,
            },
        };
        let promotes_to = self.promotes_to();
        let facts = Facts {
            project: &self.key.project,
            controls: self.controls.as_ref(),
            cancelled: self.cancelled.as_deref(),
            promotes_to: &promotes_to,
            env: self.env,
            template: self.project.image_uri_template.as_deref(),
            state: &self.writer.state,
            found,
            actuator: self.adapters.actuator.as_ref().map(|a| ActuatorFacts {
                kind: a.kind(),
                timeout: a.timeout(),
                approves_plans: a.approves_plans(),
                drift_every: a.drift_every(),
            }),
            seen: &self.seen,
            approvals: self.approvals.as_ref(),
            verified: &self.verified,
            own: self.own.as_ref(),
        };
        then(&facts)
    }

    pub async fn run(mut self) -> Result<Action, Error> {
        for _ in 0..MAX_STEPS {
            let step = self.step();
            if let Some(action) = self.carry_out(step).await? {
                return Ok(action);
            }
        }
        Err(Error::Runaway(MAX_STEPS))
    }

    /// Who requested the desired intent (their name, else their id).
    fn requested_by(&self) -> Option<String> {
        let (_, _, entry) = self.found.as_ref()?.as_ref()?;
        let person = entry.requested_by.as_ref()?;
        person.name.clone().or_else(|| person.id.clone())
    }

    async fn read_desired(&mut self) -> Result<(), Error> {
        let Some(desired) = self.writer.state.desired.clone() else {
            self.found = Some(None);
            return Ok(());
        };
        let table = self.ctx.config.releases_table(self.project);
        let release = self.ctx.releases.get(table, &desired.release_id).await?;
        let located = release.and_then(|r| locate(r, self.key, &desired));
        if let Some((release, intent, _)) = &located {
            tracing::Span::current().record("release_id", intent.release_id.as_str());
            // What approvals and gates are bound to: the images the release has now.
            let digest = resolve_images(release, self.project.image_uri_template.as_deref())
                .map(|images| images_digest(&images))
                .unwrap_or_default();
            if self.env.protected {
                self.approvals = Some(self.approvals_of(intent, &digest).await?);
            }
            if let Some((_, _, entry)) = &located
                && entry.cancel.is_some()
                && !entry.status.is_some_and(crate::model::Status::is_terminal)
            {
                self.cancelled = self.cancelled_by(intent).await?;
            }
            let mut envs = self.env.requires.clone();
            envs.push(self.key.environment.clone());
            let mut verified = self
                .ctx
                .state
                .verified(&self.key.project, &envs, &intent.release_id)
                .await?;
            self.own = verified.remove(&self.key.environment);
            self.verified = verified
                .into_iter()
                .filter(|(_, v)| v.images == digest)
                .map(|(env, _)| env)
                .collect();
        }
        self.writer.description = located.as_ref().and_then(|(_, _, e)| e.description.clone());
        self.writer.release_created = located.as_ref().and_then(|(r, _, _)| r.date_created);
        self.writer.rollback_of = located.as_ref().and_then(|(_, _, e)| e.rollback_of.clone());
        self.writer.forced = located
            .as_ref()
            .is_some_and(|(_, _, e)| e.force == Some(true));
        self.found = Some(located);
        Ok(())
    }

    /// What the approvals table holds for `intent` about `digest` (its images, or its
    /// plan), with only the approvals of principals `approvers` lists counting.
    async fn approvals_of(&mut self, intent: &IntentRef, digest: &str) -> Result<Approvals, Error> {
        let attested = self.attested(intent).await?;
        let found = approvals(&attested, digest);
        if self.env.approvers.is_empty() {
            return Ok(found);
        }
        let (resolved, errors) = self.ctx.principals.listed(&self.env.approvers).await;
        Ok(found.only(&self.env.approvers, &resolved, &errors))
    }

    /// Stops `intent` for the person who cancelled it: its run as the actuator allows
    /// (a failure to stop it is said, not retried for ever), then `cancelled`. What was
    /// applied stays and is said; with `on_failure = "rollback"` the release that ran
    /// before is deployed again, as after a failure.
    async fn cancel(
        &mut self,
        intent: IntentRef,
        mut message: String,
        requested_by: Option<String>,
    ) -> Result<(), Error> {
        use crate::model::state::Activity;
        let activity = &self.writer.state.activity;
        let ours = activity.intent().is_some_and(|i| i.same_entry(&intent));
        if let (true, Some(run), Some(actuator)) = (
            ours,
            activity.run().cloned(),
            self.adapters.actuator.clone(),
        ) {
            match actuator.cancel(self.key, &run.handle, &message).await {
                Ok(left) => message = format!("{message}; {left}"),
                Err(e) => {
                    message = format!(
                        "{message}; stopping {} run {} failed: {e}",
                        run.kind, run.handle
                    )
                }
            }
        }
        let activity = &self.writer.state.activity;
        let baking = ours && matches!(activity, Activity::Baking { .. });
        // A Terraform plan waiting for its approval has pinned and applied nothing.
        let plan_waits = self
            .adapters
            .actuator
            .as_ref()
            .is_some_and(|a| a.approves_plans())
            && matches!(
                activity,
                Activity::Applying {
                    awaiting_approval: true,
                    ..
                }
            );
        let applied = ours
            && !plan_waits
            && (matches!(
                activity,
                Activity::Applying { .. } | Activity::Baking { .. }
            ) || !activity.moving().is_empty())
            || self.seen.written.as_ref().is_some_and(|w| !w.is_empty());
        if baking {
            message.push_str("; the release was applied and runs (its bake was stopped)");
        } else if applied {
            message.push_str("; what was applied so far stays");
        }
        self.writer.plan_rollback(&intent, &message, applied);
        if self.writer.cancel(&intent, requested_by, &message).await? {
            self.writer.roll_back().await?;
        }
        Ok(())
    }

    /// Who cancelled `intent`, as the first cancel attestation recorded for it says
    /// (the entry's `cancel` only asked for this look).
    async fn cancelled_by(&mut self, intent: &IntentRef) -> Result<Option<String>, Error> {
        use crate::store::attestations::Kind;
        let attested = self.attested(intent).await?;
        let cancel = attested.iter().find(|a| a.kind == Kind::Cancel);
        if cancel.is_none() {
            warn!("the entry asks to be cancelled, but no cancel is recorded for it; going on");
        }
        Ok(cancel.map(|a| {
            crate::model::text::message(&format!(
                "cancelled by {}: {}",
                super::decide::controls::who(&a.by),
                a.reason.as_deref().unwrap_or("no reason given")
            ))
        }))
    }

    /// The environment's pause, and (where the desired entry asks for one) the
    /// break-glass of a principal `break_glass` lists, for the images it has now.
    /// The attestations of `intent`, read once per reconcile.
    async fn attested(
        &mut self,
        intent: &IntentRef,
    ) -> Result<Vec<crate::store::attestations::Attestation>, Error> {
        let subject = subject(self.key, intent);
        if let Some((read, attested)) = &self.attested
            && *read == subject
        {
            return Ok(attested.clone());
        }
        let attested = self.ctx.attestations.of(&subject).await?;
        self.attested = Some((subject, attested.clone()));
        Ok(attested)
    }

    async fn read_controls(&mut self) -> Result<super::decide::controls::Controls, Error> {
        use crate::store::attestations::{Kind, env_subject, paused};
        let attested = match self.ctx.attestations.of(&env_subject(self.key)).await {
            Ok(attested) => attested,
            // Without an approvals table nobody can have paused the environment (an
            // unprotected one does not need that table).
            Err(crate::store::StoreError::Aws { source, .. })
                if source.summary.starts_with("ResourceNotFoundException") =>
            {
                Vec::new()
            }
            Err(e) => return Err(e.into()),
        };
        let mut controls = super::decide::controls::Controls {
            paused: paused(&attested),
            ..Default::default()
        };
        let Some(Some((release, intent, entry))) = &self.found else {
            return Ok(controls);
        };
        if entry.break_glass.is_none() {
            return Ok(controls);
        }
        if self.env.break_glass.is_empty() {
            controls.glass_refused = Some(format!(
                "the entry asks to break the glass, but environment {} lists nobody in `break_glass`",
                self.env.id
            ));
            return Ok(controls);
        }
        let digest = resolve_images(release, self.project.image_uri_template.as_deref())
            .map(|images| images_digest(&images))
            .unwrap_or_default();
        let intent = intent.clone();
        let attested = self.attested(&intent).await?;
        let asked: Vec<_> = attested
            .iter()
            .filter(|a| a.kind == Kind::BreakGlass && a.images == digest)
            .collect();
        let (listed, errors) = self.ctx.principals.listed(&self.env.break_glass).await;
        // Named as listed (the ARN a writer put in its item is only its claim).
        let admitted = asked
            .iter()
            .find_map(|a| listed.iter().find(|l| l.admits(&a.by)).map(|l| (a, l)));
        match admitted {
            Some((a, l)) => {
                let session = match a.by.id.split_once(':') {
                    Some((_, session)) if l.role => format!(" (session {session})"),
                    _ => String::new(),
                };
                controls.break_glass = Some(crate::model::text::message(&format!(
                    "break-glass by {}{session}: {}",
                    l.arn,
                    a.reason.as_deref().unwrap_or("no reason given")
                )));
            }
            None if !errors.is_empty() && !asked.is_empty() => {
                controls.glass_refused = Some(errors.join("; "));
            }
            None if asked.is_empty() => {
                controls.glass_refused = Some(
                    "the entry asks to break the glass, but no break-glass is recorded for it (`relctl deploy --break-glass` records one)".into(),
                );
            }
            None => {
                let who: Vec<String> = asked
                    .iter()
                    .map(|a| super::decide::controls::who(&a.by))
                    .collect();
                controls.glass_refused = Some(format!(
                    "break-glass by {} does not count: not listed in `break_glass`",
                    who.join(", ")
                ));
            }
        }
        Ok(controls)
    }

    /// Whether `intent` is a rollback, as the decision reads it.
    fn is_rollback(&self, intent: &IntentRef) -> bool {
        self.with_facts(|facts| super::decide::is_rollback(facts, intent))
    }

    fn target(&self) -> Option<&IntentRef> {
        self.found
            .as_ref()
            .and_then(|f| f.as_ref())
            .map(|(_, intent, _)| intent)
    }

    /// Carries `step` out: `Some` ends the reconcile, `None` asks again.
    async fn carry_out(&mut self, step: Step) -> Result<Option<Action>, Error> {
        let requested_by = self.requested_by();
        let w = &mut self.writer;
        match step {
            Step::Nothing => Ok(Some(Action::Done)),
            Step::WaitFor(wait) => Ok(Some(Action::RequeueAfter(wait))),
            Step::ReadDesired => {
                self.read_desired().await?;
                Ok(None)
            }
            Step::Lost { intent } => {
                warn!(release_id = %intent.release_id, "desired intent is no longer in the releases table");
                Ok(Some(Action::Done))
            }
            Step::Supersede { older, by } => {
                // A run still going for the older intent is interrupted first; the new
                // one starts only once it is over (its run record says so).
                if let (Some(run), Some(actuator)) = (
                    w.state.activity.run().cloned(),
                    self.adapters.actuator.clone(),
                ) {
                    actuator.stop(self.key, &run.handle).await?;
                }
                self.writer.supersede(&older, &by).await?;
                Ok(None)
            }
            Step::Refuse { intent, why } => {
                w.fail(&intent, requested_by, &why).await?;
                Ok(Some(Action::Done))
            }
            Step::Block {
                intent,
                message,
                gate,
            } => {
                let why = if gate { Wait::Gate } else { Wait::Approval };
                w.wait(&intent, requested_by, why, &message).await?;
                // Approvals are recorded where this controller has no stream: look again
                // soon. (A gate opens with the upstream success, which wakes this one.)
                Ok(Some(if gate {
                    Action::Done
                } else {
                    Action::RequeueAfter(super::decide::APPROVAL_POLL)
                }))
            }
            Step::Freeze {
                intent,
                message,
                wait,
            } => {
                w.wait(&intent, requested_by, Wait::Freeze, &message)
                    .await?;
                Ok(Some(Action::RequeueAfter(wait)))
            }
            Step::Cancel { intent, message } => {
                self.cancel(intent, message, requested_by).await?;
                Ok(Some(Action::Done))
            }
            Step::Pause { intent, message } => {
                w.wait(&intent, requested_by, Wait::Pause, &message).await?;
                Ok(Some(Action::RequeueAfter(
                    super::decide::controls::PAUSE_POLL,
                )))
            }
            Step::RunHooks {
                intent,
                images,
                after,
            } => {
                let rollback = !after && self.is_rollback(&intent);
                let hooks = if after {
                    self.env.hooks.after.iter().collect()
                } else {
                    self.env.hooks.before(rollback)
                };
                let phase = match (after, rollback) {
                    (true, _) => "after",
                    (false, true) => "before (rollback)",
                    (false, false) => "before",
                };
                let deployment = crate::actuator::hooks::Deployment {
                    key: self.key,
                    intent: &intent,
                    images: &images,
                };
                let verdict = crate::actuator::hooks::run_all(
                    &hooks,
                    phase,
                    deployment,
                    self.adapters.hooks.as_ref(),
                )
                .await
                .map_err(|why| crate::model::text::message(&why));
                match &verdict {
                    Ok(note) => info!(phase, note = note.as_str(), "hooks passed"),
                    Err(why) => warn!(phase, why = why.as_str(), "a hook failed"),
                }
                if !after && verdict.is_ok() {
                    self.writer.hooks_passed().await?;
                }
                if after {
                    self.seen.after_hooks = Some(verdict);
                } else {
                    self.seen.before_hooks = Some(verdict);
                }
                Ok(None)
            }
            Step::LookAtControls => {
                self.controls = Some(self.read_controls().await?);
                Ok(None)
            }
            Step::Start {
                intent,
                message,
                claimed,
                break_glass,
            } => {
                if let Some(glass) = &break_glass {
                    warn!(break_glass = %glass, "let through a pause or a freeze");
                    w.break_glass = Some(glass.clone());
                    w.tell(&intent, "break_glass", glass);
                }
                if claimed.is_some() {
                    warn!(claimed = ?claimed, "the entry claims an outcome the controller has no record of; applying it");
                }
                if w.start(&intent, requested_by, &message, claimed).await? == StatusWrite::Refused
                {
                    // Superseded (or rewritten) under us: whoever did it queued the key again.
                    return Ok(Some(Action::Done));
                }
                self.seen.started = true;
                Ok(None)
            }
            Step::LookAtPins { images } => {
                self.look_at_pins(&images).await?;
                Ok(None)
            }
            Step::Pin { images, changes } => {
                self.pin(&images, changes).await?;
                Ok(None)
            }
            Step::VerifyFailed { left } => Err(Error::Verify {
                service: left.service,
                expected: left.to,
                actual: left.from,
            }),
            Step::StartRun {
                intent,
                images,
                pinned,
                wave,
            } => {
                self.start_run(&intent, &images, pinned, wave, requested_by)
                    .await
            }
            Step::LookAtRun { images, run } => {
                // The run applies (and is checked against) its wave's images only.
                let images = super::waves::of_wave(&self.env.order, &images, run.wave);
                let Some(actuator) = self.adapters.actuator.clone() else {
                    return Ok(Some(Action::Done));
                };
                let Some(intent) = self.target().cloned() else {
                    return Ok(Some(Action::Done));
                };
                let mut progress = {
                    let run_of = self.as_run(&intent, &images);
                    actuator.check(&run_of, &run.handle).await?
                };
                if let Progress::AwaitingApproval {
                    plan: Some(digest), ..
                } = &progress
                {
                    let digest = digest.clone();
                    // An approval of this plan, by its digest, lets the apply go on;
                    // one of the images (or of another plan) does not.
                    let found = self.approvals_of(&intent, &digest).await?;
                    let approved = crate::model::approval::approval_missing(
                        &found,
                        &intent.release_id,
                        &self.env.id,
                        self.env.four_eyes,
                    )
                    .is_none();
                    let frozen = super::decide::frozen(self.env, self.ctx.now());
                    if let (true, Some((why, after))) = (approved, &frozen) {
                        // Approved during a freeze: it applies when the window ends.
                        progress = Progress::AwaitingApproval {
                            after: *after,
                            message: format!("the plan is approved; {why}"),
                            plan: Some(digest),
                        };
                    } else if approved
                        && !{
                            let run_of = self.as_run(&intent, &images);
                            actuator.plan_ready(&run_of, &run.handle, &digest).await?
                        }
                    {
                        // Approved, but it cannot be applied as approved: plan again.
                        progress = {
                            let run_of = self.as_run(&intent, &images);
                            actuator.replan(&run_of).await?
                        };
                    } else if approved {
                        // Only now are the release's pins written, then the plan applied.
                        let pinned = self.pin_for_approved_plan(&images).await?;
                        info!(pinned, "plan approved");
                        progress = {
                            let run_of = self.as_run(&intent, &images);
                            actuator.approved(&run_of, &run.handle, &digest).await?
                        };
                        // The run's clock starts again with the apply.
                        let now = self.ctx.now();
                        if let crate::model::state::Activity::Applying { run, .. } =
                            &mut self.writer.state.activity
                        {
                            run.started_at = now;
                        }
                    }
                }
                self.seen.progress = Some(progress);
                Ok(None)
            }
            Step::Follow {
                intent,
                awaiting_approval,
                message,
                after,
                write,
            } => {
                if write {
                    w.follow(&intent, awaiting_approval, &message).await?;
                }
                Ok(Some(Action::RequeueAfter(after)))
            }
            Step::Bake {
                intent,
                images,
                message,
                run,
                until,
            } => {
                if let Some(outcome) = run {
                    self.count_run(outcome);
                }
                info!(until = %until.to_wire(), "applied and verified; baking");
                self.writer
                    .bake(
                        &intent,
                        requested_by,
                        &images,
                        &message,
                        until,
                        &self.env.verify.alarms,
                    )
                    .await?;
                Ok(None)
            }
            Step::Promote { intent, targets } => {
                self.promote(&intent, &targets).await?;
                Ok(None)
            }
            Step::RollBack => {
                self.writer.roll_back().await?;
                Ok(None)
            }
            Step::LookAtAlarms => {
                let Some(alarms) = &self.adapters.alarms else {
                    self.seen.alarms = Some(Vec::new());
                    return Ok(None);
                };
                self.seen.alarms = Some(alarms.read(&self.env.verify.watched()).await?);
                Ok(None)
            }
            Step::Succeed {
                intent,
                images,
                message,
                run,
            } => {
                if let Some(outcome) = run {
                    self.count_run(outcome);
                }
                info!("deployment succeeded");
                self.writer
                    .succeed(&intent, requested_by, &images, &message)
                    .await?;
                self.ctx.backoffs.succeeded(self.key);
                self.set_drifted(false);
                self.wake_dependents();
                // Looked at again for the first drift check, and for the promotions
                // onwards once the release soaked.
                let drift_every = self
                    .adapters
                    .actuator
                    .as_ref()
                    .and_then(|a| a.drift_every());
                let soak = self.promotes_to().into_iter().map(|(_, soak)| soak).min();
                let next = drift_every.into_iter().chain(soak).min();
                Ok(Some(next.map_or(Action::Done, Action::RequeueAfter)))
            }
            Step::Fail {
                intent,
                message,
                run,
            } => {
                if let Some(outcome) = run {
                    self.count_run(outcome);
                }
                if run == Some("timed_out")
                    && let (Some(current), Some(actuator)) = (
                        self.writer.state.activity.run().cloned(),
                        self.adapters.actuator.clone(),
                    )
                {
                    actuator.stop(self.key, &current.handle).await?;
                }
                let applied = matches!(
                    self.writer.state.activity,
                    crate::model::state::Activity::Applying { .. }
                        | crate::model::state::Activity::Baking { .. }
                ) || self.seen.written.as_ref().is_some_and(|w| !w.is_empty());
                self.writer.plan_rollback(&intent, &message, applied);
                self.writer.fail(&intent, requested_by, &message).await?;
                self.writer.roll_back().await?;
                Ok(Some(Action::Done))
            }
            Step::Observe {
                intent,
                images,
                drift,
                record_observed,
                message,
            } => {
                if !drift.is_empty() {
                    warn!(services = ?drift, "pinned images drifted from the deployed release");
                    self.writer.tell(
                        &intent,
                        "drift_found",
                        &format!(
                            "pins drifted from the deployed release: {}",
                            drift.join(", ")
                        ),
                    );
                }
                let by_plan = self
                    .writer
                    .state
                    .plan_drift
                    .as_ref()
                    .is_some_and(|p| p.found.is_some());
                self.set_drifted(!drift.is_empty() || by_plan);
                if record_observed {
                    self.writer.converged(&intent, requested_by, &message);
                }
                self.writer
                    .observe(&intent, &images, drift, record_observed)
                    .await?;
                Ok(Some(Action::Done))
            }
            Step::CheckDrift {
                intent,
                images,
                run,
            } => self.check_drift(&intent, &images, run).await,
            Step::Heal {
                intent,
                images,
                changes,
                record_observed,
            } => {
                self.heal(&intent, &images, &changes, record_observed)
                    .await?;
                Ok(Some(Action::Done))
            }
            Step::Unverifiable { why } => {
                warn!(reason = %why, "cannot check the pins of the deployed release");
                Ok(Some(Action::Done))
            }
        }
    }

    fn pin_target(&self) -> Option<(IntentRef, Target<'_>)> {
        let intent = self.target()?.clone();
        let (release, _, _) = self.found.as_ref()?.as_ref()?;
        Some((
            intent,
            Target {
                key: self.key,
                release_id: &release.release_id,
            },
        ))
    }

    /// Writes (and verifies) the release's pins once its plan is approved; what it did,
    /// in words.
    async fn pin_for_approved_plan(&self, images: &Images) -> Result<String, Error> {
        let Some((_, target)) = self.pin_target() else {
            return Ok(String::new());
        };
        let changes = self.adapters.pin.diff(&target, images).await?;
        if !changes.is_empty() {
            let written = self.adapters.pin.write(&target, images, &changes).await?;
            if written == Written::Unverified
                && let Some(left) = self.adapters.pin.diff(&target, images).await?.first()
            {
                return Err(Error::Verify {
                    service: left.service.clone(),
                    expected: left.to.clone(),
                    actual: left.from.clone(),
                });
            }
        }
        Ok(super::decide::pinned_words(&changes, images.len()))
    }

    async fn look_at_pins(&mut self, images: &Images) -> Result<(), Error> {
        let Some((_, target)) = self.pin_target() else {
            return Ok(());
        };
        match self.adapters.pin.diff(&target, images).await {
            Ok(changes) => self.seen.pins = Some(changes),
            Err(PinError::Refused(why)) => self.seen.refused = Some(why),
            Err(other) => return Err(other.into()),
        }
        Ok(())
    }

    async fn pin(&mut self, images: &Images, changes: Vec<Change>) -> Result<(), Error> {
        if !changes.is_empty() {
            if self
                .adapters
                .actuator
                .as_ref()
                .is_some_and(|a| a.follows_moved_pins())
            {
                let services: Vec<String> = changes.iter().map(|c| c.service.clone()).collect();
                self.writer.moving_pins(&services).await?;
            }
            let Some((_, target)) = self.pin_target() else {
                return Ok(());
            };
            let written = match self.adapters.pin.write(&target, images, &changes).await {
                Ok(written) => written,
                Err(PinError::Refused(why)) => {
                    self.seen.refused = Some(why);
                    return Ok(());
                }
                Err(other) => return Err(other.into()),
            };
            self.ctx
                .metrics
                .pins_written
                .get_or_create(&KindLabels {
                    kind: self.adapters.pin.kind(),
                })
                .inc_by(changes.len() as u64);
            if written == Written::Verified {
                // The write's answers are the verification.
                self.seen.pins = Some(Vec::new());
            } else {
                self.seen.pins = None;
            }
        } else {
            // Nothing to write: the diff just read is the verification.
            self.seen.pins = Some(Vec::new());
        }
        crate::failpoint::hit("pinned");
        self.writer.verifying();
        self.seen.written = Some(changes);
        Ok(())
    }

    /// Starts the actuator; `Some` when it cannot start yet (another run of the
    /// environment is still live): the reconcile then ends, to look again.
    async fn start_run(
        &mut self,
        intent: &IntentRef,
        images: &Images,
        pinned: String,
        wave: usize,
        requested_by: Option<String>,
    ) -> Result<Option<Action>, Error> {
        let Some(actuator) = self.adapters.actuator.clone() else {
            return Ok(None);
        };
        let waves = super::waves::waves(&self.env.order, images);
        let images = &super::waves::of_wave(&self.env.order, images, wave);
        let kind = actuator.kind();
        // What this attempt wrote, and what an earlier one was writing when it stopped.
        let mut moved: Vec<String> = self
            .seen
            .written
            .iter()
            .flatten()
            .map(|c| c.service.clone())
            .chain(self.writer.state.activity.moving().iter().cloned())
            .collect();
        moved.sort();
        moved.dedup();
        self.pinned = self.adapters.pin.identities(&Target {
            key: self.key,
            release_id: &intent.release_id,
        });
        let run = ActuatorRun {
            moved: &moved,
            ..self.as_run(intent, images)
        };
        let handle = match actuator.start(&run).await? {
            Start::Started(handle) => handle,
            Start::Busy(Progress::Waiting { after, message }) => {
                self.writer.not_started(intent, &message).await?;
                return Ok(Some(Action::RequeueAfter(after)));
            }
            Start::Busy(_) => {
                return Ok(Some(Action::RequeueAfter(std::time::Duration::from_secs(
                    5,
                ))));
            }
        };
        self.count_run("started");
        crate::failpoint::hit("actuator-started");
        if crate::failpoint::error_once("actuator-started") {
            return Err(Error::Store(crate::store::StoreError::Aws {
                op: "record the run (failpoint)",
                table: String::new(),
                source: crate::aws::AwsError::other(
                    "failpoint actuator-started:error",
                    crate::aws::ErrorClass::Transient,
                ),
            }));
        }
        info!(kind, handle, wave, services = ?waves.get(wave), "actuator started");
        let run = Run {
            kind: kind.to_owned(),
            handle,
            started_at: self.ctx.now(),
            pinned,
            wave,
        };
        self.writer.applying(intent, requested_by, run).await?;
        // What the actuator said was of the run before (an earlier wave): this one is
        // looked at on its own.
        self.seen.progress = None;
        Ok(None)
    }

    async fn heal(
        &mut self,
        intent: &IntentRef,
        images: &Images,
        changes: &[Change],
        record_observed: bool,
    ) -> Result<(), Error> {
        let services: Vec<&str> = changes.iter().map(|c| c.service.as_str()).collect();
        warn!(services = ?services, "pins drifted; self_heal is on: pinning the deployed release again");
        let target = Target {
            key: self.key,
            release_id: &intent.release_id,
        };
        self.adapters.pin.write(&target, images, changes).await?;
        self.set_drifted(false);
        self.writer
            .healed(intent, images, &services, record_observed)
            .await?;
        Ok(())
    }

    fn as_run<'b>(&'b self, intent: &'b IntentRef, images: &'b Images) -> ActuatorRun<'b> {
        ActuatorRun {
            key: self.key,
            intent,
            images,
            moved: &[],
            pinned: &self.pinned,
        }
    }

    fn count_run(&self, outcome: &'static str) {
        if let Some(actuator) = &self.adapters.actuator {
            self.ctx
                .metrics
                .actuator_runs
                .get_or_create(&ActuatorLabels {
                    kind: actuator.kind(),
                    outcome,
                })
                .inc();
        }
    }

    /// Environments gated on this one may go ahead now.
    fn wake_dependents(&self) {
        for env in &self.project.environments {
            if env.requires.contains(&self.key.environment) {
                let key = EnvKey::new(&self.project.id, &env.id);
                self.ctx.queue.schedule(
                    key,
                    std::time::Duration::ZERO,
                    crate::queue::Priority::Fresh,
                );
            }
        }
    }

    fn set_drifted(&self, drifted: bool) {
        if let Ok(mut set) = self.ctx.drifted.lock() {
            if drifted {
                set.insert(self.key.clone());
            } else {
                set.remove(self.key);
            }
        }
    }
}

/// The entry `desired` points at, found again by `date_created` if the list moved.
fn locate(
    release: Release,
    key: &EnvKey,
    desired: &IntentRef,
) -> Option<(Release, IntentRef, Deployment)> {
    let is_it = |entry: &&Deployment| {
        entry.date_created.at == desired.date_created && entry.environment.id == key.environment
    };
    let entry = release
        .deployments
        .iter()
        .filter(is_it)
        .find(|entry| entry.index == desired.index)
        .or_else(|| release.deployments.iter().find(is_it))?
        .clone();
    let intent = IntentRef::of(&release.release_id, &entry);
    Some((release, intent, entry))
}
