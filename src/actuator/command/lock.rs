//! Terraform state locks: the ID of the lock a failed run could not take, read from its
//! output, so a person can release it once the run that held it is over (`relctl
//! unlock`), and the check that an ID given on the command line is one.

/// What Terraform prints when another holds the state lock.
const LOCKED: &str = "Error acquiring the state lock";

/// The ID of the lock named in Terraform's "Error acquiring the state lock" output
/// (its `Lock Info:` block, `ID: …`), however the output was decorated (the `│`
/// margin of its diagnostics, colour codes): the last such block, if several.
pub fn held_lock(output: &str) -> Option<String> {
    let at = output.rfind(LOCKED)?;
    let info = &output[at..];
    let after = &info[info.find("Lock Info:")? + "Lock Info:".len()..];
    let id = &after[after.find("ID:")? + "ID:".len()..];
    let id: String = id
        .trim_start_matches(|c: char| c.is_whitespace() || c == '│')
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    valid_lock_id(&id).then_some(id)
}

/// What a failure message adds where the output says the state is locked by another:
/// the lock, and how to release it once its run is over ("" otherwise).
pub fn unlock_hint(output: &str, key: &crate::model::EnvKey) -> String {
    held_lock(output)
        .map(|id| {
            format!(
                "; the state is locked by another (lock {id}): if the run that took it is over, `relctl unlock --project {} --env {}` releases it",
                key.project, key.environment
            )
        })
        .unwrap_or_default()
}

/// A lock ID as Terraform's backends make them (a UUID; a few letters, digits and
/// dashes): never an option (`-…`) or anything a shell or Terraform would read as more.
pub fn valid_lock_id(id: &str) -> bool {
    (8..=64).contains(&id.len())
        && !id.starts_with('-')
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_id_is_read_from_terraforms_diagnostic_however_it_is_decorated() {
        let output = "\u{1b}[31m╷\u{1b}[0m\n│ \u{1b}[1mError: \u{1b}[0mError acquiring the state lock\n│ \n│ Error message: operation error S3: PutObject, StatusCode: 412\n│ Lock Info:\n│   ID:        2b6a4a6e-1f0c-4c39-9d5a-0d1c3e4f5a6b\n│   Path:      state/tre/prod.tfstate\n│   Operation: OperationTypeApply\n│   Who:       runner@host\n╵";
        assert_eq!(
            held_lock(output).as_deref(),
            Some("2b6a4a6e-1f0c-4c39-9d5a-0d1c3e4f5a6b")
        );
        assert_eq!(held_lock("Error: something else\nID: 12345678"), None);
        assert_eq!(
            held_lock("Error acquiring the state lock\nLock Info:\n  ID: -force;rm"),
            None,
            "an ID that is not one is not taken"
        );
    }

    #[test]
    fn a_lock_id_that_could_be_read_as_an_option_or_more_is_refused() {
        assert!(valid_lock_id("2b6a4a6e-1f0c-4c39-9d5a-0d1c3e4f5a6b"));
        for bad in [
            "-force",
            "abc",
            "a b c d e f g h",
            "x;rm -rf /",
            &"a".repeat(65),
        ] {
            assert!(!valid_lock_id(bad), "{bad}");
        }
    }
}
