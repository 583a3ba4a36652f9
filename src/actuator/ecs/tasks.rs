//! What the running tasks of a cluster's services run: the image each container was
//! started from and the digest ECS resolved it to. One ListTasks page and one
//! DescribeTasks call per hundred running tasks of the cluster.

use std::collections::BTreeMap;

use aws_sdk_ecs::types::{DesiredStatus, Task};

use super::Ecs;
use crate::actuator::ActuatorError;

/// One container of a running task: `(image URI, digest)`.
pub(super) type Container = (String, Option<String>);

/// A running task of a service.
pub(super) struct Running {
    /// The deployment that started it (`ecs-svc/…`).
    pub started_by: Option<String>,
    pub containers: Vec<Container>,
}

impl Ecs {
    /// Service name → its running tasks, for the services in `of`.
    pub(super) async fn running(
        &self,
        of: &[&str],
    ) -> Result<BTreeMap<String, Vec<Running>>, ActuatorError> {
        let mut arns = Vec::new();
        let mut pages = self
            .client
            .list_tasks()
            .cluster(&self.cluster)
            .desired_status(DesiredStatus::Running)
            .max_results(100)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| ActuatorError::aws("list ECS tasks", e))?;
            arns.extend(page.task_arns.unwrap_or_default());
        }
        let mut running: BTreeMap<String, Vec<Running>> = BTreeMap::new();
        for chunk in arns.chunks(100) {
            let output = self
                .client
                .describe_tasks()
                .cluster(&self.cluster)
                .set_tasks(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| ActuatorError::aws("describe ECS tasks", e))?;
            for task in output.tasks.unwrap_or_default() {
                if let Some(service) = service_of(&task).filter(|s| of.contains(s)) {
                    running
                        .entry(service.to_owned())
                        .or_default()
                        .push(Running::from(&task));
                }
            }
        }
        Ok(running)
    }
}

/// The service a task belongs to: ECS groups a service's tasks as `service:{name}`.
fn service_of(task: &Task) -> Option<&str> {
    if task.last_status.as_deref() != Some("RUNNING") {
        return None;
    }
    task.group.as_deref()?.strip_prefix("service:")
}

impl From<&Task> for Running {
    fn from(task: &Task) -> Self {
        Self {
            started_by: task.started_by.clone(),
            containers: task
                .containers()
                .iter()
                .map(|c| (c.image.clone().unwrap_or_default(), c.image_digest.clone()))
                .collect(),
        }
    }
}
