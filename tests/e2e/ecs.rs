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
enum Outcome {
    Complete,
    Fail,
    Rollback,
}

struct Service {
    tags: Vec<(String, String)>,
    /// (id, status, task definition, rollout state, reason)
    deployments: Vec<(String, String, String, String, String)>,
    polls_left: u32,
}

struct Cluster {
    services: BTreeMap<String, Service>,
    definitions: BTreeMap<String, Value>,
    outcome: Outcome,
    updates: Vec<String>,
}

fn arn(family: &str, revision: u32) -> String {
    format!("arn:aws:ecs:eu-west-1:123456789012:task-definition/{family}:{revision}")
}

/// (service name, container images, tags)
type ServiceSpec<'a> = (&'a str, &'a [&'a str], &'a [(&'a str, &'a str)]);

impl Cluster {
    fn new(outcome: Outcome, services: &[ServiceSpec<'_>]) -> Self {
        let mut cluster = Cluster {
            services: BTreeMap::new(),
            definitions: BTreeMap::new(),
            outcome,
            updates: Vec::new(),
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
        let service = self.services.get_mut(name).unwrap();
        if service.polls_left > 0 {
            service.polls_left -= 1;
            if service.polls_left == 0 {
                match outcome {
                    Outcome::Complete => {
                        service.deployments.retain(|d| d.1 == "PRIMARY");
                        service.deployments[0].3 = "COMPLETED".into();
                    }
                    Outcome::Fail => {
                        service.deployments[0].3 = "FAILED".into();
                        service.deployments[0].4 =
                            "ECS deployment circuit breaker: tasks failed to start.".into();
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

    fn handle(&mut self, op: &str, body: Value) -> Result<Value, crate::support::stub::Fault> {
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
                let td = self
                    .definitions
                    .get(body["taskDefinition"].as_str().unwrap())
                    .cloned();
                td.map(|td| json!({ "taskDefinition": td })).ok_or((
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
                td["taskDefinitionArn"] = json!(arn(&family, revision));
                td["revision"] = json!(revision);
                self.definitions.insert(arn(&family, revision), td.clone());
                Ok(json!({ "taskDefinition": td }))
            }
            "UpdateService" => {
                let name = body["service"].as_str().unwrap().to_owned();
                self.updates.push(name.clone());
                let td = body["taskDefinition"].as_str().unwrap().to_owned();
                let service = self.services.get_mut(&name).unwrap();
                for d in &mut service.deployments {
                    d.1 = "ACTIVE".into();
                }
                service.deployments.insert(
                    0,
                    (
                        "d1".into(),
                        "PRIMARY".into(),
                        td,
                        "IN_PROGRESS".into(),
                        String::new(),
                    ),
                );
                service.polls_left = 3;
                Ok(json!({ "service": { "serviceName": name } }))
            }
            other => Err((400, "UnknownOperationException", other.to_owned())),
        }
    }
}

const V1: &str = "registry.example/bugfarm/hatching:v1";
const V2: &str = "registry.example/bugfarm/hatching:v2";
const FEED1: &str = "registry.example/bugfarm/feeding:v1";
const FEED2: &str = "registry.example/bugfarm/feeding:v2";
const PROXY: &str = "registry.example/nginx:1.27";

async fn setup(cluster: Cluster, actuator: &str) -> (Harness, Stub, Arc<Mutex<Cluster>>) {
    let cluster = Arc::new(Mutex::new(cluster));
    let stub = {
        let cluster = cluster.clone();
        Stub::start(Arc::new(move |op, body| {
            cluster.lock().unwrap().handle(op, body)
        }))
        .await
    };
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
