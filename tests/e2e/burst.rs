//! A burst: 1,000 intents over 100 environments, written in random order with
//! BatchWriteItem while the controller runs. Every environment ends at its newest
//! intent, every intent ends finished (none lost), and none is applied after a newer one.
//!
//! The test waits on progress, not on the clock, and lightly: it watches the 100
//! environments' state items (one BatchGetItem a second) until each runs its newest
//! intent, then reads the releases not yet finished (just their deployments); it
//! shrugs off a read that a loaded machine times out, and fails only when nothing has
//! moved for [`STALL`].

use std::{collections::HashMap, time::Duration};

use crate::support::Harness;
use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
use relctl::model::Status;
use serde_json::json;

const TABLE: &str = "relctl-releases";
const ENVIRONMENTS: usize = 100;
const PER_ENVIRONMENT: usize = 10;
/// How long the burst may go without a single intent finishing before the test fails.
const STALL: Duration = Duration::from_secs(240);

fn config() -> String {
    let environments: Vec<String> = (0..ENVIRONMENTS)
        .map(|e| format!("{{ id = \"e{e:03}\", name = \"E{e}\" }}"))
        .collect();
    format!(
        "[[projects]]\nid = \"bugfarm\"\nname = \"Bug farm\"\nenvironments = [ {} ]\n",
        environments.join(", ")
    )
}

/// A pseudo-random permutation (an LCG; the test needs disorder, not secrecy).
fn shuffled(n: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    for i in (1..n).rev() {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        order.swap(i, (seed >> 33) as usize % (i + 1));
    }
    order
}

#[tokio::test]
async fn a_thousand_intents_over_a_hundred_environments_all_land_on_the_newest() {
    let mut h = Harness::new(&config()).await;
    // moto runs each TransactWriteItems against a copy of the whole table and, when
    // one fails (relctl's conditional writes fail by design in a burst), puts that copy
    // back, undoing writes other threads made to other items meanwhile (moto
    // dynamodb/models transact_write_items). Real DynamoDB does not; the resync is what
    // repairs any write lost in the world, so it runs here often enough to.
    std::sync::Arc::make_mut(&mut h.config)
        .controller
        .resync_interval = Duration::from_secs(20);
    let controller = h.start_controller().await;
    let mut writes = Vec::new();
    for n in shuffled(ENVIRONMENTS * PER_ENVIRONMENT) {
        let (env, version) = (n % ENVIRONMENTS, n / ENVIRONMENTS);
        let date = format!("2024-05-01T10:{:02}:{:02}.000000", version, env % 60);
        let item = json!({
            "release_id": format!("e{env:03}-v{version}"),
            "project_id": "bugfarm",
            "date_created": date,
            "last_date_deployed": date,
            "images": { "app": format!("r.example/app:{version}") },
            "deployments": [ { "date_created": date, "environment": { "id": format!("e{env:03}"), "name": "E" },
                               "requested_by": { "id": "burst", "name": "burst" } } ],
        });
        writes.push(
            WriteRequest::builder()
                .put_request(
                    PutRequest::builder()
                        .set_item(Some(serde_dynamo::to_item(item).unwrap()))
                        .build()
                        .unwrap(),
                )
                .build(),
        );
    }
    for chunk in writes.chunks(25) {
        let mut pending = chunk.to_vec();
        while !pending.is_empty() {
            match h
                .dynamodb
                .batch_write_item()
                .request_items(TABLE, pending.clone())
                .send()
                .await
            {
                // What was not processed is sent again, as a careful writer does.
                Ok(output) => {
                    pending = output
                        .unprocessed_items
                        .and_then(|mut u| u.remove(TABLE))
                        .unwrap_or_default();
                }
                Err(error) => eprintln!("burst: a batch write failed ({error}); sending it again"),
            }
        }
    }

    until_all_converged(&h).await;
    let statuses = until_all_finished(&h).await;
    let pinned = h.parameters("/bugfarm/images").await;
    let mut superseded = 0;
    for env in 0..ENVIRONMENTS {
        let newest = format!("e{env:03}-v{}", PER_ENVIRONMENT - 1);
        assert_eq!(statuses[&newest], Some(Status::Succeeded), "{newest}");
        assert_eq!(
            pinned[&format!("/bugfarm/images/e{env:03}/app")].0,
            format!("r.example/app:{}", PER_ENVIRONMENT - 1),
            "e{env:03} ends at its newest intent"
        );
        h.until_state("bugfarm", &format!("e{env:03}"), |s| {
            s.observed.as_ref().is_some_and(|o| o.release_id == newest)
        })
        .await;
        for version in 0..PER_ENVIRONMENT - 1 {
            let status = statuses[&format!("e{env:03}-v{version}")];
            // An older intent either lost to a newer one, or was applied before any
            // newer one existed; failing or hanging would be a bug.
            assert!(
                matches!(status, Some(Status::Superseded | Status::Succeeded)),
                "{status:?}"
            );
            superseded += usize::from(status == Some(Status::Superseded));
        }
    }
    assert!(superseded > 0, "a burst supersedes");
    eprintln!("burst: {superseded} of 900 older intents superseded");
    controller.stop().await;
}

/// Polls the environments' state items until each runs its newest intent. Panics only
/// when none converged for [`STALL`].
async fn until_all_converged(h: &Harness) {
    let store = relctl::store::state::StateStore::new(h.dynamodb.clone(), &h.config.tables.state);
    let keys: Vec<relctl::model::EnvKey> = (0..ENVIRONMENTS)
        .map(|e| relctl::model::EnvKey::new("bugfarm", format!("e{e:03}")))
        .collect();
    let newest = format!("-v{}", PER_ENVIRONMENT - 1);
    let mut progressed = tokio::time::Instant::now();
    let mut converged = 0;
    // What the environments still behind look like, for the failure message.
    let mut behind = String::new();
    loop {
        match store.get_many(&keys).await {
            Ok(states) => {
                behind = keys
                    .iter()
                    .zip(&states)
                    .filter(|(_, s)| {
                        !s.observed
                            .as_ref()
                            .is_some_and(|o| o.release_id.ends_with(&newest))
                    })
                    .take(3)
                    .map(|(k, s)| {
                        format!(
                            "{}: desired {:?}, phase {:?}, message {:?}",
                            k.environment,
                            s.desired.as_ref().map(|d| d.release_id.clone()),
                            s.activity.phase(),
                            s.activity.message()
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; ");
                let now = states
                    .iter()
                    .filter(|s| {
                        s.observed
                            .as_ref()
                            .is_some_and(|o| o.release_id.ends_with(&newest))
                    })
                    .count();
                if now > converged {
                    converged = now;
                    progressed = tokio::time::Instant::now();
                }
                if converged == ENVIRONMENTS {
                    return;
                }
            }
            Err(error) => eprintln!("burst: a state read failed ({error}); retrying"),
        }
        assert!(
            progressed.elapsed() < STALL,
            "no environment converged for {STALL:?}; {converged} of {ENVIRONMENTS} run their newest intent; behind: {behind}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Polls the unfinished releases until every intent has a final status; returns each
/// release's status. Panics only when nothing finished for [`STALL`].
async fn until_all_finished(h: &Harness) -> HashMap<String, Option<Status>> {
    let mut statuses: HashMap<String, Option<Status>> = HashMap::new();
    let mut unfinished: Vec<String> = (0..ENVIRONMENTS * PER_ENVIRONMENT)
        .map(|n| format!("e{:03}-v{}", n % ENVIRONMENTS, n / ENVIRONMENTS))
        .collect();
    let mut progressed = tokio::time::Instant::now();
    while !unfinished.is_empty() {
        let before = unfinished.len();
        for chunk in unfinished.clone().chunks(100) {
            match read_statuses(h, chunk).await {
                Ok(read) => {
                    for (id, status) in read {
                        if status.is_some_and(|s| s.is_terminal()) {
                            unfinished.retain(|u| *u != id);
                        }
                        statuses.insert(id, status);
                    }
                }
                // Under load a read can time out; the next round asks again.
                Err(error) => eprintln!("burst: a status read failed ({error}); retrying"),
            }
        }
        if unfinished.len() < before {
            progressed = tokio::time::Instant::now();
        }
        assert!(
            progressed.elapsed() < STALL,
            "no intent finished for {STALL:?}; {} of 1000 still unfinished, e.g. {:?}",
            unfinished.len(),
            unfinished.first()
        );
        if !unfinished.is_empty() {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
    statuses
}

/// The first deployment's status of each of `ids` (at most 100), read together.
async fn read_statuses(
    h: &Harness,
    ids: &[String],
) -> Result<Vec<(String, Option<Status>)>, String> {
    use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
    let keys = ids
        .iter()
        .map(|id| HashMap::from([("release_id".to_owned(), AttributeValue::S(id.clone()))]))
        .collect();
    let request = KeysAndAttributes::builder()
        .set_keys(Some(keys))
        .projection_expression("release_id, deployments")
        .build()
        .map_err(|e| e.to_string())?;
    let output = h
        .dynamodb
        .batch_get_item()
        .request_items(TABLE, request)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let mut found = Vec::new();
    for item in output
        .responses
        .and_then(|mut r| r.remove(TABLE))
        .unwrap_or_default()
    {
        let id = match item.get("release_id") {
            Some(AttributeValue::S(id)) => id.clone(),
            _ => continue,
        };
        let status = item
            .get("deployments")
            .and_then(|d| d.as_l().ok())
            .and_then(|d| d.first())
            .and_then(|e| e.as_m().ok())
            .and_then(|e| e.get("status"))
            .and_then(|s| s.as_s().ok())
            .and_then(|s| serde_json::from_value(serde_json::Value::String(s.clone())).ok());
        found.push((id, status));
    }
    Ok(found)
}
