//! Which containers of a task definition a release's images are for: those from the
//! same registry and repository ("the same image, another version").

use aws_sdk_ecs::types::{ContainerDefinition, TaskDefinition};

use crate::model::ImageRef;

/// Registry and repository: what makes two image URIs "the same image, another version".
pub(super) fn repository_of(uri: &str) -> Option<String> {
    match ImageRef::parse(uri).ok()? {
        ImageRef::Container {
            registry,
            repository,
            ..
        } => Some(format!("{}/{repository}", registry.unwrap_or_default())),
        ImageRef::Url(_) => None,
    }
}

/// The containers of `definition` with each pointed at the desired image of its
/// repository; None when nothing changes.
pub(super) fn retarget(
    definition: &TaskDefinition,
    desired: &[&str],
) -> Option<Vec<ContainerDefinition>> {
    let mut changed = false;
    let containers = definition
        .container_definitions()
        .iter()
        .map(|container| {
            let mut container = container.clone();
            let current = container.image.clone().unwrap_or_default();
            let wanted = desired.iter().find(|uri| {
                repository_of(uri).is_some() && repository_of(uri) == repository_of(&current)
            });
            if let Some(wanted) = wanted
                && current != **wanted
            {
                container.image = Some((*wanted).to_owned());
                changed = true;
            }
            container
        })
        .collect();
    changed.then_some(containers)
}

/// The desired images no container of `definition` comes from the repository of: a
/// service configured (or tagged) to run them that cannot.
pub(super) fn unmatched<'a>(definition: &TaskDefinition, desired: &[&'a str]) -> Vec<&'a str> {
    desired
        .iter()
        .filter(|uri| {
            let wanted = repository_of(uri);
            wanted.is_none()
                || !definition
                    .container_definitions()
                    .iter()
                    .any(|c| repository_of(c.image.as_deref().unwrap_or_default()) == wanted)
        })
        .copied()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containers_follow_the_image_of_their_repository_only() {
        let definition = TaskDefinition::builder()
            .container_definitions(
                ContainerDefinition::builder()
                    .name("app")
                    .image("r.example/app:1")
                    .build(),
            )
            .container_definitions(
                ContainerDefinition::builder()
                    .name("proxy")
                    .image("r.example/nginx:1")
                    .build(),
            )
            .build();
        let containers = retarget(&definition, &["r.example/app:2"]).unwrap();
        assert_eq!(containers[0].image.as_deref(), Some("r.example/app:2"));
        assert_eq!(containers[1].image.as_deref(), Some("r.example/nginx:1"));
        assert!(retarget(&definition, &["r.example/other:2"]).is_none());
        assert!(
            retarget(&definition, &["r.example/app:1"]).is_none(),
            "already there"
        );
    }
}
