//! ECR tag pins, as weco-deploy kept them: a floating tag per environment
//! (`env.{environment}`) moved to the exact manifest of the release's image. The pin is
//! the digest the tag points at, so a tag already there is a no-op.

use async_trait::async_trait;
use aws_sdk_ecr::{Client, types::ImageIdentifier};

use super::{Pin, PinError, Target};
use crate::model::{Change, ImageRef, Images};

#[derive(Debug, Clone)]
pub struct EcrTag {
    pub client: Client,
    /// Tag template: `{environment}`, `{project}`.
    pub tag: String,
}

/// A release image's repository and the manifest it names.
struct Manifest {
    repository: String,
    digest: String,
    body: String,
    media_type: Option<String>,
}

/// The repository name inside an ECR registry URI.
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

impl EcrTag {
    fn tag(&self, target: &Target<'_>) -> String {
        self.tag
            .replace("{environment}", &target.key.environment)
            .replace("{project}", &target.key.project)
    }

    /// The manifest `id` names in `repository`, or None when there is no such image.
    async fn manifest(
        &self,
        repository: &str,
        id: ImageIdentifier,
    ) -> Result<Option<Manifest>, PinError> {
        let output = self
            .client
            .batch_get_image()
            .repository_name(repository)
            .image_ids(id)
            .send()
            .await
            .map_err(|e| PinError::Read {
                location: format!("ECR repository {repository}"),
                source: crate::aws::AwsError::from_sdk(e),
            })?;
        Ok(output
            .images
            .unwrap_or_default()
            .into_iter()
            .next()
            .and_then(|image| {
                Some(Manifest {
                    repository: repository.to_owned(),
                    digest: image.image_id?.image_digest?,
                    body: image.image_manifest?,
                    media_type: image.image_manifest_media_type,
                })
            }))
    }

    /// The release image's manifest; an image that does not exist cannot be pinned.
    async fn wanted(&self, service: &str, uri: &str) -> Result<Manifest, PinError> {
        let (repository, id) = repository(service, uri)?;
        self.manifest(&repository, id).await?.ok_or_else(|| {
            PinError::Refused(format!(
                "service {service:?}: image {uri} does not exist in ECR repository {repository}"
            ))
        })
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
        for (service, uri) in desired {
            let wanted = self.wanted(service, uri).await?;
            let current = self
                .manifest(
                    &wanted.repository,
                    ImageIdentifier::builder().image_tag(&tag).build(),
                )
                .await?;
            let have = current.map(|m| m.digest);
            if have.as_deref() != Some(wanted.digest.as_str()) {
                changes.push(Change {
                    service: service.clone(),
                    from: have,
                    to: wanted.digest,
                });
            }
        }
        Ok(changes)
    }

    async fn write(
        &self,
        target: &Target<'_>,
        desired: &Images,
        changes: &[Change],
    ) -> Result<(), PinError> {
        let tag = self.tag(target);
        for change in changes {
            let Some(uri) = desired.get(&change.service) else {
                continue;
            };
            let wanted = self.wanted(&change.service, uri).await?;
            let result = self
                .client
                .put_image()
                .repository_name(&wanted.repository)
                .image_manifest(&wanted.body)
                .set_image_manifest_media_type(wanted.media_type.clone())
                .image_tag(&tag)
                .send()
                .await;
            match result {
                Ok(_) => {}
                // The tag already names this manifest: what we wanted.
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_image_already_exists_exception()) => {}
                Err(e) => {
                    return Err(PinError::Write {
                        service: change.service.clone(),
                        location: format!("{}:{tag}", wanted.repository),
                        source: crate::aws::AwsError::from_sdk(e),
                    });
                }
            }
        }
        Ok(())
    }
}
