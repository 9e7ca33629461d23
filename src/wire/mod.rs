//! Pure codecs for ZooKeeper's election port and the Zab subset on the quorum
//! port. Nothing here does IO: every function takes bytes and returns a typed
//! value or a [`WireError`], so each one can be fuzzed and tested against the
//! bytes captured from real ZooKeeper 3.8 peers (`shared/vectors/`).

pub mod frame;
pub mod handshake;
pub mod notification;
pub mod zab;

pub use frame::{decode_frame_length, encode_frame, split_frame, MAX_FRAME_LEN};
pub use handshake::{Handshake, HandshakeFormat, PeerAddress, MAX_ADDR_LEN};
pub use notification::{Layout, Notification, ServerState, NOTIFICATION_LEN};
pub use zab::QuorumPacket;

/// Every way bytes from a peer can be wrong. The connection layer maps each
/// variant to "close the connection" or "drop this message" (see
/// [`WireError::closes_connection`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Not enough bytes yet; `needed` more would let decoding continue.
    #[error("incomplete input: {needed} more bytes needed")]
    Incomplete {
        /// How many more bytes.
        needed: usize,
    },
    /// A frame length outside 1..=524288 (ZooKeeper's PACKETMAXSIZE).
    #[error("frame length {0} outside 1..={MAX_FRAME_LEN}")]
    BadFrameLength(i32),
    /// A negative first long that is neither -65536 (V1) nor -65535 (V2).
    #[error("unrecognized handshake protocol version {0}")]
    BadProtocolVersion(i64),
    /// Handshake address length outside 1..=2048.
    #[error("handshake address length {0} outside 1..={MAX_ADDR_LEN}")]
    BadAddressLength(i32),
    /// Address text that is not UTF-8, not `host:port`, or has a port
    /// outside 1..=65535.
    #[error("bad handshake address {text:?}: {reason}")]
    BadAddress {
        /// The address as received (lossily decoded).
        text: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A notification body of a size no ZooKeeper version sends (< 28,
    /// 29..=35, 37..=39) or truncated inside a field.
    #[error("malformed notification of {len} bytes: {reason}")]
    MalformedNotification {
        /// The body's length.
        len: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A server state code outside 0..=3.
    #[error("bad server state {0}")]
    BadState(i32),
    /// configLength negative or larger than the bytes that follow it.
    #[error("config length {config_len} does not fit a {len}-byte notification")]
    BadConfigLength {
        /// The configLength field.
        config_len: i32,
        /// The whole body's length.
        len: usize,
    },
    /// A jute buffer/vector/string length that is negative (other than the
    /// null marker -1) or above ZooKeeper's jute.maxbuffer bound.
    #[error("jute length {0} out of range")]
    BadJuteLength(i32),
    /// A quorum packet whose payload does not match its type's layout. The
    /// packet's extent was still known, so the stream stays in step.
    #[error("malformed quorum packet: {0}")]
    MalformedPacket(&'static str),
    /// A SNAP stream that breaks its layout (negative count, null or
    /// relative path, missing signature): where it ends is unknown, so the
    /// quorum session cannot go on.
    #[error("malformed snapshot stream: {0}")]
    MalformedSnapshot(&'static str),
}

impl WireError {
    /// True for errors that leave the byte stream unsynchronised, after which
    /// the only safe action is to close the connection (PROTOCOL.md §8 R14:
    /// "bad bytes close, bad bodies drop").
    pub fn closes_connection(&self) -> bool {
        matches!(
            self,
            WireError::BadFrameLength(_)
                | WireError::BadProtocolVersion(_)
                | WireError::BadAddressLength(_)
                | WireError::BadAddress { .. }
                | WireError::BadJuteLength(_)
                | WireError::MalformedSnapshot(_)
        )
    }
}

/// Big-endian readers over a slice that report [`WireError::Incomplete`]
/// instead of panicking; shared by the codecs.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }
    pub(crate) fn position(&self) -> usize {
        self.pos
    }
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.remaining() < n {
            return Err(WireError::Incomplete {
                needed: n - self.remaining(),
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    pub(crate) fn i32(&mut self) -> Result<i32, WireError> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub(crate) fn i64(&mut self) -> Result<i64, WireError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }
}
