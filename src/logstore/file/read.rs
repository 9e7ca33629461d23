//! Sequential frame reading over one segment file, for reads and for the
//! cut search of `truncate_after`. Every frame is checked; a bad one in a
//! region recovery already validated is corruption.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::disk::{io_err, read_up_to};
use super::format::{decode_frame, frame_body_len, zeroed, FRAME_HEADER_LEN};
use crate::logstore::{Entry, LogError};

/// Reads the frames of one segment from `offset` up to `end`.
pub(crate) struct FrameReader {
    path: PathBuf,
    r: BufReader<File>,
    offset: u64,
    end: u64,
}

impl FrameReader {
    /// Opens `path` positioned at `offset`; frames are read up to `end` (the
    /// validated length: nothing past it is trusted).
    pub(crate) fn open(path: &Path, offset: u64, end: u64) -> Result<FrameReader, LogError> {
        let f = File::open(path).map_err(io_err(path, "open"))?;
        let mut r = BufReader::with_capacity(64 << 10, f);
        r.seek(SeekFrom::Start(offset))
            .map_err(io_err(path, "seek"))?;
        Ok(FrameReader {
            path: path.to_path_buf(),
            r,
            offset,
            end,
        })
    }

    fn corrupt(&self, offset: u64, reason: impl Into<String>) -> LogError {
        LogError::Corrupt {
            path: self.path.clone(),
            offset,
            reason: reason.into(),
        }
    }

    /// The next frame: its offset and entries; `None` at `end`.
    pub(crate) fn next_frame(&mut self) -> Result<Option<(u64, Vec<Entry>)>, LogError> {
        if self.offset >= self.end {
            return Ok(None);
        }
        let at = self.offset;
        let mut h = [0u8; FRAME_HEADER_LEN as usize];
        if read_up_to(&mut self.r, &mut h, &self.path)? < h.len() {
            return Err(self.corrupt(at, "file ends inside a frame header"));
        }
        let Some(len) = frame_body_len(&h) else {
            return Err(self.corrupt(at, "implausible frame length"));
        };
        if at + FRAME_HEADER_LEN + len as u64 > self.end {
            return Err(self.corrupt(at, "frame runs past the validated end"));
        }
        let mut body = zeroed(len);
        self.r
            .read_exact(&mut body)
            .map_err(io_err(&self.path, "read"))?;
        let entries = decode_frame(&h, body.freeze()).map_err(|r| self.corrupt(at, r))?;
        self.offset = at + FRAME_HEADER_LEN + len as u64;
        Ok(Some((at, entries)))
    }
}
