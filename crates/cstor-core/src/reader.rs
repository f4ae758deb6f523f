//! A layer's tar as a `Read + Seek` stream, for code that parses tar (the [`crate::toc`]).
//!
//! It reads the same [`LayerParts`] an export writes, so what it yields is the exported tar byte
//! for byte. Seeking is forward only and costs nothing inside a body — a tar parser skipping file
//! contents never reads them from `diff/` — which is all `tar::Archive::entries_with_seek` asks.
//! Core errors travel inside `io::Error` and come back out with [`into_core_error`].

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;

use crate::error::Error;
use crate::export::{LayerPart, LayerParts};

pub struct LayerReader {
    parts: LayerParts,
    current: Current,
    position: u64,
}

enum Current {
    Segment { bytes: Vec<u8>, at: usize },
    Body { file: File, at: u64, size: u64 },
    End,
}

impl LayerReader {
    pub fn new(parts: LayerParts) -> Self {
        LayerReader {
            parts,
            current: Current::Segment {
                bytes: Vec::new(),
                at: 0,
            },
            position: 0,
        }
    }

    /// Moves to the next part when the current one is used up; false at the end of the tar.
    fn fill(&mut self) -> std::io::Result<bool> {
        loop {
            let used_up = match &self.current {
                Current::Segment { bytes, at } => *at == bytes.len(),
                Current::Body { at, size, .. } => at == size,
                Current::End => return Ok(false),
            };
            if !used_up {
                return Ok(true);
            }
            self.current = match self.parts.next() {
                None => Current::End,
                Some(Err(e)) => return Err(std::io::Error::other(e)),
                Some(Ok(LayerPart::Segment(bytes))) => Current::Segment { bytes, at: 0 },
                Some(Ok(LayerPart::Body { file, size, .. })) => Current::Body { file, at: 0, size },
            };
        }
    }

    /// Moves up to `max` bytes forward, copying them into `out` when given.
    fn advance(&mut self, max: u64, out: Option<&mut [u8]>) -> std::io::Result<usize> {
        if !self.fill()? {
            return Ok(0);
        }
        let n = match &mut self.current {
            Current::Segment { bytes, at } => {
                let n = (bytes.len() - *at).min(max as usize);
                if let Some(out) = out {
                    out[..n].copy_from_slice(&bytes[*at..*at + n]);
                }
                *at += n;
                n
            }
            Current::Body { file, at, size } => {
                let want = (*size - *at).min(max);
                let n = match out {
                    Some(out) => {
                        let n = file.read_at(&mut out[..want as usize], *at)?;
                        if n == 0 {
                            return Err(std::io::ErrorKind::UnexpectedEof.into());
                        }
                        n
                    }
                    None => want as usize,
                };
                *at += n as u64;
                n
            }
            Current::End => 0,
        };
        self.position += n as u64;
        Ok(n)
    }
}

impl Read for LayerReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let max = buf.len() as u64;
        self.advance(max, Some(buf))
    }
}

impl Seek for LayerReader {
    /// Only forward moves from the current position (and asking where it is) are possible.
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        let SeekFrom::Current(delta) = pos else {
            return Err(std::io::ErrorKind::Unsupported.into());
        };
        let mut left = u64::try_from(delta).map_err(|_| std::io::ErrorKind::Unsupported)?;
        while left > 0 {
            match self.advance(left, None)? {
                0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                n => left -= n as u64,
            }
        }
        Ok(self.position)
    }
}

/// The core error an `io::Error` from a [`LayerReader`] carries, or `fallback` for any other.
pub fn into_core_error(e: std::io::Error, fallback: impl FnOnce(std::io::Error) -> Error) -> Error {
    if e.get_ref().is_none() {
        return fallback(e);
    }
    let kind = e.kind();
    match e.into_inner().map(|inner| inner.downcast::<Error>()) {
        Some(Ok(core)) => *core,
        Some(Err(other)) => fallback(std::io::Error::new(kind, other)),
        None => fallback(kind.into()),
    }
}
