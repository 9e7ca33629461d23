//! Skips the snapshot stream a Java leader writes after a SNAP packet
//! (PROTOCOL.md §6.4). zkfle keeps no data tree, but the stream has no length
//! prefix, so the only way to find the NEWLEADER behind it is to walk every
//! record up to the `"BenWasHere"` signature. The walk is incremental: a
//! large tree arriving in many reads is parsed once, item by item
//! (`crate::wire::zab::decode_snapshot` wants the whole stream in one buffer,
//! which would mean re-parsing from the start after every read).

use crate::wire::zab::MAX_JUTE_LEN;
use crate::wire::{Reader, WireError};

/// A jute buffer (`i32` length, −1 = null) bounded as Java bounds it.
fn read_buffer<'a>(r: &mut Reader<'a>) -> Result<Option<&'a [u8]>, WireError> {
    let len = r.i32()?;
    if len == -1 {
        return Ok(None);
    }
    if len < 0 || len as usize > MAX_JUTE_LEN {
        return Err(WireError::BadJuteLength(len));
    }
    Ok(Some(r.take(len as usize)?))
}

/// The string ZooKeeper writes after a snapshot sent to a learner.
pub const SIGNATURE: &[u8] = b"BenWasHere";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    SessionCount,
    Sessions(u32),
    AclCount,
    Acls(u32),
    Nodes,
    Signature,
    Done,
}

/// Incremental parser of one snapshot stream; feed it bytes until
/// [`SnapshotSkipper::done`].
#[derive(Debug, Clone)]
pub struct SnapshotSkipper {
    stage: Stage,
    /// Sessions listed in the snapshot.
    pub sessions: u64,
    /// Entries of the ACL cache.
    pub acl_entries: u64,
    /// Znodes, the root included.
    pub nodes: u64,
    /// Bytes consumed so far.
    pub bytes: usize,
}

impl Default for SnapshotSkipper {
    fn default() -> Self {
        Self::new()
    }
}

fn count(r: &mut Reader<'_>, what: &'static str) -> Result<u32, WireError> {
    let n = r.i32()?;
    if n < 0 {
        return Err(WireError::MalformedPacket(what));
    }
    Ok(n as u32)
}

impl SnapshotSkipper {
    /// A parser positioned at the start of the stream.
    pub fn new() -> Self {
        SnapshotSkipper {
            stage: Stage::SessionCount,
            sessions: 0,
            acl_entries: 0,
            nodes: 0,
            bytes: 0,
        }
    }

    /// True once the signature has been read.
    pub fn done(&self) -> bool {
        self.stage == Stage::Done
    }

    /// Consumes every complete item at the front of `buf` and returns how
    /// many bytes it used; the caller drops those and calls again with more
    /// bytes. Errors are unrecoverable (the stream is out of sync).
    pub fn feed(&mut self, buf: &[u8]) -> Result<usize, WireError> {
        let mut used = 0;
        while !self.done() {
            let mut r = Reader::new(&buf[used..]);
            match self.step(&mut r) {
                Ok(()) => {
                    used += r.position();
                }
                Err(WireError::Incomplete { .. }) => break,
                Err(e) => return Err(e),
            }
        }
        self.bytes += used;
        Ok(used)
    }

    /// Reads one item; on `Incomplete` the caller discards the partial read
    /// (the stage only advances on success).
    fn step(&mut self, r: &mut Reader<'_>) -> Result<(), WireError> {
        match self.stage {
            Stage::SessionCount => {
                let n = count(r, "negative snapshot session count")?;
                self.stage = Stage::Sessions(n);
            }
            Stage::Sessions(0) => self.stage = Stage::AclCount,
            Stage::Sessions(n) => {
                r.i64()?; // session id
                r.i32()?; // timeout
                self.sessions += 1;
                self.stage = Stage::Sessions(n - 1);
            }
            Stage::AclCount => {
                let n = count(r, "negative snapshot ACL map size")?;
                self.stage = Stage::Acls(n);
            }
            Stage::Acls(0) => self.stage = Stage::Nodes,
            Stage::Acls(n) => {
                r.i64()?; // ACL cache key
                let acls = r.i32()?;
                if acls < -1 {
                    return Err(WireError::BadJuteLength(acls));
                }
                for _ in 0..acls.max(0) {
                    r.i32()?; // perms
                    read_buffer(r)?; // scheme
                    read_buffer(r)?; // id
                }
                self.acl_entries += 1;
                self.stage = Stage::Acls(n - 1);
            }
            Stage::Nodes => {
                let path = read_buffer(r)?
                    .ok_or(WireError::MalformedPacket("null znode path in snapshot"))?;
                // The root is written with the empty path; the bare "/" that
                // no real node can carry marks the end of the tree.
                if path == b"/" {
                    self.stage = Stage::Signature;
                } else {
                    read_buffer(r)?; // data
                    r.i64()?; // ACL key
                              // StatPersisted: czxid, mzxid, ctime, mtime, version,
                              // cversion, aversion, ephemeralOwner, pzxid.
                    r.take(8 * 4 + 4 * 3 + 8 * 2)?;
                    self.nodes += 1;
                }
            }
            Stage::Signature => {
                let sig = read_buffer(r)?;
                if sig != Some(SIGNATURE) {
                    return Err(WireError::MalformedPacket(
                        "snapshot not followed by the BenWasHere signature",
                    ));
                }
                self.stage = Stage::Done;
            }
            Stage::Done => {}
        }
        Ok(())
    }
}
