//! A layer's tar as a `Read + Seek` stream, for code that parses tar (the [`crate::content::toc`]).
//!
//! It reads the same [`LayerParts`] an export writes, so what it yields is the exported tar byte
//! for byte. Seeking is forward only and costs nothing inside a body — a tar parser skipping file
//! contents never reads them from `diff/` — which is all `tar::Archive::entries_with_seek` asks.
//! Core errors travel inside `io::Error` and come back out with
//! [`crate::error::into_core_error`].
//!
//! A tar parser reads a metadata entry (a PAX header, a GNU long name) whole into memory, as long
//! as its header says. [`LayerReader::for_parser`] bounds that for a hostile tar-split: between
//! two seeks — `tar::Archive::entries_with_seek` seeks to every header — it lets at most
//! [`MAX_METADATA_RUN`] bytes be read, except while the caller reads an entry's content through
//! [`ContentReads::during`].

use std::cell::Cell;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::rc::Rc;

use crate::content::export::{LayerPart, LayerParts};

/// The most a tar parser may read between two seeks outside an entry's content: one header and
/// its metadata entry. Real ones are a few KiB (a long name) to a few hundred (every xattr of a
/// file); a header declaring gigabytes, over a tar-split that inflates to gigabytes of segments
/// or a sparse file in `diff/`, must not become that much memory.
pub const MAX_METADATA_RUN: u64 = 16 << 20;

pub struct LayerReader {
    parts: LayerParts,
    current: Current,
    position: u64,
    /// Set by [`LayerReader::for_parser`]: bytes read since the last seek, checked against
    /// [`MAX_METADATA_RUN`] unless content reads are allowed.
    run: Option<(u64, ContentReads)>,
}

/// Allows reads of an entry's content through a [`LayerReader::for_parser`] limit.
#[derive(Clone, Default)]
pub struct ContentReads(Rc<Cell<bool>>);

impl ContentReads {
    /// Runs `read`, which reads the content of the entry just parsed, without the limit.
    pub fn during<T>(&self, read: impl FnOnce() -> T) -> T {
        self.0.set(true);
        let result = read();
        self.0.set(false);
        result
    }
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
            run: None,
        }
    }

    /// A reader for a tar parser that seeks to every header, with the metadata limit of the
    /// module documentation; the [`ContentReads`] lifts it while the caller reads content.
    pub fn for_parser(parts: LayerParts) -> (Self, ContentReads) {
        let content = ContentReads::default();
        let mut reader = LayerReader::new(parts);
        reader.run = Some((0, content.clone()));
        (reader, content)
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
        let n = self.advance(max, Some(buf))?;
        if let Some((run, content)) = &mut self.run {
            if !content.0.get() {
                *run += n as u64;
                if *run > MAX_METADATA_RUN {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!(
                            "a tar header declares more than {MAX_METADATA_RUN} bytes of metadata"
                        ),
                    ));
                }
            }
        }
        Ok(n)
    }
}

impl Seek for LayerReader {
    /// Only forward moves from the current position (and asking where it is) are possible.
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        let SeekFrom::Current(delta) = pos else {
            return Err(std::io::ErrorKind::Unsupported.into());
        };
        if let Some((run, _)) = &mut self.run {
            *run = 0;
        }
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
