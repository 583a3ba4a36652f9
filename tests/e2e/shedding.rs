//! The HTTP face sheds abusive clients: idle connections held open are closed by the
//! server, one past the limit is closed at once, health answers on its own listener
//! meanwhile and deployments go on; every answer carries the security headers.

use std::time::Duration;

use relctl::model::Status;
use serde_json::json;
use tokio::io::AsyncReadExt;

use crate::support::{Harness, get, get_with_head, release};

// The keys before the first table extend BASE_CONFIG's [http] section.
const CONFIG: &str = r#"
max_connections = 50
header_timeout = "1s"
connection_timeout = "5s"
ops_listen = "127.0.0.1:0"

[[projects]]
id = "bugfarm"
name = "Bug farm"

[[projects.environments]]
id = "stage"
name = "Staging"
"#;

#[tokio::test]
async fn idle_connections_are_shed_while_health_and_deployments_go_on() {
    let h = Harness::new(CONFIG).await;
    let controller = h.start_controller().await;
    let ops = controller.ops_addr.expect("ops listener");
    let mut idle = Vec::new();
    for _ in 0..200 {
        idle.push(
            tokio::net::TcpStream::connect(controller.addr)
                .await
                .expect("connect"),
        );
    }
    // Health and metrics answer on their own listener while the page's is flooded.
    let (status, body) = get(ops, "/healthz").await;
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    let (status, _) = get(ops, "/").await;
    assert_eq!(status, 404, "the page is not served on the ops listener");
    h.put_release(
        "relctl-releases",
        release("r1", "bugfarm", json!({ "app": "r.example/app:1" })),
    )
    .await;
    let entry = h
        .deploy(
            "relctl-releases",
            "r1",
            "stage",
            "2024-05-01T10:00:00.000000",
        )
        .await;
    assert_eq!(entry.status, Some(Status::Succeeded), "{entry:?}");
    // Every idle connection is closed by the server (the bound only guards a hang).
    for (i, mut stream) in idle.into_iter().enumerate() {
        let mut buffer = [0u8; 64];
        let read = tokio::time::timeout(Duration::from_secs(120), stream.read(&mut buffer))
            .await
            .unwrap_or_else(|_| panic!("idle connection {i} was never closed"));
        assert!(
            matches!(read, Ok(0) | Err(_)),
            "idle connection {i} got an answer: {read:?}"
        );
    }
    // And the page's listener serves again.
    let (status, page) = get(controller.addr, "/").await;
    assert_eq!(status, 200, "{page}");
    controller.stop().await;
}

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let h = Harness::new(CONFIG).await;
    let controller = h.start_controller().await;
    for path in ["/", "/metrics", "/healthz", "/readyz"] {
        let (status, head, _) = get_with_head(controller.addr, path).await;
        assert!(status == 200 || status == 503, "{path}: {head}");
        let head = head.to_ascii_lowercase();
        for header in [
            "content-security-policy: default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
            "x-content-type-options: nosniff",
            "x-frame-options: deny",
            "cache-control: no-store",
        ] {
            assert!(head.contains(header), "{path} lacks {header:?}: {head}");
        }
    }
    controller.stop().await;
}
