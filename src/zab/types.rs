//! Types shared by the leader and the learner: configuration, the durable
//! state a role starts from, log entries, outgoing packets, phases, request
//! errors and the reasons a role ends.

use crate::config::QuorumVerifier;
use crate::wire::zab::{self as wz, QuorumPacket};
use crate::wire::WireError;
use bytes::Bytes;
use std::collections::BTreeSet;
use std::time::Duration;

/// Which protocol the machines speak (see the module docs, "Two modes").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Election-only peer, byte-identical to zkfle's pre-store behaviour and
    /// interoperable with Java ZooKeeper 3.8: no history, empty DIFF,
    /// PROPOSALs acknowledged without being stored.
    Interop,
    /// The peer replicates an embedder's log: full Zab with history, the
    /// store marker on the handshake, zkfle-only ensembles.
    Store,
}

/// What a role needs to know about the ensemble. Built by the runtime from
/// zoo.cfg; the machines never read files.
#[derive(Debug, Clone)]
pub struct ZabConfig {
    /// This server's sid.
    pub my_sid: i64,
    /// `tickTime`.
    pub tick_time: Duration,
    /// `initLimit`: ticks allowed for discovery and synchronization.
    pub init_limit: u32,
    /// `syncLimit`: ticks a synced peer may stay silent.
    pub sync_limit: u32,
    /// The voting configuration (which sids count toward quorums).
    pub verifier: QuorumVerifier,
    /// Every configured sid, participants and observers: a leader refuses
    /// a learner whose sid is not in it.
    pub servers: BTreeSet<i64>,
    /// The committed config text: NEWLEADER data (as Java sends it), and
    /// its `version=` line (hex) is this server's config version.
    pub config_text: String,
    /// Interop or store mode.
    pub mode: Mode,
}

impl ZabConfig {
    /// `initLimit × tickTime`.
    pub fn init_timeout(&self) -> Duration {
        self.tick_time.saturating_mul(self.init_limit)
    }

    /// `syncLimit × tickTime`.
    pub fn sync_timeout(&self) -> Duration {
        self.tick_time.saturating_mul(self.sync_limit)
    }

    /// The `version=` line of the config text, read as ZooKeeper writes it
    /// (hex); 0 when absent or unreadable (a static config).
    pub fn config_version(&self) -> i64 {
        self.config_text
            .lines()
            .filter_map(|l| l.trim().strip_prefix("version="))
            .filter_map(|v| i64::from_str_radix(v.trim(), 16).ok())
            .next_back()
            .unwrap_or(0)
    }
}

/// The durable state a role starts from, as the runtime read it from disk
/// when the role began (after every write of the previous role finished or
/// failed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Persisted {
    /// The `acceptedEpoch` file.
    pub accepted_epoch: i64,
    /// The `currentEpoch` file.
    pub current_epoch: i64,
    /// Store mode: the last zxid durable in the log (0 for an empty log, the
    /// snapshot's zxid for a log that holds only a snapshot). Interop mode:
    /// the zxid the peer advertises in its vote.
    pub last_zxid: i64,
}

/// One entry of the replicated log: a zxid and the embedder's bytes.
/// `Bytes` so one proposal is shared, not copied, by the N packets and the
/// log write that carry it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Entry {
    /// `epoch << 32 | counter`, counter ≥ 1.
    pub zxid: i64,
    /// The embedder's payload (opaque to Zab).
    pub data: Bytes,
}

impl Entry {
    /// An entry from its parts.
    pub fn new(zxid: i64, data: impl Into<Bytes>) -> Entry {
        Entry {
            zxid,
            data: data.into(),
        }
    }
}

/// A learner connection as the leader's runtime numbered it (any unique
/// number; never reused within one leading term).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u64);

impl std::fmt::Display for ConnId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// An embedder's request number, echoed in its completion.
pub type ReqId = u64;

/// A quorum packet to send: the handshake/broadcast subset's form (null
/// authinfo) with its data in a shared buffer. [`Packet::encode`] writes
/// exactly the bytes of the equivalent [`QuorumPacket`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Packet {
    /// Type constant of [`crate::wire::zab`] (`PROPOSAL`, `PING`, ...).
    pub packet_type: i32,
    /// The zxid field.
    pub zxid: i64,
    /// The data buffer; `None` is jute null (distinct from empty).
    pub data: Option<Bytes>,
}

impl Packet {
    /// A packet from its parts.
    pub fn new(packet_type: i32, zxid: i64, data: Option<Bytes>) -> Packet {
        Packet {
            packet_type,
            zxid,
            data,
        }
    }

    /// Appends the jute encoding to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        wz::encode_packet(self.packet_type, self.zxid, self.data.as_deref(), out);
    }

    /// The encoding as a new vector.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(wz::encoded_packet_len(self.data.as_ref().map(Bytes::len)));
        self.encode(&mut out);
        out
    }

    /// The equivalent decoded form (copies the data).
    pub fn to_quorum_packet(&self) -> QuorumPacket {
        QuorumPacket::new(
            self.packet_type,
            self.zxid,
            self.data.as_ref().map(|d| d.to_vec()),
        )
    }

    /// The type's name for logs.
    pub fn type_name(&self) -> &'static str {
        type_name(self.packet_type)
    }
}

/// Name of a packet type for logs (`"UNKNOWN"` outside 1..=19).
pub(crate) fn type_name(t: i32) -> &'static str {
    wz::packet_type_name(t).unwrap_or("UNKNOWN")
}

/// The phase of a role, as ZooKeeper's `zk_peer_state` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ZabPhase {
    /// Agreeing on the new epoch.
    Discovery,
    /// Bringing learners up to date.
    Synchronization,
    /// Established: proposals and pings flow, the peer counts as synced.
    Broadcast,
}

/// A write the runtime was asked to make durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PersistTarget {
    /// The `acceptedEpoch` file.
    AcceptedEpoch,
    /// The `currentEpoch` file.
    CurrentEpoch,
    /// The replicated log (append or truncate).
    Log,
    /// A snapshot install (store-mode SNAP).
    Snapshot,
}

impl std::fmt::Display for PersistTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PersistTarget::AcceptedEpoch => "acceptedEpoch",
            PersistTarget::CurrentEpoch => "currentEpoch",
            PersistTarget::Log => "the replicated log",
            PersistTarget::Snapshot => "the snapshot",
        })
    }
}

/// Why a `propose` or `read_barrier` request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum RequestError {
    /// The leader is not (or no longer) established: nothing was proposed
    /// or confirmed; the caller may retry with whoever leads next.
    #[error("not an established leader")]
    NotEstablished,
    /// The proposal was sent but the term ended before it committed: it may
    /// or may not survive (the next leader decides).
    #[error("outcome unknown: the leading term ended before the proposal committed")]
    OutcomeUnknown,
    /// The term ended before a quorum confirmed the read barrier.
    #[error("the leading term ended before the read barrier was confirmed")]
    TermEnded,
    /// `propose` on an interop-mode (election-only) peer.
    #[error("this peer replicates no log (interop mode)")]
    NoReplicatedLog,
}

/// How the other side broke the protocol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolViolation {
    /// Bytes that are no QuorumPacket (bad jute length, ...), reported by
    /// the runtime's reader.
    #[error("bad packet: {0}")]
    Wire(WireError),
    /// A Java snapshot stream that does not parse or lacks its signature,
    /// reported by the runtime's reader (interop SNAP).
    #[error("bad snapshot stream: {0}")]
    Snapshot(WireError),
    /// A packet type the current step does not allow.
    #[error("unexpected {} while {during}", type_name(*got))]
    Unexpected {
        /// The packet type received.
        got: i32,
        /// The step (e.g. "awaiting LEADERINFO").
        during: &'static str,
    },
    /// A packet of an allowed type whose content breaks a rule (a payload
    /// that does not decode, a zxid out of order, a COMMIT of an entry never
    /// received, ...).
    #[error("{0}")]
    Invalid(String),
}

/// Why a role ended. Every variant but [`ZabExit::Shutdown`] sends the peer
/// back to LOOKING. The text is an operator-facing log line. Variants
/// marked "runtime" are never produced by the machines; they exist so the
/// election Driver gets one reason type for every way a role ends.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZabExit {
    /// The runtime asked the role to stop (`step_down(.., Shutdown)`).
    #[error("shutdown requested")]
    Shutdown,
    /// The embedder gave up leadership (`step_down(.., Resign)`): the
    /// peer does not stand for leader for `hold_off` (the election Driver's
    /// `RoleEnd::Resigned`).
    #[error("leadership resigned (not a candidate for {} ms)", hold_off.as_millis())]
    Resigned {
        /// How long the peer does not stand for leader.
        hold_off: Duration,
    },
    /// The leader handed leadership to the preferred leader `to`, which
    /// is synced and holds every proposal of the term
    /// ([`crate::zab::Leader::set_preferred_leader`]); the peer does not
    /// stand for `hold_off` (`initLimit` ticks).
    #[error("handing leadership to the preferred leader sid {to} (not a candidate for {} ms)", hold_off.as_millis())]
    HandedOff {
        /// The preferred leader.
        to: i64,
        /// How long the peer does not stand for leader.
        hold_off: Duration,
    },
    /// The leader closed the quorum connection (FIN or reset).
    #[error("leader closed the quorum connection")]
    LeaderSocketClosed,
    /// Nothing from the leader within the read timeout while in the
    /// broadcast phase, where a live leader pings every half tick: it is
    /// hung, stopped or cut off (the election Driver counts it Down).
    #[error("leader silent for {ms} ms")]
    LeaderSilent {
        /// Milliseconds since the last bytes from the leader.
        ms: u64,
    },
    /// Nothing from the leader within the read timeout before the
    /// broadcast phase (initLimit until our NEWLEADER ACK, syncLimit
    /// after it). A live leader sends nothing while it waits for its
    /// quorum, so this is no evidence that it is gone (unlike
    /// [`ZabExit::LeaderSilent`]; found by the simulator, which saw the
    /// election then overrule a live leader it could reach).
    #[error("leader sent nothing for {ms} ms while we awaited {awaiting} (it may still be gathering its quorum)")]
    LeaderNotReady {
        /// Milliseconds since the last bytes from the leader.
        ms: u64,
        /// What we were waiting for.
        awaiting: &'static str,
    },
    /// Leading without a synced quorum (ZooKeeper: "Not sufficient
    /// followers synced").
    #[error("not sufficient followers synced, only synced with sids {synced:?}")]
    QuorumLost {
        /// Sids (me included) that were still within their deadline.
        synced: Vec<i64>,
    },
    /// No quorum agreed on a new epoch (FOLLOWERINFO, then ACKEPOCH) within
    /// `initLimit` ticks.
    #[error("discovery not completed within initLimit ({stage})")]
    DiscoveryTimeout {
        /// Which wait ran out.
        stage: &'static str,
    },
    /// No quorum ACKed NEWLEADER within `initLimit` ticks.
    #[error("synchronization not completed within initLimit")]
    SyncTimeout,
    /// The leader proposed an epoch below the one we already accepted.
    #[error("leader proposed epoch {proposed}, below our acceptedEpoch {accepted}")]
    EpochRejected {
        /// Epoch in LEADERINFO.
        proposed: i64,
        /// Our acceptedEpoch.
        accepted: i64,
    },
    /// Runtime: the configuration gives no quorum address for the sid to
    /// follow, or none of mine to lead on.
    #[error("no quorum address configured for sid {sid}")]
    NoQuorumAddress {
        /// The sid.
        sid: i64,
    },
    /// The leader's quorum port could not be reached within the attempts
    /// (10, 5 ms doubling to 100 ms apart, within `initLimit × tickTime`).
    #[error("cannot connect to leader sid {sid} after {attempts} attempts: {error}")]
    ConnectFailed {
        /// The leader's sid.
        sid: i64,
        /// Attempts made.
        attempts: u32,
        /// The last attempt's error, as the runtime reported it (the runtime
        /// adds the address it dialled).
        error: String,
    },
    /// Runtime: could not bind the quorum port to lead.
    #[error("cannot bind quorum address {addr}: {error}")]
    BindFailed {
        /// The address.
        addr: String,
        /// The OS error.
        error: String,
    },
    /// The leader broke the protocol.
    #[error("protocol error from the leader: {0}")]
    Protocol(ProtocolViolation),
    /// A write failed: the role cannot continue safely.
    #[error("cannot persist {what}: {error}")]
    Persist {
        /// What was being written.
        what: PersistTarget,
        /// The error text.
        error: String,
    },
    /// Store mode: the leader does not replicate a log (a Java ZooKeeper
    /// server, or a zkfle peer without a LogStore). A peer with a LogStore
    /// must not follow it: its history would not reach our log.
    #[error(
        "leader sid {sid} does not replicate a log (a Java ZooKeeper server or an election-only \
         zkfle peer): a peer with a LogStore refuses to follow it"
    )]
    LeaderNotReplicating {
        /// The leader's sid.
        sid: i64,
    },
    /// The zxid counter of this epoch is exhausted: ZooKeeper forces a new
    /// epoch (re-election) rather than let the counter roll over.
    #[error("zxid counter of epoch {epoch} exhausted, forcing re-election and a new epoch")]
    CounterRollover {
        /// The exhausted epoch.
        epoch: i64,
    },
    /// Runtime: another socket error.
    #[error("quorum connection error: {0}")]
    Io(String),
}

/// Why the runtime or embedder ends a role (`step_down`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StepDown {
    /// The peer is shutting down → [`ZabExit::Shutdown`].
    Shutdown,
    /// The embedder resigns leadership → [`ZabExit::Resigned`].
    Resign {
        /// How long the peer then does not stand for leader.
        hold_off: Duration,
    },
}

impl StepDown {
    pub(crate) fn exit(self) -> ZabExit {
        match self {
            StepDown::Shutdown => ZabExit::Shutdown,
            StepDown::Resign { hold_off } => ZabExit::Resigned { hold_off },
        }
    }
}

/// Counts the runtime's reader saw while skipping a Java snapshot stream
/// (interop SNAP); only logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SkippedSnapshot {
    /// Bytes of the stream, signature included.
    pub bytes: u64,
    /// Sessions listed.
    pub sessions: u64,
    /// Znodes, the root included.
    pub nodes: u64,
}

/// Adds without overflowing (deadlines far in the future saturate).
pub(crate) fn at(now: Duration, after: Duration) -> Duration {
    now.saturating_add(after)
}
