//! Which shards of a stream to read now: a child only after its parent has been read to
//! its end (or is gone from the stream), so records of one item are seen in order.

use std::collections::{BTreeMap, HashSet};

use crate::store::state::Checkpoint;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shard {
    pub id: String,
    pub parent: Option<String>,
    /// Closed shards have an ending sequence number.
    pub closed: bool,
}

/// How to start reading a shard that has no iterator yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartAt {
    After(String),
    TrimHorizon,
    Latest,
}

/// Shards to poll now, in the order given (DescribeStream lists parents first).
pub fn readable<'a>(
    shards: &'a [Shard],
    checkpoints: &BTreeMap<String, Checkpoint>,
) -> Vec<&'a Shard> {
    let listed: HashSet<&str> = shards.iter().map(|s| s.id.as_str()).collect();
    let finished = |id: &str| checkpoints.get(id).is_some_and(|c| c.finished);
    shards
        .iter()
        .filter(|shard| !finished(&shard.id))
        .filter(|shard| match &shard.parent {
            Some(parent) => !listed.contains(parent.as_str()) || finished(parent),
            None => true,
        })
        .collect()
}

/// Where to begin a shard. With no checkpoints at all (a first start), open shards are
/// read from LATEST: the start-up resync reads the table for everything before. Once
/// relctl has checkpoints, a shard it has not seen is new and is read from its start.
pub fn start_at(
    shard: &Shard,
    checkpoints: &BTreeMap<String, Checkpoint>,
    first_start: bool,
) -> StartAt {
    match checkpoints.get(&shard.id).and_then(|c| c.sequence.clone()) {
        Some(sequence) => StartAt::After(sequence),
        None if first_start && !shard.closed => StartAt::Latest,
        None => StartAt::TrimHorizon,
    }
}

/// Drops checkpoints of shards no longer in the stream (trimmed after 24 h), keeping the
/// item small however long relctl runs.
pub fn prune(checkpoints: &mut BTreeMap<String, Checkpoint>, shards: &[Shard]) {
    let listed: HashSet<&str> = shards.iter().map(|s| s.id.as_str()).collect();
    checkpoints.retain(|id, _| listed.contains(id.as_str()));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(id: &str, parent: Option<&str>, closed: bool) -> Shard {
        Shard {
            id: id.into(),
            parent: parent.map(Into::into),
            closed,
        }
    }

    fn finished() -> Checkpoint {
        Checkpoint {
            sequence: Some("9".into()),
            finished: true,
        }
    }

    #[test]
    fn a_child_waits_for_its_closed_parent_to_be_read_to_the_end() {
        let shards = vec![shard("p", None, true), shard("c", Some("p"), false)];
        let none = BTreeMap::new();
        let ids: Vec<_> = readable(&shards, &none)
            .iter()
            .map(|s| s.id.clone())
            .collect();
        assert_eq!(ids, vec!["p"]);
        let done = BTreeMap::from([("p".to_string(), finished())]);
        let ids: Vec<_> = readable(&shards, &done)
            .iter()
            .map(|s| s.id.clone())
            .collect();
        assert_eq!(ids, vec!["c"]);
    }

    #[test]
    fn a_child_whose_parent_was_trimmed_is_read_at_once() {
        let shards = vec![shard("c", Some("gone"), false)];
        assert_eq!(readable(&shards, &BTreeMap::new()).len(), 1);
    }

    #[test]
    fn first_start_reads_open_shards_from_latest_and_later_shards_from_their_start() {
        let open = shard("a", None, false);
        assert_eq!(start_at(&open, &BTreeMap::new(), true), StartAt::Latest);
        assert_eq!(
            start_at(&open, &BTreeMap::new(), false),
            StartAt::TrimHorizon
        );
        let at = BTreeMap::from([(
            "a".to_string(),
            Checkpoint {
                sequence: Some("42".into()),
                finished: false,
            },
        )]);
        assert_eq!(start_at(&open, &at, true), StartAt::After("42".into()));
    }

    #[test]
    fn checkpoints_of_trimmed_shards_are_pruned() {
        let mut at = BTreeMap::from([
            ("old".to_string(), finished()),
            ("a".to_string(), finished()),
        ]);
        prune(&mut at, &[shard("a", None, false)]);
        assert_eq!(at.keys().collect::<Vec<_>>(), vec!["a"]);
    }
}
