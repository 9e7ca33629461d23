//! Stage 4 of reading `zoo.cfg`: the `server.N` lines, parsed. Hosts are
//! kept as written ([`super::ServerAddr`]); names are looked up once here
//! for the `*_addrs` snapshots, and a name that does not resolve yet is no
//! error (see [`super::resolve`]).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::Path;

use super::error::{ConfigError, PortKind, Problem};
use super::parse::entry_err;
use super::props::RawEntry;
use super::resolve::host_port;
use super::server_line::parse_server_value;
use super::values::key_id;
use super::{LearnerType, ServerAddr, ServerSpec};
use crate::net::{Host, HostPort, Resolver};

/// The servers, ascending by sid, and the line each came from.
pub(super) struct Servers {
    /// Every `server.N` line, ascending sid.
    pub specs: Vec<ServerSpec>,
    /// sid → the line of its `server.N` entry.
    pub lines: BTreeMap<i64, usize>,
}

/// What two configured addresses are compared by: the IP, or the name in
/// lower case (DNS names are case-insensitive), and the port.
#[derive(PartialEq, Eq, Hash)]
enum AddrKey {
    Ip(SocketAddr),
    Name(String, u16),
}

fn addr_key(a: &HostPort) -> Option<AddrKey> {
    match a.host() {
        // Wildcard lines (`0.0.0.0` on a server's own line, a common
        // container trick) do not collide with anything.
        Host::Ip(ip) if ip.is_unspecified() => None,
        Host::Ip(ip) => Some(AddrKey::Ip(SocketAddr::new(*ip, a.port()))),
        Host::Name(n) => Some(AddrKey::Name(n.to_ascii_lowercase(), a.port())),
    }
}

/// Parses `entries` (from the file `quorum_src`); looks each name up once
/// with `resolver` for the `*_addrs` snapshots.
pub(super) fn parse_servers(
    quorum_src: &Path,
    entries: &[RawEntry],
    multi_address_enabled: bool,
    resolver: &dyn Resolver,
) -> Result<Servers, ConfigError> {
    let mut servers: Vec<ServerSpec> = Vec::new();
    let mut server_lines: BTreeMap<i64, usize> = BTreeMap::new();
    let mut used_addrs: HashMap<AddrKey, i64> = HashMap::new();
    for e in entries {
        let err = |p| entry_err(quorum_src, e.line, &e.key, p);
        let sid = key_id(&e.key).map_err(err)?;
        if sid < 0 {
            return Err(err(Problem::NegativeSid { sid }));
        }
        if let Some(first_line) = server_lines.insert(sid, e.line) {
            return Err(err(Problem::Duplicate {
                what: "server",
                id: sid,
                first_line,
            }));
        }
        let st = parse_server_value(&e.value, multi_address_enabled).map_err(err)?;
        let bad_host = |host: &String| err(Problem::BadHost { host: host.clone() });
        let mut endpoints = Vec::new();
        let mut quorum_addrs = Vec::new();
        let mut election_addrs = Vec::new();
        let mut hosts = Vec::new();
        for (host, qport, eport) in &st.addrs {
            let quorum = host_port(host, *qport).map_err(|_| bad_host(host))?;
            let election = HostPort::new(quorum.host().clone(), *eport);
            for (kind, addr) in [(PortKind::Quorum, &quorum), (PortKind::Election, &election)] {
                let Some(key) = addr_key(addr) else { continue };
                match used_addrs.get(&key) {
                    Some(&other_sid) if other_sid != sid => {
                        return Err(err(Problem::AddressInUse {
                            kind,
                            addr: addr.clone(),
                            other_sid,
                        }))
                    }
                    _ => {
                        used_addrs.insert(key, sid);
                    }
                }
            }
            match quorum.resolve(resolver) {
                Ok(q) => {
                    quorum_addrs.push(q);
                    election_addrs.push(SocketAddr::new(q.ip(), *eport));
                }
                Err(why) => log::info!(
                    "{}:{}: server.{sid}: {why} (yet); it is looked up again at every connection",
                    quorum_src.display(),
                    e.line,
                ),
            }
            endpoints.push(ServerAddr { quorum, election });
            hosts.push(host.clone());
        }
        let client = match &st.client {
            None => None,
            Some((host, port)) => Some(host_port(host, *port).map_err(|_| bad_host(host))?),
        };
        // Another server's client address is only ever echoed in the
        // committed-config text; this server's own is checked (it binds it)
        // in the last stage.
        let client_addr = client.as_ref().and_then(|c| c.resolve(resolver).ok());
        servers.push(ServerSpec {
            sid,
            quorum_addrs,
            election_addrs,
            learner_type: st.learner_type.unwrap_or(LearnerType::Participant),
            client_addr,
            host_text: hosts.first().cloned().unwrap_or_default(),
            hosts,
            client_host: st.client.as_ref().map(|(h, _)| h.clone()),
            endpoints,
            client,
        });
    }
    servers.sort_by_key(|s| s.sid);
    Ok(Servers {
        specs: servers,
        lines: server_lines,
    })
}
