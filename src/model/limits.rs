//! What a record is held to: the sizes relctl accepts in a deployment it takes in, so
//! that nothing it copies into its own items (the state, history, status messages) can
//! grow them past DynamoDB's 400 KB, and no release makes one reconcile do unbounded
//! work. A deployment over a limit is refused at intake, `failed` with the field named.

use super::{Deployment, Release};

/// Bytes of a requester's `id` or `name`.
pub const REQUESTER_BYTES: usize = 1024;
/// Bytes of a release's or a deployment entry's `description`.
pub const DESCRIPTION_BYTES: usize = 8 * 1024;
/// Bytes of a release id (it becomes part of SSM labels, keys and messages).
pub const RELEASE_ID_BYTES: usize = 256;
/// Services (images) in one release.
pub const SERVICES: usize = 500;
/// Bytes of a release's images, names and URIs together (the environment's state keeps
/// the images it runs).
pub const IMAGES_BYTES: usize = 64 * 1024;

/// Deployment entries in one release item. A release deployed more often than this
/// is taken in no further: its new entries are refused, the newest one per environment
/// `failed` naming this limit.
pub const DEPLOYMENTS: usize = 500;
/// DynamoDB's item size limit.
pub const ITEM_BYTES: usize = 400 * 1024;
/// Room kept free in a release item for what relctl must still write there: each
/// environment's final status and `last_date_deployed`, and a margin for attributes a
/// writer added that relctl does not read.
pub const RESERVE_BYTES: usize = 24 * 1024;

/// About how many bytes `release` takes as a DynamoDB item (its JSON length: a little
/// over, as DynamoDB does not count quotes and braces).
pub fn item_bytes(release: &Release) -> usize {
    serde_json::to_vec(release).map_or(ITEM_BYTES, |v| v.len())
}

/// About how many bytes writing `status` and `message` into an entry adds to its item.
pub fn status_bytes(status: &str, message: &str) -> usize {
    "status".len()
        + status.len()
        + "status_message".len()
        + message.len()
        + "status_updated_at".len()
        + 26
        + 8
}

fn over(field: &str, value: &str, limit: usize) -> Result<(), String> {
    if value.len() <= limit {
        return Ok(());
    }
    Err(format!(
        "{field} is {} bytes; relctl accepts at most {limit}",
        value.len()
    ))
}

/// Why `entry` of `release` is over a limit, in words for its status.
pub fn check(release: &Release, entry: Option<&Deployment>) -> Result<(), String> {
    over("release_id", &release.release_id, RELEASE_ID_BYTES)?;
    if let Some(bad) = release
        .release_id
        .chars()
        .find(|c| c.is_control() || super::text::is_bidi_control(*c))
    {
        return Err(format!(
            "release_id contains the control character {}",
            bad.escape_unicode()
        ));
    }
    if let Some(description) = &release.description {
        over("the release's description", description, DESCRIPTION_BYTES)?;
    }
    if release.images.len() > SERVICES {
        return Err(format!(
            "the release has {} services; relctl deploys at most {SERVICES} in one release",
            release.images.len()
        ));
    }
    if release.deployments.len() > DEPLOYMENTS {
        return Err(format!(
            "the release has {} deployment entries; relctl takes in at most {DEPLOYMENTS} in one release. Deploy a new release (relctl release new)",
            release.deployments.len()
        ));
    }
    let images: usize = release
        .images
        .iter()
        .map(|(s, i)| s.len() + i.as_deref().map_or(0, str::len))
        .sum();
    if images > IMAGES_BYTES {
        return Err(format!(
            "the release's images are {images} bytes (service names and URIs); relctl accepts at most {IMAGES_BYTES}"
        ));
    }
    let Some(entry) = entry else {
        return Ok(());
    };
    if let Some(description) = &entry.description {
        over("description", description, DESCRIPTION_BYTES)?;
    }
    for (person, field) in [
        (&entry.requested_by, "requested_by"),
        (&release.requested_by, "the release's requested_by"),
    ] {
        if let Some(person) = person {
            if let Some(id) = &person.id {
                over(&format!("{field}.id"), id, REQUESTER_BYTES)?;
            }
            if let Some(name) = &person.name {
                over(&format!("{field}.name"), name, REQUESTER_BYTES)?;
            }
        }
    }
    Ok(())
}
