//! A `moto_server` child on 127.0.0.1, on a port the OS picks (`-p 0`), so tests never
//! share a server or race for a port. Killed when dropped.

use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::Duration,
};

pub struct Moto {
    child: Child,
    pub endpoint: String,
}

/// `MOTO_SERVER`, else the project's own install (`.tools/venv`), else `PATH`.
fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("MOTO_SERVER") {
        return path.into();
    }
    let local = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".tools/venv/bin/moto_server");
    if local.exists() {
        local
    } else {
        "moto_server".into()
    }
}

impl Moto {
    pub fn start() -> Self {
        let bin = binary();
        let mut child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "failed to start {}: {e}; run scripts/test to install it",
                    bin.display()
                )
            });
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, rx) = mpsc::channel();
        // Reads the port from the start-up line, then keeps draining the request log so
        // the pipe never fills and stalls the server.
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(at) = line.find("Running on http://127.0.0.1:") {
                    let port = line[at + "Running on http://127.0.0.1:".len()..]
                        .trim()
                        .to_owned();
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(port);
                    }
                }
            }
        });
        let port = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(port) => port,
            Err(_) => {
                let _ = child.kill();
                panic!("moto_server did not report its port within 60s");
            }
        };
        Self {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
