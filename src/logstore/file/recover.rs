//! What [`super::FileLog::open`] does before it serves anything: redo an
//! interrupted multi-step operation from its intent file, then scan every
//! segment, dropping a torn tail of the last one and refusing corruption.
//!
//! Torn tail or corruption? Every append is fsynced before the next one
//! starts, so after a crash only the *last* frame of the *last* segment can
//! be incomplete. Recovery therefore drops bad bytes at the end of the last
//! segment only if no valid frame follows them anywhere (a valid frame
//! after them proves they were durable once: that is corruption, reported
//! with the file and offset). Bad bytes in any other segment, a bad header
//! on a sealed segment, or a checksum-valid frame whose zxids are out of
//! order are always corruption. What this cannot tell apart: bit rot in
//! the very last frame looks like a torn write, and that frame is dropped
//! (with a warning) as etcd's and LevelDB's logs do. The rule errs the
//! other way only if a torn last frame carries an entry whose payload is
//! itself a complete zkfle frame: open then refuses (corruption) rather
//! than guess, and an operator decides.

use std::fs::File;
use std::io::BufReader;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::disk::{io_err, read_up_to, segment_name, snapshot_name, Disk, INTENT};
use super::format::{
    decode_frame, decode_segment_header, frame_body_len, valid_frame_at, zeroed, Intent,
    FRAME_HEADER_LEN, SEGMENT_HEADER_LEN,
};
use super::Segment;
use crate::logstore::LogError;

/// Writes `intent` durably (tmp, fsync, rename, directory fsync): from the
/// rename on, a crash leads to the redo at open.
pub(crate) fn write_intent(disk: &mut Disk, intent: &Intent) -> Result<(), LogError> {
    let tmp = disk.path(&format!("{INTENT}.tmp"));
    disk.write_tmp(&tmp, &[&intent.encode()])?;
    disk.rename(&tmp, &disk.path(INTENT))?;
    disk.fsync_dir()
}

/// Carries out `intent` from the start (every step is idempotent, so a
/// redo after a crash anywhere in a previous run ends in the same state),
/// then removes the intent file.
pub(crate) fn redo(disk: &mut Disk, intent: &Intent) -> Result<(), LogError> {
    match intent {
        Intent::Truncate {
            after,
            cut,
            replacement,
        } => {
            let listing = disk.list()?;
            for &s in listing.segments.iter().rev().filter(|&&s| s > *after) {
                disk.remove(&disk.path(&segment_name(s)))?;
            }
            if let Some((seg, off)) = *cut {
                let path = disk.path(&segment_name(seg));
                let f = disk.open_rw(&path)?;
                if !replacement.is_empty() {
                    disk.write_at(&f, &path, replacement, off)?;
                }
                disk.set_len(&f, &path, off + replacement.len() as u64)?;
                disk.sync_all(&f, &path)?;
            }
            disk.fsync_dir()?;
        }
        Intent::Compact { segments } => {
            for &s in segments {
                disk.remove(&disk.path(&segment_name(s)))?;
            }
            disk.fsync_dir()?;
        }
        Intent::Install { zxid } => {
            let listing = disk.list()?;
            for &s in &listing.segments {
                disk.remove(&disk.path(&segment_name(s)))?;
            }
            let target = disk.path(&snapshot_name(*zxid));
            let tmp = disk.path(&format!("{}.tmp", snapshot_name(*zxid)));
            if tmp.exists() {
                disk.rename(&tmp, &target)?;
            } else if !target.exists() {
                return Err(LogError::Corrupt {
                    path: disk.path(INTENT),
                    offset: 0,
                    reason: format!("intent installs snapshot {zxid:#x}, which is missing"),
                });
            }
            for &s in listing.snapshots.iter().filter(|&&s| s != *zxid) {
                disk.remove(&disk.path(&snapshot_name(s)))?;
            }
            disk.fsync_dir()?;
        }
    }
    disk.remove(&disk.path(INTENT))?;
    disk.fsync_dir()
}

/// Scans the segment starting at `first`, whose entries must all be above
/// `prev_last`. Returns `None` if it was the last segment and held no
/// complete frame (a torn creation: the file is deleted).
pub(crate) fn recover_segment(
    disk: &mut Disk,
    first: i64,
    prev_last: i64,
    is_last: bool,
    stride: u64,
) -> Result<Option<Segment>, LogError> {
    let path = disk.path(&segment_name(first));
    let file = File::open(&path).map_err(io_err(&path, "open"))?;
    let file_len = file.metadata().map_err(io_err(&path, "stat"))?.len();
    let mut r = BufReader::with_capacity(1 << 20, file);
    let corrupt = |offset: u64, reason: String| LogError::Corrupt {
        path: path.clone(),
        offset,
        reason,
    };

    let mut h = [0u8; SEGMENT_HEADER_LEN as usize];
    let got = read_up_to(&mut r, &mut h, &path)?;
    let header = if got < h.len() {
        Err(format!(
            "file is {file_len} bytes, shorter than a segment header"
        ))
    } else {
        decode_segment_header(&h)
    };
    match header {
        Ok(z) if z != first => {
            return Err(corrupt(
                0,
                format!("header names first zxid {z:#x}, the file name {first:#x}"),
            ))
        }
        Ok(_) => {}
        Err(reason) => {
            let mut tail = Tail {
                disk,
                path: &path,
                is_last,
                file_len,
            };
            // A bad header is never padding: torn creation or corruption.
            return tail.torn_or_corrupt(0, reason, None).map(|_| None);
        }
    }

    let mut seg = Segment::new(first, SEGMENT_HEADER_LEN);
    let mut prev = prev_last;
    let mut offset = SEGMENT_HEADER_LEN;
    let bad: Option<(u64, String, Option<u64>)> = loop {
        if offset >= file_len {
            break None;
        }
        let mut fh = [0u8; FRAME_HEADER_LEN as usize];
        if read_up_to(&mut r, &mut fh, &path)? < fh.len() {
            break Some((offset, "file ends inside a frame header".into(), None));
        }
        let Some(len) = frame_body_len(&fh) else {
            break Some((offset, "implausible frame length".into(), None));
        };
        let next = offset + FRAME_HEADER_LEN + len as u64;
        if next > file_len {
            break Some((offset, "frame runs past the end of the file".into(), None));
        }
        let mut body = zeroed(len);
        if read_up_to(&mut r, &mut body, &path)? < len {
            break Some((offset, "file ends inside a frame".into(), None));
        }
        let entries = match decode_frame(&fh, body.freeze()) {
            Ok(e) => e,
            Err(reason) => break Some((offset, reason, Some(next))),
        };
        // A checksum-valid frame is bytes we wrote whole: zxids out of
        // order there are corruption (or a foreign file), never a tear.
        let (lo, hi) = match (entries.first(), entries.last()) {
            (Some(a), Some(b)) => (a.zxid, b.zxid),
            _ => return Err(corrupt(offset, "frame with no entries".into())),
        };
        if seg.index.is_empty() && lo != first {
            return Err(corrupt(
                offset,
                format!("first entry {lo:#x} but the file is named {first:#x}"),
            ));
        }
        if lo <= prev {
            return Err(corrupt(
                offset,
                format!("zxid {lo:#x} is not above the previous {prev:#x}"),
            ));
        }
        seg.push_frame(lo, hi, offset, next, stride);
        prev = hi;
        offset = next;
    };
    drop(r);

    if let Some((at, reason, next)) = bad {
        let mut tail = Tail {
            disk,
            path: &path,
            is_last,
            file_len,
        };
        match tail.torn_or_corrupt(at, reason, next)? {
            TailEnd::Padding => {
                seg.len = at;
                seg.alloc = file_len;
            }
            TailEnd::Cut if at <= SEGMENT_HEADER_LEN => return Ok(None),
            TailEnd::Cut => {
                seg.len = at;
                seg.alloc = at;
            }
        }
    }
    if seg.index.is_empty() {
        if is_last {
            // Created (header written) but its first frame never made it.
            let mut tail = Tail {
                disk,
                path: &path,
                is_last,
                file_len,
            };
            tail.cut(SEGMENT_HEADER_LEN, "segment holds no complete frame")?;
            return Ok(None);
        }
        return Err(corrupt(
            SEGMENT_HEADER_LEN,
            "sealed segment holds no entry".into(),
        ));
    }
    Ok(Some(seg))
}

/// How a segment's data ended.
enum TailEnd {
    /// Zeros to the end of the file: preallocated space, kept.
    Padding,
    /// A torn tail, now cut off (the file is gone if nothing was left).
    Cut,
}

/// The bad end of a segment: decides padding, torn or corrupt, and cuts a
/// torn one.
struct Tail<'a> {
    disk: &'a mut Disk,
    path: &'a Path,
    is_last: bool,
    file_len: u64,
}

impl Tail<'_> {
    /// Bad bytes at `at`. `next` is where the frame after them would start
    /// if their length field is right. Zeros to the end of the file after
    /// a header are padding (any segment); otherwise, in the last segment,
    /// cuts a torn tail (deleting the file if no frame is left); errors on
    /// corruption.
    fn torn_or_corrupt(
        &mut self,
        at: u64,
        reason: String,
        next: Option<u64>,
    ) -> Result<TailEnd, LogError> {
        let corrupt = |reason: String| LogError::Corrupt {
            path: self.path.to_path_buf(),
            offset: at,
            reason,
        };
        let rem = self.remainder(at)?;
        if at >= SEGMENT_HEADER_LEN && rem.iter().all(|&b| b == 0) {
            return Ok(TailEnd::Padding);
        }
        if !self.is_last {
            return Err(corrupt(reason));
        }
        if let Some(n) = next {
            let rel = (n - at) as usize;
            if rel < rem.len() && valid_frame_at(&rem[rel..]).is_some() {
                return Err(corrupt(format!(
                    "{reason}; a valid frame follows at offset {n}"
                )));
            }
        }
        // Search every later offset: a valid frame anywhere after the bad
        // bytes means they were durable once.
        if let Some(p) = (1..rem.len()).find(|&p| valid_frame_at(&rem[p..]).is_some()) {
            return Err(corrupt(format!(
                "{reason}; a valid frame follows at offset {}",
                at + p as u64
            )));
        }
        self.cut(at, &reason)?;
        Ok(TailEnd::Cut)
    }

    fn remainder(&self, at: u64) -> Result<Vec<u8>, LogError> {
        let f = File::open(self.path).map_err(io_err(self.path, "open"))?;
        let mut rem = vec![0u8; (self.file_len - at) as usize];
        f.read_exact_at(&mut rem, at)
            .map_err(io_err(self.path, "read"))?;
        Ok(rem)
    }

    /// Drops everything from `at` on (the whole file if no frame is left),
    /// durably, before anything new is appended there.
    fn cut(&mut self, at: u64, reason: &str) -> Result<(), LogError> {
        log::warn!(
            "zkfle log {}: dropping a torn tail of {} bytes at offset {at} ({reason})",
            self.path.display(),
            self.file_len - at
        );
        if at <= SEGMENT_HEADER_LEN {
            self.disk.remove(self.path)?;
            return self.disk.fsync_dir();
        }
        let f = self.disk.open_rw(self.path)?;
        self.disk.set_len(&f, self.path, at)?;
        self.disk.sync_all(&f, self.path)
    }
}
