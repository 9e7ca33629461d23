//! The store-mode SNAP format: how a leader ships the embedder's snapshot
//! in packets that each fit the wire decoder's buffer bound, and how a
//! learner reassembles it.
//!
//! ```text
//! SNAP  zxid = s  data = i64 totalLength            (header, exactly 8 bytes)
//! SNAP  zxid = s  data = chunk (1..=SNAP_CHUNK_LEN)  × ceil(totalLength / SNAP_CHUNK_LEN)
//! ```
//!
//! The chunks concatenated are the snapshot bytes; a zero-length snapshot
//! is the header alone. Java's SNAP (a raw data-tree stream after the
//! packet) never meets this format: a store-mode peer only syncs with
//! store-mode peers (the handshake marker).

use super::types::Packet;
use crate::wire::zab as wz;
use bytes::Bytes;

/// The largest chunk: 512 KiB, well inside the 1 MiB + 1 KiB jute bound
/// ([`crate::wire::zab::MAX_JUTE_LEN`]) every decoder enforces.
pub const SNAP_CHUNK_LEN: usize = 512 * 1024;

/// The header and chunk packets carrying snapshot `data` taken at `zxid`.
/// Chunks share `data`'s buffer (no copy).
pub fn snap_packets(zxid: i64, data: &Bytes) -> Vec<Packet> {
    let mut out = Vec::with_capacity(1 + data.len().div_ceil(SNAP_CHUNK_LEN));
    out.push(Packet::new(
        wz::SNAP,
        zxid,
        Some(Bytes::copy_from_slice(&(data.len() as i64).to_be_bytes())),
    ));
    let mut at = 0;
    while at < data.len() {
        let end = (at + SNAP_CHUNK_LEN).min(data.len());
        out.push(Packet::new(wz::SNAP, zxid, Some(data.slice(at..end))));
        at = end;
    }
    out
}

/// A snapshot being received: the header read, chunks appended until the
/// announced length is reached.
#[derive(Debug, Clone)]
pub(crate) struct SnapAssembly {
    zxid: i64,
    total: usize,
    buf: Vec<u8>,
}

impl SnapAssembly {
    /// Reads a SNAP header packet.
    pub(crate) fn start(zxid: i64, data: Option<&[u8]>) -> Result<SnapAssembly, String> {
        let b: [u8; 8] = data
            .and_then(|d| d.try_into().ok())
            .ok_or_else(|| "store-mode SNAP header is not an 8-byte length".to_string())?;
        let total = i64::from_be_bytes(b);
        let total = usize::try_from(total)
            .map_err(|_| format!("store-mode SNAP announces {total} bytes"))?;
        Ok(SnapAssembly {
            zxid,
            total,
            // The length is the leader's word, not a reason to allocate.
            buf: Vec::with_capacity(total.min(SNAP_CHUNK_LEN)),
        })
    }

    /// Appends one chunk packet's data.
    pub(crate) fn feed(&mut self, zxid: i64, data: Option<&[u8]>) -> Result<(), String> {
        if zxid != self.zxid {
            return Err(format!(
                "SNAP chunk for {zxid:#x} inside the snapshot at {:#x}",
                self.zxid
            ));
        }
        let data = data.unwrap_or_default();
        if data.is_empty() || data.len() > self.total - self.buf.len() {
            return Err(format!(
                "SNAP chunk of {} bytes with {} of {} left",
                data.len(),
                self.total - self.buf.len(),
                self.total
            ));
        }
        self.buf.extend_from_slice(data);
        Ok(())
    }

    /// True once every announced byte arrived.
    pub(crate) fn is_complete(&self) -> bool {
        self.buf.len() == self.total
    }

    /// The snapshot's zxid.
    pub(crate) fn zxid(&self) -> i64 {
        self.zxid
    }

    /// The assembled bytes.
    pub(crate) fn finish(self) -> Bytes {
        Bytes::from(self.buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reassemble(packets: &[Packet]) -> Result<Bytes, String> {
        let (head, chunks) = packets.split_first().ok_or("no packets")?;
        let mut a = SnapAssembly::start(head.zxid, head.data.as_deref())?;
        for c in chunks {
            assert!(!a.is_complete());
            a.feed(c.zxid, c.data.as_deref())?;
        }
        assert!(a.is_complete());
        Ok(a.finish())
    }

    #[test]
    fn chunks_fit_the_decoder_and_reassemble() {
        for len in [0, 1, SNAP_CHUNK_LEN, SNAP_CHUNK_LEN + 1, 3 * SNAP_CHUNK_LEN] {
            let data = Bytes::from((0..len).map(|i| i as u8).collect::<Vec<u8>>());
            let packets = snap_packets(7 << 32, &data);
            assert_eq!(packets.len(), 1 + len.div_ceil(SNAP_CHUNK_LEN), "len {len}");
            for p in &packets {
                assert_eq!((p.packet_type, p.zxid), (wz::SNAP, 7 << 32));
                let bytes = p.to_bytes();
                let (q, used) = wz::QuorumPacket::decode(&bytes).expect("within the jute bound");
                assert_eq!((used, q), (bytes.len(), p.to_quorum_packet()));
            }
            assert_eq!(reassemble(&packets).expect("reassembles"), data);
        }
    }

    #[test]
    fn malformed_headers_and_chunks_are_errors() {
        assert!(SnapAssembly::start(1, None).is_err());
        assert!(SnapAssembly::start(1, Some(&[0; 4])).is_err());
        assert!(SnapAssembly::start(1, Some(&(-1i64).to_be_bytes())).is_err());
        let mut a = SnapAssembly::start(1, Some(&3i64.to_be_bytes())).expect("header");
        assert!(a.feed(2, Some(&[1])).is_err(), "other zxid");
        assert!(a.feed(1, Some(&[])).is_err(), "empty chunk");
        assert!(a.feed(1, Some(&[1, 2, 3, 4])).is_err(), "past the length");
        a.feed(1, Some(&[1, 2, 3])).expect("fits");
        assert!(a.is_complete());
        // A huge announced length allocates nothing up front.
        let a = SnapAssembly::start(1, Some(&i64::MAX.to_be_bytes())).expect("header");
        assert!(a.buf.capacity() <= SNAP_CHUNK_LEN);
    }
}
