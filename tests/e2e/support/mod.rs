//! Test fixtures: a `moto_server` on a free loopback port per test, SDK clients pointed
//! at it, a controller run in-process, and helpers that write records the way a user
//! would (plain DynamoDB calls, not relctl's own code).

pub mod ecr;
pub mod ecs_runner;
pub mod lambda;
pub mod moto;
pub mod pipeline;
pub mod process;
pub mod proxy;
pub mod s3;
pub mod stub;
pub mod webhook;

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
    time::Duration,
};

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::AttributeValue;
use relctl::{
    config::Config,
    controller::Health,
    model::{EnvKey, Release, Status, record::Deployment},
    store::{StateStore, releases::decode, setup, state::EnvState},
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use moto::Moto;

pub const BASE_CONFIG: &str = r#"
[aws]
region = "eu-west-1"
call_timeout = "10s"
[tables]
releases = "relctl-releases"
state = "relctl-state"
[controller]
poll_interval = "250ms"
resync_interval = "1h"
resync_rate = 50.0
backoff_min = "100ms"
backoff_max = "2s"
drain_timeout = "5s"
[http]
listen = "127.0.0.1:0"
"#;

pub const BUGFARM: &str = r#"
[[projects]]
id = "bugfarm"
name = "Bug farm"
environments = [ { id = "stage", name = "Staging" }, { id = "prod", name = "Production" } ]
"#;

pub struct Harness {
    pub moto: Moto,
    /// The configuration as a file, for runs of the `relctl` binary.
    pub config_file: tempfile::NamedTempFile,
    pub sdk: SdkConfig,
    pub config: Arc<Config>,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub ssm: aws_sdk_ssm::Client,
}

pub struct Running {
    shutdown: CancellationToken,
    handle: JoinHandle<()>,
    /// Where the controller serves /metrics, /healthz, /readyz and the status page.
    pub addr: std::net::SocketAddr,
    /// Where it serves /metrics, /healthz and /readyz alone (`http.ops_listen`).
    pub ops_addr: Option<std::net::SocketAddr>,
}

impl Running {
    /// Graceful stop, as SIGTERM does.
    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(30), self.handle)
            .await
            .expect("controller drains within 30s")
            .expect("controller task does not panic");
    }
}

impl Harness {
    /// Moto, the configuration (`BASE_CONFIG` + `projects`), and `relctl setup`'s tables.
    pub async fn new(projects: &str) -> Self {
        Self::with_moto(Moto::start(), projects).await
    }

    /// As [`Self::new`], on a moto already started (whose endpoint the configuration
    /// needs to name).
    pub async fn with_moto(moto: Moto, projects: &str) -> Self {
        let harness = Self::without_tables_on(moto, projects).await;
        for table in harness.config.releases_tables() {
            setup::ensure_releases_table(&harness.dynamodb, &table, &mut |_| {})
                .await
                .expect("releases table");
        }
        setup::ensure_state_table(&harness.dynamodb, &harness.config.tables.state)
            .await
            .expect("state table");
        setup::ensure_approvals_table(&harness.dynamodb, &harness.config.tables.approvals)
            .await
            .expect("approvals table");
        harness
    }

    pub async fn without_tables(projects: &str) -> Self {
        Self::without_tables_on(Moto::start(), projects).await
    }

    async fn without_tables_on(moto: Moto, projects: &str) -> Self {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "relctl=debug".into()),
            )
            .with_test_writer()
            .try_init();
        // In-process controllers start command runs with the real binary.
        let base = BASE_CONFIG.replace(
            "drain_timeout = \"5s\"\n",
            &format!(
                "drain_timeout = \"5s\"\nrunner = {:?}\n",
                env!("CARGO_BIN_EXE_relctl")
            ),
        );
        let toml = format!("{base}\n{projects}");
        let config = Arc::new(Config::from_toml(&toml).expect("test config"));
        let config_file = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(config_file.path(), &toml).expect("config written");
        let sdk = relctl::aws::loader(&config)
            .endpoint_url(&moto.endpoint)
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "testing",
                "testing",
                None,
                None,
                "relctl-tests",
            ))
            .load()
            .await;
        Self {
            dynamodb: aws_sdk_dynamodb::Client::new(&sdk),
            ssm: aws_sdk_ssm::Client::new(&sdk),
            moto,
            config_file,
            sdk,
            config,
        }
    }

    /// Runs `relctl ARGS` without blocking the runtime an in-process controller shares:
    /// (exit code, stdout, stderr).
    pub async fn run(&self, args: &[&str]) -> (i32, String, String) {
        let mut command = self.relctl();
        command.args(args);
        let output = tokio::process::Command::from(command)
            .output()
            .await
            .expect("relctl runs");
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    /// The `relctl` binary, pointed at this harness's moto and configuration.
    pub fn relctl(&self) -> std::process::Command {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_relctl"));
        command
            .env("AWS_ENDPOINT_URL", &self.moto.endpoint)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "eu-west-1")
            .env("RELCTL_CONFIG", self.config_file.path())
            .env_remove("RUST_LOG")
            .stdin(std::process::Stdio::null());
        command
    }

    /// An IAM user of its own, with access keys: STS then names it as the caller, so
    /// `relctl` run as it acts as another AWS principal.
    pub async fn identity(&self, name: &str) -> Identity {
        let iam = aws_sdk_iam::Client::new(&self.sdk);
        let user = iam
            .create_user()
            .user_name(name)
            .send()
            .await
            .expect("create IAM user")
            .user
            .expect("the user");
        let key = iam
            .create_access_key()
            .user_name(name)
            .send()
            .await
            .expect("create access key")
            .access_key
            .expect("the key");
        Identity {
            access_key: key.access_key_id,
            secret: key.secret_access_key,
            session_token: None,
            arn: user.arn,
            user_id: user.user_id,
        }
    }

    /// A session `session` of the IAM role `role` (created if it is not there): STS
    /// names the caller `arn:aws:sts::…:assumed-role/{role}/{session}`, `aws:userid`
    /// `AROA…:{session}`.
    pub async fn assume(&self, role: &str, session: &str) -> Identity {
        let iam = aws_sdk_iam::Client::new(&self.sdk);
        let arn = format!("arn:aws:iam::123456789012:role/{role}");
        if iam.get_role().role_name(role).send().await.is_err() {
            iam.create_role()
                .role_name(role)
                .assume_role_policy_document(
                    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sts:AssumeRole"}]}"#,
                )
                .send()
                .await
                .expect("create IAM role");
        }
        let sts = aws_sdk_sts::Client::new(&self.sdk);
        let out = sts
            .assume_role()
            .role_arn(&arn)
            .role_session_name(session)
            .send()
            .await
            .expect("assume the role");
        let credentials = out.credentials.expect("credentials");
        let user = out.assumed_role_user.expect("the assumed role user");
        Identity {
            access_key: credentials.access_key_id,
            secret: credentials.secret_access_key,
            session_token: Some(credentials.session_token),
            arn: user.arn,
            user_id: user.assumed_role_id,
        }
    }

    /// `relctl ARGS` with `who`'s credentials.
    pub async fn run_as(&self, who: &Identity, args: &[&str]) -> (i32, String, String) {
        let mut command = self.relctl();
        command
            .args(args)
            .env("AWS_ACCESS_KEY_ID", &who.access_key)
            .env("AWS_SECRET_ACCESS_KEY", &who.secret);
        if let Some(token) = &who.session_token {
            command.env("AWS_SESSION_TOKEN", token);
        }
        let output = tokio::process::Command::from(command)
            .output()
            .await
            .expect("relctl runs");
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    /// Writes an item given in DynamoDB's own JSON (`{"S": …}`, `{"N": …}`, …), exactly
    /// as `aws dynamodb put-item --item file://…` would.
    pub async fn put_raw(&self, table: &str, item: &serde_json::Value) {
        let serde_json::Value::Object(fields) = item else {
            panic!("an item is a JSON object");
        };
        let item: HashMap<String, AttributeValue> = fields
            .iter()
            .map(|(k, v)| (k.clone(), raw_attribute(v)))
            .collect();
        self.dynamodb
            .put_item()
            .table_name(table)
            .set_item(Some(item))
            .send()
            .await
            .expect("put raw item");
    }

    /// Starts the controller in-process and waits until it leads (streams open).
    pub async fn start_controller(&self) -> Running {
        self.start_controller_with(self.sdk.clone()).await
    }

    /// The controller talking to AWS through `endpoint` (a fault-injection proxy).
    pub async fn start_controller_via(&self, endpoint: &str) -> Running {
        let sdk = relctl::aws::loader(&self.config)
            .endpoint_url(endpoint)
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "testing",
                "testing",
                None,
                None,
                "relctl-tests",
            ))
            .load()
            .await;
        self.start_controller_with(sdk).await
    }

    async fn start_controller_with(&self, sdk: SdkConfig) -> Running {
        let (running, health) = self.spawn_controller_with(sdk).await;
        tokio::time::timeout(Duration::from_secs(60), health.wait_leader())
            .await
            .expect("controller leads within 60s");
        running
    }

    /// Starts the controller in-process and returns once it serves HTTP, leading or not.
    pub async fn spawn_controller(&self) -> (Running, Arc<Health>) {
        self.spawn_controller_with(self.sdk.clone()).await
    }

    async fn spawn_controller_with(&self, sdk: SdkConfig) -> (Running, Arc<Health>) {
        let shutdown = CancellationToken::new();
        let health = Arc::new(Health::default());
        let (config, token) = (self.config.clone(), shutdown.clone());
        let handle = {
            let health = health.clone();
            tokio::spawn(async move {
                relctl::controller::run(config, &sdk, token, health)
                    .await
                    .expect("controller runs");
            })
        };
        let addr = loop {
            if let Some(addr) = health.addr() {
                break addr;
            }
            assert!(
                !handle.is_finished(),
                "the controller stopped before serving HTTP"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let mut ops_addr = None;
        while self.config.http.ops_listen.is_some() && ops_addr.is_none() {
            ops_addr = health.ops_addr();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let running = Running {
            shutdown,
            handle,
            addr,
            ops_addr,
        };
        (running, health)
    }

    /// Writes a release item from JSON, as boto3 or the aws CLI would.
    pub async fn put_release(&self, table: &str, release: serde_json::Value) {
        let item: HashMap<String, AttributeValue> =
            serde_dynamo::to_item(release).expect("json converts to an item");
        self.dynamodb
            .put_item()
            .table_name(table)
            .set_item(Some(item))
            .send()
            .await
            .expect("put release");
    }

    /// Appends a deployment entry with a plain UpdateItem (no relctl code involved).
    pub async fn request(&self, table: &str, release_id: &str, env: &str, date_created: &str) {
        self.dynamodb
            .update_item()
            .table_name(table)
            .key("release_id", AttributeValue::S(release_id.into()))
            .update_expression("SET deployments = list_append(deployments, :entry)")
            .expression_attribute_values(
                ":entry",
                AttributeValue::L(vec![entry(env, date_created)]),
            )
            .send()
            .await
            .expect("append deployment");
    }

    /// Appends several entries in one transaction: they reach the stream together.
    pub async fn request_together(&self, table: &str, requests: &[(&str, &str, &str)]) {
        use aws_sdk_dynamodb::types::{TransactWriteItem, Update};
        let mut transaction = self.dynamodb.transact_write_items();
        for (release_id, env, date_created) in requests {
            let update = Update::builder()
                .table_name(table)
                .key("release_id", AttributeValue::S((*release_id).into()))
                .update_expression("SET deployments = list_append(deployments, :entry)")
                .expression_attribute_values(
                    ":entry",
                    AttributeValue::L(vec![entry(env, date_created)]),
                )
                .build()
                .expect("update is complete");
            transaction =
                transaction.transact_items(TransactWriteItem::builder().update(update).build());
        }
        transaction.send().await.expect("transaction");
    }

    pub async fn release(&self, table: &str, release_id: &str) -> Release {
        let item = self
            .dynamodb
            .get_item()
            .table_name(table)
            .key("release_id", AttributeValue::S(release_id.into()))
            .consistent_read(true)
            .send()
            .await
            .expect("get release")
            .item
            .expect("release exists");
        decode(item).expect("release decodes")
    }

    /// Waits until deployment `index` of the release has a finished status.
    pub async fn finished(&self, table: &str, release_id: &str, index: usize) -> Deployment {
        self.until_entry(table, release_id, index, |e| {
            e.status.is_some_and(|s| s.is_terminal()) && written_whole(e)
        })
        .await
    }

    /// Waits until deployment `index` of the release satisfies `done`.
    ///
    /// The controller writes an entry's status, message and time in one UpdateItem, but
    /// moto applies a SET's actions one by one to the live item, so a read can land
    /// between them: see [`written_whole`].
    pub async fn until_entry(
        &self,
        table: &str,
        release_id: &str,
        index: usize,
        done: impl Fn(&Deployment) -> bool,
    ) -> Deployment {
        let seen = until(
            &format!("deployment {release_id}[{index}]"),
            async || {
                self.try_release(table, release_id)
                    .await
                    .and_then(|r| r.deployments.into_iter().find(|d| d.index == index))
            },
            |entry| entry.as_ref().is_some_and(&done),
        )
        .await;
        seen.unwrap_or_else(|| unreachable!("done holds only for an entry"))
    }

    /// Waits until deployment `index` has `status`; returns its message.
    pub async fn until_status(
        &self,
        table: &str,
        release_id: &str,
        index: usize,
        status: Status,
    ) -> String {
        self.until_entry(table, release_id, index, |e| {
            e.status == Some(status) && written_whole(e)
        })
        .await
        .status_message
        .unwrap_or_default()
    }

    /// Waits until the environment's state satisfies `done`.
    pub async fn until_state(
        &self,
        project: &str,
        env: &str,
        done: impl Fn(&EnvState) -> bool,
    ) -> EnvState {
        let store = StateStore::new(self.dynamodb.clone(), &self.config.tables.state);
        let key = EnvKey::new(project, env);
        let seen = until(
            &format!("state of {key}"),
            async || store.get(&key).await.ok(),
            |state| state.as_ref().is_some_and(&done),
        )
        .await;
        seen.unwrap_or_else(|| unreachable!("done holds only for a state"))
    }

    /// Appends a deployment entry by hand and waits for it to finish.
    pub async fn deploy(&self, table: &str, release_id: &str, env: &str, date: &str) -> Deployment {
        self.request(table, release_id, env, date).await;
        let index = self.release(table, release_id).await.deployments.len() - 1;
        self.finished(table, release_id, index).await
    }

    /// The release, or None when it cannot be read now (a loaded machine).
    pub async fn try_release(&self, table: &str, release_id: &str) -> Option<Release> {
        let item = self
            .dynamodb
            .get_item()
            .table_name(table)
            .key("release_id", AttributeValue::S(release_id.into()))
            .consistent_read(true)
            .send()
            .await
            .ok()?
            .item?;
        decode(item).ok()
    }

    /// Every parameter under `path` (recursive): name → (value, version).
    pub async fn parameters(&self, path: &str) -> HashMap<String, (String, i64)> {
        let mut found = HashMap::new();
        let mut pages = self
            .ssm
            .get_parameters_by_path()
            .path(path)
            .recursive(true)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            for p in page
                .expect("list parameters")
                .parameters
                .unwrap_or_default()
            {
                found.insert(
                    p.name.unwrap_or_default(),
                    (p.value.unwrap_or_default(), p.version),
                );
            }
        }
        found
    }

    pub async fn put_parameter(&self, name: &str, value: &str) {
        self.ssm
            .put_parameter()
            .name(name)
            .value(value)
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .overwrite(true)
            .send()
            .await
            .expect("put parameter");
    }

    pub async fn env_state(&self, project: &str, env: &str) -> EnvState {
        StateStore::new(self.dynamodb.clone(), &self.config.tables.state)
            .get(&EnvKey::new(project, env))
            .await
            .expect("state readable")
    }
}

/// Another AWS principal's credentials (see [`Harness::identity`]).
pub struct Identity {
    pub access_key: String,
    pub secret: String,
    pub session_token: Option<String>,
    pub arn: String,
    /// What IAM calls `aws:userid` for this user.
    pub user_id: String,
}

/// One attribute in DynamoDB's JSON form.
pub fn raw_attribute(value: &serde_json::Value) -> AttributeValue {
    let serde_json::Value::Object(typed) = value else {
        panic!("not a DynamoDB-JSON attribute: {value}");
    };
    let (kind, inner) = typed.iter().next().expect("one type key");
    match (kind.as_str(), inner) {
        ("S", serde_json::Value::String(s)) => AttributeValue::S(s.clone()),
        ("N", serde_json::Value::String(n)) => AttributeValue::N(n.clone()),
        ("BOOL", serde_json::Value::Bool(b)) => AttributeValue::Bool(*b),
        ("NULL", _) => AttributeValue::Null(true),
        ("L", serde_json::Value::Array(items)) => {
            AttributeValue::L(items.iter().map(raw_attribute).collect())
        }
        ("M", serde_json::Value::Object(fields)) => AttributeValue::M(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), raw_attribute(v)))
                .collect(),
        ),
        other => panic!("unsupported DynamoDB-JSON attribute {other:?}"),
    }
}

/// How long what a test watches may stay the same before it fails: a loaded machine
/// makes a test slower, never red, while a stuck controller still fails it.
pub const STALL: Duration = Duration::from_secs(120);

/// Polls `look` until `done` holds. Fails only when what it sees has not changed for
/// [`STALL`]: the test waits on progress, not on the clock. `look` must return what
/// the test watches, not something that changes on its own (a whole metrics page).
pub async fn until<T: std::fmt::Debug + PartialEq>(
    what: &str,
    mut look: impl AsyncFnMut() -> T,
    done: impl Fn(&T) -> bool,
) -> T {
    let mut last: Option<T> = None;
    let mut changed = tokio::time::Instant::now();
    loop {
        let seen = look().await;
        if done(&seen) {
            return seen;
        }
        if last.as_ref() == Some(&seen) {
            assert!(
                changed.elapsed() < STALL,
                "{what}: nothing changed for {STALL:?}; last seen: {seen:?}"
            );
        } else {
            last = Some(seen);
            changed = tokio::time::Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A plain HTTP/1.0 GET: (status code, body).
pub async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let (status, _, body) = get_with_head(addr, path).await;
    (status, body)
}

/// A plain HTTP/1.0 GET: (status code, status line and headers, body).
pub async fn get_with_head(addr: std::net::SocketAddr, path: &str) -> (u16, String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .expect("send request");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .expect("read response");
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_owned(), body.to_owned())
}

/// A deployment entry exactly as RFC 013 shows it.
pub fn entry(env: &str, date_created: &str) -> AttributeValue {
    serde_dynamo::to_attribute_value(serde_json::json!({
        "date_created": date_created,
        "description": "requested by a test",
        "environment": { "id": env, "name": env },
        "requested_by": { "id": "tester", "name": "Tester" },
    }))
    .expect("entry converts")
}

/// A release item in the RFC 013 shape with no deployments yet.
pub fn release(release_id: &str, project: &str, images: serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "release_id": release_id,
        "project_id": project,
        "project_name": project,
        "date_created": "2024-05-01T09:00:00.000000",
        "description": "a test release",
        "requested_by": { "id": "tester", "name": "Tester" },
        "images": images,
        "deployments": [],
    })
}

/// AWS calls the controller made, by `Service.Operation` (with ` (outcome)` after it
/// where the call did not succeed; stream reads left out).
pub async fn calls(running: &Running) -> BTreeMap<String, u64> {
    let (_, page) = get(running.addr, "/metrics").await;
    let mut calls = BTreeMap::new();
    for line in page.lines() {
        let Some(labels) = line.strip_prefix("relctl_aws_calls_total{") else {
            continue;
        };
        let field = |name: &str| {
            labels
                .split(&format!("{name}=\""))
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .unwrap_or_default()
                .to_owned()
        };
        let count: u64 = line.rsplit(' ').next().unwrap().parse().unwrap_or(0);
        if field("service") != "DynamoDB Streams" {
            let outcome = field("outcome");
            let mut key = format!("{}.{}", field("service"), field("operation"));
            if outcome != "ok" {
                key.push_str(&format!(" ({outcome})"));
            }
            *calls.entry(key).or_default() += count;
        }
    }
    calls
}

/// What grew between two readings of [`calls`].
pub fn delta(
    after: &BTreeMap<String, u64>,
    before: &BTreeMap<String, u64>,
) -> BTreeMap<String, u64> {
    after
        .iter()
        .map(|(op, n)| (op.clone(), n - before.get(op).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// The value of the metric line that starts with `series` (labels included), 0 if absent.
pub async fn metric(running: &Running, series: &str) -> u64 {
    let (_, page) = get(running.addr, "/metrics").await;
    page.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0)
}

/// The controller's status write has landed whole: it always writes the status with its
/// message and time (moto can show a read the status before the rest of the same SET).
fn written_whole(entry: &Deployment) -> bool {
    entry.status.is_none() || (entry.status_message.is_some() && entry.status_updated_at.is_some())
}

/// A private copy of the offline Terraform fixture (tests/fixtures/terraform) with one
/// `terraform_data` resource `name` whose input is `input` (a Terraform expression), so
/// a plan has something to add, change or find drifted.
pub fn terraform_module(name: &str, input: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let fixture = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/terraform/main.tf"),
    )
    .expect("fixture");
    std::fs::write(
        dir.path().join("main.tf"),
        format!("{fixture}\nresource \"terraform_data\" \"{name}\" {{\n  input = {input}\n}}\n"),
    )
    .expect("module written");
    dir
}
