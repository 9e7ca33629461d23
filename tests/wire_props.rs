//! Property tests for the wire codecs: no decoder panics on any input,
//! encoders and decoders round-trip, and a mutation corpus built from the
//! captured vectors (bit flips, truncation, extension, splicing, hostile
//! lengths) is handled without panics and re-encodes consistently.

#[path = "common/wire.rs"]
mod wire;

use proptest::prelude::*;
use zkfle::wire::frame::{decode_frame_length, encode_frame, split_frame};
use zkfle::wire::handshake::{Handshake, HandshakeFormat, PeerAddress};
use zkfle::wire::notification::{Layout, Notification, ServerState};
use zkfle::wire::zab::{self, AckEpoch, LeaderInfo, LearnerInfo, QuorumPacket};
use zkfle::wire::WireError;

/// Checks what every decoder promises about any result: consumption within
/// the input, `Incomplete` asking for at least one byte.
fn check_consumed<T>(what: &str, input: &[u8], r: &Result<(T, usize), WireError>) {
    match r {
        Ok((_, used)) => assert!(*used <= input.len(), "{what}: consumed past the input"),
        Err(WireError::Incomplete { needed }) => assert!(*needed > 0, "{what}: needs 0"),
        Err(_) => {}
    }
}

/// Decodes a notification body and, if accepted, re-encodes it in the
/// layout its size implies and checks the result decodes to the same vote.
fn check_notification(body: &[u8]) {
    let Ok((n, config)) = Notification::decode(body) else {
        return;
    };
    let layout = match (body.len(), config) {
        (28, _) => Layout::V28,
        (36, _) => Layout::V36,
        (_, Some(_)) => Layout::V2,
        // 40 bytes, or 41+ with version <= 1: zkfle's nearest layout is V40.
        (_, None) => Layout::V40,
    };
    let mut out = Vec::new();
    n.encode(layout, config.unwrap_or_default(), &mut out);
    let (again, config_again) = Notification::decode(&out)
        .unwrap_or_else(|e| panic!("re-encoded {layout:?} body rejected: {e}"));
    assert_eq!(config_again, config, "config after {layout:?} re-encoding");
    let mut expected = n;
    match layout {
        // A 41+-byte body may carry version 1 (or any value <= 1); the
        // 40-byte layout always reads as version 0.
        Layout::V40 => expected.version = 0,
        // Bodies claiming a future version (> 2) are read with the v2
        // layout; zkfle only ever writes version 2.
        Layout::V2 => expected.version = 2,
        Layout::V28 | Layout::V36 => {}
    }
    assert_eq!(again, expected, "vote after {layout:?} re-encoding");
    // Where the layout holds every byte of the body, the bytes match too.
    let exact = match layout {
        Layout::V28 | Layout::V36 => true,
        Layout::V2 => n.version == 2 && body.len() == 44 + config.map_or(0, <[u8]>::len),
        Layout::V40 => false,
    };
    if exact {
        assert_eq!(out, body, "{layout:?} re-encoding bytes");
    } else {
        assert_eq!(
            out[..36],
            body[..36],
            "{layout:?} re-encoding common fields"
        );
    }
}

fn check_handshake(input: &[u8]) -> Option<usize> {
    let r = Handshake::decode(input);
    check_consumed("handshake", input, &r);
    let (h, used) = r.ok()?;
    if h.format == HandshakeFormat::V0 || !h.addresses.is_empty() {
        // Hosts are normalised ([v6] brackets) and wildcards dropped, so
        // compare decoded values, not bytes.
        let mut out = Vec::new();
        h.encode(&mut out);
        let (again, n) = Handshake::decode(&out)
            .unwrap_or_else(|e| panic!("re-encoded handshake {h:?} rejected: {e}"));
        assert_eq!(again, h);
        assert_eq!(n, out.len());
    }
    Some(used)
}

fn check_packet(input: &[u8]) -> Option<usize> {
    let r = QuorumPacket::decode(input);
    check_consumed("QuorumPacket", input, &r);
    let (p, used) = r.ok()?;
    let mut out = Vec::new();
    p.encode(&mut out);
    // Type, zxid and data are reproduced byte for byte...
    let mut head = Vec::new();
    QuorumPacket {
        authinfo: None,
        ..p.clone()
    }
    .encode(&mut head);
    head.truncate(head.len() - 4);
    assert_eq!(
        head[..],
        input[..head.len()],
        "QuorumPacket head re-encoding"
    );
    // ...authinfo ustrings are read as Java reads them (invalid UTF-8
    // replaced) and null ones as empty, so only they may change.
    if out[..] != input[..used] {
        assert!(
            p.authinfo.is_some(),
            "QuorumPacket re-encoding differs: {p:?}"
        );
    }
    assert_eq!(QuorumPacket::decode(&out), Ok((p.clone(), out.len())));
    if let Some(data) = p.data.as_deref() {
        let _ = LearnerInfo::decode(data);
        let _ = zab::decode_session_touches(Some(data));
    }
    let _ = LearnerInfo::from_packet(&p);
    if let Ok(li) = LeaderInfo::from_packet(&p) {
        assert_eq!(li.new_epoch, p.zxid >> 32);
    }
    if let Ok(ae) = AckEpoch::from_packet(&p) {
        assert_eq!(ae.last_zxid, p.zxid);
    }
    Some(used)
}

fn check_snapshot(input: &[u8]) {
    let mut nodes = 0;
    let r = zab::walk_snapshot(input, &mut |e| {
        if let zab::SnapshotEntry::Node(_) = e {
            nodes += 1;
        }
    });
    check_consumed("snapshot", input, &r);
    if let Ok((summary, _)) = r {
        assert_eq!(summary.nodes, nodes);
    }
}

/// Feeds `input` to every decoder the way a receiver could meet it.
fn feed_every_decoder(input: &[u8]) {
    // Election port: a connection's first bytes, then frames.
    if let Some(used) = check_handshake(input) {
        feed_frames(&input[used..]);
    }
    feed_frames(input);
    if input.len() >= 4 {
        let _ = decode_frame_length([input[0], input[1], input[2], input[3]]);
    }
    check_notification(input);
    if input.len() > 4 {
        check_notification(&input[4..]);
    }
    if let Ok(text) = std::str::from_utf8(input) {
        let _ = PeerAddress::parse(text);
    }
    // Quorum port: a packet, then (as after SNAP) a snapshot stream.
    if let Some(used) = check_packet(input) {
        check_snapshot(&input[used..]);
    }
    check_snapshot(input);
    let _ = zab::decode_session_touches(Some(input));
}

fn feed_frames(mut input: &[u8]) {
    loop {
        let r = split_frame(input);
        check_consumed("frame", input, &r);
        match r {
            Ok((body, used)) => {
                assert_eq!(used, body.len() + 4);
                check_notification(body);
                input = &input[used..];
            }
            Err(_) => return,
        }
    }
}

// ---------------------------------------------------------------------------
// Arbitrary bytes, raw and behind valid-looking headers.

fn header_then_noise() -> impl Strategy<Value = Vec<u8>> {
    let heads: Vec<Vec<u8>> = vec![
        (-65536i64).to_be_bytes().to_vec(),
        (-65535i64).to_be_bytes().to_vec(),
        5i64.to_be_bytes().to_vec(),
        [(-65536i64).to_be_bytes(), 3i64.to_be_bytes()].concat(),
        [0, 0, 0, 40].to_vec(),
        [0, 0, 0, 0xb0, 0, 0, 0, 0].to_vec(),
        [0, 0, 0, 5, 0, 0, 0, 1, 0, 0, 0, 0].to_vec(),
        [
            0, 0, 0, 15, 0, 0, 0, 1, 0, 0, 0, 0, 255, 255, 255, 255, 255, 255, 255, 255,
        ]
        .to_vec(),
    ];
    (
        proptest::sample::select(heads),
        proptest::collection::vec(any::<u8>(), 0..600),
    )
        .prop_map(|(h, t)| [h, t].concat())
}

/// A frame whose length prefix matches its body, so bodies of every size
/// reach the notification decoder.
fn framed_body() -> impl Strategy<Value = Vec<u8>> {
    (1usize..200, any::<u64>(), 0i32..5, 0i32..4).prop_map(|(len, seed, state, version)| {
        let mut body: Vec<u8> = (0..len)
            .map(|i| (seed.rotate_left(i as u32 % 64) as u8) ^ (i as u8))
            .collect();
        if len >= 4 {
            body[..4].copy_from_slice(&state.to_be_bytes());
        }
        if len >= 40 {
            body[36..40].copy_from_slice(&version.to_be_bytes());
        }
        if len >= 44 {
            let config_len = (len - 44) as i32 - (seed % 3) as i32 + 1;
            body[40..44].copy_from_slice(&config_len.to_be_bytes());
        }
        let mut frame = Vec::new();
        encode_frame(&body, &mut frame);
        frame
    })
}

proptest! {
    #[test]
    fn no_decoder_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        feed_every_decoder(&bytes);
    }

    #[test]
    fn no_decoder_panics_behind_valid_headers(bytes in header_then_noise()) {
        feed_every_decoder(&bytes);
    }

    #[test]
    fn framed_bodies_of_every_size_decode_or_drop(frame in framed_body()) {
        feed_every_decoder(&frame);
        let (body, used) = split_frame(&frame).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(used, frame.len());
        if let Err(e) = Notification::decode(body) {
            // Bad bodies are dropped, never a reason to close (R14).
            prop_assert!(!e.closes_connection(), "{} closes", e);
        }
    }
}

// ---------------------------------------------------------------------------
// Round trips.

fn arb_state() -> impl Strategy<Value = ServerState> {
    prop_oneof![
        Just(ServerState::Looking),
        Just(ServerState::Following),
        Just(ServerState::Leading),
        Just(ServerState::Observing),
    ]
}

fn arb_notification() -> impl Strategy<Value = Notification> {
    (
        arb_state(),
        any::<i64>(),
        any::<i64>(),
        any::<i64>(),
        any::<i64>(),
        any::<i32>(),
    )
        .prop_map(
            |(state, leader, zxid, election_epoch, peer_epoch, version)| Notification {
                state,
                leader,
                zxid,
                election_epoch,
                peer_epoch,
                version,
            },
        )
}

fn arb_host() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9][a-z0-9.-]{0,30}",
        (any::<u8>(), any::<u8>(), any::<u8>(), any::<u8>())
            .prop_map(|(a, b, c, d)| format!("{a}.{b}.{c}.{d}")),
        proptest::collection::vec(any::<u16>(), 8).prop_map(|g| g
            .iter()
            .map(|x| format!("{x:x}"))
            .collect::<Vec<_>>()
            .join(":")),
        "fe80::[0-9a-f]{1,4}(%[a-z0-9]{1,5})?",
    ]
}

fn arb_address() -> impl Strategy<Value = PeerAddress> {
    (arb_host(), 1u16..=65535)
        .prop_map(|(host, port)| PeerAddress { host, port })
        .prop_filter("wildcards are dropped by decoding", |a| !a.is_wildcard())
}

fn arb_handshake() -> impl Strategy<Value = Handshake> {
    prop_oneof![
        (0i64..=i64::MAX).prop_map(|sid| Handshake {
            format: HandshakeFormat::V0,
            sid,
            addresses: Vec::new(),
        }),
        (
            prop_oneof![Just(HandshakeFormat::V1), Just(HandshakeFormat::V2)],
            any::<i64>(),
            proptest::collection::vec(arb_address(), 1..6),
        )
            .prop_map(|(format, sid, addresses)| Handshake {
                format,
                sid,
                addresses,
            }),
    ]
}

fn arb_packet() -> impl Strategy<Value = QuorumPacket> {
    (
        any::<i32>(),
        any::<i64>(),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..300)),
        proptest::option::of(proptest::collection::vec((".{0,12}", ".{0,12}"), 0..4)),
    )
        .prop_map(|(packet_type, zxid, data, authinfo)| QuorumPacket {
            packet_type,
            zxid,
            data,
            authinfo,
        })
}

proptest! {
    #[test]
    fn notification_round_trips_in_every_layout(
        n in arb_notification(),
        config in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        for layout in [Layout::V28, Layout::V36, Layout::V40, Layout::V2] {
            let mut body = Vec::new();
            n.encode(layout, &config, &mut body);
            let (decoded, decoded_config) = Notification::decode(&body)
                .map_err(|e| TestCaseError::fail(format!("{layout:?}: {e}")))?;
            let mut expected = n;
            match layout {
                Layout::V28 => {
                    prop_assert_eq!(body.len(), 28);
                    // No peerEpoch on the wire: derived from the zxid.
                    expected.peer_epoch = n.zxid >> 32;
                    expected.version = 0;
                }
                Layout::V36 => {
                    prop_assert_eq!(body.len(), 36);
                    expected.version = 0;
                }
                Layout::V40 => {
                    prop_assert_eq!(body.len(), 40);
                    // 3.8 does not read the 40-byte layout's trailing int.
                    expected.version = 0;
                    prop_assert_eq!(&body[..], &n.encode_40()[..]);
                    let mut framed = Vec::new();
                    encode_frame(&body, &mut framed);
                    prop_assert_eq!(&framed[..], &n.encode_frame_40()[..]);
                }
                Layout::V2 => {
                    prop_assert_eq!(body.len(), 44 + config.len());
                    expected.version = 2;
                }
            }
            prop_assert_eq!(decoded, expected, "{:?}", layout);
            let want_config = (layout == Layout::V2).then_some(&config[..]);
            prop_assert_eq!(decoded_config, want_config);
        }
    }

    #[test]
    fn valid_handshakes_round_trip(h in arb_handshake()) {
        let mut out = Vec::new();
        h.encode(&mut out);
        prop_assume!(out.len() <= 20 + zkfle::wire::MAX_ADDR_LEN);
        let decoded = Handshake::decode(&out).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(decoded, (h, out.len()));
    }

    #[test]
    fn quorum_packets_round_trip(p in arb_packet()) {
        let mut out = Vec::new();
        p.encode(&mut out);
        prop_assert_eq!(QuorumPacket::decode(&out), Ok((p, out.len())));
    }

    #[test]
    fn learner_info_round_trips(
        sid in any::<i64>(),
        protocol_version in any::<i32>(),
        config_version in proptest::option::of(any::<i64>()),
        accepted_epoch in 0i64..=i64::from(u32::MAX >> 1),
    ) {
        let info = LearnerInfo { sid, protocol_version, config_version };
        let packet = info.followerinfo(accepted_epoch);
        prop_assert_eq!(zab::epoch_of_zxid(packet.zxid), accepted_epoch);
        prop_assert_eq!(LearnerInfo::from_packet(&packet), Ok(info));
        let mut out = Vec::new();
        packet.encode(&mut out);
        let (decoded, _) = QuorumPacket::decode(&out).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(LearnerInfo::from_packet(&decoded), Ok(info));
    }

    #[test]
    fn epoch_payloads_round_trip(epoch in 0i64..=i64::from(i32::MAX), zxid in any::<i64>(), current in any::<i32>()) {
        let li = LeaderInfo { new_epoch: epoch, protocol_version: zab::PROTOCOL_VERSION };
        prop_assert_eq!(LeaderInfo::from_packet(&li.to_packet()), Ok(li));
        let ae = AckEpoch { last_zxid: zxid, current_epoch: current };
        prop_assert_eq!(AckEpoch::from_packet(&ae.to_packet()), Ok(ae));
    }
}

// ---------------------------------------------------------------------------
// Mutations of the captured vectors.

/// Every vector's bytes, plus the snapshot stream behind the SNAP packet on
/// its own (so mutations reach the stream parser from its first byte).
fn seed_corpus() -> Vec<(String, Vec<u8>)> {
    let mut seeds = Vec::new();
    for prefix in ["handshake-", "frame-", "notification-", "zab-"] {
        for v in wire::load_vectors(prefix) {
            if let Ok((p, used)) = QuorumPacket::decode(&v.bytes) {
                if p.packet_type == zab::SNAP && used < v.bytes.len() {
                    seeds.push((format!("{}[stream]", v.name), v.bytes[used..].to_vec()));
                }
            }
            seeds.push((v.name, v.bytes));
        }
    }
    assert!(seeds.len() >= 45, "only {} seed vectors", seeds.len());
    seeds
}

/// xorshift64*: a fixed generator keeps the corpus identical on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const HOSTILE_I32: [i32; 8] = [
    0,
    -1,
    -2,
    1,
    0x7fff_ffff,
    i32::MIN,
    524_289,
    0x000f_ffff + 1025,
];

/// The bounded mutation corpus of one seed: one bit flip per byte, every
/// truncation, four extensions, eight splices with other seeds and a hostile
/// length written at every 4-byte offset.
fn mutations(seed: &[u8], others: &[(String, Vec<u8>)], rng: &mut Rng) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for i in 0..seed.len() {
        let mut m = seed.to_vec();
        m[i] ^= 1 << rng.below(8);
        out.push(m);
    }
    for cut in 0..seed.len() {
        out.push(seed[..cut].to_vec());
    }
    for _ in 0..4 {
        let mut m = seed.to_vec();
        let extra = 1 + rng.below(64);
        m.extend((0..extra).map(|_| rng.next() as u8));
        out.push(m);
    }
    for _ in 0..8 {
        let other = &others[rng.below(others.len())].1;
        let a = rng.below(seed.len() + 1);
        let b = rng.below(other.len() + 1);
        out.push([&seed[..a], &other[b..]].concat());
    }
    for at in (0..seed.len().saturating_sub(3)).step_by(4) {
        let mut m = seed.to_vec();
        let v = HOSTILE_I32[rng.below(HOSTILE_I32.len())];
        m[at..at + 4].copy_from_slice(&v.to_be_bytes());
        out.push(m);
    }
    out
}

#[test]
fn mutated_vectors_never_panic_and_re_encode_consistently() {
    let seeds = seed_corpus();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut fed = 0usize;
    for (_, seed) in &seeds {
        for m in mutations(seed, &seeds, &mut rng) {
            feed_every_decoder(&m);
            fed += 1;
        }
    }
    // Bounded: a few thousand inputs, well under a second in release.
    assert!(fed > 3_000 && fed < 50_000, "{fed} mutated inputs");
}

proptest! {
    #[test]
    fn stacked_random_mutations_never_panic(
        index in any::<prop::sample::Index>(),
        ops in proptest::collection::vec((0u8..5, any::<u32>(), any::<u32>()), 1..8),
    ) {
        let seeds = seed_corpus();
        let mut bytes = seeds[index.index(seeds.len())].1.clone();
        for (op, a, b) in ops {
            let at = if bytes.is_empty() { 0 } else { a as usize % bytes.len() };
            match op {
                0 if !bytes.is_empty() => bytes[at] ^= 1 << (b % 8),
                1 => bytes.truncate(at),
                2 => bytes.extend_from_slice(&b.to_be_bytes()),
                3 => {
                    let other = &seeds[b as usize % seeds.len()].1;
                    let from = (b as usize / 7) % (other.len() + 1);
                    bytes.truncate(at);
                    bytes.extend_from_slice(&other[from..]);
                }
                _ if bytes.len() >= at + 4 => {
                    let v = HOSTILE_I32[b as usize % HOSTILE_I32.len()];
                    bytes[at..at + 4].copy_from_slice(&v.to_be_bytes());
                }
                _ => {}
            }
        }
        feed_every_decoder(&bytes);
    }
}
