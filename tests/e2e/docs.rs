//! What README.md and the shipped files show works as written: every ```toml block in
//! README and every `*.toml` under `config/` and `deploy/` loads through the real
//! loader; the example configuration loads the way `deploy/terraform` hands it to the
//! ECS task (`RELCTL_CONFIG_TOML` beside the module's own `RELCTL_*` variables); and
//! README's command transcripts are run by trycmd.

use std::path::{Path, PathBuf};

use relctl::config::Config;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn toml_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match &mut current {
            None if line.trim_start() == "```toml" => current = Some(String::new()),
            Some(block) if line.trim_start() == "```" => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
            None => {}
        }
    }
    blocks
}

fn shipped_toml(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            shipped_toml(&path, found);
        } else if path.extension().is_some_and(|e| e == "toml") {
            found.push(path);
        }
    }
}

#[test]
fn every_toml_block_in_the_readme_loads() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let blocks = toml_blocks(&readme);
    assert!(!blocks.is_empty(), "README shows configuration");
    for (i, block) in blocks.iter().enumerate() {
        if let Err(error) = Config::from_toml(block) {
            panic!("README.md toml block {}: {error}\n{block}", i + 1);
        }
    }
}

#[test]
fn every_shipped_toml_file_loads() {
    let mut files = Vec::new();
    for dir in ["config", "deploy"] {
        shipped_toml(&root().join(dir), &mut files);
    }
    assert!(files.len() >= 3, "{files:?}");
    for file in &files {
        if let Err(error) = Config::load(Some(file)) {
            panic!("{}: {error}", file.display());
        }
    }
}

#[test]
fn the_demo_configuration_loads_with_its_terraform_line_uncommented() {
    let demo = std::fs::read_to_string(root().join("config/demo.toml")).unwrap();
    let line = "# actuator = { kind = \"terraform\"";
    assert!(
        demo.contains(line),
        "the line README tells people to uncomment"
    );
    let config =
        Config::from_toml(&demo.replace(line, "actuator = { kind = \"terraform\"")).unwrap();
    let prod = &config.projects[0].environments[1];
    assert_eq!(prod.actuator.kind(), "terraform");
}

/// `{ name = "RELCTL_…", value = "…" }` literals of the module's task definition, and
/// its `secrets` (`valueFrom`) as the value the secret holds (`secret_string`).
fn task_environment() -> Vec<(String, String)> {
    let ecs = std::fs::read_to_string(root().join("deploy/terraform/ecs.tf")).unwrap();
    let secret = ecs
        .lines()
        .find_map(|l| l.trim().strip_prefix("secret_string = "))
        .map(|v| v.trim().to_owned());
    ecs.lines()
        .filter_map(|line| {
            let line = line.trim().trim_end_matches(',');
            let rest = line.strip_prefix("{ name = \"")?;
            if let Some((name, _)) =
                rest.split_once("\", valueFrom = \"${aws_secretsmanager_secret.config.arn}:::")
            {
                return Some((name.to_owned(), secret.clone()?));
            }
            let (name, rest) = rest.split_once("\", value = ")?;
            let value = rest.strip_suffix(" }")?;
            Some((name.to_owned(), value.to_owned()))
        })
        .collect()
}

#[test]
fn the_example_configuration_loads_as_the_ecs_task_is_given_it() {
    let main = std::fs::read_to_string(root().join("deploy/examples/main.tf")).unwrap();
    assert!(main.contains("config_toml        = file(\"${path.module}/relctl.toml\")"));
    let environment = task_environment();
    assert!(
        environment
            .iter()
            .any(|(name, value)| name == "RELCTL_CONFIG_TOML" && value == "var.config_toml"),
        "{environment:?}"
    );
    let example = std::fs::read_to_string(root().join("deploy/examples/relctl.toml")).unwrap();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_relctl"));
    command.arg("validate").env_remove("RELCTL_CONFIG");
    for (name, value) in &environment {
        match value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
            Some(literal) => command.env(name, literal),
            None if name == "RELCTL_CONFIG_TOML" => command.env(name, &example),
            // A table name from the module: any name will do here.
            None => command.env(name, "from-the-module"),
        };
    }
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("configuration OK: 3 projects, 7 environments"),
        "{stdout}"
    );
}

#[test]
fn the_readme_transcripts_are_what_relctl_prints() {
    trycmd::TestCases::new()
        .env("NO_COLOR", "1")
        .case("README.md");
}

#[test]
fn the_example_policies_are_what_relctl_prints_for_the_example_configuration() {
    let main = std::fs::read_to_string(root().join("deploy/examples/main.tf")).unwrap();
    let cases: [(&str, &[&str]); 4] = [
        ("controller", &["--role", "controller"]),
        ("deployer", &["--role", "deployer"]),
        ("approver", &["--role", "approver"]),
        ("tre-prod", &["--environment", "tre/prod"]),
    ];
    for (name, args) in cases {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_relctl"))
            .args(["--config", "deploy/examples/relctl.toml", "iam-policy"])
            .args(["--account", "111111111111", "--region", "eu-west-2"])
            .args(args)
            .current_dir(root())
            .env_remove("RELCTL_CONFIG")
            .env("RELCTL_TABLES__RELEASES", "relctl-releases")
            .env("RELCTL_TABLES__STATE", "relctl-state")
            .env("RELCTL_TABLES__APPROVALS", "relctl-approvals")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let file = format!("deploy/examples/policies/{name}.json");
        let committed = std::fs::read_to_string(root().join(&file)).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            committed,
            "{file} is not what relctl prints for relctl.toml: run scripts/example-policies"
        );
        if name != "tre-prod" {
            assert!(
                main.contains(&format!("file(\"${{path.module}}/policies/{name}.json\")")),
                "main.tf passes {file} to the module"
            );
        }
    }
}

#[test]
fn the_readme_lists_the_rate_limits_relctl_applies() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    for quota in relctl::aws::limit::quotas::DEFAULTS {
        let operations = if quota.operations.is_empty() {
            "(all others)".to_owned()
        } else {
            quota.operations.join(", ")
        };
        let row = format!(
            "| {} | {operations} | {} | {} | {} |",
            quota.service, quota.rate, quota.burst, quota.source
        );
        assert!(readme.contains(&row), "README does not list {row}");
    }
}
