//! ECR tag pins, as weco-deploy kept them: a floating tag per environment
//! (`env.{environment}`) moved to the exact manifest of the release's image. The pin is
//! the digest the tag points at, so a tag already there is a no-op.
//!
//! Calls: one BatchGetImage per repository for the diff (the release's image and the
//! environment's tag in one request), one PutImage per tag that moves, whose answer
//! names the manifest the tag now holds (so nothing is read back).

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::Mutex,
};

use async_trait::async_trait;
use aws_sdk_ecr::{
    Client,
    types::{Image, ImageIdentifier},
};

use super::{Pin, PinError, Target, Written};
use crate::model::{Change, EnvKey, ImageRef, Images};

#[derive(Debug)]
pub struct EcrTag {
    client: Client,
    /// Tag template: `{environment}`, `{project}`.
    tag: String,
    /// What the last diff found, for the write that follows it and for the actuator:
    /// one entry (this environment's), replaced by each diff.
    last: Mutex<Option<Found>>,
}

/// A release image's repository and the manifest it names.
#[derive(Debug, Clone)]
struct Manifest {
    repository: String,
    digest: String,
    body: String,
    media_type: Option<String>,
}

/// The last diff: whose it was, and each service's wanted manifest.
#[derive(Debug)]
struct Found {
    key: EnvKey,
    release_id: String,
    wanted: BTreeMap<String, Manifest>,
}

/// The repository name inside an ECR registry URI, and the image it names.
fn repository(service: &str, uri: &str) -> Result<(String, ImageIdentifier), PinError> {
    let image = ImageRef::parse(uri).map_err(PinError::Refused)?;
    let ImageRef::Container {
        registry: Some(registry),
        repository,
        tag,
        digest,
    } = image
    else {
        return Err(PinError::Refused(format!(
            "service {service:?}: {uri} is not an ECR image URI; an ecr_tag pin needs registry/repository:tag"
        )));
    };
    if !registry.contains(".dkr.ecr.") {
        return Err(PinError::Refused(format!(
            "service {service:?}: {registry} is not an ECR registry"
        )));
    }
    let id = ImageIdentifier::builder()
        .set_image_tag(tag)
        .set_image_digest(digest)
        .build();
    Ok((repository, id))
}

/// A release image that is not in its repository: it cannot be pinned.
fn missing(service: &str, uri: &str, repository: &str) -> PinError {
    PinError::Refused(format!(
        "service {service:?}: image {uri} does not exist in ECR repository {repository}"
    ))
}

/// Whether `image` is the one `id` asked for (by tag, else by digest).
fn answers(image: &Image, id: &ImageIdentifier) -> bool {
    let Some(got) = &image.image_id else {
        return false;
    };
    match (&id.image_tag, &id.image_digest) {
        (Some(tag), _) => got.image_tag.as_ref() == Some(tag),
        (None, Some(digest)) => got.image_digest.as_ref() == Some(digest),
        (None, None) => false,
    }
}

fn manifest(repository: &str, image: &Image) -> Option<Manifest> {
    Some(Manifest {
        repository: repository.to_owned(),
        digest: image.image_id.as_ref()?.image_digest.clone()?,
        body: image.image_manifest.clone()?,
        media_type: image.image_manifest_media_type.clone(),
    })
}

impl EcrTag {
    pub fn new(client: Client, tag: String) -> Self {
        Self {
            client,
            tag,
            last: Mutex::new(None),
        }
    }

    fn tag(&self, target: &Target<'_>) -> String {
        self.tag
            .replace("{environment}", &target.key.environment)
            .replace("{project}", &target.key.project)
    }

    /// The manifests `ids` name in `repository`, in order (None: no such image).
    async fn manifests(
        &self,
        repository: &str,
        ids: &[ImageIdentifier],
    ) -> Result<Vec<Option<Manifest>>, PinError> {
        let output = self
            .client
            .batch_get_image()
            .repository_name(repository)
            .set_image_ids(Some(ids.to_vec()))
            .send()
            .await
            .map_err(|e| PinError::Read {
                location: format!("ECR repository {repository}"),
                source: crate::aws::AwsError::from_sdk(e),
            })?;
        let images = output.images.unwrap_or_default();
        let failures = output.failures.unwrap_or_default();
        let failed = |id: &ImageIdentifier| {
            failures.iter().any(|f| {
                f.image_id.as_ref().is_some_and(|got| {
                    (id.image_tag.is_some() && got.image_tag == id.image_tag)
                        || (id.image_digest.is_some() && got.image_digest == id.image_digest)
                })
            })
        };
        // Each image answers the id that names it; where the answer does not echo the
        // id (an image with several tags may carry another), the images come in the
        // order of the ids found.
        let found: Vec<&ImageIdentifier> = ids.iter().filter(|id| !failed(id)).collect();
        let in_order = images.len() == found.len();
        Ok(ids
            .iter()
            .map(|id| {
                if failed(id) {
                    return None;
                }
                let image = images.iter().find(|image| answers(image, id)).or_else(|| {
                    let at = found.iter().position(|f| std::ptr::eq(*f, id))?;
                    in_order.then(|| images.get(at)).flatten()
                })?;
                manifest(repository, image)
            })
            .collect())
    }

    /// The release image's manifest, and what the environment's tag points at now.
    async fn look(
        &self,
        service: &str,
        uri: &str,
        tag: &str,
    ) -> Result<(Manifest, Option<String>), PinError> {
        let (repository, id) = repository(service, uri)?;
        let current = ImageIdentifier::builder().image_tag(tag).build();
        let mut found = self
            .manifests(&repository, &[id, current])
            .await?
            .into_iter();
        let (wanted, current) = (found.next().flatten(), found.next().flatten());
        let wanted = wanted.ok_or_else(|| missing(service, uri, &repository))?;
        Ok((wanted, current.map(|m| m.digest)))
    }

    /// The wanted manifest of `service` from the last diff of `target`, else read again.
    async fn wanted(
        &self,
        target: &Target<'_>,
        service: &str,
        uri: &str,
    ) -> Result<Manifest, PinError> {
        let known = self.found(target, |wanted| wanted.get(service).cloned());
        if let Some(Some(manifest)) = known {
            return Ok(manifest);
        }
        let (repository, id) = repository(service, uri)?;
        self.manifests(&repository, &[id])
            .await?
            .into_iter()
            .next()
            .flatten()
            .ok_or_else(|| missing(service, uri, &repository))
    }

    fn found<T>(
        &self,
        target: &Target<'_>,
        f: impl FnOnce(&BTreeMap<String, Manifest>) -> T,
    ) -> Option<T> {
        let last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        last.as_ref()
            .filter(|found| &found.key == target.key && found.release_id == target.release_id)
            .map(|found| f(&found.wanted))
    }
}

#[async_trait]
impl Pin for EcrTag {
    fn kind(&self) -> &'static str {
        "ecr_tag"
    }

    async fn diff(&self, target: &Target<'_>, desired: &Images) -> Result<Vec<Change>, PinError> {
        let tag = self.tag(target);
        let mut changes = Vec::new();
        let mut wanted = BTreeMap::new();
        // One image may feed several services: each repository and image is read once.
        let mut seen: HashMap<&str, (Manifest, Option<String>)> = HashMap::new();
        for (service, uri) in desired {
            let (manifest, have) = match seen.get(uri.as_str()) {
                Some(found) => found.clone(),
                None => {
                    let found = self.look(service, uri, &tag).await?;
                    seen.insert(uri, found.clone());
                    found
                }
            };
            if have.as_deref() != Some(manifest.digest.as_str()) {
                changes.push(Change {
                    service: service.clone(),
                    from: have,
                    to: manifest.digest.clone(),
                });
            }
            wanted.insert(service.clone(), manifest);
        }
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(Found {
            key: target.key.clone(),
            release_id: target.release_id.to_owned(),
            wanted,
        });
        Ok(changes)
    }

    async fn write(
        &self,
        target: &Target<'_>,
        desired: &Images,
        changes: &[Change],
    ) -> Result<Written, PinError> {
        let tag = self.tag(target);
        let mut moved: HashSet<(String, String)> = HashSet::new();
        for change in changes {
            let Some(uri) = desired.get(&change.service) else {
                continue;
            };
            let wanted = self.wanted(target, &change.service, uri).await?;
            // Two services of one image: one tag to move.
            if !moved.insert((wanted.repository.clone(), wanted.digest.clone())) {
                continue;
            }
            let failed = |source| PinError::Write {
                service: change.service.clone(),
                location: format!("{}:{tag}", wanted.repository),
                source,
            };
            let result = self
                .client
                .put_image()
                .repository_name(&wanted.repository)
                .image_manifest(&wanted.body)
                .set_image_manifest_media_type(wanted.media_type.clone())
                .image_tag(&tag)
                .send()
                .await;
            let holds = match result {
                Ok(output) => output
                    .image
                    .and_then(|image| image.image_id)
                    .and_then(|id| id.image_digest),
                // The tag already names this manifest: what we wanted.
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_image_already_exists_exception()) =>
                {
                    Some(wanted.digest.clone())
                }
                Err(e) => return Err(failed(crate::aws::AwsError::from_sdk(e))),
            };
            if holds.as_deref() != Some(wanted.digest.as_str()) {
                return Err(failed(crate::aws::AwsError::other(
                    format!(
                        "ECR tagged {} instead of {}",
                        holds.as_deref().unwrap_or("no manifest"),
                        wanted.digest
                    ),
                    crate::aws::ErrorClass::Transient,
                )));
            }
        }
        Ok(Written::Verified)
    }

    fn identities(&self, target: &Target<'_>) -> BTreeMap<String, String> {
        self.found(target, |wanted| {
            wanted
                .iter()
                .map(|(service, m)| (service.clone(), m.digest.clone()))
                .collect()
        })
        .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_image_answers_the_id_it_was_asked_by() {
        let image = |tag: Option<&str>, digest: &str| {
            Image::builder()
                .image_id(
                    ImageIdentifier::builder()
                        .set_image_tag(tag.map(str::to_owned))
                        .image_digest(digest)
                        .build(),
                )
                .build()
        };
        let by_tag = ImageIdentifier::builder().image_tag("env.stage").build();
        let by_digest = ImageIdentifier::builder().image_digest("sha256:a").build();
        assert!(answers(&image(Some("env.stage"), "sha256:a"), &by_tag));
        assert!(!answers(&image(Some("ref.1"), "sha256:a"), &by_tag));
        assert!(answers(&image(None, "sha256:a"), &by_digest));
        assert!(!answers(&image(None, "sha256:b"), &by_digest));
    }
}
