//! AWS's per-operation request quotas, as relctl's default client-side limits. Each row
//! is one AWS quota: the operations that share it, the sustained rate (requests per
//! second) and the burst (the bucket's size). Where AWS publishes no per-operation
//! figure the row says whose choice it is. Quotas are per account and Region; relctl's
//! buckets are per process, so several accounts share one (the safe side).

/// One quota.
#[derive(Debug, Clone, Copy)]
pub struct Quota {
    pub service: &'static str,
    /// The operations that draw on it (empty: every operation of the service without
    /// a row of its own).
    pub operations: &'static [&'static str],
    pub rate: u32,
    pub burst: u32,
    pub source: &'static str,
}

const SSM_QUOTAS: &str = "AWS General Reference, Systems Manager endpoints and quotas";
const ECR_QUOTAS: &str = "Amazon ECR User Guide, service quotas";
const ECS_THROTTLING: &str =
    "Amazon ECS API Reference, request throttling (refill rate / bucket size)";
const LAMBDA_QUOTAS: &str = "AWS Lambda Developer Guide, quotas";

/// The defaults. README ("Client-side rate limits") lists the same rows.
pub const DEFAULTS: &[Quota] = &[
    Quota {
        service: "ssm",
        operations: &["GetParameter", "GetParameters", "GetParametersByPath"],
        rate: 40,
        burst: 40,
        source: SSM_QUOTAS,
    },
    Quota {
        service: "ssm",
        operations: &["PutParameter", "LabelParameterVersion"],
        rate: 10,
        burst: 10,
        source: "not published; AWS Support quotes 3/s at standard and 10/s at higher throughput (terraform-aws-github-runner#2944)",
    },
    Quota {
        service: "ecr",
        operations: &["BatchGetImage"],
        rate: 2000,
        burst: 2000,
        source: ECR_QUOTAS,
    },
    Quota {
        service: "ecr",
        operations: &["PutImage"],
        rate: 10,
        burst: 10,
        source: ECR_QUOTAS,
    },
    Quota {
        service: "ecs",
        operations: &["DescribeServices", "ListServices"],
        rate: 20,
        burst: 100,
        source: ECS_THROTTLING,
    },
    Quota {
        service: "ecs",
        operations: &["UpdateService", "CreateService", "DeleteService"],
        rate: 5,
        burst: 50,
        source: ECS_THROTTLING,
    },
    Quota {
        service: "ecs",
        operations: &["DescribeTasks", "ListTasks"],
        rate: 20,
        burst: 100,
        source: ECS_THROTTLING,
    },
    Quota {
        service: "ecs",
        operations: &["DescribeTaskDefinition", "ListTaskDefinitions"],
        rate: 20,
        burst: 100,
        source: ECS_THROTTLING,
    },
    Quota {
        service: "ecs",
        operations: &["RegisterTaskDefinition", "DeregisterTaskDefinition"],
        rate: 1,
        burst: 20,
        source: ECS_THROTTLING,
    },
    Quota {
        service: "ecs",
        operations: &["RunTask", "StopTask"],
        rate: 40,
        burst: 100,
        source: ECS_THROTTLING,
    },
    Quota {
        service: "lambda",
        operations: &["GetFunction"],
        rate: 100,
        burst: 100,
        source: LAMBDA_QUOTAS,
    },
    Quota {
        service: "lambda",
        operations: &[],
        rate: 15,
        burst: 15,
        source: "AWS Lambda Developer Guide, quotas: control plane requests (all but GetFunction and GetPolicy)",
    },
    Quota {
        service: "dynamodbstreams",
        operations: &["DescribeStream"],
        rate: 10,
        burst: 10,
        source: "Amazon DynamoDB Developer Guide, quotas: DescribeStream 10 per second",
    },
    Quota {
        service: "codepipeline",
        operations: &[],
        rate: 10,
        burst: 10,
        source: "relctl's choice (AWS publishes no per-operation figure for the calls relctl makes)",
    },
    Quota {
        service: "sts",
        operations: &[],
        rate: 10,
        burst: 10,
        source: "relctl's choice (credentials are refreshed rarely)",
    },
];

/// The services `aws.rate_limits` may name.
pub const SERVICES: &[&str] = &[
    "codepipeline",
    "dynamodb",
    "dynamodbstreams",
    "ecr",
    "ecs",
    "lambda",
    "ssm",
    "sts",
];

/// Why an `aws.rate_limits` key is not one relctl can apply, if it is not.
pub fn check_key(key: &str) -> Option<String> {
    let (service, operation) = match key.split_once('.') {
        Some((service, operation)) => (service, Some(operation)),
        None => (key, None),
    };
    if !SERVICES.contains(&service) {
        return Some(format!(
            "aws.rate_limits.{key}: unknown service {service:?} ({})",
            SERVICES.join(", ")
        ));
    }
    match operation {
        Some(op)
            if op.is_empty()
                || !op.starts_with(|c: char| c.is_ascii_uppercase())
                || !op.chars().all(|c| c.is_ascii_alphanumeric()) =>
        {
            Some(format!(
                "aws.rate_limits.{key}: {op:?} is not an operation name (as AWS spells it, e.g. ssm.PutParameter)"
            ))
        }
        _ => None,
    }
}
