//! Reading `zoo.cfg`, stage by stage, from entries to a validated
//! [`ZkConfig`], with ZooKeeper 3.8's meanings, defaults and checks
//! (`QuorumPeerConfig`, `QuorumMaj`, `QuorumHierarchical`, `QuorumServer`),
//! plus the checks zkfle adds so a bad file fails at startup with its line
//! and key instead of later:
//!
//! 1. lex ([`super::props`]) and keep the last value of a repeated key;
//! 2. sort entries by key and check each scalar ([`super::keys`]);
//! 3. read the quorum lines from a `dynamicConfigFile` ([`super::dynamic`]);
//! 4. parse and resolve `server.N` ([`super::servers`]);
//! 5. build the voting configuration ([`super::hierarchy`]);
//! 6. check the ensemble's shape, then apply defaults and cross-checks,
//!    read `myid` and find this server (here).

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::net::Resolver;

use super::admin::{DEFAULT_METRICS_HOST, DEFAULT_METRICS_PORT};
use super::dynamic::load_quorum_lines;
use super::error::{ConfigError, MyIdProblem, Problem};
use super::hierarchy::build_verifier;
use super::keys::{classify, Scalars};
use super::props::{java_trim, parse_properties, RawEntry};
use super::resolve::host_port;
use super::servers::parse_servers;
use super::{FourLetterWords, LearnerType, MetricsConfig, ZkConfig};

/// ZooKeeper's `DEFAULT_TICK_TIME`.
const DEFAULT_TICK_MS: u64 = 3000;
/// `QuorumCnxManager`'s default connect timeout.
const DEFAULT_CNX_TIMEOUT_MS: u64 = 5000;
/// `Listener`'s `DEFAULT_PORT_BIND_MAX_RETRY`.
const DEFAULT_BIND_RETRY: u32 = 3;
/// FLE's `finalizeWait`, the default minimum notification interval.
const DEFAULT_MIN_NOTIFICATION_MS: u64 = 200;
/// FLE's default maximum notification interval.
const DEFAULT_MAX_NOTIFICATION_MS: u64 = 60_000;

/// An error about one entry of the file at `path`.
pub(super) fn entry_err(path: &Path, line: usize, key: &str, problem: Problem) -> ConfigError {
    ConfigError::Entry {
        path: path.to_path_buf(),
        line,
        key: key.to_string(),
        problem,
    }
}

/// Parses and validates `text` as the `zoo.cfg` at `path`.
pub(crate) fn parse_config(
    text: &str,
    path: &Path,
    my_sid: Option<i64>,
    resolver: Arc<dyn Resolver>,
) -> Result<ZkConfig, ConfigError> {
    let file_err = |problem: Problem| ConfigError::File {
        path: path.to_path_buf(),
        problem,
    };
    let shown = path.display();

    let raw = parse_properties(text)
        .map_err(|e| entry_err(path, e.line, &e.key, Problem::MalformedUnicodeEscape))?;

    let entries = last_values(path, &raw);

    // Stages 2-5.
    let mut keys = classify(path, &entries)?;
    let quorum_src = load_quorum_lines(path, &mut keys)?;
    let qerr =
        |line: usize, key: &str, problem: Problem| entry_err(&quorum_src, line, key, problem);
    let servers = parse_servers(
        &quorum_src,
        &keys.servers,
        keys.s.multi_address_enabled,
        &*resolver,
    )?;
    let participants: BTreeSet<i64> = servers
        .specs
        .iter()
        .filter(|s| s.learner_type == LearnerType::Participant)
        .map(|s| s.sid)
        .collect();
    let verifier = build_verifier(
        path,
        &quorum_src,
        &servers,
        &participants,
        &keys.groups,
        &keys.weights,
    )?;
    let s = keys.s;
    if let Some((line, sid)) = s.preferred_leader {
        if !verifier.is_voter(sid) {
            return Err(entry_err(
                path,
                line,
                "zkfle.preferredLeader",
                Problem::PreferredNotAVoter { sid },
            ));
        }
    }
    let extra = keys.extra;
    let server_lines = servers.lines;
    let servers = servers.specs;

    check_shape(
        path,
        servers.len(),
        participants.len(),
        s.standalone_enabled,
    )?;

    // --- required and derived scalars ---
    let Some((data_dir_line, data_dir)) = s.data_dir.clone() else {
        return Err(file_err(Problem::MissingKey { key: "dataDir" }));
    };
    let Some(init_limit) = s.init_limit else {
        return Err(file_err(Problem::MissingKey { key: "initLimit" }));
    };
    let Some(sync_limit) = s.sync_limit else {
        return Err(file_err(Problem::MissingKey { key: "syncLimit" }));
    };
    // Positive i32 values: these conversions cannot fail.
    let init_limit = u32::try_from(init_limit).unwrap_or(u32::MAX);
    let sync_limit = u32::try_from(sync_limit).unwrap_or(u32::MAX);
    let tick_ms = s.tick_time.map_or(DEFAULT_TICK_MS, |t| {
        u64::try_from(t).unwrap_or(DEFAULT_TICK_MS)
    });

    let static_client = match (s.client_port, &s.client_port_address) {
        (None | Some((_, 0)), Some((line, _))) => {
            return Err(entry_err(
                path,
                *line,
                "clientPortAddress",
                Problem::ClientPortAddressWithoutPort,
            ))
        }
        (None | Some((_, 0)), None) => None,
        (Some((_, port)), None) => Some(SocketAddr::new(
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            u16::try_from(port).unwrap_or(0),
        )),
        (Some((_, port)), Some((line, host))) => {
            let port = u16::try_from(port).unwrap_or(0);
            Some(
                resolve_now(&*resolver, host, port)
                    .map_err(|problem| entry_err(path, *line, "clientPortAddress", problem))?,
            )
        }
    };

    let (my_sid, sid_source) = match my_sid {
        Some(sid) => (sid, "--myid".to_string()),
        None => (
            read_myid(path, &data_dir, Some(data_dir_line))?,
            data_dir.join("myid").display().to_string(),
        ),
    };
    let Some(me) = servers.iter().find(|s| s.sid == my_sid) else {
        return Err(ConfigError::NotListed {
            config: path.to_path_buf(),
            sid: my_sid,
            source_desc: sid_source,
            configured: servers
                .iter()
                .map(|s| s.sid.to_string())
                .collect::<Vec<_>>()
                .join(", "),
        });
    };
    let my_line = server_lines.get(&my_sid).copied().unwrap_or(0);
    if let (Some(client), None) = (&me.client, me.client_addr) {
        // This server binds its client address (four-letter words) once,
        // without retries: it must resolve now.
        return Err(qerr(
            my_line,
            &format!("server.{my_sid}"),
            Problem::Unresolvable {
                host: client.host().to_string(),
            },
        ));
    }

    // The server line's client address wins, but must agree with a static
    // clientPort/clientPortAddress (QuorumPeerConfig.setupClientPort).
    let client_addr = match (me.client_addr, static_client) {
        (Some(line_addr), Some(static_addr)) => {
            let clash = if static_addr.ip().is_unspecified() {
                static_addr.port() != line_addr.port()
            } else {
                static_addr != line_addr
            };
            if clash {
                return Err(qerr(
                    my_line,
                    &format!("server.{my_sid}"),
                    Problem::ClientAddressMismatch {
                        line_addr,
                        static_addr,
                    },
                ));
            }
            Some(line_addr)
        }
        (a, b) => a.or(b),
    };

    if let Some((line, given)) = s.peer_type {
        if given != me.learner_type {
            // ZooKeeper warns and goes with the servers list, which every
            // peer shares; so does zkfle.
            log::warn!(
                "{shown}:{line}: peerType {:?} contradicts server.{my_sid} (line {my_line}), which makes it {:?}; using the server line",
                given,
                me.learner_type
            );
        }
    }

    let election_port_bind_retry = match s.bind_retry {
        None => DEFAULT_BIND_RETRY,
        Some((line, v)) if v < 0 => {
            log::warn!(
                "{shown}:{line}: electionPortBindRetry {v} must be >= 0; using the default {DEFAULT_BIND_RETRY}"
            );
            DEFAULT_BIND_RETRY
        }
        Some((_, v)) => u32::try_from(v).unwrap_or(DEFAULT_BIND_RETRY),
    };

    let metrics = metrics_config(path, &s, &*resolver)?;
    let quorum_tls = super::tls::settings(path, &s.tls, &keys.tls_entries)?;

    let handshake_ms = match s.quorum_cnxn_timeout {
        Some(t) if t > 0 => u64::try_from(t).unwrap_or(0),
        _ => tick_ms.saturating_mul(u64::from(sync_limit)),
    };
    let to_ms =
        |v: Option<i64>, default: u64| v.and_then(|v| u64::try_from(v).ok()).unwrap_or(default);
    let min_notification_ms = to_ms(s.min_notification, DEFAULT_MIN_NOTIFICATION_MS);
    let max_notification_ms = to_ms(s.max_notification, DEFAULT_MAX_NOTIFICATION_MS);
    if min_notification_ms > max_notification_ms {
        log::warn!(
            "{shown}: fastleader.minNotificationInterval {min_notification_ms} exceeds fastleader.maxNotificationInterval {max_notification_ms}; the election re-sends every {max_notification_ms} ms"
        );
    }

    Ok(ZkConfig {
        path: path.to_path_buf(),
        my_sid,
        tick_time: Duration::from_millis(tick_ms),
        init_limit,
        sync_limit,
        data_dir,
        data_log_dir: s.data_log_dir,
        client_addr,
        cnx_timeout: Duration::from_millis(to_ms(s.cnx_timeout, DEFAULT_CNX_TIMEOUT_MS)),
        handshake_timeout: Duration::from_millis(handshake_ms),
        election_port_bind_retry,
        listen_on_all_ips: s.listen_on_all_ips,
        multi_address_enabled: s.multi_address_enabled,
        fast_decide: s.fast_decide,
        preferred_leader: s.preferred_leader.map(|(_, sid)| sid),
        min_notification_interval: Duration::from_millis(min_notification_ms),
        max_notification_interval: Duration::from_millis(max_notification_ms),
        servers,
        verifier,
        peer_type: s.peer_type.map(|(_, t)| t),
        standalone_enabled: s.standalone_enabled,
        reconfig_enabled: s.reconfig_enabled,
        config_version: s.config_version,
        four_letter_words: FourLetterWords::parse(s.four_letter_words.as_deref()),
        metrics,
        quorum_tls,
        extra,
        resolver,
    })
}

/// `host` with `port`, resolved now (an address bound without retries).
fn resolve_now(resolver: &dyn Resolver, host: &str, port: u16) -> Result<SocketAddr, Problem> {
    let hp = host_port(host, port).map_err(|_| Problem::BadHost { host: host.into() })?;
    hp.resolve(resolver)
        .map_err(|_| Problem::Unresolvable { host: host.into() })
}

/// Stage 1b: Properties keep the last value of a repeated key. Quorum lines
/// are not deduplicated here: a repeated sid is an error in a later stage.
fn last_values<'a>(path: &Path, raw: &'a [RawEntry]) -> Vec<&'a RawEntry> {
    let shown = path.display();
    let mut last_index: HashMap<&str, usize> = HashMap::new();
    for (i, e) in raw.iter().enumerate() {
        if is_quorum_key(&e.key) {
            continue;
        }
        if let Some(prev) = last_index.insert(&e.key, i) {
            log::warn!(
                "{shown}:{}: {} repeats line {}; the later value wins, as in ZooKeeper",
                e.line,
                e.key,
                raw[prev].line
            );
        }
    }
    raw.iter()
        .enumerate()
        .filter(|(i, e)| is_quorum_key(&e.key) || last_index.get(e.key.as_str()) == Some(i))
        .map(|(_, e)| e)
        .collect()
}

/// Stage 6a: the ensemble's shape, as `QuorumPeerConfig.parseDynamicConfig`
/// checks it (and warns about it).
fn check_shape(
    path: &Path,
    servers: usize,
    participants: usize,
    standalone_enabled: bool,
) -> Result<(), ConfigError> {
    let shown = path.display();
    let file_err = |problem: Problem| ConfigError::File {
        path: path.to_path_buf(),
        problem,
    };
    let observers = servers - participants;
    if participants == 0 {
        return Err(file_err(if observers > 0 {
            Problem::ObserversOnly
        } else {
            Problem::NoServers
        }));
    }
    if participants == 1 {
        if standalone_enabled && observers > 0 {
            return Err(file_err(Problem::ObserversWithoutQuorum));
        }
        log::warn!(
            "{shown}: only one participant: ZooKeeper would run it standalone; zkfle runs a one-voter ensemble"
        );
    } else if participants <= 2 {
        log::warn!("{shown}: no server failure will be tolerated; you need at least 3 servers");
    } else if participants % 2 == 0 {
        log::warn!("{shown}: non-optimal configuration, consider an odd number of servers");
    }
    Ok(())
}

/// Stage 6c: where `GET /metrics` is served, if the Prometheus provider
/// is configured (`PrometheusMetricsProvider` binds `httpHost:httpPort`,
/// default `0.0.0.0:7000`).
fn metrics_config(
    path: &Path,
    s: &Scalars,
    resolver: &dyn Resolver,
) -> Result<Option<MetricsConfig>, ConfigError> {
    if !s.prometheus {
        return Ok(None);
    }
    let port = s.metrics_port.unwrap_or(DEFAULT_METRICS_PORT);
    let (line, host) = match &s.metrics_host {
        Some((line, host)) => (Some(*line), host.as_str()),
        None => (None, DEFAULT_METRICS_HOST),
    };
    let addr = resolve_now(resolver, host, port).map_err(|problem| {
        entry_err(path, line.unwrap_or(0), "metricsProvider.httpHost", problem)
    })?;
    Ok(Some(MetricsConfig {
        addr,
        host_text: host.to_string(),
    }))
}

/// Keys whose repeats are errors (by id) rather than "last one wins".
fn is_quorum_key(key: &str) -> bool {
    key.starts_with("server.") || key.starts_with("group") || key.starts_with("weight")
}

/// Reads `dataDir/myid` the way ZooKeeper does: the first line, as a
/// signed 64-bit integer (zkfle also tolerates surrounding whitespace).
fn read_myid(
    config: &Path,
    data_dir: &Path,
    data_dir_line: Option<usize>,
) -> Result<i64, ConfigError> {
    let myid = data_dir.join("myid");
    let err = |problem| ConfigError::MyId {
        config: config.to_path_buf(),
        data_dir_line,
        myid: myid.clone(),
        problem,
    };
    if !myid.is_file() {
        return Err(err(MyIdProblem::Missing));
    }
    let bytes = std::fs::read(&myid).map_err(|e| err(MyIdProblem::Unreadable(e)))?;
    let text = String::from_utf8_lossy(&bytes);
    let first = text.split(['\n', '\r']).next().unwrap_or("");
    let sid: i64 = java_trim(first).parse().map_err(|_| {
        err(MyIdProblem::NotANumber {
            text: first.to_string(),
        })
    })?;
    if sid < 0 {
        return Err(err(MyIdProblem::Negative { sid }));
    }
    Ok(sid)
}
