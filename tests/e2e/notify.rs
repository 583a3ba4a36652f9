//! Notifications: one deployment's outcome told to a webhook (signed, retried when it
//! answers 500, counted), an SNS topic (moto delivers it to an HTTP subscription on the
//! same loopback receiver) and EventBridge (a rule on the default bus sends relctl's
//! events to a log group in moto), with the documented body.

use serde_json::{Value, json};

use crate::support::{Harness, metric, release, until, webhook::Receiver};
use relctl::model::Status;

const TABLE: &str = "relctl-releases";
const TOPIC: &str = "arn:aws:sns:eu-west-1:123456789012:deploys";
const LOG_GROUP: &str = "/relctl/events";

#[tokio::test]
async fn a_deployment_s_outcome_reaches_a_webhook_sns_and_eventbridge_with_the_documented_body() {
    // The first two POSTs fail: the webhook's delivery is retried.
    let receiver = Receiver::start(2).await;
    // The signing secret is read from an environment variable; PATH is one every test
    // process has (a test cannot set one: `set_var` is unsafe, and unsafe is forbidden).
    let h = Harness::new(&format!(
        r#"
[notify]
webhooks = [{{ url = "{url}/hook", secret_env = "PATH" }}]
page_url = "https://relctl.example/"

[[projects]]
id = "shop"
name = "Shop"

[[projects.environments]]
id = "prod"
name = "Production"
notify = {{ sns = "{TOPIC}", eventbridge = "default" }}
"#,
        url = receiver.url
    ))
    .await;
    let sns = aws_sdk_sns::Client::new(&h.sdk);
    sns.create_topic().name("deploys").send().await.unwrap();
    sns.subscribe()
        .topic_arn(TOPIC)
        .protocol("http")
        .endpoint(format!("{}/sns", receiver.url))
        .send()
        .await
        .unwrap();
    aws_sdk_cloudwatchlogs::Client::new(&h.sdk)
        .create_log_group()
        .log_group_name(LOG_GROUP)
        .send()
        .await
        .unwrap();
    let events = aws_sdk_eventbridge::Client::new(&h.sdk);
    events
        .put_rule()
        .name("relctl")
        .event_pattern(json!({ "source": ["relctl"] }).to_string())
        .send()
        .await
        .unwrap();
    events
        .put_targets()
        .rule("relctl")
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("logs")
                .arn(format!(
                    "arn:aws:logs:eu-west-1:123456789012:log-group:{LOG_GROUP}"
                ))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    h.put_release(
        TABLE,
        release("r1", "shop", json!({ "web": "registry.example/web:1" })),
    )
    .await;
    let controller = h.start_controller().await;
    let entry = h
        .deploy(TABLE, "r1", "prod", "2026-12-01T10:00:00.000000")
        .await;
    assert_eq!(entry.status, Some(Status::Succeeded));

    let expected = |body: &Value| {
        assert_eq!(body["project"], "shop", "{body}");
        assert_eq!(body["environment"], "prod");
        assert_eq!(body["release_id"], "r1");
        assert_eq!(body["status"], "succeeded");
        assert_eq!(body["who"], "Tester");
        assert_eq!(body["links"]["page"], "https://relctl.example/");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("pinned 1 of 1 images"),
            "{body}"
        );
        assert!(
            body["when"].as_str().is_some_and(|w| w.len() == 26),
            "{body}"
        );
    };
    // The webhook: delivered on its third attempt, signed.
    let hooks = until(
        "the webhook",
        async || receiver.at("/hook"),
        |r| !r.is_empty(),
    )
    .await;
    let hook = &hooks[0];
    let body: Value = serde_json::from_str(&hook.body).unwrap();
    expected(&body);
    let secret = std::env::var("PATH").unwrap();
    assert_eq!(
        hook.headers["x-relctl-signature"].to_str().unwrap(),
        relctl::notify::sinks::signature(secret.as_bytes(), hook.body.as_bytes())
    );
    until(
        "the webhook's delivery counted",
        async || {
            metric(
                &controller,
                "relctl_notifications_total{sink=\"webhook\",outcome=\"delivered\"}",
            )
            .await
        },
        |n| *n == 1,
    )
    .await;
    assert_eq!(
        metric(
            &controller,
            "relctl_notifications_total{sink=\"webhook\",outcome=\"retried\"}"
        )
        .await,
        2
    );

    // SNS, as moto delivers it to an HTTP subscriber: the body is the Message.
    let published = until(
        "the SNS delivery",
        async || receiver.at("/sns"),
        |r| r.iter().any(|n| n.body.contains("Notification")),
    )
    .await;
    let notification: Value = published
        .iter()
        .filter_map(|n| serde_json::from_str::<Value>(&n.body).ok())
        .find(|n| n["Type"] == "Notification")
        .unwrap();
    assert_eq!(notification["Subject"], "relctl: r1 succeeded in shop/prod");
    expected(&serde_json::from_str(notification["Message"].as_str().unwrap()).unwrap());

    // EventBridge: the rule's log group holds the event. Read with a plain JSON POST:
    // moto stores the events' timestamps as floats, which the SDK's Long refuses.
    let http = reqwest::Client::new();
    let logged = until(
        "the EventBridge event",
        async || {
            let Ok(response) = http
                .post(&h.moto.endpoint)
                .header("X-Amz-Target", "Logs_20140328.FilterLogEvents")
                .header("Content-Type", "application/x-amz-json-1.1")
                .header(
                    "Authorization",
                    "AWS4-HMAC-SHA256 Credential=testing/20261202/eu-west-1/logs/aws4_request, SignedHeaders=host, Signature=0",
                )
                .body(json!({ "logGroupName": LOG_GROUP }).to_string())
                .send()
                .await
            else {
                return Vec::new();
            };
            let page: Value = response.json().await.unwrap_or_default();
            page["events"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|e| e["message"].as_str().map(str::to_owned))
                .collect::<Vec<_>>()
        },
        |events| !events.is_empty(),
    )
    .await;
    let event: Value = serde_json::from_str(&logged[0]).unwrap();
    assert_eq!(event["source"], "relctl");
    assert_eq!(event["detail-type"], "relctl Deployment State Change");
    expected(&event["detail"]);
    controller.stop().await;
}

#[tokio::test]
async fn a_webhook_that_is_not_https_is_refused_at_load_unless_it_is_loopback() {
    let h = Harness::new("").await;
    let bad = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        bad.path(),
        std::fs::read_to_string(h.config_file.path()).unwrap()
            + "\n[notify]\nwebhooks = [{ url = \"http://hooks.example.com/relctl\" }]\n",
    )
    .unwrap();
    let (code, out, err) = h
        .run(&["--config", bad.path().to_str().unwrap(), "validate"])
        .await;
    assert_ne!(code, 0);
    let said = format!("{out}{err}");
    assert!(
        said.contains("notify.webhooks[0].url") && said.contains("must be https://"),
        "{said}"
    );
}
