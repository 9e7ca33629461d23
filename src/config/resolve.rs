//! Host names in `zoo.cfg`: checked for syntax when the file is read,
//! looked up when connecting (see [`crate::net`]).
//!
//! Reading a configuration never fails because a name does not resolve:
//! peers' names are looked up again at every connection, and this
//! server's own election address is resolved when it is bound (with
//! `electionPortBindRetry`'s retries). The lookups made here only fill the
//! `*_addrs` snapshots of [`super::ServerSpec`] and check the addresses
//! this server binds without retrying (`clientPortAddress`, a `;host:port`
//! client part of its own line, `metricsProvider.httpHost`).

use crate::net::{BadHost, Host, HostPort};

/// Parses `host` (as written, without brackets) with `port`.
pub(crate) fn host_port(host: &str, port: u16) -> Result<HostPort, BadHost> {
    Ok(HostPort::new(Host::parse(host)?, port))
}
