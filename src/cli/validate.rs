//! `relctl validate [--config ..] [--manifest .wellcome_project ...]`: checks the
//! configuration and project manifests offline and lists every problem found.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use clap::Args;

use super::Failure;
use crate::{config::Config, model::manifest};

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Project manifests to check (`.wellcome_project`: RFC 013's JSON or weco-deploy
    /// 5.x's YAML), repeatable.
    #[arg(long = "manifest")]
    pub manifests: Vec<PathBuf>,
}

pub fn run(config_path: Option<&Path>, args: ValidateArgs) -> Result<(), Failure> {
    let mut problems = Vec::new();
    let given = config_path.is_some() || std::env::var_os("RELCTL_CONFIG_TOML").is_some();
    let config = if given {
        match Config::load(config_path) {
            Ok(config) => Some(config),
            Err(error) => {
                problems.extend(error.problems().iter().cloned());
                None
            }
        }
    } else {
        problems.push(
            "no configuration given: pass --config FILE, or set RELCTL_CONFIG or RELCTL_CONFIG_TOML"
                .into(),
        );
        None
    };
    if config.as_ref().is_some_and(|c| c.projects.is_empty()) {
        problems.push("projects: none configured; relctl would deploy nothing".into());
    }
    let configured: BTreeMap<String, Vec<String>> = config
        .iter()
        .flat_map(|c| &c.projects)
        .map(|p| {
            (
                p.id.clone(),
                p.environments.iter().map(|e| e.id.clone()).collect(),
            )
        })
        .collect();
    for path in &args.manifests {
        let shown = path.display();
        match std::fs::read_to_string(path) {
            Err(e) => problems.push(format!("{shown}: cannot read: {e}")),
            Ok(text) => match manifest::read::Read::parse(&text) {
                Err(e) => problems.push(format!("{shown}: {e}")),
                Ok(read) => problems.extend(
                    manifest::check(&read.value, config.as_ref().map(|_| &configured))
                        .iter()
                        .map(|p| format!("{shown}: {}", read.say(p))),
                ),
            },
        }
    }
    if problems.is_empty() {
        out!(
            "configuration OK: {} projects, {} environments; {} manifests OK",
            configured.len(),
            configured.values().map(Vec::len).sum::<usize>(),
            args.manifests.len()
        );
        return Ok(());
    }
    for problem in &problems {
        out!("{problem}");
    }
    Err(Failure::refused(format!(
        "{} found",
        crate::config::count(problems.len())
    )))
}
