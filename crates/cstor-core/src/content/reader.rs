//! A layer's tar as a `Read + Seek` stream, for code that parses tar (the [`crate::content::toc`],
//! the [`crate::verify::metadata`] check).
//!
//! It reads the same [`LayerParts`] an export writes, so what it yields is the exported tar byte
//! for byte. Seeking is forward only and costs nothing inside a body — a tar parser skipping file
//! contents never reads them from `diff/` — which is all `tar::Archive::entries_with_seek` asks.
//! [`LayerReader::headers_only`] reads the tar-split alone: bodies are holes that can be skipped
//! but not read, so nothing in `diff/` is opened. Core errors travel inside `io::Error` and come
//! back out with [`crate::error::into_core_error`].
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
use crate::content::sparse::RebuildCheck;
use crate::content::tarsplit::{Decoder, Entry};

/// The most a tar parser may read between two seeks outside an entry's content: one header and
/// its metadata entry. Real ones are a few KiB (a long name) to a few hundred (every xattr of a
/// file); a header declaring gigabytes, over a tar-split that inflates to gigabytes of segments
/// or a sparse file in `diff/`, must not become that much memory.
pub const MAX_METADATA_RUN: u64 = 16 << 20;

pub struct LayerReader {
    source: Source,
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

/// Where the parts come from: bodies opened from `diff/`, or the tar-split alone.
enum Source {
    Parts(LayerParts),
    /// With the check that stops at a sparse member: its body in the tar is not the size the
    /// tar-split records, so every header after it would be read from the wrong place.
    TarSplit(Decoder<File>, RebuildCheck),
}

impl Source {
    fn next(&mut self) -> Option<crate::Result<Current>> {
        match self {
            Source::Parts(parts) => Some(parts.next()?.map(|part| match part {
                LayerPart::Segment(bytes) => Current::Segment { bytes, at: 0 },
                LayerPart::Body { file, size, .. } => Current::Body {
                    file: Some(file),
                    at: 0,
                    size,
                },
            })),
            Source::TarSplit(decoder, check) => Some(decoder.next()?.and_then(|entry| {
                check.entry(&entry)?;
                Ok(match entry {
                    Entry::Segment(bytes) => Current::Segment { bytes, at: 0 },
                    Entry::File { size, .. } => Current::Body {
                        file: None,
                        at: 0,
                        size,
                    },
                })
            })),
        }
    }
}

enum Current {
    Segment {
        bytes: Vec<u8>,
        at: usize,
    },
    /// A file body; `None` in a headers-only reader, where it can be skipped but not read.
    Body {
        file: Option<File>,
        at: u64,
        size: u64,
    },
    End,
}

impl LayerReader {
    pub fn new(parts: LayerParts) -> Self {
        LayerReader::of(Source::Parts(parts))
    }

    /// A reader of the tar's headers alone, from the tar-split (`Store::tar_split`), for a
    /// parser that seeks over every body (`tar::Archive::entries_with_seek`): reading a body is an
    /// error, so nothing in `diff/` is opened or read. It keeps the metadata limit of
    /// [`LayerReader::for_parser`]. A sparse member of layer `layer` (whose headers cannot be
    /// told apart from its body here) is an [`crate::Error::Unrebuildable`].
    pub fn headers_only(decoder: Decoder<File>, layer: &str) -> Self {
        let source = Source::TarSplit(decoder, RebuildCheck::new(layer));
        let mut reader = LayerReader::of(source);
        reader.run = Some((0, ContentReads::default()));
        reader
    }

    fn of(source: Source) -> Self {
        LayerReader {
            source,
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
            self.current = match self.source.next() {
                None => Current::End,
                Some(Err(e)) => return Err(std::io::Error::other(e)),
                Some(Ok(current)) => current,
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
                        let Some(file) = file else {
                            return Err(std::io::Error::new(
                                std::io::ErrorKind::InvalidInput,
                                "a headers-only layer reader cannot read a file body",
                            ));
                        };
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
