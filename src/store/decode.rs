//! Reading a release item as writers left it. Each deployment entry is decoded on its
//! own: one that cannot be used (an unreadable `date_created`, no environment, a wrong
//! type) is set aside as [`Rejected`], keeping what addresses it, and the rest of the
//! release goes on. An item whose other attributes do not decode still yields its id,
//! project and entries (marked malformed), so its intents are refused with the reason
//! rather than vanishing; only an item without even those is an error, for it alone.

use std::collections::HashMap;

use serde_dynamo::AttributeValue as Av;

use super::StoreError;
use crate::model::{
    Deployment, Release,
    record::{Rejected, Skeleton},
    time::{Raw, Stamp},
};

pub fn decode<I>(item: I) -> Result<Release, StoreError>
where
    I: Into<serde_dynamo::Item>,
{
    let mut map: HashMap<String, Av> = item.into().into();
    let entries = map.remove("deployments");
    let item: serde_dynamo::Item = map.into();
    let mut release = match with_path::<Release>(&item).map_err(described) {
        Ok(release) => release,
        Err(full) => match with_path::<Skeleton>(&item) {
            Ok(skeleton) => skeleton.into_malformed(full),
            Err(_) => {
                let key = match item.get("release_id") {
                    Some(Av::S(id)) => format!("release_id {id:?}"),
                    _ => "an item without a string release_id".to_owned(),
                };
                return Err(StoreError::Decode {
                    what: format!("release item ({key})"),
                    source: full.into(),
                });
            }
        },
    };
    match entries {
        None | Some(Av::Null(_)) => {}
        Some(Av::L(entries)) => {
            for (index, entry) in entries.into_iter().enumerate() {
                match entry_at(index, entry) {
                    Ok(deployment) => release.deployments.push(deployment),
                    Err(rejected) => release.rejected.push(rejected),
                }
            }
        }
        Some(_) => {
            release.malformed.get_or_insert_with(|| {
                "deployments: must be a list of deployment entries".to_owned()
            });
        }
    }
    Ok(release)
}

/// One entry, or what is known of it and why it cannot be used.
fn entry_at(index: usize, entry: Av) -> Result<Deployment, Rejected> {
    let Av::M(fields) = entry else {
        return Err(Rejected {
            index,
            date_created: None,
            environment: None,
            why: format!("deployments[{index}]: an entry must be a map"),
            status: None,
        });
    };
    let date_created = match fields.get("date_created") {
        Some(Av::S(text)) => Some(Raw::S(text.clone())),
        Some(Av::N(number)) => Some(Raw::N(number.clone())),
        _ => None,
    };
    let environment = match fields.get("environment") {
        Some(Av::S(id)) => Some(id.clone()),
        Some(Av::M(env)) => match env.get("id") {
            Some(Av::S(id)) => Some(id.clone()),
            _ => None,
        },
        _ => None,
    };
    let status = match fields.get("status") {
        Some(Av::S(status)) => Some(status.clone()),
        _ => None,
    };
    let item: serde_dynamo::Item = fields.into();
    match with_path::<Deployment>(&item) {
        Ok(mut deployment) => {
            deployment.index = index;
            // A number exactly as stored (decoding went through f64, which may round).
            if let Some(raw) = date_created {
                deployment.date_created.raw = raw;
            }
            Ok(deployment)
        }
        Err((path, reason)) => Err(Rejected {
            index,
            why: match (&date_created, path.as_deref()) {
                // Say plainly what is wrong with the date, the usual case.
                (Some(raw), Some("date_created")) => format!(
                    "deployments[{index}].date_created {:?} cannot be used: {reason}",
                    raw.text()
                ),
                (_, Some(path)) => format!("deployments[{index}].{path}: {reason}"),
                (_, None) => format!("deployments[{index}]: {reason}"),
            },
            date_created,
            environment,
            status,
        }),
    }
}

/// Decodes `item`; the error names the attribute that failed (None: the item itself,
/// a missing field say) and why.
fn with_path<T: serde::de::DeserializeOwned>(
    item: &serde_dynamo::Item,
) -> Result<T, (Option<String>, String)> {
    let map: HashMap<String, Av> = item.clone().into();
    let deserializer = serde_dynamo::Deserializer::from_attribute_value(Av::M(map));
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let path = e.path().to_string();
        let path = (path != ".").then_some(path);
        (path, e.into_inner().to_string())
    })
}

/// `path: why`, or `why` for the item itself.
fn described((path, why): (Option<String>, String)) -> String {
    match path {
        Some(path) => format!("{path}: {why}"),
        None => why,
    }
}

/// A stamp as relctl writes it, for entries relctl appends.
pub fn stamp_now() -> Stamp {
    Stamp::new(crate::model::Timestamp::from_utc(chrono::Utc::now()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(pairs: Vec<(&str, Av)>) -> serde_dynamo::Item {
        pairs
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect::<HashMap<_, _>>()
            .into()
    }

    fn entry(date: Av, env: Av) -> Av {
        Av::M(
            [
                ("date_created".to_owned(), date),
                ("environment".to_owned(), env),
            ]
            .into(),
        )
    }

    #[test]
    fn an_undecodable_item_is_named_by_its_key_and_the_attribute_that_failed() {
        let bad = item(vec![
            ("release_id", Av::S("r9".into())),
            ("project_id", Av::N("7".into())),
        ]);
        let error = decode(bad).unwrap_err().to_string();
        assert!(error.contains("release_id \"r9\""), "{error}");
        assert!(error.contains("project_id: "), "{error}");
    }

    #[test]
    fn a_garbage_entry_is_set_aside_and_the_good_one_beside_it_kept_at_its_position() {
        let release = decode(item(vec![
            ("release_id", Av::S("r1".into())),
            ("project_id", Av::S("p".into())),
            (
                "deployments",
                Av::L(vec![
                    entry(Av::S("yesterday".into()), Av::S("stage".into())),
                    Av::M(
                        [(
                            "date_created".to_owned(),
                            Av::S("2026-11-24T13:59:50Z".into()),
                        )]
                        .into(),
                    ),
                    entry(
                        Av::S("2026-11-24T13:59:50Z".into()),
                        Av::M([("id".to_owned(), Av::S("prod".into()))].into()),
                    ),
                    Av::S("not an entry".into()),
                ]),
            ),
        ]))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(release.deployments.len(), 1);
        assert_eq!(release.deployments[0].index, 2, "positions never shift");
        assert_eq!(release.deployments[0].environment.id, "prod");
        assert_eq!(release.rejected.len(), 3);
        let garbage = &release.rejected[0];
        assert_eq!(garbage.date_created, Some(Raw::S("yesterday".into())));
        assert_eq!(garbage.environment.as_deref(), Some("stage"));
        assert!(
            garbage
                .why
                .starts_with("deployments[0].date_created \"yesterday\" cannot be used"),
            "{}",
            garbage.why
        );
        assert_eq!(
            release.rejected[1].why,
            "deployments[1]: missing field `environment`"
        );
        assert_eq!(release.rejected[2].index, 3);
    }

    #[test]
    fn weco_deploy_entries_decode_with_string_fields() {
        let release = decode(item(vec![
            ("release_id", Av::S("r1".into())),
            ("project_id", Av::S("p".into())),
            (
                "requested_by",
                Av::S("arn:aws:sts::1:assumed-role/dev/alice".into()),
            ),
            (
                "deployments",
                Av::L(vec![Av::M(
                    [
                        (
                            "date_created".to_owned(),
                            Av::S("2019-07-10T10:44:12.983539".into()),
                        ),
                        ("environment".to_owned(), Av::S("stage".into())),
                        (
                            "requested_by".to_owned(),
                            Av::S("arn:aws:sts::1:assumed-role/dev/bob".into()),
                        ),
                        ("details".to_owned(), Av::M(HashMap::new())),
                    ]
                    .into(),
                )]),
            ),
        ]))
        .unwrap_or_else(|e| panic!("{e}"));
        let entry = &release.deployments[0];
        assert_eq!(entry.environment.id, "stage");
        assert_eq!(
            entry.requested_by.as_ref().and_then(|p| p.shown()),
            Some("bob")
        );
        assert_eq!(
            release.requested_by.and_then(|p| p.name),
            Some("alice".to_owned())
        );
    }
}
