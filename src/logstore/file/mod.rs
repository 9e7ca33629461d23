//! [`FileLog`]: zkfle's file-backed [`LogStore`], in one directory (e.g.
//! `dataDir/zkfle-log/`). The byte format is in [`format`]; the crash
//! argument for each operation is on its method.
//!
//! Layout: segment files `log.<first zxid>` of CRC-checked frames (one per
//! `append` batch), at most one `snapshot.<zxid>`, and while a multi-step
//! operation runs an `intent` file that [`FileLog::open`] redoes. Memory:
//! per segment its first and last zxid, its length and a sparse index (one
//! (zxid, offset) point per [`INDEX_STRIDE`] bytes); entries are read from
//! disk on demand.
//!
//! Durability rules:
//! - a file's new content is durable after its fsync/fdatasync; a
//!   creation, rename or unlink is durable after the directory's fsync;
//! - an operation returns `Ok` only after every step is durable;
//! - any failed step poisons the log ([`LogError::Poisoned`]): after a
//!   failed fsync the page cache may have dropped the data, so only a
//!   reopen (which rereads the disk) knows the state.

use std::fs::File;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::{check_batch, Entry, LogError, LogStore, ReadLimit, Snapshot};

mod disk;
mod format;
mod read;
mod recover;

pub use disk::FileLogStats;

use disk::{io_err, segment_name, snapshot_name, Disk};
use format::{
    decode_snapshot, decode_snapshot_header, encode_frame, encode_segment_header,
    encode_snapshot_header, split_frames, Intent, MAX_FRAME_BODY, SEGMENT_HEADER_LEN,
    SNAPSHOT_HEADER_LEN,
};
use read::FrameReader;
use recover::{recover_segment, redo, write_intent};

/// Largest entry (data bytes) any store accepts: well inside one frame.
pub const MAX_ENTRY_BYTES: usize = MAX_FRAME_BODY / 2;

/// One sparse-index point per this many bytes of a segment.
pub(crate) const INDEX_STRIDE: u64 = 256 << 10;

/// [`FileLog`] tuning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileLogOptions {
    /// A new segment starts with the first batch appended after the active
    /// one reached this size.
    pub segment_bytes: u64,
    /// Zero-fill the active segment this far ahead, in chunks (0: never).
    /// An append that overwrites blocks already allocated and inside the
    /// file's size needs no file-system journal commit at its fdatasync;
    /// one that grows the file does, and on ext4 that commit carries the
    /// whole file system's pending metadata. `benches/logstore.rs` here:
    /// batches of 256 took ~0.27 ms either way on a quiet machine, but
    /// 3.3 ms unpadded against 0.25 ms padded while other builds ran.
    /// ZooKeeper pads its logs for the same reason. Recovery reads an
    /// all-zero tail as padding, not as a tear.
    pub prealloc_bytes: u64,
}

impl Default for FileLogOptions {
    fn default() -> Self {
        FileLogOptions {
            segment_bytes: 32 << 20,
            prealloc_bytes: 1 << 20,
        }
    }
}

impl FileLogOptions {
    /// The file size to zero-fill up to when valid data ends at `end`.
    fn padded(&self, end: u64) -> u64 {
        match self.prealloc_bytes {
            0 => end,
            p => end.div_ceil(p).saturating_mul(p),
        }
    }
}

/// What is kept in memory about one segment.
#[derive(Clone, Debug)]
pub(crate) struct Segment {
    pub(crate) first: i64,
    pub(crate) last: i64,
    /// Validated length: frames end exactly here.
    pub(crate) len: u64,
    /// The file's size: `len` plus zero padding.
    pub(crate) alloc: u64,
    /// (first zxid of a frame, its offset), ascending; the first frame is
    /// always a point.
    pub(crate) index: Vec<(i64, u64)>,
}

impl Segment {
    pub(crate) fn new(first: i64, len: u64) -> Segment {
        Segment {
            first,
            last: first,
            len,
            alloc: len,
            index: Vec::new(),
        }
    }

    /// Records a frame `[offset, end)` holding zxids `lo..=hi`.
    pub(crate) fn push_frame(&mut self, lo: i64, hi: i64, offset: u64, end: u64, stride: u64) {
        if self
            .index
            .last()
            .map_or(true, |&(_, o)| offset - o >= stride)
        {
            self.index.push((lo, offset));
        }
        self.last = hi;
        self.len = end;
        self.alloc = self.alloc.max(end);
    }

    /// Where to start reading to find the first entry above `after` (or
    /// the last one at or below it): the last index point whose frame
    /// starts at or below `after`; frames before it hold only smaller zxids.
    fn start_offset(&self, after: i64) -> u64 {
        let i = self.index.partition_point(|&(z, _)| z <= after);
        self.index
            .get(i.saturating_sub(1))
            .map_or(SEGMENT_HEADER_LEN, |&(_, o)| o)
    }
}

/// The kept snapshot, as far as memory is concerned.
#[derive(Clone, Debug)]
struct SnapMeta {
    zxid: i64,
    path: PathBuf,
}

/// zkfle's file-backed log. See the module docs for layout and rules.
#[derive(Debug)]
pub struct FileLog {
    disk: Disk,
    opts: FileLogOptions,
    segments: Vec<Segment>,
    /// The last segment, open for appends.
    active: Option<File>,
    snapshot: Option<SnapMeta>,
    poisoned: bool,
    /// Test hook: truncate without its intent (a deliberately broken
    /// truncate, to show the crash tests catch non-atomic truncation).
    #[cfg(test)]
    skip_truncate_intent: bool,
}

impl FileLog {
    /// Opens (creating if needed) the log in `dir` with default options.
    pub fn open(dir: impl AsRef<Path>) -> Result<FileLog, LogError> {
        FileLog::open_with(dir, FileLogOptions::default())
    }

    /// Opens the log in `dir`, recovering from any crash:
    /// 1. an `intent` file (an interrupted truncate, compaction or install)
    ///    is redone from its start, so the operation takes full effect;
    /// 2. leftover `.tmp` files (unfinished atomic writes) are deleted;
    /// 3. the newest snapshot is kept (its header checked), older ones
    ///    deleted (a crash between a new snapshot's rename and the old
    ///    one's unlink leaves both);
    /// 4. every segment is scanned and checked; a torn tail of the last one
    ///    is cut (see `recover`); corruption anywhere else is an error
    ///    naming the file and offset;
    /// 5. the last segment is fsynced: after a process crash (not a power
    ///    loss) its last frame may be valid in the page cache but not on
    ///    disk, and nothing may be reported that is not durable.
    ///
    /// Scanning reads the whole log once: open costs O(log size).
    pub fn open_with(dir: impl AsRef<Path>, opts: FileLogOptions) -> Result<FileLog, LogError> {
        let mut disk = Disk::open(dir.as_ref())?;
        let listing = disk.list()?;
        if listing.intent {
            let path = disk.path(disk::INTENT);
            let bytes = std::fs::read(&path).map_err(io_err(&path, "read"))?;
            let intent = Intent::decode(&bytes).map_err(|reason| LogError::Corrupt {
                path: path.clone(),
                offset: 0,
                reason,
            })?;
            log::info!(
                "zkfle log {}: redoing interrupted {intent:?}",
                disk.dir.display()
            );
            redo(&mut disk, &intent)?;
        }

        let listing = disk.list()?;
        if !listing.tmps.is_empty() {
            for t in &listing.tmps {
                disk.remove(t)?;
            }
            disk.fsync_dir()?;
        }

        let snapshot = match listing.snapshots.last() {
            None => None,
            Some(&zxid) => {
                let path = disk.path(&snapshot_name(zxid));
                check_snapshot_file(&path, zxid)?;
                let older = &listing.snapshots[..listing.snapshots.len() - 1];
                if !older.is_empty() {
                    for &z in older {
                        disk.remove(&disk.path(&snapshot_name(z)))?;
                    }
                    disk.fsync_dir()?;
                }
                Some(SnapMeta { zxid, path })
            }
        };

        let mut segments: Vec<Segment> = Vec::with_capacity(listing.segments.len());
        let n = listing.segments.len();
        for (i, &first) in listing.segments.iter().enumerate() {
            let prev_last = segments.last().map_or(0, |s| s.last);
            if let Some(seg) =
                recover_segment(&mut disk, first, prev_last, i + 1 == n, INDEX_STRIDE)?
            {
                segments.push(seg);
            }
        }
        let active = match segments.last() {
            Some(s) => {
                let path = disk.path(&segment_name(s.first));
                let f = disk.open_rw(&path)?;
                // A process crash between an append's write and its
                // fdatasync leaves the frame in the page cache, where the
                // scan above read it as valid: make it durable before the
                // log reports it (last_zxid is a vote). Sealed segments were
                // synced before the next one was created.
                disk.sync_data(&f, &path)?;
                Some(f)
            }
            None => None,
        };
        Ok(FileLog {
            disk,
            opts,
            segments,
            active,
            snapshot,
            poisoned: false,
            #[cfg(test)]
            skip_truncate_intent: false,
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.disk.dir
    }

    /// What the log has done to the disk so far (fsync counts for the
    /// group-commit benchmark).
    pub fn stats(&self) -> FileLogStats {
        self.disk.stats
    }

    /// Number of segment files.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Test hook: the `n`th durable step from now fails as if the process
    /// had died just before it (`None` disarms).
    #[cfg(test)]
    pub(crate) fn crash_before_step(&mut self, n: Option<u32>) {
        self.disk.crash_before_step(n);
    }

    fn check_usable(&self) -> Result<(), LogError> {
        if self.poisoned {
            Err(LogError::Poisoned)
        } else {
            Ok(())
        }
    }

    /// Runs a mutation; any error inside poisons the log.
    fn mutate<T>(
        &mut self,
        f: impl FnOnce(&mut FileLog) -> Result<T, LogError>,
    ) -> Result<T, LogError> {
        self.check_usable()?;
        let r = f(self);
        if r.is_err() {
            self.poisoned = true;
            self.active = None;
        }
        r
    }

    fn snapshot_base(&self) -> i64 {
        self.snapshot.as_ref().map_or(0, |s| s.zxid)
    }

    fn segment_path(&self, first: i64) -> PathBuf {
        self.disk.path(&segment_name(first))
    }

    /// Appends one frame, rolling to a new segment first if the active one
    /// is full. New segment: create, write header, frame and zero padding,
    /// fsync, directory fsync. Otherwise: one write at the end of the valid
    /// data (with more zero padding if it passes the padded size), then
    /// fdatasync.
    fn append_frame(&mut self, entries: &[Entry]) -> Result<(), LogError> {
        let (lo, hi) = match (entries.first(), entries.last()) {
            (Some(a), Some(b)) => (a.zxid, b.zxid),
            _ => return Ok(()),
        };
        let roll = match (self.segments.last(), &self.active) {
            (Some(s), Some(_)) => s.len >= self.opts.segment_bytes,
            _ => true,
        };
        if roll {
            let mut buf = encode_segment_header(lo).to_vec();
            encode_frame(entries, &mut buf);
            let end = buf.len() as u64;
            let alloc = self.opts.padded(end);
            buf.resize(alloc as usize, 0);
            let path = self.segment_path(lo);
            let f = self.disk.create_synced(&path, &buf)?;
            self.disk.fsync_dir()?;
            let mut seg = Segment::new(lo, SEGMENT_HEADER_LEN);
            seg.push_frame(lo, hi, SEGMENT_HEADER_LEN, end, INDEX_STRIDE);
            seg.alloc = alloc;
            self.segments.push(seg);
            self.active = Some(f);
            self.disk.stats.bytes += end - SEGMENT_HEADER_LEN;
            return Ok(());
        }
        let mut buf = Vec::with_capacity(format::frame_len(entries));
        encode_frame(entries, &mut buf);
        let (Some(seg), Some(f)) = (self.segments.last_mut(), self.active.as_ref()) else {
            return Err(LogError::Poisoned);
        };
        let path = self.disk.path(&segment_name(seg.first));
        let off = seg.len;
        let end = off + buf.len() as u64;
        if end > seg.alloc {
            let alloc = self.opts.padded(end);
            buf.resize((alloc - off) as usize, 0);
            seg.alloc = alloc;
        }
        self.disk.write_at(f, &path, &buf, off)?;
        self.disk.sync_data(f, &path)?;
        seg.push_frame(lo, hi, off, end, INDEX_STRIDE);
        self.disk.stats.bytes += end - off;
        Ok(())
    }

    /// Finds where `truncate_after(after)` cuts `seg` (`None` if every
    /// entry of it is kept).
    fn find_cut(&self, seg: &Segment, after: i64) -> Result<Option<Cut>, LogError> {
        if seg.last <= after {
            return Ok(None);
        }
        let path = self.segment_path(seg.first);
        let mut r = FrameReader::open(&path, seg.start_offset(after), seg.len)?;
        let mut kept_last = seg.first;
        while let Some((off, entries)) = r.next_frame()? {
            let keep = entries.partition_point(|e| e.zxid <= after);
            if keep == entries.len() {
                kept_last = entries[keep - 1].zxid;
                continue;
            }
            let mut replacement = Vec::new();
            if keep > 0 {
                encode_frame(&entries[..keep], &mut replacement);
                kept_last = entries[keep - 1].zxid;
            }
            return Ok(Some(Cut {
                segment: seg.first,
                offset: off,
                replacement,
                replacement_first: entries[0].zxid,
                kept_last,
            }));
        }
        Err(LogError::Corrupt {
            path,
            offset: seg.len,
            reason: format!(
                "index says the segment reaches {:#x}, its frames do not",
                seg.last
            ),
        })
    }
}

/// Where a truncation cuts the segment that keeps its last entries.
struct Cut {
    /// That segment's first zxid.
    segment: i64,
    /// Offset of the frame holding the first dropped entry.
    offset: u64,
    /// That frame's kept entries as a new frame (empty: cut on a boundary).
    replacement: Vec<u8>,
    /// First zxid of the replacement frame (if any).
    replacement_first: i64,
    /// The last zxid the segment keeps.
    kept_last: i64,
}

/// Checks a snapshot file's header against its name and size.
fn check_snapshot_file(path: &Path, zxid: i64) -> Result<(), LogError> {
    let corrupt = |reason: String| LogError::Corrupt {
        path: path.to_path_buf(),
        offset: 0,
        reason,
    };
    let mut f = File::open(path).map_err(io_err(path, "open"))?;
    let len = f.metadata().map_err(io_err(path, "stat"))?.len();
    let mut h = [0u8; SNAPSHOT_HEADER_LEN as usize];
    let got = disk::read_up_to(&mut f, &mut h, path)?;
    let (z, data_len, _) = decode_snapshot_header(&h[..got]).map_err(corrupt)?;
    if z != zxid {
        return Err(corrupt(format!(
            "header says zxid {z:#x}, the file name {zxid:#x}"
        )));
    }
    if SNAPSHOT_HEADER_LEN.checked_add(data_len) != Some(len) {
        return Err(corrupt(format!(
            "declares {data_len} data bytes, the file is {len} bytes"
        )));
    }
    Ok(())
}

impl LogStore for FileLog {
    /// One batch: each frame is one write and one fdatasync (a batch above
    /// 64 MiB is split into several frames, each synced before the next is
    /// written, so at most one frame is ever unsynced). Crash before the
    /// fdatasync: the frame is absent or torn (cut at open) or, after a mere
    /// process crash, present: either way it was never acknowledged.
    fn append(&mut self, entries: &[Entry]) -> Result<(), LogError> {
        self.check_usable()?;
        check_batch(entries, self.last_zxid())?;
        if entries.is_empty() {
            return Ok(());
        }
        self.mutate(|log| {
            for frame in split_frames(entries) {
                log.append_frame(frame)?;
            }
            log.disk.stats.batches += 1;
            log.disk.stats.entries += entries.len() as u64;
            Ok(())
        })
    }

    fn last_zxid(&self) -> i64 {
        let snap = self.snapshot_base();
        self.segments.last().map_or(snap, |s| s.last.max(snap))
    }

    fn first_zxid(&self) -> Option<i64> {
        self.segments.first().map(|s| s.first)
    }

    fn floor_zxid(&self, zxid: i64) -> Result<Option<i64>, LogError> {
        self.check_usable()?;
        let i = self.segments.partition_point(|s| s.first <= zxid);
        let Some(seg) = i.checked_sub(1).map(|i| &self.segments[i]) else {
            return Ok(None);
        };
        if seg.last <= zxid {
            return Ok(Some(seg.last));
        }
        let mut r = FrameReader::open(
            &self.segment_path(seg.first),
            seg.start_offset(zxid),
            seg.len,
        )?;
        let mut floor = None;
        while let Some((_, entries)) = r.next_frame()? {
            for e in entries {
                if e.zxid > zxid {
                    return Ok(floor);
                }
                floor = Some(e.zxid);
            }
        }
        Ok(floor)
    }

    fn read_after(&self, after: i64, limit: ReadLimit) -> Result<Vec<Entry>, LogError> {
        self.check_usable()?;
        let mut out = Vec::new();
        let mut bytes = 0usize;
        let start = self
            .segments
            .partition_point(|s| s.first <= after)
            .saturating_sub(1);
        for seg in &self.segments[start..] {
            if seg.last <= after {
                continue;
            }
            let mut r = FrameReader::open(
                &self.segment_path(seg.first),
                seg.start_offset(after),
                seg.len,
            )?;
            while let Some((_, entries)) = r.next_frame()? {
                for e in entries.into_iter().filter(|e| e.zxid > after) {
                    if !limit.admits(out.len(), bytes, e.data.len()) {
                        return Ok(out);
                    }
                    bytes += e.data.len();
                    out.push(e);
                }
            }
        }
        Ok(out)
    }

    /// Steps: write the `Truncate` intent (tmp, fsync, rename, directory
    /// fsync) holding the cut point and the rewritten cut frame; delete the
    /// segments that start above the cut; write the replacement frame at
    /// the cut and cut the file there; fsync it; fsync the directory;
    /// unlink the intent; fsync the directory. A crash before the intent's
    /// rename leaves the old log (the tmp is deleted at open); after it,
    /// open redoes every step from the start (each is idempotent: unlink
    /// if present, write at a fixed offset, cut at a fixed length) and ends
    /// with the new log. The cut frame's kept entries live in the intent,
    /// so cutting inside a frame never loses them.
    fn truncate_after(&mut self, zxid: i64) -> Result<(), LogError> {
        self.check_usable()?;
        if let Some(s) = &self.snapshot {
            if zxid < s.zxid {
                return Err(LogError::TruncateBelowSnapshot {
                    after: zxid,
                    snapshot: s.zxid,
                });
            }
        }
        if self.segments.last().map_or(true, |s| s.last <= zxid) {
            return Ok(());
        }
        let keep = self.segments.partition_point(|s| s.first <= zxid);
        let cut = match keep.checked_sub(1).map(|i| &self.segments[i]) {
            Some(seg) => self.find_cut(seg, zxid)?,
            None => None,
        };
        self.mutate(|log| {
            let intent = Intent::Truncate {
                after: zxid,
                cut: cut.as_ref().map(|c| (c.segment, c.offset)),
                replacement: cut.as_ref().map_or(Vec::new(), |c| c.replacement.clone()),
            };
            log.active = None;
            #[cfg(test)]
            let skip = log.skip_truncate_intent;
            #[cfg(not(test))]
            let skip = false;
            if !skip {
                write_intent(&mut log.disk, &intent)?;
            }
            redo(&mut log.disk, &intent)?;
            log.segments.truncate(keep);
            if let (Some(c), Some(seg)) = (cut, log.segments.last_mut()) {
                seg.index.retain(|&(_, o)| o < c.offset);
                seg.len = c.offset;
                seg.alloc = c.offset + c.replacement.len() as u64;
                if !c.replacement.is_empty() {
                    let end = c.offset + c.replacement.len() as u64;
                    seg.push_frame(
                        c.replacement_first,
                        c.kept_last,
                        c.offset,
                        end,
                        INDEX_STRIDE,
                    );
                }
                seg.last = c.kept_last;
            }
            if let Some(seg) = log.segments.last() {
                log.active = Some(log.disk.open_rw(&log.segment_path(seg.first))?);
            }
            Ok(())
        })
    }

    fn snapshot_zxid(&self) -> Option<i64> {
        self.snapshot.as_ref().map(|s| s.zxid)
    }

    fn snapshot(&self) -> Result<Option<Snapshot>, LogError> {
        self.check_usable()?;
        let Some(meta) = &self.snapshot else {
            return Ok(None);
        };
        let bytes = std::fs::read(&meta.path).map_err(io_err(&meta.path, "read"))?;
        let (zxid, data) =
            decode_snapshot(Bytes::from(bytes)).map_err(|reason| LogError::Corrupt {
                path: meta.path.clone(),
                offset: 0,
                reason,
            })?;
        Ok(Some(Snapshot { zxid, data }))
    }

    /// Steps: write `snapshot.<zxid>.tmp`, fsync; rename to
    /// `snapshot.<zxid>`; fsync the directory; unlink the previous
    /// snapshot; fsync the directory. Before the rename a crash leaves the
    /// old snapshot (the tmp is deleted at open); after it the new one is
    /// the newest and open deletes any older one left behind. The log is
    /// not touched.
    fn save_snapshot(&mut self, snapshot: Snapshot) -> Result<(), LogError> {
        self.check_usable()?;
        let last = self.last_zxid();
        if snapshot.zxid > last {
            return Err(LogError::SnapshotAhead {
                zxid: snapshot.zxid,
                last,
            });
        }
        if let Some(cur) = &self.snapshot {
            if snapshot.zxid < cur.zxid {
                return Err(LogError::SnapshotOlder {
                    zxid: snapshot.zxid,
                    current: cur.zxid,
                });
            }
        }
        self.mutate(|log| {
            let name = snapshot_name(snapshot.zxid);
            let tmp = log.disk.path(&format!("{name}.tmp"));
            let path = log.disk.path(&name);
            log.disk.write_tmp(
                &tmp,
                &[
                    &encode_snapshot_header(snapshot.zxid, &snapshot.data),
                    &snapshot.data,
                ],
            )?;
            log.disk.rename(&tmp, &path)?;
            log.disk.fsync_dir()?;
            if let Some(old) = log.snapshot.take().filter(|o| o.zxid != snapshot.zxid) {
                log.disk.remove(&old.path)?;
                log.disk.fsync_dir()?;
            }
            log.snapshot = Some(SnapMeta {
                zxid: snapshot.zxid,
                path,
            });
            Ok(())
        })
    }

    /// Drops the oldest segments whose every entry is `<= min(up_to,
    /// snapshot zxid)`. Steps: write the `Compact` intent listing them;
    /// unlink each, oldest first; fsync the directory; unlink the intent;
    /// fsync the directory. A crash before the intent's rename leaves the
    /// old log; after it open finishes the deletions (new log).
    fn compact(&mut self, up_to: i64) -> Result<(), LogError> {
        self.check_usable()?;
        let Some(snap) = self.snapshot.as_ref().map(|s| s.zxid) else {
            return Ok(());
        };
        let limit = up_to.min(snap);
        let n = self.segments.iter().take_while(|s| s.last <= limit).count();
        if n == 0 {
            return Ok(());
        }
        self.mutate(|log| {
            let intent = Intent::Compact {
                segments: log.segments[..n].iter().map(|s| s.first).collect(),
            };
            if n == log.segments.len() {
                log.active = None;
            }
            write_intent(&mut log.disk, &intent)?;
            redo(&mut log.disk, &intent)?;
            log.segments.drain(..n);
            Ok(())
        })
    }

    /// Steps: write `snapshot.<zxid>.tmp`, fsync; write the `Install`
    /// intent (tmp, fsync, rename, directory fsync); unlink every segment;
    /// rename the snapshot tmp into place; unlink other snapshots; fsync
    /// the directory; unlink the intent; fsync the directory. Before the
    /// intent's rename a crash leaves the old log and snapshot (the tmps
    /// are deleted at open); after it open redoes the install (the tmp was
    /// fsynced first, and redo renames it only if it is still there).
    fn install_snapshot(&mut self, snapshot: Snapshot) -> Result<(), LogError> {
        self.mutate(|log| {
            let name = snapshot_name(snapshot.zxid);
            let tmp = log.disk.path(&format!("{name}.tmp"));
            log.disk.write_tmp(
                &tmp,
                &[
                    &encode_snapshot_header(snapshot.zxid, &snapshot.data),
                    &snapshot.data,
                ],
            )?;
            let intent = Intent::Install {
                zxid: snapshot.zxid,
            };
            log.active = None;
            write_intent(&mut log.disk, &intent)?;
            redo(&mut log.disk, &intent)?;
            log.segments.clear();
            log.snapshot = Some(SnapMeta {
                zxid: snapshot.zxid,
                path: log.disk.path(&name),
            });
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests;
