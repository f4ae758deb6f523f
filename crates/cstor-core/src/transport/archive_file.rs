//! A tar archive written whole, for the archive destinations (`docker-archive:`,
//! `oci-archive:`): members go into a temp file beside the destination, which is synced and
//! renamed over the destination name only when the archive is complete. A copy that fails — a
//! damaged layer, a full disk — removes the temp file, so nothing partial ever carries the name.
//!
//! A member whose size is known only at its end (a compressed blob, named by its digest) is
//! written after a placeholder header that is filled in once the last byte is there: the
//! archive is a file, so the writer seeks back instead of buffering the blob.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use cap_std::ambient_authority;
use cap_std::fs::{Dir, OpenOptions, OpenOptionsExt};

use crate::error::{Error, IoContext, Result};
use crate::random;
use crate::transport::{BlobWriter, Descriptor};
use crate::write::atomic::sync_dir;

const BLOCK: u64 = 512;

/// How members look: file mode, and modification time (seconds).
#[derive(Debug, Clone, Copy)]
pub(crate) struct MemberStyle {
    pub file_mode: u32,
    pub mtime: u64,
}

/// An archive being written to a temp file.
pub(crate) struct ArchiveFile {
    dir: Dir,
    temp: PathBuf,
    name: PathBuf,
    /// The destination path, for errors.
    shown: PathBuf,
    file: Option<BufWriter<File>>,
    offset: u64,
    members: HashSet<String>,
    style: MemberStyle,
}

impl ArchiveFile {
    /// Starts an archive that will be `path` (whose directory must exist).
    pub fn create(path: &Path, style: MemberStyle) -> Result<ArchiveFile> {
        let name = path
            .file_name()
            .map(PathBuf::from)
            .ok_or_else(|| Error::InvalidArgument(format!("{} names no file", path.display())))?;
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let dir = Dir::open_ambient_dir(parent, ambient_authority()).at(parent)?;
        let temp = PathBuf::from(format!(
            ".{}.{}.tmp",
            name.to_string_lossy(),
            &random::hex_id()[..12]
        ));
        let mut options = OpenOptions::new();
        options.write(true).create_new(true).mode(0o644);
        let file = dir.open_with(&temp, &options).at(path)?.into_std();
        Ok(ArchiveFile {
            dir,
            temp,
            name,
            shown: path.to_owned(),
            file: Some(BufWriter::with_capacity(1 << 20, file)),
            offset: 0,
            members: HashSet::new(),
            style,
        })
    }

    pub fn has(&self, name: &str) -> bool {
        self.members.contains(name)
    }

    fn file(&mut self) -> Result<&mut BufWriter<File>> {
        let shown = &self.shown;
        self.file
            .as_mut()
            .ok_or_else(|| Error::io(shown, io::ErrorKind::BrokenPipe.into()))
    }

    /// Appends bytes of the current member.
    pub fn write_data(&mut self, bytes: &[u8]) -> Result<()> {
        let shown = self.shown.clone();
        self.file()?.write_all(bytes).at(shown)?;
        self.offset += bytes.len() as u64;
        Ok(())
    }

    /// A directory member.
    pub fn add_dir(&mut self, name: &str) -> Result<()> {
        let header = self.header(name, tar::EntryType::Directory, 0)?;
        self.write_data(header.as_bytes())?;
        self.members.insert(name.to_owned());
        Ok(())
    }

    /// A file member with the given content.
    pub fn add(&mut self, name: &str, bytes: &[u8]) -> Result<()> {
        let header = self.begin()?;
        self.write_data(bytes)?;
        self.end(header, name, bytes.len() as u64)
    }

    /// Starts a file member whose name and size come at its end; returns where its header goes.
    pub fn begin(&mut self) -> Result<u64> {
        let at = self.offset;
        self.write_data(&[0; BLOCK as usize])?;
        Ok(at)
    }

    /// Ends the member begun at `header_at`: pads its data and fills in its header.
    pub fn end(&mut self, header_at: u64, name: &str, size: u64) -> Result<()> {
        if self.offset - header_at - BLOCK != size {
            return Err(Error::InvalidArgument(format!(
                "{name}: {} bytes written, {size} declared",
                self.offset - header_at - BLOCK
            )));
        }
        let padding = (BLOCK - size % BLOCK) % BLOCK;
        self.write_data(&vec![0; padding as usize])?;
        let header = self.header(name, tar::EntryType::Regular, size)?;
        let shown = self.shown.clone();
        let end = self.offset;
        let file = self.file()?;
        file.seek(SeekFrom::Start(header_at))
            .and_then(|_| file.write_all(header.as_bytes()))
            .and_then(|()| file.seek(SeekFrom::Start(end)))
            .at(shown)?;
        self.members.insert(name.to_owned());
        Ok(())
    }

    fn header(&self, name: &str, kind: tar::EntryType, size: u64) -> Result<tar::Header> {
        let mut header = tar::Header::new_ustar();
        header
            .set_path(name)
            .map_err(|e| Error::InvalidArgument(format!("{name}: {e}")))?;
        header.set_entry_type(kind);
        header.set_size(size);
        header.set_mode(match kind {
            tar::EntryType::Directory => 0o755,
            _ => self.style.file_mode,
        });
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(self.style.mtime);
        header.set_cksum();
        Ok(header)
    }

    /// Ends the archive and puts it in place of the destination, durably. Nothing can be added
    /// afterwards.
    pub fn commit(&mut self) -> Result<()> {
        self.write_data(&[0; 2 * BLOCK as usize])?;
        let shown = self.shown.clone();
        let Some(buffered) = self.file.take() else {
            return Err(Error::io(&shown, io::ErrorKind::BrokenPipe.into()));
        };
        let result = buffered
            .into_inner()
            .map_err(|e| e.into_error())
            .and_then(|file| file.sync_all())
            .and_then(|()| self.dir.rename(&self.temp, &self.dir, &self.name))
            .at(&shown);
        if result.is_err() {
            let _ = self.dir.remove_file(&self.temp);
        }
        result?;
        sync_dir(&self.dir, &shown)
    }
}

impl Drop for ArchiveFile {
    /// An archive dropped before `commit` (a failed copy) leaves nothing behind.
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = self.dir.remove_file(&self.temp);
        }
    }
}

/// A blob being written as an archive member, named by `name_of` its descriptor at the end.
pub(crate) struct ArchiveBlob<'a> {
    archive: &'a mut ArchiveFile,
    header_at: u64,
    name_of: fn(&Descriptor) -> String,
}

impl ArchiveFile {
    /// A new blob member of the archive.
    pub fn new_blob(&mut self, name_of: fn(&Descriptor) -> String) -> Result<ArchiveBlob<'_>> {
        let header_at = self.begin()?;
        Ok(ArchiveBlob {
            archive: self,
            header_at,
            name_of,
        })
    }
}

impl Write for ArchiveBlob<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.archive.write_data(buf).map_err(io::Error::other)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl BlobWriter for ArchiveBlob<'_> {
    /// Ends the member; false when the archive had one of that name already (the same bytes,
    /// as the name is their digest).
    fn finish(self: Box<Self>, descriptor: &Descriptor) -> Result<bool> {
        let name = (self.name_of)(descriptor);
        let new = !self.archive.has(&name);
        self.archive.end(self.header_at, &name, descriptor.size)?;
        Ok(new)
    }
}
