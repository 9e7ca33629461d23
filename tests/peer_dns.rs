//! Host names on the quorum port (issue 16 item 5): a learner looks the
//! leader's `server.N` name up before every connection attempt, as
//! ZooKeeper's `Learner.findLeader` does, instead of dialling the address
//! the name had when the configuration was read. Three in-process peers,
//! each with its own fake resolver, so one peer can see a name the others
//! do not (or see it elsewhere).
//!
//! Loopback only: 127.0.0.1 and 127.0.0.2. Ports 16000–16099.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use zkfle::config::ZkConfig;
use zkfle::net::FakeResolver;
use zkfle::{PeerBuilder, PeerHandle, Role};

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const LOCAL2: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const LONG: Duration = Duration::from_secs(30);

/// zoo.cfg text for sid `me` of three servers named `zk1`..`zk3`.
fn cfg_text(base: u16, me: i64, dir: &Path) -> String {
    let mut t = format!(
        "tickTime=100\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort={}\nclientPortAddress=127.0.0.1\n",
        dir.join(format!("node{me}")).display(),
        base + me as u16
    );
    for s in 1..=3u16 {
        t.push_str(&format!(
            "server.{s}=zk{s}:{}:{}\n",
            base + 10 + s,
            base + 20 + s
        ));
    }
    t
}

/// Starts sid `me` resolving names through `resolver`.
fn start(base: u16, me: i64, dir: &Path, resolver: &FakeResolver) -> PeerHandle {
    let text = cfg_text(base, me, dir);
    let path = dir.join(format!("zoo{me}.cfg"));
    let cfg = ZkConfig::parse_with_resolver(&text, &path, Some(me), Arc::new(resolver.clone()))
        .expect("config parses");
    PeerBuilder::from_config(cfg)
        .no_admin()
        .start()
        .expect("peer starts")
}

fn resolver_with(names: &[(&str, IpAddr)]) -> FakeResolver {
    let r = FakeResolver::new();
    for (n, ip) in names {
        r.set(n, *ip);
    }
    r
}

/// Polls `cond` every 10 ms; panics naming `what` after `limit`.
fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < end, "timed out after {limit:?}: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Starts sids 2 and 3 with every name at 127.0.0.1, so they elect 3 (the
/// larger sid with equal history), and sid 1 with `one`.
fn ensemble(base: u16, dir: &Path, one: &FakeResolver) -> Vec<PeerHandle> {
    let all = [("zk1", LOCAL), ("zk2", LOCAL), ("zk3", LOCAL)];
    let p3 = start(base, 3, dir, &resolver_with(&all));
    let p2 = start(base, 2, dir, &resolver_with(&all));
    wait_for("sid 3 to lead sids 2 and 3", LONG, || {
        p3.role().is_leader() && p2.role().leader() == Some(3)
    });
    let p1 = start(base, 1, dir, one);
    vec![p1, p2, p3]
}

#[test]
fn a_leader_name_unresolved_at_start_is_followed_once_it_resolves() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = 16000;
    // sid 1 cannot resolve zk3 at all when it reads its configuration.
    let one = resolver_with(&[("zk1", LOCAL), ("zk2", LOCAL)]);
    let peers = ensemble(base, dir.path(), &one);
    // Sid 3 dials sid 1's election port (larger sid keeps the link), so
    // sid 1 learns of the leader and tries its quorum port: every attempt
    // asks the resolver again.
    let before = one.lookups("zk3");
    wait_for("sid 1 to look zk3 up again while following", LONG, || {
        one.lookups("zk3") >= before + 3
    });
    assert!(
        !matches!(peers[0].role(), Role::Following { .. }),
        "sid 1 follows a leader whose name never resolved: {:?}",
        peers[0].role()
    );
    one.set("zk3", LOCAL);
    wait_for("sid 1 to follow sid 3 once zk3 resolves", LONG, || {
        peers[0].role().leader() == Some(3) && matches!(peers[0].role(), Role::Following { .. })
    });
    for p in &peers {
        p.shutdown();
    }
}

#[test]
fn a_leader_whose_name_moves_is_followed_at_its_new_address() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = 16050;
    // sid 1 reads zk3 as 127.0.0.2, where nothing listens.
    let one = resolver_with(&[("zk1", LOCAL), ("zk2", LOCAL), ("zk3", LOCAL2)]);
    let peers = ensemble(base, dir.path(), &one);
    let before = one.lookups("zk3");
    wait_for("sid 1 to dial zk3 again and again", LONG, || {
        one.lookups("zk3") >= before + 3
    });
    assert!(
        !matches!(peers[0].role(), Role::Following { .. }),
        "sid 1 follows through an address nobody listens on: {:?}",
        peers[0].role()
    );
    // The name moves to where sid 3 really is: the next attempt finds it
    // (a learner dialling the address read at start-up never would).
    one.set("zk3", LOCAL);
    wait_for("sid 1 to follow sid 3 at zk3's new address", LONG, || {
        matches!(peers[0].role(), Role::Following { leader: 3, .. })
    });
    for p in &peers {
        p.shutdown();
    }
}
