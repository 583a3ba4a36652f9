//! The ECS actuator. Services come from config (`services = { hatching = [...] }`) or
//! from their tags (`deployment:service`, `deployment:env`), found once per start.
//!
//! With an `ecr_tag` pin the task definitions (Terraform's) already name the floating
//! tag: the apply is a new deployment of exactly the services whose tag moved (or whose
//! running tasks run another digest), and no task definition is registered. Otherwise
//! every container whose image is from the repository of a release image is pointed at
//! that image in a new task definition revision, and the service is redeployed on it.
//!
//! Done when each service's deployment is still its primary and COMPLETED, and its
//! running tasks (where any run) run the release: by digest with a floating tag, by
//! image URI otherwise. A failed or replaced (rolled-back) deployment fails.
//! Services are described ten per call, on each poll.

use std::{collections::BTreeMap, time::Duration};

use async_trait::async_trait;
use aws_sdk_ecs::{
    Client,
    types::{
        ContainerDefinition, Deployment, DeploymentRolloutState, Service, Tag, TaskDefinition,
        TaskDefinitionField,
    },
};
use serde::{Deserialize, Serialize};

mod apply;
mod containers;
mod services;
mod tasks;

use super::{Actuator, ActuatorError, Progress, Run, Start};

#[derive(Debug, Clone)]
pub struct Ecs {
    pub client: Client,
    pub cluster: String,
    pub services: BTreeMap<String, Vec<String>>,
    pub discover_by_tags: bool,
    pub poll_interval: Duration,
    pub timeout: Duration,
    /// The pin is a floating tag the task definitions name (`ecr_tag`): redeploy, never
    /// register.
    pub floating_tag: bool,
}

/// What a started run is followed by (the handle, as JSON).
#[derive(Debug, Default, Serialize, Deserialize)]
struct Expected {
    /// ECS service name → how it should end.
    services: BTreeMap<String, Ending>,
    /// Image repository → the digest its containers must run (floating tag).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    digests: BTreeMap<String, String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Ending {
    task_definition: String,
    /// The deployment that must end primary and COMPLETED.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    deployment: Option<String>,
}

impl Expected {
    /// Today's handle, or the one before it (`{service: task definition ARN}`).
    fn parse(handle: &str) -> Self {
        serde_json::from_str(handle).unwrap_or_else(|_| Self {
            services: serde_json::from_str::<BTreeMap<String, String>>(handle)
                .unwrap_or_default()
                .into_iter()
                .map(|(name, task_definition)| {
                    (
                        name,
                        Ending {
                            task_definition,
                            deployment: None,
                        },
                    )
                })
                .collect(),
            ..Self::default()
        })
    }
}

fn primary(service: &Service) -> Option<&Deployment> {
    service
        .deployments()
        .iter()
        .find(|d| d.status.as_deref() == Some("PRIMARY"))
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

    /// An ECS rollout cannot be stopped half-way by relctl without starting another:
    /// it is no longer followed, and ECS finishes (or its circuit breaker rolls back)
    /// the deployments it was given.
    async fn cancel(
        &self,
        _key: &crate::model::EnvKey,
        _handle: &str,
        _reason: &str,
    ) -> Result<String, ActuatorError> {
        Ok(format!(
            "the ECS rollout in cluster {} is no longer followed: ECS goes on with the deployments it was given (see the services' events); the pins stay as written",
            self.cluster
        ))
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }

    fn follows_moved_pins(&self) -> bool {
        self.floating_tag
    }

    async fn start(&self, run: &Run<'_>) -> Result<Start, ActuatorError> {
        let targets = self.targets(run).await?;
        if targets.is_empty() {
            return Err(ActuatorError::Refused(self.looked_for(run)));
        }
        let expected = if self.floating_tag {
            self.redeploy(run, targets).await?
        } else {
            self.retarget(targets).await?
        };
        serde_json::to_string(&expected)
            .map(Start::Started)
            .map_err(|e| ActuatorError::Spawn {
                what: "ecs deployment".into(),
                source: e.into(),
            })
    }

    async fn check(&self, run: &Run<'_>, handle: &str) -> Result<Progress, ActuatorError> {
        let expected = Expected::parse(handle);
        if expected.services.is_empty() {
            return Ok(Progress::Failed {
                message: self.looked_for(run),
            });
        }
        let names: Vec<String> = expected.services.keys().cloned().collect();
        let described = self.describe(&names, false).await?;
        let mut waiting = Vec::new();
        for (name, ending) in &expected.services {
            let Some(service) = described
                .iter()
                .find(|s| s.service_name.as_deref() == Some(name.as_str()))
            else {
                return Ok(Progress::Failed {
                    message: format!(
                        "ECS service {name} is no longer in cluster {}",
                        self.cluster
                    ),
                });
            };
            let Some(primary) = primary(service) else {
                waiting.push(name.clone());
                continue;
            };
            let replaced = match &ending.deployment {
                Some(id) => primary.id.as_deref() != Some(id.as_str()),
                None => primary.task_definition.as_deref() != Some(ending.task_definition.as_str()),
            };
            if replaced {
                return Ok(Progress::Failed {
                    message: format!(
                        "ECS service {name} rolled back to {} (deployment {}: circuit breaker or another deployment)",
                        primary.task_definition.as_deref().unwrap_or("?"),
                        primary.id.as_deref().unwrap_or("?"),
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
                Some(DeploymentRolloutState::Completed) => {}
                // What a person following it reads: how far each rollout is.
                _ => waiting.push(format!(
                    "{name} ({}/{} tasks running)",
                    primary.running_count, primary.desired_count
                )),
            }
        }
        if !waiting.is_empty() {
            return Ok(Progress::Waiting {
                after: self.poll_interval,
                message: format!("waiting for ECS deployments: {}", waiting.join(", ")),
            });
        }
        if let Some(wrong) = self.wrong_digest(&expected).await? {
            return Ok(Progress::Failed { message: wrong });
        }
        Ok(Progress::Done {
            message: format!("{} ECS services run the release", expected.services.len()),
        })
    }
}
