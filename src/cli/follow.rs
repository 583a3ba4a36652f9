//! Following one deployment entry until it finishes, for `deploy --wait` and
//! `relctl wait`: each change of status, phase or message is printed on stderr as it is
//! seen, and so is a warning when no controller holds the lease (then nothing moves).
//! Exit 0 on `succeeded`; 1 on `failed` or `superseded`, or when the timeout passes
//! (the deployment itself goes on).

use std::time::{Duration, Instant};

use super::{
    Failure,
    lookup::{Aws, no_controller},
};
use crate::{
    config::Config,
    model::{EnvKey, Status, record::Deployment},
};

/// How often the lease is looked at while following.
const LEASE_CHECK: Duration = Duration::from_secs(10);

/// The entry to follow: `entry` at `index` of `release_id` in `table`.
pub struct Followed<'a> {
    pub key: &'a EnvKey,
    pub table: &'a str,
    pub release_id: &'a str,
    pub entry: &'a Deployment,
    pub index: usize,
}

pub async fn follow(
    config: &Config,
    aws: &Aws,
    followed: &Followed<'_>,
    timeout: Duration,
) -> Result<(), Failure> {
    let (store, state) = (aws.releases(), aws.state(config));
    let started = Instant::now();
    let mut last: Option<(Option<Status>, Option<String>, String)> = None;
    let mut lease_checked: Option<Instant> = None;
    let mut warned: Option<String> = None;
    loop {
        let current = store
            .get(followed.table, followed.release_id)
            .await?
            .and_then(|r| {
                r.deployments
                    .get(followed.index)
                    .filter(|d| d.same_intent(followed.entry))
                    .cloned()
                    .or_else(|| {
                        r.deployments
                            .into_iter()
                            .find(|d| d.same_intent(followed.entry))
                    })
            })
            .ok_or_else(|| Failure::refused("the deployment entry disappeared from the release"))?;
        if current.status.is_none_or(|s| !s.is_terminal())
            && lease_checked.is_none_or(|at| at.elapsed() >= LEASE_CHECK)
        {
            lease_checked = Some(Instant::now());
            let warning = no_controller(aws.lease(config).await?.as_ref());
            if warning.is_some() && warning != warned {
                note!("warning: {}", warning.as_deref().unwrap_or_default());
            }
            warned = warning;
        }
        // The environment's phase, while this deployment is the one being applied.
        let phase = match state.get(followed.key).await {
            Ok(env)
                if env.activity.intent().is_some_and(|a| {
                    a.release_id == followed.release_id
                        && a.date_created == followed.entry.date_created.at
                }) =>
            {
                env.activity
                    .phase()
                    .map(|p| format!(" [{p}]"))
                    .unwrap_or_default()
            }
            _ => String::new(),
        };
        let seen = (current.status, current.status_message.clone(), phase);
        if last.as_ref() != Some(&seen) {
            note!(
                "[{:>5.1}s] {}{}: {}",
                started.elapsed().as_secs_f64(),
                current.status.map_or("pending", Status::as_str),
                seen.2,
                current
                    .status_message
                    .as_deref()
                    .unwrap_or("waiting for the controller")
            );
            last = Some(seen);
        }
        match current.status {
            Some(Status::Succeeded) => return Ok(()),
            Some(status @ (Status::Failed | Status::Superseded | Status::Cancelled)) => {
                return Err(Failure::refused(format!(
                    "deployment {status}: {}",
                    current.status_message.unwrap_or_default()
                )));
            }
            _ => {}
        }
        if started.elapsed() >= timeout {
            return Err(Failure::refused(format!(
                "gave up waiting after {}; the deployment goes on (see `relctl status`)",
                humantime::format_duration(timeout)
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
