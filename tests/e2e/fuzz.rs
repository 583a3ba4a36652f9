//! Property tests: whatever arrives in a record, a configuration file, an image URI or
//! a timestamp, decoding returns a value or an error, never a panic.

use proptest::prelude::*;
use relctl::{
    config::Config,
    model::{ImageRef, Timestamp},
    store::releases::decode,
};
use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::Value;

/// JSON trees shaped like release items: known keys with arbitrary values.
fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        "[ -~]{0,40}".prop_map(Value::String),
        prop_oneof![
            Just("2019-07-10T10:44:12.983539"),
            Just("ref.abc"),
            Just("stage"),
            Just("r.example/app:1")
        ]
        .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("release_id".to_owned()),
                    Just("project_id".to_owned()),
                    Just("date_created".to_owned()),
                    Just("last_date_deployed".to_owned()),
                    Just("images".to_owned()),
                    Just("deployments".to_owned()),
                    Just("environment".to_owned()),
                    Just("id".to_owned()),
                    Just("status".to_owned()),
                    "[a-z_]{1,12}",
                ],
                inner,
                0..8
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn decoding_any_item_never_panics(item in value()) {
        if let Ok(item) = serde_dynamo::to_item::<_, HashMap<String, AttributeValue>>(item) {
            let _ = decode(item);
        }
    }

    #[test]
    fn parsing_any_configuration_never_panics(text in "[ -~\n]{0,300}") {
        let _ = Config::from_toml(&text);
    }

    #[test]
    fn parsing_configuration_shaped_text_never_panics(
        section in prop_oneof![Just("controller"), Just("aws"), Just("tables"), Just("lease"), Just("http"), Just("[projects]")],
        key in "[a-z_]{1,16}",
        value in prop_oneof![Just("\"5m\"".to_owned()), Just("0".to_owned()), Just("-1".to_owned()), Just("\"\"".to_owned()), "\"[ -~]{0,20}\"", "[0-9]{1,25}"],
    ) {
        let _ = Config::from_toml(&format!("[{section}]\n{key} = {value}\n"));
    }

    #[test]
    fn parsing_any_image_uri_or_timestamp_never_panics(text in "\\PC{0,80}") {
        let _ = ImageRef::parse(&text);
        let _ = Timestamp::parse(&text);
    }

    /// Whatever a writer puts in `date_created` (any text, any number), the entry
    /// either decodes (and is then applied or refused with a status) or is set aside
    /// with its value as stored, so the controller can write `failed` onto it: no entry
    /// is left without a way to a final status.
    #[test]
    fn any_date_created_yields_an_intent_or_an_addressable_refusal(
        date in prop_oneof![
            "\\PC{0,40}".prop_map(AttributeValue::S),
            any::<i64>().prop_map(|n| AttributeValue::N(n.to_string())),
            any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|n| AttributeValue::N(n.to_string())),
        ],
    ) {
        let entry = AttributeValue::M(HashMap::from([
            ("date_created".to_owned(), date.clone()),
            ("environment".to_owned(), AttributeValue::S("stage".into())),
        ]));
        let item = HashMap::from([
            ("release_id".to_owned(), AttributeValue::S("r1".into())),
            ("project_id".to_owned(), AttributeValue::S("p".into())),
            ("deployments".to_owned(), AttributeValue::L(vec![entry])),
        ]);
        let release = decode(item).expect("id and project are fine");
        match (release.deployments.first(), release.rejected.first()) {
            (Some(entry), None) => prop_assert_eq!(entry.index, 0),
            (None, Some(rejected)) => {
                prop_assert!(rejected.date_created.is_some(), "addressable: {rejected:?}");
                prop_assert!(rejected.why.contains("date_created"), "{}", rejected.why);
            }
            other => prop_assert!(false, "one or the other: {other:?}"),
        }
    }
}
