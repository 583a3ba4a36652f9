//! The CodePipeline actuator: start the environment's pipeline (V2: with variables such
//! as the release id) and follow the execution by requeue. A manual approval waiting
//! is its own state; Failed, Stopped, Superseded and Cancelled are failures with the
//! pipeline's reason. The start carries a token derived from the intent, so a retried
//! start (after a crash before its id was recorded) does not start a second execution.

use std::{collections::BTreeMap, time::Duration};

use async_trait::async_trait;
use aws_sdk_codepipeline::{
    Client,
    types::{PipelineExecutionStatus, PipelineVariable},
};

use super::{Actuator, ActuatorError, Progress, Run, Start};

#[derive(Debug, Clone)]
pub struct CodePipeline {
    pub client: Client,
    pub pipeline: String,
    pub variables: BTreeMap<String, String>,
    pub poll_interval: Duration,
    pub timeout: Duration,
}

impl CodePipeline {
    /// "awaiting approval in stage X (action Y)", if the execution waits on one.
    /// Where `execution` is: an approval it waits for, else the stage it runs in.
    async fn position(&self, execution: &str) -> Result<Position, ActuatorError> {
        let state = self
            .client
            .get_pipeline_state()
            .name(&self.pipeline)
            .send()
            .await
            .map_err(|e| ActuatorError::aws("GetPipelineState", e))?;
        let mut running = None;
        for stage in state.stage_states.unwrap_or_default() {
            let ours = stage
                .latest_execution
                .as_ref()
                .filter(|l| l.pipeline_execution_id == execution);
            let Some(latest) = ours else {
                continue;
            };
            let in_progress = latest.status.as_str() == "InProgress";
            for action in stage.action_states.as_deref().unwrap_or_default() {
                let waiting = action.latest_execution.as_ref().is_some_and(|l| {
                    l.status
                        .as_ref()
                        .is_some_and(|s| s.as_str() == "InProgress")
                        && l.token.is_some()
                });
                if waiting {
                    return Ok(Position::Approval(format!(
                        "awaiting approval in stage {} (action {})",
                        stage.stage_name.as_deref().unwrap_or("?"),
                        action.action_name.as_deref().unwrap_or("?")
                    )));
                }
            }
            if in_progress && running.is_none() {
                running = stage.stage_name.clone();
            }
        }
        Ok(running.map_or(Position::Unknown, Position::Stage))
    }
}

/// Where an execution is, as the pipeline's state says.
enum Position {
    Approval(String),
    Stage(String),
    Unknown,
}

#[async_trait]
impl Actuator for CodePipeline {
    fn kind(&self) -> &'static str {
        "codepipeline"
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }

    async fn start(&self, run: &Run<'_>) -> Result<Start, ActuatorError> {
        let mut request = self
            .client
            .start_pipeline_execution()
            .name(&self.pipeline)
            .client_request_token(run.token());
        for (name, value) in &self.variables {
            let variable = PipelineVariable::builder()
                .name(name)
                .value(run.fill(value))
                .build()
                .map_err(|e| ActuatorError::Spawn {
                    what: format!("pipeline {}", self.pipeline),
                    source: e.into(),
                })?;
            request = request.variables(variable);
        }
        let output = request
            .send()
            .await
            .map_err(|e| ActuatorError::aws(format!("start pipeline {}", self.pipeline), e))?;
        output
            .pipeline_execution_id
            .map(Start::Started)
            .ok_or_else(|| ActuatorError::Spawn {
                what: format!("pipeline {}", self.pipeline),
                source: "no execution id returned".into(),
            })
    }

    async fn cancel(
        &self,
        _key: &crate::model::EnvKey,
        handle: &str,
        reason: &str,
    ) -> Result<String, ActuatorError> {
        let result = self
            .client
            .stop_pipeline_execution()
            .pipeline_name(&self.pipeline)
            .pipeline_execution_id(handle)
            .abandon(false)
            .reason(reason.chars().take(200).collect::<String>())
            .send()
            .await;
        match result {
            Ok(_) => Ok(format!(
                "pipeline {} execution {handle} was stopped (actions in progress finish first)",
                self.pipeline
            )),
            // Already over, or stopping: nothing left to stop.
            Err(e)
                if e.as_service_error().is_some_and(|s| {
                    s.is_pipeline_execution_not_stoppable_exception()
                        || s.is_duplicated_stop_request_exception()
                }) =>
            {
                Ok(format!(
                    "pipeline {} execution {handle} could not be stopped: {}",
                    self.pipeline,
                    crate::aws::error_message(&e)
                ))
            }
            Err(e) => Err(ActuatorError::aws(
                format!("stop pipeline {}", self.pipeline),
                e,
            )),
        }
    }

    async fn check(&self, _run: &Run<'_>, handle: &str) -> Result<Progress, ActuatorError> {
        let output = self
            .client
            .get_pipeline_execution()
            .pipeline_name(&self.pipeline)
            .pipeline_execution_id(handle)
            .send()
            .await
            .map_err(|e| ActuatorError::aws(format!("follow pipeline {}", self.pipeline), e))?;
        let execution = output
            .pipeline_execution
            .unwrap_or_else(|| aws_sdk_codepipeline::types::PipelineExecution::builder().build());
        let summary = execution.status_summary.unwrap_or_default();
        let name = &self.pipeline;
        Ok(match execution.status {
            Some(PipelineExecutionStatus::Succeeded) => Progress::Done {
                message: format!("pipeline {name} execution {handle} succeeded"),
            },
            Some(PipelineExecutionStatus::InProgress | PipelineExecutionStatus::Stopping)
            | None => match self.position(handle).await? {
                Position::Approval(waiting) => Progress::AwaitingApproval {
                    after: self.poll_interval,
                    plan: None,
                    message: format!("pipeline {name}: {waiting}"),
                },
                Position::Stage(stage) => Progress::Waiting {
                    after: self.poll_interval,
                    message: format!(
                        "pipeline {name} execution {handle} in progress: stage {}",
                        crate::model::text::message(&stage)
                    ),
                },
                Position::Unknown => Progress::Waiting {
                    after: self.poll_interval,
                    message: format!("pipeline {name} execution {handle} in progress"),
                },
            },
            Some(other) => Progress::Failed {
                message: format!(
                    "pipeline {name} execution {handle} {}{}",
                    other.as_str().to_lowercase(),
                    if summary.is_empty() {
                        String::new()
                    } else {
                        format!(": {summary}")
                    }
                ),
            },
        })
    }
}
