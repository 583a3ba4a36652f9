//! `order = [["migrate"], ["api", "web"]]`: the release's services applied in waves,
//! each verified before the next starts; services no wave names go in a last wave.

use crate::model::Images;

/// The waves of `images`' services under `order`: the named waves (only the services
/// the release has; empty ones left out), then every other service.
pub fn waves(order: &[Vec<String>], images: &Images) -> Vec<Vec<String>> {
    let mut waves: Vec<Vec<String>> = order
        .iter()
        .map(|wave| {
            wave.iter()
                .filter(|s| images.contains_key(*s))
                .cloned()
                .collect::<Vec<_>>()
        })
        .filter(|wave| !wave.is_empty())
        .collect();
    let rest: Vec<String> = images
        .keys()
        .filter(|s| !order.iter().flatten().any(|o| o == *s))
        .cloned()
        .collect();
    if !rest.is_empty() {
        waves.push(rest);
    }
    waves
}

/// The images of wave `wave` (all of them where there is no `order`).
pub fn of_wave(order: &[Vec<String>], images: &Images, wave: usize) -> Images {
    if order.is_empty() {
        return images.clone();
    }
    let waves = waves(order, images);
    let Some(services) = waves.get(wave) else {
        return Images::new();
    };
    images
        .iter()
        .filter(|(s, _)| services.contains(s))
        .map(|(s, u)| (s.clone(), u.clone()))
        .collect()
}

/// How many waves a deployment of `images` has.
pub fn count(order: &[Vec<String>], images: &Images) -> usize {
    if order.is_empty() {
        1
    } else {
        waves(order, images).len().max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn images(services: &[&str]) -> Images {
        services
            .iter()
            .map(|s| ((*s).to_owned(), format!("r/{s}:1")))
            .collect()
    }

    #[test]
    fn named_waves_come_first_and_the_rest_last() {
        let order = vec![
            vec!["migrate".to_owned()],
            vec!["api".to_owned(), "web".to_owned()],
        ];
        let all = images(&["api", "migrate", "web", "worker"]);
        assert_eq!(
            waves(&order, &all),
            [vec!["migrate"], vec!["api", "web"], vec!["worker"]]
        );
        assert_eq!(count(&order, &all), 3);
        assert_eq!(of_wave(&order, &all, 1).len(), 2);
        // A wave the release has none of is left out.
        let some = images(&["api", "web"]);
        assert_eq!(waves(&order, &some), [vec!["api", "web"]]);
        assert_eq!(count(&[], &some), 1);
        assert_eq!(of_wave(&[], &some, 0), some);
    }
}
