//! Builds each environment's pin and actuator once, at start-up, with clients for the
//! environment's account: the controller's own credentials, or a role assumed through
//! STS where the environment names `role_arn` (credentials refreshed as they expire).

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, OnceLock},
};

use aws_config::{SdkConfig, sts::AssumeRoleProvider};
use aws_sdk_dynamodb::config::SharedCredentialsProvider;

use crate::{
    actuator::{
        Actuator,
        codepipeline::CodePipeline,
        command::{CommandActuator, Runs, ecs_task::EcsTasks},
        ecs::Ecs,
        lambda::Lambda,
    },
    aws_metrics::CountCalls,
    config::{
        ActuatorConfig, Config, Environment, PinConfig, environment::Discover, runner::RunnerConfig,
    },
    metrics::Metrics,
    model::EnvKey,
    notify::Sink,
    pin::{Pin, SsmParameters, ecr_tag::EcrTag, ssm_json_document::SsmJsonDocument},
};

/// What one environment is pinned and applied with.
#[derive(Clone)]
pub struct Adapters {
    pub pin: Arc<dyn Pin>,
    /// None for `actuator = { kind = "none" }`: pinning is the whole deployment.
    pub actuator: Option<Arc<dyn Actuator>>,
    /// The alarms of `verify`, where it names any.
    pub alarms: Option<crate::watch::alarms::Alarms>,
    /// Where its deployments' outcomes are told: its own `notify`, then `[notify]`.
    pub sinks: Vec<Arc<Sink>>,
    /// Lambda, in the environment's account and Region, where a hook is a function.
    pub hooks: Option<aws_sdk_lambda::Client>,
}

/// Where an environment's calls go: its account (the role assumed, if any) and its
/// Region (none: the controller's own).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Place {
    pub role_arn: Option<String>,
    pub region: Option<String>,
}

impl Place {
    pub fn of(env: &Environment) -> Self {
        Self {
            role_arn: env.role_arn.clone(),
            region: env.region.clone(),
        }
    }
}

/// SDK configuration for an environment's account and Region. Another account or
/// Region than the controller's gets rate limits of its own (`rate_limits` for each):
/// AWS's quotas are per account and Region.
pub async fn account(
    base: &SdkConfig,
    place: &Place,
    rate_limits: &BTreeMap<String, u32>,
) -> SdkConfig {
    if place.role_arn.is_none() && place.region.is_none() {
        return base.clone();
    }
    let mut regional = base
        .to_builder()
        .http_client(crate::aws::limit::Limited::client(rate_limits));
    if let Some(region) = &place.region {
        regional = regional.region(aws_config::Region::new(region.clone()));
    }
    let regional = regional.build();
    match &place.role_arn {
        None => regional,
        Some(arn) => {
            let provider = AssumeRoleProvider::builder(arn)
                .session_name("relctl")
                .configure(&regional)
                .build()
                .await;
            regional
                .to_builder()
                .credentials_provider(SharedCredentialsProvider::new(provider))
                .build()
        }
    }
}

/// Clients for one account, with the configured per-service endpoints. Each kind is
/// built once, on first use, and shared by every environment of the account (a client
/// is a handle on one connection pool and configuration; one per environment cost
/// ~30 KB each at 10,000 environments).
pub struct Clients<'a> {
    pub sdk: &'a SdkConfig,
    pub endpoints: &'a BTreeMap<String, String>,
    pub metrics: &'a Arc<Metrics>,
    pub built: Built,
}

impl<'a> Clients<'a> {
    pub fn new(
        sdk: &'a SdkConfig,
        endpoints: &'a BTreeMap<String, String>,
        metrics: &'a Arc<Metrics>,
    ) -> Self {
        Self {
            sdk,
            endpoints,
            metrics,
            built: Built::default(),
        }
    }

    /// The region these clients call, for a runner that makes its own calls.
    pub fn region(&self) -> Option<String> {
        self.sdk.region().map(|r| r.to_string())
    }
}

/// The clients built so far.
#[derive(Default)]
pub struct Built {
    dynamodb: OnceLock<aws_sdk_dynamodb::Client>,
    dynamodbstreams: OnceLock<aws_sdk_dynamodbstreams::Client>,
    ssm: OnceLock<aws_sdk_ssm::Client>,
    ecr: OnceLock<aws_sdk_ecr::Client>,
    ecs: OnceLock<aws_sdk_ecs::Client>,
    lambda: OnceLock<aws_sdk_lambda::Client>,
    codepipeline: OnceLock<aws_sdk_codepipeline::Client>,
    sts: OnceLock<aws_sdk_sts::Client>,
    logs: OnceLock<aws_sdk_cloudwatchlogs::Client>,
    cloudwatch: OnceLock<aws_sdk_cloudwatch::Client>,
    sns: OnceLock<aws_sdk_sns::Client>,
    eventbridge: OnceLock<aws_sdk_eventbridge::Client>,
    iam: OnceLock<aws_sdk_iam::Client>,
}

macro_rules! client {
    ($name:ident, $krate:ident, $service:literal) => {
        pub fn $name(&self) -> $krate::Client {
            self.built
                .$name
                .get_or_init(|| {
                    let mut config = $krate::config::Builder::from(self.sdk)
                        .interceptor(CountCalls(self.metrics.clone()));
                    if let Some(url) = self.endpoints.get($service) {
                        config = config.endpoint_url(url);
                    }
                    $krate::Client::from_conf(config.build())
                })
                .clone()
        }
    };
}

impl Clients<'_> {
    client!(dynamodb, aws_sdk_dynamodb, "dynamodb");
    client!(dynamodbstreams, aws_sdk_dynamodbstreams, "dynamodbstreams");
    client!(ssm, aws_sdk_ssm, "ssm");
    client!(ecr, aws_sdk_ecr, "ecr");
    client!(ecs, aws_sdk_ecs, "ecs");
    client!(lambda, aws_sdk_lambda, "lambda");
    client!(codepipeline, aws_sdk_codepipeline, "codepipeline");
    client!(sts, aws_sdk_sts, "sts");
    client!(logs, aws_sdk_cloudwatchlogs, "logs");
    client!(cloudwatch, aws_sdk_cloudwatch, "monitoring");
    client!(sns, aws_sdk_sns, "sns");
    client!(eventbridge, aws_sdk_eventbridge, "events");
    client!(iam, aws_sdk_iam, "iam");
}

pub async fn build(
    config: &Config,
    base: &SdkConfig,
    metrics: &Arc<Metrics>,
    runs: &Arc<Runs>,
) -> HashMap<EnvKey, Adapters> {
    // One SDK configuration per account (role) and Region, and one set of clients for
    // each.
    let mut accounts: HashMap<Place, SdkConfig> = HashMap::new();
    for env in config.projects.iter().flat_map(|p| &p.environments) {
        let place = Place::of(env);
        if let std::collections::hash_map::Entry::Vacant(slot) = accounts.entry(place) {
            let sdk = account(base, slot.key(), &config.aws.rate_limits).await;
            slot.insert(sdk);
        }
    }
    let clients: HashMap<&Place, Clients<'_>> = accounts
        .iter()
        .map(|(role, sdk)| (role, Clients::new(sdk, &config.aws.endpoints, metrics)))
        .collect();
    let http = webhook_client();
    // `[notify]`: with the controller's own account's clients.
    let base_clients = Clients::new(base, &config.aws.endpoints, metrics);
    let global: Vec<Arc<Sink>> = Sink::from_config(
        &config.notify,
        || base_clients.sns(),
        || base_clients.eventbridge(),
        &http,
    )
    .into_iter()
    .map(Arc::new)
    .collect();
    let mut built = HashMap::new();
    for project in &config.projects {
        for env in &project.environments {
            let Some(clients) = clients.get(&Place::of(env)) else {
                continue;
            };
            let mut adapters = for_environment(env, clients, Some(runs));
            adapters.sinks = Sink::from_config(
                &env.notify,
                || clients.sns(),
                || clients.eventbridge(),
                &http,
            )
            .into_iter()
            .map(Arc::new)
            .chain(global.iter().cloned())
            .collect();
            built.insert(EnvKey::new(&project.id, &env.id), adapters);
        }
    }
    built
}

/// The one HTTPS client of every webhook: rustls with the system's roots, no
/// redirects (a webhook that moves must be configured again).
fn webhook_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(std::time::Duration::from_secs(5))
        .build()
        .unwrap_or_default()
}

pub fn for_environment(
    env: &Environment,
    clients: &Clients<'_>,
    runs: Option<&Arc<Runs>>,
) -> Adapters {
    Adapters {
        pin: pin(&env.pin, clients),
        actuator: actuator(
            &env.actuator,
            matches!(env.pin, PinConfig::EcrTag { .. }),
            env.protected,
            clients,
            runs,
        ),
        alarms: (!env.verify.watched().is_empty()).then(|| crate::watch::alarms::Alarms {
            client: clients.cloudwatch(),
        }),
        sinks: Vec::new(),
        hooks: env
            .hooks
            .before
            .iter()
            .chain(&env.hooks.after)
            .chain(&env.hooks.on_rollback)
            .any(|h| h.function.is_some())
            .then(|| clients.lambda()),
    }
}

fn pin(config: &PinConfig, clients: &Clients<'_>) -> Arc<dyn Pin> {
    match config.clone() {
        PinConfig::SsmParameters { label } => Arc::new(SsmParameters::new(clients.ssm(), label)),
        PinConfig::SsmJsonDocument {
            parameter,
            key_path,
            value,
            version_key,
            refuse_downgrade,
        } => Arc::new(SsmJsonDocument {
            client: clients.ssm(),
            parameter,
            key_path,
            value,
            version_key,
            refuse_downgrade,
        }),
        PinConfig::EcrTag { tag } => Arc::new(EcrTag::new(clients.ecr(), tag)),
    }
}

/// `runs`: the run records a command actuator needs (None: such an environment gets no
/// actuator, e.g. in `relctl diff`, which only reads pins).
/// `floating_tag`: the environment's pin moves a tag the actuator's targets name.
fn actuator(
    config: &ActuatorConfig,
    floating_tag: bool,
    protected: bool,
    clients: &Clients<'_>,
    runs: Option<&Arc<Runs>>,
) -> Option<Arc<dyn Actuator>> {
    Some(match config.clone() {
        ActuatorConfig::None => return None,
        ActuatorConfig::Terraform {
            dir,
            source,
            scratch,
            runner,
            commands,
            env,
            timeout,
            verify_plan,
            drift_check,
            interrupt_grace,
        } => Arc::new(CommandActuator {
            // An ECS task unpacks its source in its own scratch volume.
            dir: match &runner {
                RunnerConfig::EcsTask(task) => task.scratch.clone(),
                RunnerConfig::Local => dir.unwrap_or_else(|| scratch.clone()),
            },
            scratch,
            plan_approval: protected,
            source,
            region: clients.region(),
            tasks: match runner {
                RunnerConfig::Local => None,
                RunnerConfig::EcsTask(config) => Some(EcsTasks {
                    ecs: clients.ecs(),
                    logs: clients.logs(),
                    config: *config,
                }),
            },
            commands,
            env: env.into_iter().collect(),
            timeout,
            verify_plan,
            drift_check,
            grace: interrupt_grace,
            runs: runs?.clone(),
        }),
        ActuatorConfig::Codepipeline {
            pipeline,
            variables,
            poll_interval,
            timeout,
        } => Arc::new(CodePipeline {
            client: clients.codepipeline(),
            pipeline,
            variables,
            poll_interval,
            timeout,
        }),
        ActuatorConfig::Ecs {
            cluster,
            services,
            discover,
            poll_interval,
            timeout,
        } => Arc::new(Ecs {
            client: clients.ecs(),
            cluster,
            services,
            discover_by_tags: discover == Some(Discover::Tags),
            poll_interval,
            timeout,
            floating_tag,
        }),
        ActuatorConfig::Lambda {
            functions,
            poll_interval,
            timeout,
        } => Arc::new(Lambda {
            client: clients.lambda(),
            functions,
            poll_interval,
            timeout,
        }),
    })
}
