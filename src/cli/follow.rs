//! Following one deployment entry until it finishes, for `deploy --wait` and
//! `relctl wait`: each change of status, phase or message is printed on stderr as it is
//! seen — on a terminal as one live line (a spinner, the elapsed time, the status and
//! phase, and the actuator's current step: Terraform's last line, the pipeline's
//! stage, the tasks running), elsewhere as timestamped lines — and so is a warning when
//! no controller holds the lease (then nothing moves). Exit 0 on `succeeded`; 1 on
//! `failed`, `superseded` or `cancelled`, when the timeout passes, or on Ctrl-C, which
//! stops the waiting and never the deployment.

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
    let live = Live::new();
    let result = tokio::select! {
        result = watch(config, aws, followed, timeout, &live) => result,
        _ = tokio::signal::ctrl_c() => Err(Failure::refused(format!(
            "stopped waiting (Ctrl-C); the deployment itself goes on: `relctl wait {} --env {}` follows it again",
            followed.release_id, followed.key.environment
        ))),
    };
    live.done();
    result
}

/// The live line on a terminal (none elsewhere).
struct Live(Option<indicatif::ProgressBar>);

impl Live {
    fn new() -> Self {
        use std::io::IsTerminal as _;
        if !std::io::stderr().is_terminal() {
            return Self(None);
        }
        let bar = indicatif::ProgressBar::new_spinner();
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("{spinner} [{elapsed}] {wide_msg}")
        {
            bar.set_style(style);
        }
        bar.enable_steady_tick(Duration::from_millis(120));
        Self(Some(bar))
    }

    /// Says `line`: on the live line, or as a line of its own.
    fn say(&self, elapsed: Duration, line: &str) {
        match &self.0 {
            Some(bar) => bar.set_message(crate::model::shown::escape(line).into_owned()),
            None => note!("[{:>5.1}s] {line}", elapsed.as_secs_f64()),
        }
    }

    /// A line that stays (a warning): printed above the live line.
    fn keep(&self, line: &str) {
        match &self.0 {
            Some(bar) => bar.suspend(|| note!("{line}")),
            None => note!("{line}"),
        }
    }

    fn done(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

async fn watch(
    config: &Config,
    aws: &Aws,
    followed: &Followed<'_>,
    timeout: Duration,
    live: &Live,
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
                live.keep(&format!(
                    "warning: {}",
                    warning.as_deref().unwrap_or_default()
                ));
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
            let line = format!(
                "{}{}: {}",
                current.status.map_or("pending", Status::as_str),
                seen.2,
                current
                    .status_message
                    .as_deref()
                    .unwrap_or("waiting for the controller")
            );
            if current.status.is_some_and(|s| s.is_terminal()) {
                // The outcome stays on the screen, whatever the live line showed.
                live.done();
                note!("[{:>5.1}s] {line}", started.elapsed().as_secs_f64());
            } else {
                live.say(started.elapsed(), &line);
            }
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
