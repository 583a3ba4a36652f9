//! Identifiers that end up in SSM parameter names and state-table keys.
//!
//! SSM allows `a-zA-Z0-9_.-` inside a name segment and `/` between segments. An id is one
//! segment: a `/` in it, or a `.`/`..` segment, would let a record write outside
//! `/{project}/images/{label}/`, so both are refused here, before anything reaches SSM.

use std::fmt;

/// Longest id accepted: SSM names are at most 1011 characters, and four ids make one.
pub const MAX_ID_LEN: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{kind} id is empty")]
    Empty { kind: &'static str },
    #[error("{kind} id {id:?} is longer than {MAX_ID_LEN} characters")]
    TooLong { kind: &'static str, id: String },
    #[error(
        "{kind} id {id:?} contains {bad:?}; ids may contain only letters, digits, '_', '.' and '-'"
    )]
    BadChar {
        kind: &'static str,
        id: String,
        bad: char,
    },
    #[error("{kind} id {id:?} is a relative path segment")]
    DotSegment { kind: &'static str, id: String },
}

/// Checks that `id` is safe as one segment of an SSM parameter name.
pub fn validate_id(kind: &'static str, id: &str) -> Result<(), IdError> {
    if id.is_empty() {
        return Err(IdError::Empty { kind });
    }
    if id.len() > MAX_ID_LEN {
        return Err(IdError::TooLong {
            kind,
            id: id.to_owned(),
        });
    }
    if let Some(bad) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(IdError::BadChar {
            kind,
            id: id.to_owned(),
            bad,
        });
    }
    if id == "." || id == ".." {
        return Err(IdError::DotSegment {
            kind,
            id: id.to_owned(),
        });
    }
    Ok(())
}

/// The unit of reconciliation: one environment of one project.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EnvKey {
    pub project: String,
    pub environment: String,
}

impl EnvKey {
    pub fn new(project: impl Into<String>, environment: impl Into<String>) -> Self {
        Self {
            project: project.into(),
            environment: environment.into(),
        }
    }
}

impl fmt::Display for EnvKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.project, self.environment)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_ids_are_accepted() {
        for id in ["storage", "bugfarm_73649", "v2-branch", "a.b", "stage"] {
            assert_eq!(validate_id("service", id), Ok(()), "{id}");
        }
    }

    #[test]
    fn ids_that_could_escape_the_image_path_are_refused() {
        assert!(matches!(
            validate_id("service", "a/b"),
            Err(IdError::BadChar { bad: '/', .. })
        ));
        assert!(matches!(
            validate_id("service", "../x"),
            Err(IdError::BadChar { bad: '/', .. })
        ));
        assert!(matches!(
            validate_id("service", ".."),
            Err(IdError::DotSegment { .. })
        ));
        assert!(matches!(
            validate_id("environment", ""),
            Err(IdError::Empty { .. })
        ));
        assert!(matches!(
            validate_id("service", "a b"),
            Err(IdError::BadChar { bad: ' ', .. })
        ));
        assert!(matches!(
            validate_id("service", &"x".repeat(200)),
            Err(IdError::TooLong { .. })
        ));
    }

    #[test]
    fn refusal_messages_say_what_is_allowed() {
        let message = validate_id("service", "a/b").unwrap_err().to_string();
        assert_eq!(
            message,
            "service id \"a/b\" contains '/'; ids may contain only letters, digits, '_', '.' and '-'"
        );
    }
}
