//! The ECS actuator against a wire-level stub of the ECS JSON API whose deployments
//! move (moto never moves them): new revisions are registered only for services whose
//! images change, and each rollout completes, fails or is rolled back by script.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

use crate::support::{Harness, release, stub::Stub};
use relctl::model::Status;
use serde_json::{Value, json};

const TABLE: &str = "relctl-releases";

#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Outcome {
    Complete,
    Fail,
    Rollback,
}

pub(crate) struct Service {
    tags: Vec<(String, String)>,
    /// (id, status, task definition, rollout state, reason)
    deployments: Vec<(String, String, String, String, String)>,
    polls_left: u32,
}

pub(crate) struct Cluster {
    services: BTreeMap<String, Service>,
    pub(crate) definitions: BTreeMap<String, Value>,
    /// task definition ARN → its tags (returned only with `include: ["TAGS"]`).
    pub(crate) definition_tags: BTreeMap<String, Value>,
    outcome: Outcome,
    /// The rollout's reason when it fails.
    fail_reason: String,
    pub(crate) updates: Vec<String>,
    /// Running tasks, as DescribeTasks returns them.
    pub(crate) tasks: Vec<Value>,
    /// Rollouts stay in progress while set.
    hold: bool,
    /// At each UpdateService, how many services were still rolling out.
    rolling_at_update: Vec<usize>,
}

pub(crate) fn arn(family: &str, revision: u32) -> String {
    format!("arn:aws:ecs:eu-west-1:123456789012:task-definition/{family}:{revision}")
}

/// (service name, container images, tags)
pub(crate) type ServiceSpec<'a> = (&'a str, &'a [&'a str], &'a [(&'a str, &'a str)]);

impl Cluster {
    pub(crate) fn new(outcome: Outcome, services: &[ServiceSpec<'_>]) -> Self {
        let mut cluster = Cluster {
            services: BTreeMap::new(),
            definitions: BTreeMap::new(),
            definition_tags: BTreeMap::new(),
            outcome,
            fail_reason: "ECS deployment circuit breaker: tasks failed to start.".into(),
            updates: Vec::new(),
            tasks: Vec::new(),
            hold: false,
            rolling_at_update: Vec::new(),
        };
        for (name, images, tags) in services {
            let containers: Vec<Value> = images
                .iter()
                .enumerate()
                .map(|(i, image)| json!({ "name": format!("c{i}"), "image": image, "essential": true }))
                .collect();
            let td = arn(name, 1);
            cluster.definitions.insert(
                td.clone(),
                json!({ "taskDefinitionArn": td, "family": name, "revision": 1,
                        "containerDefinitions": containers, "cpu": "256", "memory": "512" }),
            );
            cluster.services.insert(
                name.to_string(),
                Service {
                    tags: tags
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                    deployments: vec![(
                        "d0".into(),
                        "PRIMARY".into(),
                        td,
                        "COMPLETED".into(),
                        String::new(),
                    )],
                    polls_left: 0,
                },
            );
        }
        cluster
    }

    fn describe(&mut self, name: &str) -> Value {
        let outcome = self.outcome;
        let fail_reason = self.fail_reason.clone();
        let hold = self.hold;
        let service = self.services.get_mut(name).unwrap();
        if service.polls_left > 0 && !hold {
            service.polls_left -= 1;
            if service.polls_left == 0 {
                match outcome {
                    Outcome::Complete => {
                        service.deployments.retain(|d| d.1 == "PRIMARY");
                        service.deployments[0].3 = "COMPLETED".into();
                    }
                    Outcome::Fail => {
                        service.deployments[0].3 = "FAILED".into();
                        service.deployments[0].4 = fail_reason;
                    }
                    Outcome::Rollback => {
                        service.deployments.remove(0);
                        service.deployments[0].1 = "PRIMARY".into();
                    }
                }
            }
        }
        let primary = service
            .deployments
            .iter()
            .find(|d| d.1 == "PRIMARY")
            .unwrap()
            .2
            .clone();
        json!({
            "serviceName": name,
            "serviceArn": format!("arn:aws:ecs:eu-west-1:123456789012:service/apps/{name}"),
            "taskDefinition": primary,
            "deployments": service.deployments.iter().map(|d| json!({
                "id": d.0, "status": d.1, "taskDefinition": d.2, "rolloutState": d.3, "rolloutStateReason": d.4,
            })).collect::<Vec<_>>(),
            "tags": service.tags.iter().map(|(k, v)| json!({ "key": k, "value": v })).collect::<Vec<_>>(),
        })
    }

    pub(crate) fn handle(
        &mut self,
        op: &str,
        body: Value,
    ) -> Result<Value, crate::support::stub::Fault> {
        match op {
            "ListServices" => Ok(json!({ "serviceArns": self.services.keys()
                .map(|n| format!("arn:aws:ecs:eu-west-1:123456789012:service/apps/{n}")).collect::<Vec<_>>() })),
            "DescribeServices" => {
                let names: Vec<String> = body["services"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s.as_str().unwrap().rsplit('/').next().unwrap().to_owned())
                    .collect();
                Ok(
                    json!({ "services": names.iter().map(|n| self.describe(n)).collect::<Vec<_>>(), "failures": [] }),
                )
            }
            "DescribeTaskDefinition" => {
                let arn = body["taskDefinition"].as_str().unwrap();
                let td = self.definitions.get(arn).cloned();
                let with_tags = body["include"]
                    .as_array()
                    .is_some_and(|i| i.contains(&json!("TAGS")));
                let tags = self
                    .definition_tags
                    .get(arn)
                    .filter(|_| with_tags)
                    .cloned()
                    .unwrap_or(json!([]));
                td.map(|td| json!({ "taskDefinition": td, "tags": tags }))
                    .ok_or((
                        400,
                        "ClientException",
                        "Unable to describe task definition.".into(),
                    ))
            }
            "RegisterTaskDefinition" => {
                let family = body["family"].as_str().unwrap().to_owned();
                let revision = self
                    .definitions
                    .values()
                    .filter(|d| d["family"] == family.as_str())
                    .count() as u32
                    + 1;
                let mut td = body.clone();
                if let Some(tags) = td.as_object_mut().unwrap().remove("tags") {
                    self.definition_tags.insert(arn(&family, revision), tags);
                }
                td["taskDefinitionArn"] = json!(arn(&family, revision));
                td["revision"] = json!(revision);
                self.definitions.insert(arn(&family, revision), td.clone());
                Ok(json!({ "taskDefinition": td }))
            }
            "UpdateService" => {
                let name = body["service"].as_str().unwrap().to_owned();
                self.updates.push(name.clone());
                let rolling = self
                    .services
                    .values()
                    .filter(|s| s.deployments.first().is_some_and(|d| d.3 == "IN_PROGRESS"))
                    .count();
                self.rolling_at_update.push(rolling);
                let service = self.services.get_mut(&name).unwrap();
                let current = service
                    .deployments
                    .iter()
                    .find(|d| d.1 == "PRIMARY")
                    .unwrap()
                    .2
                    .clone();
                let td = body["taskDefinition"]
                    .as_str()
                    .map_or(current, str::to_owned);
                let id = format!("d{}", self.updates.len());
                for d in &mut service.deployments {
                    d.1 = "ACTIVE".into();
                }
                service.deployments.insert(
                    0,
                    (
                        id,
                        "PRIMARY".into(),
                        td,
                        "IN_PROGRESS".into(),
                        String::new(),
                    ),
                );
                service.polls_left = 3;
                let described = self.describe(&name);
                Ok(json!({ "service": described }))
            }
            "ListTasks" => Ok(
                json!({ "taskArns": self.tasks.iter().map(|t| t["taskArn"].clone()).collect::<Vec<_>>() }),
            ),
            "DescribeTasks" => Ok(json!({ "tasks": self.tasks, "failures": [] })),
            other => Err((400, "UnknownOperationException", other.to_owned())),
        }
    }
}

const V1: &str = "registry.example/bugfarm/hatching:v1";
const V2: &str = "registry.example/bugfarm/hatching:v2";
const FEED1: &str = "registry.example/bugfarm/feeding:v1";
const FEED2: &str = "registry.example/bugfarm/feeding:v2";
const PROXY: &str = "registry.example/nginx:1.27";

/// The stub serving `cluster`, and the cluster, for the test to script and inspect.
async fn serve(cluster: Cluster) -> (Stub, Arc<Mutex<Cluster>>) {
    let cluster = Arc::new(Mutex::new(cluster));
    let stub = {
        let cluster = cluster.clone();
        Stub::start(Arc::new(move |op, body| {
            cluster.lock().unwrap().handle(op, body)
        }))
        .await
    };
    (stub, cluster)
}

async fn setup(cluster: Cluster, actuator: &str) -> (Harness, Stub, Arc<Mutex<Cluster>>) {
    let (stub, cluster) = serve(cluster).await;
    let h = Harness::new(&format!(
        "[aws.endpoints]\necs = \"{}\"\n[[projects]]\nid = \"bugfarm\"\nname = \"Bug farm\"\nenvironments = [ {{ id = \"stage\", name = \"Staging\", actuator = {actuator} }} ]\n",
        stub.endpoint
    ))
    .await;
    h.put_release(
        TABLE,
        release("r2", "bugfarm", json!({ "hatching": V2, "feeding": FEED2 })),
    )
    .await;
    (h, stub, cluster)
}

fn images_of(cluster: &Cluster, service: &str) -> Vec<String> {
    let primary = cluster.services[service]
        .deployments
        .iter()
        .find(|d| d.1 == "PRIMARY")
        .unwrap()
        .2
        .clone();
    cluster.definitions[&primary]["containerDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["image"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn only_services_whose_images_change_are_redeployed_and_done_means_completed() {
    let cluster = Cluster::new(
        Outcome::Complete,
        &[
            ("hatching-stage", &[V1, PROXY], &[]),
            ("multi-stage", &[V1, FEED1], &[]),
            ("feeding-stage", &[FEED2], &[]),
        ],
    );
    let actuator = r#"{ kind = "ecs", cluster = "apps", poll_interval = "100ms", services = { hatching = ["hatching-stage", "multi-stage"], feeding = ["multi-stage", "feeding-stage"] } }"#;
    let (h, stub, cluster) = setup(cluster, actuator).await;
    let controller = h.start_controller().await;
    let entry = h
        .deploy(TABLE, "r2", "stage", "2024-05-01T10:00:00.000000")
        .await;
    assert_eq!(entry.status, Some(Status::Succeeded), "{entry:?}");
    assert!(
        entry
            .status_message
            .unwrap()
            .ends_with("3 ECS services run the release")
    );
    {
        let cluster = cluster.lock().unwrap();
        assert_eq!(
            cluster.updates,
            ["hatching-stage", "multi-stage"],
            "feeding-stage already ran v2"
        );
        assert_eq!(
            images_of(&cluster, "hatching-stage"),
            [V2, PROXY],
            "the proxy is not the release's"
        );
        assert_eq!(
            images_of(&cluster, "multi-stage"),
            [V2, FEED2],
            "one service, two images"
        );
    }
    assert_eq!(stub.count("UpdateService"), 2);
    controller.stop().await;
}

#[tokio::test]
async fn a_failed_rollout_fails_the_deployment_without_a_retry_loop() {
    let cluster = Cluster::new(Outcome::Fail, &[("hatching-stage", &[V1], &[])]);
    let actuator = r#"{ kind = "ecs", cluster = "apps", poll_interval = "100ms", services = { hatching = ["hatching-stage"] } }"#;
    let (h, stub, _) = setup(cluster, actuator).await;
    let controller = h.start_controller().await;
    let entry = h
        .deploy(TABLE, "r2", "stage", "2024-05-01T10:00:00.000000")
        .await;
    assert_eq!(entry.status, Some(Status::Failed), "{entry:?}");
    assert!(
        entry
            .status_message
            .unwrap()
            .contains("deployment failed: ECS deployment circuit breaker: tasks failed to start.")
    );
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(stub.count("UpdateService"), 1);
    controller.stop().await;
}

#[tokio::test]
async fn a_rolled_back_rollout_is_a_failure_and_services_are_found_by_tags() {
    let cluster = Cluster::new(
        Outcome::Rollback,
        &[
            (
                "hatching-stage",
                &[V1],
                &[
                    ("deployment:service", "hatching"),
                    ("deployment:env", "stage"),
                ],
            ),
            (
                "hatching-prod",
                &[V1],
                &[
                    ("deployment:service", "hatching"),
                    ("deployment:env", "prod"),
                ],
            ),
        ],
    );
    let actuator =
        r#"{ kind = "ecs", cluster = "apps", poll_interval = "100ms", discover = "tags" }"#;
    let (h, _stub, cluster) = setup(cluster, actuator).await;
    let controller = h.start_controller().await;
    let entry = h
        .deploy(TABLE, "r2", "stage", "2024-05-01T10:00:00.000000")
        .await;
    assert_eq!(entry.status, Some(Status::Failed), "{entry:?}");
    assert!(
        entry
            .status_message
            .unwrap()
            .contains("ECS service hatching-stage rolled back")
    );
    assert_eq!(
        cluster.lock().unwrap().updates,
        ["hatching-stage"],
        "prod is not stage's"
    );
    controller.stop().await;
}

#[tokio::test]
async fn a_new_revision_carries_every_field_and_tag_of_the_one_it_replaces() {
    let mut cluster = Cluster::new(Outcome::Complete, &[("hatching-stage", &[V1], &[])]);
    let fields = json!({
        "taskRoleArn": "arn:aws:iam::123456789012:role/hatching-task",
        "executionRoleArn": "arn:aws:iam::123456789012:role/hatching-exec",
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "runtimePlatform": { "cpuArchitecture": "ARM64", "operatingSystemFamily": "LINUX" },
        "ephemeralStorage": { "sizeInGiB": 50 },
        "pidMode": "task",
        "ipcMode": "none",
        "placementConstraints": [{ "type": "memberOf", "expression": "attribute:ecs.os-type == linux" }],
        "proxyConfiguration": { "type": "APPMESH", "containerName": "envoy",
            "properties": [{ "name": "AppPorts", "value": "8080" }] },
        "inferenceAccelerators": [{ "deviceName": "device1", "deviceType": "eia2.medium" }],
        "volumes": [{ "name": "scratch", "efsVolumeConfiguration": { "fileSystemId": "fs-1234", "rootDirectory": "/" } }],
        "enableFaultInjection": true,
    });
    let first = arn("hatching-stage", 1);
    let td = cluster.definitions.get_mut(&first).unwrap();
    for (k, v) in fields.as_object().unwrap() {
        td[k] = v.clone();
    }
    // What DescribeTaskDefinition says but RegisterTaskDefinition does not take.
    td["status"] = json!("ACTIVE");
    td["compatibilities"] = json!(["EC2", "FARGATE"]);
    td["requiresAttributes"] = json!([{ "name": "ecs.capability.efsAuth" }]);
    td["registeredBy"] = json!("arn:aws:iam::123456789012:user/someone");
    cluster.definition_tags.insert(
        first.clone(),
        json!([{ "key": "team", "value": "bugfarm" }, { "key": "cost-centre", "value": "42" }]),
    );
    let actuator = r#"{ kind = "ecs", cluster = "apps", poll_interval = "100ms", services = { hatching = ["hatching-stage"] } }"#;
    let (h, _stub, cluster) = setup(cluster, actuator).await;
    let controller = h.start_controller().await;
    let entry = h
        .deploy(TABLE, "r2", "stage", "2024-05-01T10:00:00.000000")
        .await;
    assert_eq!(entry.status, Some(Status::Succeeded), "{entry:?}");
    {
        let cluster = cluster.lock().unwrap();
        let second = &cluster.definitions[&arn("hatching-stage", 2)];
        for (k, v) in fields.as_object().unwrap() {
            assert_eq!(&second[k], v, "{k} was not carried over: {second:#}");
        }
        assert_eq!(second["cpu"], "256");
        assert_eq!(second["memory"], "512");
        assert_eq!(second["containerDefinitions"][0]["image"], V2);
        for read_only in [
            "status",
            "compatibilities",
            "requiresAttributes",
            "registeredBy",
        ] {
            assert!(second.get(read_only).is_none(), "{read_only} sent back");
        }
        assert_eq!(
            cluster.definition_tags[&arn("hatching-stage", 2)],
            json!([{ "key": "team", "value": "bugfarm" }, { "key": "cost-centre", "value": "42" }])
        );
    }
    controller.stop().await;
}

#[tokio::test]
async fn no_service_running_the_release_is_a_failure_that_names_what_was_looked_for() {
    let cluster = Cluster::new(
        Outcome::Complete,
        &[(
            "hatching-prod",
            &[V1],
            &[
                ("deployment:service", "hatching"),
                ("deployment:env", "prod"),
            ],
        )],
    );
    let actuator = r#"{ kind = "ecs", cluster = "apps", poll_interval = "100ms", discover = "tags", services = { other = ["other-stage"] } }"#;
    let (h, stub, _) = setup(cluster, actuator).await;
    let controller = h.start_controller().await;
    let entry = h
        .deploy(TABLE, "r2", "stage", "2024-05-01T10:00:00.000000")
        .await;
    assert_eq!(entry.status, Some(Status::Failed), "{entry:?}");
    let message = entry.status_message.unwrap();
    for part in [
        "no ECS service in cluster apps runs any of this release's services (feeding, hatching)",
        "configured services (other → other-stage)",
        "services tagged deployment:env=stage",
    ] {
        assert!(message.contains(part), "{part:?} not in {message:?}");
    }
    assert_eq!(stub.count("UpdateService"), 0);
    assert_eq!(stub.count("RegisterTaskDefinition"), 0);
    controller.stop().await;
}

#[tokio::test]
async fn a_service_with_no_container_from_the_release_image_repository_fails() {
    let cluster = Cluster::new(Outcome::Complete, &[("hatching-stage", &[PROXY], &[])]);
    let actuator = r#"{ kind = "ecs", cluster = "apps", poll_interval = "100ms", services = { hatching = ["hatching-stage"] } }"#;
    let (h, stub, _) = setup(cluster, actuator).await;
    let controller = h.start_controller().await;
    let entry = h
        .deploy(TABLE, "r2", "stage", "2024-05-01T10:00:00.000000")
        .await;
    assert_eq!(entry.status, Some(Status::Failed), "{entry:?}");
    let message = entry.status_message.unwrap();
    assert!(
        message.contains(&format!(
            "ECS service hatching-stage ({}) has no container from the repository of {V2}",
            arn("hatching-stage", 1)
        )),
        "{message}"
    );
    assert_eq!(stub.count("UpdateService"), 0);
    controller.stop().await;
}

#[tokio::test]
async fn a_huge_failure_reason_is_cut_so_the_failed_status_still_fits_in_the_item() {
    let mut cluster = Cluster::new(Outcome::Fail, &[("hatching-stage", &[V1], &[])]);
    // Past DynamoDB's 400 KB item limit on its own.
    cluster.fail_reason = "task stopped: essential container exited\n".repeat(12_000);
    let actuator = r#"{ kind = "ecs", cluster = "apps", poll_interval = "100ms", services = { hatching = ["hatching-stage"] } }"#;
    let (h, stub, _) = setup(cluster, actuator).await;
    let controller = h.start_controller().await;
    let entry = h
        .deploy(TABLE, "r2", "stage", "2024-05-01T10:00:00.000000")
        .await;
    assert_eq!(entry.status, Some(Status::Failed), "{entry:?}");
    let message = entry.status_message.unwrap();
    assert!(
        message.len() <= relctl::model::text::MESSAGE_BYTES,
        "{}",
        message.len()
    );
    assert!(
        message.contains("deployment failed: task stopped"),
        "{message}"
    );
    assert!(message.contains("… [cut: "), "says it was cut: {message}");
    let state = h.env_state("bugfarm", "stage").await;
    assert!(
        state
            .history
            .iter()
            .all(|e| e.message.len() <= relctl::model::text::MESSAGE_BYTES)
    );
    assert_eq!(stub.count("UpdateService"), 1, "failed once, no retry loop");
    controller.stop().await;
}

/// A floating tag whose service's new tasks run another digest (its task definition
/// names a fixed tag, say): the deployment fails naming both digests, not `succeeded`.
#[tokio::test]
async fn tasks_that_run_another_digest_than_the_moved_tag_fail_the_deployment() {
    const REGISTRY: &str = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";
    let floating = format!("{REGISTRY}/bugfarm/hatching:env.stage");
    let cluster = Cluster::new(
        Outcome::Complete,
        &[(
            "hatching-stage",
            &[floating.as_str()],
            &[
                ("deployment:service", "hatching"),
                ("deployment:env", "stage"),
            ],
        )],
    );
    let (stub, cluster) = serve(cluster).await;
    let h = Harness::new(&format!(
        "[aws.endpoints]\necs = \"{}\"\n[[projects]]\nid = \"bugfarm\"\nname = \"Bug farm\"\n[[projects.environments]]\nid = \"stage\"\nname = \"Staging\"\npin = {{ kind = \"ecr_tag\" }}\nactuator = {{ kind = \"ecs\", cluster = \"apps\", poll_interval = \"100ms\", discover = \"tags\" }}\n",
        stub.endpoint
    ))
    .await;
    let ecr = aws_sdk_ecr::Client::new(&h.sdk);
    ecr.create_repository()
        .repository_name("bugfarm/hatching")
        .send()
        .await
        .unwrap();
    let digest = crate::support::ecr::push(&ecr, "bugfarm/hatching", "ref.abc", "ab").await;
    let other = format!("sha256:{}", "e".repeat(64));
    // The task the forced deployment (the stub's first, `d1`) starts.
    cluster.lock().unwrap().tasks.push(json!({
        "taskArn": "arn:aws:ecs:eu-west-1:123456789012:task/apps/t1",
        "group": "service:hatching-stage", "startedBy": "d1", "lastStatus": "RUNNING",
        "containers": [ { "name": "c0", "image": floating, "imageDigest": other } ],
    }));
    h.put_release(
        TABLE,
        release(
            "r2",
            "bugfarm",
            json!({ "hatching": format!("{REGISTRY}/bugfarm/hatching:ref.abc") }),
        ),
    )
    .await;
    let controller = h.start_controller().await;
    let entry = h
        .deploy(TABLE, "r2", "stage", "2024-05-01T10:00:00.000000")
        .await;
    assert_eq!(entry.status, Some(Status::Failed), "{entry:?}");
    let message = entry.status_message.unwrap();
    assert!(
        message.contains(&format!(
            "ECS service hatching-stage runs {floating} as {other}, not the release's {digest}"
        )),
        "{message}"
    );
    assert_eq!(
        stub.count("UpdateService"),
        1,
        "the moved tag's service was redeployed"
    );
    assert_eq!(stub.count("RegisterTaskDefinition"), 0);
    controller.stop().await;
}

#[tokio::test]
async fn a_cancelled_rollout_is_no_longer_followed_and_says_what_it_left() {
    let mut cluster = Cluster::new(Outcome::Complete, &[("hatching-stage", &[V1], &[])]);
    cluster.hold = true;
    let actuator = r#"{ kind = "ecs", cluster = "apps", poll_interval = "100ms", services = { hatching = ["hatching-stage"] } }"#;
    let (h, stub, _) = setup(cluster, actuator).await;
    let controller = h.start_controller().await;
    h.request(TABLE, "r2", "stage", "2024-05-01T10:00:00.000000")
        .await;
    crate::support::until(
        "the rollout starts",
        async || stub.count("UpdateService"),
        |n| *n == 1,
    )
    .await;
    // Followed, it says how far the rollout is (what `deploy --wait` shows).
    let following = h
        .until_entry(TABLE, "r2", 0, |e| {
            e.status_message
                .as_deref()
                .is_some_and(|m| m.contains("tasks running)"))
        })
        .await;
    assert!(
        following
            .status_message
            .as_deref()
            .is_some_and(|m| m.contains("waiting for ECS deployments: hatching-stage (")),
        "{following:?}"
    );
    let (code, _, err) = h
        .run(&["cancel", "r2", "--env", "stage", "--reason", "bad config"])
        .await;
    assert_eq!(code, 0, "{err}");
    let message = h.until_status(TABLE, "r2", 0, Status::Cancelled).await;
    assert!(
        message.contains(": bad config; the ECS rollout in cluster apps is no longer followed"),
        "{message}"
    );
    let state = h
        .until_state("bugfarm", "stage", |s| {
            s.activity.phase() == Some("cancelled")
        })
        .await;
    assert_eq!(state.history[0].status, Status::Cancelled);
    assert_eq!(stub.count("UpdateService"), 1, "no second rollout");
    controller.stop().await;
}

#[tokio::test]
async fn services_are_applied_in_waves_each_verified_before_the_next() {
    let cluster = Cluster::new(
        Outcome::Complete,
        &[
            ("hatching-stage", &[V1], &[]),
            ("feeding-stage", &[FEED1], &[]),
        ],
    );
    // Without `order` the services would be updated together, feeding first.
    let actuator = r#"{ kind = "ecs", cluster = "apps", poll_interval = "100ms", services = { hatching = ["hatching-stage"], feeding = ["feeding-stage"] } }, order = [["hatching"], ["feeding"]]"#;
    let (h, _stub, cluster) = setup(cluster, actuator).await;
    let controller = h.start_controller().await;
    let entry = h
        .deploy(TABLE, "r2", "stage", "2024-05-01T10:00:00.000000")
        .await;
    assert_eq!(entry.status, Some(Status::Succeeded), "{entry:?}");
    assert!(
        entry
            .status_message
            .as_deref()
            .is_some_and(|m| m.ends_with("(in 2 waves)")),
        "{entry:?}"
    );
    {
        let cluster = cluster.lock().unwrap();
        assert_eq!(
            cluster.updates,
            ["hatching-stage", "feeding-stage"],
            "in order"
        );
        assert_eq!(
            cluster.rolling_at_update,
            [0, 0],
            "the second wave started once the first had completed"
        );
        assert_eq!(images_of(&cluster, "feeding-stage"), [FEED2]);
        assert_eq!(
            cluster.services["feeding-stage"].deployments[0].3, "COMPLETED",
            "the last wave was followed to its end, not taken as done"
        );
    }
    controller.stop().await;
}
