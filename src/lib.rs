//! zkfle: ZooKeeper's leader-election layer (QuorumCnxManager and
//! FastLeaderElection), wire-compatible with Apache ZooKeeper 3.8.

pub mod admin;
pub mod api;
pub mod bench;
pub mod cnx;
pub mod config;
pub mod election;
pub mod peer;
pub mod sim;
pub mod wire;
pub mod zab;

pub use api::{Event, LeaderInfo, PeerBuilder, PeerHandle, PeerState, Role, RoleEvent, ZkfleError};
