//! The replicated store under leader failure: a client writes continuously
//! while the leader is killed (an in-process crash: sockets closed, threads
//! gone, only fsynced data left) and later restarted, three times. After
//! that every acknowledged write is on the leader (`GET`) and on every
//! follower (`LOCAL`). Also the epoch files zkfle owns: after the same
//! kind of crashes every data dir holds the epoch the last leader's Zab
//! session established, and zkfle restarts on all of them. Ports
//! 31200..=31299.
//!
//! The store nodes run in this process through the example's own module
//! (`examples/replicated_kv/kv.rs`), so the test needs no prebuilt example
//! binary.

#[path = "common/embed.rs"]
mod embed;
#[path = "../examples/replicated_kv/kv.rs"]
mod kv;
#[path = "common/kv_nodes.rs"]
mod kv_nodes;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use embed::*;
use kv::{Client, Node};
use kv_nodes::{leader_of, start};
use parking_lot::Mutex;

const T: Duration = Duration::from_secs(60);

/// The two tests each run a three-node ensemble: one at a time on a small
/// machine.
static SERIAL: Mutex<()> = Mutex::new(());

/// One acknowledged write.
#[derive(Debug, Clone)]
struct Acked {
    key: String,
    value: String,
    at: Instant,
}

/// Writes `k<i> v<i>` for ever larger `i`, following REDIRECTs, trying
/// every node when there is no leader; records what was acknowledged.
fn writer(
    addrs: Vec<SocketAddr>,
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<Acked>>>,
) -> (u64, u64) {
    let mut i = 0u64;
    let mut unknown = 0u64;
    let mut target = 0usize;
    let mut client: Option<Client> = None;
    while !stop.load(Ordering::SeqCst) {
        let c = match client.as_mut() {
            Some(c) => c,
            None => match Client::connect(addrs[target], Duration::from_secs(5)) {
                Ok(c) => client.insert(c),
                Err(_) => {
                    target = (target + 1) % addrs.len();
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
            },
        };
        let (key, value) = (format!("k{i}"), format!("v{i}"));
        match c.request(&format!("SET {key} {value}")) {
            Ok(a) if a.starts_with("OK 0x") => {
                acked.lock().push(Acked {
                    key,
                    value,
                    at: Instant::now(),
                });
                i += 1;
            }
            Ok(a) if a.starts_with("REDIRECT ") => {
                let to: SocketAddr = a["REDIRECT ".len()..].parse().unwrap();
                target = addrs.iter().position(|&x| x == to).unwrap();
                client = None;
            }
            Ok(a) => {
                // No leader yet, or the write's fate is unknown: move on to
                // a new key, so a maybe-applied write is never reused.
                if a.starts_with("ERR outcome unknown") {
                    unknown += 1;
                    i += 1;
                } else {
                    assert!(a.starts_with("ERR "), "unexpected answer {a:?}");
                }
                target = (target + 1) % addrs.len();
                client = None;
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(_) => {
                unknown += 1;
                i += 1;
                target = (target + 1) % addrs.len();
                client = None;
            }
        }
    }
    (i, unknown)
}

#[test]
fn no_acknowledged_write_is_lost_across_repeated_leader_crashes() {
    let _serial = SERIAL.lock();
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports { base: 31200 };
    let cfgs = write_store_configs(dir.path(), 3, ports);
    let mut nodes: Vec<Option<Node>> = (1..=3).map(|sid| Some(start(&cfgs, sid))).collect();
    eventually("a serving leader", T, || leader_of(&nodes));

    let addrs: Vec<SocketAddr> = (1..=3).map(|s| ports.kv(s)).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::<Acked>::new()));
    let w = {
        let (addrs, stop, acked) = (addrs.clone(), stop.clone(), acked.clone());
        std::thread::spawn(move || writer(addrs, stop, acked))
    };

    let mut outages = Vec::new();
    for round in 0..3 {
        let base = acked.lock().len();
        eventually("40 more acknowledged writes", T, || {
            (acked.lock().len() >= base + 40).then_some(())
        });
        let li = leader_of(&nodes).expect("a leader before the crash");
        nodes[li].take().unwrap().kill();
        // Measured from the moment the crashed node is wholly gone: an
        // answer it sent while dying is not a new leader's.
        let killed_at = Instant::now();
        let new = eventually("a new serving leader", T, || leader_of(&nodes));
        let elected_ms = killed_at.elapsed().as_millis();
        let first_ack = eventually("a write acknowledged by the new leader", T, || {
            acked.lock().iter().find(|a| a.at > killed_at).map(|a| a.at)
        });
        let unavailable_ms = (first_ack - killed_at).as_millis();
        eprintln!(
            "round {round}: killed leader sid {}, new leader sid {} serving after {elected_ms} ms, \
             first acknowledged write after {unavailable_ms} ms",
            li + 1,
            new + 1
        );
        outages.push(unavailable_ms);
        // The crashed node comes back, recovers its log and catches up.
        nodes[li] = Some(start(&cfgs, li as i64 + 1));
        let back = nodes[li].as_ref().unwrap();
        eventually("the restarted node to synchronize", T, || {
            back.is_synced_follower().then_some(())
        });
    }
    stop.store(true, Ordering::SeqCst);
    let (attempted, unknown) = w.join().unwrap();
    let acked = acked.lock().clone();

    // Everything settles: one leader, two followers with its whole log.
    let li = eventually("a serving leader at the end", T, || leader_of(&nodes));
    let leader = nodes[li].as_ref().unwrap();
    eventually(
        "followers holding and applying the leader's whole log",
        T,
        || {
            let last = leader.last_zxid();
            nodes
                .iter()
                .flatten()
                .all(|n| {
                    n.last_zxid() == last
                        && n.applied_zxid() == last
                        && (n.is_serving_leader() || n.is_synced_follower())
                })
                .then_some(())
        },
    );
    let mut lost = Vec::new();
    let mut on_leader = Client::connect(leader.kv_addr(), Duration::from_secs(10)).unwrap();
    let mut locals: Vec<Client> = nodes
        .iter()
        .flatten()
        .map(|n| Client::connect(n.kv_addr(), Duration::from_secs(10)).unwrap())
        .collect();
    for a in &acked {
        let want = format!("VALUE {}", a.value);
        let got = on_leader.request(&format!("GET {}", a.key)).unwrap();
        if got != want {
            lost.push(format!("GET {} on the leader: {got}", a.key));
        }
        for (c, n) in locals.iter_mut().zip(nodes.iter().flatten()) {
            let got = c.request(&format!("LOCAL {}", a.key)).unwrap();
            if got != want {
                lost.push(format!("LOCAL {} on sid {}: {got}", a.key, n.sid()));
            }
        }
    }
    eprintln!(
        "failover run: {} writes attempted, {} acknowledged, {} outcome unknown, {} lost; \
         time without an acknowledging leader per crash (ms): {outages:?}",
        attempted,
        acked.len(),
        unknown,
        lost.len()
    );
    assert!(acked.len() >= 120, "the client kept writing");
    assert!(lost.is_empty(), "acknowledged writes lost: {lost:?}");
    for n in nodes.into_iter().flatten() {
        n.kill();
    }
}

/// `dataDir/version-2/<name>` as zkfle wrote it.
fn epoch_file(data: &Path, name: &str) -> i64 {
    let p = data.join("version-2").join(name);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    text.trim()
        .parse()
        .unwrap_or_else(|e| panic!("{}: {text:?}: {e}", p.display()))
}

/// Waits until every running node serves the leader's epoch (leading, or
/// following synchronized) and returns that epoch.
fn settled_epoch(nodes: &[Option<Node>]) -> i64 {
    eventually("every node serving the leader's epoch", T, || {
        let li = leader_of(nodes)?;
        let epoch = nodes[li].as_ref()?.epoch();
        nodes
            .iter()
            .flatten()
            .all(|n| n.epoch() == epoch && (n.is_serving_leader() || n.is_synced_follower()))
            .then_some(epoch)
    })
}

#[test]
fn epoch_files_stay_consistent_across_leader_crashes_and_zkfle_restarts() {
    let _serial = SERIAL.lock();
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports { base: 31250 };
    let cfgs = write_store_configs(dir.path(), 3, ports);
    let data = |sid: usize| dir.path().join(format!("node{sid}"));
    let mut nodes: Vec<Option<Node>> = (1..=3).map(|sid| Some(start(&cfgs, sid))).collect();
    let mut acked = Vec::new();
    let mut epochs = Vec::new();
    for round in 0..4 {
        let epoch = settled_epoch(&nodes);
        epochs.push(epoch);
        let li = leader_of(&nodes).expect("the settled leader");
        // The store stamps with zkfle's epoch: what the Zab session
        // established, as the embedded peer reports it.
        assert_eq!(nodes[li].as_ref().unwrap().handle().current_epoch(), epoch);
        for sid in 1..=3 {
            let (acc, cur) = (
                epoch_file(&data(sid), "acceptedEpoch"),
                epoch_file(&data(sid), "currentEpoch"),
            );
            assert!(
                acc >= cur,
                "round {round}, sid {sid}: acceptedEpoch {acc} < currentEpoch {cur}"
            );
            assert_eq!((acc, cur), (epoch, epoch), "round {round}, sid {sid}");
        }
        let mut c = Client::connect(ports.kv(li as i64 + 1), Duration::from_secs(10)).unwrap();
        for i in 0..5 {
            let (k, v) = (format!("r{round}k{i}"), format!("v{i}"));
            let a = c.request(&format!("SET {k} {v}")).unwrap();
            assert!(
                a.starts_with(&format!("OK {:#x}", (epoch << 32) | (i + 1))),
                "{a}"
            );
            acked.push((k, v));
        }
        if round == 3 {
            break;
        }
        nodes[li].take().unwrap().kill();
        eventually("a new serving leader", T, || leader_of(&nodes));
        nodes[li] = Some(start(&cfgs, li as i64 + 1));
    }
    assert!(
        epochs.windows(2).all(|w| w[0] < w[1]),
        "every new leadership has a newer epoch: {epochs:?}"
    );
    let last_epoch = *epochs.last().unwrap();

    // Every data dir passes zkfle's startup check with its log.
    let lasts: Vec<i64> = nodes.iter().flatten().map(|n| n.last_zxid()).collect();
    for n in nodes.iter_mut() {
        n.take().unwrap().kill();
    }
    for (i, &last) in lasts.iter().enumerate() {
        let e = zkfle::peer::EpochFiles::open(&data(i + 1), last)
            .unwrap_or_else(|e| panic!("sid {}: zkfle refuses its data dir: {e}", i + 1));
        assert!(e.accepted() >= e.current(), "sid {}", i + 1);
        assert_eq!(e.current(), last_epoch, "sid {}", i + 1);
        assert!(
            last >> 32 <= e.current(),
            "sid {}: log ahead of currentEpoch",
            i + 1
        );
    }

    // And the ensemble restarts on them: a newer epoch, nothing lost.
    nodes = (1..=3).map(|sid| Some(start(&cfgs, sid))).collect();
    let epoch = settled_epoch(&nodes);
    assert!(epoch > last_epoch, "{last_epoch} -> {epoch}");
    let li = leader_of(&nodes).expect("the settled leader");
    let mut c = Client::connect(ports.kv(li as i64 + 1), Duration::from_secs(10)).unwrap();
    for (k, v) in &acked {
        assert_eq!(
            c.request(&format!("GET {k}")).unwrap(),
            format!("VALUE {v}")
        );
    }
    for n in nodes.into_iter().flatten() {
        n.kill();
    }
}
