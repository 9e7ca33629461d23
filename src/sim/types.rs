//! The simulator's public options and results: what to simulate
//! ([`SimOptions`], [`InjectedBug`]) and what one schedule did
//! ([`Outcome`], [`Stats`]).

use std::time::Duration;

use super::invariants::Violation;

/// A bug injected around the production machines (a lying disk, a forging
/// network, a distorting lens or configuration), to prove that the
/// invariants catch what they claim to catch. Release code carries no
/// switch for any of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InjectedBug {
    /// Every peer's driver sees every zxid through an order-reversing lens
    /// (`i64::MAX - zxid`) on the way in and out: a vote order that prefers
    /// the *shorter* log. The network and the invariants see true zxids.
    InvertedZxidOrder,
    /// One voter's driver is configured with a verifier in which it alone
    /// outweighs everyone else (same voters, its own weight = sum of the
    /// others' + 1): a quorum check that accepts a minority.
    SelfQuorum,
    /// The connection layer lies to every driver: right after each link
    /// comes up it reports the link closed and a redial refused, so the
    /// driver counts voters whose link is up (and who keep talking) as
    /// Down, and `fast_decide` rule (b) stops waiting for them.
    EagerDown,
    /// Learners' disks report an epoch write durable as soon as it is
    /// issued; it becomes durable only after the fsync latency, and a
    /// crash in between loses it. A learner then sends ACKEPOCH / the
    /// NEWLEADER ACK for a promise that is not on disk.
    AckBeforePersist,
    /// The network forges a NEWLEADER ACK from every learner the moment
    /// the leader sends it NEWLEADER: the leader reports itself established
    /// before a quorum really acknowledged (and persisted) the epoch.
    ServeWithoutQuorum,
    /// Store mode: a learner's currentEpoch file is written durably the
    /// moment NEWLEADER arrives, before the synced history is durable in
    /// its log (ZooKeeper 3.8's order, ZOOKEEPER-4643).
    EpochBeforeSync,
    /// Store mode: every disk reports log appends durable at once and
    /// flushes them lazily, so writes are acknowledged before a quorum
    /// has them on disk, and a crash loses them.
    AckBeforeDurable,
    /// Store mode: a leader answers reads from its applied state without
    /// the read barrier (without confirming that it still leads).
    StaleRead,
    /// With resignations (`--resign`): the runtime reports a resignation
    /// to the election Driver as an ordinary role end, so the peer stands
    /// again at once instead of sitting its hold-off out.
    ResignStands,
    /// With resignations (`--resign`): a resigned peer's elections start
    /// from an empty history (zxid 0, epoch 0), so its non-candidate floor
    /// lets it vote for peers that lack entries it holds.
    ResignNoFloor,
}

impl InjectedBug {
    /// Every bug with its CLI name.
    pub const ALL: [(&'static str, InjectedBug); 10] = [
        ("inverted-order", InjectedBug::InvertedZxidOrder),
        ("self-quorum", InjectedBug::SelfQuorum),
        ("eager-down", InjectedBug::EagerDown),
        ("ack-before-persist", InjectedBug::AckBeforePersist),
        ("serve-without-quorum", InjectedBug::ServeWithoutQuorum),
        ("epoch-before-sync", InjectedBug::EpochBeforeSync),
        ("ack-before-durable", InjectedBug::AckBeforeDurable),
        ("stale-read", InjectedBug::StaleRead),
        ("resign-stands", InjectedBug::ResignStands),
        ("resign-no-floor", InjectedBug::ResignNoFloor),
    ];

    /// Parses the CLI name.
    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.iter().find(|(n, _)| *n == s).map(|(_, b)| *b)
    }

    /// The CLI name.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, b)| *b == self)
            .map_or("?", |(n, _)| n)
    }

    /// True for the bugs that need the replicated log (`--store`).
    pub fn needs_store(self) -> bool {
        matches!(
            self,
            InjectedBug::EpochBeforeSync | InjectedBug::AckBeforeDurable | InjectedBug::StaleRead
        )
    }
}

/// What to simulate.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// The schedule's seed: everything else is derived from it (and from
    /// the peer range, which only narrows the one draw that picks N).
    pub seed: u64,
    /// Smallest ensemble (3..=9 is what the CLI allows).
    pub min_peers: usize,
    /// Largest ensemble.
    pub max_peers: usize,
    /// Keep a human-readable trace of every event.
    pub trace: bool,
    /// Inject a deliberate bug (for proving the checks bite).
    pub bug: Option<InjectedBug>,
    /// Check `invariants::clock_monotonic` without its documented
    /// out-of-election-join exception (shows that ZooKeeper's rule does
    /// move clocks backwards).
    pub strict_clock: bool,
    /// Replicate a log through Zab (store mode) with a key-value state
    /// machine on every peer and clients whose histories are checked for
    /// linearizability. Without it Zab runs in interop mode (the
    /// election-only peers' configuration).
    pub store: bool,
    /// Check only what a client can see (linearizability, no acknowledged
    /// write lost) and the liveness bound: shows that those end-to-end
    /// checks catch the store bugs on their own, without the protocol-level
    /// invariants that would otherwise flag them first.
    pub end_to_end_only: bool,
    /// Established leaders resign now and then during the fault phase
    /// (`PeerHandle::resign`: the Zab leader steps down, the Driver holds
    /// the peer out of candidacy for a random hold-off), checked by
    /// `invariants::resigned_peer_stays_out` and
    /// `invariants::resigned_vote_keeps_history`. Off by default so that
    /// the other schedules replay exactly as before.
    pub resign: bool,
}

impl SimOptions {
    /// Seed `seed`, 3..=9 peers, no trace, no bug, interop mode.
    pub fn new(seed: u64) -> Self {
        SimOptions {
            seed,
            min_peers: 3,
            max_peers: 9,
            trace: false,
            bug: None,
            strict_clock: false,
            store: false,
            end_to_end_only: false,
            resign: false,
        }
    }
}

/// Counters of one schedule.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Ensemble size.
    pub peers: usize,
    /// `majority`, `majority+observers` or `hierarchical`.
    pub layout: &'static str,
    /// Fault-free schedule (the strict agreement check applies).
    pub calm: bool,
    /// Store mode.
    pub store: bool,
    /// Events processed.
    pub events: u64,
    /// Notifications put on the wire (including reconnect resends).
    pub messages: u64,
    /// Quorum packets put on the wire.
    pub packets: u64,
    /// Faults injected (crashes, pauses, resets, partitions).
    pub faults: u64,
    /// Decisions made by all peers.
    pub decisions: u64,
    /// Decisions by `fast_decide` rule (a): every voter agreed.
    pub decisions_fast_all: u64,
    /// Decisions by `fast_decide` rule (b) (every unheard voter Down),
    /// each checked by `invariants::down_voters_were_cut`.
    pub decisions_rest_down: u64,
    /// Decisions after ZooKeeper's finalize wait.
    pub decisions_finalize: u64,
    /// Epochs established by Zab leaders.
    pub established: u64,
    /// Crashes of a peer that was leading.
    pub leader_crashes: u64,
    /// Process pauses of a peer that was leading.
    pub leader_pauses: u64,
    /// Process pauses of any peer.
    pub pauses: u64,
    /// Crashes of any peer.
    pub crashes: u64,
    /// Partitions (one-way and two-way).
    pub partitions: u64,
    /// Restarts of crashed peers from their disks.
    pub restarts: u64,
    /// Leaders that resigned (`--resign`).
    pub resignations: u64,
    /// Learners that refused a leader's epoch below their acceptedEpoch.
    pub epoch_rejections: u64,
    /// Rounds in which two peers decided different leaders (allowed; see
    /// `invariants::one_leader_per_epoch`).
    pub split_rounds: u64,
    /// Rounds checked by `invariants::untouched_round_agrees`.
    pub rounds_untouched: u64,
    /// Out-of-election joins that moved a logical clock backwards (allowed,
    /// see `invariants::clock_monotonic`).
    pub clock_rewinds: u64,
    /// Store: writes acknowledged to clients.
    pub writes_acked: u64,
    /// Store: writes whose outcome the client could not know.
    pub writes_unknown: u64,
    /// Store: reads answered and checked.
    pub reads_checked: u64,
    /// Store: keys the linearizability checker ran out of budget on.
    pub keys_undecided: u64,
    /// Store: SNAP syncs (snapshot installs on learners).
    pub snapshots_installed: u64,
    /// Store: TRUNC syncs.
    pub truncations: u64,
    /// Virtual time when the network healed for good.
    pub healed_at: Duration,
    /// The liveness bound that applied.
    pub bound: Duration,
    /// Time from the heal to convergence, if it converged.
    pub converged_after: Option<Duration>,
    /// Virtual time at the end.
    pub end: Duration,
}

/// The result of one schedule.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The seed that produced it.
    pub seed: u64,
    /// Hash of every event, decision and role change, in order: equal for
    /// equal seeds, whatever the machine.
    pub trace_hash: u64,
    /// Broken invariants (the schedule stops at the first).
    pub violations: Vec<Violation>,
    /// The event trace, if asked for.
    pub trace: Vec<String>,
    /// Counters.
    pub stats: Stats,
}
