//! A scripted CodePipeline for the wire-level stub: executions follow per-execution
//! scripts, starts are deduplicated by their client request token as AWS does.

use std::{collections::VecDeque, sync::Mutex};

use serde_json::{Value, json};

#[derive(Default)]
pub struct Pipeline {
    /// Scripts for the executions to come, one per StartPipelineExecution.
    pub scripts: VecDeque<Vec<&'static str>>,
    /// (id, token, remaining script, variables) per execution.
    pub executions: Vec<(String, String, VecDeque<&'static str>, Value)>,
    /// Ends every waiting approval (and `Hold` step) when set.
    pub release: bool,
    /// StopPipelineExecution calls: (execution id, abandon, reason).
    pub stopped: Vec<(String, bool, String)>,
}

impl Pipeline {
    fn current(
        &mut self,
        id: &str,
    ) -> Option<&mut (String, String, VecDeque<&'static str>, Value)> {
        self.executions.iter_mut().find(|e| e.0 == id)
    }
}

/// Steps: `InProgress` (one poll), `Hold` / `Approval` (in progress, plus an approval
/// waiting for `Approval`, until `release`), then a final status.
pub fn handle(state: &Mutex<Pipeline>, op: &str, body: Value) -> Result<Value, super::stub::Fault> {
    let mut p = state.lock().unwrap();
    match op {
        "StartPipelineExecution" => {
            let token = body["clientRequestToken"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if let Some(existing) = p.executions.iter().find(|e| e.1 == token) {
                return Ok(json!({ "pipelineExecutionId": existing.0 }));
            }
            let id = format!("exec-{}", p.executions.len() + 1);
            let script = p.scripts.pop_front().unwrap_or_else(|| vec!["Succeeded"]);
            p.executions
                .push((id.clone(), token, script.into(), body["variables"].clone()));
            Ok(json!({ "pipelineExecutionId": id }))
        }
        "GetPipelineExecution" => {
            let release = p.release;
            let id = body["pipelineExecutionId"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let Some(exec) = p.current(&id) else {
                return Err((
                    400,
                    "PipelineExecutionNotFoundException",
                    format!("no {id}"),
                ));
            };
            let step = *exec.2.front().unwrap_or(&"Succeeded");
            let status = match step {
                "Hold" | "Approval" if !release => "InProgress",
                "Hold" | "Approval" | "InProgress" => {
                    exec.2.pop_front();
                    "InProgress"
                }
                done => done,
            };
            Ok(json!({ "pipelineExecution": {
                "pipelineName": body["pipelineName"], "pipelineExecutionId": id,
                "status": status, "statusSummary": format!("the pipeline says {status}"),
            }}))
        }
        "GetPipelineState" => {
            let release = p.release;
            let waiting = p
                .executions
                .last()
                .filter(|e| e.2.front() == Some(&"Approval") && !release)
                .map(|e| e.0.clone());
            let action = match &waiting {
                Some(_) => json!({ "actionName": "ManualApproval",
                    "latestExecution": { "status": "InProgress", "token": "approval-token" } }),
                None => json!({ "actionName": "ManualApproval" }),
            };
            // An execution running its script (not waiting for an approval) is in Apply.
            let applying = p
                .executions
                .last()
                .filter(|e| matches!(e.2.front(), Some(&"InProgress" | &"Hold")))
                .map(|e| e.0.clone());
            Ok(json!({ "pipelineName": body["name"], "stageStates": [
                { "stageName": "Source", "latestExecution": { "pipelineExecutionId": "old", "status": "Succeeded" } },
                { "stageName": "Approve", "actionStates": [action],
                  "latestExecution": { "pipelineExecutionId": waiting.unwrap_or_default(), "status": "InProgress" } },
                { "stageName": "Apply",
                  "latestExecution": { "pipelineExecutionId": applying.unwrap_or_default(), "status": "InProgress" } },
            ]}))
        }
        "StopPipelineExecution" => {
            let id = body["pipelineExecutionId"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            p.stopped.push((
                id.clone(),
                body["abandon"].as_bool().unwrap_or(false),
                body["reason"].as_str().unwrap_or_default().to_owned(),
            ));
            let Some(exec) = p.current(&id) else {
                return Err((
                    400,
                    "PipelineExecutionNotFoundException",
                    format!("no {id}"),
                ));
            };
            exec.2 = vec!["Stopped"].into();
            Ok(json!({ "pipelineExecutionId": id }))
        }
        other => Err((400, "UnknownOperationException", other.to_owned())),
    }
}
