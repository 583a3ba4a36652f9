//! End to end against moto: a deployment entry written with plain DynamoDB calls becomes
//! pinned SSM parameters and a written status, through the real stream.

use crate::support::{BUGFARM, Harness, release};
use relctl::model::Status;
use serde_json::json;

const TABLE: &str = "relctl-releases";

#[tokio::test]
async fn a_deployment_record_is_pinned_verified_and_marked_succeeded() {
    let h = Harness::new(BUGFARM).await;
    let controller = h.start_controller().await;
    h.put_release(
        TABLE,
        release(
            "r1",
            "bugfarm",
            json!({
                "hatching": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/bugfarm/hatching:v1",
                "feeding": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/bugfarm/feeding:v1",
            }),
        ),
    )
    .await;
    let entry = h
        .deploy(TABLE, "r1", "stage", "2024-05-01T10:00:00.000001")
        .await;
    assert_eq!(entry.status, Some(Status::Succeeded), "{entry:?}");
    assert_eq!(
        entry.status_message.as_deref(),
        Some("pinned 2 of 2 images (feeding, hatching); verified")
    );
    assert!(entry.status_updated_at.is_some());

    let pinned = h.parameters("/bugfarm/images/stage").await;
    assert_eq!(pinned.len(), 2);
    assert_eq!(
        pinned["/bugfarm/images/stage/hatching"].0,
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/bugfarm/hatching:v1"
    );

    // The state item follows the entry by one write.
    let state = h
        .until_state("bugfarm", "stage", |s| s.observed.is_some())
        .await;
    let observed = state.observed.expect("observed release recorded");
    assert_eq!(observed.release_id, "r1");
    assert_eq!(state.desired.expect("desired pointer").release_id, "r1");
    assert_eq!(state.activity.status(), Some(Status::Succeeded));
    assert_eq!(state.activity.phase(), Some("converged"));
    assert_eq!(state.history.len(), 1);

    let release = h.release(TABLE, "r1").await;
    assert!(
        release.last_date_deployed.expect("last_date_deployed set") >= entry.date_created.at,
        "last_date_deployed must cover the deployment"
    );
    controller.stop().await;
}

fn image(service: &str, tag: &str) -> String {
    format!("123456789012.dkr.ecr.eu-west-1.amazonaws.com/bugfarm/{service}:{tag}")
}

async fn two_releases(h: &Harness) {
    for (id, tag) in [("r1", "v1"), ("r2", "v2")] {
        h.put_release(
            TABLE,
            release(id, "bugfarm", json!({ "hatching": image("hatching", tag) })),
        )
        .await;
    }
}

#[tokio::test]
async fn of_two_intents_in_a_burst_the_newer_is_pinned_and_the_older_superseded() {
    let h = Harness::new(BUGFARM).await;
    two_releases(&h).await;
    let controller = h.start_controller().await;
    h.request_together(
        TABLE,
        &[
            ("r1", "stage", "2024-05-01T10:00:00.000000"),
            ("r2", "stage", "2024-05-01T10:00:01.000000"),
        ],
    )
    .await;

    let newer = h.finished(TABLE, "r2", 0).await;
    let older = h.finished(TABLE, "r1", 0).await;
    assert_eq!(newer.status, Some(Status::Succeeded), "{newer:?}");
    assert_eq!(older.status, Some(Status::Superseded), "{older:?}");
    assert!(
        older
            .status_message
            .as_deref()
            .is_some_and(|m| m.contains("superseded by release r2")),
        "{older:?}"
    );
    let pinned = h.parameters("/bugfarm/images/stage").await;
    assert_eq!(
        pinned["/bugfarm/images/stage/hatching"].0,
        image("hatching", "v2")
    );
    assert_eq!(
        pinned["/bugfarm/images/stage/hatching"].1, 1,
        "r1 was never pinned"
    );
    controller.stop().await;
}

#[tokio::test]
async fn an_older_intent_arriving_after_a_newer_one_is_superseded_not_applied() {
    let h = Harness::new(BUGFARM).await;
    two_releases(&h).await;
    let controller = h.start_controller().await;
    h.request(TABLE, "r2", "stage", "2024-05-01T10:00:01.000000")
        .await;
    assert_eq!(
        h.finished(TABLE, "r2", 0).await.status,
        Some(Status::Succeeded)
    );

    let late = h
        .deploy(TABLE, "r1", "stage", "2024-05-01T10:00:00.000000")
        .await;
    assert_eq!(late.status, Some(Status::Superseded), "{late:?}");
    let pinned = h.parameters("/bugfarm/images/stage").await;
    assert_eq!(
        pinned["/bugfarm/images/stage/hatching"],
        (image("hatching", "v2"), 1)
    );
    controller.stop().await;
}

#[tokio::test]
async fn environments_converge_independently() {
    let h = Harness::new(BUGFARM).await;
    two_releases(&h).await;
    let controller = h.start_controller().await;
    h.request(TABLE, "r1", "prod", "2024-05-01T10:00:00.000000")
        .await;
    h.request(TABLE, "r2", "stage", "2024-05-01T10:00:01.000000")
        .await;

    assert_eq!(
        h.finished(TABLE, "r1", 0).await.status,
        Some(Status::Succeeded)
    );
    assert_eq!(
        h.finished(TABLE, "r2", 0).await.status,
        Some(Status::Succeeded)
    );
    let pinned = h.parameters("/bugfarm/images").await;
    assert_eq!(
        pinned["/bugfarm/images/prod/hatching"].0,
        image("hatching", "v1")
    );
    assert_eq!(
        pinned["/bugfarm/images/stage/hatching"].0,
        image("hatching", "v2")
    );
    // Each state item follows its entry by one write.
    for (env, release) in [("prod", "r1"), ("stage", "r2")] {
        h.until_state("bugfarm", env, |s| {
            s.observed.as_ref().is_some_and(|o| o.release_id == release)
        })
        .await;
    }
    controller.stop().await;
}

#[tokio::test]
async fn refused_intents_fail_with_their_reason_pin_nothing_and_others_keep_flowing() {
    let h = Harness::new(BUGFARM).await;
    let hatching = image("hatching", "v1");
    let releases = [
        ("unknown-env", json!({ "hatching": hatching }), "qa"),
        ("hostile-env", json!({ "hatching": hatching }), "a/b"),
        (
            "null-image",
            json!({ "hatching": hatching, "feeding": null }),
            "stage",
        ),
        ("hostile-service", json!({ "../x": hatching }), "prod"),
        ("bad-uri", json!({ "hatching": "not an image" }), "stage"),
        (
            "unresolvable-ref",
            json!({ "hatching": "ref.0a1b2c3" }),
            "prod",
        ),
    ];
    for (id, images, _) in &releases {
        h.put_release(TABLE, release(id, "bugfarm", images.clone()))
            .await;
    }
    let controller = h.start_controller().await;
    let expect = [
        (
            "unknown-env",
            "environment \"qa\" is not configured for project \"bugfarm\"; configured environments: stage, prod",
        ),
        (
            "hostile-env",
            "environment \"a/b\" is not configured for project \"bugfarm\"",
        ),
        ("null-image", "has no image for service \"feeding\" (NULL)"),
        ("hostile-service", "service id \"../x\" contains '/'"),
        ("bad-uri", "image URI \"not an image\" contains ' '"),
        ("unresolvable-ref", "has no image_uri_template"),
    ];
    // One at a time: each is the newest intent of its environment when it is judged
    // (a newer one in the same environment would supersede it instead).
    for (i, ((id, _, env), (_, message))) in releases.iter().zip(expect).enumerate() {
        h.request(TABLE, id, env, &format!("2024-05-01T10:00:0{i}.000000"))
            .await;
        let entry = h.finished(TABLE, id, 0).await;
        assert_eq!(entry.status, Some(Status::Failed), "{id}: {entry:?}");
        let got = entry.status_message.unwrap_or_default();
        assert!(
            got.contains(message),
            "{id}: {got:?} should contain {message:?}"
        );
    }
    assert!(h.parameters("/").await.is_empty(), "nothing may be pinned");
    let state = h
        .until_state("bugfarm", "stage", |s| {
            s.activity.status() == Some(Status::Failed)
        })
        .await;
    assert!(
        state
            .activity
            .last_error()
            .is_some_and(|e| e.contains("not an image"))
    );

    // A good intent after all of that still goes through.
    h.put_release(
        TABLE,
        release("good", "bugfarm", json!({ "hatching": hatching })),
    )
    .await;
    h.request(TABLE, "good", "stage", "2024-05-01T11:00:00.000000")
        .await;
    assert_eq!(
        h.finished(TABLE, "good", 0).await.status,
        Some(Status::Succeeded)
    );
    controller.stop().await;
}

#[tokio::test]
async fn a_malformed_release_item_fails_its_intent_without_stopping_the_stream() {
    let h = Harness::new(BUGFARM).await;
    let controller = h.start_controller().await;
    let mut broken = release("broken", "bugfarm", json!("not a map of images"));
    broken["deployments"] = json!([{
        "date_created": "2024-05-01T10:00:00.000000",
        "environment": { "id": "stage", "name": "Staging" },
    }]);
    h.put_release(TABLE, broken).await;
    // Not even a release: no project_id. Skipped, reported in the log.
    h.put_release(TABLE, json!({ "release_id": "junk", "deployments": "??" }))
        .await;
    h.put_release(
        TABLE,
        release(
            "fine",
            "bugfarm",
            json!({ "hatching": image("hatching", "v3") }),
        ),
    )
    .await;
    h.request(TABLE, "fine", "prod", "2024-05-01T10:00:01.000000")
        .await;

    let entry = h.finished(TABLE, "broken", 0).await;
    assert_eq!(entry.status, Some(Status::Failed));
    assert!(
        entry
            .status_message
            .as_deref()
            .is_some_and(|m| m.contains("release broken is malformed")),
        "{entry:?}"
    );
    assert_eq!(
        h.finished(TABLE, "fine", 0).await.status,
        Some(Status::Succeeded)
    );
    assert!(h.parameters("/bugfarm/images/stage").await.is_empty());
    controller.stop().await;
}
