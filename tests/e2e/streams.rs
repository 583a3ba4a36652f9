//! Stream edge cases moto cannot produce (it has one shard that never closes and
//! iterators that never expire), against a wire-level DynamoDB Streams stub: a closed
//! parent shard read to its end before its child, an expired iterator reopened from the
//! checkpoint, and trimmed records answered with a full resync. The table itself, and
//! everything else, is moto.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

use crate::support::{Harness, release, stub::Stub};
use relctl::model::Status;
use serde_json::{Value, json};

const TABLE: &str = "relctl-releases";

#[derive(Default)]
struct Stream {
    /// shard id → (parent, closed, records)
    shards: BTreeMap<String, (Option<String>, bool, Vec<Value>)>,
    next_sequence: u64,
    expire_next: bool,
    trim_next: bool,
    /// GetShardIterator after a sequence number answers TrimmedDataAccessException, as
    /// AWS does for a checkpoint older than the stream's 24 h.
    trim_checkpoints: bool,
    /// Every (operation, shard) asked, in order.
    log: Vec<(String, String)>,
}

/// A JSON value in DynamoDB's wire form (`{"S": ..}`, `{"M": ..}`, …).
fn wire(value: &Value) -> Value {
    match value {
        Value::Null => json!({ "NULL": true }),
        Value::Bool(b) => json!({ "BOOL": b }),
        Value::Number(n) => json!({ "N": n.to_string() }),
        Value::String(s) => json!({ "S": s }),
        Value::Array(items) => json!({ "L": items.iter().map(wire).collect::<Vec<_>>() }),
        Value::Object(map) => {
            json!({ "M": map.iter().map(|(k, v)| (k.clone(), wire(v))).collect::<serde_json::Map<_, _>>() })
        }
    }
}

impl Stream {
    fn push(&mut self, shard: &str, item: &Value) {
        self.next_sequence += 1;
        let image = wire(item)["M"].clone();
        let record = json!({
            "eventID": format!("e{}", self.next_sequence), "eventName": "INSERT", "eventSource": "aws:dynamodb",
            "awsRegion": "eu-west-1",
            "dynamodb": { "ApproximateCreationDateTime": 1_714_557_600.0, "Keys": { "release_id": image["release_id"] },
                          "NewImage": image, "SequenceNumber": format!("{:021}", self.next_sequence),
                          "SizeBytes": 100, "StreamViewType": "NEW_AND_OLD_IMAGES" },
        });
        self.shards.get_mut(shard).unwrap().2.push(record);
    }

    fn handle(&mut self, op: &str, body: Value) -> Result<Value, crate::support::stub::Fault> {
        match op {
            "DescribeStream" => {
                let shards: Vec<Value> = self
                    .shards
                    .iter()
                    .map(|(id, (parent, closed, _))| {
                        let mut range =
                            json!({ "StartingSequenceNumber": "000000000000000000001" });
                        if *closed {
                            range["EndingSequenceNumber"] = json!("999999999999999999999");
                        }
                        let mut shard = json!({ "ShardId": id, "SequenceNumberRange": range });
                        if let Some(parent) = parent {
                            shard["ParentShardId"] = json!(parent);
                        }
                        shard
                    })
                    .collect();
                Ok(
                    json!({ "StreamDescription": { "StreamArn": body["StreamArn"], "StreamStatus": "ENABLED",
                    "StreamViewType": "NEW_AND_OLD_IMAGES", "Shards": shards } }),
                )
            }
            "GetShardIterator" => {
                let shard = body["ShardId"].as_str().unwrap().to_owned();
                self.log.push((op.into(), shard.clone()));
                let records = &self.shards[&shard].2;
                let position = match body["ShardIteratorType"].as_str().unwrap() {
                    "TRIM_HORIZON" => 0,
                    "LATEST" => records.len(),
                    "AFTER_SEQUENCE_NUMBER" if self.trim_checkpoints => {
                        return Err((
                            400,
                            "TrimmedDataAccessException",
                            "the sequence number is beyond the trim horizon".into(),
                        ));
                    }
                    kind => {
                        let sequence = body["SequenceNumber"].as_str().unwrap();
                        let at = records
                            .iter()
                            .position(|r| r["dynamodb"]["SequenceNumber"] == sequence)
                            .unwrap_or(records.len());
                        if kind == "AFTER_SEQUENCE_NUMBER" {
                            at + 1
                        } else {
                            at
                        }
                    }
                };
                Ok(json!({ "ShardIterator": format!("{shard}|{position}") }))
            }
            "GetRecords" => {
                let (shard, position) = body["ShardIterator"]
                    .as_str()
                    .unwrap()
                    .split_once('|')
                    .unwrap();
                let position: usize = position.parse().unwrap();
                self.log.push((op.into(), shard.to_owned()));
                if std::mem::take(&mut self.expire_next) {
                    return Err((400, "ExpiredIteratorException", "Iterator expired".into()));
                }
                if std::mem::take(&mut self.trim_next) {
                    return Err((
                        400,
                        "TrimmedDataAccessException",
                        "records beyond the trim horizon".into(),
                    ));
                }
                let (_, closed, records) = &self.shards[shard];
                let batch: Vec<Value> = records[position.min(records.len())..].to_vec();
                let end = records.len();
                let mut out = json!({ "Records": batch });
                // A closed shard ends (no next iterator) once a read finds nothing left.
                if !(*closed && position >= end && batch.is_empty()) {
                    out["NextShardIterator"] = json!(format!("{shard}|{end}"));
                }
                Ok(out)
            }
            other => Err((400, "UnknownOperationException", other.to_owned())),
        }
    }
}

fn intent(release_id: &str, env: &str, date: &str, tag: &str) -> Value {
    let mut item = release(
        release_id,
        "bugfarm",
        json!({ "app": format!("r.example/app:{tag}") }),
    );
    item["last_date_deployed"] = json!(date);
    item["deployments"] = json!([{ "date_created": date, "environment": { "id": env, "name": env },
                                   "requested_by": { "id": "t", "name": "t" } }]);
    item
}

async fn setup(stream: Stream) -> (Harness, Stub, Arc<Mutex<Stream>>) {
    let stream = Arc::new(Mutex::new(stream));
    let stub = {
        let stream = stream.clone();
        Stub::start(Arc::new(move |op, body| {
            stream.lock().unwrap().handle(op, body)
        }))
        .await
    };
    let h = Harness::new(&format!(
        "[aws.endpoints]\ndynamodbstreams = \"{}\"\n[[projects]]\nid = \"bugfarm\"\nname = \"Bug farm\"\nenvironments = [ {{ id = \"stage\", name = \"S\" }}, {{ id = \"prod\", name = \"P\" }} ]\n",
        stub.endpoint
    ))
    .await;
    (h, stub, stream)
}

#[tokio::test]
async fn a_closed_parent_shard_is_read_to_its_end_before_its_child() {
    let mut stream = Stream::default();
    stream.shards.insert("shard-1".into(), (None, true, vec![]));
    stream
        .shards
        .insert("shard-2".into(), (Some("shard-1".into()), false, vec![]));
    let older = intent("r1", "stage", "2024-05-01T10:00:00.000000", "1");
    let newer = intent("r2", "prod", "2024-05-01T10:00:01.000000", "2");
    stream.push("shard-1", &older);
    stream.push("shard-2", &newer);
    let (h, _stub, stream) = setup(stream).await;
    // The items exist in the table (moto) as the stream says; the stub carries the records.
    h.put_release(TABLE, older).await;
    h.put_release(TABLE, newer).await;
    let controller = h.start_controller().await;
    assert_eq!(
        h.finished(TABLE, "r1", 0).await.status,
        Some(Status::Succeeded)
    );
    assert_eq!(
        h.finished(TABLE, "r2", 0).await.status,
        Some(Status::Succeeded)
    );
    let log = stream.lock().unwrap().log.clone();
    let child_opened = log
        .iter()
        .position(|(op, s)| op == "GetShardIterator" && s == "shard-2")
        .unwrap();
    let parent_reads = log
        .iter()
        .rposition(|(op, s)| op == "GetRecords" && s == "shard-1")
        .unwrap();
    assert!(
        parent_reads < child_opened,
        "the parent was drained first: {log:?}"
    );
    controller.stop().await;
}

#[tokio::test]
async fn an_expired_iterator_is_reopened_from_the_checkpoint() {
    let mut stream = Stream::default();
    stream
        .shards
        .insert("shard-1".into(), (None, false, vec![]));
    let (h, _stub, stream) = setup(stream).await;
    let controller = h.start_controller().await;
    let first = intent("r1", "stage", "2024-05-01T10:00:00.000000", "1");
    h.put_release(TABLE, first.clone()).await;
    stream.lock().unwrap().push("shard-1", &first);
    assert_eq!(
        h.finished(TABLE, "r1", 0).await.status,
        Some(Status::Succeeded)
    );

    let second = intent("r2", "stage", "2024-05-01T11:00:00.000000", "2");
    h.put_release(TABLE, second.clone()).await;
    {
        let mut stream = stream.lock().unwrap();
        stream.expire_next = true;
        stream.push("shard-1", &second);
    }
    assert_eq!(
        h.finished(TABLE, "r2", 0).await.status,
        Some(Status::Succeeded)
    );
    let log = stream.lock().unwrap().log.clone();
    assert!(
        log.iter()
            .filter(|(op, _)| op == "GetShardIterator")
            .count()
            >= 2,
        "reopened: {log:?}"
    );
    let r1 = h.release(TABLE, "r1").await.deployments[0].clone();
    assert_eq!(
        r1.status,
        Some(Status::Succeeded),
        "applied before r2 existed"
    );
    controller.stop().await;
}

#[tokio::test]
async fn trimmed_records_trigger_a_full_resync_that_finds_what_the_stream_lost() {
    let mut stream = Stream::default();
    stream
        .shards
        .insert("shard-1".into(), (None, false, vec![]));
    let (h, _stub, stream) = setup(stream).await;
    let controller = h.start_controller().await;
    // Written to the table, but its stream record is gone: only the table tells.
    h.put_release(
        TABLE,
        intent("lost", "prod", "2024-05-01T10:00:00.000000", "9"),
    )
    .await;
    stream.lock().unwrap().trim_next = true;
    let entry = h.finished(TABLE, "lost", 0).await;
    assert_eq!(entry.status, Some(Status::Succeeded), "{entry:?}");
    assert_eq!(
        h.parameters("/bugfarm/images/prod").await["/bugfarm/images/prod/app"].0,
        "r.example/app:9"
    );
    controller.stop().await;
}

#[tokio::test]
async fn a_checkpoint_past_the_retention_restarts_the_shard_and_a_resync_instead_of_failing() {
    let mut stream = Stream::default();
    stream
        .shards
        .insert("shard-1".into(), (None, false, vec![]));
    let (h, _stub, stream) = setup(stream).await;
    let controller = h.start_controller().await;
    let first = intent("r1", "stage", "2024-05-01T10:00:00.000000", "1");
    h.put_release(TABLE, first.clone()).await;
    stream.lock().unwrap().push("shard-1", &first);
    assert_eq!(
        h.finished(TABLE, "r1", 0).await.status,
        Some(Status::Succeeded)
    );
    controller.stop().await;

    // A long outage: the checkpoint is now older than the stream keeps. Meanwhile one
    // intent reached only the table, another is still on the stream.
    h.put_release(
        TABLE,
        intent("lost", "prod", "2024-05-01T11:00:00.000000", "9"),
    )
    .await;
    let fresh = intent("fresh", "stage", "2024-05-01T12:00:00.000000", "7");
    h.put_release(TABLE, fresh.clone()).await;
    {
        let mut stream = stream.lock().unwrap();
        stream.trim_checkpoints = true;
        stream.push("shard-1", &fresh);
    }
    let controller = h.start_controller().await;
    assert_eq!(
        h.finished(TABLE, "lost", 0).await.status,
        Some(Status::Succeeded)
    );
    assert_eq!(
        h.finished(TABLE, "fresh", 0).await.status,
        Some(Status::Succeeded)
    );
    let log = stream.lock().unwrap().log.clone();
    assert!(
        log.iter().any(|(op, _)| op == "GetRecords"),
        "the shard is read again: {log:?}"
    );
    controller.stop().await;
}
