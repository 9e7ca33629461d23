//! From `zoo.cfg` entries to a validated [`ZkConfig`], with ZooKeeper
//! 3.8's meanings, defaults and checks (`QuorumPeerConfig`, `QuorumMaj`,
//! `QuorumHierarchical`, `QuorumServer`), plus the checks zkfle adds so a
//! bad file fails at startup with its line and key instead of later.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::error::{ConfigError, MyIdProblem, PortKind, Problem};
use super::props::{java_trim, parse_properties, RawEntry};
use super::resolve::{resolve_host, HostResolver};
use super::{LearnerType, QuorumVerifier, ServerSpec, ZkConfig};

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

/// ZooKeeper keys zkfle accepts without using them (no warning; they end
/// up in [`ZkConfig::extra`]).
const KNOWN_UNUSED: &[&str] = &[
    "localSessionsEnabled",
    "localSessionsUpgradingEnabled",
    "secureClientPort",
    "secureClientPortAddress",
    "observerMasterPort",
    "clientPortListenBacklog",
    "maxClientCnxns",
    "minSessionTimeout",
    "maxSessionTimeout",
    "connectToLearnerMasterLimit",
    "syncEnabled",
    "sslQuorum",
    "portUnification",
    "sslQuorumReloadCertFiles",
    "quorum.cnxn.threads.size",
    "multiAddress.reachabilityCheckTimeoutMs",
    "multiAddress.reachabilityCheckEnabled",
    "oraclePath",
    "snapCount",
    "snapSizeLimitInKb",
    "txnLogSizeLimitInKb",
    "preAllocSize",
    "forceSync",
    "globalOutstandingLimit",
    "leaderServes",
    "skipACL",
    "tcpKeepAlive",
    "serverCnxnFactory",
    "fsync.warningthresholdms",
    "maxCnxns",
    "commitLogCount",
    "digest.enabled",
    "learner.asyncSending",
    "learner.closeSocketAsync",
    "leader.closeSocketAsync",
];

/// Prefixes of ZooKeeper key families zkfle accepts without using them;
/// `kvAddress.` is zkfle's own (the replicated-store example).
const KNOWN_UNUSED_PREFIXES: &[&str] = &[
    "admin.",
    "ssl.",
    "quorum.auth.",
    "metricsProvider.",
    "jvm.pause.",
    "autopurge.",
    "4lw.",
    "authProvider.",
    "audit.",
    "kvAddress.",
];

/// Keys that switch on something zkfle does not implement when true.
const UNSUPPORTED_WHEN_TRUE: &[&str] = &["sslQuorum", "quorum.auth.enableSasl", "portUnification"];

/// What [`parse_server_value`] makes of a `server.N` value before
/// resolution.
#[derive(Debug)]
struct ServerText {
    /// (host as written, quorum port, election port) per `|` address.
    addrs: Vec<(String, u16, u16)>,
    /// Role, if any address gave one.
    learner_type: Option<LearnerType>,
    /// (host, port) after `;` (host `0.0.0.0` when only a port is given).
    client: Option<(String, u16)>,
}

/// Java's `String.split` with a one-character pattern: the whole string
/// when the separator does not occur, else the pieces minus trailing
/// empty ones.
fn java_split(s: &str, sep: char) -> Vec<&str> {
    if !s.contains(sep) {
        return vec![s];
    }
    let mut v: Vec<&str> = s.split(sep).collect();
    while v.last() == Some(&"") {
        v.pop();
    }
    v
}

/// ZooKeeper's host/port splitter: `[v6]:a:b` keeps the bracketed host
/// whole, anything else splits on `:`.
fn host_and_ports(s: &str) -> Result<Vec<&str>, Problem> {
    if let Some(rest) = s.strip_prefix('[') {
        let Some(close) = rest.find(']') else {
            return Err(Problem::UnclosedBracket { value: s.into() });
        };
        let host = &rest[..close];
        let after = &rest[close + 1..];
        if after.is_empty() {
            return Ok(vec![host]);
        }
        let Some(ports) = after.strip_prefix(':') else {
            return Err(Problem::UnclosedBracket { value: s.into() });
        };
        if ports.is_empty() {
            return Err(Problem::ServerFormat { value: s.into() });
        }
        let mut v = vec![host];
        v.extend(java_split(ports, ':'));
        Ok(v)
    } else {
        Ok(java_split(s, ':'))
    }
}

/// A port field: an integer (Java `parseInt` syntax) in 1..65535.
fn parse_port(text: &str, kind: PortKind) -> Result<u16, Problem> {
    let value: i64 = text.parse().map_err(|_| Problem::PortNotANumber {
        kind,
        value: text.into(),
    })?;
    match u16::try_from(value) {
        Ok(p) if p != 0 => Ok(p),
        _ => Err(Problem::PortOutOfRange { kind, value }),
    }
}

/// `participant` / `observer`, trimmed and case-insensitive as ZooKeeper
/// reads them.
fn parse_learner_type(text: &str) -> Result<LearnerType, Problem> {
    match java_trim(text).to_ascii_lowercase().as_str() {
        "participant" => Ok(LearnerType::Participant),
        "observer" => Ok(LearnerType::Observer),
        _ => Err(Problem::UnknownPeerType { value: text.into() }),
    }
}

/// Splits a `server.N` value into its parts (3.4 and 3.8 syntax,
/// multi-address, IPv6 brackets).
fn parse_server_value(value: &str, multi_address_enabled: bool) -> Result<ServerText, Problem> {
    let format = || Problem::ServerFormat {
        value: value.into(),
    };
    let halves = java_split(value, ';');
    if halves.is_empty() || halves.len() > 2 {
        return Err(format());
    }
    let client = match halves.get(1) {
        None => None,
        Some(text) => {
            let parts = host_and_ports(text)?;
            let (host, port) = match parts.as_slice() {
                // A bare port listens on every interface, as in ZooKeeper.
                [port] => ("0.0.0.0", *port),
                [host, port] => (*host, *port),
                _ => return Err(format()),
            };
            if host.is_empty() {
                return Err(format());
            }
            Some((host.to_string(), parse_port(port, PortKind::Client)?))
        }
    };
    let mut addrs = Vec::new();
    let mut learner_type = None;
    let pieces = java_split(halves[0], '|');
    if pieces.len() > 1 && !multi_address_enabled {
        return Err(Problem::MultiAddressDisabled);
    }
    for addr in pieces {
        let parts = host_and_ports(addr)?;
        if parts.len() < 3 || parts.len() > 4 || parts[0].is_empty() {
            return Err(format());
        }
        let quorum = parse_port(parts[1], PortKind::Quorum)?;
        let election = parse_port(parts[2], PortKind::Election)?;
        if quorum == election {
            return Err(Problem::SamePorts { port: quorum });
        }
        if let Some(t) = parts.get(3) {
            let t = parse_learner_type(t)?;
            if learner_type.is_some_and(|prev| prev != t) {
                return Err(Problem::MixedPeerTypes);
            }
            learner_type = Some(t);
        }
        addrs.push((parts[0].to_string(), quorum, election));
    }
    if addrs.is_empty() {
        return Err(format());
    }
    Ok(ServerText {
        addrs,
        learner_type,
        client,
    })
}

/// Java's `int` range, which every integer key of zoo.cfg is read into.
fn within_i32(v: i64) -> Result<i64, Problem> {
    if v < i64::from(i32::MIN) || v > i64::from(i32::MAX) {
        return Err(Problem::OutOfRange {
            value: v,
            min: i32::MIN.into(),
            max: i32::MAX.into(),
        });
    }
    Ok(v)
}

/// Java `Integer.parseInt`: optional sign, decimal digits, 32-bit range.
fn parse_int(value: &str) -> Result<i64, Problem> {
    let v: i64 = value.parse().map_err(|_| Problem::NotAnInteger {
        value: value.into(),
    })?;
    within_i32(v)
}

/// Java `Integer.decode`, which `Integer.getInteger` uses for the keys
/// ZooKeeper reads as system properties: `0x`/`#` hex, leading-`0` octal,
/// else decimal. (Java silently falls back to the default on a bad value;
/// zkfle rejects it.)
fn parse_decode_int(value: &str) -> Result<i64, Problem> {
    let bad = || Problem::NotAnInteger {
        value: value.into(),
    };
    let (neg, body) = match value.as_bytes().first() {
        Some(b'-') => (true, &value[1..]),
        Some(b'+') => (false, &value[1..]),
        _ => (false, value),
    };
    let (radix, digits) = if let Some(h) = body
        .strip_prefix("0x")
        .or_else(|| body.strip_prefix("0X"))
        .or_else(|| body.strip_prefix('#'))
    {
        (16, h)
    } else if body.len() > 1 && body.starts_with('0') {
        (8, &body[1..])
    } else {
        (10, body)
    };
    if digits.is_empty() || digits.starts_with(['+', '-']) {
        return Err(bad());
    }
    let mag = i64::from_str_radix(digits, radix).map_err(|_| bad())?;
    let v = if neg { -mag } else { mag };
    within_i32(v)
}

/// ZooKeeper's boolean keys: `true`/`false`, any case.
fn parse_bool(value: &str) -> Result<bool, Problem> {
    if value.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if value.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(Problem::NotABoolean {
            value: value.into(),
        })
    }
}

/// A strictly positive 32-bit integer.
fn parse_positive(value: &str) -> Result<i64, Problem> {
    let v = parse_int(value)?;
    if v <= 0 {
        return Err(Problem::NotPositive { value: v });
    }
    Ok(v)
}

/// The numeric id after the first `.` of `server.N`, `group.N`,
/// `weight.N` (ZooKeeper takes everything after the first dot).
fn key_id(key: &str) -> Result<i64, Problem> {
    let text = key.split_once('.').map_or(key, |(_, id)| id);
    text.parse()
        .map_err(|_| Problem::BadId { text: text.into() })
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

/// Collects scalar settings while walking the entries.
struct Scalars {
    tick_time: Option<i64>,
    init_limit: Option<i64>,
    sync_limit: Option<i64>,
    data_dir: Option<(usize, PathBuf)>,
    data_log_dir: Option<PathBuf>,
    client_port: Option<(usize, i64)>,
    client_port_address: Option<(usize, String)>,
    cnx_timeout: Option<i64>,
    quorum_cnxn_timeout: Option<i64>,
    bind_retry: Option<(usize, i64)>,
    listen_on_all_ips: bool,
    multi_address_enabled: bool,
    fast_decide: bool,
    min_notification: Option<i64>,
    max_notification: Option<i64>,
    standalone_enabled: bool,
    reconfig_enabled: bool,
    peer_type: Option<(usize, LearnerType)>,
    config_version: i64,
}

/// Parses and validates `text` as the `zoo.cfg` at `path`.
pub(crate) fn parse_config(
    text: &str,
    path: &Path,
    my_sid: Option<i64>,
    resolver: &dyn HostResolver,
) -> Result<ZkConfig, ConfigError> {
    let entry_err = |line: usize, key: &str, problem: Problem| ConfigError::Entry {
        path: path.to_path_buf(),
        line,
        key: key.to_string(),
        problem,
    };
    let file_err = |problem: Problem| ConfigError::File {
        path: path.to_path_buf(),
        problem,
    };
    let shown = path.display();

    let raw = parse_properties(text)
        .map_err(|e| entry_err(e.line, &e.key, Problem::MalformedUnicodeEscape))?;

    // Properties keep the last value of a repeated key. Quorum lines are
    // not deduplicated here: a repeated sid is an error below.
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
    let entries: Vec<&RawEntry> = raw
        .iter()
        .enumerate()
        .filter(|(i, e)| is_quorum_key(&e.key) || last_index.get(e.key.as_str()) == Some(i))
        .map(|(_, e)| e)
        .collect();

    let mut s = Scalars {
        tick_time: None,
        init_limit: None,
        sync_limit: None,
        data_dir: None,
        data_log_dir: None,
        client_port: None,
        client_port_address: None,
        cnx_timeout: None,
        quorum_cnxn_timeout: None,
        bind_retry: None,
        listen_on_all_ips: false,
        multi_address_enabled: false,
        fast_decide: true,
        min_notification: None,
        max_notification: None,
        standalone_enabled: true,
        reconfig_enabled: false,
        peer_type: None,
        config_version: 0,
    };
    // Declared before the entry lists that borrow from it.
    let dyn_raw: Vec<RawEntry>;
    let mut dynamic_file: Option<(usize, PathBuf)> = None;
    let mut server_entries: Vec<&RawEntry> = Vec::new();
    let mut group_entries: Vec<&RawEntry> = Vec::new();
    let mut weight_entries: Vec<&RawEntry> = Vec::new();
    let mut extra: Vec<(usize, String, String)> = Vec::new();

    for e in &entries {
        let (line, key, value) = (e.line, e.key.as_str(), e.value.as_str());
        let err = |p| entry_err(line, key, p);
        match key {
            "tickTime" => s.tick_time = Some(parse_positive(value).map_err(err)?),
            "initLimit" => s.init_limit = Some(parse_positive(value).map_err(err)?),
            "syncLimit" => s.sync_limit = Some(parse_positive(value).map_err(err)?),
            "dataDir" | "dataLogDir" => {
                if value.is_empty() {
                    return Err(err(Problem::EmptyValue));
                }
                if key == "dataDir" {
                    s.data_dir = Some((line, PathBuf::from(value)));
                } else {
                    s.data_log_dir = Some(PathBuf::from(value));
                }
            }
            "clientPort" => {
                let port = parse_int(value).map_err(err)?;
                // 0 means "not set" to ZooKeeper.
                if port != 0 && !(1..=65535).contains(&port) {
                    return Err(err(Problem::PortOutOfRange {
                        kind: PortKind::Client,
                        value: port,
                    }));
                }
                s.client_port = Some((line, port));
            }
            "clientPortAddress" => {
                if value.is_empty() {
                    return Err(err(Problem::EmptyValue));
                }
                s.client_port_address = Some((line, value.to_string()));
            }
            "cnxTimeout" => s.cnx_timeout = Some(parse_positive(value).map_err(err)?),
            "quorumCnxnTimeoutMs" => {
                s.quorum_cnxn_timeout = Some(parse_decode_int(value).map_err(err)?)
            }
            "electionPortBindRetry" => {
                s.bind_retry = Some((line, parse_decode_int(value).map_err(err)?))
            }
            "quorumListenOnAllIPs" => s.listen_on_all_ips = parse_bool(value).map_err(err)?,
            "multiAddress.enabled" => s.multi_address_enabled = parse_bool(value).map_err(err)?,
            "zkfle.fastDecide" => s.fast_decide = parse_bool(value).map_err(err)?,
            "fastleader.minNotificationInterval" | "fastleader.maxNotificationInterval" => {
                let v = parse_decode_int(value).map_err(err)?;
                if v <= 0 {
                    return Err(err(Problem::NotPositive { value: v }));
                }
                if key.ends_with("minNotificationInterval") {
                    s.min_notification = Some(v);
                } else {
                    s.max_notification = Some(v);
                }
            }
            "standaloneEnabled" => s.standalone_enabled = parse_bool(value).map_err(err)?,
            "reconfigEnabled" => {
                s.reconfig_enabled = parse_bool(value).map_err(err)?;
                if s.reconfig_enabled {
                    log::warn!(
                        "{shown}:{line}: reconfigEnabled=true: zkfle never reconfigures; membership stays as configured here"
                    );
                }
            }
            "electionAlg" => {
                let v = parse_int(value).map_err(err)?;
                if v != 3 {
                    return Err(err(Problem::ElectionAlg { value: v }));
                }
            }
            "peerType" => s.peer_type = Some((line, parse_learner_type(value).map_err(err)?)),
            "version" => {
                // Read as hex, like ZooKeeper's QuorumVerifier does.
                s.config_version = i64::from_str_radix(value, 16).map_err(|_| {
                    err(Problem::NotAnInteger {
                        value: value.into(),
                    })
                })?;
            }
            "dynamicConfigFile" => {
                if value.is_empty() {
                    return Err(err(Problem::EmptyValue));
                }
                dynamic_file = Some((line, PathBuf::from(value)));
            }
            _ if key.starts_with("server.") => server_entries.push(e),
            _ if key.starts_with("group") => group_entries.push(e),
            _ if key.starts_with("weight") => weight_entries.push(e),
            _ => {
                let known = KNOWN_UNUSED.contains(&key)
                    || KNOWN_UNUSED_PREFIXES.iter().any(|p| key.starts_with(p));
                if !known {
                    log::warn!("{shown}:{line}: unknown key {key}: ignored");
                } else if UNSUPPORTED_WHEN_TRUE.contains(&key) && value.eq_ignore_ascii_case("true")
                {
                    log::warn!(
                        "{shown}:{line}: {key}=true: zkfle does not implement this; its peer links are plain TCP"
                    );
                } else if key == "oraclePath" {
                    log::warn!(
                        "{shown}:{line}: oraclePath: zkfle does not implement the two-node oracle quorum; ignored"
                    );
                } else {
                    log::debug!("{shown}:{line}: {key} accepted, not used by zkfle");
                }
                extra.push((line, key.to_string(), value.to_string()));
            }
        }
    }

    // --- dynamicConfigFile: the quorum lines live in another file ---
    // (ZooKeeper moves them there when reconfig is enabled; a server
    // switched from Java to zkfle keeps reading the same files.)
    let quorum_src: PathBuf = match &dynamic_file {
        None => path.to_path_buf(),
        Some((line, file)) => {
            let inline = server_entries
                .iter()
                .chain(&group_entries)
                .chain(&weight_entries)
                .min_by_key(|e| e.line);
            if let Some(e) = inline {
                return Err(entry_err(
                    e.line,
                    &e.key,
                    Problem::QuorumKeyOutsideDynamicFile { file: file.clone() },
                ));
            }
            let dyn_err = |line: usize, key: &str, problem| ConfigError::Entry {
                path: file.clone(),
                line,
                key: key.to_string(),
                problem,
            };
            let bytes = super::read_capped(file).map_err(|e| {
                entry_err(
                    *line,
                    "dynamicConfigFile",
                    Problem::DynamicFileUnreadable {
                        file: file.clone(),
                        reason: e.to_string(),
                    },
                )
            })?;
            let text = super::decode_text(bytes);
            dyn_raw = parse_properties(&text)
                .map_err(|e| dyn_err(e.line, &e.key, Problem::MalformedUnicodeEscape))?;
            for e in &dyn_raw {
                if e.key.starts_with("server.") {
                    server_entries.push(e);
                } else if e.key.starts_with("group") {
                    group_entries.push(e);
                } else if e.key.starts_with("weight") {
                    weight_entries.push(e);
                } else if e.key == "version" {
                    return Err(dyn_err(e.line, &e.key, Problem::VersionInDynamicFile));
                } else {
                    return Err(dyn_err(e.line, &e.key, Problem::NotADynamicKey));
                }
            }
            // `zoo.cfg.dynamic.100000000` is version 0x100000000; a name
            // without a hex suffix is version 0.
            s.config_version = file
                .to_string_lossy()
                .rsplit_once('.')
                .and_then(|(_, v)| i64::from_str_radix(v, 16).ok())
                .unwrap_or(0);
            file.clone()
        }
    };
    let qerr = |line: usize, key: &str, problem: Problem| ConfigError::Entry {
        path: quorum_src.clone(),
        line,
        key: key.to_string(),
        problem,
    };

    // --- server.N lines ---
    let mut servers: Vec<ServerSpec> = Vec::new();
    let mut server_lines: BTreeMap<i64, usize> = BTreeMap::new();
    let mut used_addrs: HashMap<SocketAddr, i64> = HashMap::new();
    for e in &server_entries {
        let err = |p| qerr(e.line, &e.key, p);
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
        let st = parse_server_value(&e.value, s.multi_address_enabled).map_err(err)?;
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
    let participants: BTreeSet<i64> = servers
        .iter()
        .filter(|s| s.learner_type == LearnerType::Participant)
        .map(|s| s.sid)
        .collect();
    let role_of = |sid: i64| {
        servers
            .iter()
            .find(|s| s.sid == sid)
            .map(|s| s.learner_type)
    };

    // --- group./weight. lines (hierarchical quorums) ---
    let hierarchical = !group_entries.is_empty() || !weight_entries.is_empty();
    let verifier = if hierarchical {
        let mut groups: BTreeMap<i64, BTreeSet<i64>> = BTreeMap::new();
        let mut group_lines: BTreeMap<i64, usize> = BTreeMap::new();
        let mut group_of: BTreeMap<i64, i64> = BTreeMap::new();
        for e in &group_entries {
            let err = |p| qerr(e.line, &e.key, p);
            if !e.key.starts_with("group.") {
                return Err(err(Problem::BadId {
                    text: e.key.clone(),
                }));
            }
            let gid = key_id(&e.key).map_err(err)?;
            if let Some(first_line) = group_lines.insert(gid, e.line) {
                return Err(err(Problem::Duplicate {
                    what: "group",
                    id: gid,
                    first_line,
                }));
            }
            let mut members = BTreeSet::new();
            for m in java_split(&e.value, ':') {
                let sid: i64 = m
                    .parse()
                    .map_err(|_| err(Problem::BadId { text: m.into() }))?;
                if let Some(&other_gid) = group_of.get(&sid) {
                    return Err(err(Problem::InTwoGroups { sid, other_gid }));
                }
                match role_of(sid) {
                    None => return Err(err(Problem::UnknownMember { sid })),
                    Some(LearnerType::Observer) => {
                        return Err(err(Problem::ObserverMember { sid }))
                    }
                    Some(LearnerType::Participant) => {}
                }
                group_of.insert(sid, gid);
                members.insert(sid);
            }
            groups.insert(gid, members);
        }
        let mut weights: BTreeMap<i64, u64> = BTreeMap::new();
        let mut weight_lines: BTreeMap<i64, usize> = BTreeMap::new();
        for e in &weight_entries {
            let err = |p| qerr(e.line, &e.key, p);
            if !e.key.starts_with("weight.") {
                return Err(err(Problem::BadId {
                    text: e.key.clone(),
                }));
            }
            let sid = key_id(&e.key).map_err(err)?;
            if let Some(first_line) = weight_lines.insert(sid, e.line) {
                return Err(err(Problem::Duplicate {
                    what: "weight",
                    id: sid,
                    first_line,
                }));
            }
            let w: i64 = e.value.parse().map_err(|_| {
                err(Problem::NotAnInteger {
                    value: e.value.clone(),
                })
            })?;
            let w = u64::try_from(w).map_err(|_| {
                err(Problem::OutOfRange {
                    value: w,
                    min: 0,
                    max: i64::MAX,
                })
            })?;
            match role_of(sid) {
                None => return Err(err(Problem::UnknownMember { sid })),
                Some(LearnerType::Observer) => return Err(err(Problem::ObserverMember { sid })),
                Some(LearnerType::Participant) => {}
            }
            weights.insert(sid, w);
        }
        for &sid in &participants {
            if !group_of.contains_key(&sid) {
                let line = server_lines.get(&sid).copied().unwrap_or(0);
                return Err(qerr(
                    line,
                    &format!("server.{sid}"),
                    Problem::NotInGroup { sid },
                ));
            }
            // Participants without a weight line weigh 1, as in ZooKeeper.
            weights.entry(sid).or_insert(1);
        }
        let live = groups
            .values()
            .any(|m| m.iter().any(|s| weights.get(s).copied().unwrap_or(0) > 0));
        if !participants.is_empty() && !live {
            return Err(file_err(Problem::AllGroupsZeroWeight));
        }
        QuorumVerifier::Hierarchical { groups, weights }
    } else {
        QuorumVerifier::majority(participants.iter().copied())
    };

    // --- ensemble shape, as QuorumPeerConfig.parseDynamicConfig checks it ---
    let observers = servers.len() - participants.len();
    if participants.is_empty() {
        return Err(file_err(if observers > 0 {
            Problem::ObserversOnly
        } else {
            Problem::NoServers
        }));
    }
    if participants.len() == 1 {
        if s.standalone_enabled && observers > 0 {
            return Err(file_err(Problem::ObserversWithoutQuorum));
        }
        log::warn!(
            "{shown}: only one participant: ZooKeeper would run it standalone; zkfle runs a one-voter ensemble"
        );
    } else if participants.len() <= 2 {
        log::warn!("{shown}: no server failure will be tolerated; you need at least 3 servers");
    } else if participants.len() % 2 == 0 {
        log::warn!("{shown}: non-optimal configuration, consider an odd number of servers");
    }

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
            Some(resolve_host(resolver, host, port).ok_or_else(|| {
                entry_err(
                    *line,
                    "clientPortAddress",
                    Problem::Unresolvable { host: host.clone() },
                )
            })?)
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
        min_notification_interval: Duration::from_millis(min_notification_ms),
        max_notification_interval: Duration::from_millis(max_notification_ms),
        servers,
        verifier,
        peer_type: s.peer_type.map(|(_, t)| t),
        standalone_enabled: s.standalone_enabled,
        reconfig_enabled: s.reconfig_enabled,
        config_version: s.config_version,
        extra,
    })
}

/// Keys whose repeats are errors (by id) rather than "last one wins".
fn is_quorum_key(key: &str) -> bool {
    key.starts_with("server.") || key.starts_with("group") || key.starts_with("weight")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_split_drops_trailing_empties_only() {
        assert_eq!(java_split("a:b:c", ':'), vec!["a", "b", "c"]);
        assert_eq!(java_split("a:b::", ':'), vec!["a", "b"]);
        assert_eq!(java_split(":a", ':'), vec!["", "a"]);
        assert_eq!(java_split("", ':'), vec![""]);
        assert!(java_split(":::", ':').is_empty());
    }

    #[test]
    fn host_and_ports_handles_ipv6_brackets() {
        assert_eq!(
            host_and_ports("[::1]:2888:3888").unwrap(),
            vec!["::1", "2888", "3888"]
        );
        assert_eq!(
            host_and_ports("[fe80::1]:1:2:observer").unwrap(),
            vec!["fe80::1", "1", "2", "observer"]
        );
        assert!(matches!(
            host_and_ports("[::1:2888"),
            Err(Problem::UnclosedBracket { .. })
        ));
        assert!(matches!(
            host_and_ports("[::1]x2888"),
            Err(Problem::UnclosedBracket { .. })
        ));
        assert!(matches!(
            host_and_ports("[::1]:"),
            Err(Problem::ServerFormat { .. })
        ));
    }

    #[test]
    fn decode_int_follows_java_integer_decode() {
        assert_eq!(parse_decode_int("10"), Ok(10));
        assert_eq!(parse_decode_int("0x10"), Ok(16));
        assert_eq!(parse_decode_int("#10"), Ok(16));
        assert_eq!(parse_decode_int("010"), Ok(8));
        assert_eq!(parse_decode_int("-5"), Ok(-5));
        assert_eq!(parse_decode_int("0"), Ok(0));
        assert!(parse_decode_int("0x").is_err());
        assert!(parse_decode_int("--5").is_err());
        assert!(parse_decode_int("08").is_err());
        assert!(parse_decode_int("4294967296").is_err());
    }

    #[test]
    fn server_value_shapes() {
        let st = parse_server_value("h:1:2", false).unwrap();
        assert_eq!(st.addrs, vec![("h".to_string(), 1, 2)]);
        assert_eq!(st.learner_type, None);
        assert!(st.client.is_none());
        let st = parse_server_value("h:1:2:OBSERVER;2181", false).unwrap();
        assert_eq!(st.learner_type, Some(LearnerType::Observer));
        assert_eq!(st.client, Some(("0.0.0.0".to_string(), 2181)));
        let st = parse_server_value("a:1:2|b:3:4;[::1]:2181", true).unwrap();
        assert_eq!(st.addrs.len(), 2);
        assert_eq!(st.client, Some(("::1".to_string(), 2181)));
        // A trailing ';' (empty client part) is dropped, as Java's split does.
        assert!(parse_server_value("h:1:2;", false)
            .unwrap()
            .client
            .is_none());
        for bad in [
            "",
            "h:1",
            "h:1:2:3:4",
            "h:1:2;a;b",
            ";2181",
            "h:1:2;a:b:c",
            ":1:2",
        ] {
            assert!(parse_server_value(bad, true).is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            parse_server_value("h:1:2:participant|h2:3:4:observer", true).unwrap_err(),
            Problem::MixedPeerTypes
        );
        assert_eq!(
            parse_server_value("a:1:2|b:3:4", false).unwrap_err(),
            Problem::MultiAddressDisabled
        );
        assert_eq!(
            parse_server_value("h:5:5", false).unwrap_err(),
            Problem::SamePorts { port: 5 }
        );
    }
}
