//! RFC 013 pins: one SSM String parameter per service at
//! `/{project_id}/images/{environment_id}/{service_id}`.

use async_trait::async_trait;
use aws_sdk_ssm::{Client, types::ParameterType};

use super::{Pin, PinError, Target};
use crate::model::{Change, EnvKey, Images};

#[derive(Debug, Clone)]
pub struct SsmParameters {
    client: Client,
}

impl SsmParameters {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

/// `/{project}/images/{label}`: the ids are validated before they get here.
pub fn label_path(project: &str, label: &str) -> String {
    format!("/{project}/images/{label}")
}

pub fn parameter_name(key: &EnvKey, service: &str) -> String {
    format!("{}/{service}", label_path(&key.project, &key.environment))
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
            message: crate::aws::error_message(&e),
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

#[async_trait]
impl Pin for SsmParameters {
    async fn read(&self, target: &Target<'_>) -> Result<Images, PinError> {
        read_label(&self.client, &target.key.project, &target.key.environment).await
    }

    async fn write(&self, target: &Target<'_>, changes: &[Change]) -> Result<(), PinError> {
        for change in changes {
            let name = parameter_name(target.key, &change.service);
            self.client
                .put_parameter()
                .name(&name)
                .value(&change.to)
                .r#type(ParameterType::String)
                .overwrite(true)
                .description(format!("relctl: release {}", target.release_id))
                .send()
                .await
                .map_err(|e| PinError::Write {
                    service: change.service.clone(),
                    location: name.clone(),
                    message: crate::aws::error_message(&e),
                })?;
        }
        Ok(())
    }
}
