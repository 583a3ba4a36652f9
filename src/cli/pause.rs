//! `relctl pause --project P --env E --reason …` and `relctl resume --project P --env E`:
//! stop the line in an environment during an incident, and start it again. Both are
//! attestations in the approvals table under the caller's own AWS identity (IAM makes
//! the item's key the caller's `aws:userid`), so the history and the status name who
//! did it. While paused, new deployments wait `paused` and self-heal and auto-promotion
//! stop there; a deployment already applying goes on (`relctl cancel` stops one).

use clap::Args;

use super::{Failure, lookup::Aws};
use crate::{
    config::Config,
    model::{EnvKey, Timestamp},
    store::attestations::{Kind, Said, env_subject, paused},
};

#[derive(Debug, Args)]
pub struct PauseArgs {
    #[arg(long)]
    pub project: String,
    #[arg(long = "env")]
    pub environment: String,
    /// Why (shown in the status, the history and the notifications).
    #[arg(long)]
    pub reason: String,
}

#[derive(Debug, Args)]
pub struct ResumeArgs {
    #[arg(long)]
    pub project: String,
    #[arg(long = "env")]
    pub environment: String,
}

/// Longest reason kept: what people read, not a log.
const REASON: usize = 500;

pub async fn pause(config: &Config, aws: &Aws, args: PauseArgs) -> Result<(), Failure> {
    let key = EnvKey::new(&args.project, &args.environment);
    config.environment(&key)?;
    let reason = args.reason.trim();
    if reason.is_empty() {
        return Err(Failure::refused(
            "say why with --reason: it is what the people whose deployments wait read",
        ));
    }
    let reason = crate::reconciler::outcome::bounded(reason, REASON);
    let me = aws.principal().await?;
    let now = Timestamp::from_utc(chrono::Utc::now());
    aws.attestations(config)
        .record_saying(
            Kind::Pause,
            &me,
            &env_subject(&key),
            "",
            now,
            Said {
                reason: Some(&reason),
                ends: &[],
            },
        )
        .await?;
    note!(
        "paused {}/{} as {}: new deployments wait `paused`, self-heal and auto-promotion stop there; a deployment already applying goes on",
        key.project,
        key.environment,
        me.arn
    );
    note!(
        "`relctl resume --project {} --env {}` starts it again",
        key.project,
        key.environment
    );
    Ok(())
}

pub async fn resume(config: &Config, aws: &Aws, args: ResumeArgs) -> Result<(), Failure> {
    let key = EnvKey::new(&args.project, &args.environment);
    config.environment(&key)?;
    let attestations = aws.attestations(config);
    let subject = env_subject(&key);
    let found = attestations.of(&subject).await?;
    let Some(current) = paused(&found) else {
        return Err(Failure::refused(format!(
            "{}/{} is not paused; nothing was written",
            key.project, key.environment
        )));
    };
    // Every pause there ends, those already ended too: a resume replaces its writer's
    // earlier one, which must not bring a pause it ended back.
    let ended: Vec<String> = found
        .iter()
        .filter(|a| a.kind == Kind::Pause && a.dated())
        .map(|a| a.token())
        .collect();
    let me = aws.principal().await?;
    let now = Timestamp::from_utc(chrono::Utc::now());
    attestations
        .record_saying(
            Kind::Resume,
            &me,
            &subject,
            "",
            now,
            Said {
                reason: None,
                ends: &ended,
            },
        )
        .await?;
    note!(
        "resumed {}/{} as {} (paused by {} since {}: {}); waiting deployments go ahead within seconds",
        key.project,
        key.environment,
        me.arn,
        current.by.arn,
        current.at,
        current.reason
    );
    Ok(())
}
