//! Where a run's Terraform comes from when it is not a directory on the controller's
//! own disk: a zip archive in S3, `source = { s3 = "s3://bucket/envs/{environment}.zip" }`,
//! or a branch (or tag) of a git repository, `source = { git = "https://…/environments.git",
//! ref = "{environment}" }` (The National Archives keeps one branch per environment),
//! fetched by the runner into a fresh workspace under its scratch directory and removed
//! when the run ends. The object's VersionId (from a versioned bucket), or the commit
//! the ref named, is what the run applied; the runner says it first, and the controller
//! records it with the outcome.
//! Terraform state never lives in the workspace: a module fetched this way needs a
//! remote backend (S3 with `use_lockfile`).

use std::{
    io::Read,
    path::{Component, Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use crate::model::EnvKey;

/// The largest archive the runner fetches, and the most it unpacks (a zip bomb stops
/// there rather than filling the disk).
const MAX_ARCHIVE: u64 = 256 << 20;
const MAX_UNPACKED: u64 = 1 << 30;

/// `source` in an environment's Terraform actuator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// `s3://bucket/key.zip`; `{project}` and `{environment}` are filled in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<String>,
    /// A git repository (`https://`, `ssh://`, `git@host:path` or `file://`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<String>,
    /// With `git`: the branch or tag, `{project}` and `{environment}` filled in
    /// (default `{environment}`).
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// The module's directory inside the archive (default: its root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// What one run fetches, and the module's directory in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3Object>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<GitRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

impl JobSource {
    /// Whether `self` (a fetched revision) is of the source `other` names: the same
    /// object, or the same repository and ref, and the same path.
    pub fn same_source(&self, other: &JobSource) -> bool {
        let s3 = match (&self.s3, &other.s3) {
            (Some(a), Some(b)) => a.bucket == b.bucket && a.key == b.key,
            (None, None) => true,
            _ => false,
        };
        let git = match (&self.git, &other.git) {
            (Some(a), Some(b)) => a.url == b.url && a.reference == b.reference,
            (None, None) => true,
            _ => false,
        };
        s3 && git && self.path == other.path
    }
}

/// An S3 object, and the version when one is asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct S3Object {
    pub bucket: String,
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
}

/// A branch or tag of a git repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitRef {
    pub url: String,
    pub reference: String,
    /// Exactly this commit of the ref (an approved plan's apply).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
}

impl SourceConfig {
    /// What is wrong with it, for `relctl validate` and the controller's start.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        match (&self.s3, &self.git) {
            (Some(s3), None) => {
                if let Err(why) = split_s3(s3) {
                    problems.push(format!("s3: {why}"));
                }
                if self.reference.is_some() {
                    problems.push("ref: only a git source has a ref".into());
                }
            }
            (None, Some(git)) => {
                if let Err(why) = git_url(git) {
                    problems.push(format!("git: {why}"));
                }
                // Placeholders are filled in per environment; the rest must be a name.
                if let Some(reference) = &self.reference
                    && let Err(why) = git_ref(
                        &reference
                            .replace("{project}", "p")
                            .replace("{environment}", "e"),
                    )
                {
                    problems.push(format!("ref: {why}"));
                }
            }
            _ => problems.push(
                "a source is one of `s3 = \"s3://bucket/key.zip\"` or `git = \"https://…\"` (with `ref`)".into(),
            ),
        }
        if let Some(path) = &self.path
            && let Err(why) = relative(path)
        {
            problems.push(format!("path: {why}"));
        }
        problems
    }

    /// What a run in `key`'s environment fetches.
    pub fn for_run(&self, key: &EnvKey) -> Result<JobSource, String> {
        let fill = |t: &str| {
            t.replace("{project}", &key.project)
                .replace("{environment}", &key.environment)
        };
        let mut source = JobSource {
            s3: None,
            git: None,
            path: self.path.clone(),
        };
        match (&self.s3, &self.git) {
            (Some(s3), None) => {
                let (bucket, object) = split_s3(&fill(s3))?;
                source.s3 = Some(S3Object {
                    bucket,
                    key: object,
                    version_id: None,
                });
            }
            (None, Some(url)) => {
                git_url(url)?;
                let reference = fill(self.reference.as_deref().unwrap_or("{environment}"));
                git_ref(&reference)?;
                source.git = Some(GitRef {
                    url: url.clone(),
                    reference,
                    commit: None,
                });
            }
            _ => return Err("a source is one of `s3` or `git`".into()),
        }
        Ok(source)
    }
}

/// A URL git fetches over a transport that runs nothing of the URL's choosing (`ext::`
/// and other remote helpers run commands).
fn git_url(url: &str) -> Result<(), String> {
    let scp_like = url.starts_with("git@") && url.contains(':') && !url.contains("::");
    let schemed = ["https://", "ssh://", "file://"]
        .iter()
        .any(|s| url.starts_with(s));
    if (scp_like || schemed) && !url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Ok(())
    } else {
        Err(format!(
            "{url:?} is not an https://, ssh://, git@host:path or file:// repository URL"
        ))
    }
}

/// A branch or tag name git takes as one, never as an option.
fn git_ref(reference: &str) -> Result<(), String> {
    let ok = !reference.is_empty()
        && !reference.starts_with('-')
        && !reference.contains("..")
        && reference
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._/-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{reference:?} is not a branch or tag name (letters, digits, . _ / -)"
        ))
    }
}

fn split_s3(url: &str) -> Result<(String, String), String> {
    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| format!("{url:?} is not an s3://bucket/key URL"))?;
    let (bucket, key) = rest
        .split_once('/')
        .ok_or_else(|| format!("{url:?} names a bucket but no object key"))?;
    let bucket_ok = (3..=63).contains(&bucket.len())
        && bucket
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
    if !bucket_ok {
        return Err(format!("{bucket:?} is not an S3 bucket name"));
    }
    if key.is_empty() || !key.ends_with(".zip") {
        return Err(format!("{url:?}: the object must be a .zip archive"));
    }
    Ok((bucket.to_owned(), key.to_owned()))
}

/// `path` as a relative path that stays inside the workspace.
fn relative(path: &str) -> Result<PathBuf, String> {
    let p = Path::new(path);
    if p.components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
    {
        Ok(p.to_path_buf())
    } else {
        Err(format!(
            "{path:?} must be a relative path inside the archive, without `..`"
        ))
    }
}

/// A fetched source: its workspace (removed on drop), the module's directory in it, and
/// the revision it was, as people read it.
#[derive(Debug)]
pub struct Fetched {
    pub workspace: PathBuf,
    pub dir: PathBuf,
    /// The source at the revision fetched (VersionId, commit): fetched again as is, it
    /// is the same module.
    pub pinned: Option<JobSource>,
    pub revision: String,
}

impl Drop for Fetched {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.workspace);
    }
}

/// Fetches `source` with the runner's own AWS credentials and unpacks it into a fresh
/// directory under `scratch`.
pub async fn fetch(source: &JobSource, scratch: &Path) -> Result<Fetched, String> {
    let workspace = new_workspace(scratch)?;
    let mut fetched = Fetched {
        dir: match &source.path {
            Some(path) => workspace.join(relative(path)?),
            None => workspace.clone(),
        },
        workspace,
        revision: String::new(),
        pinned: None,
    };
    let mut pinned = source.clone();
    fetched.revision = match (&source.s3, &source.git) {
        (Some(object), _) => {
            let (revision, version) = fetch_s3(object, &fetched.workspace).await?;
            if let Some(s3) = &mut pinned.s3 {
                s3.version_id = version;
            }
            revision
        }
        (None, Some(git)) => {
            let (revision, commit) = fetch_git(git, &fetched.workspace).await?;
            if let Some(g) = &mut pinned.git {
                g.commit = Some(commit);
            }
            revision
        }
        (None, None) => return Err("the run names no source".into()),
    };
    fetched.pinned = Some(pinned);
    if !fetched.dir.is_dir() {
        return Err(format!(
            "the source has no directory {:?}",
            source.path.as_deref().unwrap_or(".")
        ));
    }
    Ok(fetched)
}

fn new_workspace(scratch: &Path) -> Result<PathBuf, String> {
    std::fs::create_dir_all(scratch).map_err(|e| {
        format!(
            "cannot create the scratch directory {}: {e}",
            scratch.display()
        )
    })?;
    let workspace = scratch.join(format!(
        "run-{}-{}",
        std::process::id(),
        chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
    ));
    std::fs::create_dir(&workspace)
        .map_err(|e| format!("cannot create the workspace {}: {e}", workspace.display()))?;
    Ok(workspace)
}

/// Clones `git`'s ref (shallow) into `into`; the revision is the commit it named.
async fn fetch_git(git: &GitRef, into: &Path) -> Result<(String, String), String> {
    let run = |args: Vec<&str>| {
        let mut command = tokio::process::Command::new("git");
        command
            .args([
                "-c",
                "protocol.ext.allow=never",
                "-c",
                "advice.detachedHead=false",
            ])
            .args(args)
            .env("GIT_TERMINAL_PROMPT", "0")
            .stdin(std::process::Stdio::null());
        command
    };
    let target = into.to_string_lossy().into_owned();
    let cloned = run(vec![
        "clone",
        "--quiet",
        "--depth",
        "1",
        "--branch",
        &git.reference,
        "--",
        &git.url,
        &target,
    ])
    .output()
    .await
    .map_err(|e| format!("cannot run git (is it installed in the runner's image?): {e}"))?;
    if !cloned.status.success() {
        return Err(format!(
            "cannot fetch {} at {}: {}",
            git.url,
            git.reference,
            String::from_utf8_lossy(&cloned.stderr).trim()
        ));
    }
    if let Some(wanted) = &git.commit {
        // The commit a plan was made from: still the ref's head, or fetched by itself.
        let head = run(vec!["-C", &target, "rev-parse", "HEAD"])
            .output()
            .await
            .map_err(|e| format!("git rev-parse: {e}"))?;
        if String::from_utf8_lossy(&head.stdout).trim() != wanted {
            let fetched = run(vec![
                "-C", &target, "fetch", "--quiet", "--depth", "1", "origin", wanted,
            ])
            .output()
            .await
            .map_err(|e| format!("git fetch: {e}"))?;
            let checked = run(vec!["-C", &target, "checkout", "--quiet", "FETCH_HEAD"])
                .output()
                .await
                .map_err(|e| format!("git checkout: {e}"))?;
            if !fetched.status.success() || !checked.status.success() {
                return Err(format!(
                    "cannot fetch commit {wanted} of {} (the planned one) any more: {}",
                    git.url,
                    String::from_utf8_lossy(&fetched.stderr).trim()
                ));
            }
        }
    }
    let head = run(vec!["-C", &target, "rev-parse", "HEAD"])
        .output()
        .await
        .map_err(|e| format!("git rev-parse: {e}"))?;
    let commit = String::from_utf8_lossy(&head.stdout).trim().to_owned();
    // The module, not its history: nothing of .git is Terraform's business.
    let _ = std::fs::remove_dir_all(into.join(".git"));
    Ok((
        format!("{} {} at commit {commit}", git.url, git.reference),
        commit,
    ))
}

/// Fetches the S3 object and unpacks it into `into`; the revision is its VersionId.
/// An S3 client with the runner's own credentials and region.
pub(crate) async fn s3_client() -> aws_sdk_s3::Client {
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            // Emulators and S3-compatible stores answer path-style requests only.
            .force_path_style(
                std::env::var_os("AWS_ENDPOINT_URL").is_some()
                    || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some(),
            )
            .build(),
    )
}

async fn fetch_s3(source: &S3Object, into: &Path) -> Result<(String, Option<String>), String> {
    let s3 = s3_client().await;
    let url = format!("s3://{}/{}", source.bucket, source.key);
    let object = s3
        .get_object()
        .bucket(&source.bucket)
        .key(&source.key)
        .set_version_id(source.version_id.clone())
        .send()
        .await
        .map_err(|e| {
            format!(
                "cannot fetch {url}: {}",
                aws_smithy_types::error::display::DisplayErrorContext(&e)
            )
        })?;
    if object.content_length().unwrap_or(0) as u64 > MAX_ARCHIVE {
        return Err(format!("{url} is larger than {} MiB", MAX_ARCHIVE >> 20));
    }
    let version = object
        .version_id()
        .filter(|v| *v != "null")
        .map(str::to_owned);
    let revision = match object.version_id() {
        Some(version) if version != "null" => format!("{url} version {version}"),
        _ => format!(
            "{url} (etag {}; the bucket is not versioned, so this revision cannot be fetched again)",
            object.e_tag().unwrap_or("unknown").trim_matches('"')
        ),
    };
    let bytes = object
        .body
        .collect()
        .await
        .map_err(|e| format!("cannot read {url}: {e}"))?
        .into_bytes();
    let into = into.to_path_buf();
    tokio::task::spawn_blocking(move || unpack(&bytes, &into))
        .await
        .map_err(|e| format!("unpacking {url} stopped: {e}"))?
        .map_err(|why| format!("cannot unpack {url}: {why}"))?;
    Ok((revision, version))
}

/// Unpacks a zip archive into `into`: every entry must stay inside it, symbolic links
/// are refused, and the whole is bounded by [`MAX_UNPACKED`].
fn unpack(bytes: &[u8], into: &Path) -> Result<(), String> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| format!("not a zip archive: {e}"))?;
    let mut total: u64 = 0;
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(|e| e.to_string())?;
        let name = entry.name().to_owned();
        let Some(relative) = entry.enclosed_name() else {
            return Err(format!(
                "entry {name:?} would be written outside the workspace"
            ));
        };
        if entry.is_symlink() {
            return Err(format!("entry {name:?} is a symbolic link"));
        }
        let path = into.join(relative);
        if entry.is_dir() {
            std::fs::create_dir_all(&path).map_err(|e| format!("{name}: {e}"))?;
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{name}: {e}"))?;
        }
        // Streamed to disk, never whole in memory; the total is bounded as it goes.
        let left = MAX_UNPACKED.saturating_sub(total);
        let mut file = std::fs::File::create(&path).map_err(|e| format!("{name}: {e}"))?;
        let written = std::io::copy(&mut (&mut entry).take(left + 1), &mut file)
            .map_err(|e| format!("{name}: {e}"))?;
        total += written;
        if total > MAX_UNPACKED {
            return Err(format!(
                "it unpacks to more than {} MiB",
                MAX_UNPACKED >> 20
            ));
        }
        if let Some(mode) = entry.unix_mode() {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode & 0o755));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn archive(entries: &[(&str, &str)]) -> Vec<u8> {
        let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (name, body) in entries {
            out.start_file(*name, zip::write::SimpleFileOptions::default())
                .unwrap();
            out.write_all(body.as_bytes()).unwrap();
        }
        out.finish().unwrap().into_inner()
    }

    #[test]
    fn an_archive_unpacks_into_the_workspace() {
        let dir = tempfile::tempdir().unwrap();
        unpack(&archive(&[("infra/main.tf", "# hi")]), dir.path()).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("infra/main.tf")).unwrap(),
            "# hi"
        );
    }

    #[test]
    fn an_entry_that_escapes_the_workspace_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let inner = dir.path().join("ws");
        std::fs::create_dir(&inner).unwrap();
        let why = unpack(&archive(&[("../evil.tf", "x")]), &inner).unwrap_err();
        assert!(why.contains("outside the workspace"), "{why}");
        assert!(!dir.path().join("evil.tf").exists());
    }

    #[test]
    fn source_urls_and_paths_are_checked() {
        let ok = SourceConfig {
            s3: Some("s3://team-envs/envs/{environment}.zip".into()),
            git: None,
            reference: None,
            path: Some("infra".into()),
        };
        assert!(ok.problems().is_empty());
        let job = ok.for_run(&EnvKey::new("p", "prod")).unwrap().s3.unwrap();
        assert_eq!(
            (job.bucket.as_str(), job.key.as_str()),
            ("team-envs", "envs/prod.zip")
        );
        for (s3, path, want) in [
            ("https://x/y.zip", None, "not an s3://"),
            ("s3://bucket", None, "no object key"),
            ("s3://Bucket_1/a.zip", None, "not an S3 bucket name"),
            ("s3://bucket/a.tar", None, ".zip archive"),
            ("s3://bucket/a.zip", Some("../up"), "without `..`"),
            ("s3://bucket/a.zip", Some("/abs"), "relative path"),
        ] {
            let config = SourceConfig {
                s3: Some(s3.into()),
                git: None,
                reference: None,
                path: path.map(String::from),
            };
            let problems = config.problems().join("; ");
            assert!(problems.contains(want), "{s3} {path:?}: {problems}");
        }
    }

    #[test]
    fn git_sources_take_safe_urls_and_ref_names_only() {
        let git = |url: &str, reference: Option<&str>| SourceConfig {
            s3: None,
            git: Some(url.into()),
            reference: reference.map(String::from),
            path: None,
        };
        let fine = git("https://github.com/nationalarchives/environments.git", None);
        assert!(fine.problems().is_empty());
        let job = fine
            .for_run(&EnvKey::new("tre", "prod"))
            .unwrap()
            .git
            .unwrap();
        assert_eq!(
            job.reference, "prod",
            "one branch per environment by default"
        );
        assert!(
            git("git@github.com:org/envs.git", Some("release/{environment}"))
                .problems()
                .is_empty()
        );
        for (url, reference, want) in [
            ("ext::sh -c touch% /tmp/pwned", None, "not an https://"),
            ("fd::17", None, "not an https://"),
            (
                "https://x/y.git",
                Some("--upload-pack=evil"),
                "not a branch or tag",
            ),
            ("https://x/y.git", Some("a..b"), "not a branch or tag"),
        ] {
            let problems = git(url, reference).problems().join("; ");
            assert!(problems.contains(want), "{url} {reference:?}: {problems}");
        }
        let both = SourceConfig {
            s3: Some("s3://team-envs/a.zip".into()),
            git: Some("https://x/y.git".into()),
            reference: None,
            path: None,
        };
        assert!(both.problems().join(";").contains("one of"));
    }

    #[test]
    fn a_terraform_actuator_needs_exactly_one_of_dir_and_source() {
        for actuator in [
            r#"{ kind = "terraform" }"#,
            r#"{ kind = "terraform", dir = "/srv/infra", source = { s3 = "s3://team-envs/a.zip" } }"#,
        ] {
            let toml = format!(
                "[[projects]]\nid = \"p\"\nname = \"P\"\nenvironments = [ {{ id = \"e\", name = \"E\", actuator = {actuator} }} ]\n"
            );
            let error = crate::config::Config::from_toml(&toml)
                .expect_err("refused")
                .to_string();
            assert!(
                error.contains("exactly one of `dir`"),
                "{actuator}: {error}"
            );
        }
        let toml = "[[projects]]\nid = \"p\"\nname = \"P\"\nenvironments = [ { id = \"e\", name = \"E\", actuator = { kind = \"terraform\", source = { s3 = \"s3://team-envs/a.tgz\" } } } ]\n";
        let error = crate::config::Config::from_toml(toml)
            .expect_err("refused")
            .to_string();
        assert!(error.contains("actuator.source.s3"), "{error}");
    }
}
