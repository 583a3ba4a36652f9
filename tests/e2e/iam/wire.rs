//! What IAM checks for each request seen on the wire: the action(s) AWS authorises and
//! on which resource, worked out from the request itself (not from relctl's own idea of
//! it). Transactions and batches are expanded per item, as IAM does: a
//! `TransactWriteItems` is a `PutItem`, `UpdateItem`, `DeleteItem` or
//! `ConditionCheckItem` on each item's table; `TransactWriteItems` is no IAM action.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::support::proxy::Exchange;

/// One authorisation AWS makes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Need {
    pub action: String,
    pub resource: String,
    /// Condition keys the request sets (`dynamodb:LeadingKeys`, `iam:PassedToService`,
    /// `ecs:cluster`).
    pub context: BTreeMap<String, Vec<String>>,
    /// The operation on the wire, for messages.
    pub operation: String,
}

pub struct Where<'a> {
    pub partition: &'a str,
    pub region: &'a str,
    pub account: &'a str,
}

impl Where<'_> {
    fn arn(&self, service: &str, resource: &str) -> String {
        format!(
            "arn:{}:{service}:{}:{}:{resource}",
            self.partition, self.region, self.account
        )
    }
}

fn need(action: &str, resource: String, operation: &str) -> Need {
    Need {
        action: action.to_owned(),
        resource,
        context: BTreeMap::new(),
        operation: operation.to_owned(),
    }
}

fn text<'a>(body: &'a Value, field: &str) -> &'a str {
    body[field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field} in {body}"))
}

/// The IAM authorisations `exchange` needed, made by a principal of account `at`.
pub fn needs(exchange: &Exchange, at: &Where<'_>) -> Vec<Need> {
    let body: Value = serde_json::from_slice(&exchange.body).unwrap_or(Value::Null);
    let (prefix, op) = exchange
        .target
        .split_once('.')
        .unwrap_or(("", exchange.target.as_str()));
    match (exchange.service.as_str(), prefix) {
        ("dynamodb", "DynamoDB_20120810") => dynamodb(op, &body, at),
        ("dynamodb", "DynamoDBStreams_20120810") => streams(op, &body),
        ("ssm", _) => ssm(op, &body, at),
        ("ecr", _) => ecr(op, &body, at),
        ("ecs", _) => ecs(op, &body, at),
        ("codepipeline", _) => {
            let name = body["name"]
                .as_str()
                .or(body["pipelineName"].as_str())
                .unwrap_or_else(|| panic!("no pipeline name in {body}"));
            vec![need(
                &format!("codepipeline:{op}"),
                at.arn("codepipeline", name),
                op,
            )]
        }
        ("sts", _) => sts(exchange),
        ("lambda", _) => lambda(exchange, at),
        other => panic!(
            "the tour saw a {other:?} call ({} {}) and does not know what IAM checks for it: teach tests/e2e/iam/wire.rs",
            exchange.method, exchange.path
        ),
    }
}

fn table(at: &Where<'_>, name: &str) -> String {
    at.arn("dynamodb", &format!("table/{name}"))
}

fn leading(item: &Value) -> Vec<String> {
    item["principal"]["S"]
        .as_str()
        .map(|k| vec![k.to_owned()])
        .unwrap_or_default()
}

fn dynamodb(op: &str, body: &Value, at: &Where<'_>) -> Vec<Need> {
    match op {
        "GetItem" | "PutItem" | "UpdateItem" | "DeleteItem" | "Scan" | "Query"
        | "DescribeTable" => {
            let mut resource = table(at, text(body, "TableName"));
            if let Some(index) = body["IndexName"].as_str() {
                resource = format!("{resource}/index/{index}");
            }
            let mut n = need(&format!("dynamodb:{op}"), resource, op);
            let keys = leading(if op == "PutItem" {
                &body["Item"]
            } else {
                &body["Key"]
            });
            if !keys.is_empty() {
                n.context.insert("dynamodb:LeadingKeys".into(), keys);
            }
            vec![n]
        }
        "BatchGetItem" | "BatchWriteItem" => body["RequestItems"]
            .as_object()
            .unwrap_or_else(|| panic!("no RequestItems in {body}"))
            .keys()
            .map(|t| need(&format!("dynamodb:{op}"), table(at, t), op))
            .collect(),
        "TransactWriteItems" | "TransactGetItems" => body["TransactItems"]
            .as_array()
            .unwrap_or_else(|| panic!("no TransactItems in {body}"))
            .iter()
            .map(|item| {
                let (kind, inner) = item
                    .as_object()
                    .and_then(|o| o.iter().next())
                    .unwrap_or_else(|| panic!("empty transaction item in {body}"));
                let action = match kind.as_str() {
                    "Put" => "PutItem",
                    "Update" => "UpdateItem",
                    "Delete" => "DeleteItem",
                    "ConditionCheck" => "ConditionCheckItem",
                    "Get" => "GetItem",
                    other => panic!("unknown transaction item {other}"),
                };
                let mut n = need(
                    &format!("dynamodb:{action}"),
                    table(at, text(inner, "TableName")),
                    op,
                );
                let keys = leading(if kind == "Put" {
                    &inner["Item"]
                } else {
                    &inner["Key"]
                });
                if !keys.is_empty() {
                    n.context.insert("dynamodb:LeadingKeys".into(), keys);
                }
                n
            })
            .collect(),
        other => panic!("DynamoDB {other}: teach tests/e2e/iam/wire.rs its IAM action"),
    }
}

fn streams(op: &str, body: &Value) -> Vec<Need> {
    let stream = match op {
        "DescribeStream" | "GetShardIterator" => text(body, "StreamArn").to_owned(),
        // moto's iterators start with the stream's ARN (`{arn}|1|{id}`); AWS's are
        // opaque, but IAM checks GetRecords on the stream all the same.
        "GetRecords" => text(body, "ShardIterator")
            .split('|')
            .next()
            .unwrap_or_default()
            .to_owned(),
        "ListStreams" => "*".to_owned(),
        other => panic!("DynamoDB Streams {other}: teach tests/e2e/iam/wire.rs"),
    };
    vec![need(&format!("dynamodb:{op}"), stream, op)]
}

fn parameter(at: &Where<'_>, name: &str) -> String {
    at.arn(
        "ssm",
        &format!("parameter/{}", name.trim_start_matches('/')),
    )
}

fn ssm(op: &str, body: &Value, at: &Where<'_>) -> Vec<Need> {
    let names: Vec<String> = match op {
        "GetParameter"
        | "PutParameter"
        | "LabelParameterVersion"
        | "GetParameterHistory"
        | "DeleteParameter" => vec![text(body, "Name").to_owned()],
        "GetParameters" => body["Names"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|n| n.as_str().map(str::to_owned))
            .collect(),
        "GetParametersByPath" => vec![text(body, "Path").to_owned()],
        other => panic!("SSM {other}: teach tests/e2e/iam/wire.rs"),
    };
    names
        .iter()
        .map(|n| need(&format!("ssm:{op}"), parameter(at, n), op))
        .collect()
}

fn ecr(op: &str, body: &Value, at: &Where<'_>) -> Vec<Need> {
    let resource = match op {
        "GetAuthorizationToken" => "*".to_owned(),
        _ => {
            let account = body["registryId"].as_str().unwrap_or(at.account);
            let at = Where { account, ..*at };
            at.arn(
                "ecr",
                &format!("repository/{}", text(body, "repositoryName")),
            )
        }
    };
    vec![need(&format!("ecr:{op}"), resource, op)]
}

fn ecs(op: &str, body: &Value, at: &Where<'_>) -> Vec<Need> {
    let cluster = body["cluster"].as_str().unwrap_or("default");
    let cluster_name = cluster.rsplit('/').next().unwrap_or(cluster);
    let service = |s: &str| {
        if s.starts_with("arn:") {
            s.to_owned()
        } else {
            at.arn("ecs", &format!("service/{cluster_name}/{s}"))
        }
    };
    match op {
        "ListServices" => {
            let mut n = need("ecs:ListServices", "*".into(), op);
            n.context.insert(
                "ecs:cluster".into(),
                vec![at.arn("ecs", &format!("cluster/{cluster_name}"))],
            );
            vec![n]
        }
        "DescribeServices" => body["services"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(|s| need("ecs:DescribeServices", service(s), op))
            .collect(),
        "UpdateService" => vec![need(
            "ecs:UpdateService",
            service(text(body, "service")),
            op,
        )],
        "DescribeTaskDefinition" => vec![need("ecs:DescribeTaskDefinition", "*".into(), op)],
        "ListTasks" => {
            let instances = at.arn("ecs", &format!("container-instance/{cluster_name}/*"));
            let mut n = need("ecs:ListTasks", instances, op);
            n.context.insert(
                "ecs:cluster".into(),
                vec![at.arn("ecs", &format!("cluster/{cluster_name}"))],
            );
            vec![n]
        }
        "DescribeTasks" => body["tasks"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(|t| {
                let arn = if t.starts_with("arn:") {
                    t.to_owned()
                } else {
                    at.arn("ecs", &format!("task/{cluster_name}/{t}"))
                };
                need("ecs:DescribeTasks", arn, op)
            })
            .collect(),
        "RegisterTaskDefinition" => {
            let family = at.arn(
                "ecs",
                &format!("task-definition/{}:*", text(body, "family")),
            );
            let mut needs = vec![need("ecs:RegisterTaskDefinition", family.clone(), op)];
            if body["tags"].as_array().is_some_and(|t| !t.is_empty()) {
                let mut n = need("ecs:TagResource", family, op);
                n.context.insert(
                    "ecs:CreateAction".into(),
                    vec!["RegisterTaskDefinition".into()],
                );
                needs.push(n);
            }
            for field in ["taskRoleArn", "executionRoleArn"] {
                if let Some(role) = body[field].as_str() {
                    let mut n = need("iam:PassRole", role.to_owned(), op);
                    n.context.insert(
                        "iam:PassedToService".into(),
                        vec!["ecs-tasks.amazonaws.com".into()],
                    );
                    needs.push(n);
                }
            }
            needs
        }
        other => panic!("ECS {other}: teach tests/e2e/iam/wire.rs"),
    }
}

/// STS speaks the query protocol: a form body with `Action=…`.
fn sts(exchange: &Exchange) -> Vec<Need> {
    let form: BTreeMap<String, String> = String::from_utf8_lossy(&exchange.body)
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_owned(), percent_decode(v)))
        .collect();
    let action = form.get("Action").map(String::as_str).unwrap_or_default();
    match action {
        "GetCallerIdentity" => vec![need("sts:GetCallerIdentity", "*".into(), action)],
        "AssumeRole" => vec![need(
            "sts:AssumeRole",
            form.get("RoleArn").cloned().unwrap_or_default(),
            action,
        )],
        other => panic!("STS {other}: teach tests/e2e/iam/wire.rs"),
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("00");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Lambda is a REST API: `/2015-03-31/functions/{name}[/code|/configuration]`.
fn lambda(exchange: &Exchange, at: &Where<'_>) -> Vec<Need> {
    let rest = exchange
        .path
        .strip_prefix("/2015-03-31/functions/")
        .unwrap_or_else(|| panic!("Lambda {}: teach tests/e2e/iam/wire.rs", exchange.path));
    let (name, tail) = rest.split_once('/').unwrap_or((rest, ""));
    let action = match (exchange.method.as_str(), tail) {
        ("GET", "") => "lambda:GetFunction",
        ("GET", "configuration") => "lambda:GetFunctionConfiguration",
        ("PUT", "code") => "lambda:UpdateFunctionCode",
        (method, tail) => panic!("Lambda {method} …/{tail}: teach tests/e2e/iam/wire.rs"),
    };
    let name = percent_decode(name);
    vec![need(
        action,
        at.arn("lambda", &format!("function:{name}")),
        &exchange.path,
    )]
}
