//! Election notifications (PROTOCOL.md §3.2–§3.4): every body size a
//! ZooKeeper peer has ever sent is decoded; zkfle sends the 40-byte layout
//! that ZooKeeper 3.4.6+ and 3.8 both accept.

use super::{Reader, WireError};

/// Size of the notification body zkfle sends by default: the 3.4.6+ "v1"
/// layout. Both 3.4.6+ and 3.8 accept it, and it fits the fixed `[u8; 40]`
/// buffers the send and receive workers move around.
pub const NOTIFICATION_LEN: usize = 40;

/// A peer's state as carried in notifications (`QuorumPeer.ServerState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServerState {
    /// 0: electing.
    Looking,
    /// 1: following a leader.
    Following,
    /// 2: leading.
    Leading,
    /// 3: observing a leader (non-voting).
    Observing,
}

impl ServerState {
    /// The wire code: 0 LOOKING, 1 FOLLOWING, 2 LEADING, 3 OBSERVING.
    pub fn code(self) -> i32 {
        match self {
            ServerState::Looking => 0,
            ServerState::Following => 1,
            ServerState::Leading => 2,
            ServerState::Observing => 3,
        }
    }

    /// Inverse of [`ServerState::code`]; `None` for codes ZooKeeper drops.
    pub fn from_code(code: i32) -> Option<Self> {
        match code {
            0 => Some(ServerState::Looking),
            1 => Some(ServerState::Following),
            2 => Some(ServerState::Leading),
            3 => Some(ServerState::Observing),
            _ => None,
        }
    }

    /// Lower-case name as ZooKeeper's logs and `mntr` print it.
    pub fn name(self) -> &'static str {
        match self {
            ServerState::Looking => "looking",
            ServerState::Following => "following",
            ServerState::Leading => "leading",
            ServerState::Observing => "observing",
        }
    }
}

impl std::fmt::Display for ServerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ServerState::Looking => "LOOKING",
            ServerState::Following => "FOLLOWING",
            ServerState::Leading => "LEADING",
            ServerState::Observing => "OBSERVING",
        })
    }
}

/// The body layouts ZooKeeper versions send (PROTOCOL.md §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// 28 bytes, ZooKeeper ≤ 3.3: no peerEpoch.
    V28,
    /// 36 bytes, 3.4.0–3.4.5: peerEpoch, no version.
    V36,
    /// 40 bytes, 3.4.6–3.4.14 (version 1); zkfle's default.
    V40,
    /// 44+N bytes, 3.5+: version 2 and a config text.
    V2,
}

/// One election notification, as decoded from (or encoded to) a frame body.
/// The sender's sid is not in the body: it is the sid of the connection's
/// handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Notification {
    /// The sender's state.
    pub state: ServerState,
    /// The sid the sender votes for (LOOKING) or follows/is (otherwise).
    pub leader: i64,
    /// The zxid of that vote.
    pub zxid: i64,
    /// The sender's election round (`logicalclock` in ZooKeeper).
    pub election_epoch: i64,
    /// The peer epoch of the voted leader.
    pub peer_epoch: i64,
    /// The version as ZooKeeper 3.8 reads it: 0 for 28/36/40-byte bodies
    /// (3.8 does not read the 40-byte layout's trailing int), the field
    /// itself for 41+ bytes. It only matters for out-of-election vote
    /// equality (PROTOCOL.md §4.1).
    pub version: i32,
}

impl Notification {
    /// Decodes a frame body. Returns the notification and, for a v2 body,
    /// its config text (borrowed, never parsed here: PROTOCOL.md §8 R6/R7
    /// say a received config is for logging only).
    ///
    /// Sizes follow ZooKeeper 3.8 (PROTOCOL.md §3.3) with one deliberate
    /// difference: a 36-byte body is accepted as version 0, as 3.4.6+ does,
    /// instead of being dropped.
    pub fn decode(body: &[u8]) -> Result<(Notification, Option<&[u8]>), WireError> {
        let len = body.len();
        let malformed = |reason| WireError::MalformedNotification { len, reason };
        if len < 28 {
            return Err(malformed("shorter than 28 bytes"));
        }
        if (29..36).contains(&len) {
            return Err(malformed("truncated peerEpoch"));
        }
        if (37..40).contains(&len) {
            return Err(malformed("truncated version"));
        }
        let mut r = Reader::new(body);
        let state_code = r.i32()?;
        let leader = r.i64()?;
        let zxid = r.i64()?;
        let election_epoch = r.i64()?;
        let (peer_epoch, version, config) = if len == 28 {
            // Pre-3.4 peers carry no peerEpoch; ZooKeeper derives it from
            // the zxid's high 32 bits.
            (zxid >> 32, 0, None)
        } else {
            let peer_epoch = r.i64()?;
            if len <= 40 {
                (peer_epoch, 0, None)
            } else {
                let version = r.i32()?;
                if version <= 1 {
                    (peer_epoch, version, None)
                } else {
                    if r.remaining() < 4 {
                        return Err(malformed("v2 body without configLength"));
                    }
                    let config_len = r.i32()?;
                    if config_len < 0 || config_len as usize > r.remaining() {
                        return Err(WireError::BadConfigLength { config_len, len });
                    }
                    let config = r.take(config_len as usize)?;
                    (peer_epoch, version, Some(config))
                }
            }
        };
        let state = ServerState::from_code(state_code).ok_or(WireError::BadState(state_code))?;
        Ok((
            Notification {
                state,
                leader,
                zxid,
                election_epoch,
                peer_epoch,
                version,
            },
            config,
        ))
    }

    /// The 40-byte body zkfle sends by default. The trailing int is 1, as
    /// ZooKeeper 3.4.6+ writes it (3.8 ignores it).
    pub fn encode_40(&self) -> [u8; NOTIFICATION_LEN] {
        let mut b = [0u8; NOTIFICATION_LEN];
        self.write_common(&mut b[..36]);
        b[36..40].copy_from_slice(&1i32.to_be_bytes());
        b
    }

    /// The 40-byte body with its 4-byte length prefix: what a send worker
    /// writes for one notification.
    pub fn encode_frame_40(&self) -> [u8; NOTIFICATION_LEN + 4] {
        let mut b = [0u8; NOTIFICATION_LEN + 4];
        b[..4].copy_from_slice(&(NOTIFICATION_LEN as i32).to_be_bytes());
        b[4..].copy_from_slice(&self.encode_40());
        b
    }

    /// Encodes any layout. `config` is only written for [`Layout::V2`]; a v2
    /// body must carry a well-formed config whose version does not exceed
    /// the receivers' (PROTOCOL.md §3.4): choosing it is the caller's job.
    pub fn encode(&self, layout: Layout, config: &[u8], out: &mut Vec<u8>) {
        let mut common = [0u8; 36];
        self.write_common(&mut common);
        match layout {
            Layout::V28 => out.extend_from_slice(&common[..28]),
            Layout::V36 => out.extend_from_slice(&common),
            Layout::V40 => out.extend_from_slice(&self.encode_40()),
            Layout::V2 => {
                out.extend_from_slice(&common);
                out.extend_from_slice(&2i32.to_be_bytes());
                out.extend_from_slice(&(config.len() as i32).to_be_bytes());
                out.extend_from_slice(config);
            }
        }
    }

    fn write_common(&self, b: &mut [u8]) {
        b[0..4].copy_from_slice(&self.state.code().to_be_bytes());
        b[4..12].copy_from_slice(&self.leader.to_be_bytes());
        b[12..20].copy_from_slice(&self.zxid.to_be_bytes());
        b[20..28].copy_from_slice(&self.election_epoch.to_be_bytes());
        b[28..36].copy_from_slice(&self.peer_epoch.to_be_bytes());
    }
}
