//! The store's last zxid is its vote: after a full restart the replica
//! with the newest data leads, even though a stale replica has the largest
//! sid (which would win on a tie). Ports 31300..=31399.

#[path = "common/embed.rs"]
mod embed;
#[path = "../examples/replicated_kv/kv.rs"]
mod kv;
#[path = "common/kv_nodes.rs"]
mod kv_nodes;

use std::time::Duration;

use embed::*;
use kv::{Client, Node};
use kv_nodes::{leader_of, start};

const T: Duration = Duration::from_secs(60);

fn write(addr: std::net::SocketAddr, keys: std::ops::Range<u32>) {
    let mut c = Client::connect(addr, Duration::from_secs(10)).unwrap();
    for i in keys {
        let a = c.request(&format!("SET k{i} v{i}")).unwrap();
        assert!(a.starts_with("OK 0x"), "SET k{i}: {a}");
    }
}

#[test]
fn the_replica_with_the_newest_data_wins_the_next_election() {
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports { base: 31300 };
    let cfgs = write_store_configs(dir.path(), 3, ports);
    // Sids 1 and 2 first, so sid 3 joins as a follower.
    let mut nodes: Vec<Option<Node>> = vec![Some(start(&cfgs, 1)), Some(start(&cfgs, 2)), None];
    let li = eventually("a leader among sids 1 and 2", T, || leader_of(&nodes));
    nodes[2] = Some(start(&cfgs, 3));
    let n3 = nodes[2].as_ref().unwrap();
    eventually("sid 3 synchronized", T, || {
        n3.is_synced_follower().then_some(())
    });
    let leader_addr = nodes[li].as_ref().unwrap().kv_addr();
    write(leader_addr, 0..10);

    // Sid 3 falls behind: it misses k10..k19.
    nodes[2].take().unwrap().kill();
    write(leader_addr, 10..20);
    let newest: i64 = nodes.iter().flatten().map(|n| n.last_zxid()).max().unwrap();
    for n in nodes.iter_mut() {
        if let Some(n) = n.take() {
            n.kill();
        }
    }

    // Everyone restarts; the stale sid 3 first.
    let mut nodes: Vec<Option<Node>> = vec![None, None, Some(start(&cfgs, 3))];
    nodes[0] = Some(start(&cfgs, 1));
    nodes[1] = Some(start(&cfgs, 2));
    let li = eventually("a leader after the restart", T, || leader_of(&nodes));
    let leader = nodes[li].as_ref().unwrap();
    assert_ne!(leader.sid(), 3, "the stale replica must not lead");
    assert!(
        leader.last_zxid() >= newest,
        "leader sid {} has last zxid {:#x}, the newest replica had {newest:#x}",
        leader.sid(),
        leader.last_zxid()
    );
    // And sid 3 catches up from it.
    let n3 = nodes[2].as_ref().unwrap();
    eventually("sid 3 caught up", T, || {
        (n3.is_synced_follower()
            && n3.last_zxid() == leader.last_zxid()
            && n3.applied_zxid() == leader.last_zxid())
        .then_some(())
    });
    let mut c = Client::connect(n3.kv_addr(), Duration::from_secs(10)).unwrap();
    assert_eq!(c.request("LOCAL k19").unwrap(), "VALUE v19");
    assert!(c.request("SET x y").unwrap().starts_with("REDIRECT "));
    for n in nodes.into_iter().flatten() {
        n.kill();
    }
}

#[test]
fn a_write_no_quorum_acknowledged_is_truncated_when_its_leader_returns() {
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports { base: 31350 };
    let cfgs = write_store_configs(dir.path(), 3, ports);
    let mut nodes: Vec<Option<Node>> = (1..=3).map(|s| Some(start(&cfgs, s))).collect();
    let li = eventually("a leader", T, || leader_of(&nodes));
    let lsid = li as i64 + 1;
    for n in nodes.iter().flatten() {
        if n.sid() != lsid {
            eventually("followers synchronized", T, || {
                n.is_synced_follower().then_some(())
            });
        }
    }
    write(ports.kv(lsid), 0..5);

    // Both followers crash: the leader appends the next write but no
    // quorum can acknowledge it.
    for (i, n) in nodes.iter_mut().enumerate() {
        if i != li {
            n.take().unwrap().kill();
        }
    }
    let mut c = Client::connect(ports.kv(lsid), Duration::from_secs(30)).unwrap();
    let a = c.request("SET orphan yes").unwrap();
    assert!(a.starts_with("ERR outcome unknown"), "{a}");
    let old = nodes[li].take().unwrap();
    let orphan_zxid = old.last_zxid();
    assert!(
        old.log().iter().any(|e| e.key == "orphan"),
        "the leader logged it"
    );
    old.kill();

    // The followers elect a new leader and write on.
    for (i, n) in nodes.iter_mut().enumerate() {
        if i != li {
            *n = Some(start(&cfgs, i as i64 + 1));
        }
    }
    let ni = eventually("a new leader", T, || leader_of(&nodes));
    let new_leader = nodes[ni].as_ref().unwrap();
    assert!(new_leader.epoch() > orphan_zxid >> 32);
    write(new_leader.kv_addr(), 5..8);

    // The old leader returns: it drops the orphan and takes the new log.
    nodes[li] = Some(start(&cfgs, lsid));
    let back = nodes[li].as_ref().unwrap();
    let new_leader = nodes[ni].as_ref().unwrap();
    eventually("the old leader caught up", T, || {
        (back.is_synced_follower()
            && back.last_zxid() == new_leader.last_zxid()
            && back.applied_zxid() == new_leader.last_zxid())
        .then_some(())
    });
    assert_eq!(back.log(), new_leader.log(), "identical logs after sync");
    let mut bc = Client::connect(back.kv_addr(), Duration::from_secs(10)).unwrap();
    assert_eq!(bc.request("LOCAL orphan").unwrap(), "NOTFOUND");
    assert_eq!(bc.request("LOCAL k7").unwrap(), "VALUE v7");
    for n in nodes.into_iter().flatten() {
        n.kill();
    }
}
