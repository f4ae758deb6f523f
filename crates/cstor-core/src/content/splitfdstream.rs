//! splitfdstream: a byte stream whose large runs are left out and passed as file descriptors.
//!
//! The stream is a sequence of chunks, each opening with an `i64` little-endian prefix: `-n`
//! means `n` bytes of inline data follow; `k ≥ 0` means "the whole content of fd `k`" of the fd
//! array sent alongside. Convention (the one the seeds' Rust side uses): the stream itself is fd 0
//! of that array, so content fds are numbered from 1, and `content[k - 1]` is fd `k` in this API.
//!
//! A layer as a splitfdstream is its tar with tar-split's segments (and bodies under the inline
//! threshold) inline and every other file body as an fd open on `diff/`: a receiver rebuilds the
//! exact tar, or reflinks the fds into its own store, without the content crossing a socket.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::content::export::{ExportOptions, ExportStats, LayerPart, TarWriter};
use crate::error::{Error, IoContext, Result};
use crate::store::layers::Layer;
use crate::store::Store;

/// Bodies up to this size travel inline by default: an fd costs more than 4 KiB of bytes.
pub const DEFAULT_INLINE_THRESHOLD: u64 = 4096;

/// The longest inline chunk a reader accepts (writers split longer runs): a hostile prefix must
/// not make a reader allocate gigabytes.
pub const MAX_INLINE_CHUNK: usize = 8 << 20;

/// Writes chunks, joining consecutive inline bytes into one chunk.
pub struct Writer<W: Write> {
    out: W,
    pending: Vec<u8>,
}

impl<W: Write> Writer<W> {
    pub fn new(out: W) -> Self {
        Writer {
            out,
            pending: Vec::new(),
        }
    }

    pub fn inline(&mut self, mut bytes: &[u8]) -> std::io::Result<()> {
        while !bytes.is_empty() {
            let room = MAX_INLINE_CHUNK - self.pending.len();
            let (now, later) = bytes.split_at(room.min(bytes.len()));
            self.pending.extend_from_slice(now);
            bytes = later;
            if self.pending.len() == MAX_INLINE_CHUNK {
                self.flush_inline()?;
            }
        }
        Ok(())
    }

    /// A chunk standing for the whole content of fd `index` (content fds count from 1).
    pub fn fd(&mut self, index: u64) -> std::io::Result<()> {
        self.flush_inline()?;
        let index = i64::try_from(index).map_err(|_| std::io::ErrorKind::InvalidInput)?;
        self.out.write_all(&index.to_le_bytes())
    }

    fn flush_inline(&mut self) -> std::io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let prefix = -(self.pending.len() as i64);
        self.out.write_all(&prefix.to_le_bytes())?;
        self.out.write_all(&self.pending)?;
        self.pending.clear();
        Ok(())
    }

    pub fn finish(mut self) -> std::io::Result<W> {
        self.flush_inline()?;
        self.out.flush()?;
        Ok(self.out)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chunk {
    Inline(Vec<u8>),
    /// The content of fd `k` (≥ 1: fd 0 is the stream itself).
    Fd(u64),
}

/// Reads chunks; strict: a cut prefix or chunk, an oversized inline chunk or fd 0 is corrupt.
pub struct Reader<'a, R: Read> {
    input: R,
    shown: &'a Path,
}

impl<'a, R: Read> Reader<'a, R> {
    /// `shown` names the stream in errors.
    pub fn new(input: R, shown: &'a Path) -> Self {
        Reader { input, shown }
    }

    fn corrupt(&self, detail: impl Into<String>) -> Error {
        Error::corrupt(self.shown, detail)
    }
}

impl<R: Read> Iterator for Reader<'_, R> {
    type Item = Result<Chunk>;

    fn next(&mut self) -> Option<Result<Chunk>> {
        let mut prefix = [0u8; 8];
        let mut got = 0;
        while got < prefix.len() {
            match self.input.read(&mut prefix[got..]) {
                Ok(0) if got == 0 => return None,
                Ok(0) => return Some(Err(self.corrupt("the stream ends inside a chunk prefix"))),
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Some(Err(Error::io(self.shown, e))),
            }
        }
        let prefix = i64::from_le_bytes(prefix);
        if prefix >= 0 {
            return Some(match prefix {
                0 => Err(self.corrupt("a chunk names fd 0, the stream itself")),
                k => Ok(Chunk::Fd(k as u64)),
            });
        }
        let len = prefix.unsigned_abs();
        if len > MAX_INLINE_CHUNK as u64 {
            return Some(Err(self.corrupt(format!(
                "an inline chunk of {len} bytes (at most {MAX_INLINE_CHUNK})"
            ))));
        }
        let mut bytes = vec![0; len as usize];
        Some(match self.input.read_exact(&mut bytes) {
            Ok(()) => Ok(Chunk::Inline(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                Err(self.corrupt("the stream ends inside an inline chunk"))
            }
            Err(e) => Err(Error::io(self.shown, e)),
        })
    }
}

/// A layer as a splitfdstream: the stream (an anonymous memory file, positioned at its start)
/// and the content fds it refers to, in order (`content[k - 1]` is fd `k`).
pub struct LayerStream {
    pub stream: File,
    pub content: Vec<File>,
}

impl Store {
    /// Encodes `layer`'s tar as a splitfdstream; bodies up to `inline_threshold` bytes go
    /// inline, checked against their CRC, larger ones as fds (their CRC is the receiver's to
    /// check, as with [`Store::layer_parts`]).
    pub fn layer_splitfdstream(&self, layer: &Layer, inline_threshold: u64) -> Result<LayerStream> {
        let memfd = rustix::fs::memfd_create(
            format!("cstor-layer-{}", layer.id()),
            rustix::fs::MemfdFlags::CLOEXEC,
        )
        .map_err(|e| Error::io("memfd", e.into()))?;
        let shown = Path::new("<splitfdstream>");
        let mut writer = Writer::new(BufWriter::new(File::from(memfd)));
        let mut content = Vec::new();
        let mut parts = self.layer_parts(layer)?;
        while let Some(part) = parts.next() {
            let part = part.map_err(|e| too_many_fds(e, layer, content.len()))?;
            match part {
                LayerPart::Segment(bytes) => writer.inline(&bytes).at(shown)?,
                LayerPart::Body {
                    name,
                    size,
                    crc,
                    file,
                } if size <= inline_threshold => {
                    let path = parts.diff_path().join(name);
                    let bytes = crate::content::export::read_checked(&file, &path, size, crc)?;
                    writer.inline(&bytes).at(shown)?;
                }
                LayerPart::Body { file, .. } => {
                    content.push(file);
                    writer.fd(content.len() as u64).at(shown)?;
                }
            }
        }
        let mut stream = writer
            .finish()
            .and_then(|buffered| buffered.into_inner().map_err(|e| e.into_error()))
            .at(shown)?;
        stream.rewind().at(shown)?;
        Ok(LayerStream { stream, content })
    }
}

/// Names the fd limit when a layer has more large bodies than the process may hold open.
fn too_many_fds(e: Error, layer: &Layer, open: usize) -> Error {
    match e {
        Error::Io { path, source } if source.raw_os_error() == Some(libc::EMFILE) => Error::Io {
            path,
            source: std::io::Error::other(format!(
                "layer {} has more file bodies above the inline threshold than this process may \
                 hold open ({open} were): raise the fd limit (ulimit -n) or the inline \
                 threshold, or stream the layer in parts",
                layer.id()
            )),
        },
        e => e,
    }
}

/// Rebuilds what the splitfdstream in `stream` stands for into `out` (a file, pipe or socket),
/// moving fd contents with the kernel as an export does. The stream is read from its start with
/// positioned reads, so the caller's file offset (shared with any duplicate) is left alone. The
/// result of a layer's stream is its exact tar.
pub fn assemble(stream: &File, content: &[File], out: &mut File) -> Result<ExportStats> {
    let shown = Path::new("<splitfdstream>");
    let stream = BufReader::with_capacity(
        1 << 20,
        FromStart {
            file: stream,
            at: 0,
        },
    );
    let mut writer = TarWriter::new(out, ExportOptions { verify: false });
    for chunk in Reader::new(stream, shown) {
        match chunk? {
            Chunk::Inline(bytes) => writer.segment(&bytes)?,
            Chunk::Fd(k) => {
                let file = usize::try_from(k - 1)
                    .ok()
                    .and_then(|i| content.get(i))
                    .ok_or_else(|| {
                        Error::corrupt(
                            shown,
                            format!("a chunk names fd {k}, but {} were given", content.len()),
                        )
                    })?;
                let size = file.metadata().at(shown)?.len();
                let label = format!("<fd {k}>");
                writer.body(file, Path::new(&label), size, None)?;
            }
        }
    }
    writer.finish()
}

/// Reads a file from offset 0 with `pread`, never moving its shared file offset.
struct FromStart<'a> {
    file: &'a File,
    at: u64,
}

impl Read for FromStart<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.file.read_at(buf, self.at)?;
        self.at += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(bytes: &[u8]) -> Vec<Result<Chunk>> {
        Reader::new(bytes, Path::new("test")).collect()
    }

    #[test]
    fn round_trips_and_joins_inline_runs() {
        let mut writer = Writer::new(Vec::new());
        writer.inline(b"ab").unwrap();
        writer.inline(b"c").unwrap();
        writer.fd(1).unwrap();
        writer.fd(2).unwrap();
        writer.inline(b"").unwrap();
        writer.inline(b"z").unwrap();
        let bytes = writer.finish().unwrap();
        let read: Vec<Chunk> = chunks(&bytes).into_iter().map(|c| c.unwrap()).collect();
        assert_eq!(
            read,
            [
                Chunk::Inline(b"abc".to_vec()),
                Chunk::Fd(1),
                Chunk::Fd(2),
                Chunk::Inline(b"z".to_vec())
            ]
        );
    }

    #[test]
    fn refuses_what_no_writer_makes() {
        let cut_prefix = [0xffu8; 5];
        let cut_chunk = [(-10i64).to_le_bytes().as_slice(), b"abc"].concat();
        let huge = (i64::MIN).to_le_bytes();
        let fd_zero = 0i64.to_le_bytes();
        for bad in [&cut_prefix[..], &cut_chunk, &huge, &fd_zero] {
            let read = chunks(bad);
            assert!(
                matches!(read.last(), Some(Err(Error::Corrupt { .. }))),
                "{bad:?}: {read:?}"
            );
        }
        assert!(chunks(&[]).is_empty());
    }
}
