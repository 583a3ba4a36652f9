//! What each role is granted, resource kind by resource kind. Kept beside the code that
//! makes the calls: a call added there without its action here is denied in a real
//! account, and `tests/e2e/iam.rs` (which sees every call on the wire) fails.

use serde_json::json;

use super::{Policy, Scope, Statement, account_of};
use crate::{
    config::{
        ActuatorConfig, Config, Environment, PinConfig, Project,
        environment::Discover,
        runner::{EcsTaskRunner, RunnerConfig},
    },
    pin::ssm_parameters::label_path,
    store::{
        attestations::SUBJECT_GSI,
        releases::{DEPLOYMENT_GSI, PROJECT_GSI},
    },
};

fn table(scope: &Scope, name: &str) -> String {
    scope.arn("dynamodb", &format!("table/{name}"))
}

fn releases_tables(config: &Config, scope: &Scope) -> Vec<String> {
    config
        .releases_tables()
        .iter()
        .map(|t| table(scope, t))
        .collect()
}

fn indexes(tables: &[String], names: &[&str]) -> Vec<String> {
    tables
        .iter()
        .flat_map(|t| names.iter().map(move |i| format!("{t}/index/{i}")))
        .collect()
}

/// The controller's own role (the ECS task role).
pub fn controller(config: &Config, scope: &Scope) -> Policy {
    let mut policy = Policy::default();
    let releases = releases_tables(config, scope);
    // Status, claims and the deployed pointer are written with UpdateItem.
    policy.add(Statement::new(
        "ReleasesTables",
        [
            "dynamodb:DescribeTable",
            "dynamodb:GetItem",
            "dynamodb:UpdateItem",
        ],
        releases.clone(),
    ));
    // The resync reads what was deployed lately, per project.
    policy.add(Statement::new(
        "ReleasesIndexes",
        ["dynamodb:Query"],
        indexes(&releases, &[DEPLOYMENT_GSI]),
    ));
    policy.add(Statement::new(
        "ReleasesStreams",
        [
            "dynamodb:DescribeStream",
            "dynamodb:GetRecords",
            "dynamodb:GetShardIterator",
        ],
        releases.iter().map(|t| format!("{t}/stream/*")),
    ));
    // Leader writes are TransactWriteItems with a ConditionCheck on the lease: IAM
    // authorises each item's own action.
    policy.add(Statement::new(
        "StateTable",
        [
            "dynamodb:BatchGetItem",
            "dynamodb:ConditionCheckItem",
            "dynamodb:DescribeTable",
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
        ],
        [table(scope, &config.tables.state)],
    ));
    let approvals = table(scope, &config.tables.approvals);
    policy.add(Statement::new(
        "ApprovalsBySubject",
        ["dynamodb:Query"],
        [format!("{approvals}/index/{SUBJECT_GSI}")],
    ));
    // `approvers` and `break_glass` name principals by ARN; the controller matches the
    // approvals table's proven ids against their unique ids.
    let mut listed: Vec<&str> = environments(config)
        .flat_map(|(_, env)| env.approvers.iter().chain(&env.break_glass))
        .map(String::as_str)
        .collect();
    listed.sort_unstable();
    listed.dedup();
    let (users, roles): (Vec<&str>, Vec<&str>) =
        listed.into_iter().partition(|arn| arn.contains(":user/"));
    policy.add(Statement::new("LookUpListedUsers", ["iam:GetUser"], users));
    policy.add(Statement::new("LookUpListedRoles", ["iam:GetRole"], roles));
    let roles: Vec<&str> = environments(config)
        .filter_map(|(_, env)| env.role_arn.as_deref())
        .collect();
    policy.add(Statement::new(
        "AssumeEnvironmentRoles",
        ["sts:AssumeRole"],
        roles,
    ));
    for (project, env) in environments(config) {
        if env.role_arn.is_none() {
            grant_environment(&mut policy, project, env, scope);
        }
    }
    // A Terraform module fetched from S3 by a local runner, which runs with the
    // controller's own credentials (not the environment's role): that object only, any
    // version of it. (An ecs_task runner fetches with its task role.)
    let sources: Vec<String> = environments(config)
        .filter_map(|(project, env)| match &env.actuator {
            ActuatorConfig::Terraform {
                source: Some(source),
                runner: RunnerConfig::Local,
                ..
            } => source
                .for_run(&crate::model::EnvKey::new(&project.id, &env.id))
                .ok()
                .and_then(|s| s.s3)
                .map(|s| format!("arn:{}:s3:::{}/{}", scope.partition, s.bucket, s.key)),
            _ => None,
        })
        .collect();
    policy.add(Statement::new(
        "TerraformSources",
        ["s3:GetObject", "s3:GetObjectVersion"],
        sources,
    ));
    grant_notify(&mut policy, &config.notify, scope);
    policy
}

/// SNS topics and EventBridge buses that deployment outcomes are told to.
fn grant_notify(policy: &mut Policy, notify: &crate::config::promotion::Notify, scope: &Scope) {
    if let Some(topic) = &notify.sns {
        policy.add(Statement::new(
            "NotifyTopics",
            ["sns:Publish"],
            [topic.clone()],
        ));
    }
    if let Some(bus) = &notify.eventbridge {
        let arn = if bus.starts_with("arn:") {
            bus.clone()
        } else {
            scope.arn("events", &format!("event-bus/{bus}"))
        };
        policy.add(Statement::new("NotifyBuses", ["events:PutEvents"], [arn]));
    }
}

/// What the role an environment names in `role_arn` needs, in that role's account.
/// None when the environment has no `role_arn` (the controller's own role covers it).
pub fn environment(config: &Config, project: &str, env: &str, scope: &Scope) -> Option<Policy> {
    let (project, env) = environments(config).find(|(p, e)| p.id == project && e.id == env)?;
    let role = env.role_arn.as_deref()?;
    let scope = account_of(role).map_or_else(|| scope.clone(), |a| scope.in_account(a));
    let mut policy = Policy::default();
    grant_environment(&mut policy, project, env, &scope);
    Some(policy)
}

fn environments(config: &Config) -> impl Iterator<Item = (&Project, &Environment)> {
    config
        .projects
        .iter()
        .flat_map(|p| p.environments.iter().map(move |e| (p, e)))
}

fn parameter(scope: &Scope, name: &str) -> String {
    scope.arn(
        "ssm",
        &format!("parameter/{}", name.trim_start_matches('/')),
    )
}

/// An `ssm_json_document` pin's parameter name, filled in.
fn document(name: &str, project: &Project, env: &Environment) -> String {
    name.replace("{project}", &project.id)
        .replace("{environment}", &env.id)
}

/// An `ecs_task` runner: start, follow and stop tasks of its task definition in its
/// cluster, pass its roles to ECS, read its log group. Terraform's own permissions are
/// the task role's, not these.
fn grant_runner_tasks(policy: &mut Policy, task: &EcsTaskRunner, scope: &Scope) {
    let cluster = &task.cluster;
    let cluster_arn = scope.arn("ecs", &format!("cluster/{cluster}"));
    let definition = if task.task_definition.starts_with("arn:") {
        task.task_definition.clone()
    } else {
        let family = task.task_definition.split(':').next().unwrap_or_default();
        scope.arn("ecs", &format!("task-definition/{family}:*"))
    };
    policy.add(
        Statement::new("RunnerRunTask", ["ecs:RunTask"], [definition])
            .when(json!({ "ArnEquals": { "ecs:cluster": cluster_arn } })),
    );
    policy.add(Statement::new(
        "RunnerTasks",
        ["ecs:DescribeTasks", "ecs:StopTask"],
        [scope.arn("ecs", &format!("task/{cluster}/*"))],
    ));
    // A task started just before a crash is found again by its startedBy.
    policy.add(
        Statement::new(
            "RunnerListTasks",
            ["ecs:ListTasks"],
            [scope.arn("ecs", &format!("container-instance/{cluster}/*"))],
        )
        .when(json!({ "ArnEquals": { "ecs:cluster": cluster_arn } })),
    );
    policy.add(
        Statement::new("RunnerPassRoles", ["iam:PassRole"], task.pass_roles.clone())
            .when(json!({ "StringEquals": { "iam:PassedToService": "ecs-tasks.amazonaws.com" } })),
    );
    policy.add(Statement::new(
        "RunnerLogs",
        ["logs:GetLogEvents"],
        [scope.arn(
            "logs",
            &format!("log-group:{}:log-stream:*", task.log_group),
        )],
    ));
}

/// The pin and actuator of one environment, in the account its calls are made in.
fn grant_environment(policy: &mut Policy, project: &Project, env: &Environment, scope: &Scope) {
    // Its resources are in its own Region, where it names one.
    let regional = Scope {
        region: env.region.clone().unwrap_or_else(|| scope.region.clone()),
        ..scope.clone()
    };
    let scope = &regional;
    // The alarms a deployment bakes and soaks with.
    policy.add(Statement::new(
        "VerifyAlarms",
        ["cloudwatch:DescribeAlarms"],
        env.verify
            .watched()
            .into_iter()
            .map(|name| scope.arn("cloudwatch", &format!("alarm:{name}"))),
    ));
    grant_notify(policy, &env.notify, scope);
    // Hooks that are Lambda functions, invoked with the deployment.
    policy.add(Statement::new(
        "InvokeHooks",
        ["lambda:InvokeFunction"],
        env.hooks
            .before
            .iter()
            .chain(&env.hooks.after)
            .chain(&env.hooks.on_rollback)
            .filter_map(|h| h.function.as_deref())
            .flat_map(|f| match f.starts_with("arn:") {
                true => vec![f.to_owned()],
                // A partial ARN: `account:function:name`.
                false if f.contains(":function:") => vec![format!(
                    "arn:{}:lambda:{}:{f}",
                    scope.partition, scope.region
                )],
                // A name may carry its version or alias (`smoke:live`).
                false if f.contains(':') => vec![scope.arn("lambda", &format!("function:{f}"))],
                false => vec![
                    scope.arn("lambda", &format!("function:{f}")),
                    scope.arn("lambda", &format!("function:{f}:*")),
                ],
            }),
    ));
    match &env.pin {
        PinConfig::SsmParameters { label } => {
            let path = label_path(&project.id, &env.id);
            // What is pinned, for drift checks and verification: the release's
            // services by name, ten per GetParameters call.
            let mut actions = vec!["ssm:GetParameters", "ssm:PutParameter"];
            if *label {
                actions.push("ssm:LabelParameterVersion");
            }
            policy.add(Statement::new(
                "ImagePins",
                actions,
                [parameter(scope, &format!("{path}/*"))],
            ));
        }
        PinConfig::SsmJsonDocument {
            parameter: name, ..
        } => {
            policy.add(Statement::new(
                "ImageDocuments",
                ["ssm:GetParameter", "ssm:PutParameter"],
                [parameter(scope, &document(name, project, env))],
            ));
        }
        PinConfig::EcrTag { .. } => {
            // The repositories are those of the release's images, known only then.
            policy.add(Statement::new(
                "EcrTags",
                ["ecr:BatchGetImage", "ecr:PutImage"],
                [scope.arn("ecr", "repository/*")],
            ));
        }
    }
    match &env.actuator {
        ActuatorConfig::Terraform {
            runner: RunnerConfig::EcsTask(task),
            ..
        } => grant_runner_tasks(policy, task, scope),
        ActuatorConfig::None | ActuatorConfig::Terraform { .. } => {}
        ActuatorConfig::Codepipeline { pipeline, .. } => {
            policy.add(Statement::new(
                "Pipelines",
                [
                    "codepipeline:GetPipelineExecution",
                    "codepipeline:GetPipelineState",
                    "codepipeline:StartPipelineExecution",
                    "codepipeline:StopPipelineExecution",
                ],
                [scope.arn("codepipeline", pipeline)],
            ));
        }
        ActuatorConfig::Ecs {
            cluster,
            services,
            discover,
            ..
        } => {
            let service = |name: &str| scope.arn("ecs", &format!("service/{cluster}/{name}"));
            let named = services.values().flatten().map(|name| service(name));
            if discover == &Some(Discover::Tags) {
                policy.add(Statement::new(
                    "EcsFindServices",
                    ["ecs:ListServices"],
                    ["*"],
                ).when(json!({ "ArnEquals": { "ecs:cluster": scope.arn("ecs", &format!("cluster/{cluster}")) } })));
                policy.add(Statement::new(
                    "EcsServices",
                    ["ecs:DescribeServices", "ecs:UpdateService"],
                    [service("*")],
                ));
            } else {
                policy.add(Statement::new(
                    "EcsServices",
                    ["ecs:DescribeServices", "ecs:UpdateService"],
                    named,
                ));
            }
            if matches!(env.pin, PinConfig::EcrTag { .. }) {
                // A floating tag: services are redeployed on the task definitions they
                // have, and their running tasks' digests are checked.
                let cluster_arn = scope.arn("ecs", &format!("cluster/{cluster}"));
                // ListTasks' resource is the cluster's container instances.
                policy.add(
                    Statement::new(
                        "EcsListTasks",
                        ["ecs:ListTasks"],
                        [scope.arn("ecs", &format!("container-instance/{cluster}/*"))],
                    )
                    .when(json!({ "ArnEquals": { "ecs:cluster": cluster_arn } })),
                );
                policy.add(Statement::new(
                    "EcsDescribeTasks",
                    ["ecs:DescribeTasks"],
                    [scope.arn("ecs", &format!("task/{cluster}/*"))],
                ));
            } else {
                // DescribeTaskDefinition has no resource-level permissions; the families a
                // new revision is registered in are those of the services' definitions.
                policy.add(Statement::new(
                    "EcsDescribeTaskDefinitions",
                    ["ecs:DescribeTaskDefinition"],
                    ["*"],
                ));
                let families = scope.arn("ecs", "task-definition/*");
                policy.add(Statement::new(
                    "EcsRegisterTaskDefinitions",
                    ["ecs:RegisterTaskDefinition"],
                    [families.clone()],
                ));
                // Registering with the old revision's tags is tagging on create.
                policy.add(
                    Statement::new("EcsTagNewRevisions", ["ecs:TagResource"], [families]).when(
                        json!({ "StringEquals": { "ecs:CreateAction": "RegisterTaskDefinition" } }),
                    ),
                );
                // A new revision passes on the task and execution roles of the one before;
                // which those are is in the task definitions, not the configuration.
                policy.add(
                    Statement::new(
                        "PassTaskRoles",
                        ["iam:PassRole"],
                        [format!(
                            "arn:{}:iam::{}:role/*",
                            scope.partition, scope.account
                        )],
                    )
                    .when(
                        json!({ "StringEquals": { "iam:PassedToService": "ecs-tasks.amazonaws.com" } }),
                    ),
                );
            }
        }
        ActuatorConfig::Lambda { functions, .. } => {
            policy.add(Statement::new(
                "LambdaFunctions",
                ["lambda:GetFunction", "lambda:UpdateFunctionCode"],
                functions
                    .values()
                    .map(|f| scope.arn("lambda", &format!("function:{f}"))),
            ));
        }
    }
}

/// People and pipelines that create releases and request deployments.
pub fn deployer(config: &Config, scope: &Scope) -> Policy {
    let mut policy = Policy::default();
    let releases = releases_tables(config, scope);
    policy.add(Statement::new(
        "ReadAndAppendReleases",
        [
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
        ],
        releases.clone(),
    ));
    policy.add(Statement::new(
        "ListReleases",
        ["dynamodb:Query"],
        indexes(&releases, &[PROJECT_GSI, DEPLOYMENT_GSI]),
    ));
    policy.add(Statement::new(
        "ReadControllerState",
        ["dynamodb:BatchGetItem", "dynamodb:GetItem"],
        [table(scope, &config.tables.state)],
    ));
    // `release create` reads a label's images; `diff` reads what is pinned.
    policy.add(Statement::new(
        "ReadImagePaths",
        ["ssm:GetParameters", "ssm:GetParametersByPath"],
        config
            .projects
            .iter()
            .map(|p| parameter(scope, &format!("{}*", label_path(&p.id, "")))),
    ));
    for (project, env) in environments(config) {
        // Never the role of an environment in another account: it may write pins
        // there, so a deployer who could assume it could deploy past every gate.
        if env.role_arn.is_some() {
            continue;
        }
        // In the environment's own Region, where it names one (`diff` reads its pins).
        let regional = Scope {
            region: env.region.clone().unwrap_or_else(|| scope.region.clone()),
            ..scope.clone()
        };
        let scope = &regional;
        if env.region.is_some() {
            policy.add(Statement::new(
                "ReadImagePaths",
                ["ssm:GetParameters", "ssm:GetParametersByPath"],
                [parameter(
                    scope,
                    &format!("{}*", label_path(&project.id, "")),
                )],
            ));
        }
        match &env.pin {
            PinConfig::SsmParameters { .. } => {}
            PinConfig::SsmJsonDocument {
                parameter: name, ..
            } => policy.add(Statement::new(
                "ReadImageDocuments",
                ["ssm:GetParameter"],
                [parameter(scope, &document(name, project, env))],
            )),
            PinConfig::EcrTag { .. } => policy.add(Statement::new(
                "ReadEcrTags",
                ["ecr:BatchGetImage"],
                [scope.arn("ecr", "repository/*")],
            )),
        }
    }
    // Requests, and the controls a deployer may use (pause, resume, cancel, unlock,
    // break-glass — the controller admits a break-glass only from `break_glass`).
    policy.add(
        Statement::new(
            "RecordOwnRequests",
            ["dynamodb:PutItem"],
            [table(scope, &config.tables.approvals)],
        )
        .when(own_keys(&[
            "request#",
            "pause#",
            "resume#",
            "cancel#",
            "break_glass#",
            "unlock#",
        ])),
    );
    // `relctl resume` reads the pauses it ends.
    policy.add(Statement::new(
        "ReadControls",
        ["dynamodb:Query"],
        [format!(
            "{}/index/{SUBJECT_GSI}",
            table(scope, &config.tables.approvals)
        )],
    ));
    policy.add(who_am_i());
    policy
}

/// People who approve deployments to protected environments.
pub fn approver(config: &Config, scope: &Scope) -> Policy {
    let mut policy = Policy::default();
    let releases = releases_tables(config, scope);
    policy.add(Statement::new(
        "FindReleases",
        ["dynamodb:GetItem"],
        releases.clone(),
    ));
    let approvals = table(scope, &config.tables.approvals);
    policy.add(
        Statement::new(
            "RecordOwnApprovals",
            ["dynamodb:PutItem"],
            [approvals.clone()],
        )
        .when(own_key("approve#")),
    );
    policy.add(Statement::new(
        "ReadRequests",
        ["dynamodb:Query"],
        [format!("{approvals}/index/{SUBJECT_GSI}")],
    ));
    policy.add(who_am_i());
    policy
}

/// Only items whose partition key is `{prefix}<the caller's aws:userid>`: what makes an
/// attestation proof of who wrote it.
fn own_key(prefix: &str) -> serde_json::Value {
    own_keys(&[prefix])
}

fn own_keys(prefixes: &[&str]) -> serde_json::Value {
    let keys: Vec<String> = prefixes
        .iter()
        .map(|p| format!("{p}${{aws:userid}}"))
        .collect();
    json!({ "ForAllValues:StringEquals": { "dynamodb:LeadingKeys": keys } })
}

fn who_am_i() -> Statement {
    Statement::new("WhoAmI", ["sts:GetCallerIdentity"], ["*"])
}
