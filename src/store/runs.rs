//! Durable run records: at most one command (Terraform) run per environment at a time,
//! across replicas and restarts. One state-table item per environment,
//! `run#{project}#{environment}`, is claimed by a conditional write *before* the process
//! starts, and names the run (one per intent), its owner (the controller process),
//! when it started, a heartbeat its owner refreshes while it follows the run, and how it
//! ended. A claim succeeds only where no run is live: none recorded, one that ended,
//! one whose heartbeat is older than the time its runner takes to stop by itself — or
//! the same run by the same owner again (a retry after an error right after the start).

use aws_sdk_dynamodb::types::AttributeValue;

use super::{StoreError, is_condition_failed, s, state::StateStore};
use crate::model::EnvKey;

fn pk(key: &EnvKey) -> String {
    format!("run#{}#{}", key.project, key.environment)
}

fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// A run as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRecord {
    pub run_id: String,
    pub owner: String,
    /// `running`, `succeeded`, `failed` or `interrupted`.
    pub state: String,
    pub heartbeat_ms: i64,
    pub message: Option<String>,
    /// The ECS task running it (an `ecs_task` runner), once started.
    pub task_arn: Option<String>,
    /// When the claim was made (ms): a new claim of the same run is a new attempt.
    pub started_ms: i64,
    /// A planned run's source as fetched (JSON), for its apply to fetch exactly again.
    pub source_pin: Option<String>,
    /// The digest of the images a planned run planned with.
    pub plan_images: Option<String>,
    /// What the claim is for: `plan`, `apply` (an approved plan), `whole` or `drift`.
    pub run_mode: Option<String>,
}

/// A claim of an environment's run slot (see [`StateStore::claim_run_replacing`]).
pub struct NewClaim<'a> {
    pub run_id: &'a str,
    pub owner: &'a str,
    pub now_ms: i64,
    /// What it is for: `plan`, `apply`, `whole` or `drift`.
    pub mode: &'a str,
    /// With a plan: the digest of the images it is made with.
    pub images: Option<&'a str>,
}

/// What a claim found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Ours now: start the process.
    Claimed,
    /// Another run is live; it is described.
    Busy(Box<RunRecord>),
}

impl StateStore {
    /// Claims `key`'s run slot for `run_id` by `owner`, unless another run is live
    /// (heartbeat newer than `stale_before_ms`).
    pub async fn claim_run(
        &self,
        key: &EnvKey,
        run_id: &str,
        owner: &str,
        now_ms: i64,
        stale_before_ms: i64,
        mode: &str,
    ) -> Result<Claim, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(pk(key)))
            .item("run_mode", s(mode))
            .item("run_id", s(run_id))
            .item("owner", s(owner))
            .item("run_state", s("running"))
            .item("started_ms", n(now_ms))
            .item("heartbeat_ms", n(now_ms))
            .condition_expression(
                "attribute_not_exists(pk) OR run_state <> :running OR heartbeat_ms < :stale OR (run_id = :run AND #owner = :me)",
            )
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":me", s(owner))
            .expression_attribute_values(":running", s("running"))
            .expression_attribute_values(":stale", n(stale_before_ms))
            .expression_attribute_values(":run", s(run_id))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Claim::Claimed),
            Err(e) if is_condition_failed(&e) => match self.run(key).await? {
                Some(record) => Ok(Claim::Busy(Box::new(record))),
                // Gone between the two calls: try once more.
                None => Ok(Claim::Busy(Box::new(RunRecord {
                    run_id: String::new(),
                    owner: String::new(),
                    state: "running".into(),
                    heartbeat_ms: now_ms,
                    message: None,
                    task_arn: None,
                    started_ms: now_ms,
                    source_pin: None,
                    plan_images: None,
                    run_mode: None,
                }))),
            },
            Err(e) => Err(StoreError::aws("PutItem", &self.table, e)),
        }
    }

    /// Refreshes the heartbeat of `run_id`, if it is still the recorded, running one.
    pub async fn heartbeat_run(
        &self,
        key: &EnvKey,
        run_id: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        self.update_run(
            key,
            run_id,
            "SET heartbeat_ms = :now",
            "run_id = :run AND run_state = :running",
            vec![(":now", n(now_ms)), (":running", s("running"))],
        )
        .await
    }

    /// Records how `run_id` ended (`succeeded`, `failed`, `interrupted`).
    pub async fn finish_run(
        &self,
        key: &EnvKey,
        run_id: &str,
        state: &str,
        message: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        self.update_run(
            key,
            run_id,
            "SET run_state = :state, message = :message, heartbeat_ms = :now",
            "run_id = :run",
            vec![
                (":state", s(state)),
                (":message", s(message)),
                (":now", n(now_ms)),
            ],
        )
        .await
    }

    /// An UpdateItem of `key`'s run record (`expression`, with `values`), only while
    /// `condition` holds of it, which names `:run`, the record's run: true if written,
    /// false if the condition did not hold.
    async fn update_run(
        &self,
        key: &EnvKey,
        run_id: &str,
        expression: &str,
        condition: &str,
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<bool, StoreError> {
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(pk(key)))
            .update_expression(expression)
            .condition_expression(condition)
            .expression_attribute_values(":run", s(run_id));
        for (name, value) in values {
            request = request.expression_attribute_values(name, value);
        }
        match request.send().await {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(StoreError::aws("UpdateItem", &self.table, e)),
        }
    }

    /// The environment's run, as recorded.
    pub async fn run(&self, key: &EnvKey) -> Result<Option<RunRecord>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::aws("GetItem", &self.table, e))?;
        let Some(item) = output.item else {
            return Ok(None);
        };
        let text = |name: &str| match item.get(name) {
            Some(AttributeValue::S(v)) => Some(v.clone()),
            _ => None,
        };
        let number = |name: &str| match item.get(name) {
            Some(AttributeValue::N(v)) => v.parse().ok(),
            _ => None,
        };
        Ok(Some(RunRecord {
            run_id: text("run_id").unwrap_or_default(),
            owner: text("owner").unwrap_or_default(),
            state: text("run_state").unwrap_or_default(),
            heartbeat_ms: number("heartbeat_ms").unwrap_or_default(),
            message: text("message"),
            task_arn: text("task_arn"),
            started_ms: number("started_ms").unwrap_or_default(),
            source_pin: text("source_pin"),
            plan_images: text("plan_images"),
            run_mode: text("run_mode"),
        }))
    }

    /// Records what a planned `run_id` planned with: the images (their digest) and the
    /// source as fetched (see [`RunRecord::source_pin`]).
    pub async fn set_run_plan(
        &self,
        key: &EnvKey,
        run_id: &str,
        images: &str,
        pin: Option<&str>,
    ) -> Result<bool, StoreError> {
        let mut values = vec![(":images", s(images))];
        let expression = match pin {
            Some(pin) => {
                values.push((":pin", s(pin)));
                "SET plan_images = :images, source_pin = :pin"
            }
            None => "SET plan_images = :images REMOVE source_pin",
        };
        self.update_run(key, run_id, expression, "run_id = :run", values)
            .await
    }

    /// Claims `key`'s run slot for `run_id` only if the record is still `previous` as
    /// read (none, or that run claimed at that time): a compare-and-swap, so of two
    /// leaders that both found the slot free, one claims it. For runs whose liveness the
    /// caller checked itself (an ECS task that has stopped), not by heartbeat.
    pub async fn claim_run_replacing(
        &self,
        key: &EnvKey,
        claim: NewClaim<'_>,
        previous: Option<&RunRecord>,
    ) -> Result<bool, StoreError> {
        let NewClaim {
            run_id,
            owner,
            now_ms,
            mode,
            images,
        } = claim;
        let mut request = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(pk(key)))
            .item("run_mode", s(mode));
        if let Some(images) = images {
            request = request.item("plan_images", s(images));
        }
        let request = request
            .item("run_id", s(run_id))
            .item("owner", s(owner))
            .item("run_state", s("running"))
            .item("started_ms", n(now_ms))
            .item("heartbeat_ms", n(now_ms));
        let request = match previous {
            None => request.condition_expression("attribute_not_exists(pk)"),
            Some(p) => request
                .condition_expression("run_id = :run AND started_ms = :started")
                .expression_attribute_values(":run", s(&p.run_id))
                .expression_attribute_values(":started", n(p.started_ms)),
        };
        match request.send().await {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(StoreError::aws("PutItem", &self.table, e)),
        }
    }

    /// Records the ECS task that runs `run_id`, if that is still the recorded run: a new
    /// leader follows it rather than starting another.
    pub async fn set_run_task(
        &self,
        key: &EnvKey,
        run_id: &str,
        task_arn: &str,
    ) -> Result<bool, StoreError> {
        self.update_run(
            key,
            run_id,
            "SET task_arn = :task",
            "run_id = :run",
            vec![(":task", s(task_arn))],
        )
        .await
    }
}
