//! Rebuilding a layer's tar, byte for byte, from its tar-split metadata and the files in `diff/`.
//!
//! Segments are written verbatim; each file body is read from `overlay/<id>/diff/<name>`, opened
//! beneath the layer's `diff` directory (cap-std: no `..`, no absolute path, no symlink out), never
//! through a symlink in its last component, and checked against the recorded size and
//! CRC-64/GO-ISO. With verification off, bodies move fd to fd inside the kernel
//! (`copy_file_range` to a file, `sendfile` to a pipe or socket); with it on, a large body is
//! read once in chunks for its CRC and each chunk is then moved the same way, so its bytes reach
//! user space once. Small bodies are buffered with the headers around them. An export into a
//! plain [`Write`] reads each body once and feeds it CRC and writer alike; one into a
//! [`Sha256Thread`] (for `verify`) hands over the very buffers the bodies were read into.
//!
//! The sha256 of the output is the layer's `diff-digest` (tested against every fixture layer and
//! against `tar-split asm`). A composefs layer's bodies are content objects named by its TOC
//! ([`crate::content::composefs`]).

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{Seek, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, FileTypeExt};
use std::path::{Component, Path, PathBuf};

use cap_fs_ext::{FollowSymlinks, OpenOptionsFollowExt};
use cap_std::fs::{Dir, OpenOptions, OpenOptionsExt};

use crate::content::sparse::{check_rebuildable, RebuildCheck};
use crate::content::tarsplit::{Decoder, Entry};
use crate::digest::thread::Sha256Thread;
use crate::error::{into_core_error, Error, IoContext, Result};
use crate::store::layers::Layer;
use crate::store::Store;

/// Segments are gathered up to this size before a write, so a tar of small files is not one
/// syscall per 512-byte header.
const OUTPUT_BUFFER_BYTES: usize = 1 << 20;

/// The buffers handed to a hashing thread are smaller: one is hashed on another core while it is
/// still in the cache of the core that read it (the few in flight fit a core's L2). Measured on
/// this project's 2-core CI machine, a 2 GB file read on one core and hashed on the other: SHA-256
/// at 1.32 GB/s with 1 MiB buffers, 1.78 GB/s with 128 KiB.
const HASH_BUFFER_BYTES: usize = 128 << 10;

/// Bodies up to this size join the output buffer with the headers around them: one write for
/// many small files costs less than a kernel copy per file.
const SMALL_BODY_BYTES: u64 = 64 << 10;

/// A large body is checksummed in chunks this size (cache-resident) before the kernel moves them.
const VERIFY_CHUNK_BYTES: u64 = 256 << 10;

/// Size asked for an output pipe. At Linux's default 64 KiB, writer and reader mostly wake each
/// other up: 5.5 GB through `| cat` took 5.1 s with sendfile into a 64 KiB pipe, 0.6 s into 1 MiB
/// (the most an unprivileged process may ask for by default).
const PIPE_BYTES: libc::c_int = 1 << 20;

#[derive(Debug, Clone, Copy)]
pub struct ExportOptions {
    /// Check every body's CRC-64 against the tar-split record (the default). Without it, bodies
    /// are copied by the kernel without passing through user space.
    pub verify: bool,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions { verify: true }
    }
}

/// What an export wrote.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, ts_rs::TS,
)]
pub struct ExportStats {
    /// Bytes of tar written.
    pub bytes: u64,
    /// File bodies taken from `diff/`.
    pub files: u64,
}

/// One piece of a layer's tar, in order: verbatim bytes (headers, padding, the end-of-archive
/// blocks), or the body of a file, opened from `diff/` and still to be read by whoever takes it.
#[derive(Debug)]
pub enum LayerPart {
    Segment(Vec<u8>),
    Body {
        /// The path beneath `diff/` it was read from: the entry's tar name, made relative (a
        /// composefs layer's: the content object).
        name: PathBuf,
        size: u64,
        /// CRC-64/GO-ISO that tar-split recorded; checking it is the taker's business.
        crc: Option<u64>,
        file: File,
    },
}

/// The parts of a layer's tar, read from its tar-split and `diff/` as they are needed. Empty
/// bodies (directories, links, empty files) are skipped: their headers are in the segments.
pub struct LayerParts {
    decoder: Decoder<std::fs::File>,
    diff: Dir,
    diff_path: PathBuf,
    split_path: PathBuf,
    /// A composefs layer's content objects by tar path (see [`crate::content::composefs`]); `None` when
    /// bodies are in `diff/` under their own names.
    objects: Option<HashMap<PathBuf, PathBuf>>,
    /// Set when the tar-split was not scanned for sparse members before the first part: each
    /// entry is checked as it is decoded.
    inline_check: Option<RebuildCheck>,
}

impl Iterator for LayerParts {
    type Item = Result<LayerPart>;

    fn next(&mut self) -> Option<Result<LayerPart>> {
        loop {
            let entry = self
                .decoder
                .next()?
                .and_then(|entry| match &mut self.inline_check {
                    Some(check) => check.entry(&entry).map(|()| entry),
                    None => Ok(entry),
                });
            let part = match entry {
                Err(e) => Err(e),
                Ok(Entry::Segment(bytes)) => Ok(LayerPart::Segment(bytes)),
                Ok(Entry::File { size: 0, .. }) => continue,
                Ok(Entry::File { name, size, crc }) => {
                    body_path(&name, &self.split_path).and_then(|name| {
                        let at = match &self.objects {
                            None => &name,
                            Some(objects) => objects.get(&name).ok_or_else(|| {
                                Error::corrupt(
                                    &self.split_path,
                                    format!(
                                        "the composefs layer's TOC names no content object for {}",
                                        name.display()
                                    ),
                                )
                            })?,
                        };
                        let file = open_body(&self.diff, &self.diff_path, at, size)?;
                        Ok(LayerPart::Body {
                            name: at.to_owned(),
                            size,
                            crc,
                            file,
                        })
                    })
                }
            };
            return Some(part);
        }
    }
}

impl LayerParts {
    /// The layer's `diff/`, relative to its store, for naming bodies in errors.
    pub fn diff_path(&self) -> &Path {
        &self.diff_path
    }
}

impl Store {
    /// The parts of `layer`'s tar, to be streamed or passed on as fds. A layer whose tar cannot
    /// be rebuilt from them (a sparse member) fails here, before any part is handed out.
    pub fn layer_parts(&self, layer: &Layer) -> Result<LayerParts> {
        self.parts(layer, SparseCheck::Before)
    }

    fn parts(&self, layer: &Layer, sparse: SparseCheck) -> Result<LayerParts> {
        let (mut split, split_path) = self.tar_split_file(layer)?;
        let inline_check = match sparse {
            SparseCheck::Before => {
                check_rebuildable(&split, &split_path, layer.id())?;
                split.rewind().at(&split_path)?;
                None
            }
            SparseCheck::Inline => Some(RebuildCheck::new(layer.id())),
        };
        let decoder = Decoder::new(split, &split_path);
        let diff_path = Path::new("overlay").join(layer.id()).join("diff");
        let store_dir = &self.dir(layer.store_index).dir;
        let diff = store_dir.open_dir(&diff_path).at(&diff_path)?;
        let objects = self
            .is_composefs_layer(layer)
            .then(|| self.composefs_objects(layer))
            .transpose()?;
        Ok(LayerParts {
            decoder,
            diff,
            diff_path,
            split_path,
            objects,
            inline_check,
        })
    }

    /// The decoder of `layer`'s tar-split and the file's path in the store; `EUNSUPPORTED` when
    /// the layer has none (a layer created empty and written in place: a container's).
    pub(crate) fn tar_split(&self, layer: &Layer) -> Result<(Decoder<std::fs::File>, PathBuf)> {
        let (split, split_path) = self.tar_split_file(layer)?;
        Ok((Decoder::new(split, &split_path), split_path))
    }

    /// `layer`'s tar-split file, opened, and its path in the store.
    fn tar_split_file(&self, layer: &Layer) -> Result<(std::fs::File, PathBuf)> {
        let store_dir = &self.dir(layer.store_index).dir;
        let split_path = Path::new("overlay-layers").join(format!("{}.tar-split.gz", layer.id()));
        let split = store_dir.open(&split_path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::Unsupported {
                what: format!(
                    "layer {} has no tar-split metadata to rebuild its tar from",
                    layer.id()
                ),
            },
            _ => Error::io(&split_path, e),
        })?;
        Ok((split.into_std(), split_path))
    }

    /// Writes the tar of `layer` to `out` (any fd: file, pipe, socket).
    pub fn export_layer(
        &self,
        layer: &Layer,
        out: &mut File,
        options: ExportOptions,
    ) -> Result<ExportStats> {
        self.write_layer(layer, TarWriter::new(out, options))
    }

    /// Writes the tar of `layer` into any writer — a hash, a buffer. Every body passes through
    /// user space (there is no fd for the kernel to move it to), read once for writer and CRC.
    pub fn export_layer_to_writer(
        &self,
        layer: &Layer,
        out: &mut dyn Write,
        options: ExportOptions,
    ) -> Result<ExportStats> {
        self.write_layer(layer, TarWriter::to_writer(out, options))
    }

    /// Hashes the tar of `layer` on the hashing thread of `hash`, which is given the buffers the
    /// tar is assembled in: every byte is read from `diff/` once and never copied after. A sparse
    /// member fails the export when it is reached (the digest is then never taken), which spares
    /// a pass over the whole tar-split before the first byte.
    pub fn export_layer_to_hash(
        &self,
        layer: &Layer,
        hash: &mut Sha256Thread,
        options: ExportOptions,
    ) -> Result<ExportStats> {
        let writer = TarWriter::with(Output::Hash(hash), Mover::ReadWrite, options);
        write_parts(self.parts(layer, SparseCheck::Inline)?, writer)
    }

    /// Writes `layer`'s tar through `writer`, stopping once its window is written.
    pub(crate) fn write_layer(&self, layer: &Layer, writer: TarWriter) -> Result<ExportStats> {
        write_parts(self.layer_parts(layer)?, writer)
    }
}

/// When a layer's tar-split is checked for the sparse members it cannot rebuild.
enum SparseCheck {
    /// In a pass of its own before the first part: nothing is handed out for such a layer.
    Before,
    /// Entry by entry as parts are made, for an output nobody sees before the export ends.
    Inline,
}

/// Writes the parts through `writer`, stopping once its window is written.
fn write_parts(mut parts: LayerParts, mut writer: TarWriter) -> Result<ExportStats> {
    while let Some(part) = parts.next() {
        if writer.is_past_window() {
            break;
        }
        match part? {
            LayerPart::Segment(bytes) => writer.segment(&bytes)?,
            LayerPart::Body {
                name,
                size,
                crc,
                file,
            } => writer.body(&file, &parts.diff_path.join(name), size, crc)?,
        }
    }
    writer.finish()
}

/// The path of an entry beneath the layer root (empty for the root itself): tar names are
/// relative (a leading `/` or `./` is dropped, as `tar-split asm` does), and a `..` component is
/// refused outright rather than resolved.
pub(crate) fn entry_path(name: &[u8], split_path: &Path) -> Result<PathBuf> {
    let mut path = PathBuf::new();
    for component in Path::new(OsStr::from_bytes(name)).components() {
        match component {
            Component::Normal(part) => path.push(part),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(Error::corrupt(
                    split_path,
                    format!(
                        "entry name {:?} leaves the layer",
                        String::from_utf8_lossy(name)
                    ),
                ))
            }
        }
    }
    Ok(path)
}

/// The path of a body beneath `diff/`, which cannot be the root.
fn body_path(name: &[u8], split_path: &Path) -> Result<PathBuf> {
    let path = entry_path(name, split_path)?;
    if path.as_os_str().is_empty() {
        return Err(Error::corrupt(split_path, "a file body without a name"));
    }
    Ok(path)
}

/// Opens a body for reading. `O_NONBLOCK` because a hostile or damaged `diff/` may hold a FIFO
/// where the tar-split names a file, and a blocking open of a FIFO waits for a writer forever
/// (the type check below then refuses it); `O_NOCTTY` so a terminal device is never adopted.
/// Neither flag changes how a regular file reads.
pub(crate) fn open_body(diff: &Dir, diff_path: &Path, name: &Path, size: u64) -> Result<File> {
    let full = diff_path.join(name);
    let mut options = OpenOptions::new();
    options
        .read(true)
        .follow(FollowSymlinks::No)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY);
    let file = diff.open_with(name, &options).map_err(|e| {
        let ours = [
            libc::EACCES,
            libc::EMFILE,
            libc::ENFILE,
            libc::ENOMEM,
            libc::EIO,
        ];
        if e.raw_os_error().is_some_and(|errno| ours.contains(&errno)) {
            // Refused or out of resources here, not a layer that changed.
            Error::io(&full, e)
        } else {
            // Missing, a symlink, or a path that would lead out of the layer: the layer no longer
            // holds what its tar-split recorded.
            Error::corrupt(
                &full,
                format!("cannot open the file body the tar-split names: {e}"),
            )
        }
    })?;
    let meta = file.metadata().at(&full)?;
    if !meta.is_file() {
        return Err(Error::corrupt(
            &full,
            "the tar-split names a body that is not a regular file",
        ));
    }
    if meta.len() != size {
        return Err(Error::corrupt(
            &full,
            format!("is {} bytes, the tar-split recorded {size}", meta.len()),
        ));
    }
    Ok(file.into_std())
}

/// Waits until `out` accepts more bytes. An fd shared with Node (its stdout, a pipe it reads) is
/// often non-blocking, and a write to it answers `EAGAIN` when the reader is behind.
fn wait_writable(out: RawFd) -> Result<()> {
    let mut poll = libc::pollfd {
        fd: out,
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: one valid pollfd, no timeout.
    if unsafe { libc::poll(&mut poll, 1, -1) } < 0 {
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(Error::io("<output>", err));
        }
    }
    Ok(())
}

/// How bodies move from `diff/` to the output, best first; a refusal by the kernel (`EINVAL`,
/// `EXDEV`, ...) steps down to the next one for the rest of the export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mover {
    /// File to file: may share extents (reflink) on btrfs/XFS, else copies in the kernel.
    CopyFileRange,
    /// File to pipe or socket: page-cache pages are referenced, not copied.
    Sendfile,
    /// `pread` into the output buffer and `write`.
    ReadWrite,
}

/// Where a [`TarWriter`]'s bytes go.
enum Output<'a> {
    /// A file, pipe or socket: large bodies can move fd to fd in the kernel.
    Fd(&'a mut File),
    /// Anything else that takes bytes; only [`Mover::ReadWrite`] can reach it.
    Writer(&'a mut dyn Write),
    /// A hash on its own thread, which takes the output buffer itself when it is full.
    Hash(&'a mut Sha256Thread),
}

impl Output<'_> {
    fn fd(&self) -> Option<RawFd> {
        match self {
            Output::Fd(file) => Some(file.as_raw_fd()),
            Output::Writer(_) | Output::Hash(_) => None,
        }
    }
}

/// Writes tar bytes to an fd, buffering segments and small bodies, moving large bodies with the
/// kernel; with verification on, a large body is read once for its CRC in cache-sized chunks and
/// each chunk then moved by the kernel, so its bytes are copied to user space once, not twice.
///
/// A window limits the output to a byte range of the tar (an HTTP `Range`): bytes before it are
/// skipped without being read, and the export stops at its end. A body the window cuts is not
/// checked against its CRC, which covers the body whole.
pub(crate) struct TarWriter<'a> {
    out: Output<'a>,
    mover: Mover,
    verify: bool,
    window: std::ops::Range<u64>,
    /// Offset in the tar of the next part.
    position: u64,
    buffer: Vec<u8>,
    /// The buffer is written out once it holds this much.
    buffer_bytes: usize,
    /// Where a large body's chunk is read for its CRC (empty until the first one).
    scratch: Vec<u8>,
    stats: ExportStats,
}

impl<'a> TarWriter<'a> {
    pub(crate) fn new(out: &'a mut File, options: ExportOptions) -> Self {
        let file_type = out.metadata().map(|m| m.file_type()).ok();
        let mover = match file_type {
            Some(t) if t.is_file() => Mover::CopyFileRange,
            _ => Mover::Sendfile,
        };
        if file_type.is_some_and(|t| t.is_fifo()) {
            // SAFETY: F_SETPIPE_SZ on an open fd; a refusal (over the user's pipe quota) only
            // leaves the pipe as it was.
            unsafe { libc::fcntl(out.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE_BYTES) };
        }
        TarWriter::with(Output::Fd(out), mover, options)
    }

    /// A writer into `out` that reads bodies into its buffer, since no kernel copy can reach it.
    pub(crate) fn to_writer(out: &'a mut dyn Write, options: ExportOptions) -> Self {
        TarWriter::with(Output::Writer(out), Mover::ReadWrite, options)
    }

    fn with(out: Output<'a>, mover: Mover, options: ExportOptions) -> Self {
        let buffer_bytes = match out {
            Output::Hash(_) => HASH_BUFFER_BYTES,
            Output::Fd(_) | Output::Writer(_) => OUTPUT_BUFFER_BYTES,
        };
        TarWriter {
            out,
            mover,
            verify: options.verify,
            window: 0..u64::MAX,
            position: 0,
            buffer: Vec::with_capacity(buffer_bytes),
            buffer_bytes,
            scratch: Vec::new(),
            stats: ExportStats::default(),
        }
    }

    /// Writes only bytes `window` of the tar.
    pub(crate) fn window(mut self, window: std::ops::Range<u64>) -> Self {
        self.window = window;
        self
    }

    /// Whether everything the window holds has been written.
    pub(crate) fn is_past_window(&self) -> bool {
        self.position >= self.window.end
    }

    /// The part of the next `len` bytes of the tar inside the window, relative to them.
    fn advance(&mut self, len: u64) -> std::ops::Range<u64> {
        let start = self.position;
        self.position += len;
        let from = self.window.start.saturating_sub(start).min(len);
        let to = self.window.end.saturating_sub(start).min(len);
        from..to.max(from)
    }

    pub(crate) fn segment(&mut self, bytes: &[u8]) -> Result<()> {
        let inside = self.advance(bytes.len() as u64);
        if inside.is_empty() {
            return Ok(());
        }
        self.buffer
            .extend_from_slice(&bytes[inside.start as usize..inside.end as usize]);
        self.stats.bytes += inside.end - inside.start;
        if self.buffer.len() >= self.buffer_bytes {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        let fd = self.out.fd();
        let out: &mut dyn Write = match &mut self.out {
            Output::Fd(file) => *file,
            Output::Writer(writer) => *writer,
            Output::Hash(hash) => {
                let mut next = hash.exchange(std::mem::take(&mut self.buffer));
                next.reserve(self.buffer_bytes);
                self.buffer = next;
                return Ok(());
            }
        };
        let mut written = 0;
        while written < self.buffer.len() {
            match out.write(&self.buffer[written..]) {
                Ok(0) => return Err(Error::io("<output>", std::io::ErrorKind::WriteZero.into())),
                Ok(n) => written += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => match fd {
                    Some(fd) => wait_writable(fd)?,
                    None => return Err(Error::io("<output>", e)),
                },
                // A writer that is a destination's blob passes its own error through.
                Err(e) => return Err(into_core_error(e, |e| Error::io("<output>", e))),
            }
        }
        self.buffer.clear();
        Ok(())
    }

    pub(crate) fn body(
        &mut self,
        body: &File,
        path: &Path,
        size: u64,
        crc: Option<u64>,
    ) -> Result<()> {
        let inside = self.advance(size);
        if inside.is_empty() {
            return Ok(());
        }
        let (from, to) = (inside.start, inside.end);
        self.stats.files += 1;
        self.stats.bytes += to - from;
        let whole = from == 0 && to == size;
        let mut digest = (self.verify && whole)
            .then(|| crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc64GoIso));
        if to - from <= SMALL_BODY_BYTES || self.mover == Mover::ReadWrite {
            self.buffer_range(body, path, from, to - from, digest.as_mut())?;
        } else {
            self.flush()?;
            let mut sent = from;
            while sent < to {
                let checked = match digest.as_mut() {
                    Some(digest) => {
                        let len = (to - sent).min(VERIFY_CHUNK_BYTES) as usize;
                        self.scratch.resize(VERIFY_CHUNK_BYTES as usize, 0);
                        read_exact_at(body, &mut self.scratch[..len], sent, path)?;
                        digest.update(&self.scratch[..len]);
                        sent + len as u64
                    }
                    None => to,
                };
                while sent < checked {
                    sent += self.move_range(body, path, sent, checked - sent)?;
                }
            }
        }
        match (crc, digest) {
            (Some(expected), Some(digest)) => check_crc(path, expected, digest.finalize()),
            _ => Ok(()),
        }
    }

    /// Moves up to `len` bytes of `body` from `offset` to the (flushed) output; returns how many.
    fn move_range(&mut self, body: &File, path: &Path, offset: u64, len: u64) -> Result<u64> {
        loop {
            let chunk = len.min(1 << 30) as usize;
            let out = match (self.mover, self.out.fd()) {
                (Mover::CopyFileRange | Mover::Sendfile, Some(out)) => out,
                _ => {
                    let len = chunk.min(OUTPUT_BUFFER_BYTES) as u64;
                    self.buffer_range(body, path, offset, len, None)?;
                    self.flush()?;
                    return Ok(len);
                }
            };
            let mut from = offset as libc::off_t;
            // SAFETY: both fds are open for the call; `from` is a valid offset the kernel advances
            // instead of the file position; a null output offset uses the output's position.
            let moved = unsafe {
                if self.mover == Mover::CopyFileRange {
                    libc::copy_file_range(
                        body.as_raw_fd(),
                        &mut from,
                        out,
                        std::ptr::null_mut(),
                        chunk,
                        0,
                    )
                } else {
                    libc::sendfile(out, body.as_raw_fd(), &mut from, chunk)
                }
            };
            if moved > 0 {
                return Ok(moved as u64);
            }
            if moved == 0 {
                return Err(Error::corrupt(path, "file shrank while being exported"));
            }
            let err = std::io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::EINTR) => {}
                Some(libc::EAGAIN) => wait_writable(out)?,
                Some(libc::EINVAL | libc::ENOSYS | libc::EXDEV | libc::EOPNOTSUPP) => {
                    self.mover = match self.mover {
                        Mover::CopyFileRange => Mover::Sendfile,
                        _ => Mover::ReadWrite,
                    };
                }
                _ => return Err(Error::io("<output>", err)),
            }
        }
    }

    /// Appends bytes `offset..offset + len` of `body` to the output buffer, feeding `digest`.
    fn buffer_range(
        &mut self,
        body: &File,
        path: &Path,
        offset: u64,
        len: u64,
        mut digest: Option<&mut crc_fast::Digest>,
    ) -> Result<()> {
        let mut done = 0;
        while done < len {
            if self.buffer.len() >= self.buffer_bytes {
                self.flush()?;
            }
            let start = self.buffer.len();
            let want = (self.buffer_bytes - start).min((len - done) as usize);
            append_exact_at(body, &mut self.buffer, want, offset + done, path)?;
            if let Some(digest) = digest.as_mut() {
                digest.update(&self.buffer[start..]);
            }
            done += want as u64;
        }
        Ok(())
    }

    pub(crate) fn finish(mut self) -> Result<ExportStats> {
        self.flush()?;
        Ok(self.stats)
    }
}

fn check_crc(path: &Path, expected: u64, actual: u64) -> Result<()> {
    if expected == actual {
        return Ok(());
    }
    Err(Error::corrupt(
        path,
        format!("CRC-64 mismatch: tar-split recorded {expected:016x}, the file has {actual:016x}"),
    ))
}

/// The whole of a (small) body, checked against its CRC when tar-split recorded one.
pub(crate) fn read_checked(
    file: &File,
    path: &Path,
    size: u64,
    crc: Option<u64>,
) -> Result<Vec<u8>> {
    let mut bytes = vec![0; size as usize];
    read_exact_at(file, &mut bytes, 0, path)?;
    if let Some(expected) = crc {
        let mut digest = crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc64GoIso);
        digest.update(&bytes);
        check_crc(path, expected, digest.finalize())?;
    }
    Ok(bytes)
}

/// Appends `len` bytes of `file` from `offset` to `buffer`, read straight into its spare
/// capacity: a verify passes every byte of a layer through here, and zero-filling the buffer
/// before each read cost as much as the CRC-64. On an error `buffer` keeps its length.
fn append_exact_at(
    file: &File,
    buffer: &mut Vec<u8>,
    len: usize,
    offset: u64,
    path: &Path,
) -> Result<()> {
    buffer.reserve(len);
    let start = buffer.len();
    let mut filled = 0;
    while filled < len {
        let spare = &mut buffer.spare_capacity_mut()[filled..len];
        match rustix::io::pread(file, spare, offset + filled as u64) {
            Ok(([], _)) => return Err(Error::corrupt(path, "file shrank while being exported")),
            Ok((read, _)) => filled += read.len(),
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(Error::io(path, e.into())),
        }
    }
    // SAFETY: the reads above initialized the `len` bytes after `start`, all within the capacity
    // `reserve` made.
    unsafe { buffer.set_len(start + len) };
    Ok(())
}

/// Fills `buf` from `file` at `offset`; a file that ends early no longer matches its tar-split.
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64, path: &Path) -> Result<()> {
    file.read_exact_at(buf, offset).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => {
            Error::corrupt(path, "file shrank while being exported")
        }
        _ => Error::io(path, e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStringExt;

    /// Every window of a tar made of segments and small and large bodies is the same slice of
    /// the whole, through a writer (read/write) and through a file (kernel copies), with the
    /// CRC checked of each body the window holds whole.
    #[test]
    fn a_window_writes_exactly_that_slice_of_the_tar() {
        let dir = tempfile::tempdir().unwrap();
        let small = dir.path().join("small");
        let large = dir.path().join("large");
        std::fs::write(&small, b"0123456789").unwrap();
        let large_bytes: Vec<u8> = (0..3 * SMALL_BODY_BYTES as usize)
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        std::fs::write(&large, &large_bytes).unwrap();
        let crc = |bytes: &[u8]| {
            let mut digest = crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc64GoIso);
            digest.update(bytes);
            digest.finalize()
        };
        let (small_crc, large_crc) = (crc(b"0123456789"), crc(&large_bytes));
        let write = |writer: &mut TarWriter| {
            writer.segment(b"head-1").unwrap();
            writer
                .body(&File::open(&small).unwrap(), &small, 10, Some(small_crc))
                .unwrap();
            writer.segment(b"head-2").unwrap();
            let size = large_bytes.len() as u64;
            writer
                .body(&File::open(&large).unwrap(), &large, size, Some(large_crc))
                .unwrap();
            writer.segment(b"end").unwrap();
        };
        let mut whole = Vec::new();
        let mut writer = TarWriter::to_writer(&mut whole, ExportOptions::default());
        write(&mut writer);
        writer.finish().unwrap();
        let n = whole.len() as u64;
        for window in [0..n, 0..3, 4..9, 6..16, 10..30, 20..n - 2, n - 3..n, 5..5] {
            let mut bytes = Vec::new();
            let mut writer =
                TarWriter::to_writer(&mut bytes, ExportOptions::default()).window(window.clone());
            write(&mut writer);
            let stats = writer.finish().unwrap();
            let expected = &whole[window.start as usize..window.end as usize];
            assert_eq!(bytes, expected, "window {window:?}");
            assert_eq!(stats.bytes, expected.len() as u64);

            let mut file = tempfile::tempfile().unwrap();
            let mut writer =
                TarWriter::new(&mut file, ExportOptions { verify: false }).window(window.clone());
            write(&mut writer);
            writer.finish().unwrap();
            let mut copied = Vec::new();
            use std::io::{Read, Seek};
            file.rewind().unwrap();
            file.read_to_end(&mut copied).unwrap();
            assert_eq!(copied, expected, "window {window:?} into a file");
        }
    }

    /// A FIFO where the tar-split names a file body once made every export and TOC of the layer
    /// wait forever in `open` (found by `__test__/hostile.test.ts`).
    #[test]
    fn a_fifo_in_place_of_a_body_is_corrupt_not_a_hang() {
        let temp = tempfile::tempdir().unwrap();
        let fifo =
            std::ffi::CString::new(temp.path().join("body").into_os_string().into_vec()).unwrap();
        // SAFETY: a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        let diff = Dir::open_ambient_dir(temp.path(), cap_std::ambient_authority()).unwrap();
        let err = open_body(&diff, Path::new("diff"), Path::new("body"), 0).unwrap_err();
        assert_eq!(err.code(), "ECORRUPT");
        assert!(err.to_string().contains("not a regular file"), "{err}");
    }
}
