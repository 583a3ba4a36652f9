//! A saved Terraform plan, for environments that approve the plan before it is applied
//! (a `protected` environment with a Terraform actuator). The plan run ends by saving
//! `terraform plan -out` outside its workspace and saying its digest and summary on a
//! line of its own; the apply run, after the plan was approved by that digest, checks
//! the file is still exactly that plan and runs `terraform apply` on it, so what was
//! approved is what is applied. Terraform itself refuses a plan made stale by a change
//! of state since.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The plan file's name in a run's directory.
pub const PLAN_FILE: &str = "relctl.tfplan";
/// The line a plan run ends with: this, the digest, a space, the summary.
pub const PLAN_LINE: &str = "relctl runner: plan ";
/// How many changed addresses a summary names.
const ADDRESSES: usize = 10;

/// What the runner does with a plan around the commands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanStep {
    /// After the commands (which end with `terraform plan -out=relctl.tfplan`): keep
    /// the plan at `to`, and say its digest and summary.
    Save { to: PathBuf },
    /// Before the commands (which end with `terraform apply relctl.tfplan`): put the
    /// plan kept at `from` in place, if it is still the one approved (`digest`).
    Load { from: PathBuf, digest: String },
}

/// `sha256:` and the hex digest of `bytes`.
pub fn digest(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// `+A ~C -D` and the addresses that change, from `terraform show -json`'s output.
pub fn summary(show: &serde_json::Value) -> String {
    let (mut add, mut change, mut destroy) = (0, 0, 0);
    let mut addresses = Vec::new();
    for resource in show["resource_changes"].as_array().into_iter().flatten() {
        let actions: Vec<&str> = resource["change"]["actions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a.as_str())
            .collect();
        let mut changed = true;
        match actions.as_slice() {
            ["create"] => add += 1,
            ["update"] => change += 1,
            ["delete"] => destroy += 1,
            ["delete", "create"] | ["create", "delete"] => {
                add += 1;
                destroy += 1;
            }
            _ => changed = false,
        }
        if changed && let Some(address) = resource["address"].as_str() {
            addresses.push(address.to_owned());
        }
    }
    let mut text = format!("+{add} ~{change} -{destroy}");
    if !addresses.is_empty() {
        let more = addresses.len().saturating_sub(ADDRESSES);
        addresses.truncate(ADDRESSES);
        text.push_str(": ");
        text.push_str(&addresses.join(", "));
        if more > 0 {
            text.push_str(&format!(" and {more} more"));
        }
    }
    let outputs = show["output_changes"]
        .as_object()
        .map(|o| {
            o.values()
                .filter(|c| {
                    c["actions"]
                        .as_array()
                        .is_some_and(|a| a.iter().any(|x| x != "no-op"))
                })
                .count()
        })
        .unwrap_or(0);
    if outputs > 0 {
        text.push_str(&format!(" ({outputs} outputs change)"));
    }
    text
}

/// Puts the kept plan into `dir`, refusing one that is not the approved plan.
pub async fn load(from: &Path, digest_wanted: &str, dir: &Path) -> Result<(), Lost> {
    let bytes = read_kept(from).await.map_err(|e| {
        Lost(format!(
            "the approved plan {} is gone ({e}): a restart on another host, or a cleared scratch directory",
            from.display()
        ))
    })?;
    // Taken once: the kept copy goes now, the workspace's goes with the run.
    remove_kept(from).await;
    let found = digest(&bytes);
    if found != digest_wanted {
        return Err(Lost(format!(
            "the kept plan is {found}, not the approved {digest_wanted}: nothing applied"
        )));
    }
    std::fs::write(dir.join(PLAN_FILE), &bytes)
        .map_err(|e| Lost(format!("cannot put the plan in {}: {e}", dir.display())))
}

/// Why the approved plan cannot be applied: the run plans again, for a new approval.
#[derive(Debug)]
pub struct Lost(pub String);

/// Keeps the plan `dir` now holds at `to` (a path, or `s3://bucket/key` for runs in
/// ECS tasks, which share no disk); its digest.
pub async fn save(dir: &Path, to: &Path) -> Result<String, String> {
    let bytes = std::fs::read(dir.join(PLAN_FILE))
        .map_err(|e| format!("terraform plan left no {PLAN_FILE}: {e}"))?;
    write_kept(to, &bytes).await?;
    Ok(digest(&bytes))
}

/// `s3://bucket/key` as (bucket, key), where `path` is one.
fn in_s3(path: &Path) -> Option<(String, String)> {
    let (bucket, key) = path.to_str()?.strip_prefix("s3://")?.split_once('/')?;
    Some((bucket.to_owned(), key.to_owned()))
}

async fn read_kept(from: &Path) -> Result<Vec<u8>, String> {
    match in_s3(from) {
        Some((bucket, key)) => {
            let object = super::source::s3_client()
                .await
                .get_object()
                .bucket(&bucket)
                .key(&key)
                .send()
                .await
                .map_err(|e| {
                    aws_smithy_types::error::display::DisplayErrorContext(&e).to_string()
                })?;
            Ok(object
                .body
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .into_bytes()
                .to_vec())
        }
        None => std::fs::read(from).map_err(|e| e.to_string()),
    }
}

async fn remove_kept(from: &Path) {
    match in_s3(from) {
        Some((bucket, key)) => {
            let _ = super::source::s3_client()
                .await
                .delete_object()
                .bucket(&bucket)
                .key(&key)
                .send()
                .await;
        }
        None => {
            let _ = std::fs::remove_file(from);
        }
    }
}

async fn write_kept(to: &Path, bytes: &[u8]) -> Result<(), String> {
    if let Some((bucket, key)) = in_s3(to) {
        // Encrypted at rest as the bucket says (S3 encrypts every object); a bucket
        // only the runner's role may read.
        super::source::s3_client()
            .await
            .put_object()
            .bucket(&bucket)
            .key(&key)
            .body(bytes.to_vec().into())
            .send()
            .await
            .map_err(|e| {
                format!(
                    "cannot keep the plan at {}: {}",
                    to.display(),
                    aws_smithy_types::error::display::DisplayErrorContext(&e)
                )
            })?;
        return Ok(());
    }
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    // A plan holds state and sensitive values in the clear: for this user only.
    use std::{io::Write, os::unix::fs::OpenOptionsExt};
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(to)
        .and_then(|mut f| f.write_all(bytes))
        .map_err(|e| format!("cannot keep the plan at {}: {e}", to.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_plan_is_summed_up_as_terraform_counts_it() {
        let show = json!({
            "resource_changes": [
                { "address": "aws_s3_bucket.a", "change": { "actions": ["create"] } },
                { "address": "aws_iam_role.b", "change": { "actions": ["update"] } },
                { "address": "aws_instance.c", "change": { "actions": ["delete", "create"] } },
                { "address": "aws_vpc.d", "change": { "actions": ["no-op"] } },
            ],
            "output_changes": { "x": { "actions": ["update"] }, "y": { "actions": ["no-op"] } },
        });
        assert_eq!(
            summary(&show),
            "+2 ~1 -1: aws_s3_bucket.a, aws_iam_role.b, aws_instance.c (1 outputs change)"
        );
        assert_eq!(summary(&json!({})), "+0 ~0 -0");
    }

    #[tokio::test]
    async fn only_the_approved_plan_is_put_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let kept = dir.path().join("kept.tfplan");
        std::fs::write(&kept, b"plan bytes").unwrap();
        let wrong = load(&kept, "sha256:00", dir.path()).await.unwrap_err();
        assert!(wrong.0.contains("not the approved"), "{wrong:?}");
        assert!(!dir.path().join(PLAN_FILE).exists());
        std::fs::write(&kept, b"plan bytes").unwrap();
        load(&kept, &digest(b"plan bytes"), dir.path())
            .await
            .unwrap();
        assert!(!kept.exists(), "the kept copy is taken once");
        assert_eq!(
            std::fs::read(dir.path().join(PLAN_FILE)).unwrap(),
            b"plan bytes"
        );
    }
}
