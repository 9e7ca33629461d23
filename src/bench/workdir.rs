//! A scratch directory for one benchmark run, removed when dropped. A few
//! lines instead of the `tempfile` crate, which only tests need, so the
//! library builds without it.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A fresh directory under the system's temporary directory.
#[derive(Debug)]
pub struct WorkDir {
    path: PathBuf,
}

impl WorkDir {
    /// Creates `<tmp>/<prefix><pid>-<nanos>-<n>`; `create_dir` fails on a
    /// name that exists, so two runs never share a directory.
    pub fn new(prefix: &str) -> io::Result<WorkDir> {
        WorkDir::new_in(&std::env::temp_dir(), prefix)
    }

    /// [`WorkDir::new`] under `parent` instead of the temporary directory.
    pub fn new_in(parent: &Path, prefix: &str) -> io::Result<WorkDir> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let mut last = None;
        for _ in 0..100 {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let path = parent.join(format!("{prefix}{}-{nanos}-{n}", std::process::id()));
            match std::fs::create_dir(&path) {
                Ok(()) => return Ok(WorkDir { path }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("no free scratch directory name")))
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_dirs_differ_and_drop_removes_one_with_its_contents() {
        let a = WorkDir::new("zkfle-workdir-test-").unwrap();
        let b = WorkDir::new("zkfle-workdir-test-").unwrap();
        assert_ne!(a.path(), b.path());
        std::fs::create_dir_all(a.path().join("x/y")).unwrap();
        std::fs::write(a.path().join("x/y/f"), b"1").unwrap();
        let p = a.path().to_path_buf();
        drop(a);
        assert!(!p.exists());
        assert!(b.path().is_dir());
    }
}
