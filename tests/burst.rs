//! A burst: 1,000 intents over 100 environments, written in random order with
//! BatchWriteItem while the controller runs. Every environment ends at its newest
//! intent, every intent ends finished (none lost), and none is applied after a newer one.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod support;

use std::{collections::HashMap, time::Duration};

use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
use relctl::model::Status;
use serde_json::json;
use support::Harness;

const TABLE: &str = "relctl-releases";
const ENVIRONMENTS: usize = 100;
const PER_ENVIRONMENT: usize = 10;

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
    let h = Harness::new(&config()).await;
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
        let output = h
            .dynamodb
            .batch_write_item()
            .request_items(TABLE, chunk.to_vec())
            .send()
            .await
            .unwrap();
        assert!(output.unprocessed_items.unwrap_or_default().is_empty());
    }

    let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
    let mut statuses: HashMap<String, Option<Status>>;
    loop {
        statuses = HashMap::new();
        let mut pages = h.dynamodb.scan().table_name(TABLE).into_paginator().send();
        while let Some(page) = pages.next().await {
            for item in page.unwrap().items.unwrap_or_default() {
                let release = relctl::store::releases::decode(item).unwrap();
                statuses.insert(release.release_id.clone(), release.deployments[0].status);
            }
        }
        let finished = statuses
            .values()
            .filter(|s| s.is_some_and(|s| s.is_terminal()))
            .count();
        if finished == ENVIRONMENTS * PER_ENVIRONMENT {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {finished} of 1000 intents finished"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
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
        let state = h.env_state("bugfarm", &format!("e{env:03}")).await;
        assert_eq!(state.observed.unwrap().release_id, newest);
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
