//! Stage 2 of reading `zoo.cfg`: every entry by its key. Scalar settings
//! are collected (with their lines, where a later stage may need to name
//! them), quorum lines (`server.N`, `group.N`, `weight.N`) are set aside for
//! the quorum stages, and the keys zkfle does not use are kept in
//! [`ZkConfig::extra`](super::ZkConfig::extra), warned about when unknown.

use std::path::{Path, PathBuf};

use super::error::{ConfigError, PortKind, Problem};
use super::parse::entry_err;
use super::props::RawEntry;
use super::server_line::parse_learner_type;
use super::tls::TlsSwitches;
use super::values::{parse_bool, parse_decode_int, parse_int, parse_positive};
use super::LearnerType;
use super::{admin, security};

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
    "authProvider.",
    "audit.",
    "kvAddress.",
];

/// Scalar settings as written (validated one by one; defaults and
/// cross-checks come in the last stage).
#[derive(Debug)]
pub(super) struct Scalars {
    pub tick_time: Option<i64>,
    pub init_limit: Option<i64>,
    pub sync_limit: Option<i64>,
    pub data_dir: Option<(usize, PathBuf)>,
    pub data_log_dir: Option<PathBuf>,
    pub client_port: Option<(usize, i64)>,
    pub client_port_address: Option<(usize, String)>,
    pub cnx_timeout: Option<i64>,
    pub quorum_cnxn_timeout: Option<i64>,
    pub bind_retry: Option<(usize, i64)>,
    pub listen_on_all_ips: bool,
    pub multi_address_enabled: bool,
    /// `zkfle.fastDecide` (default true).
    pub fast_decide: bool,
    /// `zkfle.preferredLeader` and its line.
    pub preferred_leader: Option<(usize, i64)>,
    pub min_notification: Option<i64>,
    pub max_notification: Option<i64>,
    pub standalone_enabled: bool,
    pub reconfig_enabled: bool,
    pub peer_type: Option<(usize, LearnerType)>,
    pub config_version: i64,
    /// `4lw.commands.whitelist` as written.
    pub four_letter_words: Option<String>,
    /// `metricsProvider.className` said Prometheus.
    pub prometheus: bool,
    /// `metricsProvider.httpHost` and its line.
    pub metrics_host: Option<(usize, String)>,
    /// `metricsProvider.httpPort`.
    pub metrics_port: Option<u16>,
    /// `sslQuorum`, `portUnification`, `sslQuorumReloadCertFiles`.
    pub tls: TlsSwitches,
}

impl Default for Scalars {
    fn default() -> Self {
        Scalars {
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
            preferred_leader: None,
            min_notification: None,
            max_notification: None,
            // ZooKeeper's defaults.
            standalone_enabled: true,
            reconfig_enabled: false,
            peer_type: None,
            config_version: 0,
            four_letter_words: None,
            prometheus: false,
            metrics_host: None,
            metrics_port: None,
            tls: TlsSwitches::default(),
        }
    }
}

/// What the key stage makes of the (deduplicated) entries.
#[derive(Debug, Default)]
pub(super) struct Keys {
    /// Scalar settings.
    pub s: Scalars,
    /// `dynamicConfigFile` and its line, if given.
    pub dynamic_file: Option<(usize, PathBuf)>,
    /// `server.N` entries, in file order.
    pub servers: Vec<RawEntry>,
    /// `group*` entries.
    pub groups: Vec<RawEntry>,
    /// `weight*` entries.
    pub weights: Vec<RawEntry>,
    /// Keys zkfle does not use, as (line, key, value).
    pub extra: Vec<(usize, String, String)>,
    /// `ssl.quorum.*` entries, as (line, key, value), read by the TLS
    /// stage once the switches are known.
    pub tls_entries: Vec<(usize, String, String)>,
}

/// Sorts `entries` of the file at `path` by key, checking each scalar.
pub(super) fn classify(path: &Path, entries: &[&RawEntry]) -> Result<Keys, ConfigError> {
    let shown = path.display();
    let mut k = Keys::default();
    for &e in entries {
        let (line, key, value) = (e.line, e.key.as_str(), e.value.as_str());
        let err = |p| entry_err(path, line, key, p);
        match key {
            "tickTime" => k.s.tick_time = Some(parse_positive(value).map_err(err)?),
            "initLimit" => k.s.init_limit = Some(parse_positive(value).map_err(err)?),
            "syncLimit" => k.s.sync_limit = Some(parse_positive(value).map_err(err)?),
            "dataDir" | "dataLogDir" => {
                if value.is_empty() {
                    return Err(err(Problem::EmptyValue));
                }
                if key == "dataDir" {
                    k.s.data_dir = Some((line, PathBuf::from(value)));
                } else {
                    k.s.data_log_dir = Some(PathBuf::from(value));
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
                k.s.client_port = Some((line, port));
            }
            "clientPortAddress" => {
                if value.is_empty() {
                    return Err(err(Problem::EmptyValue));
                }
                k.s.client_port_address = Some((line, value.to_string()));
            }
            "cnxTimeout" => k.s.cnx_timeout = Some(parse_positive(value).map_err(err)?),
            "quorumCnxnTimeoutMs" => {
                k.s.quorum_cnxn_timeout = Some(parse_decode_int(value).map_err(err)?)
            }
            "electionPortBindRetry" => {
                k.s.bind_retry = Some((line, parse_decode_int(value).map_err(err)?))
            }
            "quorumListenOnAllIPs" => k.s.listen_on_all_ips = parse_bool(value).map_err(err)?,
            "multiAddress.enabled" => k.s.multi_address_enabled = parse_bool(value).map_err(err)?,
            "zkfle.fastDecide" => k.s.fast_decide = parse_bool(value).map_err(err)?,
            "zkfle.preferredLeader" => {
                let sid = parse_decode_int(value).map_err(err)?;
                if sid < 0 {
                    return Err(err(Problem::NegativeSid { sid }));
                }
                k.s.preferred_leader = Some((line, sid));
            }
            "fastleader.minNotificationInterval" | "fastleader.maxNotificationInterval" => {
                let v = parse_decode_int(value).map_err(err)?;
                if v <= 0 {
                    return Err(err(Problem::NotPositive { value: v }));
                }
                if key.ends_with("minNotificationInterval") {
                    k.s.min_notification = Some(v);
                } else {
                    k.s.max_notification = Some(v);
                }
            }
            "standaloneEnabled" => k.s.standalone_enabled = parse_bool(value).map_err(err)?,
            "reconfigEnabled" => {
                k.s.reconfig_enabled = parse_bool(value).map_err(err)?;
                if k.s.reconfig_enabled {
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
            "peerType" => k.s.peer_type = Some((line, parse_learner_type(value).map_err(err)?)),
            "version" => {
                // Read as hex, like ZooKeeper's QuorumVerifier does.
                k.s.config_version = i64::from_str_radix(value, 16).map_err(|_| {
                    err(Problem::NotAnInteger {
                        value: value.into(),
                    })
                })?;
            }
            "dynamicConfigFile" => {
                if value.is_empty() {
                    return Err(err(Problem::EmptyValue));
                }
                k.dynamic_file = Some((line, PathBuf::from(value)));
            }
            "4lw.commands.whitelist" => k.s.four_letter_words = Some(value.to_string()),
            "metricsProvider.className" => {
                k.s.prometheus = admin::metrics_provider(value).map_err(err)?;
            }
            "metricsProvider.httpHost" => {
                if value.is_empty() {
                    return Err(err(Problem::EmptyValue));
                }
                k.s.metrics_host = Some((line, value.to_string()));
            }
            "metricsProvider.httpPort" => {
                k.s.metrics_port = Some(admin::metrics_port(value).map_err(err)?);
            }
            "sslQuorum" => k.s.tls.ssl_quorum = parse_bool(value).map_err(err)?,
            "portUnification" => k.s.tls.port_unification = parse_bool(value).map_err(err)?,
            "sslQuorumReloadCertFiles" => {
                k.s.tls.reload_cert_files = parse_bool(value).map_err(err)?
            }
            _ if key.starts_with("ssl.quorum.") => {
                k.tls_entries
                    .push((line, key.to_string(), value.to_string()));
            }
            _ if security::is_switch(key) => security::check(key, value).map_err(err)?,
            _ if key.starts_with("server.") => k.servers.push(e.clone()),
            _ if key.starts_with("group") => k.groups.push(e.clone()),
            _ if key.starts_with("weight") => k.weights.push(e.clone()),
            _ => {
                let known = KNOWN_UNUSED.contains(&key)
                    || KNOWN_UNUSED_PREFIXES.iter().any(|p| key.starts_with(p));
                if !known {
                    log::warn!("{shown}:{line}: unknown key {key}: ignored");
                } else if key == "oraclePath" {
                    log::warn!(
                        "{shown}:{line}: oraclePath: zkfle does not implement the two-node oracle quorum; ignored"
                    );
                } else {
                    log::debug!("{shown}:{line}: {key} accepted, not used by zkfle");
                }
                k.extra.push((line, key.to_string(), value.to_string()));
            }
        }
    }
    Ok(k)
}
