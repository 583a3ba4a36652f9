//! `relctl controller`: the daemon, stopped gracefully by SIGTERM or SIGINT.

use std::sync::Arc;

use aws_config::SdkConfig;
use tokio_util::sync::CancellationToken;
use tracing::info;

use super::Failure;
use crate::config::Config;

pub async fn run(config: Arc<Config>, sdk: &SdkConfig) -> Result<(), Failure> {
    let shutdown = CancellationToken::new();
    tokio::spawn(signals(shutdown.clone()));
    crate::controller::run(config, sdk, shutdown, Default::default()).await?;
    Ok(())
}

/// The first SIGTERM/SIGINT drains; a second one exits at once (status 1).
async fn signals(shutdown: CancellationToken) {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(error) => {
            tracing::error!(%error, "failed to listen for SIGTERM");
            return;
        }
    };
    for count in 0.. {
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        if count > 0 {
            info!("second signal: exiting now, without draining");
            std::process::exit(1);
        }
        info!("signal received: draining");
        shutdown.cancel();
    }
}
