//! Sharded construction over Burn's remote backend: `redunet worker` serves
//! this machine's device over WebSocket, `redunet run --workers` connects
//! to the workers as devices. Built with `--features remote`; without it
//! both say how to get it.

use anyhow::Result;
use burn::tensor::Device;

/// The shard devices `--workers` names: `ws://HOST:PORT` for a `redunet
/// worker` (Burn's remote backend), or a local device name (`flex`,
/// `wgpu`, …) for several devices of this machine, through the same code.
pub fn connect(specs: &[String], token: Option<&str>) -> Result<Vec<Device>> {
    specs
        .iter()
        .map(|s| match s.strip_prefix("ws://") {
            Some(_) => remote(s, token),
            None => crate::devices::by_name(s).map_err(anyhow::Error::msg),
        })
        .collect()
}

#[cfg(feature = "remote")]
fn remote(url: &str, token: Option<&str>) -> Result<Device> {
    use burn::remote::RemoteHost;
    let host = RemoteHost::websocket(url);
    let host = match token {
        Some(t) => host.with_credential(t),
        None => host,
    };
    Device::remote_options(&host)
        .init()
        .map_err(|e| anyhow::anyhow!("cannot reach worker {url}: {e}"))
}

/// Serves `device` on `listen` until the process is stopped.
#[cfg(feature = "remote")]
pub fn serve(listen: &str, device: Device, token: Option<&str>) -> Result<()> {
    use burn::server::{RemoteServer, TokenAuthorizer, WebSocketTransport};
    let listener = std::net::TcpListener::bind(listen)
        .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
    let addr = listener.local_addr()?;
    let server = RemoteServer::new([device]);
    let server = match token {
        Some(t) => server
            .with_authorizer(TokenAuthorizer::new(t).map_err(|e| anyhow::anyhow!("token: {e}"))?),
        None => server,
    };
    // The address first, on its own line: a caller that asked for port 0
    // reads the port from it.
    println!("listening on ws://{addr}");
    use std::io::Write;
    std::io::stdout().flush()?;
    server
        .serve(WebSocketTransport::from_listener(listener))
        .map_err(|e| anyhow::anyhow!("worker on {addr}: {e}"))
}

#[cfg(not(feature = "remote"))]
const MISSING: &str = "this build has no remote backend: rebuild with --features remote";

#[cfg(not(feature = "remote"))]
fn remote(url: &str, _token: Option<&str>) -> Result<Device> {
    anyhow::bail!("--workers {url}: {MISSING}")
}

/// Without the remote backend: an error saying how to get one.
#[cfg(not(feature = "remote"))]
pub fn serve(_listen: &str, _device: Device, _token: Option<&str>) -> Result<()> {
    anyhow::bail!("redunet worker: {MISSING}")
}
