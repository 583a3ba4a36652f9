//! `relctl health`: the container health check. GETs `/healthz` from a running
//! controller, so the image needs no curl; exit 0 when it answers 200.

use std::{net::SocketAddr, time::Duration};

use clap::Args;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::Failure;

#[derive(Debug, Args)]
pub struct HealthArgs {
    /// The controller's http.listen address.
    #[arg(long, default_value = "127.0.0.1:9090")]
    pub addr: SocketAddr,
}

pub async fn run(args: HealthArgs) -> Result<(), Failure> {
    let probe = async {
        let mut stream = tokio::net::TcpStream::connect(args.addr).await?;
        let request = format!("GET /healthz HTTP/1.0\r\nHost: {}\r\n\r\n", args.addr);
        stream.write_all(request.as_bytes()).await?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await?;
        Ok::<_, std::io::Error>(response)
    };
    let response = tokio::time::timeout(Duration::from_secs(3), probe)
        .await
        .map_err(|_| Failure::refused(format!("{}: no answer within 3s", args.addr)))?
        .map_err(|e| Failure::refused(format!("{}: {e}", args.addr)))?;
    let status = response.split_whitespace().nth(1).unwrap_or_default();
    if status == "200" {
        println!("healthy");
        Ok(())
    } else {
        Err(Failure::refused(format!(
            "{}/healthz answered {status:?}",
            args.addr
        )))
    }
}
