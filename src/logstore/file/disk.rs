//! The file-system calls [`super::FileLog`] makes, in one place: each
//! durable step (write, fsync, rename, unlink, cut) goes through [`Disk`],
//! which counts fsyncs for the stats and, in tests, stops the process model
//! before a chosen step to simulate a crash there.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::logstore::LogError;

/// Counters of what the log did to the disk (for benchmarks and metrics).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileLogStats {
    /// `append` calls that wrote something.
    pub batches: u64,
    /// Entries appended.
    pub entries: u64,
    /// Bytes written to segment files.
    pub bytes: u64,
    /// fsync/fdatasync calls on files.
    pub file_fsyncs: u64,
    /// fsync calls on the directory.
    pub dir_fsyncs: u64,
}

/// A name in the log directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Name {
    /// `log.<16 hex>`: a segment and its first zxid.
    Segment(i64),
    /// `snapshot.<16 hex>`: a snapshot and its zxid.
    Snapshot(i64),
    /// `intent`.
    Intent,
    /// Anything ending in `.tmp` (an unfinished atomic write).
    Tmp,
}

fn hex16(s: &str) -> Option<i64> {
    (s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| u64::from_str_radix(s, 16).ok().map(|v| v as i64))
        .flatten()
}

impl Name {
    /// Classifies a directory entry; `None` for files that are not ours.
    pub(crate) fn parse(name: &str) -> Option<Name> {
        if name.ends_with(".tmp") {
            return Some(Name::Tmp);
        }
        if name == INTENT {
            return Some(Name::Intent);
        }
        if let Some(z) = name.strip_prefix("log.").and_then(hex16) {
            return Some(Name::Segment(z));
        }
        name.strip_prefix("snapshot.")
            .and_then(hex16)
            .map(Name::Snapshot)
    }
}

/// The intent file's name.
pub(crate) const INTENT: &str = "intent";

/// `log.<first zxid>`.
pub(crate) fn segment_name(first: i64) -> String {
    format!("log.{:016x}", first as u64)
}

/// `snapshot.<zxid>`.
pub(crate) fn snapshot_name(zxid: i64) -> String {
    format!("snapshot.{:016x}", zxid as u64)
}

/// What a directory holds, sorted by zxid.
#[derive(Debug, Default)]
pub(crate) struct Listing {
    pub(crate) segments: Vec<i64>,
    pub(crate) snapshots: Vec<i64>,
    pub(crate) intent: bool,
    pub(crate) tmps: Vec<PathBuf>,
}

/// Maps an `io::Error` to a [`LogError::Io`] naming `path` and `op`.
pub(crate) fn io_err(path: &Path, op: &'static str) -> impl FnOnce(io::Error) -> LogError {
    let path = path.to_path_buf();
    move |source| LogError::Io { path, op, source }
}

/// The log directory and its durable operations.
#[derive(Debug)]
pub(crate) struct Disk {
    pub(crate) dir: PathBuf,
    dir_handle: File,
    pub(crate) stats: FileLogStats,
    /// Test hook: stop before durable step number `crash_at`.
    crash_at: Option<u32>,
    steps: u32,
}

impl Disk {
    /// Opens (creating if needed) the directory.
    pub(crate) fn open(dir: &Path) -> Result<Disk, LogError> {
        let existed = dir.is_dir();
        fs::create_dir_all(dir).map_err(io_err(dir, "create directory"))?;
        let dir_handle = File::open(dir).map_err(io_err(dir, "open directory"))?;
        let mut disk = Disk {
            dir: dir.to_path_buf(),
            dir_handle,
            stats: FileLogStats::default(),
            crash_at: None,
            steps: 0,
        };
        if !existed {
            // The new directory's own entry must survive too.
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                let p = File::open(parent).map_err(io_err(parent, "open directory"))?;
                p.sync_all().map_err(io_err(parent, "fsync directory"))?;
            }
        }
        disk.fsync_dir()?;
        Ok(disk)
    }

    /// Path of `name` in the directory.
    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Arms the crash hook: the `n`th durable step from now (0-based) is not
    /// taken and fails instead.
    #[cfg(test)]
    pub(crate) fn crash_before_step(&mut self, n: Option<u32>) {
        self.crash_at = n;
        self.steps = 0;
    }

    /// Every durable step calls this first.
    fn step(&mut self, op: &'static str) -> Result<(), LogError> {
        if self.crash_at == Some(self.steps) {
            return Err(LogError::Io {
                path: self.dir.clone(),
                op,
                source: io::Error::other("simulated crash"),
            });
        }
        self.steps += 1;
        Ok(())
    }

    /// Lists our files.
    pub(crate) fn list(&self) -> Result<Listing, LogError> {
        let mut l = Listing::default();
        let rd = fs::read_dir(&self.dir).map_err(io_err(&self.dir, "list directory"))?;
        for ent in rd {
            let ent = ent.map_err(io_err(&self.dir, "list directory"))?;
            let name = ent.file_name();
            let Some(name) = name.to_str() else { continue };
            match Name::parse(name) {
                Some(Name::Segment(z)) => l.segments.push(z),
                Some(Name::Snapshot(z)) => l.snapshots.push(z),
                Some(Name::Intent) => l.intent = true,
                Some(Name::Tmp) => l.tmps.push(ent.path()),
                None => log::warn!(
                    "zkfle log directory {}: ignoring unknown file {name}",
                    self.dir.display()
                ),
            }
        }
        l.segments.sort_unstable();
        l.snapshots.sort_unstable();
        Ok(l)
    }

    /// fsync of the directory: makes creations, renames and unlinks durable.
    pub(crate) fn fsync_dir(&mut self) -> Result<(), LogError> {
        self.step("fsync directory")?;
        self.stats.dir_fsyncs += 1;
        self.dir_handle
            .sync_all()
            .map_err(io_err(&self.dir, "fsync directory"))
    }

    /// fdatasync of a file we appended to (its size is data for fdatasync).
    pub(crate) fn sync_data(&mut self, f: &File, path: &Path) -> Result<(), LogError> {
        self.step("fdatasync")?;
        self.stats.file_fsyncs += 1;
        f.sync_data().map_err(io_err(path, "fdatasync"))
    }

    /// fsync of a file we created or cut.
    pub(crate) fn sync_all(&mut self, f: &File, path: &Path) -> Result<(), LogError> {
        self.step("fsync")?;
        self.stats.file_fsyncs += 1;
        f.sync_all().map_err(io_err(path, "fsync"))
    }

    /// Writes `buf` at `offset`.
    pub(crate) fn write_at(
        &mut self,
        f: &File,
        path: &Path,
        buf: &[u8],
        offset: u64,
    ) -> Result<(), LogError> {
        self.step("write")?;
        f.write_all_at(buf, offset).map_err(io_err(path, "write"))
    }

    /// Cuts a file to `len` bytes.
    pub(crate) fn set_len(&mut self, f: &File, path: &Path, len: u64) -> Result<(), LogError> {
        self.step("truncate file")?;
        f.set_len(len).map_err(io_err(path, "truncate file"))
    }

    /// Creates `path` (which must not exist), writes `buf`, fsyncs it; the
    /// caller fsyncs the directory. Returns the open file.
    pub(crate) fn create_synced(&mut self, path: &Path, buf: &[u8]) -> Result<File, LogError> {
        self.step("create")?;
        let mut f = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(io_err(path, "create"))?;
        self.step("write")?;
        f.write_all(buf).map_err(io_err(path, "write"))?;
        self.sync_all(&f, path)?;
        Ok(f)
    }

    /// Writes a whole `.tmp` file from `parts` (replacing any leftover)
    /// and fsyncs it.
    pub(crate) fn write_tmp(&mut self, path: &Path, parts: &[&[u8]]) -> Result<(), LogError> {
        self.step("create")?;
        let mut f = File::create(path).map_err(io_err(path, "create"))?;
        self.step("write")?;
        for part in parts {
            f.write_all(part).map_err(io_err(path, "write"))?;
        }
        self.sync_all(&f, path)
    }

    /// Renames; the caller fsyncs the directory.
    pub(crate) fn rename(&mut self, from: &Path, to: &Path) -> Result<(), LogError> {
        self.step("rename")?;
        fs::rename(from, to).map_err(io_err(to, "rename"))
    }

    /// Unlinks if present (redo may find it gone already); the caller
    /// fsyncs the directory.
    pub(crate) fn remove(&mut self, path: &Path) -> Result<(), LogError> {
        self.step("unlink")?;
        match fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(path, "unlink")(e)),
        }
    }

    /// Opens an existing file for reading and positional writes.
    pub(crate) fn open_rw(&self, path: &Path) -> Result<File, LogError> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(io_err(path, "open"))
    }
}

/// Reads as many bytes as are there, up to `buf.len()`.
pub(crate) fn read_up_to(
    r: &mut impl Read,
    buf: &mut [u8],
    path: &Path,
) -> Result<usize, LogError> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_err(path, "read")(e)),
        }
    }
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_foreign_names_are_ignored() {
        assert_eq!(
            Name::parse(&segment_name(0x1_0000_0001)),
            Some(Name::Segment(0x1_0000_0001))
        );
        assert_eq!(Name::parse(&snapshot_name(7)), Some(Name::Snapshot(7)));
        assert_eq!(Name::parse("intent"), Some(Name::Intent));
        assert_eq!(
            Name::parse("snapshot.0000000000000007.tmp"),
            Some(Name::Tmp)
        );
        assert_eq!(Name::parse("log.12"), None);
        assert_eq!(Name::parse("log.zz00000000000000"), None);
        assert_eq!(Name::parse("README"), None);
    }
}
