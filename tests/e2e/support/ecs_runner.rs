//! ECS for `ecs_task` runners, at the wire (moto's ECS runs no tasks): RunTask starts
//! the overridden command as a local process — the real `relctl runner` — with the
//! overridden environment, deduplicated by client token as ECS does; DescribeTasks,
//! ListTasks and StopTask (SIGTERM, as ECS sends) answer for those processes; and each
//! task's output goes, line by line, to moto's CloudWatch Logs in the awslogs stream
//! `{prefix}/{container}/{task id}`, where the controller reads it. A task is
//! `STOPPED` only once its process has exited and all its output is written.

use std::{
    sync::{Arc, Mutex},
    time::Instant,
};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

use super::stub::{Fault, Stub};

pub const CLUSTER: &str = "runners";
pub const LOG_GROUP: &str = "/relctl/runner";
pub const PREFIX: &str = "runner";
pub const CONTAINER: &str = "runner";

#[derive(Debug, Clone)]
pub struct Task {
    pub arn: String,
    pub token: String,
    pub started_by: String,
    pub env: Vec<(String, String)>,
    pub status: &'static str,
    pub exit_code: Option<i32>,
    pub stop_reason: Option<String>,
    pub pid: Option<u32>,
    pub started: Instant,
    pub stopped: Option<Instant>,
}

#[derive(Default)]
pub struct Tasks {
    pub tasks: Vec<Task>,
    /// RunTask calls still to answer with a 500 (as ECS does when it cannot now).
    pub fail_run_task: usize,
}

pub struct Runner {
    pub stub: Stub,
    pub state: Arc<Mutex<Tasks>>,
}

impl Runner {
    /// The stub, and the log group its tasks write to in the moto at `moto` (the
    /// harness, which needs the stub's endpoint, does not exist yet: a client of its own).
    pub async fn start(moto: &str) -> Self {
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("eu-west-1"))
            .endpoint_url(moto)
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "testing", "testing", None, None, "tests",
            ))
            .load()
            .await;
        let logs = aws_sdk_cloudwatchlogs::Client::new(&sdk);
        logs.create_log_group()
            .log_group_name(LOG_GROUP)
            .send()
            .await
            .expect("log group");
        let state: Arc<Mutex<Tasks>> = Arc::default();
        let stub = {
            let state = state.clone();
            Stub::start(Arc::new(move |op, body| handle(&state, &logs, op, body))).await
        };
        Self { stub, state }
    }

    pub fn tasks(&self) -> Vec<Task> {
        self.state.lock().unwrap().tasks.clone()
    }
}

fn describe(task: &Task) -> Value {
    json!({
        "taskArn": task.arn,
        "clusterArn": format!("arn:aws:ecs:eu-west-1:123456789012:cluster/{CLUSTER}"),
        "lastStatus": task.status,
        "desiredStatus": if task.stop_reason.is_some() || task.status == "STOPPED" { "STOPPED" } else { "RUNNING" },
        "startedBy": task.started_by,
        "stoppedReason": task.stop_reason.clone().unwrap_or_else(|| "Essential container in task exited".into()),
        "containers": [{
            "name": CONTAINER,
            "lastStatus": task.status,
            "exitCode": task.exit_code,
        }],
    })
}

fn handle(
    state: &Arc<Mutex<Tasks>>,
    logs: &aws_sdk_cloudwatchlogs::Client,
    op: &str,
    body: Value,
) -> Result<Value, Fault> {
    let mut s = state.lock().unwrap();
    match op {
        "RunTask" if s.fail_run_task > 0 => {
            s.fail_run_task -= 1;
            Err((
                500,
                "ServerException",
                "capacity is unavailable at this time".into(),
            ))
        }
        "RunTask" => {
            let token = body["clientToken"].as_str().unwrap_or_default().to_owned();
            if let Some(task) = s
                .tasks
                .iter()
                .find(|t| !token.is_empty() && t.token == token)
            {
                return Ok(json!({ "tasks": [describe(task)], "failures": [] }));
            }
            let container = &body["overrides"]["containerOverrides"][0];
            let command: Vec<String> = container["command"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c.as_str().map(String::from))
                .collect();
            let env: Vec<(String, String)> = container["environment"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|kv| {
                    (
                        kv["name"].as_str().unwrap_or_default().to_owned(),
                        kv["value"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect();
            let id = format!("task{}", s.tasks.len() + 1);
            let arn = format!("arn:aws:ecs:eu-west-1:123456789012:task/{CLUSTER}/{id}");
            let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_relctl"))
                .args(&command)
                .envs(env.iter().cloned())
                .env_remove("RUST_LOG")
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .map_err(|e| (500, "ServerException", format!("spawn: {e}")))?;
            let task = Task {
                arn: arn.clone(),
                token,
                started_by: body["startedBy"].as_str().unwrap_or_default().to_owned(),
                env,
                status: "RUNNING",
                exit_code: None,
                stop_reason: None,
                pid: child.id(),
                started: Instant::now(),
                stopped: None,
            };
            let answer = json!({ "tasks": [describe(&task)], "failures": [] });
            s.tasks.push(task);
            let (state, logs) = (state.clone(), logs.clone());
            let stream = format!("{PREFIX}/{CONTAINER}/{id}");
            tokio::spawn(async move {
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
                for reader in [
                    child
                        .stdout
                        .take()
                        .map(|o| Box::new(o) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
                    child
                        .stderr
                        .take()
                        .map(|e| Box::new(e) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
                ]
                .into_iter()
                .flatten()
                {
                    let tx = tx.clone();
                    tokio::spawn(async move {
                        let mut lines = BufReader::new(reader).lines();
                        while let Ok(Some(line)) = lines.next_line().await {
                            let _ = tx.send(line);
                        }
                    });
                }
                drop(tx);
                logs.create_log_stream()
                    .log_group_name(LOG_GROUP)
                    .log_stream_name(&stream)
                    .send()
                    .await
                    .expect("log stream");
                while let Some(line) = rx.recv().await {
                    let event = aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                        .message(line)
                        .timestamp(chrono::Utc::now().timestamp_millis())
                        .build()
                        .expect("log event");
                    logs.put_log_events()
                        .log_group_name(LOG_GROUP)
                        .log_stream_name(&stream)
                        .log_events(event)
                        .send()
                        .await
                        .expect("put log events");
                }
                let status = child.wait().await.ok();
                let mut s = state.lock().unwrap();
                if let Some(task) = s.tasks.iter_mut().find(|t| t.arn == arn) {
                    task.status = "STOPPED";
                    task.exit_code = status.and_then(|s| s.code());
                    task.stopped = Some(Instant::now());
                }
            });
            Ok(answer)
        }
        "DescribeTasks" => {
            let wanted: Vec<&str> = body["tasks"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let found: Vec<Value> = s
                .tasks
                .iter()
                .filter(|t| wanted.contains(&t.arn.as_str()))
                .map(describe)
                .collect();
            Ok(json!({ "tasks": found, "failures": [] }))
        }
        "ListTasks" => {
            let by = body["startedBy"].as_str();
            let arns: Vec<&str> = s
                .tasks
                .iter()
                .filter(|t| t.status != "STOPPED" && by.is_none_or(|b| b == t.started_by))
                .map(|t| t.arn.as_str())
                .collect();
            Ok(json!({ "taskArns": arns }))
        }
        "StopTask" => {
            let arn = body["task"].as_str().unwrap_or_default();
            let reason = body["reason"].as_str().unwrap_or("stopped").to_owned();
            let Some(task) = s.tasks.iter_mut().find(|t| t.arn == arn) else {
                return Err((400, "InvalidParameterException", format!("no task {arn}")));
            };
            if task.status != "STOPPED" {
                task.stop_reason = Some(reason);
                if let Some(pid) = task
                    .pid
                    .and_then(|p| rustix::process::Pid::from_raw(p as i32))
                {
                    let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
                }
            }
            Ok(json!({ "task": describe(task) }))
        }
        other => Err((
            400,
            "InvalidAction",
            format!("the runner stub has no {other}"),
        )),
    }
}
