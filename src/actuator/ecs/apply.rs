//! Starting an ECS apply: a new deployment of each service whose images change, on the
//! task definition it has (floating tag) or on a new revision of it (pinned images).

use std::collections::BTreeMap;

use super::{
    Ecs, Ending, Expected,
    containers::{repository_of, retarget, unmatched},
    primary,
    services::Target,
    tasks::Running,
};
use crate::actuator::{ActuatorError, Run};

/// A container of a running task from one of `digests`' repositories that runs
/// another digest: `(image, digest it runs, digest wanted)`.
fn other_digest<'a>(
    task: &'a Running,
    digests: &'a BTreeMap<String, String>,
) -> Option<(&'a str, &'a str, &'a str)> {
    task.containers.iter().find_map(|(image, digest)| {
        let want = repository_of(image).and_then(|repo| digests.get(&repo))?;
        let got = digest.as_deref()?;
        (got != want).then_some((image.as_str(), got, want.as_str()))
    })
}

impl Ecs {
    /// Floating tag: redeploys the services fed by a moved tag, and those whose running
    /// tasks run another digest than the tag now names (a tag moved by an earlier
    /// attempt that stopped before it redeployed); registers nothing.
    pub(super) async fn redeploy(
        &self,
        run: &Run<'_>,
        targets: BTreeMap<String, Target<'_>>,
    ) -> Result<Expected, ActuatorError> {
        let mut expected = Expected::default();
        for target in targets.values() {
            for (service, uri) in &target.images {
                if let (Some(repo), Some(digest)) = (repository_of(uri), run.pinned.get(*service)) {
                    expected.digests.insert(repo, digest.clone());
                }
            }
        }
        let names: Vec<&str> = targets.keys().map(String::as_str).collect();
        let running = if expected.digests.is_empty() {
            BTreeMap::new()
        } else {
            self.running(&names).await?
        };
        for (name, target) in targets {
            let moved = target
                .images
                .iter()
                .any(|(service, _)| run.moved.iter().any(|m| m == service));
            let stale = running.get(&name).is_some_and(|tasks| {
                tasks
                    .iter()
                    .any(|t| other_digest(t, &expected.digests).is_some())
            });
            let deployment = if moved || stale {
                self.force(&name, None).await?
            } else {
                primary(&target.service).and_then(|d| d.id.clone())
            };
            let task_definition = target.service.task_definition.clone().unwrap_or_default();
            expected.services.insert(
                name,
                Ending {
                    task_definition,
                    deployment,
                },
            );
        }
        Ok(expected)
    }

    /// Pinned images: a new revision of each service's task definition whose containers
    /// run another image of a release image's repository, and a deployment on it.
    pub(super) async fn retarget(
        &self,
        targets: BTreeMap<String, Target<'_>>,
    ) -> Result<Expected, ActuatorError> {
        let mut expected = Expected::default();
        for (name, target) in targets {
            let desired: Vec<&str> = target.images.iter().map(|(_, uri)| *uri).collect();
            let current = target.service.task_definition.clone().unwrap_or_default();
            let (definition, tags) = self.definition(&current).await?;
            let missing = unmatched(&definition, &desired);
            if !missing.is_empty() {
                return Err(ActuatorError::Refused(format!(
                    "ECS service {name} ({current}) has no container from the repository of {}",
                    missing.join(", ")
                )));
            }
            let ending = match retarget(&definition, &desired) {
                None => Ending {
                    task_definition: current,
                    deployment: primary(&target.service).and_then(|d| d.id.clone()),
                },
                Some(containers) => {
                    let arn = self.register(definition, tags, containers).await?;
                    let deployment = self.force(&name, Some(&arn)).await?;
                    Ending {
                        task_definition: arn,
                        deployment,
                    }
                }
            };
            expected.services.insert(name, ending);
        }
        Ok(expected)
    }

    /// A new deployment of `name` (on `task_definition`, if given); its id.
    async fn force(
        &self,
        name: &str,
        task_definition: Option<&str>,
    ) -> Result<Option<String>, ActuatorError> {
        let output = self
            .client
            .update_service()
            .cluster(&self.cluster)
            .service(name)
            .set_task_definition(task_definition.map(str::to_owned))
            .force_new_deployment(true)
            .send()
            .await
            .map_err(|e| ActuatorError::aws(format!("update ECS service {name}"), e))?;
        Ok(output
            .service
            .as_ref()
            .and_then(primary)
            .and_then(|d| d.id.clone()))
    }

    /// Floating tag: a running task of our deployment that runs another digest than the
    /// tag named when it was moved. None when all run the release (or none runs).
    pub(super) async fn wrong_digest(
        &self,
        expected: &Expected,
    ) -> Result<Option<String>, ActuatorError> {
        if expected.digests.is_empty() {
            return Ok(None);
        }
        let names: Vec<&str> = expected.services.keys().map(String::as_str).collect();
        let running = self.running(&names).await?;
        for (name, ending) in &expected.services {
            let ours =
                running.get(name).into_iter().flatten().filter(|task| {
                    ending.deployment.is_none() || task.started_by == ending.deployment
                });
            for task in ours {
                if let Some((image, got, want)) = other_digest(task, &expected.digests) {
                    return Ok(Some(format!(
                        "ECS service {name} runs {image} as {got}, not the release's {want}: does its task definition name the floating tag?"
                    )));
                }
            }
        }
        Ok(None)
    }
}
