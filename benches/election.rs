//! Cost of the sans-IO election machine: one LOOKING notification through
//! the loop, one reply from a settled server (the path `zkfle bench notify`
//! exercises), and a whole 5-server cold start in the virtual-time testkit.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use zkfle::config::QuorumVerifier;
use zkfle::election::testkit::{notif, Cluster};
use zkfle::election::{Fle, FleConfig};
use zkfle::wire::ServerState;

fn bench_election(c: &mut Criterion) {
    let q = QuorumVerifier::majority(1..=5);
    let mut looking = Fle::new(FleConfig::new(1, q.clone()));
    looking.start_election(Duration::ZERO, 0, 0);
    let n = notif(ServerState::Looking, 2, 0, 1, 0);
    c.bench_function("fle_looking_notification_5", |b| {
        b.iter(|| {
            let out = looking.on_notification(Duration::from_millis(1), 2, black_box(&n));
            black_box(out)
        })
    });

    let mut settled = Fle::new(FleConfig::new(1, q.clone()));
    settled.start_election(Duration::ZERO, 0, 0);
    for s in 2..=5 {
        settled.on_notification(Duration::ZERO, s, &notif(ServerState::Looking, 5, 0, 1, 0));
    }
    assert_eq!(settled.state(), ServerState::Following);
    let asker = notif(ServerState::Looking, 100, 0, 1, 0);
    c.bench_function("fle_settled_reply", |b| {
        b.iter(|| black_box(settled.on_notification(Duration::ZERO, 100, black_box(&asker))))
    });

    c.bench_function("testkit_cold_start_5", |b| {
        b.iter(|| {
            let mut cl = Cluster::majority(5, true);
            cl.start_all();
            let ok = cl.run_until(Duration::from_secs(5), |c| c.all_up_decided());
            assert!(ok);
            black_box(cl.now)
        })
    });
}

criterion_group!(benches, bench_election);
criterion_main!(benches);
