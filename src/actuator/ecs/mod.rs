//! The ECS actuator. Services come from config (`services = { hatching = [...] }`) or
//! from their tags (`deployment:service`, `deployment:env`). For each service, every
//! container whose image is from the repository of a release image is pointed at that
//! image: one image may feed several services and one service may run several images.
//! A service already running the desired images is left alone; the others get a new
//! task definition revision and a new deployment. Done when each service's primary
//! deployment is COMPLETED on that revision; a failed or rolled-back deployment fails.

use std::{collections::BTreeMap, time::Duration};

use async_trait::async_trait;
use aws_sdk_ecs::{
    Client,
    types::{
        ContainerDefinition, DeploymentRolloutState, Service, ServiceField, Tag, TaskDefinition,
        TaskDefinitionField,
    },
};

mod containers;

use super::{Actuator, ActuatorError, Progress, Run, Start};
use containers::{retarget, unmatched};

#[derive(Debug, Clone)]
pub struct Ecs {
    pub client: Client,
    pub cluster: String,
    pub services: BTreeMap<String, Vec<String>>,
    pub discover_by_tags: bool,
    pub poll_interval: Duration,
    pub timeout: Duration,
}

impl Ecs {
    /// What was looked for, for a failure when nothing runs the release.
    fn looked_for(&self, run: &Run<'_>) -> String {
        let services: Vec<&str> = run.images.keys().map(String::as_str).collect();
        let mut places = Vec::new();
        if !self.services.is_empty() {
            let configured: Vec<String> = self
                .services
                .iter()
                .map(|(s, names)| format!("{s} → {}", names.join(", ")))
                .collect();
            places.push(format!("configured services ({})", configured.join("; ")));
        }
        if self.discover_by_tags {
            places.push(format!(
                "services tagged deployment:env={} with deployment:service naming one of them",
                run.key.environment
            ));
        }
        format!(
            "no ECS service in cluster {} runs any of this release's services ({}): looked for {}",
            self.cluster,
            services.join(", "),
            if places.is_empty() {
                "nothing (no services configured, tag discovery off)".to_owned()
            } else {
                places.join(" and ")
            }
        )
    }

    /// ECS service name → the release images it should run.
    async fn targets<'a>(
        &self,
        run: &'a Run<'_>,
    ) -> Result<BTreeMap<String, Vec<&'a str>>, ActuatorError> {
        let mut targets: BTreeMap<String, Vec<&str>> = BTreeMap::new();
        for (service, names) in &self.services {
            if let Some(uri) = run.images.get(service) {
                for name in names {
                    targets.entry(name.clone()).or_default().push(uri);
                }
            }
        }
        if self.discover_by_tags {
            for service in self.tagged(&run.key.environment).await? {
                let name = service.service_name.clone().unwrap_or_default();
                let feeds = service
                    .tags()
                    .iter()
                    .filter(|t| t.key.as_deref() == Some("deployment:service"))
                    .filter_map(|t| t.value.as_deref())
                    .flat_map(|v| v.split(','))
                    .filter_map(|s| run.images.get(s.trim()));
                for uri in feeds {
                    targets.entry(name.clone()).or_default().push(uri);
                }
            }
        }
        Ok(targets)
    }

    /// The cluster's services tagged `deployment:env = {env}`.
    async fn tagged(&self, env: &str) -> Result<Vec<Service>, ActuatorError> {
        let mut arns = Vec::new();
        let mut pages = self
            .client
            .list_services()
            .cluster(&self.cluster)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| ActuatorError::aws("list ECS services", e))?;
            arns.extend(page.service_arns.unwrap_or_default());
        }
        let mut found = Vec::new();
        for chunk in arns.chunks(10) {
            let output = self
                .client
                .describe_services()
                .cluster(&self.cluster)
                .set_services(Some(chunk.to_vec()))
                .include(ServiceField::Tags)
                .send()
                .await
                .map_err(|e| ActuatorError::aws("describe ECS services", e))?;
            found.extend(output.services.unwrap_or_default().into_iter().filter(|s| {
                s.tags().iter().any(|t| {
                    t.key.as_deref() == Some("deployment:env") && t.value.as_deref() == Some(env)
                })
            }));
        }
        Ok(found)
    }

    async fn service(&self, name: &str) -> Result<Service, ActuatorError> {
        let output = self
            .client
            .describe_services()
            .cluster(&self.cluster)
            .services(name)
            .send()
            .await
            .map_err(|e| ActuatorError::aws(format!("describe ECS service {name}"), e))?;
        output
            .services
            .unwrap_or_default()
            .into_iter()
            .next()
            .ok_or_else(|| ActuatorError::Aws {
                op: format!("describe ECS service {name}"),
                source: crate::aws::AwsError::other(
                    format!("no service {name} in cluster {}", self.cluster),
                    crate::aws::ErrorClass::NotFound,
                ),
            })
    }

    /// The task definition at `arn` and its tags (kept when it is registered again).
    async fn definition(&self, arn: &str) -> Result<(TaskDefinition, Vec<Tag>), ActuatorError> {
        let output = self
            .client
            .describe_task_definition()
            .task_definition(arn)
            .include(TaskDefinitionField::Tags)
            .send()
            .await
            .map_err(|e| ActuatorError::aws(format!("describe task definition {arn}"), e))?;
        let tags = output.tags.unwrap_or_default();
        let definition = output.task_definition.ok_or_else(|| ActuatorError::Aws {
            op: format!("describe task definition {arn}"),
            source: crate::aws::AwsError::other(
                "no task definition returned",
                crate::aws::ErrorClass::NotFound,
            ),
        })?;
        Ok((definition, tags))
    }

    /// Registers `definition` again with `containers` and every other field it has
    /// (all but the read-only ones: ARN, revision, status, requiresAttributes,
    /// compatibilities, registeredAt/By, deregisteredAt); returns the new revision's ARN.
    async fn register(
        &self,
        definition: TaskDefinition,
        tags: Vec<Tag>,
        containers: Vec<ContainerDefinition>,
    ) -> Result<String, ActuatorError> {
        let output = self
            .client
            .register_task_definition()
            .set_family(definition.family)
            .set_container_definitions(Some(containers))
            .set_task_role_arn(definition.task_role_arn)
            .set_execution_role_arn(definition.execution_role_arn)
            .set_network_mode(definition.network_mode)
            .set_volumes(definition.volumes)
            .set_placement_constraints(definition.placement_constraints)
            .set_requires_compatibilities(definition.requires_compatibilities)
            .set_runtime_platform(definition.runtime_platform)
            .set_cpu(definition.cpu)
            .set_memory(definition.memory)
            .set_inference_accelerators(definition.inference_accelerators)
            .set_pid_mode(definition.pid_mode)
            .set_ipc_mode(definition.ipc_mode)
            .set_proxy_configuration(definition.proxy_configuration)
            .set_ephemeral_storage(definition.ephemeral_storage)
            .set_enable_fault_injection(definition.enable_fault_injection)
            .set_tags((!tags.is_empty()).then_some(tags))
            .send()
            .await
            .map_err(|e| ActuatorError::aws("register task definition", e))?;
        output
            .task_definition
            .and_then(|d| d.task_definition_arn)
            .ok_or_else(|| ActuatorError::Aws {
                op: "register task definition".into(),
                source: crate::aws::AwsError::other(
                    "no ARN returned",
                    crate::aws::ErrorClass::NotFound,
                ),
            })
    }
}

#[async_trait]
impl Actuator for Ecs {
    fn kind(&self) -> &'static str {
        "ecs"
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Handle: JSON `{ecs service: task definition ARN it should end on}`.
    async fn start(&self, run: &Run<'_>) -> Result<Start, ActuatorError> {
        let targets = self.targets(run).await?;
        if targets.is_empty() {
            return Err(ActuatorError::Refused(self.looked_for(run)));
        }
        let mut expected = BTreeMap::new();
        for (name, desired) in targets {
            let service = self.service(&name).await?;
            let current = service.task_definition.clone().unwrap_or_default();
            let (definition, tags) = self.definition(&current).await?;
            let missing = unmatched(&definition, &desired);
            if !missing.is_empty() {
                return Err(ActuatorError::Refused(format!(
                    "ECS service {name} ({current}) has no container from the repository of {}",
                    missing.join(", ")
                )));
            }
            let arn = match retarget(&definition, &desired) {
                None => current,
                Some(containers) => {
                    let arn = self.register(definition, tags, containers).await?;
                    self.client
                        .update_service()
                        .cluster(&self.cluster)
                        .service(&name)
                        .task_definition(&arn)
                        .force_new_deployment(true)
                        .send()
                        .await
                        .map_err(|e| ActuatorError::aws(format!("update ECS service {name}"), e))?;
                    arn
                }
            };
            expected.insert(name, arn);
        }
        serde_json::to_string(&expected)
            .map(Start::Started)
            .map_err(|e| ActuatorError::Spawn {
                what: "ecs deployment".into(),
                source: e.into(),
            })
    }

    async fn check(&self, run: &Run<'_>, handle: &str) -> Result<Progress, ActuatorError> {
        let expected: BTreeMap<String, String> = serde_json::from_str(handle).unwrap_or_default();
        if expected.is_empty() {
            return Ok(Progress::Failed {
                message: self.looked_for(run),
            });
        }
        let targets = self.targets(run).await?;
        let mut waiting = Vec::new();
        for (name, arn) in &expected {
            let service = self.service(name).await?;
            let primary = service
                .deployments()
                .iter()
                .find(|d| d.status.as_deref() == Some("PRIMARY"));
            let Some(primary) = primary else {
                waiting.push(name.clone());
                continue;
            };
            if primary.task_definition.as_deref() != Some(arn.as_str()) {
                return Ok(Progress::Failed {
                    message: format!(
                        "ECS service {name} rolled back to {} (circuit breaker or another deployment)",
                        primary.task_definition.as_deref().unwrap_or("?")
                    ),
                });
            }
            match primary.rollout_state {
                Some(DeploymentRolloutState::Failed) => {
                    return Ok(Progress::Failed {
                        message: format!(
                            "ECS service {name} deployment failed: {}",
                            primary
                                .rollout_state_reason
                                .as_deref()
                                .unwrap_or("no reason given")
                        ),
                    });
                }
                Some(DeploymentRolloutState::Completed) => {
                    let (definition, _) = self.definition(arn).await?;
                    let desired = targets.get(name).cloned().unwrap_or_default();
                    if retarget(&definition, &desired).is_some() {
                        return Ok(Progress::Failed {
                            message: format!(
                                "ECS service {name} completed but does not run the release's images"
                            ),
                        });
                    }
                }
                _ => waiting.push(name.clone()),
            }
        }
        Ok(if waiting.is_empty() {
            Progress::Done {
                message: format!("{} ECS services run the release", expected.len()),
            }
        } else {
            Progress::Waiting {
                after: self.poll_interval,
                message: format!("waiting for ECS deployments: {}", waiting.join(", ")),
            }
        })
    }
}
