//! [`super::FileLog`]'s on-disk format: pure encoders and decoders over
//! bytes. All integers are big-endian (as ZooKeeper's jute); every checksum
//! is CRC-32 (IEEE, `crc32fast`).
//!
//! ```text
//! segment file  log.<first zxid, 16 hex digits>
//!   header  magic "ZKFLELOG" | version u32 = 1 | first_zxid i64 | crc u32   (24 bytes)
//!   frame*  crc u32 | body_len u32 | body                                   (one per batch)
//!     body  count u32 | record{count}
//!     record zxid i64 | data_len u32 | data
//!   frame crc = CRC-32 over body_len (4 bytes) ‖ body
//!
//! snapshot file snapshot.<zxid, 16 hex digits>
//!   magic "ZKFLESNP" | version u32 = 1 | zxid i64 | data_len u64 | crc u32 | data
//!   crc = CRC-32 over zxid ‖ data_len ‖ data                               (32-byte header)
//!
//! intent file   intent   (a multi-step operation in progress; redone at open)
//!   magic "ZKFLEINT" | version u32 = 1 | kind u8 | payload | crc u32 (over all before it)
//!   kind 1 truncate: after i64 | has_cut u8 | cut_segment i64 | cut_offset u64
//!                    | replacement_len u32 | replacement (a whole frame, or empty)
//!   kind 2 compact:  count u32 | first zxid i64 of each segment to delete
//!   kind 3 install:  zxid i64 (the snapshot being installed)
//! ```
//!
//! A frame is one `append` batch, so a batch is all-or-nothing after a crash
//! (its CRC covers it whole).

use bytes::{Bytes, BytesMut};

use crate::logstore::Entry;

/// Segment file magic.
pub(crate) const SEGMENT_MAGIC: &[u8; 8] = b"ZKFLELOG";
/// Snapshot file magic.
pub(crate) const SNAPSHOT_MAGIC: &[u8; 8] = b"ZKFLESNP";
/// Intent file magic.
pub(crate) const INTENT_MAGIC: &[u8; 8] = b"ZKFLEINT";
/// Format version of all three files.
pub(crate) const VERSION: u32 = 1;
/// Segment header size.
pub(crate) const SEGMENT_HEADER_LEN: u64 = 24;
/// Frame header size (crc + body_len).
pub(crate) const FRAME_HEADER_LEN: u64 = 8;
/// Record header size (zxid + data_len).
pub(crate) const RECORD_HEADER_LEN: usize = 12;
/// Snapshot header size.
pub(crate) const SNAPSHOT_HEADER_LEN: u64 = 32;
/// Largest frame body written. A batch above this is split into several
/// frames; a length field above it is garbage, which bounds what recovery
/// or a read allocates for one frame.
pub(crate) const MAX_FRAME_BODY: usize = 64 << 20;

fn be_u32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_be_bytes(a)
}

fn be_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(a)
}

fn be_i64(b: &[u8], at: usize) -> i64 {
    be_u64(b, at) as i64
}

/// The 24-byte header of a segment whose first entry is `first_zxid`.
pub(crate) fn encode_segment_header(first_zxid: i64) -> [u8; SEGMENT_HEADER_LEN as usize] {
    let mut h = [0u8; SEGMENT_HEADER_LEN as usize];
    h[..8].copy_from_slice(SEGMENT_MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_be_bytes());
    h[12..20].copy_from_slice(&first_zxid.to_be_bytes());
    let crc = crc32fast::hash(&h[..20]);
    h[20..24].copy_from_slice(&crc.to_be_bytes());
    h
}

/// The first zxid a segment header declares.
pub(crate) fn decode_segment_header(h: &[u8]) -> Result<i64, String> {
    if h.len() < SEGMENT_HEADER_LEN as usize {
        return Err(format!("segment header is {} bytes, expected 24", h.len()));
    }
    if &h[..8] != SEGMENT_MAGIC {
        return Err("not a zkfle log segment (bad magic)".into());
    }
    if crc32fast::hash(&h[..20]) != be_u32(h, 20) {
        return Err("segment header checksum mismatch".into());
    }
    let version = be_u32(h, 8);
    if version != VERSION {
        return Err(format!(
            "segment format version {version}, this build reads {VERSION}"
        ));
    }
    Ok(be_i64(h, 12))
}

/// Size of the frame (header included) holding `entries`.
pub(crate) fn frame_len(entries: &[Entry]) -> usize {
    FRAME_HEADER_LEN as usize + body_len(entries)
}

fn body_len(entries: &[Entry]) -> usize {
    4 + entries
        .iter()
        .map(|e| RECORD_HEADER_LEN + e.data.len())
        .sum::<usize>()
}

/// Splits a batch into runs that each fit one frame body (every entry is
/// at most `MAX_ENTRY_BYTES`, which leaves room for its record header).
pub(crate) fn split_frames(entries: &[Entry]) -> Vec<&[Entry]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut size = 4usize;
    for (i, e) in entries.iter().enumerate() {
        let rec = RECORD_HEADER_LEN + e.data.len();
        if i > start && size + rec > MAX_FRAME_BODY {
            out.push(&entries[start..i]);
            start = i;
            size = 4;
        }
        size += rec;
    }
    if start < entries.len() {
        out.push(&entries[start..]);
    }
    out
}

/// Appends the frame holding `entries` (non-empty, fits one body) to `out`.
pub(crate) fn encode_frame(entries: &[Entry], out: &mut Vec<u8>) {
    let body = body_len(entries);
    let start = out.len();
    out.extend_from_slice(&[0u8; 4]);
    out.extend_from_slice(&(body as u32).to_be_bytes());
    out.extend_from_slice(&(entries.len() as u32).to_be_bytes());
    for e in entries {
        out.extend_from_slice(&e.zxid.to_be_bytes());
        out.extend_from_slice(&(e.data.len() as u32).to_be_bytes());
        out.extend_from_slice(&e.data);
    }
    let crc = crc32fast::hash(&out[start + 4..]);
    out[start..start + 4].copy_from_slice(&crc.to_be_bytes());
}

/// A frame header: the body length, if it is one a writer could produce.
pub(crate) fn frame_body_len(h: &[u8; FRAME_HEADER_LEN as usize]) -> Option<usize> {
    let len = be_u32(h, 4) as usize;
    // The smallest real body is count + one record header.
    (4 + RECORD_HEADER_LEN..=MAX_FRAME_BODY)
        .contains(&len)
        .then_some(len)
}

/// Checks a frame's CRC and decodes its entries (zero-copy slices of
/// `body`). Errors say what is wrong; the caller adds file and offset.
pub(crate) fn decode_frame(
    h: &[u8; FRAME_HEADER_LEN as usize],
    body: Bytes,
) -> Result<Vec<Entry>, String> {
    let mut crc = crc32fast::Hasher::new();
    crc.update(&h[4..8]);
    crc.update(&body);
    if crc.finalize() != be_u32(h, 0) {
        return Err("frame checksum mismatch".into());
    }
    decode_body(body)
}

fn decode_body(body: Bytes) -> Result<Vec<Entry>, String> {
    let mut out = Vec::new();
    walk_body(&body, |zxid, at, len| {
        out.push(Entry {
            zxid,
            data: body.slice(at..at + len),
        })
    })?;
    Ok(out)
}

/// Checks a body's structure, calling `f(zxid, data offset, data len)` for
/// each record.
fn walk_body(body: &[u8], mut f: impl FnMut(i64, usize, usize)) -> Result<(), String> {
    if body.len() < 4 {
        return Err("frame body shorter than its count".into());
    }
    let count = be_u32(body, 0) as usize;
    if count == 0 {
        return Err("frame with no entries".into());
    }
    let mut at = 4;
    let mut prev = i64::MIN;
    for _ in 0..count {
        if body.len() - at < RECORD_HEADER_LEN {
            return Err("frame ends inside a record header".into());
        }
        let zxid = be_i64(body, at);
        let len = be_u32(body, at + 8) as usize;
        at += RECORD_HEADER_LEN;
        if body.len() - at < len {
            return Err(format!("record {zxid:#x} runs past the frame end"));
        }
        if zxid <= prev {
            return Err(format!("zxid {zxid:#x} not above {prev:#x} in one frame"));
        }
        prev = zxid;
        f(zxid, at, len);
        at += len;
    }
    if at != body.len() {
        return Err(format!(
            "{} stray bytes after the last record",
            body.len() - at
        ));
    }
    Ok(())
}

/// Parses a frame out of `buf` at its start: `Some(total length)` if a
/// whole, checksum-valid, well-formed frame starts there. Used by recovery
/// to tell a torn tail (nothing valid after the bad bytes) from corruption
/// in the middle (a valid frame after them).
pub(crate) fn valid_frame_at(buf: &[u8]) -> Option<usize> {
    if buf.len() < FRAME_HEADER_LEN as usize {
        return None;
    }
    let mut h = [0u8; FRAME_HEADER_LEN as usize];
    h.copy_from_slice(&buf[..FRAME_HEADER_LEN as usize]);
    let len = frame_body_len(&h)?;
    let end = FRAME_HEADER_LEN as usize + len;
    if buf.len() < end {
        return None;
    }
    // Structure first (cheap on random bytes), then the checksum.
    let body = &buf[FRAME_HEADER_LEN as usize..end];
    walk_body(body, |_, _, _| {}).ok()?;
    let mut crc = crc32fast::Hasher::new();
    crc.update(&h[4..8]);
    crc.update(body);
    (crc.finalize() == be_u32(&h, 0)).then_some(end)
}

/// The snapshot file's header for `zxid` and `data` (the data follows it
/// in the file; written separately so a large snapshot is never copied).
pub(crate) fn encode_snapshot_header(zxid: i64, data: &[u8]) -> [u8; SNAPSHOT_HEADER_LEN as usize] {
    let mut h = [0u8; SNAPSHOT_HEADER_LEN as usize];
    h[..8].copy_from_slice(SNAPSHOT_MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_be_bytes());
    h[12..20].copy_from_slice(&zxid.to_be_bytes());
    h[20..28].copy_from_slice(&(data.len() as u64).to_be_bytes());
    let mut crc = crc32fast::Hasher::new();
    crc.update(&h[12..28]);
    crc.update(data);
    h[28..32].copy_from_slice(&crc.finalize().to_be_bytes());
    h
}

/// A snapshot file's header: (zxid, data_len, crc).
pub(crate) fn decode_snapshot_header(h: &[u8]) -> Result<(i64, u64, u32), String> {
    if h.len() < SNAPSHOT_HEADER_LEN as usize {
        return Err(format!("snapshot header is {} bytes, expected 32", h.len()));
    }
    if &h[..8] != SNAPSHOT_MAGIC {
        return Err("not a zkfle snapshot (bad magic)".into());
    }
    let version = be_u32(h, 8);
    if version != VERSION {
        return Err(format!(
            "snapshot format version {version}, this build reads {VERSION}"
        ));
    }
    Ok((be_i64(h, 12), be_u64(h, 20), be_u32(h, 28)))
}

/// Checks a whole snapshot file and returns its data (zero-copy).
pub(crate) fn decode_snapshot(file: Bytes) -> Result<(i64, Bytes), String> {
    let (zxid, len, crc) = decode_snapshot_header(&file)?;
    let data = file.slice(SNAPSHOT_HEADER_LEN as usize..);
    if data.len() as u64 != len {
        return Err(format!(
            "snapshot declares {len} data bytes, file holds {}",
            data.len()
        ));
    }
    let mut h = crc32fast::Hasher::new();
    h.update(&file[12..28]);
    h.update(&data);
    if h.finalize() != crc {
        return Err("snapshot checksum mismatch".into());
    }
    Ok((zxid, data))
}

/// A multi-step operation, written durably before its first destructive
/// step and redone from the start at open if it is still there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Intent {
    /// Drop every entry above `after`: delete the segments that start above
    /// it; in the segment holding the cut (if any), cut at `offset` and
    /// write `replacement` there (the cut frame's entries `<= after`, or
    /// nothing when the cut falls on a frame boundary).
    Truncate {
        after: i64,
        cut: Option<(i64, u64)>,
        replacement: Vec<u8>,
    },
    /// Delete these segments (named by first zxid), all covered by the
    /// snapshot.
    Compact { segments: Vec<i64> },
    /// Replace everything with the snapshot at `zxid` (its `.tmp` file is
    /// complete and fsynced before this intent is written).
    Install { zxid: i64 },
}

impl Intent {
    /// The intent file's bytes.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(INTENT_MAGIC);
        out.extend_from_slice(&VERSION.to_be_bytes());
        match self {
            Intent::Truncate {
                after,
                cut,
                replacement,
            } => {
                out.push(1);
                out.extend_from_slice(&after.to_be_bytes());
                let (seg, off) = cut.unwrap_or((0, 0));
                out.push(u8::from(cut.is_some()));
                out.extend_from_slice(&seg.to_be_bytes());
                out.extend_from_slice(&off.to_be_bytes());
                out.extend_from_slice(&(replacement.len() as u32).to_be_bytes());
                out.extend_from_slice(replacement);
            }
            Intent::Compact { segments } => {
                out.push(2);
                out.extend_from_slice(&(segments.len() as u32).to_be_bytes());
                for s in segments {
                    out.extend_from_slice(&s.to_be_bytes());
                }
            }
            Intent::Install { zxid } => {
                out.push(3);
                out.extend_from_slice(&zxid.to_be_bytes());
            }
        }
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_be_bytes());
        out
    }

    /// Parses an intent file (it was written whole and fsynced before being
    /// renamed into place, so any defect is corruption).
    pub(crate) fn decode(b: &[u8]) -> Result<Intent, String> {
        if b.len() < 17 {
            return Err(format!("intent file is {} bytes", b.len()));
        }
        if &b[..8] != INTENT_MAGIC {
            return Err("not a zkfle intent file (bad magic)".into());
        }
        let body = &b[..b.len() - 4];
        if crc32fast::hash(body) != be_u32(b, b.len() - 4) {
            return Err("intent checksum mismatch".into());
        }
        let version = be_u32(b, 8);
        if version != VERSION {
            return Err(format!(
                "intent format version {version}, this build reads {VERSION}"
            ));
        }
        let p = &body[13..];
        let short = || "intent payload too short".to_string();
        match body[12] {
            1 => {
                if p.len() < 29 {
                    return Err(short());
                }
                let after = be_i64(p, 0);
                let cut = (p[8] == 1).then(|| (be_i64(p, 9), be_u64(p, 17)));
                let n = be_u32(p, 25) as usize;
                if p.len() != 29 + n {
                    return Err("intent replacement length mismatch".into());
                }
                Ok(Intent::Truncate {
                    after,
                    cut,
                    replacement: p[29..].to_vec(),
                })
            }
            2 => {
                if p.len() < 4 {
                    return Err(short());
                }
                let n = be_u32(p, 0) as usize;
                if p.len() != 4 + 8 * n {
                    return Err("intent segment list length mismatch".into());
                }
                Ok(Intent::Compact {
                    segments: (0..n).map(|i| be_i64(p, 4 + 8 * i)).collect(),
                })
            }
            3 => {
                if p.len() != 8 {
                    return Err(short());
                }
                Ok(Intent::Install { zxid: be_i64(p, 0) })
            }
            k => Err(format!("unknown intent kind {k}")),
        }
    }
}

/// `BytesMut` holding `n` zero bytes (a read buffer).
pub(crate) fn zeroed(n: usize) -> BytesMut {
    BytesMut::zeroed(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(z: i64, d: &str) -> Entry {
        Entry::new(z, Bytes::copy_from_slice(d.as_bytes()))
    }

    #[test]
    fn frame_round_trips_and_detects_any_single_bit_flip() {
        let entries = vec![e(1, "a"), e(2, ""), e(0x1_0000_0001, "hello")];
        let mut buf = Vec::new();
        encode_frame(&entries, &mut buf);
        assert_eq!(buf.len(), frame_len(&entries));
        assert_eq!(valid_frame_at(&buf), Some(buf.len()));
        let mut h = [0u8; 8];
        h.copy_from_slice(&buf[..8]);
        let body = Bytes::copy_from_slice(&buf[8..]);
        assert_eq!(decode_frame(&h, body).unwrap(), entries);
        for bit in 0..buf.len() * 8 {
            let mut bad = buf.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(
                valid_frame_at(&bad),
                None,
                "flip of bit {bit} went unnoticed"
            );
        }
    }

    #[test]
    fn segment_header_round_trips_and_rejects_garbage() {
        let h = encode_segment_header(0x2_0000_0007);
        assert_eq!(decode_segment_header(&h), Ok(0x2_0000_0007));
        let mut bad = h;
        bad[15] ^= 4;
        assert!(decode_segment_header(&bad).is_err());
        assert!(decode_segment_header(&h[..10]).is_err());
        assert!(decode_segment_header(&[0u8; 24]).is_err());
    }

    #[test]
    fn snapshot_round_trips_and_rejects_flips_and_short_files() {
        let mut f = encode_snapshot_header(42, b"state").to_vec();
        f.extend_from_slice(b"state");
        assert_eq!(
            decode_snapshot(Bytes::from(f.clone())).unwrap(),
            (42, Bytes::from_static(b"state"))
        );
        let mut bad = f.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(decode_snapshot(Bytes::from(bad)).is_err());
        assert!(decode_snapshot(Bytes::from(f[..f.len() - 1].to_vec())).is_err());
    }

    #[test]
    fn intents_round_trip() {
        let mut frame = Vec::new();
        encode_frame(&[e(5, "x")], &mut frame);
        for i in [
            Intent::Truncate {
                after: 5,
                cut: Some((3, 24)),
                replacement: frame,
            },
            Intent::Truncate {
                after: 0,
                cut: None,
                replacement: vec![],
            },
            Intent::Compact {
                segments: vec![1, 9, 77],
            },
            Intent::Install { zxid: 1 << 32 },
        ] {
            let b = i.encode();
            assert_eq!(Intent::decode(&b), Ok(i.clone()));
            let mut bad = b.clone();
            bad[13] ^= 0x80;
            assert!(Intent::decode(&bad).is_err());
        }
    }

    #[test]
    fn split_frames_keeps_every_frame_under_the_bound() {
        let big = Bytes::from(vec![7u8; 40 << 20]);
        let entries: Vec<Entry> = (1..=3)
            .map(|z| Entry {
                zxid: z,
                data: big.clone(),
            })
            .collect();
        let frames = split_frames(&entries);
        assert_eq!(frames.len(), 3);
        assert!(frames.iter().all(|f| frame_len(f) - 8 <= MAX_FRAME_BODY));
        let small = [e(1, "a"), e(2, "b")];
        assert_eq!(split_frames(&small).len(), 1);
    }
}
