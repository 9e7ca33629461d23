//! Fencing: once zkfle's Zab session established a new leader's epoch, the
//! deposed leader's epoch is refused (and so is any epoch other than the
//! follower's own zkfle role's), and the deposed leader itself rejoins as a
//! follower.
//! Also the line protocol's error answers. Ports 31400..=31499.

#[path = "common/embed.rs"]
mod embed;
#[path = "../examples/replicated_kv/kv.rs"]
mod kv;
#[path = "common/kv_nodes.rs"]
mod kv_nodes;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use embed::*;
use kv::{Client, Node};
use kv_nodes::{leader_of, start};

const T: Duration = Duration::from_secs(60);

/// Speaks the replication protocol as a leader would; returns each answer
/// line (`None` once the follower closed).
struct FakeLeader {
    out: TcpStream,
    input: BufReader<TcpStream>,
}

impl FakeLeader {
    fn connect(addr: std::net::SocketAddr, sid: i64) -> FakeLeader {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut f = FakeLeader {
            out: s.try_clone().unwrap(),
            input: BufReader::new(s),
        };
        f.out.write_all(format!("LEAD {sid}\n").as_bytes()).unwrap();
        f
    }
    fn line(&mut self) -> Option<String> {
        let mut l = String::new();
        match self.input.read_line(&mut l) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(l.trim_end().to_string()),
        }
    }
    fn send(&mut self, l: &str) {
        let _ = self.out.write_all(format!("{l}\n").as_bytes());
    }
}

#[test]
fn a_deposed_leader_cannot_get_a_stale_epoch_write_accepted() {
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

    // The deposed leader's sid is no longer the one this follower follows.
    let mut fake = FakeLeader::connect(ports.kv(fsid), old_sid);
    assert_eq!(fake.line().as_deref(), Some("NOTFOLLOWING"));

    // Under the current leader's sid, an epoch zkfle's Zab session did not
    // establish for this follower (here a future one) is refused too: only
    // the epoch of its own `Role::Following` is acceptable.
    let mut fake = FakeLeader::connect(ports.kv(fsid), new_sid);
    let info = fake.line().unwrap();
    assert!(info.starts_with(&format!("INFO {new_epoch}")), "{info}");
    fake.send(&format!("EPOCH {}", new_epoch + 1));
    let answer = fake.line().unwrap_or_default();
    assert!(
        answer.starts_with(&format!("NACK epoch {}", new_epoch + 1)),
        "{answer}"
    );
    assert_eq!(fake.line(), None, "the follower closed the connection");

    // Even under the current leader's sid, the old epoch is refused and a
    // stale entry after it never lands.
    let mut fake = FakeLeader::connect(ports.kv(fsid), new_sid);
    let info = fake.line().unwrap();
    assert!(info.starts_with(&format!("INFO {new_epoch}")), "{info}");
    fake.send(&format!("EPOCH {old_epoch}"));
    let stale = (old_epoch << 32) | 0xffff;
    fake.send(&format!("ENTRY {stale:x} stale yes"));
    let answer = fake.line().unwrap_or_default();
    assert!(answer.starts_with("NACK stale epoch"), "{answer}");
    assert_eq!(fake.line(), None, "the follower closed the connection");
    let mut fc = Client::connect(ports.kv(fsid), Duration::from_secs(10)).unwrap();
    assert_eq!(fc.request("LOCAL stale").unwrap(), "NOTFOUND");
    // The real leader's session was not disturbed.
    assert!(follower.is_synced_follower());
    let mut nc = Client::connect(ports.kv(new_sid), Duration::from_secs(10)).unwrap();
    assert!(nc.request("SET b 2").unwrap().starts_with("OK 0x"));
    eventually("the follower got b", T, || {
        (fc.request("LOCAL b").unwrap() == "VALUE 2").then_some(())
    });

    // The deposed leader comes back: it follows, carries the new epoch,
    // and redirects writes.
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
    assert_eq!(bc.request("LOCAL b").unwrap(), "VALUE 2");
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
