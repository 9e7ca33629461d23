//! zkfle: ZooKeeper's leader-election layer (QuorumCnxManager and
//! FastLeaderElection) and the Zab subset that keeps a leader alive,
//! wire-compatible with Apache ZooKeeper 3.8, as a library.
//!
//! # The public API
//!
//! * [`PeerBuilder`] configures an ensemble member (from a `zoo.cfg` or in
//!   code) and starts it; [`PeerHandle`] is the running peer: its
//!   [`Role`] and [`PeerState`] (read now, [`PeerHandle::watch`],
//!   [`PeerHandle::subscribe`]), leadership transfer
//!   ([`PeerHandle::resign`], [`PeerBuilder::preferred_leader`]) and
//!   shutdown.
//! * Errors: [`ZkfleError`] (and the errors it wraps: [`config::ConfigError`],
//!   [`PeerError`], [`AdminError`], [`logstore::LogError`]);
//!   [`ReplicationError`] for proposals and read barriers.
//! * [`config`]: `zoo.cfg` as zkfle reads it ([`config::ZkConfig`] and its
//!   parts).
//! * The replicated log: [`PeerBuilder::replicated_log`] with a
//!   [`StateMachine`], [`PeerHandle::propose`], [`PeerHandle::read_barrier`],
//!   and the log stores of [`logstore`].
//!
//! The other modules (the election driver, the Zab machines, the wire
//! codecs, the connection manager, the simulator, ...) are public only so
//! that zkfle's binary, tests and benchmarks can reach them: they are
//! hidden from these docs and carry no stability promise.

#![deny(missing_docs)]

mod api;
pub mod config;
pub mod logstore;

#[doc(hidden)]
pub mod admin;
#[cfg(feature = "cli")]
#[doc(hidden)]
pub mod bench;
#[doc(hidden)]
pub mod cnx;
#[doc(hidden)]
pub mod election;
#[doc(hidden)]
pub mod net;
#[doc(hidden)]
pub mod peer;
#[doc(hidden)]
pub mod sim;
#[doc(hidden)]
pub mod tls;
#[doc(hidden)]
pub mod wire;
#[doc(hidden)]
pub mod zab;

pub use admin::AdminError;
pub use api::{
    Event, LeaderInfo, PeerBuilder, PeerHandle, PeerState, ReplicationError, ReplicationResult,
    Role, RoleEvent, StateMachine, ZkfleError, DEFAULT_SNAPSHOT_EVERY, FILE_LOG_DIR,
    MAX_PROPOSAL_BYTES,
};
pub use peer::PeerError;

/// The README's Rust code, compiled by `cargo test --doc` so the embedding
/// snippet cannot drift from the API (it is `no_run`: it names servers that
/// do not exist here).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
