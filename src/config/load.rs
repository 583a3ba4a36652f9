//! Loading the configuration so that every problem is found at once: each TOML source is
//! parsed on its own (a syntax error names `file:line:column`), the layers are merged
//! with figment, and every section, project and environment is decoded on its own, so
//! one bad value does not hide the next. Each problem names its real key path
//! (`projects[0].environments[2].actuator`), and where the value came from a TOML
//! source, the line it is on.

use std::path::Path;

use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{Config, ConfigError, Environment, Project};

/// The top-level sections; an environment variable `RELCTL_X…` whose first segment is
/// none of these (e.g. `RELCTL_EXE`, set by a wrapper script) is not configuration.
const SECTIONS: &[&str] = &[
    "aws",
    "tables",
    "controller",
    "notify",
    "lease",
    "http",
    "log",
    "projects",
];

/// One TOML text and the name problems in it are reported under.
struct Source {
    name: String,
    text: String,
}

/// Defaults → `path` → `RELCTL_CONFIG_TOML` → `RELCTL_*` environment variables.
pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
    let mut sources = Vec::new();
    let mut problems = Vec::new();
    if let Some(path) = path {
        match std::fs::read_to_string(path) {
            Ok(text) => sources.push(Source {
                name: path.display().to_string(),
                text,
            }),
            Err(error) => problems.push(format!("{}: cannot read: {error}", path.display())),
        }
    }
    if let Ok(text) = std::env::var("RELCTL_CONFIG_TOML") {
        sources.push(Source {
            name: "RELCTL_CONFIG_TOML".into(),
            text,
        });
    }
    build(sources, problems, true)
}

/// A TOML document over the defaults, nothing else; for tests and examples.
pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
    let source = Source {
        name: "configuration".into(),
        text: text.to_owned(),
    };
    build(vec![source], Vec::new(), false)
}

/// `RELCTL_*` variables with meanings of their own: where the configuration is, a
/// test failpoint, and what a Terraform/command run is handed.
const NOT_CONFIG: &[&str] = &[
    "config",
    "config_toml",
    "failpoint",
    "release_id",
    "project",
    "environment",
    "images",
];

/// `RELCTL_*` environment variables that are not configuration keys: ignored, and
/// worth a warning (a typo, or a wrapper script's own variable).
pub fn ignored_env() -> Vec<String> {
    std::env::vars_os()
        .filter_map(|(name, _)| {
            let name = name.into_string().ok()?;
            let key = name.strip_prefix("RELCTL_")?.to_lowercase();
            (!is_config_env(&key) && !NOT_CONFIG.contains(&key.as_str())).then_some(name)
        })
        .collect()
}

fn is_config_env(key: &str) -> bool {
    if key == "log_format" {
        return true;
    }
    let section = key.split("__").next().unwrap_or_default();
    SECTIONS.contains(&section)
}

fn build(
    sources: Vec<Source>,
    mut problems: Vec<String>,
    env: bool,
) -> Result<Config, ConfigError> {
    let mut figment = Figment::from(Serialized::defaults(Config::default()));
    for source in &sources {
        match toml::from_str::<toml::Table>(&source.text) {
            Ok(_) => figment = figment.merge(Toml::string(&source.text)),
            Err(error) => problems.push(syntax_problem(source, &error)),
        }
    }
    if env {
        figment = figment.merge(
            Env::prefixed("RELCTL_")
                .filter(|key| is_config_env(&key.as_str().to_lowercase()))
                // RELCTL_LOG_FORMAT reads better than RELCTL_LOG__FORMAT; accept both.
                .map(|key| {
                    if key == "log_format" {
                        "log.format".into()
                    } else {
                        key.as_str().replace("__", ".").into()
                    }
                }),
        );
    }
    if !problems.is_empty() {
        return Err(ConfigError::Invalid(problems));
    }
    let value: Value = match figment.extract() {
        Ok(value) => value,
        Err(error) => {
            let problems = error.into_iter().map(|e| e.to_string()).collect();
            return Err(ConfigError::Invalid(problems));
        }
    };
    let mut decoder = Decoder {
        sources: &sources,
        problems,
    };
    let config = decoder.config(value);
    let mut problems = decoder.problems;
    match config {
        Some(config) => {
            config.check(&mut problems);
            if problems.is_empty() {
                return Ok(config);
            }
        }
        None if problems.is_empty() => problems.push("the configuration did not decode".into()),
        None => {}
    }
    Err(ConfigError::Invalid(problems))
}

fn syntax_problem(source: &Source, error: &toml::de::Error) -> String {
    let message = error.message().trim();
    match error.span() {
        Some(span) => {
            let (line, column) = line_column(&source.text, span.start);
            format!("{}:{line}:{column}: {message}", source.name)
        }
        None => format!("{}: {message}", source.name),
    }
}

/// 1-based line and column of byte `offset`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// One step of a key path.
#[derive(Debug, Clone)]
enum Segment {
    Key(String),
    Index(usize),
}

fn render(path: &[Segment]) -> String {
    let mut out = String::new();
    for segment in path {
        match segment {
            Segment::Key(key) if out.is_empty() => out.push_str(key),
            Segment::Key(key) => {
                out.push('.');
                out.push_str(key);
            }
            Segment::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

struct Decoder<'a> {
    sources: &'a [Source],
    problems: Vec<String>,
}

impl Decoder<'_> {
    /// The whole configuration, or None where a part failed (its problems recorded).
    fn config(&mut self, value: Value) -> Option<Config> {
        let Value::Object(mut top) = value else {
            self.problems
                .push("the configuration is not a table".into());
            return None;
        };
        let unknown: Vec<String> = top
            .keys()
            .filter(|k| !SECTIONS.contains(&k.as_str()))
            .cloned()
            .collect();
        for key in unknown {
            self.report(
                &[Segment::Key(key.clone())],
                &format!(
                    "unknown section `{key}`; expected one of {}",
                    SECTIONS.join(", ")
                ),
            );
        }
        let mut take = |name: &str| top.remove(name).unwrap_or(Value::Null);
        let (aws, tables, controller, lease, http, log, projects) = (
            take("aws"),
            take("tables"),
            take("controller"),
            take("lease"),
            take("http"),
            take("log"),
            take("projects"),
        );
        let notify = match take("notify") {
            Value::Null => Some(Default::default()),
            value => self.section("notify", value),
        };
        let aws = self.section("aws", aws);
        let tables = self.section("tables", tables);
        let controller = self.section("controller", controller);
        let lease = self.section("lease", lease);
        let http = self.section("http", http);
        let log = self.section("log", log);
        let projects = self.projects(projects);
        Some(Config {
            aws: aws?,
            tables: tables?,
            controller: controller?,
            lease: lease?,
            http: http?,
            log: log?,
            notify: notify?,
            projects: projects?,
        })
    }

    fn section<T: DeserializeOwned>(&mut self, name: &str, value: Value) -> Option<T> {
        self.decode(vec![Segment::Key(name.into())], value)
    }

    fn projects(&mut self, value: Value) -> Option<Vec<Project>> {
        let at = vec![Segment::Key("projects".into())];
        let items = match value {
            Value::Null => return Some(Vec::new()),
            Value::Array(items) => items,
            _ => {
                self.report(&at, "must be a list of [[projects]] tables");
                return None;
            }
        };
        let mut projects = Vec::new();
        let mut whole = true;
        for (i, mut item) in items.into_iter().enumerate() {
            let mut at = at.clone();
            at.push(Segment::Index(i));
            let environments = item
                .as_object_mut()
                .and_then(|o| o.remove("environments"))
                .unwrap_or(Value::Null);
            let project: Option<Project> = self.decode(at.clone(), item);
            at.push(Segment::Key("environments".into()));
            let environments = self.environments(at, environments);
            match (project, environments) {
                (Some(mut project), Some(environments)) => {
                    project.environments = environments;
                    projects.push(project);
                }
                _ => whole = false,
            }
        }
        whole.then_some(projects)
    }

    fn environments(&mut self, at: Vec<Segment>, value: Value) -> Option<Vec<Environment>> {
        let items = match value {
            Value::Null => return Some(Vec::new()),
            Value::Array(items) => items,
            _ => {
                self.report(&at, "must be a list of [[projects.environments]] tables");
                return None;
            }
        };
        let mut environments = Vec::new();
        let mut whole = true;
        for (j, item) in items.into_iter().enumerate() {
            let mut at = at.clone();
            at.push(Segment::Index(j));
            match self.decode(at, item) {
                Some(environment) => environments.push(environment),
                None => whole = false,
            }
        }
        whole.then_some(environments)
    }

    fn decode<T: DeserializeOwned>(&mut self, at: Vec<Segment>, value: Value) -> Option<T> {
        match serde_path_to_error::deserialize::<_, T>(value) {
            Ok(decoded) => Some(decoded),
            Err(error) => {
                let mut path = at;
                for segment in error.path().iter() {
                    match segment {
                        serde_path_to_error::Segment::Seq { index } => {
                            path.push(Segment::Index(*index));
                        }
                        serde_path_to_error::Segment::Map { key } => {
                            path.push(Segment::Key(key.clone()));
                        }
                        serde_path_to_error::Segment::Enum { .. }
                        | serde_path_to_error::Segment::Unknown => {}
                    }
                }
                self.report(&path, &error.into_inner().to_string());
                None
            }
        }
    }

    fn report(&mut self, path: &[Segment], message: &str) {
        let key = render(path);
        let problem = match self.locate(path) {
            Some(place) => format!("{place}: {key}: {message}"),
            None => format!("{key}: {message}"),
        };
        self.problems.push(problem);
    }

    /// `name:line` of the deepest part of `path` found in a TOML source (the last
    /// source that has it: later sources override earlier ones).
    fn locate(&self, path: &[Segment]) -> Option<String> {
        self.sources.iter().rev().find_map(|source| {
            let offset = span_of(&source.text, path)?;
            let (line, _) = line_column(&source.text, offset);
            Some(format!("{}:{line}", source.name))
        })
    }
}

/// Byte offset of the deepest item of `path` that `text` holds.
fn span_of(text: &str, path: &[Segment]) -> Option<usize> {
    let document = toml_edit::ImDocument::parse(text).ok()?;
    let mut found = None;
    let mut table: Option<&dyn toml_edit::TableLike> = Some(document.as_table());
    let mut array: Option<Vec<Element<'_>>> = None;
    for segment in path {
        match segment {
            Segment::Key(key) => {
                let (k, next) = table.take()?.get_key_value(key)?;
                found = k.span().map(|s| s.start).or(found);
                (table, array) = descend(next);
            }
            Segment::Index(i) => {
                let element = array.take()?.into_iter().nth(*i)?;
                found = element.span().or(found);
                match element {
                    Element::Table(t) => {
                        table = Some(t);
                        array = None;
                    }
                    Element::Value(v) => {
                        (table, array) = descend_value(v);
                    }
                }
            }
        }
    }
    found
}

enum Element<'a> {
    Table(&'a toml_edit::Table),
    Value(&'a toml_edit::Value),
}

impl Element<'_> {
    fn span(&self) -> Option<usize> {
        match self {
            Self::Table(t) => t.span().map(|s| s.start),
            Self::Value(v) => v.span().map(|s| s.start),
        }
    }
}

type Descent<'a> = (
    Option<&'a dyn toml_edit::TableLike>,
    Option<Vec<Element<'a>>>,
);

fn descend(item: &toml_edit::Item) -> Descent<'_> {
    match item {
        toml_edit::Item::Table(t) => (Some(t), None),
        toml_edit::Item::ArrayOfTables(a) => (None, Some(a.iter().map(Element::Table).collect())),
        toml_edit::Item::Value(v) => descend_value(v),
        toml_edit::Item::None => (None, None),
    }
}

fn descend_value(value: &toml_edit::Value) -> Descent<'_> {
    match value {
        toml_edit::Value::InlineTable(t) => (Some(t), None),
        toml_edit::Value::Array(a) => (None, Some(a.iter().map(Element::Value).collect())),
        _ => (None, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<String> {
        match from_toml(text) {
            Ok(_) => Vec::new(),
            Err(ConfigError::Invalid(problems)) => problems,
        }
    }

    #[test]
    fn a_syntax_error_names_the_line_and_column() {
        let found = problems("[controller]\nconcurrency = 8\nbroken = { a = 1,\n b = 2 }\n");
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("configuration:3:"), "{found:?}");
    }

    #[test]
    fn type_errors_in_two_environments_are_both_reported_with_their_key_paths() {
        let text = r#"
[[projects]]
id = "a"
name = "A"

[[projects.environments]]
id = "stage"
name = "Staging"
actuator = { kind = "nosuch" }

[[projects.environments]]
id = "prod"
name = "Production"
self_heal = "yes"
"#;
        let found = problems(text);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            found[0].starts_with("configuration:9: projects[0].environments[0].actuator"),
            "{found:?}"
        );
        assert!(
            found[1].starts_with("configuration:14: projects[0].environments[1].self_heal"),
            "{found:?}"
        );
    }

    #[test]
    fn a_bad_section_does_not_hide_a_bad_project() {
        let text = "[controller]\nconcurrency = \"many\"\n[[projects]]\nid = \"a\"\nnmae = \"A\"\n";
        let found = problems(text);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].contains("controller.concurrency"), "{found:?}");
        assert!(
            found[1].contains("projects[0]") && found[1].contains("nmae"),
            "{found:?}"
        );
    }

    #[test]
    fn environment_variables_outside_the_sections_are_not_configuration() {
        assert!(!is_config_env("exe"));
        assert!(!is_config_env("release_id"));
        assert!(is_config_env("controller__concurrency"));
        assert!(is_config_env("log_format"));
    }

    #[test]
    fn line_and_column_count_from_one() {
        assert_eq!(line_column("ab\ncd", 4), (2, 2));
        assert_eq!(line_column("ab", 0), (1, 1));
    }
}
