//! The Zab subset spoken on the quorum port (PROTOCOL.md §6.1–§6.4): the
//! jute `QuorumPacket` record, the learner handshake payloads (LearnerInfo,
//! LEADERINFO, ACKEPOCH), the PING reply and a parser that walks the
//! snapshot stream following a SNAP packet.
//!
//! Quorum packets carry no length prefix: a packet ends where its last jute
//! field ends, so [`QuorumPacket::decode`] answers `Incomplete` until the
//! whole record is buffered. Every length is checked before the bytes it
//! announces are awaited, so a peer announcing a 2 GiB buffer is rejected at
//! once instead of being buffered.

use super::{Reader, WireError};

/// Client request forwarded by a learner (ignored by a zkfle leader).
pub const REQUEST: i32 = 1;
/// Leader proposes a transaction.
pub const PROPOSAL: i32 = 2;
/// Learner acknowledges a proposal, NEWLEADER or UPTODATE.
pub const ACK: i32 = 3;
/// Leader commits a proposal.
pub const COMMIT: i32 = 4;
/// Liveness probe from the leader, echoed by the learner with session touches.
pub const PING: i32 = 5;
/// Session revalidation.
pub const REVALIDATE: i32 = 6;
/// Sync request.
pub const SYNC: i32 = 7;
/// Committed transaction sent to observers.
pub const INFORM: i32 = 8;
/// Commit of a reconfiguration.
pub const COMMITANDACTIVATE: i32 = 9;
/// Leader announces the established epoch; data is the config text or null.
pub const NEWLEADER: i32 = 10;
/// Learner registration: `zxid = acceptedEpoch << 32`, data = LearnerInfo.
pub const FOLLOWERINFO: i32 = 11;
/// Leader says the learner is synchronised and may serve.
pub const UPTODATE: i32 = 12;
/// Sync by replaying the leader's log (empty when already in sync).
pub const DIFF: i32 = 13;
/// Sync by truncating the learner's log to `zxid`.
pub const TRUNC: i32 = 14;
/// Sync by a full snapshot stream following the packet.
pub const SNAP: i32 = 15;
/// Observer registration, same payload as FOLLOWERINFO.
pub const OBSERVERINFO: i32 = 16;
/// Leader's answer to FOLLOWERINFO: `zxid = newEpoch << 32`, data = protocol version.
pub const LEADERINFO: i32 = 17;
/// Learner's answer to LEADERINFO: `zxid` = its last zxid, data = current epoch.
pub const ACKEPOCH: i32 = 18;
/// Reconfiguration commit sent to observers.
pub const INFORMANDACTIVATE: i32 = 19;

/// The learner protocol version 3.4 and 3.8 both announce (`0x10000`).
pub const PROTOCOL_VERSION: i32 = 0x10000;

/// ZooKeeper's default `jute.maxbuffer` (0xfffff) plus the 1024 bytes of
/// slack Java's `BinaryInputArchive` allows on top of it: the largest jute
/// buffer, string or vector length a Java peer would read.
pub const MAX_JUTE_LEN: usize = 0xfffff + 1024;

/// The string a leader writes after a snapshot stream; a Java learner that
/// does not find it gives up the sync.
pub const SNAP_SIGNATURE: &str = "BenWasHere";

/// The ACKEPOCH `currentEpoch` value meaning "the new epoch equals the epoch
/// I had already accepted".
pub const EPOCH_ALREADY_ACCEPTED: i32 = -1;

/// Name of a packet type as ZooKeeper's logs spell it, `None` if unknown.
pub fn packet_type_name(packet_type: i32) -> Option<&'static str> {
    Some(match packet_type {
        REQUEST => "REQUEST",
        PROPOSAL => "PROPOSAL",
        ACK => "ACK",
        COMMIT => "COMMIT",
        PING => "PING",
        REVALIDATE => "REVALIDATE",
        SYNC => "SYNC",
        INFORM => "INFORM",
        COMMITANDACTIVATE => "COMMITANDACTIVATE",
        NEWLEADER => "NEWLEADER",
        FOLLOWERINFO => "FOLLOWERINFO",
        UPTODATE => "UPTODATE",
        DIFF => "DIFF",
        TRUNC => "TRUNC",
        SNAP => "SNAP",
        OBSERVERINFO => "OBSERVERINFO",
        LEADERINFO => "LEADERINFO",
        ACKEPOCH => "ACKEPOCH",
        INFORMANDACTIVATE => "INFORMANDACTIVATE",
        _ => return None,
    })
}

/// The epoch half of a zxid (its high 32 bits, sign-preserving as in Java).
pub fn epoch_of_zxid(zxid: i64) -> i64 {
    zxid >> 32
}

/// The zxid that opens `epoch`: `epoch << 32`, counter 0.
pub fn zxid_of_epoch(epoch: i64) -> i64 {
    epoch << 32
}

/// One jute `QuorumPacket`: `i32 type, i64 zxid, buffer data, vector<Id>
/// authinfo`. `None` stands for jute's null (length −1), which is distinct
/// from an empty buffer on the wire and to a Java peer (PROTOCOL.md §6.5).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QuorumPacket {
    /// One of the type constants of this module ([`PING`], [`ACK`], ...).
    pub packet_type: i32,
    /// The zxid field; its meaning depends on the type.
    pub zxid: i64,
    /// The data buffer; `None` is jute null.
    pub data: Option<Vec<u8>>,
    /// `(scheme, id)` pairs; `None` is jute null, which every packet of the
    /// learner handshake and broadcast subset carries. Decoding reads each
    /// ustring as Java does (invalid UTF-8 replaced) and a null one as
    /// empty: zkfle never relays authinfo, it only has to skip it.
    pub authinfo: Option<Vec<(String, String)>>,
}

/// Reads a jute length (buffer, string or vector count): −1 is null, other
/// negatives and lengths above [`MAX_JUTE_LEN`] are rejected as a Java peer
/// would reject them.
fn jute_len(r: &mut Reader<'_>) -> Result<Option<usize>, WireError> {
    let n = r.i32()?;
    if n == -1 {
        return Ok(None);
    }
    if n < -1 || n as usize > MAX_JUTE_LEN {
        return Err(WireError::BadJuteLength(n));
    }
    Ok(Some(n as usize))
}

fn jute_buffer<'a>(r: &mut Reader<'a>) -> Result<Option<&'a [u8]>, WireError> {
    match jute_len(r)? {
        None => Ok(None),
        Some(n) => Ok(Some(r.take(n)?)),
    }
}

/// A ustring as Java reads it: UTF-8 with malformed sequences replaced, so
/// odd bytes never fail a packet Java itself would accept.
fn jute_ustring(r: &mut Reader<'_>) -> Result<Option<String>, WireError> {
    Ok(jute_buffer(r)?.map(|b| String::from_utf8_lossy(b).into_owned()))
}

fn put_buffer(data: Option<&[u8]>, out: &mut Vec<u8>) {
    match data {
        None => out.extend_from_slice(&(-1i32).to_be_bytes()),
        Some(b) => {
            out.extend_from_slice(&(b.len() as i32).to_be_bytes());
            out.extend_from_slice(b);
        }
    }
}

fn put_head(packet_type: i32, zxid: i64, data: Option<&[u8]>, out: &mut Vec<u8>) {
    out.extend_from_slice(&packet_type.to_be_bytes());
    out.extend_from_slice(&zxid.to_be_bytes());
    put_buffer(data, out);
}

/// Appends the encoding of a packet with null authinfo (the only form the
/// handshake and broadcast subset uses) without building a
/// [`QuorumPacket`]: the bytes are exactly those of
/// `QuorumPacket::new(packet_type, zxid, data).encode(out)`. Lets a caller
/// holding the data in a shared buffer (one proposal sent to N learners)
/// encode it without copying it into a `Vec` first.
pub fn encode_packet(packet_type: i32, zxid: i64, data: Option<&[u8]>, out: &mut Vec<u8>) {
    put_head(packet_type, zxid, data, out);
    out.extend_from_slice(&(-1i32).to_be_bytes());
}

/// The length of [`encode_packet`]'s output for `data_len` bytes of data
/// (`None` = null data): type, zxid, buffer length, data, authinfo count.
pub fn encoded_packet_len(data_len: Option<usize>) -> usize {
    4 + 8 + 4 + data_len.unwrap_or(0) + 4
}

impl QuorumPacket {
    /// A packet with null authinfo, the only form the handshake and broadcast
    /// subset uses.
    pub fn new(packet_type: i32, zxid: i64, data: Option<Vec<u8>>) -> QuorumPacket {
        QuorumPacket {
            packet_type,
            zxid,
            data,
            authinfo: None,
        }
    }

    /// A learner's answer to a leader PING. The data is an empty buffer (no
    /// session touches), never null: a 3.8 leader's learner handler dies on
    /// a null PING reply and drops the learner (PROTOCOL.md §6.5, R15).
    pub fn ping_reply(zxid: i64) -> QuorumPacket {
        QuorumPacket::new(PING, zxid, Some(Vec::new()))
    }

    /// Decodes one packet from the start of `buf`, returning it and the
    /// number of bytes it occupied. `Incomplete` asks for more bytes; a bad
    /// length is [`WireError::BadJuteLength`], after which the stream cannot
    /// be resynchronised.
    pub fn decode(buf: &[u8]) -> Result<(QuorumPacket, usize), WireError> {
        let mut r = Reader::new(buf);
        let packet_type = r.i32()?;
        let zxid = r.i64()?;
        let data = jute_buffer(&mut r)?.map(<[u8]>::to_vec);
        let authinfo = match jute_len(&mut r)? {
            None => None,
            Some(count) => {
                // The count is bounded by MAX_JUTE_LEN but not trusted for
                // allocation: entries are pushed as their bytes arrive.
                let mut ids = Vec::with_capacity(count.min(16));
                for _ in 0..count {
                    let scheme = jute_ustring(&mut r)?.unwrap_or_default();
                    let id = jute_ustring(&mut r)?.unwrap_or_default();
                    ids.push((scheme, id));
                }
                Some(ids)
            }
        };
        Ok((
            QuorumPacket {
                packet_type,
                zxid,
                data,
                authinfo,
            },
            r.position(),
        ))
    }

    /// Appends the jute encoding to `out`, to be written in one call.
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_head(self.packet_type, self.zxid, self.data.as_deref(), out);
        match &self.authinfo {
            None => out.extend_from_slice(&(-1i32).to_be_bytes()),
            Some(ids) => {
                out.extend_from_slice(&(ids.len() as i32).to_be_bytes());
                for (scheme, id) in ids {
                    put_buffer(Some(scheme.as_bytes()), out);
                    put_buffer(Some(id.as_bytes()), out);
                }
            }
        }
    }

    /// The type's name for logs (`"UNKNOWN"` for types outside 1..=19).
    pub fn type_name(&self) -> &'static str {
        packet_type_name(self.packet_type).unwrap_or("UNKNOWN")
    }

    fn data_of(&self, expected_type: i32, what: &'static str) -> Result<&[u8], WireError> {
        if self.packet_type != expected_type {
            return Err(WireError::MalformedPacket(what));
        }
        self.data
            .as_deref()
            .ok_or(WireError::MalformedPacket("null data"))
    }
}

/// The payload of FOLLOWERINFO / OBSERVERINFO: `i64 sid, i32
/// protocolVersion, i64 configVersion`. 3.8 sends 20 bytes; 3.4 sends the
/// first 12 (no config version).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LearnerInfo {
    /// The learner's sid.
    pub sid: i64,
    /// Its learner protocol version ([`PROTOCOL_VERSION`] for 3.4 and 3.8).
    pub protocol_version: i32,
    /// The version of its committed config; `None` in the 12-byte 3.4 form.
    pub config_version: Option<i64>,
}

impl LearnerInfo {
    /// Decodes a LearnerInfo payload. Fewer than 12 bytes is malformed;
    /// 12..=19 bytes is the 3.4 form; bytes past 20 are ignored, as 3.8
    /// ignores them.
    pub fn decode(data: &[u8]) -> Result<LearnerInfo, WireError> {
        if data.len() < 12 {
            return Err(WireError::MalformedPacket(
                "LearnerInfo shorter than 12 bytes",
            ));
        }
        let mut r = Reader::new(data);
        let sid = r.i64()?;
        let protocol_version = r.i32()?;
        let config_version = if data.len() >= 20 {
            Some(r.i64()?)
        } else {
            None
        };
        Ok(LearnerInfo {
            sid,
            protocol_version,
            config_version,
        })
    }

    /// Encodes the payload: 20 bytes with a config version, 12 without.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(20);
        b.extend_from_slice(&self.sid.to_be_bytes());
        b.extend_from_slice(&self.protocol_version.to_be_bytes());
        if let Some(v) = self.config_version {
            b.extend_from_slice(&v.to_be_bytes());
        }
        b
    }

    /// The FOLLOWERINFO packet a follower sends first: `zxid =
    /// acceptedEpoch << 32`.
    pub fn followerinfo(&self, accepted_epoch: i64) -> QuorumPacket {
        QuorumPacket::new(
            FOLLOWERINFO,
            zxid_of_epoch(accepted_epoch),
            Some(self.encode()),
        )
    }

    /// Reads the LearnerInfo of a FOLLOWERINFO or OBSERVERINFO packet. The
    /// learner's accepted epoch is `epoch_of_zxid(packet.zxid)`.
    pub fn from_packet(packet: &QuorumPacket) -> Result<LearnerInfo, WireError> {
        if packet.packet_type != FOLLOWERINFO && packet.packet_type != OBSERVERINFO {
            return Err(WireError::MalformedPacket(
                "not a FOLLOWERINFO or OBSERVERINFO",
            ));
        }
        let data = packet
            .data
            .as_deref()
            .ok_or(WireError::MalformedPacket("null LearnerInfo"))?;
        LearnerInfo::decode(data)
    }
}

/// LEADERINFO: the leader's proposed epoch (in the zxid) and its protocol
/// version (the 4-byte data).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LeaderInfo {
    /// The epoch the leader proposes (`zxid >> 32`).
    pub new_epoch: i64,
    /// The leader's learner protocol version.
    pub protocol_version: i32,
}

impl LeaderInfo {
    /// The LEADERINFO packet: `zxid = newEpoch << 32`, data = version.
    pub fn to_packet(&self) -> QuorumPacket {
        QuorumPacket::new(
            LEADERINFO,
            zxid_of_epoch(self.new_epoch),
            Some(self.protocol_version.to_be_bytes().to_vec()),
        )
    }

    /// Reads a LEADERINFO packet. Data shorter than 4 bytes (or null) is
    /// malformed; bytes after the first 4 are ignored, as in 3.8.
    pub fn from_packet(packet: &QuorumPacket) -> Result<LeaderInfo, WireError> {
        let data = packet.data_of(LEADERINFO, "not a LEADERINFO")?;
        let mut r = Reader::new(data);
        let protocol_version = r
            .i32()
            .map_err(|_| WireError::MalformedPacket("LEADERINFO data shorter than 4 bytes"))?;
        Ok(LeaderInfo {
            new_epoch: epoch_of_zxid(packet.zxid),
            protocol_version,
        })
    }
}

/// First word of the store-mode marker: ASCII "zkfl".
pub const STORE_MAGIC: i32 = 0x7a6b_666c;
/// Store-marker flag bit 0: the peer replicates an embedder's log through
/// Zab (full history, DIFF/TRUNC/SNAP with data).
pub const STORE_FLAG_REPLICATED_LOG: i32 = 1;
/// Where the marker starts in a FOLLOWERINFO/OBSERVERINFO payload: after the
/// 20-byte 3.8 LearnerInfo.
pub const STORE_MARKER_LEARNER_OFFSET: usize = 20;
/// Where the marker starts in a LEADERINFO payload: after the `i32`
/// protocol version.
pub const STORE_MARKER_LEADER_OFFSET: usize = 4;

/// The 8 bytes a zkfle peer that replicates a log appends to its
/// LearnerInfo (after byte 20) and to its LEADERINFO data (after byte 4):
/// `i32` [`STORE_MAGIC`] then `i32 flags`. Java 3.8 reads only the bytes
/// before them (the first 20 of a LearnerInfo, the first 4 of a
/// LEADERINFO), so it neither fails on nor notices the marker; that is why
/// each zkfle side checks the other's marker itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StoreMarker {
    /// Flag bits; bit 0 is [`STORE_FLAG_REPLICATED_LOG`], the rest are
    /// reserved (sent as 0, ignored on receipt).
    pub flags: i32,
}

impl StoreMarker {
    /// Encoded length.
    pub const LEN: usize = 8;

    /// The marker of a peer that replicates a log.
    pub fn replicated_log() -> StoreMarker {
        StoreMarker {
            flags: STORE_FLAG_REPLICATED_LOG,
        }
    }

    /// True if the replicated-log flag is set.
    pub fn replicates_log(&self) -> bool {
        self.flags & STORE_FLAG_REPLICATED_LOG != 0
    }

    /// The 8 bytes: magic then flags, big-endian.
    pub fn encode(&self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[..4].copy_from_slice(&STORE_MAGIC.to_be_bytes());
        b[4..].copy_from_slice(&self.flags.to_be_bytes());
        b
    }

    /// The marker at `offset` of `data`, if the 8 bytes there start with
    /// [`STORE_MAGIC`]; `None` when the data is shorter or the magic differs
    /// (a Java peer or an election-only zkfle peer). Bytes after the marker
    /// are ignored, leaving room for later extensions.
    pub fn decode_at(data: &[u8], offset: usize) -> Option<StoreMarker> {
        let b = data.get(offset..offset.checked_add(Self::LEN)?)?;
        let magic = i32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        (magic == STORE_MAGIC).then(|| StoreMarker {
            flags: i32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        })
    }

    /// The marker of a FOLLOWERINFO/OBSERVERINFO payload.
    pub fn in_learner_info(data: &[u8]) -> Option<StoreMarker> {
        Self::decode_at(data, STORE_MARKER_LEARNER_OFFSET)
    }

    /// The marker of a LEADERINFO payload.
    pub fn in_leader_info(data: &[u8]) -> Option<StoreMarker> {
        Self::decode_at(data, STORE_MARKER_LEADER_OFFSET)
    }
}

/// ACKEPOCH: the learner's last zxid (in the zxid) and its current epoch
/// (the 4-byte data), or [`EPOCH_ALREADY_ACCEPTED`] when the leader's new
/// epoch equals the learner's accepted epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AckEpoch {
    /// The learner's last logged zxid.
    pub last_zxid: i64,
    /// The learner's current epoch, as the i32 ZooKeeper writes.
    pub current_epoch: i32,
}

impl AckEpoch {
    /// The ACKEPOCH packet.
    pub fn to_packet(&self) -> QuorumPacket {
        QuorumPacket::new(
            ACKEPOCH,
            self.last_zxid,
            Some(self.current_epoch.to_be_bytes().to_vec()),
        )
    }

    /// Reads an ACKEPOCH packet (data: at least 4 bytes; the rest ignored).
    pub fn from_packet(packet: &QuorumPacket) -> Result<AckEpoch, WireError> {
        let data = packet.data_of(ACKEPOCH, "not an ACKEPOCH")?;
        let mut r = Reader::new(data);
        let current_epoch = r
            .i32()
            .map_err(|_| WireError::MalformedPacket("ACKEPOCH data shorter than 4 bytes"))?;
        Ok(AckEpoch {
            last_zxid: packet.zxid,
            current_epoch,
        })
    }
}

/// Reads the session touches of a learner's PING reply: `(i64 session id,
/// i32 timeout)` pairs. Null data is read as no sessions (Java's leader
/// crashes on it; zkfle does not), a length that is not a multiple of 12 is
/// malformed.
pub fn decode_session_touches(data: Option<&[u8]>) -> Result<Vec<(i64, i32)>, WireError> {
    let data = data.unwrap_or(&[]);
    if data.len() % 12 != 0 {
        return Err(WireError::MalformedPacket(
            "PING data is not (i64, i32) pairs",
        ));
    }
    let mut r = Reader::new(data);
    let mut touches = Vec::with_capacity(data.len() / 12);
    while r.remaining() > 0 {
        touches.push((r.i64()?, r.i32()?));
    }
    Ok(touches)
}

/// The header of a client request a learner forwards to its leader in a
/// REQUEST packet: session id, client xid, operation code, then the
/// operation's own record (not decoded: zkfle serves no client API and only
/// reports what it dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForwardedRequest {
    /// The client session.
    pub session_id: i64,
    /// The client's request xid.
    pub cxid: i32,
    /// ZooKeeper's operation code (`ZooDefs.OpCode`).
    pub op: i32,
}

impl ForwardedRequest {
    /// Decodes the header of a REQUEST packet's data.
    pub fn from_packet(packet: &QuorumPacket) -> Result<ForwardedRequest, WireError> {
        if packet.packet_type != REQUEST {
            return Err(WireError::MalformedPacket("not a REQUEST packet"));
        }
        let data = packet.data.as_deref().unwrap_or(&[]);
        if data.len() < 16 {
            return Err(WireError::MalformedPacket(
                "REQUEST shorter than its 16-byte header",
            ));
        }
        let mut r = Reader::new(data);
        Ok(ForwardedRequest {
            session_id: r.i64()?,
            cxid: r.i32()?,
            op: r.i32()?,
        })
    }

    /// ZooKeeper's name of the operation (`ZooDefs.OpCode`), for logs.
    pub fn op_name(&self) -> &'static str {
        match self.op {
            -11 => "closeSession",
            -10 => "createSession",
            1 => "create",
            2 => "delete",
            3 => "exists",
            4 => "getData",
            5 => "setData",
            6 => "getACL",
            7 => "setACL",
            8 => "getChildren",
            9 => "sync",
            11 => "ping",
            12 => "getChildren2",
            13 => "check",
            14 => "multi",
            15 => "create2",
            16 => "reconfig",
            19 => "createContainer",
            20 => "deleteContainer",
            21 => "createTTL",
            _ => "unknown operation",
        }
    }
}

/// One entry of an access-control list in the snapshot's ACL map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotAcl<'a> {
    /// The map key nodes refer to.
    pub key: i64,
    /// Permission bits (READ 1, WRITE 2, CREATE 4, DELETE 8, ADMIN 16).
    pub perms: i32,
    /// Id scheme, e.g. `world`; raw bytes as sent.
    pub scheme: &'a [u8],
    /// Id, e.g. `anyone`; raw bytes as sent.
    pub id: &'a [u8],
}

/// One znode record of the snapshot stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotNode<'a> {
    /// The path (`""` for the root); raw bytes as sent.
    pub path: &'a [u8],
    /// The node's data; `None` is jute null.
    pub data: Option<&'a [u8]>,
    /// Key into the ACL map (−1: open ACL unsafe).
    pub acl: i64,
    /// Creating zxid.
    pub czxid: i64,
    /// Last modifying zxid.
    pub mzxid: i64,
    /// The node's data version.
    pub version: i32,
    /// Session id owning an ephemeral node, 0 otherwise.
    pub ephemeral_owner: i64,
}

/// What a snapshot stream walk saw, in stream order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotEntry<'a> {
    /// A session: id and timeout in ms.
    Session {
        /// Session id.
        id: i64,
        /// Session timeout, ms.
        timeout: i32,
    },
    /// One ACL of the ACL map.
    Acl(SnapshotAcl<'a>),
    /// A znode.
    Node(SnapshotNode<'a>),
}

/// Counts over a parsed snapshot stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SnapshotSummary {
    /// Sessions listed at the head of the stream.
    pub sessions: usize,
    /// Entries of the ACL map (distinct ACL lists).
    pub acl_lists: usize,
    /// ACLs over all lists.
    pub acls: usize,
    /// Znodes, root included, terminator excluded.
    pub nodes: usize,
    /// Sum of the nodes' data lengths.
    pub data_bytes: usize,
}

/// Size of jute `StatPersisted`: czxid, mzxid, ctime, mtime (i64),
/// version, cversion, aversion (i32), ephemeralOwner, pzxid (i64).
const STAT_PERSISTED_LEN: usize = 8 * 4 + 4 * 3 + 8 * 2;

/// Parses the snapshot stream that follows a SNAP packet (the bytes after
/// the packet itself) up to and including the [`SNAP_SIGNATURE`] string,
/// and returns its counts and the number of bytes it occupied.
///
/// The stream has no length prefix: `Incomplete` means it was cut, and a
/// layout violation is [`WireError::MalformedSnapshot`], which ends the
/// quorum session because the stream's end can no longer be found. Callers
/// reading from a socket should buffer and retry; a tree large enough for
/// re-parsing to matter is far beyond what an election-only ensemble holds.
pub fn decode_snapshot(buf: &[u8]) -> Result<(SnapshotSummary, usize), WireError> {
    walk_snapshot(buf, &mut |_| {})
}

/// [`decode_snapshot`] that also hands every session, ACL and node to
/// `visit`, in stream order (for logging or tests).
pub fn walk_snapshot<'a>(
    buf: &'a [u8],
    visit: &mut dyn FnMut(SnapshotEntry<'a>),
) -> Result<(SnapshotSummary, usize), WireError> {
    let mut r = Reader::new(buf);
    let mut summary = SnapshotSummary::default();

    let sessions = count(&mut r, "negative session count")?;
    for _ in 0..sessions {
        let id = r.i64()?;
        let timeout = r.i32()?;
        summary.sessions += 1;
        visit(SnapshotEntry::Session { id, timeout });
    }

    let acl_lists = count(&mut r, "negative ACL map size")?;
    for _ in 0..acl_lists {
        let key = r.i64()?;
        // A null ACL list makes Java's learner abandon the snapshot.
        let n = jute_len(&mut r)?.ok_or(WireError::MalformedSnapshot("null ACL list"))?;
        for _ in 0..n {
            let perms = r.i32()?;
            let scheme = jute_buffer(&mut r)?.unwrap_or_default();
            let id = jute_buffer(&mut r)?.unwrap_or_default();
            summary.acls += 1;
            visit(SnapshotEntry::Acl(SnapshotAcl {
                key,
                perms,
                scheme,
                id,
            }));
        }
        summary.acl_lists += 1;
    }

    loop {
        let path = jute_buffer(&mut r)?.ok_or(WireError::MalformedSnapshot("null node path"))?;
        if path == b"/" {
            break;
        }
        // Java rebuilds the tree from parent paths; a non-root path that is
        // not absolute has no parent and fails the sync there.
        if !path.is_empty() && path[0] != b'/' {
            return Err(WireError::MalformedSnapshot("relative node path"));
        }
        let data = jute_buffer(&mut r)?;
        let acl = r.i64()?;
        let stat = r.take(STAT_PERSISTED_LEN)?;
        let mut s = Reader::new(stat);
        let czxid = s.i64()?;
        let mzxid = s.i64()?;
        let _ctime = s.i64()?;
        let _mtime = s.i64()?;
        let version = s.i32()?;
        let _cversion = s.i32()?;
        let _aversion = s.i32()?;
        let ephemeral_owner = s.i64()?;
        summary.nodes += 1;
        summary.data_bytes += data.map_or(0, <[u8]>::len);
        visit(SnapshotEntry::Node(SnapshotNode {
            path,
            data,
            acl,
            czxid,
            mzxid,
            version,
            ephemeral_owner,
        }));
    }

    let signature = jute_buffer(&mut r)?;
    if signature != Some(SNAP_SIGNATURE.as_bytes()) {
        return Err(WireError::MalformedSnapshot("missing snapshot signature"));
    }
    Ok((summary, r.position()))
}

fn count(r: &mut Reader<'_>, what: &'static str) -> Result<usize, WireError> {
    let n = r.i32()?;
    if n < 0 {
        return Err(WireError::MalformedSnapshot(what));
    }
    Ok(n as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_marker_round_trips_and_hides_from_java_readers() {
        let info = LearnerInfo {
            sid: 1,
            protocol_version: PROTOCOL_VERSION,
            config_version: Some(0),
        };
        let mut data = info.encode();
        data.extend_from_slice(&StoreMarker::replicated_log().encode());
        assert_eq!(data.len(), 28);
        assert_eq!(&data[20..24], b"zkfl");
        // What a Java 3.8 leader reads: the first 20 bytes, unchanged.
        assert_eq!(LearnerInfo::decode(&data).expect("decodes"), info);
        let m = StoreMarker::in_learner_info(&data).expect("marker");
        assert!(m.replicates_log());
        assert_eq!(StoreMarker::in_learner_info(&info.encode()), None);
        assert_eq!(
            StoreMarker::in_learner_info(&data[..27]),
            None,
            "cut marker"
        );
        let mut wrong = data.clone();
        wrong[20] = b'Z';
        assert_eq!(StoreMarker::in_learner_info(&wrong), None, "bad magic");
        assert_eq!(StoreMarker::decode_at(&data, usize::MAX), None);

        let mut li = PROTOCOL_VERSION.to_be_bytes().to_vec();
        li.extend_from_slice(&StoreMarker { flags: 0 }.encode());
        let p = QuorumPacket::new(LEADERINFO, 1 << 32, Some(li.clone()));
        assert_eq!(
            LeaderInfo::from_packet(&p)
                .expect("decodes")
                .protocol_version,
            PROTOCOL_VERSION
        );
        let m = StoreMarker::in_leader_info(&li).expect("marker");
        assert!(!m.replicates_log(), "flag bit 0 clear");
    }

    #[test]
    fn encode_packet_matches_quorum_packet_encode() {
        for data in [None, Some(&[][..]), Some(&[1u8, 2, 3][..])] {
            let mut a = Vec::new();
            QuorumPacket::new(PROPOSAL, 0x1_0000_0007, data.map(<[u8]>::to_vec)).encode(&mut a);
            let mut b = Vec::new();
            encode_packet(PROPOSAL, 0x1_0000_0007, data, &mut b);
            assert_eq!(a, b);
            assert_eq!(b.len(), encoded_packet_len(data.map(<[u8]>::len)));
        }
    }

    #[test]
    fn forwarded_request_header() {
        // A follower forwarding a new client's session: session id with the
        // follower's sid in the top byte, cxid 0, createSession (-10), then
        // the CreateSessionTxn's timeout.
        let mut data = Vec::new();
        data.extend_from_slice(&0x0100_0000_0000_0001i64.to_be_bytes());
        data.extend_from_slice(&0i32.to_be_bytes());
        data.extend_from_slice(&(-10i32).to_be_bytes());
        data.extend_from_slice(&30_000i32.to_be_bytes());
        let p = QuorumPacket::new(REQUEST, 0, Some(data));
        let r = ForwardedRequest::from_packet(&p).expect("decodes");
        assert_eq!(
            (r.session_id, r.cxid, r.op),
            (0x0100_0000_0000_0001, 0, -10)
        );
        assert_eq!(r.op_name(), "createSession");
        let short = QuorumPacket::new(REQUEST, 0, Some(vec![0; 15]));
        assert!(matches!(
            ForwardedRequest::from_packet(&short),
            Err(WireError::MalformedPacket(_))
        ));
        assert!(ForwardedRequest::from_packet(&QuorumPacket::new(REQUEST, 0, None)).is_err());
        assert!(
            ForwardedRequest::from_packet(&QuorumPacket::new(PING, 0, Some(vec![0; 16]))).is_err()
        );
    }
}
