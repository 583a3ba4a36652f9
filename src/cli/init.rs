//! `relctl init --from .wellcome_project [--out relctl.toml] [--force]`: a starting
//! configuration for the projects a weco-deploy manifest (its YAML, or RFC 013's JSON)
//! names, deployed the way weco-deploy deployed them — weco-deploy's own releases table
//! (`wellcome-releases-{project}`), floating ECR tags (`env.{environment}`), and the ECS
//! services found by their `deployment:service` / `deployment:env` tags — with the
//! project's role assumed in each environment. It says what it inferred, is checked by
//! relctl's own configuration loader before it is written, and never replaces a file
//! without `--force`.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    io::Write as _,
    path::{Path, PathBuf},
};

use clap::Args;
use serde_json::Value;

use super::Failure;
use crate::{config::Config, model::manifest};

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The project manifest: weco-deploy 5.x's YAML, or RFC 013's JSON.
    #[arg(long, default_value = ".wellcome_project")]
    pub from: PathBuf,
    /// Where the configuration is written.
    #[arg(long, default_value = "relctl.toml")]
    pub out: PathBuf,
    /// Replace `--out` if it exists.
    #[arg(long)]
    pub force: bool,
    /// Each environment's ECS cluster (the manifest does not name it): `{project}` and
    /// `{environment}` are filled in.
    #[arg(long, default_value = "{project}-{environment}")]
    pub cluster: String,
    /// The ECR namespace of the images (weco-deploy's).
    #[arg(long, default_value = "uk.ac.wellcome")]
    pub namespace: String,
}

/// weco-deploy's Region when a project names none.
const WECO_REGION: &str = "eu-west-1";

pub fn run(args: InitArgs) -> Result<(), Failure> {
    let shown = args.from.display().to_string();
    let text = std::fs::read_to_string(&args.from)
        .map_err(|e| Failure::refused(format!("{shown}: cannot read: {e}")))?;
    let read = manifest::read::Read::parse(&text)
        .map_err(|e| Failure::refused(format!("{shown}: {e}")))?;
    let problems = manifest::check(&read.value, None);
    if !problems.is_empty() {
        for problem in &problems {
            note!("{shown}: {}", read.say(problem));
        }
        return Err(Failure::refused(format!(
            "{} in {shown}; nothing was written",
            crate::config::count(problems.len())
        )));
    }
    if args.out.exists() && !args.force {
        return Err(Failure::refused(format!(
            "{} exists; nothing was written (--force replaces it)",
            args.out.display()
        )));
    }
    let (toml, inferred) = configuration(&read.value, &args, &shown)?;
    if let Err(e) = Config::from_toml(&toml) {
        return Err(Failure::refused(format!(
            "the configuration written from {shown} does not load ({e}); nothing was written"
        )));
    }
    write(&args.out, &toml)?;
    for line in inferred {
        note!("{line}");
    }
    note!(
        "wrote {}; check it with `relctl validate --config {} --manifest {shown}`, then `relctl setup` adopts the tables",
        args.out.display(),
        args.out.display()
    );
    Ok(())
}

/// A TOML string, quoted and escaped.
fn quoted(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

fn text<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str)
}

/// The configuration's text, and what was inferred (for the person running it).
fn configuration(
    manifest: &Value,
    args: &InitArgs,
    shown: &str,
) -> Result<(String, Vec<String>), Failure> {
    let projects = manifest.as_object().map(|m| m.iter()).into_iter().flatten();
    let regions: Vec<&str> = projects
        .clone()
        .map(|(_, p)| text(p, "aws_region_name").unwrap_or(WECO_REGION))
        .collect();
    let region = regions.first().copied().unwrap_or(WECO_REGION);
    let mut out = String::new();
    let mut inferred = Vec::new();
    let _ = writeln!(
        out,
        "# relctl's configuration, written by `relctl init --from {shown}` from weco-deploy's\n\
         # project manifest. Each project keeps weco-deploy's releases table and deploys as\n\
         # weco-deploy did: floating ECR tags, ECS services found by their tags.\n\n\
         [aws]\nregion = {}\n",
        quoted(region)
    );
    for (id, project) in projects {
        let name = text(project, "name").unwrap_or(id);
        let role = text(project, "role_arn");
        let project_region = text(project, "aws_region_name").unwrap_or(WECO_REGION);
        let account = text(project, "account_id")
            .map(str::to_owned)
            .or_else(|| role.and_then(crate::iam::account_of).map(str::to_owned));
        let table = format!("wellcome-releases-{id}");
        let _ = writeln!(
            out,
            "[[projects]]\nid = {}\nname = {}\n# weco-deploy's table, adopted as it is.\nreleases_table = {}",
            quoted(id),
            quoted(name),
            quoted(&table)
        );
        inferred.push(format!(
            "{id}: releases in weco-deploy's table {table} (`relctl setup` adds the stream and index relctl needs, changing no item)"
        ));
        match &account {
            Some(account) => {
                let template = format!(
                    "{account}.dkr.ecr.{project_region}.amazonaws.com/{}/{{service}}:{{tag}}",
                    args.namespace
                );
                let _ = writeln!(out, "image_uri_template = {}", quoted(&template));
                inferred.push(format!(
                    "{id}: images {template} (account {account} from {}, --namespace {})",
                    if text(project, "account_id").is_some() {
                        "account_id"
                    } else {
                        "role_arn"
                    },
                    args.namespace
                ));
            }
            None => inferred.push(format!(
                "{id}: no account_id or role_arn, so no image_uri_template: releases must name full image URIs"
            )),
        }
        let repositories = repositories(project);
        if !repositories.is_empty() {
            let _ = writeln!(
                out,
                "\n# weco-deploy's image repositories and the services each feeds; relctl finds\n\
                 # each ECS service by its deployment:service tag (the image's id) and\n\
                 # deployment:env tag, as weco-deploy did."
            );
            for (repository, services) in &repositories {
                let _ = writeln!(out, "#   {repository}: {}", services.join(", "));
            }
        }
        for env in project
            .get("environments")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let env_id = text(env, "id").unwrap_or_default();
            let env_name = text(env, "name").unwrap_or(env_id);
            let cluster = args
                .cluster
                .replace("{project}", id)
                .replace("{environment}", env_id);
            let _ = writeln!(
                out,
                "\n[[projects.environments]]\nid = {}\nname = {}",
                quoted(env_id),
                quoted(env_name)
            );
            if let Some(role) = role {
                let _ = writeln!(out, "role_arn = {}", quoted(role));
            }
            if project_region != region {
                let _ = writeln!(out, "region = {}", quoted(project_region));
            }
            let _ = writeln!(
                out,
                "pin = {{ kind = \"ecr_tag\" }}\nactuator = {{ kind = \"ecs\", cluster = {}, discover = \"tags\" }}",
                quoted(&cluster)
            );
            inferred.push(format!(
                "{id}/{env_id}: ECR tag env.{env_id}, ECS cluster {cluster} (not in the manifest: --cluster sets it){}",
                role.map(|r| format!(", as {r}")).unwrap_or_default()
            ));
        }
        out.push('\n');
    }
    Ok((out, inferred))
}

/// Image repository id → the services it feeds.
fn repositories(project: &Value) -> BTreeMap<String, Vec<String>> {
    project
        .get("image_repositories")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| {
            let id = text(r, "id")?;
            let services = r
                .get("services")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|s| text(s, "id").map(str::to_owned))
                .collect();
            Some((id.to_owned(), services))
        })
        .collect()
}

/// Writes `text` to `path` whole or not at all (a temporary file beside it, renamed).
fn write(path: &Path, text: &str) -> Result<(), Failure> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    file.write_all(text.as_bytes())?;
    file.persist(path)
        .map_err(|e| Failure::refused(format!("{}: {}", path.display(), e.error)))?;
    Ok(())
}
