//! The IAM tour: the controller and the CLI drive every pin kind (SSM parameters with
//! labels, an SSM JSON document, an ECR tag) and every AWS actuator (Lambda, ECS found
//! by tags and by name, CodePipeline), a protected four-eyes environment, a promotion
//! gate and an environment in another account, all through recording proxies. Every
//! request is then mapped to what IAM authorises (`wire.rs`, from the request alone)
//! and checked against the policies `relctl iam-policy` prints: each call is allowed,
//! and each grant was needed by some call.

mod eval;
mod wire;

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

use serde_json::{Value, json};

use crate::{
    ecs::{Cluster, Outcome},
    support::{
        Harness, Identity,
        pipeline::{self, Pipeline},
        proxy::{Exchange, Fault, Proxy, Rule},
        stub::Stub,
    },
};
use wire::{Need, Where};

const ACCOUNT: &str = "123456789012";
const OPS_ACCOUNT: &str = "111111111111";
const REGISTRY: &str = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";

/// The tour's projects (`tests/fixtures/iam-tour.toml`, which CI lints the policies
/// of) with the stubs' endpoints.
fn projects(ecs: &str, codepipeline: &str) -> String {
    let fixture = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/iam-tour.toml"
    ))
    .expect("tests/fixtures/iam-tour.toml");
    format!("[aws.endpoints]\necs = \"{ecs}\"\ncodepipeline = \"{codepipeline}\"\n\n{fixture}")
}

/// Pushes a minimal image manifest to `repository` under `tag`.
async fn push(ecr: &aws_sdk_ecr::Client, repository: &str, tag: &str) {
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": { "mediaType": "application/vnd.docker.container.image.v1+json", "size": 7023,
                    "digest": format!("sha256:{}", "c".repeat(64)) },
        "layers": [ { "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 32654,
                      "digest": format!("sha256:{}", "a".repeat(64)) } ],
    });
    ecr.put_image()
        .repository_name(repository)
        .image_manifest(manifest.to_string())
        .image_tag(tag)
        .send()
        .await
        .expect("push image");
}

/// What the tour's account holds before the controller starts.
async fn furnish(h: &Harness, v1: &str) {
    let ecr = aws_sdk_ecr::Client::new(&h.sdk);
    ecr.create_repository()
        .repository_name("bugfarm/hatching")
        .send()
        .await
        .expect("repository");
    push(&ecr, "bugfarm/hatching", "v1").await;
    push(&ecr, "bugfarm/hatching", "v2").await;
    let role = aws_sdk_iam::Client::new(&h.sdk)
        .create_role()
        .role_name("lambda")
        .assume_role_policy_document("{}")
        .send()
        .await
        .expect("role")
        .role
        .expect("the role")
        .arn;
    aws_sdk_lambda::Client::new(&h.sdk)
        .create_function()
        .function_name("dev-hatching")
        .role(role)
        .package_type(aws_sdk_lambda::types::PackageType::Image)
        .code(
            aws_sdk_lambda::types::FunctionCode::builder()
                .image_uri(v1)
                .build(),
        )
        .send()
        .await
        .expect("function");
    h.put_parameter(
        "/bugfarm/tfvars/stage",
        r#"{"image_versions": {"hatching": "v1"}, "region": "eu-west-1"}"#,
    )
    .await;
}

/// `relctl ARGS` as `who`, through `proxy`: its stdout.
async fn relctl(h: &Harness, proxy: &Proxy, who: &Identity, args: &[&str]) -> String {
    let out = relctl_full(h, proxy, who, args).await;
    out.split_once("\u{0}")
        .map_or(out.clone(), |(o, _)| o.to_owned())
}

/// `relctl ARGS` as `who`, through `proxy`: stdout, NUL, stderr. Fails unless it exits 0.
async fn relctl_full(h: &Harness, proxy: &Proxy, who: &Identity, args: &[&str]) -> String {
    let mut command = h.relctl();
    command
        .args(args)
        .env("AWS_ENDPOINT_URL", &proxy.endpoint)
        .env("AWS_ACCESS_KEY_ID", &who.access_key)
        .env("AWS_SECRET_ACCESS_KEY", &who.secret);
    let output = tokio::process::Command::from(command)
        .output()
        .await
        .expect("relctl runs");
    let (out, err) = (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    );
    assert!(output.status.success(), "relctl {args:?}: {out}{err}");
    format!("{out}\u{0}{err}")
}

async fn policy(h: &Harness, args: &[&str]) -> Value {
    let mut all = vec!["iam-policy", "--account", ACCOUNT, "--region", "eu-west-1"];
    all.extend(args);
    let (code, out, err) = h.run(&all).await;
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// Checks one principal's needs against its policy: (denied, unused) lines.
fn audit(name: &str, policy: &Value, needs: &[Need], user_id: &str) -> (Vec<String>, Vec<String>) {
    let mut denied: Vec<String> = needs
        .iter()
        .filter(|n| !eval::allows(policy, n, user_id))
        .map(|n| {
            format!(
                "{name}: {} on {} ({}; {:?}) is not allowed",
                n.action, n.resource, n.operation, n.context
            )
        })
        .collect();
    denied.dedup();
    let unused = eval::unused(policy, needs, user_id)
        .into_iter()
        .map(|u| format!("{name}: {u} was never needed"))
        .collect();
    (denied, unused)
}

#[tokio::test]
async fn every_call_is_allowed_by_the_generated_policies_and_every_grant_is_needed() {
    let v1 = format!("{REGISTRY}/bugfarm/hatching:v1");
    let v2 = format!("{REGISTRY}/bugfarm/hatching:v2");
    let mut cluster = Cluster::new(
        Outcome::Complete,
        &[
            (
                "hatching-stage",
                &[v1.as_str()],
                &[
                    ("deployment:service", "hatching"),
                    ("deployment:env", "stage"),
                ],
            ),
            ("hatching-ops", &[v1.as_str()], &[]),
        ],
    );
    for (family, account) in [("hatching-stage", ACCOUNT), ("hatching-ops", OPS_ACCOUNT)] {
        let td = cluster
            .definitions
            .get_mut(&crate::ecs::arn(family, 1))
            .expect("definition");
        td["taskRoleArn"] = json!(format!("arn:aws:iam::{account}:role/{family}-task"));
        td["executionRoleArn"] = json!(format!("arn:aws:iam::{account}:role/{family}-exec"));
        cluster.definition_tags.insert(
            crate::ecs::arn(family, 1),
            json!([{ "key": "team", "value": "bugfarm" }]),
        );
    }
    let cluster = Arc::new(Mutex::new(cluster));
    let ecs = {
        let cluster = cluster.clone();
        Stub::start(Arc::new(move |op, body| {
            cluster.lock().expect("cluster").handle(op, body)
        }))
        .await
    };
    let pipelines = Arc::new(Mutex::new(Pipeline::default()));
    // In progress for one poll: the actuator then looks for a waiting approval.
    pipelines
        .lock()
        .expect("pipelines")
        .scripts
        .push_back(vec!["InProgress", "Succeeded"]);
    // A second deployment to prod runs until it is cancelled.
    pipelines
        .lock()
        .expect("pipelines")
        .scripts
        .push_back(vec!["Hold"]);
    let codepipeline = {
        let pipelines = pipelines.clone();
        Stub::start(Arc::new(move |op, body| {
            pipeline::handle(&pipelines, op, body)
        }))
        .await
    };
    let (ecs_proxy, codepipeline_proxy) = (
        Proxy::start(&ecs.endpoint, vec![]).await,
        Proxy::start(&codepipeline.endpoint, vec![]).await,
    );
    let h = Harness::new(&projects(&ecs_proxy.endpoint, &codepipeline_proxy.endpoint)).await;
    furnish(&h, &v1).await;
    let aws = Proxy::start(&h.moto.endpoint, vec![]).await;
    // What IAM would answer the approver's attempt to show the approval on the entry.
    let approver_aws = Proxy::start(
        &h.moto.endpoint,
        vec![Rule {
            operation: "UpdateItem",
            fault: Fault::AccessDenied,
            every: 1,
            body_has: &[],
        }],
    )
    .await;
    h.put_parameter("/bugfarm/images/latest/hatching", &v1)
        .await;
    let (deployer, approver) = (h.identity("deployer").await, h.identity("approver").await);

    let controller = h.start_controller_via(&aws.endpoint).await;
    let service = format!("hatching={v2}");
    let create = [
        "release",
        "create",
        "--project",
        "bugfarm",
        "--service",
        &service,
    ];
    let id = relctl(&h, &aws, &deployer, &create).await.trim().to_owned();
    for env in ["dev", "stage"] {
        relctl(
            &h,
            &aws,
            &deployer,
            &["deploy", &id, "--env", env, "--wait", "--timeout", "120s"],
        )
        .await;
    }
    relctl(&h, &aws, &deployer, &["deploy", &id, "--env", "prod"]).await;
    let approved = relctl_full(
        &h,
        &approver_aws,
        &approver,
        &["approve", &id, "--env", "prod"],
    )
    .await;
    assert!(
        approved.contains("note: the approval is recorded; showing it on the entry failed"),
        "{approved}"
    );
    relctl(
        &h,
        &aws,
        &deployer,
        &["wait", &id, "--env", "prod", "--timeout", "120s"],
    )
    .await;
    relctl(
        &h,
        &aws,
        &deployer,
        &["deploy", &id, "--env", "ops", "--wait", "--timeout", "120s"],
    )
    .await;
    // Prod again, approved, then cancelled while its pipeline runs: the deployer's
    // cancel, and the controller's StopPipelineExecution.
    relctl(&h, &aws, &deployer, &["deploy", &id, "--env", "prod"]).await;
    relctl_full(
        &h,
        &approver_aws,
        &approver,
        &["approve", &id, "--env", "prod"],
    )
    .await;
    crate::support::until(
        "the second prod execution starts",
        async || pipelines.lock().expect("pipelines").executions.len(),
        |n| *n == 2,
    )
    .await;
    relctl(
        &h,
        &aws,
        &deployer,
        &["cancel", &id, "--env", "prod", "--reason", "a tour"],
    )
    .await;
    let last = h.release("relctl-releases", &id).await.deployments.len() - 1;
    h.until_status(
        "relctl-releases",
        &id,
        last,
        relctl::model::Status::Cancelled,
    )
    .await;
    for args in [
        &["status"][..],
        &["history", "--project", "bugfarm", "--env", "prod"],
        &["release", "list", "--project", "bugfarm"],
        &["release", "show", &id],
        &["release", "create", "--project", "bugfarm"],
        &["diff", &id, "--env", "dev"],
        &["diff", &id, "--env", "stage"],
        &["diff", &id, "--env", "prod"],
        &[
            "pause",
            "--project",
            "bugfarm",
            "--env",
            "dev",
            "--reason",
            "a tour",
        ],
        &["resume", "--project", "bugfarm", "--env", "dev"],
    ] {
        relctl(&h, &aws, &deployer, args).await;
    }
    let (code, page) = crate::support::get(controller.addr, "/").await;
    assert_eq!(code, 200, "{page}");
    assert_eq!(
        cluster.lock().expect("cluster").updates,
        ["hatching-stage", "hatching-ops"]
    );
    controller.stop().await;

    let mut exchanges: Vec<Exchange> = aws.exchanges();
    exchanges.extend(approver_aws.exchanges());
    exchanges.extend(ecs_proxy.exchanges());
    exchanges.extend(codepipeline_proxy.exchanges());
    let mut by_principal: BTreeMap<&str, Vec<Need>> = BTreeMap::new();
    for exchange in &exchanges {
        let (name, account) = match exchange.access_key.as_str() {
            "testing" => ("controller", ACCOUNT),
            k if k == deployer.access_key => ("deployer", ACCOUNT),
            k if k == approver.access_key => ("approver", ACCOUNT),
            // The credentials moto hands out for the ops environment's role.
            _ => ("ops role", OPS_ACCOUNT),
        };
        let at = Where {
            partition: "aws",
            region: "eu-west-1",
            account,
        };
        by_principal
            .entry(name)
            .or_default()
            .extend(wire::needs(exchange, &at));
    }
    for needs in by_principal.values_mut() {
        needs.sort();
        needs.dedup();
    }
    let policies = [
        ("controller", policy(&h, &[]).await, ""),
        (
            "deployer",
            policy(&h, &["--role", "deployer"]).await,
            deployer.user_id.as_str(),
        ),
        (
            "approver",
            policy(&h, &["--role", "approver"]).await,
            approver.user_id.as_str(),
        ),
        (
            "ops role",
            policy(&h, &["--environment", "bugfarm/ops"]).await,
            "",
        ),
    ];
    let (mut denied, mut unused) = (Vec::new(), Vec::new());
    for (name, policy, user_id) in &policies {
        let mut needs = by_principal.get(name).cloned().unwrap_or_default();
        assert!(!needs.is_empty(), "the tour saw no call by the {name}");
        // Denied by design, and the CLI copes (asserted above): approvers cannot write
        // release items, so `approve` cannot show the approval on the entry.
        if *name == "approver" {
            let before = needs.len();
            needs.retain(|n| {
                !(n.action == "dynamodb:UpdateItem"
                    && n.resource
                        == format!("arn:aws:dynamodb:eu-west-1:{ACCOUNT}:table/relctl-releases"))
            });
            assert!(
                needs.len() < before,
                "approve tried to show the approval on the entry"
            );
        }
        let needs = needs.as_slice();
        let (d, u) = audit(name, policy, needs, user_id);
        denied.extend(d);
        unused.extend(u);
    }
    assert!(
        denied.is_empty() && unused.is_empty(),
        "denied:\n{}\n\nunused:\n{}",
        denied.join("\n"),
        unused.join("\n")
    );
}
