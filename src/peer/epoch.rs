//! The `currentEpoch` and `acceptedEpoch` files (PROTOCOL.md §5).
//!
//! Both live in `<dataDir>/version-2/` as signed decimal text without a
//! newline, the format Java ZooKeeper 3.8 reads and writes, so a zkfle peer
//! and a Java peer can take turns on one data directory. Writes go through a
//! `<name>.tmp` file that is fsynced and renamed over the target, and the
//! directory is fsynced after the rename: a crash leaves either the old or
//! the new value, never a torn one.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// File name of the epoch a peer last acknowledged a NEWLEADER for.
pub const CURRENT_EPOCH_FILE: &str = "currentEpoch";
/// File name of the epoch a peer last accepted in a LEADERINFO.
pub const ACCEPTED_EPOCH_FILE: &str = "acceptedEpoch";
/// The directory under `dataDir` that ZooKeeper keeps its files in.
pub const VERSION_DIR: &str = "version-2";

/// Why the epoch files could not be read, checked or written.
#[derive(Debug, thiserror::Error)]
pub enum EpochError {
    /// An IO operation on `path` failed.
    #[error("{path}: {op}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// What was being done ("read", "create", "fsync", "rename", ...).
        op: &'static str,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The file's first line is not a signed 64-bit decimal.
    #[error("{path}: not a decimal epoch: {text:?}")]
    Garbage {
        /// The epoch file.
        path: PathBuf,
        /// Its first line (truncated to 64 characters).
        text: String,
    },
    /// `acceptedEpoch < currentEpoch`: a peer never accepts an epoch it has
    /// not first accepted, so the data directory is damaged (ZooKeeper
    /// refuses to start on this too).
    #[error(
        "{accepted_path}: acceptedEpoch {accepted} is less than currentEpoch {current} ({current_path})"
    )]
    AcceptedBelowCurrent {
        /// The acceptedEpoch file.
        accepted_path: PathBuf,
        /// Its value.
        accepted: i64,
        /// The currentEpoch file.
        current_path: PathBuf,
        /// Its value.
        current: i64,
    },
    /// The last logged zxid belongs to an epoch newer than currentEpoch and
    /// no `currentEpoch.tmp` from an interrupted write explains it.
    #[error(
        "{path}: currentEpoch {current} is older than the epoch {zxid_epoch} of the last zxid, and no {name}.tmp to recover from",
        name = CURRENT_EPOCH_FILE
    )]
    CurrentBehindLog {
        /// The currentEpoch file.
        path: PathBuf,
        /// Its value.
        current: i64,
        /// `last_zxid >> 32`.
        zxid_epoch: i64,
    },
    /// Store mode: the replicated log holds an entry of an epoch this peer
    /// never accepted (a peer logs a leader's entries only after accepting
    /// its epoch), so the data directory and the log do not belong together.
    #[error(
        "{path}: acceptedEpoch {accepted} is older than the epoch {zxid_epoch} of the replicated log's last zxid"
    )]
    AcceptedBehindLog {
        /// The acceptedEpoch file.
        path: PathBuf,
        /// Its value.
        accepted: i64,
        /// `last_zxid >> 32`.
        zxid_epoch: i64,
    },
}

/// The epoch of a zxid (its high 32 bits).
pub fn epoch_of_zxid(zxid: i64) -> i64 {
    zxid >> 32
}

/// The two epoch files of one data directory, with their checked values.
#[derive(Debug, Clone)]
pub struct EpochFiles {
    dir: PathBuf,
    current: i64,
    accepted: i64,
}

impl EpochFiles {
    /// Opens (creating if needed) `<data_dir>/version-2/` and runs ZooKeeper
    /// 3.8's startup checks, given the last zxid of the local log (0 for an
    /// empty data directory):
    ///
    /// * a missing file is created holding `epoch(last_zxid)`;
    /// * `epoch(last_zxid) > currentEpoch` is recovered from
    ///   `currentEpoch.tmp` if an interrupted write left one, else fatal;
    /// * `acceptedEpoch < currentEpoch` is fatal.
    pub fn open(data_dir: &Path, last_zxid: i64) -> Result<EpochFiles, EpochError> {
        EpochFiles::open_checked(data_dir, last_zxid, false)
    }

    /// [`EpochFiles::open`] for a peer that replicates a log (store mode),
    /// whose log may legitimately hold entries of an epoch newer than
    /// `currentEpoch`: a learner appends the proposals a leader forwards
    /// during synchronization (those of the leader's own epoch included)
    /// *before* it persists `currentEpoch` on NEWLEADER (ZooKeeper 3.9's
    /// order, ZAB_SPEC L2), so a crash in between leaves exactly that. It
    /// never logs an entry of an epoch it has not accepted, so the check
    /// here is `epoch(last_zxid) <= acceptedEpoch`; missing files are
    /// created as in [`EpochFiles::open`].
    pub fn open_replicated(data_dir: &Path, last_zxid: i64) -> Result<EpochFiles, EpochError> {
        EpochFiles::open_checked(data_dir, last_zxid, true)
    }

    fn open_checked(
        data_dir: &Path,
        last_zxid: i64,
        replicated: bool,
    ) -> Result<EpochFiles, EpochError> {
        let dir = data_dir.join(VERSION_DIR);
        fs::create_dir_all(&dir).map_err(|source| EpochError::Io {
            path: dir.clone(),
            op: "create directory",
            source,
        })?;
        let zxid_epoch = epoch_of_zxid(last_zxid);
        let current_path = dir.join(CURRENT_EPOCH_FILE);
        let mut current = match read_epoch(&current_path)? {
            Some(e) => e,
            None => {
                log::info!(
                    "{} not found; creating it with epoch {zxid_epoch} of the last zxid",
                    current_path.display()
                );
                write_epoch(&dir, CURRENT_EPOCH_FILE, zxid_epoch)?;
                zxid_epoch
            }
        };
        if zxid_epoch > current && !replicated {
            let tmp = dir.join(format!("{CURRENT_EPOCH_FILE}.tmp"));
            match read_epoch(&tmp)? {
                Some(e) if e >= zxid_epoch => {
                    log::warn!(
                        "{}: recovering currentEpoch {e} from an interrupted write",
                        tmp.display()
                    );
                    write_epoch(&dir, CURRENT_EPOCH_FILE, e)?;
                    current = e;
                }
                _ => {
                    return Err(EpochError::CurrentBehindLog {
                        path: current_path,
                        current,
                        zxid_epoch,
                    })
                }
            }
        }
        let accepted_path = dir.join(ACCEPTED_EPOCH_FILE);
        let accepted = match read_epoch(&accepted_path)? {
            Some(e) => e,
            None => {
                log::info!(
                    "{} not found; creating it with epoch {zxid_epoch} of the last zxid",
                    accepted_path.display()
                );
                write_epoch(&dir, ACCEPTED_EPOCH_FILE, zxid_epoch)?;
                zxid_epoch
            }
        };
        if replicated && zxid_epoch > accepted {
            return Err(EpochError::AcceptedBehindLog {
                path: accepted_path,
                accepted,
                zxid_epoch,
            });
        }
        if accepted < current {
            return Err(EpochError::AcceptedBelowCurrent {
                accepted_path,
                accepted,
                current_path,
                current,
            });
        }
        Ok(EpochFiles {
            dir,
            current,
            accepted,
        })
    }

    /// The checked `currentEpoch`.
    pub fn current(&self) -> i64 {
        self.current
    }

    /// The checked `acceptedEpoch`.
    pub fn accepted(&self) -> i64 {
        self.accepted
    }

    /// The `version-2` directory holding the files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Persists a new `currentEpoch` (a learner on NEWLEADER, a leader once
    /// a quorum sent ACKEPOCH) before the caller acts on it.
    pub fn set_current(&mut self, epoch: i64) -> Result<(), EpochError> {
        write_epoch(&self.dir, CURRENT_EPOCH_FILE, epoch)?;
        self.current = epoch;
        Ok(())
    }

    /// Persists a new `acceptedEpoch` (a learner on a newer LEADERINFO, a
    /// leader once a quorum sent FOLLOWERINFO).
    pub fn set_accepted(&mut self, epoch: i64) -> Result<(), EpochError> {
        write_epoch(&self.dir, ACCEPTED_EPOCH_FILE, epoch)?;
        self.accepted = epoch;
        Ok(())
    }
}

/// Reads an epoch file: `Ok(None)` if it does not exist. Like ZooKeeper,
/// only the first line counts and it must be a signed 64-bit decimal.
pub fn read_epoch(path: &Path) -> Result<Option<i64>, EpochError> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(EpochError::Io {
                path: path.to_path_buf(),
                op: "read",
                source,
            })
        }
    };
    let text = String::from_utf8_lossy(&bytes);
    let first = text.lines().next().unwrap_or("");
    match first.trim_end_matches('\r').parse::<i64>() {
        Ok(v) => Ok(Some(v)),
        Err(_) => Err(EpochError::Garbage {
            path: path.to_path_buf(),
            text: first.chars().take(64).collect(),
        }),
    }
}

/// Writes `value` to `dir/name` atomically: `name.tmp`, write, fsync,
/// rename over `name`, fsync the directory (so the rename itself survives a
/// power loss).
pub fn write_epoch(dir: &Path, name: &str, value: i64) -> Result<(), EpochError> {
    let target = dir.join(name);
    let tmp = dir.join(format!("{name}.tmp"));
    let io_err = |path: &Path, op: &'static str| {
        let path = path.to_path_buf();
        move |source| EpochError::Io { path, op, source }
    };
    {
        let mut f = fs::File::create(&tmp).map_err(io_err(&tmp, "create"))?;
        f.write_all(value.to_string().as_bytes())
            .map_err(io_err(&tmp, "write"))?;
        f.sync_all().map_err(io_err(&tmp, "fsync"))?;
    }
    fs::rename(&tmp, &target).map_err(io_err(&target, "rename"))?;
    let d = fs::File::open(dir).map_err(io_err(dir, "open directory"))?;
    d.sync_all().map_err(io_err(dir, "fsync directory"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vdir(d: &Path) -> PathBuf {
        d.join(VERSION_DIR)
    }

    #[test]
    fn a_replicated_log_may_be_ahead_of_current_but_not_of_accepted() {
        let t = tempfile::tempdir().unwrap();
        let d = vdir(t.path());
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("currentEpoch"), b"2").unwrap();
        fs::write(d.join("acceptedEpoch"), b"3").unwrap();
        // Synced entries of epoch 3 logged before NEWLEADER's currentEpoch.
        let z3 = (3 << 32) | 4;
        assert!(matches!(
            EpochFiles::open(t.path(), z3),
            Err(EpochError::CurrentBehindLog { .. })
        ));
        let e = EpochFiles::open_replicated(t.path(), z3).unwrap();
        assert_eq!((e.current(), e.accepted()), (2, 3));
        assert!(matches!(
            EpochFiles::open_replicated(t.path(), (4 << 32) | 1),
            Err(EpochError::AcceptedBehindLog {
                accepted: 3,
                zxid_epoch: 4,
                ..
            })
        ));
    }

    #[test]
    fn fresh_dir_creates_both_files_with_zero_and_no_newline() {
        let t = tempfile::tempdir().unwrap();
        let e = EpochFiles::open(t.path(), 0).unwrap();
        assert_eq!((e.current(), e.accepted()), (0, 0));
        assert_eq!(fs::read(vdir(t.path()).join("currentEpoch")).unwrap(), b"0");
        assert_eq!(
            fs::read(vdir(t.path()).join("acceptedEpoch")).unwrap(),
            b"0"
        );
    }

    #[test]
    fn missing_files_take_the_epoch_of_the_last_zxid() {
        let t = tempfile::tempdir().unwrap();
        let e = EpochFiles::open(t.path(), (7 << 32) | 42).unwrap();
        assert_eq!((e.current(), e.accepted()), (7, 7));
        assert_eq!(fs::read(vdir(t.path()).join("currentEpoch")).unwrap(), b"7");
    }

    #[test]
    fn writes_replace_atomically_and_reopen_reads_them() {
        let t = tempfile::tempdir().unwrap();
        let mut e = EpochFiles::open(t.path(), 0).unwrap();
        e.set_accepted(3).unwrap();
        e.set_current(3).unwrap();
        assert!(!vdir(t.path()).join("currentEpoch.tmp").exists());
        assert_eq!(
            fs::read(vdir(t.path()).join("acceptedEpoch")).unwrap(),
            b"3"
        );
        let again = EpochFiles::open(t.path(), 3 << 32).unwrap();
        assert_eq!((again.current(), again.accepted()), (3, 3));
    }

    #[test]
    fn accepted_below_current_is_fatal_and_names_both_files() {
        let t = tempfile::tempdir().unwrap();
        fs::create_dir_all(vdir(t.path())).unwrap();
        fs::write(vdir(t.path()).join("currentEpoch"), "5").unwrap();
        fs::write(vdir(t.path()).join("acceptedEpoch"), "4").unwrap();
        let err = EpochFiles::open(t.path(), 0).unwrap_err();
        assert!(matches!(
            err,
            EpochError::AcceptedBelowCurrent {
                accepted: 4,
                current: 5,
                ..
            }
        ));
        let msg = err.to_string();
        assert!(
            msg.contains("acceptedEpoch") && msg.contains("currentEpoch"),
            "{msg}"
        );
    }

    #[test]
    fn garbage_is_an_error_naming_the_file() {
        let t = tempfile::tempdir().unwrap();
        fs::create_dir_all(vdir(t.path())).unwrap();
        fs::write(vdir(t.path()).join("currentEpoch"), "one").unwrap();
        let err = EpochFiles::open(t.path(), 0).unwrap_err();
        assert!(matches!(err, EpochError::Garbage { .. }));
        assert!(err.to_string().contains("currentEpoch"), "{err}");
        fs::write(vdir(t.path()).join("currentEpoch"), "").unwrap();
        assert!(matches!(
            EpochFiles::open(t.path(), 0).unwrap_err(),
            EpochError::Garbage { .. }
        ));
    }

    #[test]
    fn only_the_first_line_counts_like_zookeeper() {
        let t = tempfile::tempdir().unwrap();
        fs::create_dir_all(vdir(t.path())).unwrap();
        fs::write(vdir(t.path()).join("currentEpoch"), "2\njunk").unwrap();
        fs::write(vdir(t.path()).join("acceptedEpoch"), "3\r\n").unwrap();
        let e = EpochFiles::open(t.path(), 0).unwrap();
        assert_eq!((e.current(), e.accepted()), (2, 3));
    }

    #[test]
    fn log_newer_than_current_epoch_needs_the_tmp_file() {
        let t = tempfile::tempdir().unwrap();
        fs::create_dir_all(vdir(t.path())).unwrap();
        fs::write(vdir(t.path()).join("currentEpoch"), "1").unwrap();
        fs::write(vdir(t.path()).join("acceptedEpoch"), "2").unwrap();
        let err = EpochFiles::open(t.path(), 2 << 32).unwrap_err();
        assert!(matches!(
            err,
            EpochError::CurrentBehindLog {
                current: 1,
                zxid_epoch: 2,
                ..
            }
        ));
        fs::write(vdir(t.path()).join("currentEpoch.tmp"), "2").unwrap();
        let e = EpochFiles::open(t.path(), 2 << 32).unwrap();
        assert_eq!(e.current(), 2);
        assert_eq!(fs::read(vdir(t.path()).join("currentEpoch")).unwrap(), b"2");
    }
}
