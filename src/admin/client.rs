//! The client side of the four-letter words, for hosts without `nc`:
//! `zkfle 4lw HOST:PORT WORD` and `zkfle status [zoo.cfg | HOST:PORT]`,
//! which prints what ZooKeeper 3.8's `zkServer.sh status` prints (it works
//! against Java servers too; it only needs `srvr`, which ZooKeeper never
//! takes off the whitelist).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::time::Duration;

use crate::config::props::parse_properties;
use crate::config::ZkConfig;

/// How long the client waits to connect and for each read.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a four-letter word got no answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The address does not resolve.
    #[error("cannot resolve {0}")]
    Resolve(String),
    /// Connecting, writing or reading failed.
    #[error("{addr}: {source}")]
    Io {
        /// The address tried.
        addr: String,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
}

/// Sends `word` to `addr` (`host:port`) and returns every byte the server
/// wrote before it closed the connection (empty if it closed without a
/// reply, as ZooKeeper does for a word it does not know).
pub fn send_word(addr: &str, word: &str) -> Result<Vec<u8>, ClientError> {
    let io = |source| ClientError::Io {
        addr: addr.to_string(),
        source,
    };
    let targets: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .map_err(|_| ClientError::Resolve(addr.to_string()))?
        .collect();
    let mut last = None;
    for target in targets {
        match TcpStream::connect_timeout(&target, CLIENT_TIMEOUT) {
            Ok(mut s) => {
                s.set_read_timeout(Some(CLIENT_TIMEOUT)).map_err(io)?;
                s.set_write_timeout(Some(CLIENT_TIMEOUT)).map_err(io)?;
                s.write_all(word.as_bytes()).map_err(io)?;
                let mut out = Vec::new();
                match s.read_to_end(&mut out) {
                    Ok(_) => return Ok(out),
                    // A reset after a complete answer (the server closed
                    // with our bytes unread) still delivered the answer.
                    Err(e) if !out.is_empty() => {
                        log::debug!("{addr}: {e} after {} bytes", out.len());
                        return Ok(out);
                    }
                    Err(e) => return Err(io(e)),
                }
            }
            Err(e) => last = Some(e),
        }
    }
    Err(io(last.unwrap_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::NotFound, "no address")
    })))
}

/// What `status` prints and how it exits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusReport {
    /// Lines for stdout.
    pub stdout: Vec<String>,
    /// Lines for stderr.
    pub stderr: Vec<String>,
    /// The exit status: 0 with a Mode, 1 otherwise (as `zkServer.sh`).
    pub code: u8,
}

/// `zkServer.sh status`'s line when the server does not answer with a Mode.
pub const NOT_RUNNING: &str = "Error contacting service. It is probably not running.";

/// `zkfle status TARGET`: TARGET is a `zoo.cfg` (an existing file) or
/// `host:port`.
pub fn status(target: &str) -> StatusReport {
    let path = Path::new(target);
    let mut r = StatusReport {
        stdout: Vec::new(),
        stderr: Vec::new(),
        code: 1,
    };
    let addr = if path.is_file() {
        r.stderr.push(format!("Using config: {target}"));
        match client_address(path) {
            Ok((host, port)) => {
                r.stdout.push(format!(
                    "Client port found: {port}. Client address: {host}. Client SSL: false."
                ));
                if host.contains(':') {
                    format!("[{host}]:{port}")
                } else {
                    format!("{host}:{port}")
                }
            }
            Err(line) => {
                r.stdout.push(line);
                return r;
            }
        }
    } else {
        target.to_string()
    };
    let mode = send_word(&addr, "srvr").ok().and_then(|bytes| {
        String::from_utf8_lossy(&bytes)
            .lines()
            .find(|l| l.contains("Mode"))
            .map(str::to_string)
    });
    match mode {
        Some(line) => {
            r.stdout.push(line);
            r.code = 0;
        }
        None => r.stdout.push(NOT_RUNNING.to_string()),
    }
    r
}

/// Finds the client address the way `zkServer.sh status` does:
/// `clientPort` (+ `clientPortAddress`, default `localhost`), else this
/// server's `server.N` line's client part (which needs `dataDir/myid`).
/// `Err` carries the line `zkServer.sh` prints when it gives up.
fn client_address(path: &Path) -> Result<(String, u16), String> {
    let give_up = || {
        "Unable to find either secure or unsecure client port in any configs. Terminating."
            .to_string()
    };
    let text = std::fs::read(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    let text: String = text.into_iter().map(char::from).collect();
    let entries = parse_properties(&text).map_err(|_| give_up())?;
    let last = |key: &str| {
        entries
            .iter()
            .rev()
            .find(|e| e.key == key)
            .map(|e| e.value.clone())
    };
    let port = last("clientPort").and_then(|p| p.parse::<u16>().ok().filter(|&p| p != 0));
    if let Some(port) = port {
        let host = last("clientPortAddress").unwrap_or_else(|| "localhost".to_string());
        return Ok((host, port));
    }
    // The server line's `;[host:]port` (ZkConfig reads myid for us).
    let cfg = ZkConfig::load(path, None).map_err(|e| {
        log::debug!("status: {e}");
        give_up()
    })?;
    match cfg.client_addr {
        Some(a) if a.ip().is_unspecified() => Ok(("localhost".to_string(), a.port())),
        Some(a) => Ok((a.ip().to_string(), a.port())),
        None => Err(give_up()),
    }
}
