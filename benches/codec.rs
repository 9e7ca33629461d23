//! Codec micro-benchmarks: the per-notification cost on the election hot
//! path (40-byte encode/decode, a 3.8 v2 body with its 132-byte config),
//! handshakes, and the Zab PING a follower answers every tickTime/2.
//! Inputs are the captured vectors in `shared/vectors/`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use zkfle::wire::frame::split_frame;
use zkfle::wire::handshake::Handshake;
use zkfle::wire::notification::{Notification, ServerState};
use zkfle::wire::zab::{self, QuorumPacket};

#[path = "../tests/common/wire.rs"]
mod wire;

fn notifications(c: &mut Criterion) {
    let vote = Notification {
        state: ServerState::Looking,
        leader: 3,
        zxid: 0x1_0000_0005,
        election_epoch: 2,
        peer_epoch: 1,
        version: 0,
    };
    c.bench_function("notification/encode_40", |b| {
        b.iter(|| black_box(black_box(&vote).encode_40()))
    });

    let body40 = vote.encode_40();
    c.bench_function("notification/decode_40", |b| {
        b.iter(|| black_box(Notification::decode(black_box(&body40[..]))))
    });

    let v2 = wire::load_vector("notification-v2-looking");
    let (body176, _) = split_frame(&v2.bytes).expect("notification-v2-looking is one frame");
    assert_eq!(body176.len(), 176);
    c.bench_function("notification/decode_v2_176", |b| {
        b.iter(|| black_box(Notification::decode(black_box(body176))))
    });

    let frame = vote.encode_frame_40();
    c.bench_function("notification/split_and_decode_frame_40", |b| {
        b.iter(|| {
            let (body, used) = split_frame(black_box(&frame[..])).expect("valid frame");
            black_box((Notification::decode(body), used))
        })
    });
}

fn handshakes(c: &mut Criterion) {
    let v1 = wire::load_vector("handshake-v1");
    c.bench_function("handshake/decode_v1", |b| {
        b.iter(|| black_box(Handshake::decode(black_box(&v1.bytes[..]))))
    });
    let (hs, _) = Handshake::decode(&v1.bytes).expect("handshake-v1 decodes");
    let mut out = Vec::with_capacity(64);
    c.bench_function("handshake/encode_v1", |b| {
        b.iter(|| {
            out.clear();
            black_box(&hs).encode(&mut out);
            black_box(out.len())
        })
    });
}

fn zab_ping(c: &mut Criterion) {
    let reply = QuorumPacket::ping_reply(zab::zxid_of_epoch(1));
    let mut out = Vec::with_capacity(64);
    c.bench_function("zab/ping_reply_encode", |b| {
        b.iter(|| {
            out.clear();
            black_box(&reply).encode(&mut out);
            black_box(out.len())
        })
    });
    let ping = wire::load_vector("zab-ping-leader");
    c.bench_function("zab/ping_decode", |b| {
        b.iter(|| black_box(QuorumPacket::decode(black_box(&ping.bytes[..]))))
    });
}

criterion_group!(benches, notifications, handshakes, zab_ping);
criterion_main!(benches);
