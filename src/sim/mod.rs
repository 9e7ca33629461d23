//! Deterministic, seeded simulation of the protocol core under faults.
//!
//! N peers (3–9 voters, optionally observers or a hierarchical config with
//! zero-weight voters) each run the production [`crate::election::Driver`]
//! and, for every decision, a production [`crate::zab::Leader`] or
//! [`crate::zab::Learner`], over simulated networks and disks:
//!
//! * the election network (`net`): per-connection FIFO order, delays and
//!   reordering across connections, QCM's queues, dial loop, tie-break and
//!   resend-last, connections lost as a whole;
//! * quorum connections (`quorum`): learners dial their leader's quorum
//!   port (refused, timed out, or accepted by a paused leader's kernel),
//!   FIFO packets through the real codec, FIN after the last packet, resets
//!   on crashes, silence on pauses and one-way cuts;
//! * disks (`disk`): epoch files and a `MemLog` per peer, written through
//!   ordered pipelines with simulated fsync latency and group commit; a
//!   write is durable, and its completion reported, only when its fsync
//!   completes; a crash loses what was not durable;
//! * faults (`faults`): crashes and restarts from the disks, process pauses
//!   longer than syncLimit × tickTime, link and connection resets, one-way
//!   and two-way partitions (rejecting or black-holing);
//! * store mode (`store`, `--store`): a key-value state machine on every
//!   peer and clients that write and read through whoever they believe
//!   leads, their histories checked for linearizability.
//!
//! Every machine is fed exactly the facts the runtime feeds it, and its
//! actions are executed as the runtime executes them (`peer`, `elect`).
//! One seed drives everything through [`SimRng`]; virtual time moves only
//! through the event queue (`schedule`). The invariants of [`invariants`]
//! are checked against the ground truth (`truth`) after the step that could
//! break them; the bugs of [`InjectedBug`] are injected around the
//! production machines to prove that they bite. The design follows
//! turmoil's (a seeded single-threaded network with partitions and holds)
//! and openraft's fuzzer (one function per invariant).
//!
//! `zkfle sim` ([`cli`]) runs many seeds and prints a replay command for any
//! failure; [`scenarios`] holds the named fault schedules of ZooKeeper's
//! sync-phase tickets; `testkit` (with the `testkit` feature or in tests)
//! drives the same world from scripts.

#[cfg(feature = "cli")]
pub mod cli;
mod disk;
mod elect;
mod faults;
pub mod invariants;
pub mod linearizability;
mod net;
mod params;
mod peer;
mod quorum;
mod rng;
pub mod scenarios;
mod schedule;
mod script;
mod store;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
mod truth;
mod types;
mod world;

pub use invariants::Violation;
pub use rng::{splitmix64, SimRng};
pub use script::{Envelope, Fate, Filter};
pub use world::{run, InjectedBug, Outcome, SimOptions, Stats};
