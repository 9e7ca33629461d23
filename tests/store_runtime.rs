//! The replicated log on real sockets and real files: three in-process
//! peers (`PeerBuilder` with a `FileLog` each in a temporary directory),
//! proposals through the leader, delivery to every state machine, catch-up
//! by DIFF, TRUNC and SNAP, leader loss with proposals in flight, and group
//! commit. Ports 36000..=36599 (one base of 100 per test).

#[path = "common/store.rs"]
mod store;

use std::time::{Duration, Instant};

use store::*;
use zkfle::ReplicationError;

const LONG: Duration = Duration::from_secs(30);

fn init_log() {
    let _ = env_logger::builder().is_test(true).try_init();
}

#[test]
fn proposals_on_the_leader_are_applied_in_order_on_every_peer() {
    init_log();
    let dir = tempfile::tempdir().unwrap();
    let setup = Setup::new(36000, dir.path());
    let nodes = setup.start_all();
    let refs: Vec<&Node> = nodes.iter().collect();
    let l = await_leader(&refs, LONG);
    let leader = &nodes[l].handle;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // 200 proposals in flight at once: they resolve in submission order
    // with increasing zxids of the leader's epoch.
    let zxids: Vec<i64> = rt.block_on(async {
        let futs: Vec<_> = (0..200)
            .map(|i| leader.propose(format!("v{i}").into_bytes()))
            .collect();
        let mut out = Vec::new();
        for f in futs {
            out.push(f.await.expect("committed"));
        }
        out
    });
    assert!(zxids.windows(2).all(|w| w[0] < w[1]), "{zxids:x?}");
    assert!(zxids.iter().all(|z| z >> 32 == leader.current_epoch()));
    let last = *zxids.last().unwrap();
    // Resolved means applied here.
    assert!(leader.applied_zxid() >= last);
    assert_eq!(nodes[l].applied.last(), last);
    for n in &nodes {
        eventually("every peer applies every entry", LONG, || {
            (n.applied.last() == last).then_some(())
        });
        assert_eq!(n.applied.zxids(), zxids, "sid {}", n.sid);
        let data = n.applied.map();
        assert_eq!(&data[&zxids[7]][..], b"v7");
        assert!(n.applied.violations.lock().is_empty());
    }
    // Followers refuse, naming the leader.
    let f = (l + 1) % 3;
    assert_eq!(
        nodes[f].handle.propose_blocking(b"x".to_vec()),
        Err(ReplicationError::NotLeader {
            leader: Some(nodes[l].sid)
        })
    );
    assert_eq!(
        nodes[f].handle.read_barrier_blocking(),
        Err(ReplicationError::NotLeader {
            leader: Some(nodes[l].sid)
        })
    );
    // A read barrier is at least as new as every acknowledged write.
    let at = leader.read_barrier_blocking().expect("barrier");
    assert!(at >= last, "{at:#x} < {last:#x}");
    let started = Instant::now();
    let big = vec![0u8; zkfle::api::MAX_PROPOSAL_BYTES + 1];
    assert!(matches!(
        leader.propose_blocking(big),
        Err(ReplicationError::TooLarge { .. })
    ));
    assert!(started.elapsed() < LONG);
    for n in &nodes {
        n.handle.shutdown();
    }
    assert_eq!(
        leader.propose_blocking(b"late".to_vec()),
        Err(ReplicationError::Shutdown)
    );
}
