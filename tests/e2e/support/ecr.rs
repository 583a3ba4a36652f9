//! ECR images for tests that pin by tag: a minimal manifest pushed under a tag, and what
//! a tag points at.

use aws_sdk_ecr::types::ImageIdentifier;
use serde_json::json;

/// Pushes a minimal image manifest, whose one layer is named by `layer` (hex), to
/// `repository` under `tag`; returns its digest.
pub async fn push(ecr: &aws_sdk_ecr::Client, repository: &str, tag: &str, layer: &str) -> String {
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": { "mediaType": "application/vnd.docker.container.image.v1+json", "size": 7023,
                    "digest": format!("sha256:{}", "c".repeat(64)) },
        "layers": [ { "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 32654,
                      "digest": format!("sha256:{layer:0>64}") } ],
    });
    let output = ecr
        .put_image()
        .repository_name(repository)
        .image_manifest(manifest.to_string())
        .image_tag(tag)
        .send()
        .await
        .unwrap();
    output
        .image
        .unwrap()
        .image_id
        .unwrap()
        .image_digest
        .unwrap()
}

/// The digest `tag` points at in `repository`, if it is there.
pub async fn tagged(ecr: &aws_sdk_ecr::Client, repository: &str, tag: &str) -> Option<String> {
    let output = ecr
        .batch_get_image()
        .repository_name(repository)
        .image_ids(ImageIdentifier::builder().image_tag(tag).build())
        .send()
        .await
        .unwrap();
    output
        .images
        .unwrap_or_default()
        .into_iter()
        .next()?
        .image_id?
        .image_digest
}
