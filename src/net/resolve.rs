//! [`Host`] and [`HostPort`] (an address as configured) and the
//! [`Resolver`]s that look names up: the operating system's and a table
//! for tests.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

/// Looks host names up. Implementations may block (the system resolver
/// waits for DNS); async callers run [`Resolver::lookup`] on a blocking
/// thread.
///
/// zkfle calls it for every connection attempt to a peer configured by
/// name, so a name that starts to resolve, or resolves to a new address,
/// is seen on the next attempt. Implementations should not cache beyond
/// what the system does (glibc re-reads `/etc/hosts` on every lookup; DNS
/// answers are cached by whatever resolver the host runs).
pub trait Resolver: Send + Sync + fmt::Debug {
    /// Every address of `host` (a name, never an IP literal) with `port`,
    /// best first. An empty list or an error means it does not resolve
    /// (now).
    fn lookup(&self, host: &str, port: u16) -> io::Result<Vec<SocketAddr>>;
}

/// The operating system's resolver: `getaddrinfo` (`/etc/hosts`, DNS, ...
/// as `nsswitch.conf` says), through [`ToSocketAddrs`].
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl Resolver for SystemResolver {
    fn lookup(&self, host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
        Ok((host, port).to_socket_addrs()?.collect())
    }
}

/// A resolver backed by a table that tests change while peers run: a name
/// can appear late, move, or vanish. Names are case-insensitive, as in
/// DNS. Cheap to clone; clones share the table.
#[derive(Debug, Clone, Default)]
pub struct FakeResolver {
    inner: Arc<FakeInner>,
}

#[derive(Debug, Default)]
struct FakeInner {
    table: Mutex<HashMap<String, Vec<IpAddr>>>,
    /// Lookups per name (found or not).
    lookups: Mutex<HashMap<String, u64>>,
    total: AtomicU64,
}

impl FakeResolver {
    /// An empty table: nothing resolves.
    pub fn new() -> FakeResolver {
        FakeResolver::default()
    }

    /// `name` resolves to `ip` from now on (replacing what it had).
    pub fn set(&self, name: &str, ip: IpAddr) {
        self.set_all(name, vec![ip]);
    }

    /// `name` resolves to `ips`, in this order, from now on.
    pub fn set_all(&self, name: &str, ips: Vec<IpAddr>) {
        self.inner
            .table
            .lock()
            .insert(name.to_ascii_lowercase(), ips);
    }

    /// `name` no longer resolves.
    pub fn remove(&self, name: &str) {
        self.inner.table.lock().remove(&name.to_ascii_lowercase());
    }

    /// How many times `name` was looked up so far (found or not).
    pub fn lookups(&self, name: &str) -> u64 {
        self.inner
            .lookups
            .lock()
            .get(&name.to_ascii_lowercase())
            .copied()
            .unwrap_or(0)
    }

    /// How many lookups were made of any name.
    pub fn total_lookups(&self) -> u64 {
        self.inner.total.load(Ordering::Relaxed)
    }
}

impl Resolver for FakeResolver {
    fn lookup(&self, host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
        let key = host.to_ascii_lowercase();
        *self.inner.lookups.lock().entry(key.clone()).or_insert(0) += 1;
        self.inner.total.fetch_add(1, Ordering::Relaxed);
        match self.inner.table.lock().get(&key) {
            Some(ips) if !ips.is_empty() => {
                Ok(ips.iter().map(|ip| SocketAddr::new(*ip, port)).collect())
            }
            _ => Err(io::Error::new(
                io::ErrorKind::NotFound,
                "not in the fake resolver's table",
            )),
        }
    }
}

/// The host part of a configured address: an IP literal, used as is, or a
/// name, looked up when a connection is made.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// An IP literal (IPv6 without brackets).
    Ip(IpAddr),
    /// A host name as written (never an IP literal). A scoped IPv6 literal
    /// such as `fe80::1%eth0` is kept here too: only `getaddrinfo` knows
    /// the interface.
    Name(String),
}

/// Why a host text is not a host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{host:?} is not an IP address or a host name")]
pub struct BadHost {
    /// The text as given.
    pub host: String,
}

impl Host {
    /// Reads a host as written (IPv6 without brackets): an IP literal, or a
    /// name made of letters, digits, `-`, `_` and dot-separated labels of at
    /// most 63 characters (253 in all; one trailing dot allowed). Anything
    /// else (spaces, control characters, empty labels, `/`, ...) can never
    /// resolve and is refused here, so a typo fails at startup rather than
    /// being retried for ever.
    pub fn parse(text: &str) -> Result<Host, BadHost> {
        if let Ok(ip) = text.parse::<IpAddr>() {
            return Ok(Host::Ip(ip));
        }
        let bad = || BadHost { host: text.into() };
        if let Some((ip, scope)) = text.split_once('%') {
            let scope_ok = !scope.is_empty()
                && scope
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
            return if ip.parse::<Ipv6Addr>().is_ok() && scope_ok {
                Ok(Host::Name(text.into()))
            } else {
                Err(bad())
            };
        }
        let name = text.strip_suffix('.').unwrap_or(text);
        if name.is_empty() || name.len() > 253 {
            return Err(bad());
        }
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        };
        if name.split('.').all(label_ok) {
            Ok(Host::Name(text.into()))
        } else {
            Err(bad())
        }
    }

    /// The name, if this is one.
    pub fn name(&self) -> Option<&str> {
        match self {
            Host::Name(n) => Some(n),
            Host::Ip(_) => None,
        }
    }
}

impl fmt::Display for Host {
    /// The host as written, IPv6 without brackets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Ip(ip) => write!(f, "{ip}"),
            Host::Name(n) => f.write_str(n),
        }
    }
}

/// Why an address did not resolve.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The lookup failed (unknown name, no DNS answer, ...).
    #[error("cannot resolve {host}: {source}")]
    Lookup {
        /// The name.
        host: String,
        /// What the resolver said.
        #[source]
        source: io::Error,
    },
    /// The lookup succeeded without an address.
    #[error("{host} resolves to no address")]
    NoAddress {
        /// The name.
        host: String,
    },
    /// The lookup did not answer in time (only from callers that bound it,
    /// such as the election transport).
    #[error("looking up {host} took longer than {after:?}")]
    TimedOut {
        /// The name.
        host: String,
        /// The bound.
        after: Duration,
    },
}

/// A host and a port as configured (`server.N` election or quorum address,
/// a client address). A name stays a name: [`HostPort::resolve`] looks it
/// up each time it is called.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPort {
    host: Host,
    port: u16,
}

impl HostPort {
    /// `host` (see [`Host`]) and `port`.
    pub fn new(host: Host, port: u16) -> HostPort {
        HostPort { host, port }
    }

    /// The host.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// True if the host is a name, to be looked up at every connection.
    pub fn is_name(&self) -> bool {
        matches!(self.host, Host::Name(_))
    }

    /// The socket address of an IP literal host; `None` for a name.
    pub fn literal(&self) -> Option<SocketAddr> {
        match self.host {
            Host::Ip(ip) => Some(SocketAddr::new(ip, self.port)),
            Host::Name(_) => None,
        }
    }

    /// The address to connect to or bind now: an IP literal as is, a name
    /// through `resolver` (blocking), its first IPv4 answer if it has one,
    /// else its first. IPv4 first because that is what a Java 3.8 peer
    /// picks by default (`java.net.preferIPv6Addresses=false`): `localhost`
    /// means 127.0.0.1 to both.
    pub fn resolve(&self, resolver: &dyn Resolver) -> Result<SocketAddr, ResolveError> {
        let name = match &self.host {
            Host::Ip(ip) => return Ok(SocketAddr::new(*ip, self.port)),
            Host::Name(n) => n,
        };
        let addrs = resolver
            .lookup(name, self.port)
            .map_err(|source| ResolveError::Lookup {
                host: name.clone(),
                source,
            })?;
        addrs
            .iter()
            .find(|a| a.is_ipv4())
            .or_else(|| addrs.first())
            .copied()
            .ok_or_else(|| ResolveError::NoAddress { host: name.clone() })
    }
}

impl From<SocketAddr> for HostPort {
    fn from(a: SocketAddr) -> HostPort {
        HostPort::new(Host::Ip(a.ip()), a.port())
    }
}

impl fmt::Display for HostPort {
    /// `host:port`, an IPv6 host in brackets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]:{}", self.port),
            Host::Name(n) if n.contains(':') => write!(f, "[{n}]:{}", self.port),
            h => write!(f, "{h}:{}", self.port),
        }
    }
}

/// Why a `host:port` text is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not host:port")]
pub struct BadHostPort {
    /// The text as given.
    pub text: String,
}

impl FromStr for HostPort {
    type Err = BadHostPort;

    /// `host:port`, `1.2.3.4:port` or `[v6]:port`, the port 1..65535.
    fn from_str(s: &str) -> Result<HostPort, BadHostPort> {
        let bad = || BadHostPort { text: s.into() };
        let (host, port) = match s.strip_prefix('[') {
            Some(rest) => {
                let (h, p) = rest.split_once("]:").ok_or_else(bad)?;
                (h, p)
            }
            None => {
                let (h, p) = s.rsplit_once(':').ok_or_else(bad)?;
                if h.contains(':') {
                    return Err(bad());
                }
                (h, p)
            }
        };
        let port: u16 = port.parse().map_err(|_| bad())?;
        if port == 0 {
            return Err(bad());
        }
        let host = Host::parse(host).map_err(|_| bad())?;
        Ok(HostPort::new(host, port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn hp(s: &str) -> HostPort {
        s.parse().unwrap()
    }

    #[test]
    fn hosts_are_literals_or_well_formed_names() {
        assert_eq!(Host::parse("10.0.0.1"), Ok(Host::Ip([10, 0, 0, 1].into())));
        assert_eq!(Host::parse("::1"), Ok(Host::Ip(Ipv6Addr::LOCALHOST.into())));
        for name in [
            "zk1",
            "zk-0.zk-hs.default.svc.cluster.local",
            "ZK1.Example.",
            "under_score",
            "fe80::1%eth0",
        ] {
            assert_eq!(Host::parse(name), Ok(Host::Name(name.into())), "{name}");
        }
        for bad in [
            "",
            ".",
            "a..b",
            "h o s t",
            "tab\there",
            "slash/x",
            "café",
            "1.2.3.4.5:",
            "fe80::1%",
            "zz::1%eth0",
            "a".repeat(64).as_str(),
            ["ab"; 130].join(".").as_str(),
        ] {
            assert!(Host::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn host_port_text_round_trips() {
        for s in ["zk1:3888", "10.0.0.1:2888", "[::1]:3888", "a.b.c:1"] {
            assert_eq!(hp(s).to_string(), s);
        }
        assert!(hp("zk1:3888").is_name());
        assert_eq!(
            hp("[::1]:3888").literal(),
            Some("[::1]:3888".parse().unwrap())
        );
        for bad in [
            "zk1",
            "zk1:0",
            "zk1:65536",
            "::1:3888",
            "[::1]3888",
            ":1",
            "h o:1",
        ] {
            assert!(bad.parse::<HostPort>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn literals_never_reach_the_resolver() {
        let r = FakeResolver::new();
        assert_eq!(
            hp("10.0.0.1:3888").resolve(&r).unwrap(),
            "10.0.0.1:3888".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(r.total_lookups(), 0);
    }

    #[test]
    fn names_are_looked_up_every_time_and_prefer_ipv4() {
        let r = FakeResolver::new();
        let a = hp("ZK1:3888");
        assert!(matches!(a.resolve(&r), Err(ResolveError::Lookup { .. })));
        r.set_all(
            "zk1",
            vec![
                Ipv6Addr::LOCALHOST.into(),
                Ipv4Addr::new(10, 0, 0, 1).into(),
            ],
        );
        assert_eq!(a.resolve(&r).unwrap().to_string(), "10.0.0.1:3888");
        r.set("zk1", Ipv4Addr::new(10, 0, 0, 9).into());
        assert_eq!(a.resolve(&r).unwrap().to_string(), "10.0.0.9:3888");
        r.set_all("zk1", vec![Ipv6Addr::LOCALHOST.into()]);
        assert_eq!(a.resolve(&r).unwrap().to_string(), "[::1]:3888");
        r.remove("zk1");
        assert!(a.resolve(&r).is_err());
        assert_eq!(r.lookups("zk1"), 5);
    }

    #[test]
    fn the_system_resolver_reads_localhost() {
        let a = hp("localhost:3888").resolve(&SystemResolver).unwrap();
        assert!(a.ip().is_loopback());
        assert_eq!(a.port(), 3888);
    }
}
