//! Helpers for driving one `zab::Leader` or `zab::Learner` by hand: vectors
//! as packets, the packets an action list sends, configs.
#![allow(dead_code)]

#[path = "wire.rs"]
mod wire;

use std::time::Duration;
use zkfle::config::QuorumVerifier;
use zkfle::wire::zab::QuorumPacket;
use zkfle::zab::{ConnId, LeaderAction, LearnerAction, Mode, ZabConfig};

pub const TICK: Duration = Duration::from_millis(100);
pub const T0: Duration = Duration::from_secs(10);

/// The raw bytes of `shared/vectors/<name>.hex`.
pub fn vector(name: &str) -> Vec<u8> {
    wire::load_vector(name).bytes
}

/// A vector decoded as one quorum packet (trailing bytes, e.g. a SNAP
/// stream, are left out).
pub fn vpacket(name: &str) -> QuorumPacket {
    let bytes = vector(name);
    QuorumPacket::decode(&bytes).expect("vector decodes").0
}

/// The first `n` bytes of a vector.
pub fn vprefix(name: &str, n: usize) -> Vec<u8> {
    vector(name)[..n].to_vec()
}

/// The config text a Java 3.8 leader sent in the recorded NEWLEADER.
pub fn recorded_config_text() -> String {
    String::from_utf8(vpacket("zab-newleader-config").data.expect("data")).expect("utf-8")
}

/// A three-voter (plus `observers`) ensemble seen from `me`.
pub fn cfg(me: i64, mode: Mode) -> ZabConfig {
    cfg_with(me, &[1, 2, 3], &[], mode)
}

pub fn cfg_with(me: i64, voters: &[i64], observers: &[i64], mode: Mode) -> ZabConfig {
    ZabConfig {
        my_sid: me,
        tick_time: TICK,
        init_limit: 10,
        sync_limit: 3,
        verifier: QuorumVerifier::majority(voters.iter().copied()),
        servers: voters.iter().chain(observers).copied().collect(),
        config_text: recorded_config_text(),
        mode,
    }
}

/// Encoded packets a leader's actions send, with their connection.
pub fn sent(actions: &[LeaderAction]) -> Vec<(ConnId, Vec<u8>)> {
    actions
        .iter()
        .filter_map(|a| match a {
            LeaderAction::Send { conn, packet } => Some((*conn, packet.to_bytes())),
            _ => None,
        })
        .collect()
}

/// Types of the packets a leader's actions send.
pub fn sent_types(actions: &[LeaderAction]) -> Vec<i32> {
    actions
        .iter()
        .filter_map(|a| match a {
            LeaderAction::Send { packet, .. } => Some(packet.packet_type),
            _ => None,
        })
        .collect()
}

/// Encoded packets a learner's actions send.
pub fn lsent(actions: &[LearnerAction]) -> Vec<Vec<u8>> {
    actions
        .iter()
        .filter_map(|a| match a {
            LearnerAction::Send(p) => Some(p.to_bytes()),
            _ => None,
        })
        .collect()
}

/// `(type, zxid)` of the packets a learner's actions send.
pub fn lsent_types(actions: &[LearnerAction]) -> Vec<(i32, i64)> {
    actions
        .iter()
        .filter_map(|a| match a {
            LearnerAction::Send(p) => Some((p.packet_type, p.zxid)),
            _ => None,
        })
        .collect()
}

/// A packet from its parts.
pub fn pkt(t: i32, zxid: i64, data: Option<&[u8]>) -> QuorumPacket {
    QuorumPacket::new(t, zxid, data.map(<[u8]>::to_vec))
}

/// A zxid from epoch and counter.
pub fn z(epoch: i64, counter: i64) -> i64 {
    (epoch << 32) | counter
}

/// A 20-byte LearnerInfo payload, with the store marker if `marked`.
pub fn learner_info(sid: i64, config_version: i64, marked: bool) -> Vec<u8> {
    let mut d = zkfle::wire::zab::LearnerInfo {
        sid,
        protocol_version: 0x10000,
        config_version: Some(config_version),
    }
    .encode();
    if marked {
        d.extend_from_slice(&zkfle::wire::zab::StoreMarker::replicated_log().encode());
    }
    d
}

/// LEADERINFO data, with the store marker if `marked`.
pub fn leader_info_data(marked: bool) -> Vec<u8> {
    let mut d = 0x10000i32.to_be_bytes().to_vec();
    if marked {
        d.extend_from_slice(&zkfle::wire::zab::StoreMarker::replicated_log().encode());
    }
    d
}
