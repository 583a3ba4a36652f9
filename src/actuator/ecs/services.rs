//! Finding the ECS services a release is for, and describing them: ten per
//! DescribeServices call (ECS's most), once per reconcile.

use std::collections::BTreeMap;

use aws_sdk_ecs::types::{Service, ServiceField};

use super::Ecs;
use crate::actuator::{ActuatorError, Run};

/// An ECS service a release is for, as described, and the release images it runs:
/// `(release service, image URI)`.
pub(super) struct Target<'a> {
    pub service: Service,
    pub images: Vec<(&'a str, &'a str)>,
}

impl Ecs {
    /// ECS service name → what it is and the release images it should run.
    pub(super) async fn targets<'a>(
        &self,
        run: &'a Run<'_>,
    ) -> Result<BTreeMap<String, Target<'a>>, ActuatorError> {
        let mut targets: BTreeMap<String, Target<'a>> = BTreeMap::new();
        let mut named: BTreeMap<String, Vec<(&'a str, &'a str)>> = BTreeMap::new();
        for (service, names) in &self.services {
            if let Some((service, uri)) = run.images.get_key_value(service) {
                for name in names {
                    named
                        .entry(name.clone())
                        .or_default()
                        .push((service.as_str(), uri.as_str()));
                }
            }
        }
        if self.discover_by_tags {
            for service in self.tagged(&run.key.environment).await? {
                let name = service.service_name.clone().unwrap_or_default();
                let feeds: Vec<(&str, &str)> = service
                    .tags()
                    .iter()
                    .filter(|t| t.key.as_deref() == Some("deployment:service"))
                    .filter_map(|t| t.value.as_deref())
                    .flat_map(|v| v.split(','))
                    .filter_map(|s| run.images.get_key_value(s.trim()))
                    .map(|(s, uri)| (s.as_str(), uri.as_str()))
                    .collect();
                if feeds.is_empty() {
                    continue;
                }
                let mut images = named.remove(&name).unwrap_or_default();
                images.extend(feeds);
                targets.insert(name, Target { service, images });
            }
        }
        let names: Vec<String> = named.keys().cloned().collect();
        for service in self.describe(&names, false).await? {
            let name = service.service_name.clone().unwrap_or_default();
            if let Some(images) = named.remove(&name) {
                targets.insert(name, Target { service, images });
            }
        }
        if let Some(missing) = named.keys().next() {
            return Err(ActuatorError::Aws {
                op: format!("describe ECS service {missing}"),
                source: crate::aws::AwsError::other(
                    format!("no service {missing} in cluster {}", self.cluster),
                    crate::aws::ErrorClass::NotFound,
                ),
            });
        }
        Ok(targets)
    }

    /// `names` (or ARNs), ten per call; those the cluster does not have are left out.
    pub(super) async fn describe(
        &self,
        names: &[String],
        tags: bool,
    ) -> Result<Vec<Service>, ActuatorError> {
        let mut found = Vec::new();
        for chunk in names.chunks(10) {
            let mut request = self
                .client
                .describe_services()
                .cluster(&self.cluster)
                .set_services(Some(chunk.to_vec()));
            if tags {
                request = request.include(ServiceField::Tags);
            }
            let output = request
                .send()
                .await
                .map_err(|e| ActuatorError::aws("describe ECS services", e))?;
            found.extend(output.services.unwrap_or_default());
        }
        Ok(found)
    }

    /// The cluster's services tagged `deployment:env = {env}`.
    async fn tagged(&self, env: &str) -> Result<Vec<Service>, ActuatorError> {
        let mut arns = Vec::new();
        let mut pages = self
            .client
            .list_services()
            .cluster(&self.cluster)
            .max_results(100)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| ActuatorError::aws("list ECS services", e))?;
            arns.extend(page.service_arns.unwrap_or_default());
        }
        Ok(self
            .describe(&arns, true)
            .await?
            .into_iter()
            .filter(|s| {
                s.tags().iter().any(|t| {
                    t.key.as_deref() == Some("deployment:env") && t.value.as_deref() == Some(env)
                })
            })
            .collect())
    }
}
