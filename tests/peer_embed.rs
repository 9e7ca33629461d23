//! The peer as a library: `QuorumPeer::start` with a zxid supplier, the
//! way a replicated store embeds it, and `Admin::start` beside it (the peer
//! never starts its four-letter words itself). The vote order is (peerEpoch, zxid,
//! sid), so the peer with the longest log leads even with the lowest sid.
//!
//! Ports: 25651..=25903 (bases 25650 and 25700; each base uses +1..3,
//! +101..103, +201..203).

#[path = "common/peer.rs"]
mod peer;

use peer::*;
use std::sync::Arc;
use std::time::Duration;
use zkfle::admin::Admin;
use zkfle::config::ZkConfig;
use zkfle::peer::{PeerOptions, QuorumPeer};
use zkfle::wire::ServerState;

#[test]
fn the_peer_with_the_highest_supplied_zxid_leads_and_status_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports { base: 25700 };
    let cfgs = write_ensemble(dir.path(), 3, ports, "");
    let mut peers: Vec<(QuorumPeer, Admin)> = cfgs
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let cfg = ZkConfig::load(c, None).unwrap();
            // Sid 1 has logged more of epoch 0 than the others.
            let zxid = if i == 0 { 7 } else { 3 };
            let opts = PeerOptions {
                zxid_supplier: Some(Arc::new(move || zxid)),
                ..PeerOptions::default()
            };
            let peer = QuorumPeer::start(cfg, opts).unwrap();
            let admin = Admin::start(&peer).unwrap();
            (peer, admin)
        })
        .collect();
    for (p, _) in &peers {
        let (s, ok) = p.status().wait_until(Duration::from_secs(20), |s| {
            s.serving && s.state != ServerState::Looking
        });
        assert!(ok, "sid {} never decided: {s:?}", p.my_sid());
        assert_eq!(s.leader_sid, 1, "sid {}: the longest log wins", p.my_sid());
        assert_eq!(s.election_count, 1);
        assert!(s.last_election_ms.is_some());
    }
    assert_eq!(peers[0].0.status().snapshot().state, ServerState::Leading);
    // zab integration: once the leader has established epoch 1 its zxid is
    // the epoch start, as a 3.8 leader's (PROTOCOL.md §6.3); it voted with 7.
    assert_eq!(peers[0].0.status().snapshot().last_zxid, 1 << 32);
    // Zab ran: the new epoch is persisted and published.
    let s = peers[0].0.status().snapshot();
    assert_eq!(s.current_epoch, 1, "{s:?}");
    assert_eq!(
        std::fs::read(dir.path().join("node1/version-2/currentEpoch")).unwrap(),
        b"1"
    );
    // mntr over the client port agrees with the in-process status.
    let m = mntr(ports.client_addr(2)).expect("mntr");
    assert_eq!(m["zk_leader_sid"], "1");
    assert_eq!(m["zk_server_state"], "follower");
    for (p, a) in peers.iter_mut() {
        a.shutdown();
        p.shutdown();
    }
    assert!(mntr(ports.client_addr(2)).is_none(), "client port closed");
    assert!(!listening(ports.election(1)), "election port closed");
}

#[test]
fn a_lone_looking_peer_shuts_down_promptly_and_closes_its_ports() {
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports { base: 25650 };
    let cfgs = write_ensemble(dir.path(), 3, ports, "");
    let cfg = ZkConfig::load(&cfgs[0], None).unwrap();
    let mut p = QuorumPeer::start(cfg, PeerOptions::default()).unwrap();
    let mut admin = Admin::start(&p).unwrap();
    // Alone of three it can never decide: mntr says so.
    let m = poll(
        Duration::from_secs(10),
        "mntr from the lone peer after it entered LOOKING",
        || match mntr(ports.client_addr(1)) {
            Some(m) if m["zk_election_count"] == "1" => Ok(m),
            other => Err(format!("{other:?}")),
        },
    );
    assert_eq!(m["zk_server_state"], "looking");
    assert_eq!(m["zk_peer_state"], "looking");
    assert_eq!(m["zk_leader_sid"], "-1");
    assert_eq!(m["zk_election_count"], "1");
    assert_eq!(m["zk_connected_peers"], "0");
    assert_eq!(
        fourlw(ports.client_addr(1), "srvr").as_deref(),
        Some("This ZooKeeper instance is not currently serving requests\n")
    );
    let t = std::time::Instant::now();
    admin.shutdown();
    p.shutdown();
    println!("shutdown while LOOKING took {:?}", t.elapsed());
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "shutdown hung: {:?}",
        t.elapsed()
    );
    assert!(!listening(ports.election(1)), "election port closed");
    assert!(
        fourlw(ports.client_addr(1), "ruok").is_none(),
        "client port closed"
    );
}
