//! Fencing: once zkfle's Zab session established a new leader's epoch, the
//! deposed leader rejoins as a follower of that epoch (its vote and its log
//! are Zab's), and the store's client address carries no replication
//! protocol of its own that an old leader could use. Also the line
//! protocol's error answers. Ports 31400..=31499.

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

#[test]
fn a_deposed_leader_rejoins_in_the_new_epoch_and_kv_address_takes_no_replication() {
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports { base: 31400 };
    let cfgs = write_store_configs(dir.path(), 3, ports);
    let mut nodes: Vec<Option<Node>> = (1..=3).map(|s| Some(start(&cfgs, s))).collect();
    let old = eventually("a first leader", T, || leader_of(&nodes));
    let old_sid = old as i64 + 1;
    let old_epoch = nodes[old].as_ref().unwrap().epoch();
    let mut c = Client::connect(ports.kv(old_sid), Duration::from_secs(10)).unwrap();
    assert!(c.request("SET a 1").unwrap().starts_with("OK 0x"));

    nodes[old].take().unwrap().kill();
    let new = eventually("a new leader", T, || leader_of(&nodes));
    let new_sid = new as i64 + 1;
    let new_epoch = nodes[new].as_ref().unwrap().epoch();
    assert!(new_epoch > old_epoch, "epochs {old_epoch} -> {new_epoch}");
    let f = (0..3).find(|&i| i != old && i != new).unwrap();
    let fsid = f as i64 + 1;
    let follower = nodes[f].as_ref().unwrap();
    eventually("the follower synchronized", T, || {
        follower.is_synced_follower().then_some(())
    });

    // The old example's replication handshake is gone: the client address
    // answers it like any unknown command, and nothing changes.
    let mut fc = Client::connect(ports.kv(fsid), Duration::from_secs(10)).unwrap();
    assert_eq!(
        fc.request(&format!("LEAD {old_sid}")).unwrap(),
        "ERR unknown command LEAD"
    );
    assert_eq!(
        fc.request(&format!("ENTRY {:x} stale yes", (old_epoch << 32) | 0xffff))
            .unwrap(),
        "ERR unknown command ENTRY"
    );
    assert_eq!(fc.request("LOCAL stale").unwrap(), "NOTFOUND");
    assert_eq!(fc.request("LOCAL a").unwrap(), "VALUE 1");
    assert!(follower.is_synced_follower());
    let mut nc = Client::connect(ports.kv(new_sid), Duration::from_secs(10)).unwrap();
    let ok = nc.request("SET b 2").unwrap();
    assert!(
        ok.starts_with(&format!("OK {:#x}", (new_epoch << 32) | 1)),
        "the first write of the new epoch: {ok}"
    );
    eventually("the follower got b", T, || {
        (fc.request("LOCAL b").unwrap() == "VALUE 2").then_some(())
    });

    // The deposed leader comes back: it follows, carries the new epoch,
    // and redirects writes and linearizable reads.
    nodes[old] = Some(start(&cfgs, old_sid));
    let back = nodes[old].as_ref().unwrap();
    eventually("the deposed leader synchronized as a follower", T, || {
        back.is_synced_follower().then_some(())
    });
    assert_eq!(back.epoch(), new_epoch);
    let mut bc = Client::connect(ports.kv(old_sid), Duration::from_secs(10)).unwrap();
    assert_eq!(
        bc.request("SET c 3").unwrap(),
        format!("REDIRECT {}", ports.kv(new_sid))
    );
    assert_eq!(
        bc.request("GET a").unwrap(),
        format!("REDIRECT {}", ports.kv(new_sid))
    );
    eventually("the deposed leader applied b", T, || {
        (bc.request("LOCAL b").unwrap() == "VALUE 2").then_some(())
    });
    for n in nodes.into_iter().flatten() {
        n.kill();
    }
}

#[test]
fn bad_requests_get_err_and_the_connection_stays_usable() {
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports { base: 31450 };
    let cfgs = write_store_configs(dir.path(), 3, ports);
    // Only one node of three: no leader can exist.
    let n = start(&cfgs, 1);
    let mut c = Client::connect(n.kv_addr(), Duration::from_secs(10)).unwrap();
    for bad in [
        "FOO",
        "SET onlykey",
        "GET",
        "LOCAL a b",
        "set a b",
        "SET a b c",
    ] {
        let a = c.request(bad).unwrap();
        assert!(a.starts_with("ERR "), "{bad:?} -> {a:?}");
    }
    assert!(c.request("").unwrap().starts_with("ERR "));
    assert_eq!(c.request("LOCAL nothing").unwrap(), "NOTFOUND");
    assert!(c.request("SET a b").unwrap().starts_with("ERR no leader"));
    assert!(c.request("GET a").unwrap().starts_with("ERR no leader"));
    n.kill();
}
