//! Host-name resolution for `server.N` lines and `clientPortAddress`.
//!
//! IP literals never reach a resolver; names go through [`HostResolver`]
//! so tests (and embedders with their own discovery) can replace DNS.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

/// Turns a host name into an address.
pub trait HostResolver {
    /// The address of `host` (a name, never an IP literal) with `port`, or
    /// `None` when it does not resolve.
    fn resolve(&self, host: &str, port: u16) -> Option<SocketAddr>;
}

/// The operating system's resolver (`getaddrinfo` through
/// [`ToSocketAddrs`]), preferring IPv4 answers: ZooKeeper's `localhost`
/// lines mean 127.0.0.1 to Java peers, which prefer IPv4 by default.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl HostResolver for SystemResolver {
    fn resolve(&self, host: &str, port: u16) -> Option<SocketAddr> {
        let addrs: Vec<SocketAddr> = (host, port).to_socket_addrs().ok()?.collect();
        addrs
            .iter()
            .find(|a| a.is_ipv4())
            .or_else(|| addrs.first())
            .copied()
    }
}

/// Resolves `host` (as written, without brackets) for `port`: IP literals
/// directly, names through `resolver`.
pub(crate) fn resolve_host(
    resolver: &dyn HostResolver,
    host: &str,
    port: u16,
) -> Option<SocketAddr> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Some(SocketAddr::new(ip, port));
    }
    // Nothing with whitespace or control characters is a host name; do not
    // bother the system resolver with it.
    if host.is_empty() || host.chars().any(|c| c <= ' ' || c == '\u{7f}') {
        return None;
    }
    resolver.resolve(host, port)
}
