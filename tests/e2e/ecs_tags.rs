//! The ECR-tag + ECS path as weco-deploy users run it, against moto's ECR and ECS:
//! repositories `uk.ac.wellcome/svc{i}`, services `svc{i}-{env}` found by their
//! `deployment:*` tags, task definitions (Terraform's) naming the floating tag
//! `env.{env}`. A deployment moves the tags of the images that change and forces a new
//! deployment of exactly the services fed by them; it registers no task definition.
//! (Rollouts that move and tasks with digests are `ecs.rs`'s stub; moto's stay put.)

use std::collections::BTreeMap;

use aws_sdk_ecs::types::{ContainerDefinition, Tag};
use relctl::model::Status;
use serde_json::json;

use crate::support::{Harness, calls, delta, ecr, process::Controller, release};

const TABLE: &str = "wellcome-releases-catalogue";
const REGISTRY: &str = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";
const N: usize = 5;

fn config() -> String {
    let env = |id: &str| {
        format!(
            r#"
[[projects.environments]]
id = "{id}"
name = "{id}"
pin = {{ kind = "ecr_tag" }}
actuator = {{ kind = "ecs", cluster = "apps", discover = "tags", poll_interval = "100ms" }}
"#
        )
    };
    format!(
        "[[projects]]\nid = \"catalogue\"\nname = \"Catalogue\"\nreleases_table = \"{TABLE}\"\n{}{}",
        env("stage"),
        env("prod")
    )
}

struct World {
    ecr: aws_sdk_ecr::Client,
    ecs: aws_sdk_ecs::Client,
}

impl World {
    async fn new(h: &Harness) -> Self {
        let world = Self {
            ecr: aws_sdk_ecr::Client::new(&h.sdk),
            ecs: aws_sdk_ecs::Client::new(&h.sdk),
        };
        world
            .ecs
            .create_cluster()
            .cluster_name("apps")
            .send()
            .await
            .unwrap();
        for i in 0..N {
            let repo = format!("uk.ac.wellcome/svc{i}");
            world
                .ecr
                .create_repository()
                .repository_name(&repo)
                .send()
                .await
                .unwrap();
            world.push(i, "1").await;
            for env in ["stage", "prod"] {
                let family = format!("svc{i}-{env}");
                world
                    .ecs
                    .register_task_definition()
                    .family(&family)
                    .container_definitions(
                        ContainerDefinition::builder()
                            .name("app")
                            .image(format!("{REGISTRY}/{repo}:env.{env}"))
                            .memory(512)
                            .build(),
                    )
                    .send()
                    .await
                    .unwrap();
                let tag = |k: &str, v: String| Tag::builder().key(k).value(v).build();
                world
                    .ecs
                    .create_service()
                    .cluster("apps")
                    .service_name(&family)
                    .task_definition(&family)
                    .desired_count(0)
                    .tags(tag("deployment:service", format!("svc{i}")))
                    .tags(tag("deployment:env", env.to_owned()))
                    .send()
                    .await
                    .unwrap();
            }
        }
        world
    }

    /// Pushes build `build` of service `i` (tagged `ref.{build}{i}` and `latest`).
    async fn push(&self, i: usize, build: &str) {
        let repository = format!("uk.ac.wellcome/svc{i}");
        for tag in [format!("ref.{build}{i}"), "latest".to_owned()] {
            ecr::push(&self.ecr, &repository, &tag, &format!("{build}{i}")).await;
        }
    }

    async fn digest(&self, i: usize, tag: &str) -> Option<String> {
        ecr::tagged(&self.ecr, &format!("uk.ac.wellcome/svc{i}"), tag).await
    }

    /// Service name → its primary deployment's id.
    async fn deployments(&self) -> BTreeMap<String, String> {
        let mut names = Vec::new();
        for i in 0..N {
            names.push(format!("svc{i}-stage"));
            names.push(format!("svc{i}-prod"));
        }
        let mut found = BTreeMap::new();
        for chunk in names.chunks(10) {
            let output = self
                .ecs
                .describe_services()
                .cluster("apps")
                .set_services(Some(chunk.to_vec()))
                .send()
                .await
                .unwrap();
            for service in output.services.unwrap_or_default() {
                let primary = service.deployments().first().and_then(|d| d.id.clone());
                found.insert(service.service_name.unwrap(), primary.unwrap());
            }
        }
        found
    }

    async fn task_definitions(&self) -> usize {
        let output = self.ecs.list_task_definitions().send().await.unwrap();
        output.task_definition_arns.unwrap_or_default().len()
    }
}

fn images(build: &[&str]) -> serde_json::Value {
    let mut images = serde_json::Map::new();
    for (i, b) in build.iter().enumerate() {
        images.insert(
            format!("svc{i}"),
            json!(format!("{REGISTRY}/uk.ac.wellcome/svc{i}:ref.{b}{i}")),
        );
    }
    serde_json::Value::Object(images)
}

#[tokio::test]
async fn moving_tags_redeploys_exactly_the_services_fed_by_them_and_registers_nothing() {
    let h = Harness::new(&config()).await;
    let world = World::new(&h).await;
    let definitions = world.task_definitions().await;
    let before = world.deployments().await;
    let controller = h.start_controller().await;

    h.put_release(TABLE, release("r1", "catalogue", images(&["1"; N])))
        .await;
    let start = calls(&controller).await;
    let entry = h
        .deploy(TABLE, "r1", "stage", "2024-05-01T10:00:00.000000")
        .await;
    assert_eq!(entry.status, Some(Status::Succeeded), "{entry:?}");
    let first = delta(&calls(&controller).await, &start);
    for i in 0..N {
        assert_eq!(
            world.digest(i, "env.stage").await,
            world.digest(i, &format!("ref.1{i}")).await,
            "svc{i}'s env.stage tag moved to the release's image"
        );
        assert_eq!(world.digest(i, "env.prod").await, None, "prod untouched");
    }
    let after = world.deployments().await;
    for (name, id) in &after {
        let redeployed = before[name] != *id;
        assert_eq!(
            redeployed,
            name.ends_with("-stage"),
            "{name}: {before:?} → {after:?}"
        );
    }
    assert_eq!(
        world.task_definitions().await,
        definitions,
        "no revision registered"
    );
    let n = N as u64;
    assert_eq!(first.get("ECR.BatchGetImage"), Some(&n), "{first:?}");
    assert_eq!(first.get("ECR.PutImage"), Some(&n), "{first:?}");
    assert_eq!(first.get("ECS.UpdateService"), Some(&n), "{first:?}");
    assert_eq!(first.get("ECS.RegisterTaskDefinition"), None, "{first:?}");
    assert_eq!(first.get("ECS.DescribeTaskDefinition"), None, "{first:?}");
    assert_eq!(
        first.get("ECS.DescribeServices"),
        Some(&2),
        "2 N services, 10 per call, once for discovery; 1 per poll: {first:?}"
    );
    // ECR and ECS: 3 per service (read, tag, redeploy) + ListServices, DescribeServices
    // once for discovery and once per poll, ListTasks at the start and the end.
    let aws: u64 = first
        .iter()
        .filter(|(op, _)| op.starts_with("ECR.") || op.starts_with("ECS."))
        .map(|(_, n)| n)
        .sum();
    assert!(aws <= 3 * n + 5, "3 per service + 5: {aws} {first:?}");

    // Two services get a new build: only their tags move, only they are redeployed.
    world.push(0, "2").await;
    world.push(1, "2").await;
    let mut next = vec!["1"; N];
    next[0] = "2";
    next[1] = "2";
    h.put_release(TABLE, release("r2", "catalogue", images(&next)))
        .await;
    let start = calls(&controller).await;
    let entry = h
        .deploy(TABLE, "r2", "stage", "2024-05-01T11:00:00.000000")
        .await;
    assert_eq!(entry.status, Some(Status::Succeeded), "{entry:?}");
    let second = delta(&calls(&controller).await, &start);
    let last = world.deployments().await;
    for (name, id) in &last {
        let redeployed = after[name] != *id;
        let expected = name == "svc0-stage" || name == "svc1-stage";
        assert_eq!(redeployed, expected, "{name}: {after:?} → {last:?}");
    }
    assert_eq!(second.get("ECR.PutImage"), Some(&2), "{second:?}");
    assert_eq!(second.get("ECS.UpdateService"), Some(&2), "{second:?}");
    assert_eq!(
        world.task_definitions().await,
        definitions,
        "still none registered"
    );
    controller.stop().await;
}

/// A crash after the tags moved but before the services were redeployed: the next
/// leader's diff finds the tags already moved and no task runs to give the old digest
/// away (desiredCount 0), yet every service whose tag moved is redeployed, because the
/// services were recorded before their tags were written.
// Multi-threaded: moto answers the child while the test blocks reading its log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_moving_tags_and_redeploying_still_redeploys_every_moved_service() {
    let h = Harness::new(&format!(
        "[lease]\nduration = \"2s\"\nrenew_every = \"500ms\"\n{}",
        config()
    ))
    .await;
    let world = World::new(&h).await;
    let before = world.deployments().await;
    h.put_release(TABLE, release("r1", "catalogue", images(&["1"; N])))
        .await;

    let wait = std::time::Duration::from_secs(60);
    let mut doomed = Controller::start_with(&h, &[("RELCTL_FAILPOINT", "pinned")]);
    doomed.wait_for("leading: watching streams", wait);
    h.request(TABLE, "r1", "stage", "2024-05-01T10:00:00.000000")
        .await;
    doomed.wait_for("failpoint pinned", wait);
    assert!(!doomed.exited(wait).success(), "died abruptly");
    for i in 0..N {
        assert_eq!(
            world.digest(i, "env.stage").await,
            world.digest(i, &format!("ref.1{i}")).await,
            "svc{i}'s tag moved before the crash"
        );
    }
    assert_eq!(world.deployments().await, before, "nothing redeployed yet");

    let mut survivor = Controller::start(&h);
    survivor.wait_for("leading: watching streams", wait);
    let entry = h.finished(TABLE, "r1", 0).await;
    assert_eq!(entry.status, Some(Status::Succeeded), "{entry:?}");
    let after = world.deployments().await;
    for (name, id) in &after {
        assert_eq!(
            before[name] != *id,
            name.ends_with("-stage"),
            "{name}: {before:?} → {after:?}"
        );
    }
}
