//! RFC 013 pins: one SSM String parameter per service at
//! `/{project_id}/images/{environment_id}/{service_id}`, optionally labelled with the
//! release (`release-{release_id}`) so SSM's own history says which release wrote it.

use async_trait::async_trait;
use aws_sdk_ssm::{Client, types::ParameterType};

use super::{Pin, PinError, Target, Written};
use crate::model::{Change, EnvKey, Images, plan};

#[derive(Debug, Clone)]
pub struct SsmParameters {
    client: Client,
    label: bool,
}

impl SsmParameters {
    pub fn new(client: Client, label: bool) -> Self {
        Self { client, label }
    }
}

/// `/{project}/images/{label}`: the ids are validated before they get here.
pub fn label_path(project: &str, label: &str) -> String {
    format!("/{project}/images/{label}")
}

pub fn parameter_name(key: &EnvKey, service: &str) -> String {
    format!("{}/{service}", label_path(&key.project, &key.environment))
}

/// An SSM parameter label for a release: letters, digits, `.`, `-`, `_`, at most 100
/// characters, not starting with a digit (SSM's rules).
pub fn release_label(release_id: &str) -> String {
    let clean: String = release_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let mut label = format!("release-{clean}");
    label.truncate(100);
    label
}

/// Every `service → value` under `/{project}/images/{label}/`.
pub async fn read_label(client: &Client, project: &str, label: &str) -> Result<Images, PinError> {
    let path = label_path(project, label);
    let mut images = Images::new();
    let mut pages = client
        .get_parameters_by_path()
        .path(&path)
        .recursive(false)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| PinError::Read {
            location: path.clone(),
            source: crate::aws::AwsError::from_sdk(e),
        })?;
        for parameter in page.parameters.unwrap_or_default() {
            let (Some(name), Some(value)) = (parameter.name, parameter.value) else {
                continue;
            };
            if let Some(service) = name.strip_prefix(&format!("{path}/")) {
                images.insert(service.to_owned(), value);
            }
        }
    }
    Ok(images)
}

/// The pinned `service → value` of the parameters `names` (of `key`'s environment),
/// ten per GetParameters call (SSM's most); a parameter that does not exist is absent.
pub async fn read_names(
    client: &Client,
    key: &EnvKey,
    names: impl Iterator<Item = String>,
) -> Result<Images, PinError> {
    let prefix = format!("{}/", label_path(&key.project, &key.environment));
    let names: Vec<String> = names.collect();
    let mut images = Images::new();
    for chunk in names.chunks(10) {
        let output = client
            .get_parameters()
            .set_names(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(|e| PinError::Read {
                location: prefix.trim_end_matches('/').to_owned(),
                source: crate::aws::AwsError::from_sdk(e),
            })?;
        for parameter in output.parameters.unwrap_or_default() {
            let (Some(name), Some(value)) = (parameter.name, parameter.value) else {
                continue;
            };
            if let Some(service) = name.strip_prefix(&prefix) {
                images.insert(service.to_owned(), value);
            }
        }
    }
    Ok(images)
}

#[async_trait]
impl Pin for SsmParameters {
    fn kind(&self) -> &'static str {
        "ssm_parameters"
    }

    async fn diff(&self, target: &Target<'_>, desired: &Images) -> Result<Vec<Change>, PinError> {
        let names = desired
            .keys()
            .map(|service| parameter_name(target.key, service));
        let pinned = read_names(&self.client, target.key, names).await?;
        Ok(plan(desired, &pinned).changes)
    }

    async fn write(
        &self,
        target: &Target<'_>,
        _desired: &Images,
        changes: &[Change],
    ) -> Result<Written, PinError> {
        for change in changes {
            let name = parameter_name(target.key, &change.service);
            let failed = |e: crate::aws::AwsError| PinError::Write {
                service: change.service.clone(),
                location: name.clone(),
                source: e,
            };
            let written = self
                .client
                .put_parameter()
                .name(&name)
                .value(&change.to)
                .r#type(ParameterType::String)
                .overwrite(true)
                .description(format!("relctl: release {}", target.release_id))
                .send()
                .await
                .map_err(|e| failed(crate::aws::AwsError::from_sdk(e)))?;
            if self.label {
                self.client
                    .label_parameter_version()
                    .name(&name)
                    .parameter_version(written.version)
                    .labels(release_label(target.release_id))
                    .send()
                    .await
                    .map_err(|e| failed(crate::aws::AwsError::from_sdk(e)))?;
            }
        }
        Ok(Written::Unverified)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_labels_follow_ssm_rules() {
        assert_eq!(release_label("0efcc940-e709"), "release-0efcc940-e709");
        assert_eq!(release_label("a b/c"), "release-a-b-c");
        assert_eq!(release_label(&"x".repeat(200)).len(), 100);
    }
}
