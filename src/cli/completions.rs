//! `relctl completions bash|zsh|fish|elvish|powershell` and `relctl man [--dir DIR]`:
//! shell completions and manual pages, generated from the command line's own
//! definition, so they never lag behind it (CI generates both).

use std::path::PathBuf;

use clap::{Args, CommandFactory};

use super::{Cli, Failure};

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write `relctl.1` and a page per command (`relctl-deploy.1`, …) here, instead
    /// of printing `relctl.1`.
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

pub fn completions(args: CompletionsArgs) -> Result<(), Failure> {
    let mut command = Cli::command();
    clap_complete::generate(args.shell, &mut command, "relctl", &mut std::io::stdout());
    Ok(())
}

pub fn man(args: ManArgs) -> Result<(), Failure> {
    let command = Cli::command();
    let Some(dir) = args.dir else {
        clap_mangen::Man::new(command).render(&mut std::io::stdout())?;
        return Ok(());
    };
    std::fs::create_dir_all(&dir)?;
    let mut pages = vec![("relctl".to_owned(), command.clone())];
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("relctl-{}", sub.get_name());
        pages.push((name.clone(), sub.clone().name(name)));
    }
    for (name, page) in &pages {
        let mut text = Vec::new();
        clap_mangen::Man::new(page.clone()).render(&mut text)?;
        std::fs::write(dir.join(format!("{name}.1")), text)?;
    }
    note!("wrote {} manual pages to {}", pages.len(), dir.display());
    Ok(())
}
