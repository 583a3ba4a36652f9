//! `relctl health`: the container health check. GETs `/healthz` from a running
//! controller, so the image needs no curl; exit 0 when it answers 200. The address is
//! `--addr`, else the configuration's `http.listen` (as the controller reads it, from
//! `--config`, `RELCTL_CONFIG_TOML` or `RELCTL_HTTP__LISTEN`), asked on loopback when it
//! listens on every interface.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    path::Path,
    time::Duration,
};

use clap::Args;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::Failure;
use crate::config::Config;

#[derive(Debug, Args)]
pub struct HealthArgs {
    /// The controller's address; default: the configuration's http.listen.
    #[arg(long)]
    pub addr: Option<SocketAddr>,
}

/// Where to reach a controller that listens on `listen`.
fn reach(listen: SocketAddr) -> Result<SocketAddr, Failure> {
    if listen.port() == 0 {
        return Err(Failure::refused(format!(
            "http.listen is {listen}: a controller on port 0 picks its port at start; pass --addr"
        )));
    }
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    Ok(SocketAddr::new(ip, listen.port()))
}

pub async fn run(config: Option<&Path>, args: HealthArgs) -> Result<(), Failure> {
    let addr = match args.addr {
        Some(addr) => addr,
        None => reach(Config::load(config)?.http.listen)?,
    };
    let probe = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        let request = format!("GET /healthz HTTP/1.0\r\nHost: {addr}\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await?;
        Ok::<_, std::io::Error>(response)
    };
    let response = tokio::time::timeout(Duration::from_secs(3), probe)
        .await
        .map_err(|_| Failure::refused(format!("{addr}: no answer within 3s")))?
        .map_err(|e| Failure::refused(format!("{addr}: {e}")))?;
    let status = response.split_whitespace().nth(1).unwrap_or_default();
    if status == "200" {
        out!("healthy");
        Ok(())
    } else {
        Err(Failure::refused(format!(
            "{addr}/healthz answered {status:?}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_interface_is_reached_on_loopback_and_port_zero_is_refused() {
        assert_eq!(
            reach("0.0.0.0:9090".parse().unwrap()).unwrap(),
            "127.0.0.1:9090".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(
            reach("10.0.0.5:8080".parse().unwrap()).unwrap(),
            "10.0.0.5:8080".parse::<SocketAddr>().unwrap()
        );
        assert!(reach("127.0.0.1:0".parse().unwrap()).is_err());
    }
}
