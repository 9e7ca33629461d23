//! Zab (ZooKeeper's atomic broadcast, PROTOCOL.md §6) as sans-IO,
//! deterministic state machines: a [`Leader`] per leading term and a
//! [`Learner`] (follower or observer) per following term.
//!
//! Nothing here does IO or reads a clock. The runtime (`src/peer/`, or the
//! simulator in `src/sim/`) calls an input method with the time and a fact,
//! executes the returned actions **in order**, feeds back the completions of
//! the writes and reads it was asked for, and calls `timer(now)` when `now`
//! reaches `next_deadline()`. Same inputs, same outputs.
//!
//! # Two modes ([`Mode`])
//!
//! * **Interop** (election-only peers, mixed with Java ZooKeeper 3.8): the
//!   bytes on the wire are those of zkfle's threaded runtime
//!   (`tests/zab_session.rs`, `shared/vectors/zab-*.hex`). The leader sends
//!   an empty DIFF at the learner's zxid, never TRUNC/SNAP, and ignores
//!   REQUEST (warned once per learner). The learner ACKs PROPOSALs at once
//!   without storing them (it counts toward a Java write quorum without
//!   durability: election tests only), ignores COMMIT/INFORM, follows
//!   DIFF/TRUNC/SNAP from a Java leader, and moves its vote zxid only on
//!   TRUNC/SNAP ([`LearnerAction::SetVoteZxid`]); the leader's vote zxid
//!   becomes `newEpoch << 32` once established.
//! * **Store** (the peer replicates an embedder's log; zkfle-only): full
//!   Zab with history, in ZooKeeper 3.9's safe order (PROTOCOL.md §6.7a).
//!
//! # The store-mode marker
//!
//! [`crate::wire::zab::StoreMarker`]: 8 bytes, `i32 0x7a6b666c` ("zkfl")
//! then `i32 flags` (bit 0 = replicates a log, other bits 0), appended by a
//! store-mode learner to its 20-byte LearnerInfo (FOLLOWERINFO/OBSERVERINFO
//! data, bytes 20..28) and by a store-mode leader to its LEADERINFO data
//! (after the `i32` protocol version, bytes 4..12). Java 3.8 reads only the
//! bytes before them. A store-mode leader refuses a learner without it
//! (`Close`, warned once per sid, the leader keeps leading); a store-mode
//! learner exits with [`ZabExit::LeaderNotReplicating`] on a LEADERINFO
//! without it. An interop leader ignores a marked learner, which then
//! refuses the unmarked LEADERINFO.
//!
//! # Leader ([`Leader`])
//!
//! Created with [`Leader::start`]`(config, persisted, now)` when the
//! election decides LEADING. Inputs (each returns `Vec<LeaderAction>`):
//!
//! | input | when |
//! |---|---|
//! | `learner_connected(now, conn)` | a learner connection was accepted ([`ConnId`] numbered by the runtime) |
//! | `packet(now, conn, QuorumPacket)` | a decoded packet from it |
//! | `learner_closed(now, conn)` | EOF/reset/undecodable bytes on it |
//! | `timer(now)` | `now ≥ next_deadline()` |
//! | `accepted_epoch_durable(now, e)` | completes `PersistAcceptedEpoch(e)` |
//! | `current_epoch_durable(now, e)` | completes `PersistCurrentEpoch(e)` |
//! | `log_durable(now, z)` | completes every `AppendLog` entry ≤ `z` (the leader's own ACK) |
//! | `log_read(now, conn, LogRead)` | answers `ReadLog { conn, .. }` |
//! | `snapshot_read(now, conn, SnapshotRead)` | answers `ReadSnapshot { conn, .. }` |
//! | `read_failed(now, conn, err)` | a read failed: that learner is dropped |
//! | `persist_failed(now, what, err)` | a write failed: exit `Persist` |
//! | `propose(now, data, req)` / `propose_batch` | store mode, answered by `ProposeDone` |
//! | `read_barrier(now, req)` | answered by `BarrierDone` |
//! | `step_down(now, Shutdown \| Resign)` | the runtime/embedder ends the term |
//!
//! Actions ([`LeaderAction`]): `Send { conn, packet }`, `Close { conn,
//! reason }`, `PersistAcceptedEpoch`, `PersistCurrentEpoch`, `AppendLog`,
//! `ReadLog { conn, after, through }`, `ReadSnapshot { conn, through }`,
//! `Phase`, `Established { epoch }`, `SetVoteZxid` (interop),
//! `ApplyFromLog { up_to }`, `Deliver(entries)`, `ProposeDone`,
//! `BarrierDone`, `Exit(reason)` (always last; the runtime then closes every
//! learner connection and drops the machine).
//!
//! The rules (ZAB_SPEC.md D1–D10): LEADERINFO only after acceptedEpoch is
//! durable; NEWLEADER only after currentEpoch is durable; established only
//! when a quorum of voters, the leader included, ACKed NEWLEADER
//! ([`Leader::established_by`]); UPTODATE to each learner after that.
//! Store mode adds:
//!
//! * **Sync** ([`sync`]): on ACKEPOCH(L) the leader emits `ReadLog { after:
//!   L, through }` — a *log action*, run after every earlier `AppendLog` and
//!   seeing its entries, so the answer reaches at least `through`. The
//!   runtime answers [`LogRead`]`{ prefix, entries, compacted }` (see its
//!   docs; [`LogRead::from_log`] builds it from an in-memory log).
//!   `prefix == L` → DIFF(L); `prefix < L` → TRUNC(prefix); `compacted` →
//!   `ReadSnapshot`, answered by [`SnapshotRead`]`{ zxid, data, entries
//!   after zxid }` → SNAP (format below). Then every entry the read returned
//!   and every entry proposed meanwhile (kept in memory, nothing falls in a
//!   gap): committed ones as PROPOSAL+COMMIT, uncommitted ones as PROPOSAL
//!   (observers: skipped, an INFORM follows when they commit). The learner
//!   then receives live proposals; NEWLEADER follows once currentEpoch is
//!   durable. The history the term started with counts as committed in
//!   these packets: a learner applies nothing before UPTODATE, and UPTODATE
//!   only follows establishment.
//! * **Establishment**: commit zxid := the term's initial last zxid, and
//!   `ApplyFromLog { up_to: it }` (the embedder applies its log up to there;
//!   a log read is fine off the hot path). UPTODATE's zxid is the leader's
//!   commit zxid (−1 in interop mode, as Java).
//! * **Broadcast**: `propose` → zxid `newEpoch << 32 | counter` (from 1;
//!   counter 0xffffffff is never used: exit `CounterRollover`),
//!   `AppendLog`, PROPOSAL to every forwarding follower. A follower's ACK(z)
//!   is cumulative; its NEWLEADER ACK acknowledges everything sent to it
//!   before NEWLEADER; ACKs count only from followers past their NEWLEADER
//!   ACK (whose currentEpoch is the new epoch, so their votes protect the
//!   entry: the ZOOKEEPER-4643 class). Commit in zxid order once a quorum
//!   of voters *that includes the leader* (its own `log_durable`) has it
//!   durable, so the leader's state machine never runs ahead of its own
//!   log: one cumulative COMMIT per
//!   batch to followers, INFORM(z, data) per entry to observers,
//!   `Deliver(entries)` from memory (the hot path: no log read), then
//!   `ProposeDone { req, Ok(zxid) }` in zxid order. A proposal pending at
//!   `Exit` → `Err(OutcomeUnknown)`; `propose` when not established →
//!   `Err(NotEstablished)`; interop → `Err(NoReplicatedLog)`.
//! * **Read barrier**: `Ok(commit zxid at the request)` once a quorum of
//!   voters (the leader included, followers in Broadcast) answered a PING
//!   the leader sent after the request (replies matched per connection by
//!   count: TCP is FIFO, a learner answers each PING once). The request
//!   sets `next_deadline()` to `now`; the next `timer(now)` sends one PING
//!   round shared by every barrier asked before it. `Exit` → `Err(TermEnded)`.
//! * **Liveness** (both modes): PING every `tickTime/2` to learners in
//!   Broadcast (zxid `newEpoch << 32` in interop; the last proposed zxid in
//!   store mode); every tick the leader plus voters within their deadline
//!   must be a quorum, else exit `QuorumLost`. A learner's deadline runs
//!   while it owes a packet: `initLimit` until its NEWLEADER ACK, then
//!   `syncLimit`, restarted by each packet; past it → `Close`. Discovery
//!   stages: `initLimit` each, else exit `DiscoveryTimeout`/`SyncTimeout`.
//!
//! # Learner ([`Learner`])
//!
//! Created with [`Learner::start`]`(config, leader_sid, role, persisted,
//! now)` when the election decides FOLLOWING/OBSERVING.
//!
//! | input | when |
//! |---|---|
//! | `connected(now)` / `connect_failed(now, err)` | answers `Connect` |
//! | `packet(now, QuorumPacket)` | a decoded packet from the leader |
//! | `heard(now)` | bytes arrived (optional; restarts the read timeout like a packet) |
//! | `snapshot_skipped(now, SkippedSnapshot)` | interop: the Java SNAP stream was skipped |
//! | `stream_error(now, WireError)` | undecodable bytes: exit `Protocol` |
//! | `closed(now)` | EOF/reset: exit `LeaderSocketClosed` |
//! | `timer(now)` | `now ≥ next_deadline()` |
//! | `accepted_epoch_durable` / `current_epoch_durable(now, e)` | epoch writes |
//! | `log_durable(now, z)` | every log action up to the append of `z` is durable |
//! | `log_truncated(now, z)` | completes `TruncateLog { after: z }` |
//! | `snapshot_installed(now, z)` | completes `InstallSnapshot { zxid: z }` |
//! | `persist_failed(now, what, err)` | exit `Persist` |
//! | `step_down(now, why)` | the runtime ends the role |
//!
//! Actions ([`LearnerAction`]): `Connect { attempt, timeout }`, `Send`,
//! `PersistAcceptedEpoch`, `PersistCurrentEpoch`, `AppendLog`,
//! `TruncateLog { after }`, `InstallSnapshot { zxid, data }`, `Phase`,
//! `SetVoteZxid` (interop), `ApplyFromLog { up_to }`, `Deliver`, `Exit`.
//!
//! Rules: connect policy of 10 attempts, 5 ms doubling to 100 ms, within
//! `initLimit × tickTime`, then exit `ConnectFailed`. FOLLOWERINFO with
//! `acceptedEpoch << 32`; LEADERINFO below acceptedEpoch → `EpochRejected`;
//! above → `PersistAcceptedEpoch`, ACKEPOCH(last durable zxid, old
//! currentEpoch) only after its completion; equal → ACKEPOCH(.., −1) at
//! once. Store sync: DIFF (zxid must equal our last zxid), TRUNC →
//! `TruncateLog`, SNAP → `InstallSnapshot`, PROPOSAL/INFORM → `AppendLog`
//! (zxids strictly increasing, never past the new epoch), COMMIT marks (of
//! entries we hold), NEWLEADER (zxid must be `newEpoch << 32`); anything
//! else is a protocol exit, never a panic. **On NEWLEADER: (1) every log
//! action of the sync completes, (2) `PersistCurrentEpoch`, (3) after its
//! completion the ACK of NEWLEADER.** PING replies and (interop) proposal
//! ACKs that arrive meanwhile wait until after that ACK (a Java leader
//! reads the NEWLEADER ACK first). UPTODATE (zxid = leader's commit point)
//! → `ApplyFromLog { up_to: min(commit, end of sync) }`; later entries are
//! delivered from memory with `Deliver` once committed (COMMIT, cumulative;
//! INFORM for observers) **and durable locally** (the applied state never
//! runs ahead of the log), except entries up to the end of the sync that
//! the learner's log already held (a rejoin with part of the leader's
//! uncommitted tail): another `ApplyFromLog` applies those from the log as
//! they commit, so nothing is skipped. A follower ACKs (cumulatively) only durable
//! entries, after its NEWLEADER ACK. Read timeout: `initLimit` until the
//! NEWLEADER ACK, then `syncLimit`, paused while the learner waits on its
//! own writes (Java's socket timeout only runs while it reads) → exit
//! `LeaderSilent` in the broadcast phase (the leader pings every half
//! tick, so it is hung or cut off), `LeaderNotReady` before it (the leader
//! may be waiting for its quorum; the election must not count it Down).
//!
//! # Store-mode SNAP format ([`snapshot`])
//!
//! `SNAP(zxid = s, data = i64 totalLength)` then
//! `ceil(totalLength / 512 KiB)` packets `SNAP(zxid = s, data = chunk)`
//! whose concatenation is the embedder's snapshot bytes; each packet stays
//! inside the 1 MiB jute bound. Interop SNAP is Java's raw stream: after a
//! SNAP packet (see [`raw_snapshot_follows`]) the runtime's reader skips the
//! data-tree stream to its signature and reports `snapshot_skipped`.
//!
//! # What the runtime must guarantee
//!
//! * Execute actions in order. Log actions (`AppendLog`, `TruncateLog`,
//!   `InstallSnapshot`, `ReadLog`, `ReadSnapshot`) run strictly in emission
//!   order on one pipeline; consecutive appends may share an fsync (one
//!   completion may cover many). Completions name what they complete.
//! * Deliver completions only to the machine that asked (a new machine
//!   starts with nothing outstanding); wait for the previous role's writes
//!   before building [`Persisted`] for the next one.
//! * `ApplyFromLog` and `Deliver` reach the embedder's state machine in
//!   order; `ApplyFromLog` applies entries after the state machine's own
//!   applied zxid, which the runtime tracks (a snapshot install sets it).
//! * The vote of the next election is (currentEpoch, last durable zxid,
//!   sid) read from disk (store), or the interop vote zxid.
//!
//! * A role ends only through `Exit` (or the runtime's own reasons:
//!   `BindFailed`, `NoQuorumAddress`, `Io`); after it every input returns
//!   nothing, except `propose`/`read_barrier`, which fail at once.
//! * Crash semantics: dropping a machine loses nothing the disk holds; a
//!   restarted peer builds [`Persisted`] from what survived (unsynced writes
//!   may be lost) and the next role starts from it.
//!
//! # Status and invariant hooks (mntr, the simulator)
//!
//! `Leader`: [`Leader::epoch`], [`Leader::is_established`],
//! [`Leader::established_by`], [`Leader::commit_zxid`],
//! [`Leader::durable_zxid`], [`Leader::accepted_epoch`],
//! [`Leader::current_epoch`] (as the machine believes them durable),
//! [`Leader::phase`], [`Leader::learners`], [`Leader::synced_followers`],
//! [`Leader::outstanding_proposals`], [`Leader::next_deadline`].
//! `Learner`: [`Learner::epoch`], [`Learner::accepted_epoch`],
//! [`Learner::current_epoch`], [`Learner::durable_zxid`],
//! [`Learner::commit_zxid`], [`Learner::applied_zxid`],
//! [`Learner::acked_newleader`].
//!
//! # Logging
//!
//! The machines log protocol progress with ZooKeeper's phrases (`LEADING -
//! broadcast: established epoch ..`, `FOLLOWING - broadcast: ..`,
//! "dropping learner sid ..") through `log`; the runtime logs `Exit`
//! reasons and IO errors.

#![deny(missing_docs)]

pub mod leader;
pub mod learner;
pub mod snapshot;
pub mod sync;
mod types;

pub use leader::{learner_ahead, Leader, LeaderAction, LeaderStage, LearnerStep};
pub use learner::{Learner, LearnerAction, LearnerRole, LearnerStage};
pub use sync::{LogRead, SnapshotRead, SyncKind};
pub use types::{
    ConnId, Entry, Mode, Packet, PersistTarget, Persisted, ProtocolViolation, ReqId, RequestError,
    SkippedSnapshot, StepDown, ZabConfig, ZabExit, ZabPhase,
};

/// True when a Java snapshot stream follows this packet on the wire: the
/// runtime's reader must skip it (to the `BenWasHere` signature) before
/// decoding the next packet, then call [`Learner::snapshot_skipped`]. Only
/// in interop mode; a store-mode SNAP is ordinary packets.
pub fn raw_snapshot_follows(mode: Mode, packet_type: i32) -> bool {
    mode == Mode::Interop && packet_type == crate::wire::zab::SNAP
}
