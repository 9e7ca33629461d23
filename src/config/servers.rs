//! Stage 4 of reading `zoo.cfg`: the `server.N` lines, parsed and their
//! host names resolved (zkfle resolves at startup; see the module docs of
//! [`super`] for how that is stricter than ZooKeeper).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::Path;

use super::error::{ConfigError, PortKind, Problem};
use super::parse::entry_err;
use super::props::RawEntry;
use super::resolve::{resolve_host, HostResolver};
use super::server_line::parse_server_value;
use super::values::key_id;
use super::{LearnerType, ServerSpec};

/// The servers, ascending by sid, and the line each came from.
pub(super) struct Servers {
    /// Every `server.N` line, ascending sid.
    pub specs: Vec<ServerSpec>,
    /// sid → the line of its `server.N` entry.
    pub lines: BTreeMap<i64, usize>,
}

/// Parses and resolves `entries` (from the file `quorum_src`).
pub(super) fn parse_servers(
    quorum_src: &Path,
    entries: &[RawEntry],
    multi_address_enabled: bool,
    resolver: &dyn HostResolver,
) -> Result<Servers, ConfigError> {
    let mut servers: Vec<ServerSpec> = Vec::new();
    let mut server_lines: BTreeMap<i64, usize> = BTreeMap::new();
    let mut used_addrs: HashMap<SocketAddr, i64> = HashMap::new();
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
        let mut quorum_addrs = Vec::new();
        let mut election_addrs = Vec::new();
        let mut hosts = Vec::new();
        for (host, qport, eport) in &st.addrs {
            let base = resolve_host(resolver, host, *qport)
                .ok_or_else(|| err(Problem::Unresolvable { host: host.clone() }))?;
            let q = base;
            let el = SocketAddr::new(base.ip(), *eport);
            for (kind, addr) in [(PortKind::Quorum, q), (PortKind::Election, el)] {
                // Wildcard lines (`0.0.0.0` on a server's own line, a
                // common container trick) do not collide with anything.
                if addr.ip().is_unspecified() {
                    continue;
                }
                match used_addrs.get(&addr) {
                    Some(&other_sid) if other_sid != sid => {
                        return Err(err(Problem::AddressInUse {
                            kind,
                            addr,
                            other_sid,
                        }))
                    }
                    _ => {
                        used_addrs.insert(addr, sid);
                    }
                }
            }
            quorum_addrs.push(q);
            election_addrs.push(el);
            hosts.push(host.clone());
        }
        let (client_addr, client_host) = match &st.client {
            None => (None, None),
            Some((host, port)) => {
                let a = resolve_host(resolver, host, *port)
                    .ok_or_else(|| err(Problem::Unresolvable { host: host.clone() }))?;
                (Some(a), Some(host.clone()))
            }
        };
        servers.push(ServerSpec {
            sid,
            quorum_addrs,
            election_addrs,
            learner_type: st.learner_type.unwrap_or(LearnerType::Participant),
            client_addr,
            host_text: hosts.first().cloned().unwrap_or_default(),
            hosts,
            client_host,
        });
    }
    servers.sort_by_key(|s| s.sid);
    Ok(Servers {
        specs: servers,
        lines: server_lines,
    })
}
