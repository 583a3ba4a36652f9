//! Enough of IAM's policy evaluation for relctl's policies: `Allow` statements, action
//! and resource wildcards, and the three condition operators they use. An operator it
//! does not know fails the test rather than being guessed at.

use serde_json::Value;

use super::wire::Need;

/// IAM's wildcard match: `*` any run of characters, `?` any one.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

fn condition_holds(condition: &Value, need: &Need, user_id: &str) -> bool {
    let Some(operators) = condition.as_object() else {
        return true;
    };
    operators.iter().all(|(operator, keys)| {
        keys.as_object()
            .into_iter()
            .flatten()
            .all(|(key, allowed)| {
                let allowed: Vec<String> = strings(allowed)
                    .into_iter()
                    .map(|v| v.replace("${aws:userid}", user_id))
                    .collect();
                let given = need.context.get(key);
                match operator.as_str() {
                    // Every value the request gives is allowed (vacuously true with none).
                    "ForAllValues:StringEquals" => {
                        given.into_iter().flatten().all(|v| allowed.contains(v))
                    }
                    "StringEquals" => given.is_some_and(|values| {
                        !values.is_empty() && values.iter().all(|v| allowed.contains(v))
                    }),
                    "ArnEquals" | "ArnLike" => given.is_some_and(|values| {
                        !values.is_empty()
                            && values.iter().all(|v| allowed.iter().any(|a| glob(a, v)))
                    }),
                    other => panic!("condition operator {other}: teach tests/e2e/iam/eval.rs"),
                }
            })
    })
}

/// Whether `statement` allows `need` (for a caller whose `aws:userid` is `user_id`).
pub fn statement_allows(statement: &Value, need: &Need, user_id: &str) -> bool {
    statement["Effect"] == "Allow"
        && strings(&statement["Action"])
            .iter()
            .any(|a| glob(&a.to_ascii_lowercase(), &need.action.to_ascii_lowercase()))
        && strings(&statement["Resource"])
            .iter()
            .any(|r| glob(r, &need.resource))
        && condition_holds(&statement["Condition"], need, user_id)
}

pub fn allows(policy: &Value, need: &Need, user_id: &str) -> bool {
    policy["Statement"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|s| statement_allows(s, need, user_id))
}

/// Every (statement, action, resource) of `policy` that no need used: a grant the tour
/// never needed.
pub fn unused(policy: &Value, needs: &[Need], user_id: &str) -> Vec<String> {
    let mut unused = Vec::new();
    for statement in policy["Statement"].as_array().into_iter().flatten() {
        for action in strings(&statement["Action"]) {
            for resource in strings(&statement["Resource"]) {
                let narrowed = serde_json::json!({
                    "Effect": "Allow", "Action": action, "Resource": resource,
                    "Condition": statement["Condition"],
                });
                if !needs
                    .iter()
                    .any(|n| statement_allows(&narrowed, n, user_id))
                {
                    unused.push(format!("{} {action} on {resource}", statement["Sid"]));
                }
            }
        }
    }
    unused
}

#[test]
fn globs_match_as_iam_does() {
    assert!(glob(
        "arn:aws:ssm:*:1:parameter/a/*",
        "arn:aws:ssm:eu-west-1:1:parameter/a/b/c"
    ));
    assert!(!glob(
        "arn:aws:ssm:*:1:parameter/a/*",
        "arn:aws:ssm:eu-west-1:1:parameter/a"
    ));
    assert!(glob("*", ""));
    assert!(glob("a?c", "abc"));
    assert!(!glob("a?c", "ac"));
}
