//! `relctl release create|update|list|show`: one file per subcommand; what create and
//! update share is in `new.rs`.

mod create;
mod list;
mod new;
mod show;
mod update;

use clap::Subcommand;

use super::{Failure, Output, lookup::Aws};
use crate::config::Config;

#[derive(Debug, Subcommand)]
pub enum ReleaseCommand {
    /// Write a new release from a label's images in SSM and/or explicit --service pairs.
    Create(create::CreateArgs),
    /// A new release from an existing one with some services' images swapped.
    Update(update::UpdateArgs),
    /// The releases of a project, newest first, with where each runs now.
    List {
        #[arg(long)]
        project: String,
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// One release, with its deployments and their status.
    Show { release_id: String },
}

pub async fn run(
    config: &Config,
    aws: &Aws,
    command: ReleaseCommand,
    output: Output,
) -> Result<(), Failure> {
    let store = aws.releases();
    match command {
        ReleaseCommand::Create(args) => create::run(config, aws, &store, args).await,
        ReleaseCommand::Update(args) => update::run(config, aws, &store, args).await,
        ReleaseCommand::List { project, limit } => {
            list::run(config, aws, &store, &project, limit, output).await
        }
        ReleaseCommand::Show { release_id } => {
            show::run(config, aws, &store, &release_id, output).await
        }
    }
}
