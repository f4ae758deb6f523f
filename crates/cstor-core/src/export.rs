//! Rebuilding a layer's tar, byte for byte, from its tar-split metadata and the files in `diff/`.
//!
//! Segments are written verbatim; each file body is read from `overlay/<id>/diff/<name>`, opened
//! beneath the layer's `diff` directory (cap-std: no `..`, no absolute path, no symlink out), never
//! through a symlink in its last component, and checked against the recorded size and
//! CRC-64/GO-ISO. With verification off, bodies move fd to fd inside the kernel
//! (`copy_file_range` to a file, `sendfile` to a pipe or socket); with it on, the bytes must pass
//! through memory once anyway, so they are read, checksummed and written from one buffer.
//!
//! The sha256 of the output is the layer's `diff-digest` (tested against every fixture layer and
//! against `tar-split asm`).

use std::ffi::OsStr;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use cap_fs_ext::{FollowSymlinks, OpenOptionsFollowExt};
use cap_std::fs::{Dir, OpenOptions};

use crate::error::{Error, IoContext, Result};
use crate::layers::Layer;
use crate::store::Store;
use crate::tarsplit::{Decoder, Entry};

/// Segments are gathered up to this size before a write, so a tar of small files is not one
/// syscall per 512-byte header.
const OUTPUT_BUFFER_BYTES: usize = 1 << 20;

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
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportStats {
    /// Bytes of tar written.
    pub bytes: u64,
    /// File bodies taken from `diff/`.
    pub files: u64,
}

impl Store {
    /// Writes the tar of `layer` to `out` (any fd: file, pipe, socket).
    pub fn export_layer(
        &self,
        layer: &Layer,
        out: &mut File,
        options: ExportOptions,
    ) -> Result<ExportStats> {
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
        let diff_path = Path::new("overlay").join(layer.id()).join("diff");
        let diff = store_dir.open_dir(&diff_path).at(&diff_path)?;
        let mut writer = TarWriter::new(out, options);
        for entry in Decoder::new(split.into_std(), &split_path) {
            match entry? {
                Entry::Segment(bytes) => writer.segment(&bytes)?,
                Entry::File { size: 0, .. } => {}
                Entry::File { name, size, crc } => {
                    let name = body_path(&name, &split_path)?;
                    let body = open_body(&diff, &diff_path, &name, size)?;
                    writer.body(body, &diff_path.join(&name), size, crc)?;
                }
            }
        }
        writer.finish()
    }
}

/// The path of a body beneath `diff/`: tar names are relative (a leading `/` or `./` is dropped,
/// as `tar-split asm` does), and a `..` component is refused outright rather than resolved.
fn body_path(name: &[u8], split_path: &Path) -> Result<PathBuf> {
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
    if path.as_os_str().is_empty() {
        return Err(Error::corrupt(split_path, "a file body without a name"));
    }
    Ok(path)
}

fn open_body(diff: &Dir, diff_path: &Path, name: &Path, size: u64) -> Result<File> {
    let full = diff_path.join(name);
    let mut options = OpenOptions::new();
    options.read(true).follow(FollowSymlinks::No);
    let file = diff.open_with(name, &options).map_err(|e| {
        if e.raw_os_error() == Some(libc::EACCES) {
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
fn wait_writable(out: &File) -> Result<()> {
    let mut poll = libc::pollfd {
        fd: out.as_raw_fd(),
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

/// Writes tar bytes to an fd, buffering segments and moving bodies the cheapest way allowed.
struct TarWriter<'a> {
    out: &'a mut File,
    out_is_file: bool,
    verify: bool,
    buffer: Vec<u8>,
    stats: ExportStats,
}

impl<'a> TarWriter<'a> {
    fn new(out: &'a mut File, options: ExportOptions) -> Self {
        let out_is_file = out.metadata().map(|m| m.is_file()).unwrap_or(false);
        TarWriter {
            out,
            out_is_file,
            verify: options.verify,
            buffer: Vec::with_capacity(OUTPUT_BUFFER_BYTES),
            stats: ExportStats::default(),
        }
    }

    fn segment(&mut self, bytes: &[u8]) -> Result<()> {
        self.buffer.extend_from_slice(bytes);
        self.stats.bytes += bytes.len() as u64;
        if self.buffer.len() >= OUTPUT_BUFFER_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        let mut written = 0;
        while written < self.buffer.len() {
            match self.out.write(&self.buffer[written..]) {
                Ok(0) => return Err(Error::io("<output>", std::io::ErrorKind::WriteZero.into())),
                Ok(n) => written += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => wait_writable(self.out)?,
                Err(e) => return Err(Error::io("<output>", e)),
            }
        }
        self.buffer.clear();
        Ok(())
    }

    fn body(&mut self, mut body: File, path: &Path, size: u64, crc: Option<u64>) -> Result<()> {
        self.stats.files += 1;
        self.stats.bytes += size;
        if self.verify {
            return self.checked_body(&mut body, path, size, crc);
        }
        self.flush()?;
        let mut left = size;
        while left > 0 {
            let chunk = left.min(1 << 30) as usize;
            // SAFETY: both fds are open for the duration of the call; null offsets use and
            // advance the files' own positions.
            let moved = unsafe {
                if self.out_is_file {
                    libc::copy_file_range(
                        body.as_raw_fd(),
                        std::ptr::null_mut(),
                        self.out.as_raw_fd(),
                        std::ptr::null_mut(),
                        chunk,
                        0,
                    )
                } else {
                    libc::sendfile(
                        self.out.as_raw_fd(),
                        body.as_raw_fd(),
                        std::ptr::null_mut(),
                        chunk,
                    )
                }
            };
            match moved {
                0 => return Err(Error::corrupt(path, "file shrank while being exported")),
                n if n > 0 => left -= n as u64,
                _ => {
                    let err = std::io::Error::last_os_error();
                    match err.raw_os_error() {
                        Some(libc::EINTR) => continue,
                        Some(libc::EAGAIN) => wait_writable(self.out)?,
                        // The kernel cannot move data between these fds: copy in user space.
                        Some(libc::EINVAL | libc::ENOSYS | libc::EXDEV | libc::EOPNOTSUPP) => {
                            return self.read_body(&mut body, path, left, |_| {})
                        }
                        _ => return Err(Error::io("<output>", err)),
                    }
                }
            }
        }
        Ok(())
    }

    fn checked_body(
        &mut self,
        body: &mut File,
        path: &Path,
        size: u64,
        crc: Option<u64>,
    ) -> Result<()> {
        let mut digest = crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc64GoIso);
        self.read_body(body, path, size, |bytes| digest.update(bytes))?;
        let actual = digest.finalize();
        match crc {
            Some(expected) if expected != actual => Err(Error::corrupt(
                path,
                format!("CRC-64 mismatch: tar-split recorded {expected:016x}, the file has {actual:016x}"),
            )),
            _ => Ok(()),
        }
    }

    /// Appends `size` bytes of `body` to the output buffer, showing each chunk to `inspect`.
    fn read_body(
        &mut self,
        body: &mut File,
        path: &Path,
        size: u64,
        mut inspect: impl FnMut(&[u8]),
    ) -> Result<()> {
        let mut left = size;
        while left > 0 {
            if self.buffer.len() >= OUTPUT_BUFFER_BYTES {
                self.flush()?;
            }
            let start = self.buffer.len();
            let want = (OUTPUT_BUFFER_BYTES - start).min(left as usize);
            self.buffer.resize(start + want, 0);
            let n = loop {
                match body.read(&mut self.buffer[start..]) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(Error::io(path, e)),
                }
            };
            self.buffer.truncate(start + n);
            if n == 0 {
                return Err(Error::corrupt(path, "file shrank while being exported"));
            }
            inspect(&self.buffer[start..]);
            left -= n as u64;
        }
        Ok(())
    }

    fn finish(mut self) -> Result<ExportStats> {
        self.flush()?;
        Ok(self.stats)
    }
}
