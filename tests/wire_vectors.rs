//! The wire codecs against the bytes captured from (or recorded against)
//! Apache ZooKeeper 3.8 in `shared/vectors/`: every `expect:` line, the
//! receiver verdict (accept / drop / close), byte-exact re-encoding, split
//! delivery, the two cold-start replays and the Zab learner packets.

#[path = "common/wire.rs"]
mod wire;

use wire::{load_sequence, load_vector, load_vectors, try_load_vector, Expect, Receiver, Vector};
use zkfle::wire::frame::{encode_frame, split_frame};
use zkfle::wire::handshake::{Handshake, HandshakeFormat, PROTOCOL_V1, PROTOCOL_V2};
use zkfle::wire::notification::{Layout, Notification};
use zkfle::wire::zab::{self, AckEpoch, LeaderInfo, LearnerInfo, QuorumPacket, SnapshotEntry};
use zkfle::wire::WireError;

type Fields = Vec<(String, Expect)>;

fn int(key: &str, v: impl Into<i64>) -> (String, Expect) {
    (key.to_string(), Expect::Int(v.into()))
}

fn text(key: &str, v: &str) -> (String, Expect) {
    (key.to_string(), Expect::Str(v.to_string()))
}

fn word(key: &str, v: &str) -> (String, Expect) {
    (key.to_string(), Expect::Word(v.to_string()))
}

fn get<'a>(fields: &'a Fields, key: &str) -> Option<&'a Expect> {
    fields.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

// ---------------------------------------------------------------------------
// Election port: what a vector's bytes are, and how a receiver decodes them.

/// Where a vector's bytes sit on the election connection (its `unit:` line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    /// The initiator's handshake, nothing else.
    Handshake,
    /// Raw bytes instead of a handshake: decoded as a handshake, then as
    /// the frame that would follow it.
    RawStart,
    /// Bytes after a valid handshake: one frame.
    AfterHandshake,
    /// One frame holding a notification.
    Frame,
}

fn election_unit(v: &Vector) -> Option<Unit> {
    let unit = v.unit();
    if unit.starts_with("handshake") {
        Some(Unit::Handshake)
    } else if unit.starts_with("raw bytes sent on a fresh election connection") {
        Some(Unit::RawStart)
    } else if unit.starts_with("bytes after a valid handshake") {
        Some(Unit::AfterHandshake)
    } else if unit.starts_with("frame") {
        Some(Unit::Frame)
    } else {
        None
    }
}

/// The result of feeding some bytes to a fresh election-port receiver.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// More bytes needed.
    Incomplete { needed: usize },
    /// Everything decoded: bytes consumed and the decoded fields.
    Done { consumed: usize, fields: Fields },
    /// The decoder rejected the bytes.
    Failed(WireError),
}

fn handshake_fields(h: &Handshake, consumed: usize) -> Fields {
    let mut f = Fields::new();
    match h.format {
        HandshakeFormat::V0 => {
            f.push(word("format", "v0"));
            f.push(int("firstLong", h.sid));
        }
        HandshakeFormat::V1 | HandshakeFormat::V2 => {
            let (version, name) = if h.format == HandshakeFormat::V1 {
                (PROTOCOL_V1, "v1")
            } else {
                (PROTOCOL_V2, "v2")
            };
            f.push(int("protocolVersion", version));
            f.push(int("firstLong", version));
            f.push(word("format", name));
            // The decoder reports how many bytes it consumed; the address
            // length is what follows the 20-byte header.
            f.push(int("addrLen", (consumed - 20) as i64));
            let joined = h
                .addresses
                .iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join("|");
            f.push(text("addr", &joined));
            f.push(int("addrCount", h.addresses.len() as i64));
        }
    }
    f.push(int("sid", h.sid));
    f
}

fn notification_fields(body: &[u8], n: &Notification, config: Option<&[u8]>) -> Fields {
    let mut f = vec![
        int("frameLength", body.len() as i64),
        int("bodyLength", body.len() as i64),
        int("state", n.state.code()),
        int("leader", n.leader),
        int("zxid", n.zxid),
        int("electionEpoch", n.election_epoch),
        int("peerEpoch", n.peer_epoch),
        int("version", n.version),
    ];
    if let Some(c) = config {
        f.push(int("configLength", c.len() as i64));
        f.push(text("config", &String::from_utf8_lossy(c)));
    }
    f
}

/// Fields a decoder error carries (the value that made it fail).
fn error_fields(e: &WireError) -> Fields {
    match e {
        WireError::BadProtocolVersion(v) => vec![
            int("protocolVersion", *v),
            int("firstLong", *v),
            word("format", "unknown"),
        ],
        WireError::BadAddressLength(n) => vec![int("addrLen", *n)],
        WireError::BadAddress { text: t, .. } => vec![text("addr", t)],
        WireError::BadFrameLength(n) => vec![int("frameLength", *n)],
        WireError::MalformedNotification { len, reason } => vec![
            int("frameLength", *len as i64),
            int("bodyLength", *len as i64),
            text("malformed", reason),
        ],
        WireError::BadState(s) => vec![int("state", *s)],
        WireError::BadConfigLength { config_len, len } => {
            vec![
                int("configLength", *config_len),
                int("frameLength", *len as i64),
            ]
        }
        _ => Vec::new(),
    }
}

/// Feeds `bytes` to a fresh receiver expecting `unit`.
fn election_outcome(unit: Unit, bytes: &[u8]) -> Outcome {
    let mut fields = Fields::new();
    let mut pos = 0;
    if matches!(unit, Unit::Handshake | Unit::RawStart) {
        match Handshake::decode(bytes) {
            Err(WireError::Incomplete { needed }) => return Outcome::Incomplete { needed },
            Err(e) => return Outcome::Failed(e),
            Ok((h, n)) => {
                fields.extend(handshake_fields(&h, n));
                pos = n;
            }
        }
    }
    if unit != Unit::Handshake {
        match split_frame(&bytes[pos..]) {
            Err(WireError::Incomplete { needed }) => return Outcome::Incomplete { needed },
            Err(e) => return Outcome::Failed(e),
            Ok((body, n)) => {
                match Notification::decode(body) {
                    Ok((notification, config)) => {
                        fields.extend(notification_fields(body, &notification, config))
                    }
                    Err(e) => return Outcome::Failed(e),
                }
                pos += n;
            }
        }
    }
    Outcome::Done {
        consumed: pos,
        fields,
    }
}

fn be_i32(b: &[u8], at: usize) -> Option<i32> {
    b.get(at..at + 4)
        .map(|s| i32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

fn be_i64(b: &[u8], at: usize) -> Option<i64> {
    b.get(at..at + 8).map(|s| {
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        i64::from_be_bytes(a)
    })
}

/// Fields read straight off the layout of PROTOCOL.md §2.1/§3.2, without
/// the codec. Used only for `expect:` lines of rejected vectors that name
/// fields the decoder never reaches (e.g. the sid behind a bad version):
/// they check that the vector is what it claims to be.
fn layout_fields(unit: Unit, b: &[u8]) -> Fields {
    let mut f = Fields::new();
    if matches!(unit, Unit::Handshake | Unit::RawStart) {
        if let Some(first) = be_i64(b, 0) {
            f.push(int("firstLong", first));
            let format = match first {
                PROTOCOL_V1 => "v1",
                PROTOCOL_V2 => "v2",
                x if x >= 0 => "v0",
                _ => "unknown",
            };
            f.push(word("format", format));
            if first < 0 {
                f.push(int("protocolVersion", first));
                if let Some(sid) = be_i64(b, 8) {
                    f.push(int("sid", sid));
                }
                if let Some(n) = be_i32(b, 16) {
                    f.push(int("addrLen", n));
                    if let Some(addr) = b.get(20..20 + n.max(0) as usize) {
                        f.push(text("addr", &String::from_utf8_lossy(addr)));
                    }
                }
            } else {
                f.push(int("sid", first));
            }
        }
        return f;
    }
    let Some(len) = be_i32(b, 0) else { return f };
    f.push(int("frameLength", len));
    let body = &b[4..];
    f.push(int("bodyLength", body.len() as i64));
    let fixed: [(&str, usize, bool); 4] = [
        ("state", 0, false),
        ("leader", 4, true),
        ("zxid", 12, true),
        ("electionEpoch", 20, true),
    ];
    for (key, at, long) in fixed {
        let v = if long {
            be_i64(body, at)
        } else {
            be_i32(body, at).map(i64::from)
        };
        if let Some(v) = v {
            f.push(int(key, v));
        }
    }
    if body.len() == 28 {
        if let Some(zxid) = be_i64(body, 12) {
            f.push(int("peerEpoch", zxid >> 32));
        }
    } else if let Some(pe) = be_i64(body, 28) {
        f.push(int("peerEpoch", pe));
    }
    // 3.8 reads the version only from bodies longer than 40 bytes.
    let version = if body.len() > 40 {
        be_i32(body, 36).unwrap_or(0)
    } else {
        0
    };
    f.push(int("version", version));
    if version >= 2 {
        if let Some(n) = be_i32(body, 40) {
            f.push(int("configLength", n));
            if let Some(c) = body.get(44..44 + n.max(0) as usize) {
                f.push(text("config", &String::from_utf8_lossy(c)));
            }
        }
    }
    f
}

/// How many bytes a receiver must hold before it can see what is wrong.
fn first_readable(unit: Unit, bytes: &[u8], e: &WireError) -> usize {
    let frame_at = match unit {
        Unit::Handshake => 0,
        Unit::RawStart => match Handshake::decode(bytes) {
            Ok((_, n)) => n,
            Err(_) => 0,
        },
        Unit::AfterHandshake | Unit::Frame => 0,
    };
    match e {
        WireError::BadProtocolVersion(_) => 8,
        WireError::BadAddressLength(_) => 20,
        WireError::BadAddress { .. } => {
            20 + be_i32(bytes, 16).expect("address length present") as usize
        }
        WireError::BadFrameLength(_) => frame_at + 4,
        _ => frame_at + 4 + be_i32(bytes, frame_at).expect("frame length present") as usize,
    }
}

/// Handshakes that decode fine but that the connection layer must close for
/// a reason outside the bytes (PROTOCOL.md §2.4/§8 R4, R5). The probes ran
/// against a 3.8.0 acceptor with sid 1 configured with sids 1..=3.
const POLICY_CLOSES: &[(&str, i64, &str)] = &[
    (
        "handshake-own-sid",
        1,
        "names the acceptor's own sid 1 (R5)",
    ),
    (
        "handshake-unknown-low-sid",
        0,
        "sid 0 is below the acceptor's sid 1 (tie-break) and unconfigured (R4)",
    ),
];

/// The error each rejected vector must produce, named after the rule its
/// `receiver:` line cites. A rejected vector missing here fails the test, so
/// a wrong reason for the right verdict (say, an empty address rejected as
/// a bad address instead of by its length) does not pass unnoticed.
fn expected_error(name: &str) -> Option<fn(&WireError) -> bool> {
    Some(match name {
        "handshake-addrlen-huge" | "handshake-addrlen-zero" => {
            |e| matches!(e, WireError::BadAddressLength(_))
        }
        "handshake-bad-version" | "handshake-garbage-negative" => {
            |e| matches!(e, WireError::BadProtocolVersion(_))
        }
        "handshake-port-out-of-range" => |e| matches!(e, WireError::BadAddress { .. }),
        // Read as a 3.4 bare sid, then the next bytes are a bad frame length.
        "handshake-garbage-positive"
        | "handshake-http-get"
        | "frame-length-huge"
        | "frame-length-negative"
        | "frame-length-oversize"
        | "frame-length-zero" => |e| matches!(e, WireError::BadFrameLength(_)),
        "notification-29" | "notification-short-20" => {
            |e| matches!(e, WireError::MalformedNotification { .. })
        }
        "notification-bad-config-length" => |e| matches!(e, WireError::BadConfigLength { .. }),
        "notification-bad-state" => |e| matches!(e, WireError::BadState(_)),
        _ => return None,
    })
}

fn election_vectors() -> Vec<(Vector, Unit)> {
    let mut out = Vec::new();
    for prefix in ["handshake-", "frame-", "notification-"] {
        for v in load_vectors(prefix) {
            let unit = election_unit(&v)
                .unwrap_or_else(|| panic!("{}: unknown unit {:?}", v.name, v.unit()));
            out.push((v, unit));
        }
    }
    assert!(
        out.len() >= 32,
        "expected the 32 election vectors of the README, found {}",
        out.len()
    );
    out
}

/// Checks every `expect:` line of `v` against the decoded (or error)
/// fields; keys the decoder cannot reach on a rejected vector fall back to
/// the layout reader. An `expect:` key nothing can check fails the test, so
/// a new kind of expectation is never silently ignored.
fn check_expects(v: &Vector, unit: Unit, outcome: &Outcome) {
    let (observed, failed) = match outcome {
        Outcome::Done { fields, .. } => (fields.clone(), false),
        Outcome::Failed(e) => (error_fields(e), true),
        Outcome::Incomplete { needed } => {
            panic!(
                "{}: whole vector is incomplete ({needed} more bytes)",
                v.name
            )
        }
    };
    let layout = layout_fields(unit, &v.bytes);
    for (key, expected) in &v.expects {
        // `what:` is a prose description of the bad length, not a field.
        if key == "what" {
            continue;
        }
        let actual = get(&observed, key)
            .or_else(|| if failed { get(&layout, key) } else { None })
            .unwrap_or_else(|| {
                panic!(
                    "{}: nothing checks `expect: {key}={expected}` (outcome {outcome:?})",
                    v.name
                )
            });
        assert_eq!(
            actual, expected,
            "{}: field {key}: decoded {actual}, vector expects {expected}",
            v.name
        );
    }
}

#[test]
fn election_vectors_decode_to_their_expect_lines_and_receiver_verdict() {
    let mut counts = [0usize; 3];
    for (v, unit) in election_vectors() {
        assert_eq!(v.bytes.len(), v.length(), "{}: length line", v.name);
        let outcome = election_outcome(unit, &v.bytes);
        check_expects(&v, unit, &outcome);
        let policy = POLICY_CLOSES.iter().find(|(n, _, _)| *n == v.name);
        if let Outcome::Failed(e) = &outcome {
            let right_reason = expected_error(&v.name)
                .unwrap_or_else(|| panic!("{}: rejected ({e}) but not classified", v.name));
            assert!(
                right_reason(e),
                "{}: rejected for the wrong reason: {e}",
                v.name
            );
        }
        match (v.receiver(), &outcome) {
            (Receiver::Accept, Outcome::Done { consumed, .. }) => {
                assert_eq!(*consumed, v.length(), "{}: bytes consumed", v.name);
                counts[0] += 1;
            }
            (Receiver::Drop, Outcome::Failed(e)) => {
                assert!(!e.closes_connection(), "{}: {e} must not close", v.name);
                counts[1] += 1;
            }
            (Receiver::Close, Outcome::Failed(e)) => {
                assert!(e.closes_connection(), "{}: {e} must close", v.name);
                counts[2] += 1;
            }
            (Receiver::Close, Outcome::Done { consumed, fields }) if policy.is_some() => {
                let (_, sid, why) = policy.unwrap_or_else(|| unreachable!());
                assert_eq!(*consumed, v.length(), "{}: bytes consumed", v.name);
                assert_eq!(
                    get(fields, "sid"),
                    Some(&Expect::Int(*sid)),
                    "{}: the close is justified only because it {why}",
                    v.name
                );
                counts[2] += 1;
            }
            (r, o) => panic!("{}: receiver {r:?} but decoder gave {o:?}", v.name),
        }
    }
    // The README's table: 15 accept, 4 drop, 13 close at the time of writing;
    // new vectors may add to each.
    assert!(
        counts[0] >= 15 && counts[1] >= 4 && counts[2] >= 13,
        "{counts:?}"
    );
}

#[test]
fn election_vectors_consume_exactly_their_length_when_more_bytes_follow() {
    // A valid 40-byte frame after the vector: a receiver must stop exactly at
    // the vector's end and find the next frame intact.
    let next = Notification::decode(&load_vector("notification-40").bytes[4..])
        .expect("notification-40 decodes")
        .0;
    let trailer = next.encode_frame_40();
    for (v, unit) in election_vectors() {
        let Outcome::Done { consumed, .. } = election_outcome(unit, &v.bytes) else {
            continue;
        };
        let mut stream = v.bytes.clone();
        stream.extend_from_slice(&trailer);
        let Outcome::Done { consumed: c2, .. } = election_outcome(unit, &stream) else {
            panic!("{}: decoding changed when bytes followed", v.name);
        };
        assert_eq!(c2, consumed, "{}", v.name);
        let (body, used) = split_frame(&stream[c2..]).expect("trailing frame");
        assert_eq!(used, trailer.len(), "{}", v.name);
        assert_eq!(Notification::decode(body).expect("trailing vote").0, next);
    }
}

#[test]
fn election_vectors_re_encode_byte_for_byte() {
    let mut handshakes = 0;
    let mut notifications = 0;
    for (v, unit) in election_vectors() {
        match unit {
            Unit::Handshake => {
                let Ok((h, n)) = Handshake::decode(&v.bytes) else {
                    continue;
                };
                let mut out = Vec::new();
                h.encode(&mut out);
                assert_eq!(out, v.bytes[..n], "{}: handshake re-encoding", v.name);
                handshakes += 1;
            }
            Unit::Frame => {
                let Ok((body, _)) = split_frame(&v.bytes) else {
                    continue;
                };
                let Ok((n, config)) = Notification::decode(body) else {
                    continue;
                };
                let layout = match (body.len(), config) {
                    (28, None) => Layout::V28,
                    (36, None) => Layout::V36,
                    (40, None) => Layout::V40,
                    (_, Some(_)) => Layout::V2,
                    (len, None) => panic!("{}: no layout produces {len} bytes", v.name),
                };
                let mut out = Vec::new();
                n.encode(layout, config.unwrap_or_default(), &mut out);
                assert_eq!(out, body, "{}: {layout:?} re-encoding", v.name);
                let mut frame = Vec::new();
                encode_frame(&out, &mut frame);
                assert_eq!(frame, v.bytes, "{}: framed", v.name);
                if layout == Layout::V40 {
                    assert_eq!(n.encode_frame_40()[..], v.bytes[..], "{}", v.name);
                }
                notifications += 1;
            }
            Unit::RawStart | Unit::AfterHandshake => {}
        }
    }
    // v0, V1 ×3 (v1, v1-sid3, dialback), V2 ×2, plus the policy closes.
    assert!(handshakes >= 6, "only {handshakes} handshakes re-encoded");
    // 28, 36, 40, four v2 captures, garbage and higher-version configs.
    assert!(
        notifications >= 9,
        "only {notifications} notifications re-encoded"
    );
}

#[test]
fn election_vectors_split_delivery_never_changes_the_result() {
    for (v, unit) in election_vectors() {
        let full = election_outcome(unit, &v.bytes);
        let len = v.bytes.len();
        let mut settled_at = None;
        for k in 0..len {
            match election_outcome(unit, &v.bytes[..k]) {
                Outcome::Incomplete { needed } => {
                    assert!(
                        settled_at.is_none(),
                        "{}: prefix {k} incomplete after a result at {settled_at:?}",
                        v.name
                    );
                    assert!(needed > 0, "{}: prefix {k} needs 0 bytes", v.name);
                    // A reader that reads exactly `needed` more must never
                    // wait for bytes the peer will not send.
                    assert!(
                        k + needed <= len,
                        "{}: prefix {k} asks for {needed} bytes, vector has {len}",
                        v.name
                    );
                }
                other => {
                    assert_eq!(other, full, "{}: prefix {k} of {len}", v.name);
                    settled_at.get_or_insert(k);
                }
            }
        }
        match &full {
            Outcome::Done { .. } => {
                assert_eq!(settled_at, None, "{}: decoded before the end", v.name)
            }
            Outcome::Failed(e) => {
                let expected = first_readable(unit, &v.bytes, e);
                assert_eq!(
                    settled_at.unwrap_or(len),
                    expected,
                    "{}: {e} should appear as soon as {expected} bytes are held",
                    v.name
                );
            }
            Outcome::Incomplete { .. } => panic!("{}: incomplete", v.name),
        }
    }
}

#[test]
fn frames_delivered_in_small_chunks_decode_like_one_buffer() {
    // A RecvWorker-style loop: append each chunk, split off every complete
    // frame. All accepted and dropped frames back to back, in chunks of 1..=7.
    let mut stream = Vec::new();
    let mut expected = Vec::new();
    for (v, unit) in election_vectors() {
        if unit == Unit::Frame && v.receiver() != Receiver::Close {
            stream.extend_from_slice(&v.bytes);
            expected.push(
                Notification::decode(&v.bytes[4..])
                    .map(|(n, c)| (n, c.map(<[u8]>::to_vec)))
                    .map_err(|e| e.to_string()),
            );
        }
    }
    let mut got = Vec::new();
    let mut buf: Vec<u8> = Vec::new();
    let mut offset = 0;
    let mut chunk = 1;
    while offset < stream.len() {
        let end = (offset + chunk).min(stream.len());
        buf.extend_from_slice(&stream[offset..end]);
        offset = end;
        chunk = chunk % 7 + 1;
        loop {
            match split_frame(&buf) {
                Ok((body, used)) => {
                    got.push(
                        Notification::decode(body)
                            .map(|(n, c)| (n, c.map(<[u8]>::to_vec)))
                            .map_err(|e| e.to_string()),
                    );
                    buf.drain(..used);
                }
                Err(WireError::Incomplete { .. }) => break,
                Err(e) => panic!("stream desynchronised: {e}"),
            }
        }
    }
    assert!(buf.is_empty(), "{} bytes left over", buf.len());
    assert_eq!(got, expected);
}

// ---------------------------------------------------------------------------
// Replays of the cold-start captures.

fn replay(name: &str) -> (usize, usize) {
    let rows = load_sequence(name);
    let (mut handshakes, mut frames) = (0, 0);
    for row in &rows {
        let at = format!("{name}.sequence.tsv:{}", row.line);
        let fields = match row.kind.as_str() {
            "handshake" => {
                let (h, n) = Handshake::decode(&row.bytes)
                    .unwrap_or_else(|e| panic!("{at}: handshake rejected: {e}"));
                assert_eq!(n, row.bytes.len(), "{at}: bytes consumed");
                assert_eq!(Some(h.sid), row.from_sid, "{at}: handshake sid vs from_sid");
                let mut out = Vec::new();
                h.encode(&mut out);
                assert_eq!(out, row.bytes, "{at}: re-encoding");
                handshakes += 1;
                handshake_fields(&h, n)
            }
            "frame" => {
                let (body, n) =
                    split_frame(&row.bytes).unwrap_or_else(|e| panic!("{at}: frame: {e}"));
                assert_eq!(n, row.bytes.len(), "{at}: bytes consumed");
                let (notification, config) =
                    Notification::decode(body).unwrap_or_else(|e| panic!("{at}: body: {e}"));
                frames += 1;
                notification_fields(body, &notification, config)
            }
            _ => {
                assert!(row.bytes.is_empty(), "{at}: {} row with bytes", row.kind);
                continue;
            }
        };
        assert!(!row.decoded.is_empty(), "{at}: empty decoded column");
        for (key, expected) in &row.decoded {
            let actual =
                get(&fields, key).unwrap_or_else(|| panic!("{at}: decoder has no field {key}"));
            assert_eq!(actual, expected, "{at}: field {key} ({})", row.decoded_text);
        }
    }
    (handshakes, frames)
}

#[test]
fn coldstart_failover_sequence_replays_through_the_decoders() {
    let (handshakes, frames) = replay("coldstart-3node-failover");
    assert_eq!(handshakes, 4);
    // 9 frames in the cold start and 4 after the failover.
    assert_eq!(frames, 13);
}

#[test]
fn coldstart_v2_sequence_replays_through_the_decoders() {
    let (handshakes, frames) = replay("coldstart-3node-v2");
    // 7 connections opened, each with a V2 handshake.
    assert_eq!(handshakes, 7);
    assert!(frames > 0);
}

// ---------------------------------------------------------------------------
// Zab (quorum port).

/// PROTOCOL.md §6.3's recorded exchange (fresh ensemble, newEpoch 1) and
/// §6.5's minimal PING reply, as the spec prints them.
const SPEC_PACKETS: &[(&str, &str)] = &[
    (
        "zab-followerinfo",
        "0000000b 0000000000000000 00000014 0000000000000001 00010000 0000000000000000 ffffffff",
    ),
    (
        "zab-leaderinfo",
        "00000011 0000000100000000 00000004 00010000 ffffffff",
    ),
    (
        "zab-ackepoch",
        "00000012 0000000000000000 00000004 00000000 ffffffff",
    ),
    (
        "zab-diff-insync",
        "0000000d 0000000000000000 ffffffff ffffffff",
    ),
    (
        "zab-newleader-null",
        "0000000a 0000000100000000 ffffffff ffffffff",
    ),
    (
        "zab-ack-newleader",
        "00000003 0000000100000000 ffffffff ffffffff",
    ),
    (
        "zab-uptodate",
        "0000000c ffffffffffffffff ffffffff ffffffff",
    ),
    (
        "zab-ping-reply",
        "00000005 0000000100000000 00000000 ffffffff",
    ),
];

/// The packets zkfle's helpers build for the same exchange.
fn built_packet(name: &str) -> QuorumPacket {
    let epoch1 = zab::zxid_of_epoch(1);
    match name {
        "zab-followerinfo" => LearnerInfo {
            sid: 1,
            protocol_version: zab::PROTOCOL_VERSION,
            config_version: Some(0),
        }
        .followerinfo(0),
        "zab-leaderinfo" => LeaderInfo {
            new_epoch: 1,
            protocol_version: zab::PROTOCOL_VERSION,
        }
        .to_packet(),
        "zab-ackepoch" => AckEpoch {
            last_zxid: 0,
            current_epoch: 0,
        }
        .to_packet(),
        "zab-diff-insync" => QuorumPacket::new(zab::DIFF, 0, None),
        "zab-newleader-null" => QuorumPacket::new(zab::NEWLEADER, epoch1, None),
        "zab-ack-newleader" => QuorumPacket::new(zab::ACK, epoch1, None),
        "zab-uptodate" => QuorumPacket::new(zab::UPTODATE, -1, None),
        "zab-ping-reply" => QuorumPacket::ping_reply(epoch1),
        other => panic!("no builder for {other}"),
    }
}

fn zab_fields(p: &QuorumPacket) -> Fields {
    let mut f = vec![
        int("type", p.packet_type),
        int("zxid", p.zxid),
        int("dataLength", p.data.as_ref().map_or(-1, |d| d.len() as i64)),
        int(
            "authinfoCount",
            p.authinfo.as_ref().map_or(-1, |a| a.len() as i64),
        ),
    ];
    if let Some(data) = &p.data {
        if let Ok(t) = std::str::from_utf8(data) {
            f.push(text("data", t));
        }
    }
    if let Ok(info) = LearnerInfo::from_packet(p) {
        f.push(int("learnerInfo.sid", info.sid));
        f.push(int("learnerInfo.protocolVersion", info.protocol_version));
        if let Some(cv) = info.config_version {
            f.push(int("learnerInfo.configVersion", cv));
        }
    }
    if let Ok(li) = LeaderInfo::from_packet(p) {
        f.push(int("data.protocolVersion", li.protocol_version));
        f.push(int("newEpoch", li.new_epoch));
    }
    if let Ok(ae) = AckEpoch::from_packet(p) {
        f.push(int("data.currentEpoch", ae.current_epoch));
    }
    f
}

fn snapshot_fields(stream: &[u8]) -> (Fields, usize) {
    let mut sessions = Vec::new();
    let mut acls: Vec<(i64, String)> = Vec::new();
    let mut paths = Vec::new();
    let (summary, used) = zab::walk_snapshot(stream, &mut |entry| match entry {
        SnapshotEntry::Session { id, timeout } => sessions.push((id, timeout)),
        SnapshotEntry::Acl(a) => acls.push((
            a.key,
            format!(
                "perms={} {}:{}",
                a.perms,
                String::from_utf8_lossy(a.scheme),
                String::from_utf8_lossy(a.id)
            ),
        )),
        SnapshotEntry::Node(n) => paths.push(String::from_utf8_lossy(n.path).into_owned()),
    })
    .unwrap_or_else(|e| panic!("snapshot stream rejected: {e}"));
    assert_eq!(summary.sessions, sessions.len());
    assert_eq!(summary.acls, acls.len());
    assert_eq!(summary.nodes, paths.len());
    let mut f = vec![
        int("sessions", summary.sessions as i64),
        int("aclEntries", summary.acl_lists as i64),
        int("streamLength", used as i64),
        text("signature", zab::SNAP_SIGNATURE),
    ];
    for (key, acl) in &acls {
        f.push(text(&format!("acl.{key}"), acl));
    }
    let nodes = paths
        .iter()
        .map(|p| {
            if p.is_empty() {
                "'' (root)".to_string()
            } else {
                format!("'{p}'")
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    f.push(text("nodes", &nodes));
    (f, used)
}

fn check_zab_expects(v: &Vector, fields: &Fields) {
    for (key, expected) in &v.expects {
        let actual = get(fields, key)
            .unwrap_or_else(|| panic!("{}: nothing checks `expect: {key}={expected}`", v.name));
        assert_eq!(actual, expected, "{}: field {key}", v.name);
    }
}

#[test]
fn zab_vectors_decode_to_their_expect_lines_and_re_encode() {
    let vectors = load_vectors("zab-");
    assert!(!vectors.is_empty(), "no zab-*.hex vectors");
    for v in &vectors {
        assert_eq!(v.bytes.len(), v.length(), "{}: length line", v.name);
        let (packet, used) =
            QuorumPacket::decode(&v.bytes).unwrap_or_else(|e| panic!("{}: rejected: {e}", v.name));
        let mut fields = zab_fields(&packet);
        let mut out = Vec::new();
        packet.encode(&mut out);
        assert_eq!(out, v.bytes[..used], "{}: re-encoding", v.name);
        if packet.packet_type == zab::SNAP {
            let (snap, stream_len) = snapshot_fields(&v.bytes[used..]);
            fields.extend(snap);
            assert_eq!(used + stream_len, v.length(), "{}: bytes consumed", v.name);
        } else {
            assert_eq!(used, v.length(), "{}: bytes consumed", v.name);
        }
        check_zab_expects(v, &fields);
    }
}

/// The Zab vectors README.md lists; a missing one is still covered by
/// [`SPEC_PACKETS`] where PROTOCOL.md prints its bytes.
const README_ZAB_VECTORS: &[&str] = &[
    "zab-followerinfo",
    "zab-leaderinfo",
    "zab-ackepoch",
    "zab-diff-insync",
    "zab-newleader-config",
    "zab-newleader-null",
    "zab-ack-newleader",
    "zab-uptodate",
    "zab-ping-leader",
    "zab-ping-reply",
    "zab-ping-reply-null-data",
    "zab-snap-empty-tree",
];

#[test]
fn zab_helpers_build_the_documented_handshake_bytes() {
    for name in README_ZAB_VECTORS {
        if try_load_vector(name).is_none() {
            let in_spec = SPEC_PACKETS.iter().any(|(n, _)| n == name);
            println!("{name}.hex is not in the vectors folder; spec bytes checked: {in_spec}");
        }
    }
    for (name, spec_hex) in SPEC_PACKETS {
        let spec = wire::hex_decode(spec_hex);
        let mut built = Vec::new();
        built_packet(name).encode(&mut built);
        assert_eq!(
            wire::hex_encode(&built),
            wire::hex_encode(&spec),
            "{name}: helper output vs PROTOCOL.md"
        );
        // The vector file, where present, holds the same bytes.
        if let Some(v) = try_load_vector(name) {
            assert_eq!(v.bytes, spec, "{name}: vector file vs PROTOCOL.md");
        }
        let (decoded, used) = QuorumPacket::decode(&spec).expect("spec packet decodes");
        assert_eq!(used, spec.len());
        assert_eq!(decoded, built_packet(name));
    }
}

#[test]
fn zab_payload_helpers_read_the_recorded_handshake() {
    let fi = QuorumPacket::decode(&load_vector("zab-followerinfo").bytes)
        .expect("FOLLOWERINFO")
        .0;
    let info = LearnerInfo::from_packet(&fi).expect("LearnerInfo");
    assert_eq!(
        info,
        LearnerInfo {
            sid: 1,
            protocol_version: 0x10000,
            config_version: Some(0)
        }
    );
    assert_eq!(zab::epoch_of_zxid(fi.zxid), 0, "acceptedEpoch");

    // 3.4 learners send the 12-byte form (PROTOCOL.md §7).
    let short = LearnerInfo {
        sid: 7,
        protocol_version: 0x10000,
        config_version: None,
    };
    assert_eq!(short.encode().len(), 12);
    assert_eq!(LearnerInfo::decode(&short.encode()), Ok(short));
    assert!(matches!(
        LearnerInfo::decode(&[0; 11]),
        Err(WireError::MalformedPacket(_))
    ));

    let li = QuorumPacket::decode(&load_vector("zab-leaderinfo").bytes)
        .expect("LEADERINFO")
        .0;
    assert_eq!(
        LeaderInfo::from_packet(&li),
        Ok(LeaderInfo {
            new_epoch: 1,
            protocol_version: 0x10000
        })
    );
    // Payload helpers refuse the wrong packet type and null data.
    assert!(AckEpoch::from_packet(&li).is_err());
    assert!(LeaderInfo::from_packet(&QuorumPacket::new(zab::LEADERINFO, 1 << 32, None)).is_err());
    assert!(LeaderInfo::from_packet(&QuorumPacket::new(
        zab::LEADERINFO,
        1 << 32,
        Some(vec![0; 3])
    ))
    .is_err());

    let ae = QuorumPacket::decode(&load_vector("zab-ackepoch").bytes)
        .expect("ACKEPOCH")
        .0;
    assert_eq!(
        AckEpoch::from_packet(&ae),
        Ok(AckEpoch {
            last_zxid: 0,
            current_epoch: 0
        })
    );
    let again = AckEpoch {
        last_zxid: 0x1_0000_0003,
        current_epoch: zab::EPOCH_ALREADY_ACCEPTED,
    };
    assert_eq!(AckEpoch::from_packet(&again.to_packet()), Ok(again));
}

#[test]
fn ping_reply_echoes_the_leader_ping_with_an_empty_buffer() {
    let ping = QuorumPacket::decode(&load_vector("zab-ping-leader").bytes)
        .expect("leader PING")
        .0;
    assert_eq!(ping.packet_type, zab::PING);
    let reply = QuorumPacket::ping_reply(ping.zxid);
    assert_eq!(reply.data, Some(Vec::new()), "never null (R15)");
    let mut out = Vec::new();
    reply.encode(&mut out);
    assert_eq!(out, load_vector("zab-ping-reply").bytes);
    assert_ne!(out, load_vector("zab-ping-reply-null-data").bytes);

    // A null-data reply (which kills a Java leader's handler) reads as no
    // sessions here; touches are (i64, i32) pairs.
    let null_reply = QuorumPacket::decode(&load_vector("zab-ping-reply-null-data").bytes)
        .expect("null-data reply decodes")
        .0;
    assert_eq!(
        zab::decode_session_touches(null_reply.data.as_deref()),
        Ok(vec![])
    );
    let mut touches = Vec::new();
    touches.extend_from_slice(&0x1234_i64.to_be_bytes());
    touches.extend_from_slice(&30_000_i32.to_be_bytes());
    assert_eq!(
        zab::decode_session_touches(Some(&touches)),
        Ok(vec![(0x1234, 30_000)])
    );
    assert!(zab::decode_session_touches(Some(&touches[..11])).is_err());
}

#[test]
fn zab_vectors_split_delivery_is_incomplete_until_the_last_byte() {
    for v in load_vectors("zab-") {
        let (_, used) = QuorumPacket::decode(&v.bytes).expect("decodes");
        for k in 0..used {
            match QuorumPacket::decode(&v.bytes[..k]) {
                Err(WireError::Incomplete { needed }) => {
                    assert!(needed > 0 && k + needed <= used, "{}: prefix {k}", v.name)
                }
                other => panic!("{}: prefix {k} of {used}: {other:?}", v.name),
            }
        }
        let stream = &v.bytes[used..];
        if stream.is_empty() {
            continue;
        }
        let (_, stream_len) = zab::decode_snapshot(stream).expect("snapshot");
        for k in 0..stream_len {
            match zab::decode_snapshot(&stream[..k]) {
                Err(WireError::Incomplete { needed }) => assert!(
                    needed > 0 && k + needed <= stream_len,
                    "{}: snapshot prefix {k}",
                    v.name
                ),
                other => panic!("{}: snapshot prefix {k}: {other:?}", v.name),
            }
        }
    }
}

/// One ACL list of a snapshot: `(perms, scheme, id)` entries.
type AclList<'a> = &'a [(i32, &'a str, &'a str)];

/// Builds a snapshot stream from parts, in the layout of PROTOCOL.md §6.4.
fn snapshot_stream(
    sessions: &[(i64, i32)],
    acls: &[(i64, AclList<'_>)],
    nodes: &[(&str, Option<&[u8]>)],
    signature: &str,
) -> Vec<u8> {
    fn ustr(s: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(&(s.len() as i32).to_be_bytes());
        out.extend_from_slice(s);
    }
    let mut b = Vec::new();
    b.extend_from_slice(&(sessions.len() as i32).to_be_bytes());
    for (id, to) in sessions {
        b.extend_from_slice(&id.to_be_bytes());
        b.extend_from_slice(&to.to_be_bytes());
    }
    b.extend_from_slice(&(acls.len() as i32).to_be_bytes());
    for (key, list) in acls {
        b.extend_from_slice(&key.to_be_bytes());
        b.extend_from_slice(&(list.len() as i32).to_be_bytes());
        for (perms, scheme, id) in *list {
            b.extend_from_slice(&perms.to_be_bytes());
            ustr(scheme.as_bytes(), &mut b);
            ustr(id.as_bytes(), &mut b);
        }
    }
    for (path, data) in nodes {
        ustr(path.as_bytes(), &mut b);
        match data {
            Some(d) => ustr(d, &mut b),
            None => b.extend_from_slice(&(-1i32).to_be_bytes()),
        }
        b.extend_from_slice(&(-1i64).to_be_bytes());
        b.extend_from_slice(&[0u8; 60]);
    }
    ustr(b"/", &mut b);
    ustr(signature.as_bytes(), &mut b);
    b
}

#[test]
fn snapshot_parser_counts_sessions_acls_and_nodes() {
    let acl_a: AclList<'_> = &[(31, "world", "anyone")];
    let acl_b: AclList<'_> = &[(1, "digest", "u:x"), (16, "ip", "10.0.0.1")];
    let stream = snapshot_stream(
        &[(0x100, 4000), (0x101, 6000)],
        &[(1, acl_a), (2, acl_b)],
        &[
            ("", None),
            ("/zookeeper", Some(b"")),
            ("/app", Some(b"hello")),
        ],
        zab::SNAP_SIGNATURE,
    );
    let mut with_trailer = stream.clone();
    with_trailer.extend_from_slice(&[0, 0, 0, 10]); // the NEWLEADER that follows
    let (summary, used) = zab::decode_snapshot(&with_trailer).expect("parses");
    assert_eq!(used, stream.len());
    assert_eq!(
        summary,
        zab::SnapshotSummary {
            sessions: 2,
            acl_lists: 2,
            acls: 3,
            nodes: 3,
            data_bytes: 5,
        }
    );

    let bad_sig = snapshot_stream(&[], &[], &[("", None)], "BenWasNotHere");
    let e = zab::decode_snapshot(&bad_sig).expect_err("bad signature");
    assert!(matches!(e, WireError::MalformedSnapshot(_)), "{e}");
    assert!(e.closes_connection(), "the stream's end is unknown");
    let relative = snapshot_stream(&[], &[], &[("", None), ("zookeeper", None)], "BenWasHere");
    assert!(matches!(
        zab::decode_snapshot(&relative),
        Err(WireError::MalformedSnapshot(_))
    ));
    let mut negative = snapshot_stream(&[], &[], &[], "BenWasHere");
    negative[..4].copy_from_slice(&(-3i32).to_be_bytes());
    assert!(matches!(
        zab::decode_snapshot(&negative),
        Err(WireError::MalformedSnapshot(_))
    ));
}

#[test]
fn jute_lengths_are_bounded_like_jute_maxbuffer() {
    let header = |len: i32| {
        let mut b = Vec::new();
        b.extend_from_slice(&zab::PROPOSAL.to_be_bytes());
        b.extend_from_slice(&1i64.to_be_bytes());
        b.extend_from_slice(&len.to_be_bytes());
        b
    };
    // The largest buffer a Java peer reads is only awaited, a larger one is
    // refused before any of its bytes arrive.
    let max = zab::MAX_JUTE_LEN as i32;
    assert_eq!(
        QuorumPacket::decode(&header(max)),
        Err(WireError::Incomplete {
            needed: zab::MAX_JUTE_LEN
        })
    );
    for bad in [max + 1, i32::MAX, -2, i32::MIN] {
        let e = QuorumPacket::decode(&header(bad)).expect_err("refused");
        assert_eq!(e, WireError::BadJuteLength(bad));
        assert!(e.closes_connection());
    }
    // A negative authinfo count other than null is refused too.
    let mut b = header(-1);
    b.extend_from_slice(&(-5i32).to_be_bytes());
    assert_eq!(QuorumPacket::decode(&b), Err(WireError::BadJuteLength(-5)));
    // A snapshot path announcing 2 GiB is refused at once.
    let mut s = vec![0u8; 8];
    s.extend_from_slice(&i32::MAX.to_be_bytes());
    assert_eq!(
        zab::decode_snapshot(&s),
        Err(WireError::BadJuteLength(i32::MAX))
    );
}

#[test]
fn authinfo_round_trips() {
    let p = QuorumPacket {
        packet_type: zab::REQUEST,
        zxid: 42,
        data: Some(b"payload".to_vec()),
        authinfo: Some(vec![
            ("digest".into(), "user:hash".into()),
            (String::new(), "é".into()),
        ]),
    };
    let mut out = Vec::new();
    p.encode(&mut out);
    assert_eq!(QuorumPacket::decode(&out), Ok((p, out.len())));
}

#[test]
fn bodies_past_40_bytes_follow_the_3_8_size_rules() {
    // PROTOCOL.md §3.3: past 40 bytes 3.8 reads the version; <= 1 accepts
    // the vote and ignores the tail, >= 2 needs a configLength that fits.
    let base = load_vector("notification-40").bytes[4..].to_vec();
    let (vote, _) = Notification::decode(&base).expect("notification-40");
    let with = |version: i32, tail: &[u8]| {
        let mut b = base.clone();
        b[36..40].copy_from_slice(&version.to_be_bytes());
        b.extend_from_slice(tail);
        b
    };
    for tail_len in 1..=8 {
        for version in [1, 0, -3] {
            let body = with(version, &vec![0xab; tail_len]);
            let (n, config) = Notification::decode(&body).expect("accepted");
            assert_eq!(n, Notification { version, ..vote }, "{tail_len}-byte tail");
            assert_eq!(config, None);
        }
    }
    for tail_len in 1..4 {
        let e = Notification::decode(&with(2, &vec![0; tail_len])).expect_err("no configLength");
        assert!(matches!(e, WireError::MalformedNotification { .. }), "{e}");
        assert!(!e.closes_connection());
    }
    // A config that fits is taken, bytes after it ignored.
    let mut tail = 3i32.to_be_bytes().to_vec();
    tail.extend_from_slice(b"abcXY");
    let body = with(2, &tail);
    let (n, config) = Notification::decode(&body).expect("v2 with tail");
    assert_eq!(n.version, 2);
    assert_eq!(config, Some(&b"abc"[..]));
    // 29..=35 and 37..=39 bytes are dropped, 36 is read as 3.4.0-3.4.5.
    for len in (29..=35).chain(37..=39) {
        let e = Notification::decode(&base[..len]).expect_err("odd size");
        assert!(
            matches!(e, WireError::MalformedNotification { .. }),
            "{len}: {e}"
        );
    }
}
