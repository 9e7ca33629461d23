//! In-process replicated-store nodes for the kv tests. The including test
//! must declare the example's module as `mod kv` (by `#[path]`) at its root.
#![allow(dead_code)]

use std::path::PathBuf;

use super::kv::Node;
use zkfle::config::ZkConfig;

/// Starts sid's node from its config (`cfgs[sid - 1]`).
pub fn start(cfgs: &[PathBuf], sid: i64) -> Node {
    let cfg = ZkConfig::load(&cfgs[sid as usize - 1], Some(sid)).unwrap();
    Node::start(cfg).unwrap()
}

/// The index of the node that leads with a synced quorum, if any.
pub fn leader_of(nodes: &[Option<Node>]) -> Option<usize> {
    nodes
        .iter()
        .position(|n| n.as_ref().is_some_and(|n| n.is_serving_leader()))
}
