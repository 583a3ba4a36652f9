//! The Lambda actuator: point each configured function at its service's image
//! (UpdateFunctionCode) where it runs another, then wait for `LastUpdateStatus`
//! `Successful`. The pin is written as well, so a later Terraform run keeps the version.

use std::{collections::BTreeMap, time::Duration};

use async_trait::async_trait;
use aws_sdk_lambda::{Client, types::LastUpdateStatus};

use super::{Actuator, ActuatorError, Progress, Run, Start};

#[derive(Debug, Clone)]
pub struct Lambda {
    pub client: Client,
    /// release service id → function name.
    pub functions: BTreeMap<String, String>,
    pub poll_interval: Duration,
    pub timeout: Duration,
}

impl Lambda {
    /// (function, image it should run) for the services this release has.
    fn targets<'a>(&'a self, run: &'a Run<'_>) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.functions.iter().filter_map(|(service, function)| {
            run.images
                .get(service)
                .map(|uri| (function.as_str(), uri.as_str()))
        })
    }

    async fn current(
        &self,
        function: &str,
    ) -> Result<(Option<String>, Option<LastUpdateStatus>, Option<String>), ActuatorError> {
        let output = self
            .client
            .get_function()
            .function_name(function)
            .send()
            .await
            .map_err(|e| ActuatorError::aws(format!("read Lambda function {function}"), e))?;
        let image = output.code.and_then(|c| c.image_uri);
        let config = output.configuration;
        Ok((
            image,
            config.as_ref().and_then(|c| c.last_update_status.clone()),
            config.and_then(|c| c.last_update_status_reason),
        ))
    }
}

#[async_trait]
impl Actuator for Lambda {
    fn kind(&self) -> &'static str {
        "lambda"
    }

    /// A function's code update cannot be taken back once made: no longer followed.
    async fn cancel(
        &self,
        _key: &crate::model::EnvKey,
        _handle: &str,
        _reason: &str,
    ) -> Result<String, ActuatorError> {
        Ok("the Lambda code updates already made stay; they are no longer followed".into())
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }

    async fn start(&self, run: &Run<'_>) -> Result<Start, ActuatorError> {
        if self.targets(run).next().is_none() {
            let services: Vec<&str> = run.images.keys().map(String::as_str).collect();
            let configured: Vec<String> = self
                .functions
                .iter()
                .map(|(s, f)| format!("{s} → {f}"))
                .collect();
            return Err(ActuatorError::Refused(format!(
                "no Lambda function runs any of this release's services ({}): configured functions: {}",
                services.join(", "),
                if configured.is_empty() {
                    "none".to_owned()
                } else {
                    configured.join(", ")
                }
            )));
        }
        let mut updated = Vec::new();
        for (function, uri) in self.targets(run) {
            let (image, _, _) = self.current(function).await?;
            if image.as_deref() == Some(uri) {
                continue;
            }
            self.client
                .update_function_code()
                .function_name(function)
                .image_uri(uri)
                .send()
                .await
                .map_err(|e| ActuatorError::aws(format!("update Lambda function {function}"), e))?;
            updated.push(function.to_owned());
        }
        Ok(Start::Started(updated.join(",")))
    }

    async fn check(&self, run: &Run<'_>, _handle: &str) -> Result<Progress, ActuatorError> {
        let mut waiting = Vec::new();
        let mut running = 0;
        for (function, uri) in self.targets(run) {
            running += 1;
            let (image, status, reason) = self.current(function).await?;
            match status {
                Some(LastUpdateStatus::Failed) => {
                    return Ok(Progress::Failed {
                        message: format!(
                            "Lambda function {function} update failed: {}",
                            reason.unwrap_or_default()
                        ),
                    });
                }
                Some(LastUpdateStatus::Successful) | None if image.as_deref() == Some(uri) => {}
                _ => waiting.push(function),
            }
        }
        Ok(if waiting.is_empty() {
            Progress::Done {
                message: format!("{running} Lambda functions run the release"),
            }
        } else {
            Progress::Waiting {
                after: self.poll_interval,
                message: format!(
                    "waiting for Lambda functions to update: {}",
                    waiting.join(", ")
                ),
            }
        })
    }
}
