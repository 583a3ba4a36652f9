//! From a release to the changes that pin it: resolve every image to a URI (or refuse,
//! saying why), then diff desired against observed so only what differs is written.

use std::collections::BTreeMap;

use super::{ImageRef, Release, ids::IdError, validate_id};

/// service id → image URI.
pub type Images = BTreeMap<String, String>;

/// A digest of exactly these images (`sha256:` over their canonical JSON): what an
/// approval and a verified success are bound to, so a release whose images changed
/// afterwards is a different thing to approve and to promote.
pub fn images_digest(images: &Images) -> String {
    use sha2::{Digest, Sha256};
    let canonical = serde_json::to_string(images).unwrap_or_default();
    let digest = Sha256::digest(canonical.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// Why an intent is refused. Every message says what is wrong and what would fix it;
/// it is written verbatim into the deployment's `status_message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("project {project:?} is not configured in relctl; configured projects: {known}")]
    UnknownProject { project: String, known: String },
    #[error(
        "environment {environment:?} is not configured for project {project:?}; configured environments: {known}"
    )]
    UnknownEnvironment {
        project: String,
        environment: String,
        known: String,
    },
    #[error("refused: {0}")]
    BadId(#[from] IdError),
    #[error("release {release_id} has no images; nothing to deploy")]
    NoImages { release_id: String },
    #[error(
        "release {release_id} has no image for service {service:?} (NULL); create a release with an image for every service"
    )]
    MissingImage { release_id: String, service: String },
    #[error(
        "release {release_id} gives service {service:?} the tag {value:?}, but project {project:?} has no image_uri_template to turn a ref.<sha> tag into an image URI"
    )]
    UnresolvableRef {
        release_id: String,
        project: String,
        service: String,
        value: String,
    },
    #[error("release {release_id}, service {service:?}: {why}")]
    BadImage {
        release_id: String,
        service: String,
        why: String,
    },
    #[error(
        "release {release_id} has not succeeded in {missing} yet, which {environment} requires first (promotion gate); deploy it there first"
    )]
    Gate {
        release_id: String,
        environment: String,
        missing: String,
    },
    #[error("release {release_id} is malformed and cannot be deployed: {why}")]
    Malformed { release_id: String, why: String },
}

/// Turns the release's `images` into URIs. `template` is the project's
/// `image_uri_template`, with `{service}` and `{tag}` (and `{project}`) placeholders.
pub fn resolve_images(release: &Release, template: Option<&str>) -> Result<Images, Refusal> {
    if let Some(why) = &release.malformed {
        return Err(Refusal::Malformed {
            release_id: release.release_id.clone(),
            why: why.clone(),
        });
    }
    if release.images.is_empty() {
        return Err(Refusal::NoImages {
            release_id: release.release_id.clone(),
        });
    }
    let mut images = Images::new();
    for (service, value) in &release.images {
        validate_id("service", service)?;
        let value = value.as_deref().ok_or_else(|| Refusal::MissingImage {
            release_id: release.release_id.clone(),
            service: service.clone(),
        })?;
        let uri = match (value.strip_prefix("ref."), template) {
            (Some(_), Some(template)) => template
                .replace("{service}", service)
                .replace("{tag}", value)
                .replace("{project}", &release.project_id),
            (Some(_), None) => {
                return Err(Refusal::UnresolvableRef {
                    release_id: release.release_id.clone(),
                    project: release.project_id.clone(),
                    service: service.clone(),
                    value: value.to_owned(),
                });
            }
            (None, _) => value.to_owned(),
        };
        let parsed = ImageRef::parse(&uri).map_err(|why| Refusal::BadImage {
            release_id: release.release_id.clone(),
            service: service.clone(),
            why,
        })?;
        images.insert(service.clone(), parsed.to_string());
    }
    Ok(images)
}

/// The promotion gate: the release must have succeeded in each of `requires` before it
/// may be deployed to `environment`. `verified` is where the controller's own records
/// say it succeeded; a record's `status` fields never count, as any writer can set them.
pub fn gate(
    release_id: &str,
    environment: &str,
    requires: &[String],
    verified: &[String],
) -> Result<(), Refusal> {
    let missing: Vec<&str> = requires
        .iter()
        .filter(|required| !verified.contains(required))
        .map(String::as_str)
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Refusal::Gate {
            release_id: release_id.to_owned(),
            environment: environment.to_owned(),
            missing: missing.join(", "),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub service: String,
    pub from: Option<String>,
    pub to: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    pub changes: Vec<Change>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

/// What must be written so that `observed` holds `desired`. Services pinned in the
/// environment but absent from the release are left alone: removing a service is a
/// decision for the infrastructure, not for a release record.
pub fn plan(desired: &Images, observed: &Images) -> Plan {
    let changes = desired
        .iter()
        .filter(|(service, uri)| observed.get(*service) != Some(*uri))
        .map(|(service, uri)| Change {
            service: service.clone(),
            from: observed.get(service).cloned(),
            to: uri.clone(),
        })
        .collect();
    Plan { changes }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn release(images: &[(&str, Option<&str>)]) -> Release {
        Release {
            release_id: "r1".into(),
            project_id: "bugfarm".into(),
            project_name: None,
            date_created: None,
            last_date_deployed: None,
            description: None,
            requested_by: None,
            images: images
                .iter()
                .map(|(s, v)| (s.to_string(), v.map(str::to_owned)))
                .collect(),
            release_manifest: None,
            deployments: vec![],
            malformed: None,
            rejected: Vec::new(),
        }
    }

    fn images(pairs: &[(&str, &str)]) -> Images {
        pairs
            .iter()
            .map(|(s, v)| (s.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn only_services_whose_image_differs_are_planned() {
        let desired = images(&[("a", "repo/a:2"), ("b", "repo/b:1")]);
        let observed = images(&[("a", "repo/a:1"), ("b", "repo/b:1"), ("c", "repo/c:1")]);
        let plan = plan(&desired, &observed);
        assert_eq!(
            plan.changes,
            vec![Change {
                service: "a".into(),
                from: Some("repo/a:1".into()),
                to: "repo/a:2".into()
            }]
        );
    }

    #[test]
    fn planning_what_is_already_there_is_empty() {
        let desired = images(&[("a", "repo/a:2")]);
        assert!(plan(&desired, &desired).is_empty());
    }

    #[test]
    fn ref_tags_resolve_through_the_project_template() {
        let resolved = resolve_images(
            &release(&[("hatching", Some("ref.abc123"))]),
            Some("123456789012.dkr.ecr.eu-west-1.amazonaws.com/uk.ac.wellcome/{service}:{tag}"),
        )
        .unwrap();
        assert_eq!(
            resolved["hatching"],
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com/uk.ac.wellcome/hatching:ref.abc123"
        );
    }

    #[test]
    fn a_ref_tag_without_a_template_is_refused() {
        let refusal = resolve_images(&release(&[("hatching", Some("ref.abc"))]), None);
        assert!(matches!(refusal, Err(Refusal::UnresolvableRef { .. })));
    }

    #[test]
    fn a_null_image_is_refused_naming_the_service() {
        let refusal = resolve_images(
            &release(&[("a", Some("repo/a:1")), ("feeding", None)]),
            None,
        )
        .unwrap_err();
        assert!(
            refusal.to_string().contains("\"feeding\" (NULL)"),
            "{refusal}"
        );
    }

    #[test]
    fn a_hostile_service_id_is_refused() {
        let refusal = resolve_images(&release(&[("../x", Some("repo/a:1"))]), None).unwrap_err();
        assert!(matches!(refusal, Refusal::BadId(_)), "{refusal:?}");
    }

    #[test]
    fn an_unparseable_uri_is_refused() {
        let refusal = resolve_images(&release(&[("a", Some("not an image"))]), None).unwrap_err();
        assert!(matches!(refusal, Refusal::BadImage { .. }));
    }

    #[test]
    fn the_promotion_gate_needs_the_controllers_own_record_of_every_required_environment() {
        let required = vec!["stage".to_owned(), "qa".to_owned()];
        let refusal = gate("r1", "prod", &required, &[]).unwrap_err();
        assert!(
            refusal
                .to_string()
                .contains("has not succeeded in stage, qa yet, which prod requires")
        );
        assert!(gate("r1", "prod", &required, &["stage".into()]).is_err());
        assert_eq!(
            gate("r1", "prod", &required, &["qa".into(), "stage".into()]),
            Ok(())
        );
    }

    #[test]
    fn a_malformed_release_is_refused_with_its_decode_error() {
        let mut malformed = release(&[]);
        malformed.malformed = Some("images: invalid type".into());
        let refusal = resolve_images(&malformed, None).unwrap_err();
        assert!(refusal.to_string().contains("images: invalid type"));
    }
}
