//! Interim QuorumPacket codec (PROTOCOL.md §6.1–§6.3) private to the Zab
//! subset. The shared codec lands in `crate::wire::zab`; until then this
//! module holds the minimal jute reader/writer the leader and follower need.
//! Pure functions over byte slices: no IO here.

use crate::wire::{Reader, WireError};

/// Packet types (PROTOCOL.md §6.2, ZooKeeper's `Leader` constants).
pub mod kind {
    /// A client request forwarded by a learner.
    pub const REQUEST: i32 = 1;
    /// A transaction proposal.
    pub const PROPOSAL: i32 = 2;
    /// A learner's acknowledgement of a proposal, NEWLEADER or UPTODATE.
    pub const ACK: i32 = 3;
    /// Commit of a proposal.
    pub const COMMIT: i32 = 4;
    /// Liveness ping (both directions).
    pub const PING: i32 = 5;
    /// Session revalidation.
    pub const REVALIDATE: i32 = 6;
    /// A client `sync`.
    pub const SYNC: i32 = 7;
    /// A committed transaction sent to observers.
    pub const INFORM: i32 = 8;
    /// Commit of a reconfiguration.
    pub const COMMITANDACTIVATE: i32 = 9;
    /// The leader's "I am established in this epoch" proposal.
    pub const NEWLEADER: i32 = 10;
    /// A participant's first packet.
    pub const FOLLOWERINFO: i32 = 11;
    /// Synchronization finished; start serving.
    pub const UPTODATE: i32 = 12;
    /// Sync by replaying the proposals that follow.
    pub const DIFF: i32 = 13;
    /// Sync by truncating the learner's log to the zxid.
    pub const TRUNC: i32 = 14;
    /// Sync by a full snapshot that follows the packet.
    pub const SNAP: i32 = 15;
    /// An observer's first packet.
    pub const OBSERVERINFO: i32 = 16;
    /// The leader's proposed epoch.
    pub const LEADERINFO: i32 = 17;
    /// A learner's acceptance of the proposed epoch.
    pub const ACKEPOCH: i32 = 18;
    /// A reconfiguration sent to observers.
    pub const INFORMANDACTIVATE: i32 = 19;

    /// ZooKeeper's name of a packet type, for logs.
    pub fn name(t: i32) -> &'static str {
        match t {
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
            _ => "UNKNOWN",
        }
    }
}

/// The learner protocol version 3.4 and 3.8 both speak (`0x10000`).
pub const PROTOCOL_VERSION: i32 = 0x10000;

/// Largest jute buffer Java accepts: `jute.maxbuffer` (0xfffff) + 1024.
pub const MAX_JUTE_BUFFER: usize = 0xfffff + 1024;

/// One jute `QuorumPacket`. `data == None` is jute's null buffer (length
/// −1), distinct from an empty buffer (length 0): a 3.8 leader crashes on a
/// null PING reply (PROTOCOL.md §6.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumPacket {
    /// Packet type ([`kind`]).
    pub kind: i32,
    /// The zxid field; its meaning depends on the type.
    pub zxid: i64,
    /// The data buffer; `None` is null.
    pub data: Option<Vec<u8>>,
    /// Number of authinfo entries received (`None` = null vector). zkfle
    /// sends null and never looks inside.
    pub authinfo_count: Option<usize>,
}

impl QuorumPacket {
    /// A packet with the given data and a null authinfo vector.
    pub fn new(kind: i32, zxid: i64, data: Option<Vec<u8>>) -> Self {
        QuorumPacket {
            kind,
            zxid,
            data,
            authinfo_count: None,
        }
    }

    /// The jute encoding (no length prefix).
    pub fn encode(&self) -> Vec<u8> {
        let dlen = self.data.as_ref().map_or(0, Vec::len);
        let mut out = Vec::with_capacity(20 + dlen);
        out.extend_from_slice(&self.kind.to_be_bytes());
        out.extend_from_slice(&self.zxid.to_be_bytes());
        match &self.data {
            None => out.extend_from_slice(&(-1i32).to_be_bytes()),
            Some(d) => {
                // Lengths above i32::MAX never occur: data is bounded by the
                // callers (a config text or a few bytes).
                out.extend_from_slice(&(d.len() as i32).to_be_bytes());
                out.extend_from_slice(d);
            }
        }
        // authinfo: zkfle always sends a null vector, as the recorded Java
        // peers do.
        out.extend_from_slice(&(-1i32).to_be_bytes());
        out
    }

    /// Decodes one packet from the front of `buf`, returning it and the
    /// number of bytes consumed. [`WireError::Incomplete`] means "read more".
    pub fn decode(buf: &[u8]) -> Result<(QuorumPacket, usize), WireError> {
        let mut r = Reader::new(buf);
        let kind = r.i32()?;
        let zxid = r.i64()?;
        let data = read_buffer(&mut r)?.map(<[u8]>::to_vec);
        let count = r.i32()?;
        let authinfo_count = if count == -1 {
            None
        } else if count < 0 || count as usize > MAX_JUTE_BUFFER {
            return Err(WireError::BadJuteLength(count));
        } else {
            for _ in 0..count {
                // Id { ustring scheme, ustring id }
                read_buffer(&mut r)?;
                read_buffer(&mut r)?;
            }
            Some(count as usize)
        };
        Ok((
            QuorumPacket {
                kind,
                zxid,
                data,
                authinfo_count,
            },
            r.position(),
        ))
    }

    /// The data as one big-endian `i32` (LEADERINFO, ACKEPOCH).
    pub fn data_i32(&self) -> Option<i32> {
        let d = self.data.as_deref()?;
        let b: [u8; 4] = d.get(..4)?.try_into().ok()?;
        Some(i32::from_be_bytes(b))
    }
}

/// Reads a jute buffer (`i32` length, −1 = null) bounded by
/// [`MAX_JUTE_BUFFER`].
pub(crate) fn read_buffer<'a>(r: &mut Reader<'a>) -> Result<Option<&'a [u8]>, WireError> {
    let len = r.i32()?;
    if len == -1 {
        return Ok(None);
    }
    if len < 0 || len as usize > MAX_JUTE_BUFFER {
        return Err(WireError::BadJuteLength(len));
    }
    Ok(Some(r.take(len as usize)?))
}

/// A learner's FOLLOWERINFO/OBSERVERINFO payload (`LearnerInfo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LearnerInfo {
    /// The learner's sid.
    pub sid: i64,
    /// Its protocol version (`0x10000`; absent from pre-3.4 learners → 0).
    pub protocol_version: i32,
    /// Its config version (3.5+; absent from 3.4 learners → 0).
    pub config_version: i64,
}

impl LearnerInfo {
    /// The 20-byte 3.5+ layout.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(20);
        out.extend_from_slice(&self.sid.to_be_bytes());
        out.extend_from_slice(&self.protocol_version.to_be_bytes());
        out.extend_from_slice(&self.config_version.to_be_bytes());
        out
    }

    /// Accepts the 20-byte (3.5+), 12-byte (3.4) and 8-byte (pre-3.4)
    /// layouts; anything shorter than a sid is malformed.
    pub fn decode(data: &[u8]) -> Result<LearnerInfo, WireError> {
        let mut r = Reader::new(data);
        let sid = r
            .i64()
            .map_err(|_| WireError::MalformedPacket("LearnerInfo shorter than a sid"))?;
        let protocol_version = if r.remaining() >= 4 { r.i32()? } else { 0 };
        let config_version = if r.remaining() >= 8 { r.i64()? } else { 0 };
        Ok(LearnerInfo {
            sid,
            protocol_version,
            config_version,
        })
    }
}

/// The `version=` line of a config text, read as ZooKeeper writes it (hex);
/// 0 when absent or unreadable (a static config).
pub fn config_version(config_text: &str) -> i64 {
    config_text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("version="))
        .filter_map(|v| i64::from_str_radix(v.trim(), 16).ok())
        .next_back()
        .unwrap_or(0)
}

/// The epoch half of a zxid.
pub fn epoch_of(zxid: i64) -> i64 {
    zxid >> 32
}

/// `epoch << 32`: the first zxid of an epoch.
pub fn zxid_of_epoch(epoch: i64) -> i64 {
    epoch << 32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_reports_incomplete() {
        let p = QuorumPacket::new(kind::PING, 0x1_0000_0000, Some(Vec::new()));
        let b = p.encode();
        assert_eq!(
            b,
            [0, 0, 0, 5, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 255, 255]
        );
        assert_eq!(QuorumPacket::decode(&b), Ok((p, 20)));
        for cut in 0..b.len() {
            assert!(matches!(
                QuorumPacket::decode(&b[..cut]),
                Err(WireError::Incomplete { .. })
            ));
        }
    }

    #[test]
    fn rejects_oversized_and_negative_lengths() {
        let mut b = vec![0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0];
        b.extend_from_slice(&0x7fff_ffffi32.to_be_bytes());
        assert_eq!(
            QuorumPacket::decode(&b),
            Err(WireError::BadJuteLength(0x7fff_ffff))
        );
        let mut b = vec![0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0];
        b.extend_from_slice(&(-2i32).to_be_bytes());
        assert_eq!(QuorumPacket::decode(&b), Err(WireError::BadJuteLength(-2)));
    }

    #[test]
    fn learner_info_layouts() {
        let li = LearnerInfo {
            sid: 3,
            protocol_version: PROTOCOL_VERSION,
            config_version: 0,
        };
        assert_eq!(LearnerInfo::decode(&li.encode()), Ok(li));
        let short = LearnerInfo::decode(&li.encode()[..12]);
        assert_eq!(short, Ok(li));
        assert!(LearnerInfo::decode(&[0, 0, 0]).is_err());
    }

    #[test]
    fn config_version_is_hex() {
        assert_eq!(config_version("server.1=a:1:2\nversion=0"), 0);
        assert_eq!(config_version("server.1=a:1:2\nversion=1a"), 0x1a);
        assert_eq!(config_version("server.1=a:1:2"), 0);
    }
}
