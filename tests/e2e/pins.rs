//! Pins other than plain parameters, and the Lambda actuator, against moto: an SSM JSON
//! document (tfvars in SSM), an ECR floating tag, SSM parameter labels.

use crate::support::{
    Harness,
    ecr::{push, tagged},
    release,
};
use relctl::model::Status;
use serde_json::{Value, json};

const TABLE: &str = "relctl-releases";
const REGISTRY: &str = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";

fn project(environment: &str) -> String {
    format!("[[projects]]\nid = \"tre\"\nname = \"TRE\"\nenvironments = [ {environment} ]\n")
}

#[tokio::test]
async fn a_json_document_is_patched_at_its_key_path_keeping_every_other_key() {
    let h = Harness::new(&project(
        r#"{ id = "prod", name = "Production", pin = { kind = "ssm_json_document", parameter = "{environment}-tfvars", key_path = "image_versions.{service}", value = "tag", version_key = "tre_version", refuse_downgrade = true } }"#,
    ))
    .await;
    let original = "{\n  \"tre_version\": 41,\n  \"region\": \"eu-west-2\",\n  \"image_versions\": {\n    \"parser\": \"1.0.0\",\n    \"other\": \"x\"\n  },\n  \"nested\": {\n    \"list\": [\n      1,\n      2\n    ]\n  }\n}";
    h.put_parameter("prod-tfvars", original).await;
    let images =
        json!({ "parser": "registry.example/parser:1.2.0", "api": "registry.example/api:3.0.0" });
    h.put_release(TABLE, release("r1", "tre", images)).await;
    h.put_release(
        TABLE,
        release(
            "r0",
            "tre",
            json!({ "parser": "registry.example/parser:1.1.9" }),
        ),
    )
    .await;
    let controller = h.start_controller().await;

    let entry = h
        .deploy(TABLE, "r1", "prod", "2024-05-01T10:00:00.000000")
        .await;
    assert_eq!(entry.status, Some(Status::Succeeded), "{entry:?}");
    let per_service = h.parameters("/tre").await;
    assert!(
        per_service.is_empty(),
        "no per-service parameters: {per_service:?}"
    );
    let doc_text = h
        .ssm
        .get_parameter()
        .name("prod-tfvars")
        .send()
        .await
        .unwrap()
        .parameter
        .unwrap()
        .value
        .unwrap();
    let doc: Value = serde_json::from_str(&doc_text).unwrap();
    assert_eq!(
        doc,
        json!({ "tre_version": 42, "region": "eu-west-2",
                "image_versions": { "parser": "1.2.0", "other": "x", "api": "3.0.0" },
                "nested": { "list": [1, 2] } })
    );
    let keys: Vec<&str> = doc
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        ["tre_version", "region", "image_versions", "nested"],
        "order kept"
    );
    assert!(
        doc_text.contains("\n  \"region\""),
        "pretty stays pretty: {doc_text}"
    );

    let refused = h
        .deploy(TABLE, "r0", "prod", "2024-05-01T11:00:00.000000")
        .await;
    assert_eq!(refused.status, Some(Status::Failed));
    assert_eq!(
        refused.status_message.as_deref(),
        Some(
            "refusing to downgrade service \"parser\" from 1.2.0 to 1.1.9 (refuse_downgrade is on)"
        )
    );
    let after = h
        .ssm
        .get_parameter()
        .name("prod-tfvars")
        .send()
        .await
        .unwrap()
        .parameter
        .unwrap()
        .value
        .unwrap();
    assert_eq!(after, doc_text, "a refused release changes nothing");
    controller.stop().await;
}

#[tokio::test]
async fn an_ecr_tag_moves_to_the_release_manifest_and_a_tag_already_there_is_a_no_op() {
    let h = Harness::new(&project(
        r#"{ id = "stage", name = "Staging", pin = { kind = "ecr_tag" } }"#,
    ))
    .await;
    let ecr = aws_sdk_ecr::Client::new(&h.sdk);
    ecr.create_repository()
        .repository_name("tre/parser")
        .send()
        .await
        .unwrap();
    let first = push(&ecr, "tre/parser", "ref.aaa", "a").await;
    let second = push(&ecr, "tre/parser", "ref.bbb", "b").await;
    for (id, tag) in [
        ("r1", "ref.aaa"),
        ("r2", "ref.bbb"),
        ("r2-again", "ref.bbb"),
        ("ghost", "ref.zzz"),
    ] {
        let images = json!({ "parser": format!("{REGISTRY}/tre/parser:{tag}") });
        h.put_release(TABLE, release(id, "tre", images)).await;
    }
    let controller = h.start_controller().await;

    h.request(TABLE, "r1", "stage", "2024-05-01T10:00:00.000000")
        .await;
    assert_eq!(
        h.finished(TABLE, "r1", 0).await.status,
        Some(Status::Succeeded)
    );
    assert_eq!(tagged(&ecr, "tre/parser", "env.stage").await, Some(first));

    h.request(TABLE, "r2", "stage", "2024-05-01T11:00:00.000000")
        .await;
    assert_eq!(
        h.finished(TABLE, "r2", 0).await.status,
        Some(Status::Succeeded)
    );
    assert_eq!(
        tagged(&ecr, "tre/parser", "env.stage").await,
        Some(second.clone())
    );

    let again = h
        .deploy(TABLE, "r2-again", "stage", "2024-05-01T12:00:00.000000")
        .await;
    assert_eq!(
        again.status_message.as_deref(),
        Some("all 1 images were already pinned; verified")
    );

    let ghost = h
        .deploy(TABLE, "ghost", "stage", "2024-05-01T13:00:00.000000")
        .await;
    assert_eq!(ghost.status, Some(Status::Failed));
    assert!(
        ghost
            .status_message
            .unwrap()
            .contains("does not exist in ECR repository tre/parser")
    );
    assert_eq!(
        tagged(&ecr, "tre/parser", "env.stage").await,
        Some(second),
        "unchanged"
    );
    controller.stop().await;
}

#[tokio::test]
async fn labelled_parameters_carry_the_release_in_their_history() {
    let h = Harness::new(&project(
        r#"{ id = "stage", name = "Staging", pin = { kind = "ssm_parameters", label = true } }"#,
    ))
    .await;
    h.put_release(
        TABLE,
        release(
            "r1",
            "tre",
            json!({ "parser": "registry.example/parser:1" }),
        ),
    )
    .await;
    let controller = h.start_controller().await;
    h.request(TABLE, "r1", "stage", "2024-05-01T10:00:00.000000")
        .await;
    assert_eq!(
        h.finished(TABLE, "r1", 0).await.status,
        Some(Status::Succeeded)
    );
    let history = h
        .ssm
        .get_parameter_history()
        .name("/tre/images/stage/parser")
        .send()
        .await
        .unwrap();
    let labels = history.parameters.unwrap()[0]
        .labels
        .clone()
        .unwrap_or_default();
    assert_eq!(labels, vec!["release-r1".to_owned()]);
    controller.stop().await;
}

#[tokio::test]
async fn lambda_functions_are_updated_to_the_image_and_the_pin_is_kept_too() {
    let h = Harness::new(&project(
        r#"{ id = "stage", name = "Staging", actuator = { kind = "lambda", functions = { parser = "stage-tre-run-judgment-parser" }, poll_interval = "100ms" } }"#,
    ))
    .await;
    let iam = aws_sdk_iam::Client::new(&h.sdk);
    let role = iam
        .create_role()
        .role_name("lambda")
        .assume_role_policy_document("{}")
        .send()
        .await
        .unwrap()
        .role
        .unwrap()
        .arn;
    let lambda = aws_sdk_lambda::Client::new(&h.sdk);
    lambda
        .create_function()
        .function_name("stage-tre-run-judgment-parser")
        .role(role)
        .package_type(aws_sdk_lambda::types::PackageType::Image)
        .code(
            aws_sdk_lambda::types::FunctionCode::builder()
                .image_uri(format!("{REGISTRY}/tre/parser:v1"))
                .build(),
        )
        .send()
        .await
        .unwrap();
    h.put_release(
        TABLE,
        release(
            "r2",
            "tre",
            json!({ "parser": format!("{REGISTRY}/tre/parser:v2") }),
        ),
    )
    .await;
    let controller = h.start_controller().await;
    let entry = h
        .deploy(TABLE, "r2", "stage", "2024-05-01T10:00:00.000000")
        .await;
    assert_eq!(entry.status, Some(Status::Succeeded), "{entry:?}");
    let function = lambda
        .get_function()
        .function_name("stage-tre-run-judgment-parser")
        .send()
        .await
        .unwrap();
    assert_eq!(
        function.code.unwrap().image_uri.unwrap(),
        format!("{REGISTRY}/tre/parser:v2")
    );
    assert_eq!(
        h.parameters("/tre/images/stage").await["/tre/images/stage/parser"].0,
        format!("{REGISTRY}/tre/parser:v2")
    );
    controller.stop().await;
}

#[tokio::test]
async fn a_release_no_lambda_function_runs_fails_naming_the_functions_configured() {
    let h = Harness::new(&project(
        r#"{ id = "stage", name = "Staging", actuator = { kind = "lambda", functions = { parser = "stage-tre-run-judgment-parser" }, poll_interval = "100ms" } }"#,
    ))
    .await;
    h.put_release(
        TABLE,
        release(
            "r2",
            "tre",
            json!({ "ingest": format!("{REGISTRY}/tre/ingest:v2") }),
        ),
    )
    .await;
    let controller = h.start_controller().await;
    let entry = h
        .deploy(TABLE, "r2", "stage", "2024-05-01T10:00:00.000000")
        .await;
    assert_eq!(entry.status, Some(Status::Failed), "{entry:?}");
    let message = entry.status_message.unwrap_or_default();
    assert!(
        message.contains(
            "no Lambda function runs any of this release's services (ingest): configured functions: parser → stage-tre-run-judgment-parser"
        ),
        "{message}"
    );
    controller.stop().await;
}

#[tokio::test]
async fn an_environment_in_another_account_is_pinned_through_its_assumed_role() {
    let h = Harness::new(&project(
        r#"{ id = "prod", name = "Production", role_arn = "arn:aws:iam::111111111111:role/relctl-deployer" }"#,
    ))
    .await;
    h.put_release(
        TABLE,
        release(
            "r1",
            "tre",
            json!({ "parser": "registry.example/parser:1" }),
        ),
    )
    .await;
    let controller = h.start_controller().await;
    let entry = h
        .deploy(TABLE, "r1", "prod", "2024-05-01T10:00:00.000000")
        .await;
    assert_eq!(entry.status, Some(Status::Succeeded), "{entry:?}");
    // moto keeps each account apart: the pin is in the role's account, not ours.
    assert!(
        h.parameters("/tre").await.is_empty(),
        "nothing in the controller's own account"
    );
    let other = relctl::adapters::account(
        &h.sdk,
        &relctl::adapters::Place {
            role_arn: Some("arn:aws:iam::111111111111:role/relctl-deployer".into()),
            region: None,
        },
        &Default::default(),
    )
    .await;
    let pinned = aws_sdk_ssm::Client::new(&other)
        .get_parameter()
        .name("/tre/images/prod/parser")
        .send()
        .await
        .unwrap();
    assert_eq!(
        pinned.parameter.unwrap().value.unwrap(),
        "registry.example/parser:1"
    );
    let (_, metrics) = crate::support::get(controller.addr, "/metrics").await;
    assert!(
        metrics.contains(
            r#"relctl_aws_calls_total{service="SSM",operation="PutParameter",outcome="ok"} 1"#
        ),
        "{metrics}"
    );
    controller.stop().await;
}
