//! S3 in moto for the Terraform source tests: path-style clients, buckets (versioned
//! where a source lives), zip archives built in memory.

use std::io::Write;

use aws_sdk_s3::{
    primitives::ByteStream,
    types::{
        BucketLocationConstraint, BucketVersioningStatus, CreateBucketConfiguration,
        VersioningConfiguration,
    },
};

use super::Harness;

pub fn client(h: &Harness) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&h.sdk)
            .force_path_style(true)
            .build(),
    )
}

pub async fn bucket(s3: &aws_sdk_s3::Client, name: &str, versioned: bool) {
    s3.create_bucket()
        .bucket(name)
        .create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::EuWest1)
                .build(),
        )
        .send()
        .await
        .expect("bucket");
    if versioned {
        s3.put_bucket_versioning()
            .bucket(name)
            .versioning_configuration(
                VersioningConfiguration::builder()
                    .status(BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .expect("versioning");
    }
}

/// A zip archive of `(name, contents)` entries.
pub fn zip(entries: &[(&str, &str)]) -> Vec<u8> {
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, body) in entries {
        out.start_file(*name, zip::write::SimpleFileOptions::default())
            .expect("zip entry");
        out.write_all(body.as_bytes()).expect("zip write");
    }
    out.finish().expect("zip").into_inner()
}

/// Uploads `body`; the VersionId of a versioned bucket.
pub async fn put(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    body: Vec<u8>,
) -> Option<String> {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body))
        .send()
        .await
        .expect("put object")
        .version_id
}

/// `terraform init`'s `-backend-config` arguments, as the TOML strings of a command
/// list, for Terraform's state at `bucket/key` in moto's S3 (path-style, with
/// `use_lockfile`, no AWS account checks).
pub fn backend_args(bucket: &str, key: &str) -> String {
    [
        format!("bucket={bucket}"),
        format!("key={key}"),
        "region=eu-west-1".into(),
        "use_path_style=true".into(),
        "use_lockfile=true".into(),
        "skip_credentials_validation=true".into(),
        "skip_requesting_account_id=true".into(),
        "skip_metadata_api_check=true".into(),
    ]
    .map(|c| format!("\"-backend-config={c}\""))
    .join(", ")
}

/// The JSON document at `bucket/key` (Terraform's state).
pub async fn json(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> serde_json::Value {
    let body = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .expect("object")
        .body
        .collect()
        .await
        .expect("object body")
        .into_bytes();
    serde_json::from_slice(&body).expect("a JSON document")
}
