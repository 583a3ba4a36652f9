//! The `relctl` command line: one file per subcommand. One exit-code rule for every
//! command, so scripts can trust it: 0 done, or nothing to do; 1 failed or refused
//! (the reason on stderr); 2 usage error.

/// Prints one line to stdout with every control and bidi character shown escaped
/// ([`crate::model::shown`]): what the CLI prints comes partly from records, which anyone
/// allowed to deploy writes. A closed pipe (`relctl status | head`) ends quietly.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let line = format!($($arg)*);
        let _ = writeln!(std::io::stdout(), "{}", $crate::model::shown::escape(&line));
    }};
}

/// [`out!`] for stderr: progress, warnings and errors.
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let line = format!($($arg)*);
        let _ = writeln!(std::io::stderr(), "{}", $crate::model::shown::escape(&line));
    }};
}

mod approve;
mod cancel;
mod completions;
mod controller;
mod deploy;
mod diff;
mod follow;
mod health;
mod history;
mod iam_policy;
mod init;
mod logs;
mod lookup;
mod past;
mod pause;
mod release;
mod report;
mod request;
mod retry;
mod rollback;
mod setup;
mod status;
mod table;
mod unlock;
mod validate;
mod wait;

use std::{path::PathBuf, process::ExitCode, sync::Arc};

use clap::{Parser, Subcommand};

use crate::config::Config;

#[derive(Debug, Parser)]
#[command(
    name = "relctl",
    version,
    about = "Deploy releases on AWS: a reconciling controller and its CLI",
    after_help = "Exit codes, for every command: 0 done, or nothing to do; 1 failed or refused (the reason is on stderr); 2 usage error."
)]
pub struct Cli {
    /// Configuration file (TOML). RELCTL_* environment variables override it.
    #[arg(long, global = true, env = "RELCTL_CONFIG")]
    pub config: Option<PathBuf>,
    /// How read commands print: a table for people, JSON (stable, documented) for scripts.
    /// How read commands print: a table for people (`wide`: full ids and times), or JSON.
    #[arg(short = 'o', long, global = true, value_enum, default_value_t = Output::Table)]
    pub output: Output,
    /// Colour in tables: on a terminal unless NO_COLOR is set (auto), always, or never.
    #[arg(long, global = true, value_enum, default_value_t = table::ColorChoice::Auto)]
    pub color: table::ColorChoice,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the controller daemon until SIGTERM or SIGINT.
    Controller,
    /// Create the releases and state tables if missing; turn on a missing stream.
    Setup,
    /// Create and inspect releases.
    #[command(subcommand)]
    Release(release::ReleaseCommand),
    /// Request a deployment of a release to an environment.
    Deploy(deploy::DeployArgs),
    /// Follow the newest deployment of a release to an environment until it finishes.
    Wait(wait::WaitArgs),
    /// Approve a release's waiting deployment to a protected environment.
    Approve(approve::ApproveArgs),
    /// Past deployments to an environment: who, when, outcome.
    History(history::HistoryArgs),
    /// Stop a deployment that is waiting or in flight; recorded `cancelled`.
    Cancel(cancel::CancelArgs),
    /// Run the newest intent for an environment again, when it failed.
    Retry(retry::RetryArgs),
    /// Stop the line: new deployments to an environment wait `paused`; self-heal and
    /// auto-promotion stop there.
    Pause(pause::PauseArgs),
    /// End a pause: waiting deployments go ahead.
    Resume(pause::ResumeArgs),
    /// Release a Terraform state lock left by a run that is over (never while one may
    /// be alive).
    Unlock(unlock::UnlockArgs),
    /// Delivery metrics (DORA) of a project's environments: deployment frequency, lead
    /// time, change failure rate, time to restore.
    Report(report::ReportArgs),
    /// Deploy the release that last succeeded before the current one (or --to RELEASE).
    Rollback(rollback::RollbackArgs),
    /// What deploying a release to an environment would change, without writing anything.
    Diff(diff::DiffArgs),
    /// Check the configuration and project manifests, listing every problem found.
    Validate(validate::ValidateArgs),
    /// Write a starting configuration from weco-deploy's `.wellcome_project` (YAML or
    /// JSON): its tables, ECR-tag pins, ECS services found by their tags, its role.
    Init(init::InitArgs),
    /// Print a shell's completions for relctl.
    Completions(completions::CompletionsArgs),
    /// Print relctl's manual page (or, with --dir, write one per command).
    Man(completions::ManArgs),
    /// Show every environment: desired and running release, phase, since when.
    Status(status::StatusArgs),
    /// What the controller says of an environment: the deployment now, its last run's
    /// output, its recent history.
    Logs(logs::LogsArgs),
    /// Print the least-privilege IAM policy for this configuration (a role's, or an
    /// environment's `role_arn`'s).
    IamPolicy(iam_policy::IamPolicyArgs),
    /// Container health check: exit 0 when the controller's /healthz answers 200.
    Health(health::HealthArgs),
    /// Internal: the work of one command (Terraform) run, started by the controller.
    #[command(hide = true)]
    Runner,
}

/// JSON text with every character a terminal would obey written as its `\uXXXX`
/// escape: the same JSON value, exactly (serde_json escapes only C0 itself). Such
/// characters can only be inside strings, where the escape means the same.
fn json_for_terminals(text: &str) -> std::borrow::Cow<'_, str> {
    use crate::model::shown::is_hazard;
    if !text.chars().any(|c| is_hazard(c) && c != '\n') {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if is_hazard(c) && c != '\n' {
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Table,
    /// A table with full release ids and times.
    Wide,
    Json,
}

impl Output {
    /// Prints `value` as pretty JSON on stdout when JSON was asked for; true if it did.
    pub fn json<T: serde::Serialize>(self, value: &T) -> Result<bool, Failure> {
        if self == Output::Json {
            use std::io::Write as _;
            let text = serde_json::to_string_pretty(value)?;
            let _ = writeln!(std::io::stdout(), "{}", json_for_terminals(&text));
            return Ok(true);
        }
        Ok(false)
    }
}

/// A failure to report to the person at the terminal, with the exit code it deserves.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub code: u8,
}

impl Failure {
    pub fn refused(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            code: 1,
        }
    }
}

impl<E: std::error::Error> From<E> for Failure {
    fn from(error: E) -> Self {
        Self::refused(error.to_string())
    }
}

pub async fn run(cli: Cli) -> ExitCode {
    let cli = match cli.command {
        Command::Runner => return runner().await,
        Command::Health(args) => return exit(health::run(cli.config.as_deref(), args).await),
        Command::Validate(args) => return exit(validate::run(cli.config.as_deref(), args)),
        Command::Init(args) => return exit(init::run(args)),
        Command::Completions(args) => return exit(completions::completions(args)),
        Command::Man(args) => return exit(completions::man(args)),
        _ => cli,
    };
    let output = cli.output;
    table::init(output == Output::Wide, cli.color);
    let config = match Config::load(cli.config.as_deref()) {
        Ok(config) => Arc::new(config),
        Err(error) => {
            note!("error: {error}");
            return ExitCode::from(1);
        }
    };
    for name in crate::config::load::ignored_env() {
        note!("warning: {name} is not a relctl configuration key; ignored");
    }
    crate::telemetry::init(config.log.format);
    if let Command::IamPolicy(args) = &cli.command
        && !args.needs_aws(&config)
    {
        return exit(iam_policy::offline(&config, args));
    }
    let sdk = crate::aws::load(&config).await;
    if let Command::Controller = cli.command {
        return exit(controller::run(config, &sdk).await);
    }
    let aws = lookup::Aws::new(&config, sdk);
    let result = match cli.command {
        Command::Controller => Ok(()),
        Command::Setup => setup::run(&config, &aws).await,
        Command::Release(command) => release::run(&config, &aws, command, output).await,
        Command::Deploy(args) => deploy::run(&config, &aws, args).await,
        Command::Approve(args) => approve::run(&config, &aws, args).await,
        Command::Wait(args) => wait::run(&config, &aws, args).await,
        Command::History(args) => history::run(&config, &aws, args, output).await,
        Command::Cancel(args) => cancel::run(&config, &aws, args).await,
        Command::Retry(args) => retry::run(&config, &aws, args).await,
        Command::Pause(args) => pause::pause(&config, &aws, args).await,
        Command::Resume(args) => pause::resume(&config, &aws, args).await,
        Command::Unlock(args) => unlock::run(&config, &aws, args).await,
        Command::Report(args) => report::run(&config, &aws, args, output).await,
        Command::Rollback(args) => rollback::run(&config, &aws, args).await,
        Command::Diff(args) => diff::run(&config, &aws, args, output).await,
        Command::Status(args) => status::run(&config, &aws, args, output).await,
        Command::Logs(args) => logs::run(&config, &aws, args, output).await,
        Command::IamPolicy(args) => iam_policy::run(&config, &aws, args).await,
        Command::Health(_)
        | Command::Validate(_)
        | Command::Init(_)
        | Command::Completions(_)
        | Command::Man(_)
        | Command::Runner => Ok(()),
    };
    exit(result)
}

/// `relctl runner`: the job comes in the environment from the controller; the exit
/// status is the commands' own (see [`crate::runner`]), for the controller to read.
async fn runner() -> ExitCode {
    let job = match std::env::var(crate::runner::JOB_ENV)
        .map_err(|e| e.to_string())
        .and_then(|text| serde_json::from_str(&text).map_err(|e| e.to_string()))
    {
        Ok(job) => job,
        Err(error) => {
            note!("error: relctl runner is started by the controller ({error})");
            return ExitCode::from(2);
        }
    };
    let code = crate::runner::run(job).await;
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

fn exit(result: Result<(), Failure>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            note!("error: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::json_for_terminals;

    #[test]
    fn json_output_escapes_what_a_terminal_would_obey_and_stays_the_same_value() {
        let value = serde_json::json!({ "d": "a\u{9b}31m\u{7f}b\u{202e}c\u{1b}]0;x\u{7}" });
        let text = serde_json::to_string_pretty(&value).unwrap();
        let shown = json_for_terminals(&text);
        assert!(
            !shown
                .chars()
                .any(|c| crate::model::shown::is_hazard(c) && c != '\n'),
            "{shown:?}"
        );
        assert!(
            shown.contains("\\u009b") && shown.contains("\\u202e"),
            "{shown}"
        );
        let back: serde_json::Value = serde_json::from_str(&shown).unwrap();
        assert_eq!(back, value);
    }
}
