//! Errors from reading `zoo.cfg` and `myid`.
//!
//! Every message names the file; where a single line is at fault it also
//! names the line number and the key, the way an operator reads it:
//! `zoo.cfg:7: server.2: election port 70000 out of range`.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use thiserror::Error;

/// Why `zoo.cfg` (or the `myid` it points to) was rejected.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The configuration file could not be read at all.
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        /// The configuration file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// One line (one key) is wrong.
    #[error("{}:{line}: {key}: {problem}", path.display())]
    Entry {
        /// The configuration file.
        path: PathBuf,
        /// 1-based line where the entry starts (continuation lines belong
        /// to the line they continue).
        line: usize,
        /// The key as written (after escapes and trimming).
        key: String,
        /// What is wrong with it.
        problem: Problem,
    },
    /// Something about the file as a whole is wrong (a required key is
    /// missing, there are no servers, ...).
    #[error("{}: {problem}", path.display())]
    File {
        /// The configuration file.
        path: PathBuf,
        /// What is wrong.
        problem: Problem,
    },
    /// This server's id could not be established from `dataDir/myid`.
    #[error("{}{}: myid file {}: {problem}", config.display(), LineRef(*data_dir_line), myid.display())]
    MyId {
        /// The configuration file whose `dataDir` was used.
        config: PathBuf,
        /// The `dataDir` line, if there was one.
        data_dir_line: Option<usize>,
        /// The `myid` file that was (or would have been) read.
        myid: PathBuf,
        /// What is wrong with it.
        problem: MyIdProblem,
    },
    /// This server's id (from `myid` or `--myid`) is not a `server.N` line.
    #[error("{}: my id {sid} (from {source_desc}) is not among the server.N lines (configured: {configured})", config.display())]
    NotListed {
        /// The configuration file.
        config: PathBuf,
        /// The id that was looked for.
        sid: i64,
        /// Where the id came from (`--myid` or the myid file's path).
        source_desc: String,
        /// The configured sids, comma separated, for the message.
        configured: String,
    },
}

impl ConfigError {
    /// The file the error is about (the dynamic config file for its own
    /// lines, `zoo.cfg` otherwise, the myid file for myid problems).
    pub fn path(&self) -> &Path {
        match self {
            ConfigError::Read { path, .. }
            | ConfigError::Entry { path, .. }
            | ConfigError::File { path, .. } => path,
            ConfigError::MyId { myid, .. } => myid,
            ConfigError::NotListed { config, .. } => config,
        }
    }

    /// The 1-based line at fault, if the error is about one line.
    pub fn line(&self) -> Option<usize> {
        match self {
            ConfigError::Entry { line, .. } => Some(*line),
            ConfigError::MyId { data_dir_line, .. } => *data_dir_line,
            _ => None,
        }
    }

    /// The key at fault, if the error is about one entry.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Entry { key, .. } => Some(key),
            ConfigError::MyId { .. } => Some("dataDir"),
            _ => None,
        }
    }

    /// The problem, for errors that carry one.
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            ConfigError::Entry { problem, .. } | ConfigError::File { problem, .. } => Some(problem),
            _ => None,
        }
    }
}

/// `:7` when there is a line, nothing otherwise.
struct LineRef(Option<usize>);

impl fmt::Display for LineRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(line) => write!(f, ":{line}: dataDir"),
            None => Ok(()),
        }
    }
}

/// Which port of a `server.N` line (or which client port) is meant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortKind {
    /// The Zab (quorum) port, second field.
    Quorum,
    /// The election port, third field.
    Election,
    /// The client port after `;`, or `clientPort`.
    Client,
    /// `metricsProvider.httpPort`.
    Metrics,
}

impl fmt::Display for PortKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PortKind::Quorum => "quorum",
            PortKind::Election => "election",
            PortKind::Client => "client",
            PortKind::Metrics => "metrics",
        })
    }
}

/// What is wrong with an entry or with the file.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Problem {
    /// `\u` not followed by four hex digits (Java's properties reader
    /// rejects the whole file for this).
    #[error("malformed \\uXXXX escape")]
    MalformedUnicodeEscape,
    /// A value that must be an integer is not.
    #[error("{value:?} is not an integer")]
    NotAnInteger {
        /// The value as written.
        value: String,
    },
    /// A value outside what the key allows.
    #[error("{value} is out of range ({min}..={max})")]
    OutOfRange {
        /// The value.
        value: i64,
        /// Smallest allowed.
        min: i64,
        /// Largest allowed.
        max: i64,
    },
    /// A boolean key with something other than `true`/`false`.
    #[error("{value:?} is not a boolean: choose true or false")]
    NotABoolean {
        /// The value as written.
        value: String,
    },
    /// A key that needs a value has an empty one.
    #[error("empty value")]
    EmptyValue,
    /// A security setting zkfle cannot honour is switched on: the peer
    /// refuses to start rather than run without it.
    #[error("true asks for {feature}, which zkfle does not implement; it refuses to start rather than run without it (set it to false to run without {feature})")]
    Unhonoured {
        /// What the setting asks for.
        feature: super::security::Unhonoured,
    },
    /// A quorum TLS setting zkfle refuses (see `config::tls`).
    #[error("{0}")]
    Tls(super::tls::TlsProblem),
    /// TLS is enabled but a store location is not set.
    #[error("{key} is not set: sslQuorum and portUnification need this server's certificate and key (keyStore) and the CAs that sign the peers' certificates (trustStore)")]
    TlsStoreMissing {
        /// The `.location` key.
        key: String,
    },
    /// `metricsProvider.className` names a provider zkfle does not have.
    #[error("{class:?} is not a metrics provider zkfle has: use org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider (GET /metrics) or org.apache.zookeeper.metrics.impl.DefaultMetricsProvider (mntr only)")]
    UnknownMetricsProvider {
        /// The class name as written.
        class: String,
    },
    /// A port outside 1..65535.
    #[error("{kind} port {value} out of range")]
    PortOutOfRange {
        /// Which port.
        kind: PortKind,
        /// The number as written.
        value: i64,
    },
    /// A port that is not a number.
    #[error("{kind} port {value:?} is not a number")]
    PortNotANumber {
        /// Which port.
        kind: PortKind,
        /// The text as written.
        value: String,
    },
    /// The `server.N` value does not have the expected shape.
    #[error("{value:?} is not host:quorumPort:electionPort[:participant|:observer] (several joined by '|') optionally followed by ;[clientHost:]clientPort")]
    ServerFormat {
        /// The value as written.
        value: String,
    },
    /// `[` without a matching `]:` in an address.
    #[error("{value:?} starts with '[' but has no matching ']:'")]
    UnclosedBracket {
        /// The address as written.
        value: String,
    },
    /// The N of `server.N`, `group.N` or `weight.N` is not a number.
    #[error("{text:?} is not a numeric id")]
    BadId {
        /// The id part as written.
        text: String,
    },
    /// Negative server ids are not accepted (−1 means "unset" to
    /// ZooKeeper, and the election uses `i64::MIN` as "no leader").
    #[error("server id {sid} is negative")]
    NegativeSid {
        /// The id.
        sid: i64,
    },
    /// A second line for a sid (or group id) already configured.
    #[error("{what} {id} is already configured on line {first_line}")]
    Duplicate {
        /// `server`, `group` or `weight`.
        what: &'static str,
        /// The id.
        id: i64,
        /// Where it was first configured.
        first_line: usize,
    },
    /// Quorum and election port of one address are the same.
    #[error("quorum and election port are both {port}")]
    SamePorts {
        /// The port.
        port: u16,
    },
    /// `peerType` or a server line's type is neither participant nor
    /// observer.
    #[error("unrecognised peer type {value:?}: use participant or observer")]
    UnknownPeerType {
        /// The value as written.
        value: String,
    },
    /// The addresses of one multi-address line disagree on the role.
    #[error("multiple addresses of one server must have the same role")]
    MixedPeerTypes,
    /// `|` used while `multiAddress.enabled` is not true.
    #[error("several addresses given but multiAddress.enabled is not true")]
    MultiAddressDisabled,
    /// A host this server binds without retrying (`clientPortAddress`,
    /// its own line's client part, `metricsProvider.httpHost`) does not
    /// resolve. Peers' names never cause this: they are looked up at every
    /// connection.
    #[error("cannot resolve host {host:?}")]
    Unresolvable {
        /// The host as written.
        host: String,
    },
    /// A host that is neither an IP address nor a well-formed host name,
    /// so it could never resolve.
    #[error("{host:?} is not an IP address or a host name")]
    BadHost {
        /// The host as written.
        host: String,
    },
    /// Two servers share an address: the same IP literal, or the same
    /// name (in any case), with the same port. Two names that happen to
    /// resolve to one address are not checked: DNS may say something else
    /// a minute later.
    #[error("{kind} address {addr} is already used by server.{other_sid}")]
    AddressInUse {
        /// Which address of this line.
        kind: PortKind,
        /// The address as configured.
        addr: crate::net::HostPort,
        /// The other server.
        other_sid: i64,
    },
    /// `electionAlg` other than 3.
    #[error("only electionAlg 3 (fast leader election) exists, not {value}")]
    ElectionAlg {
        /// The value.
        value: i64,
    },
    /// A key whose value must be greater than zero.
    #[error("{value} must be greater than 0")]
    NotPositive {
        /// The value.
        value: i64,
    },
    /// `clientPortAddress` without `clientPort`.
    #[error("clientPortAddress is set but clientPort is not")]
    ClientPortAddressWithoutPort,
    /// This server's line names a client address that contradicts
    /// `clientPort`/`clientPortAddress`.
    #[error("client address {line_addr} differs from clientPort/clientPortAddress {static_addr}")]
    ClientAddressMismatch {
        /// From the `server.N` line.
        line_addr: SocketAddr,
        /// From `clientPort`/`clientPortAddress`.
        static_addr: SocketAddr,
    },
    /// A sid listed by two `group.` lines.
    #[error("server {sid} is also in group {other_gid}")]
    InTwoGroups {
        /// The sid.
        sid: i64,
        /// The group it was first listed in.
        other_gid: i64,
    },
    /// A participant missing from every `group.` line of a hierarchical
    /// config.
    #[error("participant {sid} is in no group.N line (hierarchical quorums need every participant in a group)")]
    NotInGroup {
        /// The sid.
        sid: i64,
    },
    /// A `group.`/`weight.` line names a sid without a `server.` line.
    #[error("server {sid} has no server.{sid} line")]
    UnknownMember {
        /// The sid.
        sid: i64,
    },
    /// `zkfle.preferredLeader` names a sid that is not a voting server.
    #[error("server {sid} is not a voting server; zkfle.preferredLeader must name one")]
    PreferredNotAVoter {
        /// The sid.
        sid: i64,
    },
    /// A `group.`/`weight.` line names an observer.
    #[error("server {sid} is an observer; only participants have groups and weights")]
    ObserverMember {
        /// The sid.
        sid: i64,
    },
    /// Every group weighs 0, so no set of servers is ever a quorum.
    #[error("every group has total weight 0: no quorum is possible")]
    AllGroupsZeroWeight,
    /// A key zkfle needs is missing (or 0, which ZooKeeper reads as unset).
    #[error("{key} is not set")]
    MissingKey {
        /// The key.
        key: &'static str,
    },
    /// No `server.N` line at all.
    #[error("no server.N lines: zkfle only runs as a member of an ensemble")]
    NoServers,
    /// One participant plus observers while `standaloneEnabled` is true
    /// (ZooKeeper rejects this shape).
    #[error("observers without a quorum (one participant, standaloneEnabled=true) is an invalid configuration")]
    ObserversWithoutQuorum,
    /// Only observers configured.
    #[error("observers without participants is an invalid configuration")]
    ObserversOnly,
    /// A `server.`/`group.`/`weight.` line in `zoo.cfg` while
    /// `dynamicConfigFile` is set (ZooKeeper rejects the mix).
    #[error("must be in the dynamic config file {} when dynamicConfigFile is set", file.display())]
    QuorumKeyOutsideDynamicFile {
        /// The dynamic file named by `dynamicConfigFile`.
        file: PathBuf,
    },
    /// The file named by `dynamicConfigFile` cannot be read.
    #[error("cannot read {}: {reason}", file.display())]
    DynamicFileUnreadable {
        /// The dynamic file.
        file: PathBuf,
        /// What the OS said.
        reason: String,
    },
    /// A dynamic config file holds something other than `server.`,
    /// `group.`, `weight.` lines.
    #[error("not allowed in a dynamic config file (only server.N, group.N and weight.N lines)")]
    NotADynamicKey,
    /// A dynamic config file has a `version` line; ZooKeeper takes the
    /// version from the file name instead.
    #[error(
        "a dynamic config file must not contain version; the version is the file name's suffix"
    )]
    VersionInDynamicFile,
}

/// What is wrong with the `myid` file.
#[derive(Debug, Error)]
pub enum MyIdProblem {
    /// No such file (and no `--myid`).
    #[error("is missing (write this server's id into it, or pass --myid)")]
    Missing,
    /// It exists but cannot be read.
    #[error("cannot be read: {0}")]
    Unreadable(#[source] std::io::Error),
    /// The first line is not an integer.
    #[error("first line {text:?} is not a server id")]
    NotANumber {
        /// The first line as read.
        text: String,
    },
    /// The id is negative.
    #[error("server id {sid} is negative")]
    Negative {
        /// The id.
        sid: i64,
    },
}
