//! zkfle: ZooKeeper's leader-election layer (QuorumCnxManager and
//! FastLeaderElection), wire-compatible with Apache ZooKeeper 3.8.

#![deny(missing_docs)]

pub mod admin;
pub mod api;
#[cfg(feature = "cli")]
pub mod bench;
pub mod cnx;
pub mod config;
pub mod election;
pub mod logstore;
pub mod net;
pub mod peer;
pub mod sim;
pub mod tls;
pub mod wire;
pub mod zab;

pub use api::{
    Event, LeaderInfo, PeerBuilder, PeerHandle, PeerState, ReplicationError, ReplicationResult,
    Role, RoleEvent, StateMachine, ZkfleError,
};

/// The README's Rust code, compiled by `cargo test --doc` so the embedding
/// snippet cannot drift from the API (it is `no_run`: it names servers that
/// do not exist here).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
