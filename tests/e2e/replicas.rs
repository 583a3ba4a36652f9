//! Two replicas against one table: only the lease holder acts, a standby takes over
//! when the leader dies, and a paused former leader's late writes are refused.

use std::time::Duration;

use crate::support::{Harness, process::Controller, release};
use relctl::{
    model::{EnvKey, Status},
    store::{StateStore, StoreError, lease::Leases, state::EnvState},
};
use serde_json::json;

const TABLE: &str = "relctl-releases";
const WAIT: Duration = Duration::from_secs(30);

const FAST_LEASE: &str = r#"
[lease]
duration = "3s"
renew_every = "1s"
[[projects]]
id = "bugfarm"
name = "Bug farm"
environments = [ { id = "stage", name = "Staging" } ]
"#;

/// Two controller processes: `a` leads, `b` waits.
fn leader_and_standby(h: &Harness) -> (Controller, Controller) {
    let mut a = Controller::start(h);
    a.wait_for("leading: watching streams", WAIT);
    let mut b = Controller::start(h);
    b.wait_for("standby: another replica holds the lease", WAIT);
    (a, b)
}

/// Whoever leads now applies a new deployment.
async fn a_deployment_succeeds(h: &Harness) {
    h.put_release(
        TABLE,
        release("r1", "bugfarm", json!({ "a": "r.example/a:1" })),
    )
    .await;
    h.request(TABLE, "r1", "stage", "2024-05-01T10:00:00.000000")
        .await;
    assert_eq!(
        h.finished(TABLE, "r1", 0).await.status,
        Some(Status::Succeeded)
    );
}

#[tokio::test]
async fn a_standby_takes_over_when_the_leader_is_killed() {
    let h = Harness::new(FAST_LEASE).await;
    let (a, mut b) = leader_and_standby(&h);

    a.signal("KILL");
    b.wait_for("leading: watching streams", WAIT);
    a_deployment_succeeds(&h).await;
}

#[tokio::test]
async fn a_paused_leader_loses_the_lease_and_stops_acting_when_it_wakes() {
    let h = Harness::new(FAST_LEASE).await;
    let (mut a, mut b) = leader_and_standby(&h);

    a.signal("STOP");
    b.wait_for("leading: watching streams", WAIT);
    a.signal("CONT");
    a.wait_for("lost the lease: stopped acting", WAIT);

    // The new leader carries on.
    a_deployment_succeeds(&h).await;
}

#[tokio::test]
async fn writes_fenced_by_a_superseded_lease_are_refused() {
    let h = Harness::new(FAST_LEASE).await;
    let leases = Leases::new(h.dynamodb.clone(), "relctl-state");
    let old = leases
        .acquire("old", Duration::from_millis(1))
        .await
        .unwrap()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let new = leases
        .acquire("new", Duration::from_secs(30))
        .await
        .unwrap()
        .unwrap();
    assert!(new.counter > old.counter);
    assert_eq!(
        leases
            .acquire("third", Duration::from_secs(30))
            .await
            .unwrap(),
        None,
        "held"
    );
    assert!(
        !leases.renew(&old, Duration::from_secs(30)).await.unwrap(),
        "the old holder cannot renew"
    );

    let key = EnvKey::new("bugfarm", "stage");
    let zombie = StateStore::new(h.dynamodb.clone(), "relctl-state").fenced(old.clone());
    let refused = zombie
        .save_progress(&key, &EnvState::default())
        .await
        .unwrap_err();
    assert!(
        matches!(refused, StoreError::Fenced { counter, .. } if counter == old.counter),
        "{refused}"
    );
    let leader = StateStore::new(h.dynamodb.clone(), "relctl-state").fenced(new);
    leader
        .save_progress(
            &key,
            &EnvState {
                drift: vec!["app".into()],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(leader.get(&key).await.unwrap().drift, ["app"]);
}
