//! Every branch of [`decide`] and [`on_error`], as plain tests over built facts.

use std::time::Duration;

use super::*;
use crate::{
    config::{Config, environment::FreezeWindow},
    model::approval::Approvals,
    model::{
        Person,
        record::EnvironmentRef,
        state::{Attempts, Observed, Outcome, PlanDrift, Promotion, RollbackMark, Wait},
    },
};

fn at(text: &str) -> Timestamp {
    Timestamp::parse(text).unwrap_or_else(|e| panic!("{e}"))
}

fn intent(release: &str, date: &str) -> IntentRef {
    IntentRef {
        date_created: at(date),
        release_id: release.into(),
        index: 0,
        date_created_raw: None,
    }
}

fn current(intent: &IntentRef) -> Current {
    Current {
        intent: intent.clone(),
        requested_by: Some("someone".into()),
        since: at("2024-05-01T10:00:00"),
        break_glass: None,
        started: None,
    }
}

fn change(service: &str) -> Change {
    Change {
        service: service.into(),
        from: Some(format!("r.example/{service}:0")),
        to: format!("r.example/{service}:1"),
    }
}

/// Facts for one environment, built up a piece at a time.
struct Fixture {
    env: Environment,
    state: EnvState,
    release: Release,
    entry: Deployment,
    intent: IntentRef,
    found: bool,
    actuator: Option<ActuatorFacts>,
    seen: Seen,
    approvals: Option<Approvals>,
    verified: Vec<String>,
    own: Option<crate::store::verified::Verified>,
    promotes_to: Vec<(String, Duration)>,
    /// Read (nothing paused, no break-glass) unless a test says otherwise.
    controls: Option<crate::reconciler::decide::controls::Controls>,
}

fn fixture() -> Fixture {
    let config = Config::from_toml(
        "[[projects]]\nid = \"bugfarm\"\nname = \"B\"\n[[projects.environments]]\nid = \"prod\"\nname = \"P\"\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let intent = intent("r1", "2024-05-01T10:00:00");
    let entry = Deployment {
        index: 0,
        date_created: crate::model::Stamp::new(intent.date_created),
        description: None,
        environment: EnvironmentRef {
            id: "prod".into(),
            name: None,
        },
        requested_by: Some(Person {
            id: Some("arn:aws:iam::1:user/someone".into()),
            name: Some("someone".into()),
        }),
        status: None,
        status_message: None,
        status_updated_at: None,
        approved_by: None,
        approved_at: None,
        force: None,
        rollback_of: None,
        break_glass: None,
        cancel: None,
    };
    let release = Release {
        release_id: "r1".into(),
        project_id: "bugfarm".into(),
        project_name: None,
        date_created: None,
        last_date_deployed: None,
        description: None,
        requested_by: None,
        images: [("app".to_owned(), Some("r.example/app:1".to_owned()))].into(),
        release_manifest: None,
        deployments: vec![entry.clone()],
        malformed: None,
        rejected: Vec::new(),
    };
    Fixture {
        env: config.projects[0].environments[0].clone(),
        state: EnvState {
            desired: Some(intent.clone()),
            ..Default::default()
        },
        release,
        entry,
        intent,
        found: true,
        actuator: None,
        seen: Seen::default(),
        approvals: None,
        verified: Vec::new(),
        own: None,
        promotes_to: Vec::new(),
        controls: Some(Default::default()),
    }
}

const NOW: &str = "2024-05-01T10:05:00";

impl Fixture {
    fn decide(&self) -> Step {
        self.decide_at(NOW)
    }

    fn decide_at(&self, now: &str) -> Step {
        let facts = Facts {
            project: "bugfarm",
            controls: self.controls.as_ref(),
            cancelled: None,
            promotes_to: &self.promotes_to,
            env: &self.env,
            template: None,
            state: &self.state,
            found: if self.found {
                Found::Entry {
                    intent: &self.intent,
                    release: &self.release,
                    entry: &self.entry,
                }
            } else {
                Found::Missing
            },
            actuator: self.actuator,
            seen: &self.seen,
            approvals: self.approvals.as_ref(),
            verified: &self.verified,
            own: self.own.as_ref(),
        };
        decide(&facts, at(now))
    }

    fn with_status(mut self, status: Status) -> Self {
        self.entry.status = Some(status);
        self
    }

    /// The controller's own record that this intent succeeded here.
    fn verified_here(mut self) -> Self {
        self.own = Some(crate::store::verified::Verified {
            date_created: self.intent.date_created,
            images: crate::model::images_digest(&self.images()),
        });
        self
    }

    fn with_actuator(mut self) -> Self {
        self.actuator = Some(ActuatorFacts {
            kind: "codepipeline",
            timeout: Duration::from_secs(600),
            approves_plans: false,
            drift_every: None,
        });
        self
    }

    fn started(mut self) -> Self {
        self.seen.started = true;
        self
    }

    fn applying(mut self, started_at: &str) -> Self {
        self.state.activity = Activity::Applying {
            current: current(&self.intent),
            run: Run {
                kind: "codepipeline".into(),
                handle: "exec-1".into(),
                started_at: at(started_at),
                pinned: "pinned 1 of 1 images (app); verified".into(),
                wave: 0,
            },
            message: "started".into(),
            awaiting_approval: false,
            attempts: Attempts::default(),
        };
        self
    }

    fn images(&self) -> Images {
        [("app".to_owned(), "r.example/app:1".to_owned())].into()
    }
}

#[test]
fn no_desired_intent_means_nothing_to_do() {
    let mut f = fixture();
    f.state.desired = None;
    assert_eq!(f.decide(), Step::Nothing);
}

#[test]
fn the_release_is_read_before_anything_is_decided_about_it() {
    let f = fixture();
    let facts = Facts {
        project: "bugfarm",
        controls: None,
        cancelled: None,
        promotes_to: &[],
        env: &f.env,
        template: None,
        state: &f.state,
        found: Found::NotRead,
        actuator: None,
        seen: &f.seen,
        approvals: None,
        verified: &[],
        own: None,
    };
    assert_eq!(decide(&facts, at(NOW)), Step::ReadDesired);
}

#[test]
fn a_desired_intent_gone_from_the_table_is_lost() {
    let mut f = fixture();
    f.found = false;
    assert_eq!(
        f.decide(),
        Step::Lost {
            intent: f.intent.clone()
        }
    );
}

#[test]
fn a_newer_intent_supersedes_the_one_in_flight_even_mid_apply() {
    let older = intent("r0", "2024-05-01T09:00:00");
    let mut f = fixture();
    f.state.activity = Activity::Pinning {
        current: current(&older),
        message: "pinning".into(),
        verifying: false,
        moving: Vec::new(),
        hooked: false,
        attempts: Attempts::default(),
    };
    assert_eq!(
        f.decide(),
        Step::Supersede {
            older: current(&older),
            by: f.intent.clone()
        }
    );
    f.state.activity = Activity::Finished {
        current: current(&older),
        outcome: Outcome::Succeeded,
        message: "done".into(),
    };
    assert!(
        matches!(f.decide(), Step::Start { .. }),
        "a finished one is not superseded"
    );
}

#[test]
fn an_image_that_cannot_be_resolved_is_refused_with_the_reason() {
    let mut f = fixture();
    f.release.images.insert("feeding".into(), None);
    let Step::Refuse { why, .. } = f.decide() else {
        panic!("{:?}", f.decide());
    };
    assert!(why.contains("no image for service \"feeding\""), "{why}");
    let f = f.with_status(Status::Failed);
    assert_eq!(f.decide(), Step::Nothing, "already refused");
}

#[test]
fn the_promotion_gate_holds_a_release_until_the_controller_saw_it_succeed_upstream() {
    let mut f = fixture();
    f.env.requires = vec!["stage".into()];
    let Step::Block {
        message,
        gate: true,
        ..
    } = f.decide()
    else {
        panic!("{:?}", f.decide());
    };
    assert!(
        message.contains("has not succeeded in stage yet"),
        "{message}"
    );
    // A `succeeded` written into a stage entry by hand is not what the gate reads.
    f.release.deployments.push(Deployment {
        index: 1,
        environment: EnvironmentRef {
            id: "stage".into(),
            name: None,
        },
        status: Some(Status::Succeeded),
        ..f.entry.clone()
    });
    assert!(
        matches!(f.decide(), Step::Block { gate: true, .. }),
        "forged: still held"
    );
    f.verified = vec!["stage".into()];
    assert!(
        matches!(f.decide(), Step::Start { .. }),
        "the controller's own record opens it"
    );
}

#[test]
fn a_protected_environment_blocks_until_approved_and_records_it_once() {
    let mut f = fixture();
    f.env.protected = true;
    let Step::Block { message, .. } = f.decide() else {
        panic!("{:?}", f.decide());
    };
    assert!(message.contains("waiting for an approval"), "{message}");
    f.state.activity = Activity::Waiting {
        current: current(&f.intent),
        why: Wait::Approval,
        message,
    };
    assert_eq!(
        f.decide(),
        Step::WaitFor(APPROVAL_POLL),
        "already recorded: no write, look again for an approval soon"
    );
    f.entry.approved_by = Some(Person {
        id: Some("arn:aws:iam::1:user/reviewer".into()),
        name: Some("reviewer".into()),
    });
    assert_eq!(
        f.decide(),
        Step::WaitFor(APPROVAL_POLL),
        "approved_by in the entry is display only"
    );
    f.approvals = Some(Approvals {
        approvers: vec![principal("reviewer")],
        requesters: vec![],
        ..Default::default()
    });
    assert!(
        matches!(f.decide(), Step::Start { .. }),
        "approved in the approvals table: goes ahead"
    );
}

#[test]
fn a_protected_environment_whose_actuator_approves_plans_starts_to_plan_unapproved() {
    let mut f = fixture().with_actuator();
    f.env.protected = true;
    assert!(matches!(f.decide(), Step::Block { .. }), "{:?}", f.decide());
    if let Some(actuator) = &mut f.actuator {
        actuator.approves_plans = true;
    }
    assert!(
        matches!(f.decide(), Step::Start { .. }),
        "the approval comes after the plan: {:?}",
        f.decide()
    );
}

#[test]
fn four_eyes_refuses_the_requester_as_approver() {
    let mut f = fixture();
    f.env.protected = true;
    f.env.four_eyes = true;
    f.approvals = Some(Approvals {
        approvers: vec![principal("someone")],
        requesters: vec![principal("someone")],
        ..Default::default()
    });
    let Step::Block { message, .. } = f.decide() else {
        panic!("{:?}", f.decide());
    };
    assert!(message.contains("needs four eyes"), "{message}");
    f.approvals = Some(Approvals {
        approvers: vec![principal("someone"), principal("reviewer")],
        requesters: vec![principal("someone")],
        ..Default::default()
    });
    assert!(matches!(f.decide(), Step::Start { .. }));
}

fn principal(name: &str) -> crate::model::approval::Principal {
    crate::model::approval::Principal {
        id: format!("AIDA{name}"),
        arn: format!("arn:aws:iam::1:user/{name}"),
    }
}

#[test]
fn a_freeze_holds_the_deployment_until_the_window_ends_then_lets_it_go() {
    let mut f = fixture();
    f.env.freeze = vec![FreezeWindow {
        from: at("2024-05-01T10:00:00").as_utc(),
        until: at("2024-05-01T11:00:00").as_utc(),
        reason: Some("release freeze".into()),
    }];
    let Step::Freeze { message, wait, .. } = f.decide() else {
        panic!("{:?}", f.decide());
    };
    assert!(message.contains("frozen until") && message.contains("(release freeze)"));
    assert_eq!(
        wait,
        Duration::from_secs(55 * 60) + Duration::from_millis(100)
    );
    f.state.activity = Activity::Waiting {
        current: current(&f.intent),
        why: Wait::Freeze,
        message,
    };
    assert!(
        matches!(f.decide(), Step::WaitFor(_)),
        "recorded: wait without writing"
    );
    assert!(
        matches!(f.decide_at("2024-05-01T11:00:01"), Step::Start { .. }),
        "the window ended"
    );
}

#[test]
fn policies_do_not_hold_back_a_run_already_started() {
    let mut f = fixture().with_actuator().applying("2024-05-01T10:04:00");
    f.env.protected = true;
    assert!(
        matches!(f.decide(), Step::LookAtRun { .. }),
        "{:?}",
        f.decide()
    );
}

#[test]
fn applying_goes_start_then_look_then_pin_then_verify_then_succeed() {
    let f = fixture();
    assert!(matches!(f.decide(), Step::Start { .. }));
    let mut f = f.started();
    assert_eq!(f.decide(), Step::LookAtPins { images: f.images() });
    f.seen.pins = Some(vec![change("app")]);
    assert_eq!(
        f.decide(),
        Step::Pin {
            images: f.images(),
            changes: vec![change("app")]
        }
    );
    f.seen.written = Some(vec![change("app")]);
    f.seen.pins = None;
    assert_eq!(
        f.decide(),
        Step::LookAtPins { images: f.images() },
        "verify"
    );
    f.seen.pins = Some(vec![]);
    assert_eq!(
        f.decide(),
        Step::Succeed {
            intent: f.intent.clone(),
            images: f.images(),
            message: "pinned 1 of 1 images (app); verified".into(),
            run: None,
        }
    );
}

#[test]
fn pins_that_do_not_hold_after_writing_fail_verification() {
    let mut f = fixture().started();
    f.seen.written = Some(vec![change("app")]);
    f.seen.pins = Some(vec![change("app")]);
    assert_eq!(
        f.decide(),
        Step::VerifyFailed {
            left: change("app")
        }
    );
}

#[test]
fn a_pin_that_refuses_the_release_fails_it() {
    let mut f = fixture().started();
    f.seen.refused = Some("image does not exist".into());
    assert!(
        matches!(f.decide(), Step::Fail { message, run: None, .. } if message == "image does not exist")
    );
}

#[test]
fn with_an_actuator_a_verified_pin_starts_the_run() {
    let mut f = fixture().with_actuator().started();
    f.seen.written = Some(vec![]);
    f.seen.pins = Some(vec![]);
    assert_eq!(
        f.decide(),
        Step::StartRun {
            intent: f.intent.clone(),
            images: f.images(),
            pinned: "all 1 images were already pinned; verified".into(),
            wave: 0,
        }
    );
}

#[test]
fn after_a_restart_a_recorded_run_is_followed_never_started_again() {
    let mut f = fixture().with_actuator().applying("2024-05-01T10:04:00");
    assert!(matches!(f.decide(), Step::LookAtRun { run, .. } if run.handle == "exec-1"));
    f.seen.progress = Some(Progress::Waiting {
        after: Duration::from_secs(15),
        message: "stage Deploy running".into(),
    });
    assert_eq!(
        f.decide(),
        Step::Follow {
            intent: f.intent.clone(),
            awaiting_approval: false,
            message: "stage Deploy running".into(),
            after: Duration::from_secs(15),
            write: true,
        }
    );
    if let Activity::Applying { message, .. } = &mut f.state.activity {
        *message = "stage Deploy running".into();
    }
    assert!(
        matches!(f.decide(), Step::Follow { write: false, .. }),
        "nothing new: no write"
    );
    f.seen.progress = Some(Progress::AwaitingApproval {
        after: Duration::from_secs(15),
        message: "awaiting approval in stage Approve".into(),
        plan: None,
    });
    assert!(matches!(
        f.decide(),
        Step::Follow {
            awaiting_approval: true,
            write: true,
            ..
        }
    ));
}

#[test]
fn a_run_that_finishes_succeeds_with_what_pinning_did_and_one_that_fails_fails() {
    let mut f = fixture().with_actuator().applying("2024-05-01T10:04:00");
    f.seen.progress = Some(Progress::Done {
        message: "pipeline succeeded".into(),
    });
    assert!(
        matches!(f.decide(), Step::Succeed { message, run: Some("succeeded"), .. }
        if message == "pinned 1 of 1 images (app); verified; pipeline succeeded")
    );
    f.seen.progress = Some(Progress::Failed {
        message: "stage Deploy failed".into(),
    });
    assert!(matches!(
        f.decide(),
        Step::Fail {
            run: Some("failed"),
            ..
        }
    ));
}

#[test]
fn a_run_past_its_timeout_fails_naming_its_handle() {
    let f = fixture().with_actuator().applying("2024-05-01T09:50:00");
    let Step::Fail { message, run, .. } = f.decide() else {
        panic!("{:?}", f.decide());
    };
    assert_eq!(run, Some("timed_out"));
    assert!(
        message.contains("did not finish within 10m (handle exec-1)"),
        "{message}"
    );
}

#[test]
fn a_succeeded_deployment_is_observed_for_drift_with_and_without_self_heal() {
    let mut f = fixture().with_status(Status::Succeeded).verified_here();
    assert_eq!(f.decide(), Step::LookAtPins { images: f.images() });
    f.seen.pins = Some(vec![]);
    f.entry.status_message = Some("pinned 1 of 1 images (app); verified".into());
    assert!(
        matches!(
            f.decide(),
            Step::Observe { record_observed: true, message, .. }
                if message == "pinned 1 of 1 images (app); verified"
        ),
        "the state lost track: record what runs"
    );
    f.state.observed = Some(Observed {
        release_id: "r1".into(),
        date_created: f.intent.date_created,
        images: f.images(),
        since: at(NOW),
    });
    assert_eq!(f.decide(), Step::Nothing, "converged, no drift");
    f.seen.pins = Some(vec![change("app")]);
    assert_eq!(
        f.decide(),
        Step::Observe {
            intent: f.intent.clone(),
            images: f.images(),
            drift: vec!["app".into()],
            record_observed: false,
            message: "pinned 1 of 1 images (app); verified".into(),
        }
    );
    f.state.drift = vec!["app".into()];
    assert_eq!(f.decide(), Step::Nothing, "drift already recorded");
    f.env.self_heal = true;
    assert!(matches!(f.decide(), Step::Heal { changes, .. } if changes == vec![change("app")]));
    // Self-heal waits for the environment's controls, and stops while it is paused.
    f.controls = None;
    assert_eq!(f.decide(), Step::LookAtControls);
    f.controls = Some(paused());
    assert_eq!(
        f.decide(),
        Step::Nothing,
        "paused: the drift is reported, not healed"
    );
}

fn paused() -> crate::reconciler::decide::controls::Controls {
    crate::reconciler::decide::controls::Controls {
        paused: Some(crate::store::attestations::Paused {
            by: principal("oncall"),
            reason: "incident".into(),
            at: "2024-05-01T10:00:00.000000".into(),
        }),
        ..Default::default()
    }
}

#[test]
fn a_pause_holds_a_new_intent_unless_a_listed_principal_broke_the_glass() {
    let mut f = fixture();
    f.controls = None;
    assert_eq!(
        f.decide(),
        Step::LookAtControls,
        "read before anything applies"
    );
    f.controls = Some(paused());
    let Step::Pause { message, .. } = f.decide() else {
        panic!("{:?}", f.decide());
    };
    assert!(
        message.contains("is paused by arn:aws:iam::1:user/oncall")
            && message.contains("`relctl resume --project bugfarm --env prod`"),
        "{message}"
    );
    // Recorded already: looked at again later, nothing written.
    f.state.activity = Activity::Waiting {
        current: current(&f.intent),
        why: crate::model::state::Wait::Pause,
        message,
    };
    assert_eq!(
        f.decide(),
        Step::WaitFor(crate::reconciler::decide::controls::PAUSE_POLL)
    );
    // relctl's own rollback is the way back: a pause does not hold it.
    f.state.rollback = Some(RollbackMark {
        failed_release: "r2".into(),
        failed_date_created: at("2024-05-01T09:00:00"),
        reason: "alarm".into(),
        release_id: f.intent.release_id.clone(),
        date_created: f.intent.date_created,
        images: crate::model::images_digest(&f.images()),
        pending: false,
    });
    assert!(matches!(f.decide(), Step::Start { .. }), "{:?}", f.decide());
    f.state.rollback = None;
    let mut glass = paused();
    glass.break_glass = Some("break-glass by arn:x: hotfix".into());
    f.controls = Some(glass);
    assert!(
        matches!(f.decide(), Step::Start { break_glass: Some(g), message, .. }
            if g == "break-glass by arn:x: hotfix" && message.starts_with("break-glass by arn:x: hotfix; pinning")),
        "{:?}",
        f.decide()
    );
    // Nothing holds it: a break-glass is not needed, nor recorded.
    f.controls = Some(crate::reconciler::decide::controls::Controls {
        break_glass: Some("break-glass by arn:x: hotfix".into()),
        ..Default::default()
    });
    assert!(matches!(
        f.decide(),
        Step::Start {
            break_glass: None,
            ..
        }
    ));
}

#[test]
fn nothing_is_promoted_out_of_a_paused_environment() {
    let mut f = fixture().with_status(Status::Succeeded).verified_here();
    f.seen.pins = Some(vec![]);
    f.state.observed = Some(Observed {
        release_id: "r1".into(),
        date_created: f.intent.date_created,
        images: f.images(),
        since: at("2024-05-01T09:00:00"),
    });
    f.promotes_to = vec![("prod2".into(), Duration::from_secs(60))];
    assert!(
        matches!(f.decide(), Step::Promote { .. }),
        "{:?}",
        f.decide()
    );
    f.controls = Some(paused());
    assert_eq!(f.decide(), Step::Nothing);
}

#[test]
fn a_converged_terraform_environment_is_planned_for_drift_when_its_check_is_due() {
    let mut f = fixture()
        .with_status(Status::Succeeded)
        .verified_here()
        .with_actuator();
    f.seen.pins = Some(vec![]);
    f.state.observed = Some(Observed {
        release_id: "r1".into(),
        date_created: f.intent.date_created,
        images: f.images(),
        since: at(NOW),
    });
    assert_eq!(f.decide(), Step::Nothing, "no drift_check: never");
    let ago =
        |seconds: i64| Timestamp::from_utc(at(NOW).as_utc() - chrono::Duration::seconds(seconds));
    let every = Duration::from_secs(3600);
    if let Some(a) = &mut f.actuator {
        a.drift_every = Some(every);
    }
    let (intent, images) = (f.intent.clone(), f.images());
    let check = |run: Option<&str>| Step::CheckDrift {
        intent: intent.clone(),
        images: images.clone(),
        run: run.map(str::to_owned),
    };
    assert_eq!(f.decide(), Step::Nothing, "deployed just now: not yet");
    if let Some(observed) = &mut f.state.observed {
        observed.since = ago(7200);
    }
    assert_eq!(
        f.decide(),
        check(None),
        "deployed 2 hours ago, never checked: due"
    );
    let checked = |release: &str, seconds: i64| PlanDrift {
        release_id: Some(release.into()),
        checked_at: Some(ago(seconds)),
        ..Default::default()
    };
    f.state.plan_drift = Some(checked("r1", 600));
    assert_eq!(f.decide(), Step::Nothing, "checked 10 minutes ago");
    f.state.plan_drift = Some(checked("r1", 3600));
    assert_eq!(f.decide(), check(None), "an hour ago: due again");
    f.state.plan_drift = Some(checked("r0", 60));
    assert_eq!(
        f.decide(),
        check(None),
        "the last check was of another release"
    );
    f.state.plan_drift = Some(PlanDrift {
        run: Some("relctl-drift-1".into()),
        ..checked("r1", 60)
    });
    assert_eq!(
        f.decide(),
        check(Some("relctl-drift-1")),
        "in flight: followed"
    );
    // Pins drift is recorded before a plan is made.
    f.seen.pins = Some(vec![change("app")]);
    assert!(matches!(f.decide(), Step::Observe { .. }));
}

#[test]
fn a_deployed_release_whose_pins_cannot_be_read_is_reported_not_failed() {
    let mut f = fixture().with_status(Status::Succeeded).verified_here();
    f.seen.refused = Some("no such document".into());
    assert_eq!(
        f.decide(),
        Step::Unverifiable {
            why: "no such document".into()
        }
    );
}

#[test]
fn a_success_the_controller_has_no_record_of_is_a_claim_and_the_intent_is_applied() {
    let mut f = fixture().with_status(Status::Succeeded);
    assert!(
        matches!(
            f.decide(),
            Step::Start {
                claimed: Some(Status::Succeeded),
                ..
            }
        ),
        "{:?}",
        f.decide()
    );
    // Even with self_heal on, nothing is pinned without going through the policies.
    f.env.self_heal = true;
    f.env.protected = true;
    assert!(
        matches!(f.decide(), Step::Block { gate: false, .. }),
        "{:?}",
        f.decide()
    );
}

#[test]
fn drift_is_measured_against_what_was_verified_not_the_release_as_it_is_now() {
    let mut f = fixture().with_status(Status::Succeeded).verified_here();
    f.state.observed = Some(Observed {
        release_id: "r1".into(),
        date_created: f.intent.date_created,
        images: f.images(),
        since: at(NOW),
    });
    // Someone changes the release's images after it was deployed.
    f.release
        .images
        .insert("app".into(), Some("evil.example/app:1".into()));
    assert_eq!(
        f.decide(),
        Step::LookAtPins { images: f.images() },
        "the verified images, not the release's new ones"
    );
    f.env.self_heal = true;
    f.seen.pins = Some(vec![change("app")]);
    assert!(matches!(f.decide(), Step::Heal { images, .. } if images == f.images()));
    // Had the state lost track, the changed release is not verified: nothing is healed.
    f.state.observed = None;
    f.seen.pins = None;
    assert!(matches!(f.decide(), Step::Unverifiable { why } if why.contains("changed since")));
}

#[test]
fn finished_intents_are_left_alone() {
    for status in [Status::Failed, Status::Superseded] {
        assert_eq!(fixture().with_status(status).decide(), Step::Nothing);
    }
}

fn pinning(count: u32) -> EnvState {
    let i = intent("r1", "2024-05-01T10:00:00");
    EnvState {
        desired: Some(i.clone()),
        activity: Activity::Pinning {
            current: current(&i),
            message: "pinning".into(),
            verifying: false,
            moving: Vec::new(),
            hooked: false,
            attempts: Attempts {
                count,
                last_error: None,
            },
        },
        ..Default::default()
    }
}

#[test]
fn a_failed_attempt_is_retried_until_max_attempts_then_the_deployment_fails() {
    assert_eq!(
        on_error(&pinning(0), ErrorClass::Transient, "boom", 3),
        OnError::Retry {
            note: Some("attempt 1 failed, retrying: boom".into()),
            throttled: false
        }
    );
    assert_eq!(
        on_error(&pinning(2), ErrorClass::Transient, "boom", 3),
        OnError::GiveUp {
            intent: intent("r1", "2024-05-01T10:00:00"),
            message: "gave up after 3 attempts: boom".into()
        }
    );
}

#[test]
fn throttling_is_retried_later_and_a_permanent_error_fails_at_once() {
    assert!(matches!(
        on_error(&pinning(0), ErrorClass::Throttled, "slow down", 3),
        OnError::Retry {
            throttled: true,
            ..
        }
    ));
    assert!(matches!(
        on_error(&pinning(0), ErrorClass::Permanent, "AccessDenied", 3),
        OnError::GiveUp { message, .. } if message.contains("a retry cannot help")
    ));
}

#[test]
fn an_error_outside_a_deployment_is_retried_without_counting() {
    assert_eq!(
        on_error(&EnvState::default(), ErrorClass::Permanent, "no table", 1),
        OnError::Retry {
            note: None,
            throttled: false
        }
    );
}

#[test]
fn a_verified_deployment_bakes_watching_its_alarms_before_it_succeeds() {
    use crate::watch::alarms::{AlarmSeen, AlarmState};
    let mut f = fixture().started();
    f.env.verify.alarms = vec!["5xx".into()];
    f.env.verify.bake = Duration::from_secs(600);
    f.seen.written = Some(vec![change("app")]);
    f.seen.pins = Some(vec![]);
    let until = Timestamp::from_utc(at(NOW).as_utc() + chrono::Duration::seconds(600));
    assert_eq!(
        f.decide(),
        Step::Bake {
            intent: f.intent.clone(),
            images: f.images(),
            message: "pinned 1 of 1 images (app); verified".into(),
            run: None,
            until,
        },
        "a success bakes first"
    );
    f.state.activity = Activity::Baking {
        current: current(&f.intent),
        images: f.images(),
        until,
        message: "pinned 1 of 1 images (app); verified".into(),
        attempts: Attempts::default(),
    };
    f.seen = Seen::default();
    assert_eq!(f.decide(), Step::LookAtAlarms);
    let seen = |state| AlarmSeen {
        name: "5xx".into(),
        state,
        reason: "Threshold Crossed".into(),
        since: None,
    };
    f.seen.alarms = Some(vec![seen(AlarmState::Ok)]);
    assert_eq!(
        f.decide(),
        Step::WaitFor(f.env.verify.poll_interval),
        "quiet, the bake goes on: looked at again by requeue"
    );
    for bad in [AlarmState::Alarm, AlarmState::Missing] {
        f.seen.alarms = Some(vec![seen(bad)]);
        assert!(
            matches!(f.decide(), Step::Fail { message, .. } if message.contains("alarm \"5xx\"")),
            "{bad:?}"
        );
    }
    // The bake is over: it succeeds, once (not baked again).
    f.state.activity = Activity::Baking {
        current: current(&f.intent),
        images: f.images(),
        until: at(NOW),
        message: "pinned".into(),
        attempts: Attempts::default(),
    };
    f.seen.alarms = Some(vec![seen(AlarmState::Ok)]);
    assert!(
        matches!(f.decide(), Step::Succeed { message, .. } if message == "pinned; baked 10m with alarms 5xx quiet"),
        "{:?}",
        f.decide()
    );
    // A newer intent supersedes a bake like any deployment in flight.
    f.state.desired = Some(intent("r2", "2024-05-01T10:01:00"));
    assert!(matches!(f.decide(), Step::Supersede { .. }));
}

#[test]
fn relctl_s_own_rollback_passes_the_gate_and_with_rollback_skips_approval_the_approval() {
    let mut f = fixture();
    f.env.requires = vec!["stage".into()];
    assert!(matches!(f.decide(), Step::Block { gate: true, .. }));
    f.state.rollback = Some(RollbackMark {
        failed_release: "r2".into(),
        failed_date_created: at("2024-05-01T09:00:00"),
        reason: "alarm".into(),
        release_id: f.intent.release_id.clone(),
        date_created: f.intent.date_created,
        images: crate::model::images_digest(&f.images()),
        pending: false,
    });
    assert!(matches!(f.decide(), Step::Start { .. }), "{:?}", f.decide());
    f.env.protected = true;
    assert!(matches!(f.decide(), Step::Block { gate: false, .. }));
    f.env.rollback_skips_approval = true;
    assert!(matches!(f.decide(), Step::Start { .. }));
    // The release's images edited since they ran: an ordinary deployment again.
    if let Some(mark) = &mut f.state.rollback {
        mark.images = "sha256:other".into();
    }
    assert!(matches!(f.decide(), Step::Block { gate: true, .. }));
    let digest = crate::model::images_digest(&f.images());
    if let Some(mark) = &mut f.state.rollback {
        mark.images = digest;
    }
    // A failure saved with its rollback still to write: written first.
    if let Some(mark) = &mut f.state.rollback {
        mark.pending = true;
    }
    assert_eq!(f.decide(), Step::RollBack);
}

#[test]
fn a_release_that_soaked_with_quiet_alarms_is_promoted_onwards_once() {
    use crate::watch::alarms::{AlarmSeen, AlarmState};
    let mut f = fixture().with_status(Status::Succeeded).verified_here();
    f.seen.pins = Some(vec![]);
    let ago =
        |seconds: i64| Timestamp::from_utc(at(NOW).as_utc() - chrono::Duration::seconds(seconds));
    f.state.observed = Some(Observed {
        release_id: "r1".into(),
        date_created: f.intent.date_created,
        images: f.images(),
        since: ago(1800),
    });
    f.promotes_to = vec![("prod".into(), Duration::from_secs(3600))];
    assert_eq!(
        f.decide(),
        Step::WaitFor(Duration::from_secs(1800)),
        "half soaked"
    );
    f.promotes_to = vec![("prod".into(), Duration::from_secs(600))];
    let promote = Step::Promote {
        intent: f.intent.clone(),
        targets: vec!["prod".into()],
    };
    assert_eq!(f.decide(), promote);
    // With alarms: read first; one in ALARM holds the soak, one that changed state
    // starts it again.
    f.env.verify.alarms = vec!["5xx".into()];
    assert_eq!(f.decide(), Step::LookAtAlarms);
    let seen = |state, since| AlarmSeen {
        name: "5xx".into(),
        state,
        reason: String::new(),
        since: Some(since),
    };
    f.seen.alarms = Some(vec![seen(AlarmState::Alarm, ago(3000))]);
    assert_eq!(f.decide(), Step::WaitFor(f.env.verify.poll_interval));
    f.seen.alarms = Some(vec![seen(AlarmState::Ok, ago(300))]);
    assert_eq!(
        f.decide(),
        Step::WaitFor(f.env.verify.poll_interval),
        "soaking again since the alarm cleared"
    );
    f.seen.alarms = Some(vec![seen(AlarmState::Ok, ago(3000))]);
    assert_eq!(f.decide(), promote);
    // Done once: not again.
    f.state.promotion = Some(Promotion {
        release_id: "r1".into(),
        date_created: f.intent.date_created,
        done: vec!["prod".into()],
    });
    assert_eq!(f.decide(), Step::Nothing);
}

#[test]
fn a_rollback_to_a_release_verified_here_is_not_baked() {
    let mut f = fixture().started();
    f.env.verify.alarms = vec!["5xx".into()];
    f.env.verify.bake = Duration::from_secs(600);
    f.seen.written = Some(vec![change("app")]);
    f.seen.pins = Some(vec![]);
    f.entry.rollback_of = Some("r2".into());
    assert!(
        matches!(f.decide(), Step::Bake { .. }),
        "rollback_of alone is a claim: a release never verified here bakes"
    );
    // It ran here before (an earlier intent), with these images: a fast rollback.
    f.own = Some(crate::store::verified::Verified {
        date_created: at("2024-04-01T10:00:00"),
        images: crate::model::images_digest(&f.images()),
    });
    assert!(
        matches!(f.decide(), Step::Succeed { message, .. } if message.ends_with("a rollback: not baked")),
        "{:?}",
        f.decide()
    );
    // Its images changed since they ran here: an ordinary deployment, baked.
    f.own = Some(crate::store::verified::Verified {
        date_created: at("2024-04-01T10:00:00"),
        images: "other".into(),
    });
    assert!(matches!(f.decide(), Step::Bake { .. }));
}

#[test]
fn a_deployment_in_flight_past_its_deadline_fails_but_not_while_a_person_approves_its_plan() {
    let mut f = fixture().with_actuator().applying("2024-05-01T10:00:00");
    f.env.deadline = Some(Duration::from_secs(60));
    if let Some(c) = f.state.activity.current().cloned() {
        set_current(
            &mut f.state.activity,
            Current {
                started: Some(at("2024-05-01T10:00:00")),
                ..c
            },
        );
    }
    let step = f.decide_at("2024-05-01T10:00:30");
    assert!(!matches!(step, Step::Fail { .. }), "within it: {step:?}");
    let step = f.decide_at("2024-05-01T10:02:00");
    assert!(
        matches!(&step, Step::Fail { message, run: Some("timed_out"), .. }
            if message.starts_with("deadline passed: not finished within 1m")),
        "{step:?}"
    );
    if let Some(a) = &mut f.actuator {
        a.approves_plans = true;
    }
    if let Activity::Applying {
        awaiting_approval, ..
    } = &mut f.state.activity
    {
        *awaiting_approval = true;
    }
    let step = f.decide_at("2024-05-01T10:02:00");
    assert!(
        !matches!(step, Step::Fail { .. }),
        "a person approves: {step:?}"
    );
}

fn set_current(activity: &mut Activity, new: Current) {
    if let Activity::Applying { current, .. } = activity {
        *current = new;
    }
}
