//! The election port's framing: `i32 length` then `length` bytes, in both
//! directions (PROTOCOL.md §3.1).

use super::WireError;

/// ZooKeeper's `PACKETMAXSIZE`: 512 KiB. Anything larger closes the link.
pub const MAX_FRAME_LEN: usize = 524_288;

/// Validates a frame length prefix. Valid lengths are 1..=524288; 0,
/// negative and oversize lengths are protocol violations that close the
/// connection.
pub fn decode_frame_length(prefix: [u8; 4]) -> Result<usize, WireError> {
    let len = i32::from_be_bytes(prefix);
    if len < 1 || len as usize > MAX_FRAME_LEN {
        return Err(WireError::BadFrameLength(len));
    }
    Ok(len as usize)
}

/// Splits the first complete frame off `buf`: returns the body and the total
/// number of bytes consumed (prefix included), or `Incomplete`.
pub fn split_frame(buf: &[u8]) -> Result<(&[u8], usize), WireError> {
    if buf.len() < 4 {
        return Err(WireError::Incomplete {
            needed: 4 - buf.len(),
        });
    }
    let len = decode_frame_length([buf[0], buf[1], buf[2], buf[3]])?;
    if buf.len() < 4 + len {
        return Err(WireError::Incomplete {
            needed: 4 + len - buf.len(),
        });
    }
    Ok((&buf[4..4 + len], 4 + len))
}

/// Appends `body` with its length prefix to `out`.
pub fn encode_frame(body: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(body.len() as i32).to_be_bytes());
    out.extend_from_slice(body);
}
