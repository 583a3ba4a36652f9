//! Benchmarks of the hot in-process paths, printed, never asserted (timed assertions
//! are flaky on small machines). Run: `cargo run --release --example bench`.
//!
//! - queue: schedule and hand out 10,000 environments (a full resync's worth);
//! - decode: 10,000 release items from DynamoDB's attribute values;
//! - new intents: diffing old and new images of an item with 200 deployments;
//! - plan: resolving and diffing a 1,000-service release.

use std::{collections::HashMap, hint::black_box, time::Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use relctl::{
    model::{EnvKey, Images, new_intents, plan, resolve_images},
    queue::{Priority, Queue},
    store::releases::decode,
};
use serde_json::json;

fn report(name: &str, n: usize, started: Instant) {
    let elapsed = started.elapsed();
    println!(
        "{name:<40} {n:>7} in {:>9.3} ms  ({:>10.0} per second)",
        elapsed.as_secs_f64() * 1e3,
        n as f64 / elapsed.as_secs_f64()
    );
}

fn item(i: usize, deployments: usize) -> HashMap<String, AttributeValue> {
    let entries: Vec<_> = (0..deployments)
        .map(|d| json!({ "date_created": format!("2024-05-01T10:{:02}:{:02}.000000", d / 60 % 60, d % 60),
                         "environment": { "id": format!("e{}", d % 10), "name": "E" },
                         "requested_by": { "id": "a", "name": "b" }, "status": "succeeded" }))
        .collect();
    serde_dynamo::to_item(json!({
        "release_id": format!("r{i}"), "project_id": "bugfarm", "date_created": "2024-05-01T09:00:00.000000",
        "images": { "a": "r.example/a:1", "b": "r.example/b:1", "c": "ref.abc" },
        "deployments": entries,
    }))
    .expect("item")
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let n = 10_000;
    let queue = Queue::new();
    let started = Instant::now();
    for i in 0..n {
        queue.schedule(
            EnvKey::new("p", format!("e{i}")),
            std::time::Duration::ZERO,
            Priority::Resync,
        );
    }
    for _ in 0..n {
        let key = queue.next().await.expect("a key");
        queue.done(&key);
    }
    report("queue: schedule + next + done", n, started);

    let items: Vec<_> = (0..n).map(|i| item(i, 3)).collect();
    let started = Instant::now();
    for item in items {
        black_box(decode(item).expect("decodes"));
    }
    report("decode: release items (3 deployments)", n, started);

    let old = decode(item(0, 199)).expect("decodes");
    let new = decode(item(0, 200)).expect("decodes");
    let started = Instant::now();
    for _ in 0..1_000 {
        black_box(new_intents(Some(&old), &new));
    }
    report("new intents: 200-entry item", 1_000, started);

    let mut release = decode(item(0, 0)).expect("decodes");
    release.images = (0..1_000)
        .map(|s| (format!("s{s}"), Some(format!("r.example/s{s}:2"))))
        .collect();
    let observed: Images = (0..1_000)
        .map(|s| (format!("s{s}"), format!("r.example/s{s}:{}", s % 2 + 1)))
        .collect();
    let started = Instant::now();
    for _ in 0..100 {
        let desired = resolve_images(&release, None).expect("resolves");
        black_box(plan(&desired, &observed));
    }
    report("resolve + plan: 1,000-service release", 100, started);
}
