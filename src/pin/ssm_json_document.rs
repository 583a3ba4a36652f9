//! The tfvars-in-SSM pattern: one JSON document per environment (e.g. `prod-tfvars`)
//! that a Terraform pipeline reads. relctl patches each service's value at `key_path`
//! (the URI or just its tag), bumps an optional version key when anything changed, and
//! keeps every other key as it was, in its order.

use async_trait::async_trait;
use aws_sdk_ssm::{Client, types::ParameterType};
use serde_json::{Map, Value};

use super::{Pin, PinError, Target, Written};
use crate::{
    config::JsonValue,
    model::{Change, ImageRef, Images},
};

#[derive(Debug, Clone)]
pub struct SsmJsonDocument {
    pub client: Client,
    pub parameter: String,
    pub key_path: String,
    pub value: JsonValue,
    pub version_key: Option<String>,
    pub refuse_downgrade: bool,
}

impl SsmJsonDocument {
    fn name(&self, target: &Target<'_>) -> String {
        self.parameter
            .replace("{project}", &target.key.project)
            .replace("{environment}", &target.key.environment)
    }

    fn path(&self, service: &str) -> Vec<String> {
        self.key_path
            .replace("{service}", service)
            .split('.')
            .map(str::to_owned)
            .collect()
    }

    /// What the document holds for a service pinned to `uri`.
    fn encode(&self, service: &str, uri: &str) -> Result<String, PinError> {
        match self.value {
            JsonValue::Uri => Ok(uri.to_owned()),
            JsonValue::Tag => ImageRef::parse(uri)
                .ok()
                .and_then(|image| image.tag().map(str::to_owned))
                .ok_or_else(|| {
                    PinError::Refused(format!(
                        "service {service:?}: {uri} has no tag to write into {}",
                        self.key_path
                    ))
                }),
        }
    }

    async fn read(&self, name: &str) -> Result<(Value, bool), PinError> {
        let output = self
            .client
            .get_parameter()
            .name(name)
            .send()
            .await
            .map_err(|e| {
                if e.as_service_error().is_some_and(|s| s.is_parameter_not_found()) {
                    PinError::Refused(format!(
                        "SSM parameter {name} does not exist; create the document first (relctl only patches it)"
                    ))
                } else {
                    PinError::Read {
                        location: name.to_owned(),
                        source: crate::aws::AwsError::from_sdk(e),
                    }
                }
            })?;
        let text = output.parameter.and_then(|p| p.value).unwrap_or_default();
        let doc = serde_json::from_str(&text).map_err(|e| {
            PinError::Refused(format!("SSM parameter {name} is not a JSON document: {e}"))
        })?;
        Ok((doc, text.contains('\n')))
    }
}

fn get<'a>(doc: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(doc, |node, key| node.get(key))
}

fn set(doc: &mut Value, path: &[String], value: Value) -> Result<(), String> {
    let Some((last, parents)) = path.split_last() else {
        return Err("empty key path".into());
    };
    let mut node = doc;
    for key in parents {
        let object = node
            .as_object_mut()
            .ok_or_else(|| format!("{key:?} is inside a value that is not an object"))?;
        node = object
            .entry(key.clone())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    node.as_object_mut()
        .ok_or_else(|| format!("{last:?} is inside a value that is not an object"))?
        .insert(last.clone(), value);
    Ok(())
}

/// Dotted numeric versions (`v1.2.10`, `2024.05.1`) compared part by part; anything
/// else is not comparable, and never refused as a downgrade.
/// How two pinned values compare as dotted versions: their tags, where they are image
/// URIs (`repo/app:1.2.0`), else the values themselves (`1.2.0`); None when either is no
/// version.
pub fn version_order(a: &str, b: &str) -> Option<std::cmp::Ordering> {
    let tag = |text: &str| -> String {
        crate::model::ImageRef::parse(text)
            .ok()
            .and_then(|image| image.tag().map(str::to_owned))
            .unwrap_or_else(|| text.to_owned())
    };
    let parse = |text: &str| -> Option<Vec<u64>> {
        tag(text)
            .trim_start_matches('v')
            .split(['.', '-', '_'])
            .map(|part| part.parse().ok())
            .collect()
    };
    Some(parse(a)?.cmp(&parse(b)?))
}

fn bump(current: Option<&Value>, release_id: &str) -> Value {
    match current {
        Some(Value::Number(n)) if n.as_u64().is_some() => {
            Value::from(n.as_u64().unwrap_or_default() + 1)
        }
        Some(Value::String(s)) if s.parse::<u64>().is_ok() => {
            Value::String((s.parse::<u64>().unwrap_or_default() + 1).to_string())
        }
        _ => Value::String(release_id.to_owned()),
    }
}

#[async_trait]
impl Pin for SsmJsonDocument {
    fn kind(&self) -> &'static str {
        "ssm_json_document"
    }

    async fn diff(&self, target: &Target<'_>, desired: &Images) -> Result<Vec<Change>, PinError> {
        let (doc, _) = self.read(&self.name(target)).await?;
        let mut changes = Vec::new();
        for (service, uri) in desired {
            let want = self.encode(service, uri)?;
            let have = get(&doc, &self.path(service))
                .and_then(Value::as_str)
                .map(str::to_owned);
            if have.as_deref() == Some(want.as_str()) {
                continue;
            }
            if self.refuse_downgrade
                && let Some(have) = &have
                && version_order(&want, have) == Some(std::cmp::Ordering::Less)
            {
                return Err(PinError::Refused(format!(
                    "refusing to downgrade service {service:?} from {have} to {want} (refuse_downgrade is on)"
                )));
            }
            changes.push(Change {
                service: service.clone(),
                from: have,
                to: want,
            });
        }
        Ok(changes)
    }

    async fn write(
        &self,
        target: &Target<'_>,
        _desired: &Images,
        changes: &[Change],
    ) -> Result<Written, PinError> {
        if changes.is_empty() {
            return Ok(Written::Verified);
        }
        let name = self.name(target);
        let (mut doc, pretty) = self.read(&name).await?;
        for change in changes {
            set(
                &mut doc,
                &self.path(&change.service),
                Value::String(change.to.clone()),
            )
            .map_err(|why| PinError::Refused(format!("cannot patch {name}: {why}")))?;
        }
        if let Some(version_key) = &self.version_key {
            let path: Vec<String> = version_key.split('.').map(str::to_owned).collect();
            let next = bump(get(&doc, &path), target.release_id);
            set(&mut doc, &path, next)
                .map_err(|why| PinError::Refused(format!("cannot patch {name}: {why}")))?;
        }
        let text = if pretty {
            serde_json::to_string_pretty(&doc)
        } else {
            serde_json::to_string(&doc)
        }
        .map_err(|e| PinError::Refused(e.to_string()))?;
        self.client
            .put_parameter()
            .name(&name)
            .value(text)
            .r#type(ParameterType::String)
            .overwrite(true)
            .send()
            .await
            .map_err(|e| PinError::Write {
                service: changes
                    .iter()
                    .map(|c| c.service.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                location: name.clone(),
                source: crate::aws::AwsError::from_sdk(e),
            })?;
        Ok(Written::Unverified)
    }
}

#[cfg(test)]
mod tests {
    use std::cmp::Ordering;

    use serde_json::json;

    use super::*;

    #[test]
    fn set_creates_missing_objects_and_keeps_siblings_in_order() {
        let mut doc = json!({ "b": 1, "image_versions": { "z": "1", "a": "2" }, "a": true });
        set(&mut doc, &["image_versions".into(), "m".into()], json!("3")).unwrap();
        set(&mut doc, &["new".into(), "x".into()], json!("4")).unwrap();
        assert_eq!(
            serde_json::to_string(&doc).unwrap(),
            r#"{"b":1,"image_versions":{"z":"1","a":"2","m":"3"},"a":true,"new":{"x":"4"}}"#
        );
    }

    #[test]
    fn set_refuses_to_descend_into_a_scalar() {
        let mut doc = json!({ "image_versions": "oops" });
        assert!(set(&mut doc, &["image_versions".into(), "a".into()], json!("1")).is_err());
    }

    #[test]
    fn versions_compare_numerically() {
        assert_eq!(version_order("1.2.10", "1.2.9"), Some(Ordering::Greater));
        assert_eq!(version_order("v2.0", "v10.0"), Some(Ordering::Less));
        assert_eq!(version_order("ref.abc", "1.0"), None);
        // With value = "uri" the pinned values are whole URIs: their tags are compared.
        assert_eq!(
            version_order("r.example/app:1.1.9", "r.example/app:1.2.0"),
            Some(Ordering::Less)
        );
    }

    #[test]
    fn version_keys_count_up_or_name_the_release() {
        assert_eq!(bump(Some(&json!(41)), "r"), json!(42));
        assert_eq!(bump(Some(&json!("7")), "r"), json!("8"));
        assert_eq!(bump(Some(&json!("v1")), "r9"), json!("r9"));
        assert_eq!(bump(None, "r9"), json!("r9"));
    }
}
