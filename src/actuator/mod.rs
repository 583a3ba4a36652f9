//! What applies the pinned images: none, a command (Terraform), CodePipeline, ECS or
//! Lambda. An actuator is *started* once per intent and then *checked* by requeue,
//! never by holding a worker: its handle (an execution id, say) lives in the state
//! table, so a restarted controller follows the same run instead of starting another.

pub mod codepipeline;
pub mod command;
pub mod ecs;
pub mod hooks;
pub mod lambda;

use std::time::Duration;

use async_trait::async_trait;

use crate::{
    aws::{AwsError, ErrorClass},
    model::{EnvKey, Images, IntentRef},
};

#[derive(Debug, thiserror::Error)]
pub enum ActuatorError {
    #[error("failed to {op}: {source}")]
    Aws {
        op: String,
        #[source]
        source: AwsError,
    },
    #[error("failed to start {what}: {source}")]
    Spawn {
        what: String,
        #[source]
        source: crate::store::BoxError,
    },
    /// What the target looks like rules the deployment out; no retry can help.
    #[error("{0}")]
    Refused(String),
}

impl ActuatorError {
    /// What a retry can do about this error.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Aws { source, .. } => source.class,
            Self::Spawn { .. } | Self::Refused(_) => ErrorClass::Permanent,
        }
    }

    pub(crate) fn aws<E, R>(
        op: impl Into<String>,
        error: aws_sdk_dynamodb::error::SdkError<E, R>,
    ) -> Self
    where
        E: aws_sdk_dynamodb::error::ProvideErrorMetadata
            + std::error::Error
            + Send
            + Sync
            + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        Self::Aws {
            op: op.into(),
            source: crate::aws::AwsError::from_sdk(error),
        }
    }
}

/// What starting a run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// Started (or already running): followed by this handle.
    Started(String),
    /// Not now (another run of the environment is still live): look again.
    Busy(Progress),
}

/// Where a started run is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    Done {
        message: String,
    },
    Waiting {
        after: Duration,
        message: String,
    },
    AwaitingApproval {
        after: Duration,
        message: String,
        /// The digest of a plan the run waits to have approved (a Terraform plan on a
        /// protected environment); none where the approval is the actuator's own (a
        /// pipeline's manual approval stage).
        plan: Option<String>,
    },
    /// Finished and failed: no retry until a new intent.
    Failed {
        message: String,
    },
}

/// Where a drift check of the deployed release is (see [`Actuator::check_drift`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriftCheck {
    /// Started, or going on: its run id; look again after `after`.
    Running { run: String, after: Duration },
    /// Another run holds the environment (a deployment): look again after `after`.
    Busy { after: Duration },
    /// Over: what the plan would change (None: nothing, no drift), or why it could not
    /// tell.
    Ended(Result<Option<String>, String>),
}

/// One intent being applied to one environment.
#[derive(Debug, Clone)]
pub struct Run<'a> {
    pub key: &'a EnvKey,
    pub intent: &'a IntentRef,
    /// service → desired image URI.
    pub images: &'a Images,
    /// The release's services whose pins this deployment moved (empty when following a
    /// run already started: its handle carries what it needs).
    pub moved: &'a [String],
    /// service → what the pin names now (an image digest behind a tag), where the pin
    /// has such an identity.
    pub pinned: &'a std::collections::BTreeMap<String, String>,
}

impl Run<'_> {
    /// A token unique to the intent, for APIs that deduplicate retried starts.
    pub fn token(&self) -> String {
        token(self.intent)
    }

    /// Fills `{release_id}`, `{project}`, `{environment}` in a configured string.
    pub fn fill(&self, template: &str) -> String {
        template
            .replace("{release_id}", &self.intent.release_id)
            .replace("{project}", &self.key.project)
            .replace("{environment}", &self.key.environment)
    }
}

/// The idempotency token and run id of an intent's run: the same for every attempt.
pub fn token(intent: &IntentRef) -> String {
    let date: String = intent
        .date_created
        .to_wire()
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    let release: String = intent
        .release_id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let mut token = format!("relctl-{date}-{release}");
    token.truncate(128);
    token
}

#[async_trait]
pub trait Actuator: Send + Sync {
    fn kind(&self) -> &'static str;
    /// How long a run may take from its start before it is `failed`.
    fn timeout(&self) -> Duration;
    /// Starts applying `run`; the handle it returns is what [`Actuator::check`] follows.
    async fn start(&self, run: &Run<'_>) -> Result<Start, ActuatorError>;
    async fn check(&self, run: &Run<'_>, handle: &str) -> Result<Progress, ActuatorError>;
    /// Whether [`Run::moved`] decides what is applied (an ECS service fed by a floating
    /// tag is redeployed only when its tag moved): the reconciler then records the
    /// services before it writes their pins, so none is missed after a partial write.
    fn follows_moved_pins(&self) -> bool {
        false
    }
    /// Whether a protected environment's approval is of this actuator's plan (given
    /// after the plan, before the apply) rather than of the images before it starts.
    fn approves_plans(&self) -> bool {
        false
    }
    /// Whether the plan `digest` of run `handle` can still be applied as approved (it is
    /// kept, and was made with the release's images and a known source revision).
    async fn plan_ready(
        &self,
        _run: &Run<'_>,
        _handle: &str,
        _digest: &str,
    ) -> Result<bool, ActuatorError> {
        Ok(true)
    }
    /// Makes the plan again (the approved one cannot be applied); for a new approval.
    async fn replan(&self, _run: &Run<'_>) -> Result<Progress, ActuatorError> {
        Ok(Progress::Waiting {
            after: Duration::from_secs(1),
            message: "planning again".into(),
        })
    }
    /// The plan `digest` that run `handle` waits on is approved: go on and apply it.
    async fn approved(
        &self,
        _run: &Run<'_>,
        _handle: &str,
        _digest: &str,
    ) -> Result<Progress, ActuatorError> {
        Ok(Progress::Waiting {
            after: Duration::from_secs(1),
            message: "approved".into(),
        })
    }
    /// How often the deployed release is checked for drift by the actuator itself (a
    /// Terraform plan); none: it is not.
    fn drift_every(&self) -> Option<Duration> {
        None
    }
    /// Starts (`handle` none) or follows (`handle`) a drift check of the release `run`
    /// deployed: a plan that changes nothing, in a run of its own.
    async fn check_drift(
        &self,
        _run: &Run<'_>,
        _handle: Option<&str>,
    ) -> Result<DriftCheck, ActuatorError> {
        Ok(DriftCheck::Ended(Ok(None)))
    }
    /// Stops a run that is no longer wanted (superseded, timed out), as gracefully as
    /// its kind allows; the default is to let it finish.
    async fn stop(&self, _key: &EnvKey, _handle: &str) -> Result<(), ActuatorError> {
        Ok(())
    }
    /// Cancels run `handle` for a person (`relctl cancel`, saying `reason`) as its kind
    /// allows, and says what that did and what it left running.
    async fn cancel(
        &self,
        key: &EnvKey,
        handle: &str,
        _reason: &str,
    ) -> Result<String, ActuatorError> {
        self.stop(key, handle).await?;
        Ok(format!("{} run {handle} was interrupted", self.kind()))
    }
}
