//! A loopback webhook receiver: records every POST (path, headers, body) and answers
//! 500 to the first `fail_first` of those to `/hook`, for the notification tests.

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicUsize, Ordering},
};

use axum::{
    Router,
    body::Bytes,
    http::{HeaderMap, StatusCode, Uri},
};

#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: String,
}

pub struct Receiver {
    pub url: String,
    pub received: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    /// Answers 500 to the first `fail_first` POSTs to `/hook` (not recorded).
    pub async fn start(fail_first: usize) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let url = format!("http://{}", listener.local_addr().expect("bound address"));
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let failing = Arc::new(AtomicUsize::new(fail_first));
        let app = {
            let (received, failing) = (received.clone(), failing.clone());
            Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
                let (received, failing) = (received.clone(), failing.clone());
                async move {
                    if uri.path() == "/hook"
                        && failing
                            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                            .is_ok()
                    {
                        return StatusCode::INTERNAL_SERVER_ERROR;
                    }
                    received
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(Received {
                            path: uri.path().to_owned(),
                            headers,
                            body: String::from_utf8_lossy(&body).into_owned(),
                        });
                    StatusCode::OK
                }
            })
        };
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url,
            received,
            task,
        }
    }

    /// What was received at `path` so far.
    pub fn at(&self, path: &str) -> Vec<Received> {
        self.received
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}
