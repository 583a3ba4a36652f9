//! Reading a `.wellcome_project` in either form: RFC 013's JSON, or weco-deploy 5.x's
//! YAML. Both become the same JSON value for [`super::check`]; the YAML keeps the line
//! of every node, so a problem names the line it is on. YAML scalars stay strings (as
//! weco-deploy's loader took every field of the manifest to be one), keys may not
//! repeat, and anchors and tags are refused — a manifest needs none of them.

use std::collections::HashMap;

use marked_yaml::{LoaderOptions, Node};
use serde_json::Value;

use super::Problem;

/// The form a manifest was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    Json,
    Yaml,
}

/// A manifest as read: its value, and (YAML) the line each node starts on.
#[derive(Debug, Clone)]
pub struct Read {
    pub form: Form,
    pub value: Value,
    lines: HashMap<String, usize>,
}

impl Read {
    /// `text` as a manifest: JSON when it is an object (RFC 013), else YAML. Err: why it
    /// could not be read, naming the line.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.trim_start().starts_with('{') {
            return serde_json::from_str(text)
                .map(|value| Self {
                    form: Form::Json,
                    value,
                    lines: HashMap::new(),
                })
                .map_err(|e| format!("line {}: not JSON: {e}", e.line()));
        }
        let options = LoaderOptions::default().error_on_duplicate_keys(true);
        let node = marked_yaml::parse_yaml_with_options(0, text, options).map_err(|e| {
            let line = error_line(&e);
            let what = e.to_string();
            // The loader's own "0:3:5: …" position, said once as a line.
            let what = what
                .split_once(": ")
                .filter(|(at, _)| at.chars().all(|c| c.is_ascii_digit() || c == ':'))
                .map_or(what.as_str(), |(_, rest)| rest)
                .to_owned();
            match line {
                Some(line) => format!("line {line}: not YAML (nor JSON): {what}"),
                None => format!("not YAML (nor JSON): {what}"),
            }
        })?;
        let mut lines = HashMap::new();
        let value = convert(&node, String::new(), &mut lines, 0)?;
        Ok(Self {
            form: Form::Yaml,
            value,
            lines,
        })
    }

    /// Where `problem` is: "line N: " in a YAML manifest (the nearest node it names), ""
    /// in a JSON one.
    pub fn line_of(&self, problem: &Problem) -> Option<usize> {
        let mut at = problem.at.as_str();
        loop {
            if let Some(line) = self.lines.get(at) {
                return Some(*line);
            }
            let (parent, _) = at.rsplit_once('/')?;
            at = parent;
        }
    }

    /// `problem` as a person reads it: its line first, where known.
    pub fn say(&self, problem: &Problem) -> String {
        match self.line_of(problem) {
            Some(line) => format!("line {line}: {}", problem.message),
            None => problem.message.clone(),
        }
    }
}

fn error_line(error: &marked_yaml::LoadError) -> Option<usize> {
    use marked_yaml::LoadError::*;
    match error {
        TopLevelMustBeMapping(m)
        | TopLevelMustBeSequence(m)
        | UnexpectedAnchor(m)
        | MappingKeyMustBeScalar(m)
        | UnexpectedTag(m)
        | ScanError(m, _) => Some(m.line()),
        DuplicateKey(inner) => inner.key.span().start().map(|m| m.line()),
    }
}

/// How deep a manifest nests (it needs four levels; a hostile one could need a stack).
const DEEPEST: usize = 16;

/// The node as JSON, every node's line recorded under its JSON pointer.
fn convert(
    node: &Node,
    at: String,
    lines: &mut HashMap<String, usize>,
    depth: usize,
) -> Result<Value, String> {
    let line = node.span().start().map(|m| m.line());
    if depth > DEEPEST {
        return Err(format!(
            "line {}: nested deeper than a manifest is ({DEEPEST} levels)",
            line.unwrap_or(0)
        ));
    }
    if let Some(line) = line {
        lines.insert(at.clone(), line);
    }
    Ok(match node {
        Node::Scalar(scalar) => Value::String(scalar.as_str().to_owned()),
        Node::Sequence(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| convert(item, format!("{at}/{i}"), lines, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        Node::Mapping(map) => Value::Object(
            map.iter()
                .map(|(key, value)| {
                    let name = key.as_str().to_owned();
                    let here = format!("{at}/{}", super::segment(&name));
                    let value = convert(value, here.clone(), lines, depth + 1)?;
                    // The key's own line, not its value's (a nested mapping starts below).
                    if let Some(line) = key.span().start().map(|m| m.line()) {
                        lines.insert(here, line);
                    }
                    Ok((name, value))
                })
                .collect::<Result<_, String>>()?,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const WECO: &str = "\
catalogue_api:
  name: Catalogue API
  role_arn: arn:aws:iam::756629837203:role/catalogue-ci
  aws_region_name: eu-west-1
  environments:
    - id: stage
      name: Staging
    - id: prod
  image_repositories:
    - id: search
      services:
        - id: search-api
";

    #[test]
    fn weco_deploys_yaml_reads_as_the_json_form_and_a_problem_names_its_line() {
        let read = Read::parse(WECO).unwrap();
        assert_eq!(read.form, Form::Yaml);
        assert_eq!(
            read.value["catalogue_api"]["environments"][0]["id"],
            "stage"
        );
        assert_eq!(
            read.value["catalogue_api"]["image_repositories"][0]["services"][0]["id"],
            "search-api"
        );
        let problems = super::super::check(&read.value, None);
        let said: Vec<String> = problems.iter().map(|p| read.say(p)).collect();
        assert_eq!(
            said,
            ["line 8: project \"catalogue_api\": environment \"prod\" is missing \"name\""]
        );
    }

    #[test]
    fn yaml_that_does_not_parse_or_repeats_a_key_names_the_line() {
        let error = Read::parse("a:\n  name: x\n  name: y\n").unwrap_err();
        assert!(error.starts_with("line 3: not YAML"), "{error}");
        let error = Read::parse("a:\n  name: [x\n").unwrap_err();
        assert!(error.starts_with("line "), "{error}");
        let deep = format!("a: {}1{}\n", "[".repeat(40), "]".repeat(40));
        let error = Read::parse(&deep).unwrap_err();
        assert!(
            error.contains("nested deeper than a manifest is"),
            "{error}"
        );
        let error = Read::parse("{ \"a\": }").unwrap_err();
        assert!(error.starts_with("line 1: not JSON"), "{error}");
    }
}
