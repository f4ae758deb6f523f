//! Applying a layer tar to a new layer's `diff/`, the way containers/storage's overlay driver
//! does, while recording the tar-split that lets the layer be exported bit for bit.
//!
//! One pass over the stream does everything podman's `ApplyDiff` does: it detects and undoes the
//! compression (gzip, zstd), digests the compressed and the uncompressed bytes, notes every uid
//! and gid, writes the entries into `diff/` — `.wh.x` becomes a character device 0:0, `.wh..wh..opq`
//! the opaque xattr, unless the store uses a mount program, whose `diff/` keeps the AUFS names —
//! and splits the tar into segments (headers, padding, end blocks: kept verbatim) and file bodies
//! (kept as files, with their CRC-64/GO-ISO), in the order and grouping Go's tar-split uses.
//!
//! The splitting taps the byte stream beneath the tar parser: every byte the parser reads outside
//! a file body lands in the pending segment, so nothing of the input is lost whatever extensions
//! (PAX, GNU long names) the tar uses. Every path is resolved beneath `diff/` (cap-std), so a
//! name with `..`, an absolute symlink or a hard link out of the layer is refused, never followed.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;

use cap_std::fs::Dir;
use rustix::fs::{AtFlags, FileType, Mode, OFlags, Timespec, Timestamps, XattrFlags};
use rustix::io::Errno;

use crate::content::compression::Compression;
use crate::content::sparse::{self, PaxSparse};
use crate::content::tarsplit::Encoder;
use crate::content::whiteout::{self, Marker};
use crate::digest::Hashing;
use crate::error::{Error, IoContext, Result};

/// How `diff/` records deletions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiffWhiteouts {
    /// Native overlay: char device 0:0 and the opaque xattr under this namespace prefix
    /// (`trusted.` for root, `user.` for a rootless store).
    Overlay { xattr_prefix: &'static str },
    /// A mount program (fuse-overlayfs) reads the tar's own `.wh.` files.
    Aufs,
}

/// How a layer is written into `diff/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApplyOptions {
    pub whiteouts: DiffWhiteouts,
    /// Writing in a user namespace, as rootless podman does (containers/storage's `InUserNS`):
    /// device nodes are not made (the tar-split still records them, so the layer exports
    /// whole), and an owner the namespace does not map is an error naming the ID.
    pub user_namespace: bool,
}

/// What applying a layer produced: the figures `layers.json` records, and the tar-split.
#[derive(Debug, Clone)]
pub struct Applied {
    pub compression: Compression,
    pub compressed_digest: String,
    pub compressed_size: u64,
    pub diff_digest: String,
    pub diff_size: u64,
    pub uids: Vec<u32>,
    pub gids: Vec<u32>,
    /// The gzipped tar-split of the layer.
    pub tar_split: Vec<u8>,
}

/// Applies the (possibly compressed) layer tar `input` to the empty directory `diff`.
pub fn apply_layer(input: impl Read, diff: &Dir, options: ApplyOptions) -> Result<Applied> {
    let mut compressed = Hashing::new(input);
    let mut head = Vec::with_capacity(16);
    (&mut compressed)
        .take(16)
        .read_to_end(&mut head)
        .map_err(source_error)?;
    let compression = Compression::detect(&head);
    let joined = io::Cursor::new(head).chain(&mut compressed);
    let decompressed = compression.decoder(joined, "layers")?;
    let mut uncompressed = Hashing::new(decompressed);
    let tap = Rc::new(RefCell::new(Tap::default()));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut ids = (BTreeSet::new(), BTreeSet::new());
    {
        let tapped = Tapped {
            inner: &mut uncompressed,
            tap: tap.clone(),
        };
        let mut encoder = Encoder::new(&mut gz);
        let mut writer = DiffWriter::new(diff, options);
        let mut archive = tar::Archive::new(tapped);
        let entries = archive.entries().map_err(source_error)?;
        for entry in entries {
            let mut entry = entry.map_err(source_error)?;
            encoder.segment(&tap.borrow_mut().take())?;
            let mut header = Header::of(&mut entry)?;
            if let Some(sparse) = &mut header.sparse {
                // A format 1.0 map opens the body. Go's reader takes it out of sight of
                // tar-split's accounting: no segment keeps it.
                if sparse.map.is_none() {
                    tap.borrow_mut().recording = false;
                    let read = sparse::read_map_1x0(&mut entry);
                    tap.borrow_mut().recording = true;
                    let (map, consumed) = read?;
                    sparse.map = Some(map);
                    header.physical_size = header.physical_size.saturating_sub(consumed);
                }
            }
            if !header.is_whiteout() {
                ids.0.insert(header.uid);
                ids.1.insert(header.gid);
            }
            tap.borrow_mut().recording = false;
            let crc = writer.write(&header, &mut entry);
            tap.borrow_mut().recording = true;
            let crc = crc?;
            encoder.file(&header.name, header.body_size(), crc)?;
        }
        writer.finish()?;
        // Go's reader takes both end blocks before it reports the end; tar-split then keeps
        // whatever follows (often the rest of a 10 KiB record) as a last segment of its own.
        let mut tapped = archive.into_inner();
        let mut second_end_block = [0u8; 512];
        read_up_to(&mut tapped, &mut second_end_block)?;
        encoder.segment(&tap.borrow_mut().take())?;
        io::copy(&mut tapped, &mut io::sink()).map_err(source_error)?;
        encoder.segment(&tap.borrow_mut().take())?;
    }
    let tar_split = gz.finish().map_err(|e| Error::io("tar-split", e))?;
    let (diff_digest, diff_size, _) = uncompressed.finish();
    // Whatever follows the compressed stream is part of the blob its digest covers.
    io::copy(&mut compressed, &mut io::sink()).map_err(source_error)?;
    let (compressed_digest, compressed_size, _) = compressed.finish();
    Ok(Applied {
        compression,
        compressed_digest,
        compressed_size,
        diff_digest,
        diff_size,
        uids: ids.0.into_iter().collect(),
        gids: ids.1.into_iter().collect(),
        tar_split,
    })
}

/// A damaged or malformed layer stream: the caller's input, not the store, is at fault.
fn source_error(e: io::Error) -> Error {
    use io::ErrorKind::{InvalidData, InvalidInput, Other, UnexpectedEof};
    if matches!(e.kind(), InvalidData | InvalidInput | UnexpectedEof | Other) {
        Error::InvalidArgument(format!("the layer is not a readable tar: {e}"))
    } else {
        Error::io("layer stream", e)
    }
}

fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(source_error(e)),
        }
    }
    Ok(filled)
}

/// The bytes read outside file bodies since the last segment was written.
struct Tap {
    recording: bool,
    segment: Vec<u8>,
}

impl Default for Tap {
    fn default() -> Self {
        Tap {
            recording: true,
            segment: Vec::new(),
        }
    }
}

impl Tap {
    fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.segment)
    }
}

/// The uncompressed stream as the tar parser sees it, copying into the tap what it records.
struct Tapped<R> {
    inner: R,
    tap: Rc<RefCell<Tap>>,
}

impl<R: Read> Read for Tapped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut tap = self.tap.borrow_mut();
        if tap.recording {
            tap.segment.extend_from_slice(&buf[..n]);
        }
        Ok(n)
    }
}

/// What one tar entry says, with PAX records applied.
struct Header {
    /// The name as the tar has it (tar-split records it so).
    name: Vec<u8>,
    kind: tar::EntryType,
    size: u64,
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: Timespec,
    atime: Option<Timespec>,
    link: Option<Vec<u8>>,
    device: (u32, u32),
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    /// A PAX sparse member: `size` is then the expanded size and `name` the real name.
    sparse: Option<PaxSparse>,
    /// The bytes of body the tar holds, which for a sparse member is not `size`.
    physical_size: u64,
}

impl Header {
    fn of<R: Read>(entry: &mut tar::Entry<'_, R>) -> Result<Header> {
        let h = entry.header();
        let number = |v: io::Result<u64>| v.map_err(source_error);
        let mut header = Header {
            name: entry.path_bytes().into_owned(),
            kind: h.entry_type(),
            size: entry.size(),
            mode: h.mode().map_err(source_error)?,
            uid: number(h.uid())? as u32,
            gid: number(h.gid())? as u32,
            mtime: Timespec {
                tv_sec: number(h.mtime())? as i64,
                tv_nsec: 0,
            },
            atime: h
                .as_gnu()
                .and_then(|g| g.atime().ok())
                .filter(|t| *t > 0)
                .map(|t| Timespec {
                    tv_sec: t as i64,
                    tv_nsec: 0,
                }),
            link: entry.link_name_bytes().map(|l| l.into_owned()),
            device: (
                h.device_major().ok().flatten().unwrap_or(0),
                h.device_minor().ok().flatten().unwrap_or(0),
            ),
            xattrs: Vec::new(),
            sparse: None,
            physical_size: entry.size(),
        };
        let mut records = Vec::new();
        if let Some(extensions) = entry.pax_extensions().map_err(source_error)? {
            for extension in extensions {
                let extension = extension.map_err(source_error)?;
                let (key, value) = (extension.key_bytes(), extension.value_bytes());
                records.push((key.to_vec(), value.to_vec()));
                match key {
                    b"uid" => header.uid = pax_number(value)?,
                    b"gid" => header.gid = pax_number(value)?,
                    b"mtime" => header.mtime = pax_time(value)?,
                    b"atime" => header.atime = Some(pax_time(value)?),
                    _ => {
                        if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                            header.xattrs.push((name.to_vec(), value.to_vec()));
                        }
                    }
                }
            }
        }
        if header.kind.is_gnu_sparse() {
            // podman: "unhandled tar header type 83".
            return Err(Error::Unsupported {
                what: format!(
                    "GNU sparse file {:?} in a layer (podman refuses them too)",
                    String::from_utf8_lossy(&header.name)
                ),
            });
        }
        if header.is_regular() {
            if let Some(sparse) = sparse::pax_sparse(&records)? {
                if let Some(name) = &sparse.name {
                    header.name = name.clone();
                }
                header.size = sparse.size.unwrap_or(header.size);
                header.sparse = Some(sparse);
            }
        }
        Ok(header)
    }

    fn is_whiteout(&self) -> bool {
        let base = self.name.rsplit(|b| *b == b'/').find(|c| !c.is_empty());
        base.is_some_and(|b| b.starts_with(whiteout::PREFIX.as_bytes()))
    }

    /// The bytes of body that follow the header: none for the header-only types.
    fn body_size(&self) -> u64 {
        if self.is_regular() {
            self.size
        } else {
            0
        }
    }

    fn is_regular(&self) -> bool {
        self.kind.is_file() || self.kind.is_contiguous()
    }
}

fn pax_number(value: &[u8]) -> Result<u32> {
    std::str::from_utf8(value)
        .ok()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| Error::InvalidArgument("a PAX uid/gid is not a number".into()))
}

/// A PAX time: decimal seconds with an optional fraction (`1700000000.123456789`).
fn pax_time(value: &[u8]) -> Result<Timespec> {
    let bad = || Error::InvalidArgument("a PAX time is not a number".into());
    let text = std::str::from_utf8(value).map_err(|_| bad())?;
    let (secs, frac) = text.split_once('.').unwrap_or((text, ""));
    let tv_sec: i64 = secs.parse().map_err(|_| bad())?;
    let digits: String = frac.chars().take(9).collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let tv_nsec = if digits.is_empty() {
        0
    } else {
        format!("{digits:0<9}").parse::<i64>().map_err(|_| bad())?
    };
    let tv_nsec = if tv_sec < 0 && tv_nsec > 0 {
        -tv_nsec
    } else {
        tv_nsec
    };
    Ok(Timespec {
        tv_sec,
        tv_nsec: tv_nsec as _,
    })
}

/// Writes entries beneath `diff/`. Directory times are set last (their entries change them),
/// in tar order, as containers/storage's `Unpack` does.
struct DiffWriter<'a> {
    diff: &'a Dir,
    whiteouts: DiffWhiteouts,
    user_namespace: bool,
    dir_times: Vec<(PathBuf, Timestamps)>,
    buffer: Vec<u8>,
}

impl<'a> DiffWriter<'a> {
    fn new(diff: &'a Dir, options: ApplyOptions) -> Self {
        DiffWriter {
            diff,
            whiteouts: options.whiteouts,
            user_namespace: options.user_namespace,
            dir_times: Vec::new(),
            buffer: vec![0; 1 << 20],
        }
    }

    /// Writes one entry; returns the CRC of the body it stored, if any.
    fn write(&mut self, header: &Header, body: &mut impl Read) -> Result<Option<u64>> {
        let rel = clean_name(&header.name)?;
        let shown = Path::new("diff").join(&rel);
        let Some(name) = rel.file_name().map(OsStr::to_owned) else {
            // The root entry. containers/storage's `Unpack` skips one named `.` (`./`), so
            // `diff/` keeps the mode and owner the driver gave it; only a root spelled `/` takes
            // the header's metadata there.
            if header.name.starts_with(b"/") {
                self.set_meta(self.diff, OsStr::new("."), header, &shown)?;
                self.dir_times.push((PathBuf::new(), times(header)));
            }
            return Ok(None);
        };
        let parent_rel = rel.parent().unwrap_or(Path::new("")).to_owned();
        let marker = match self.whiteouts {
            DiffWhiteouts::Overlay { xattr_prefix } => {
                Some((xattr_prefix, whiteout::marker(&name)))
            }
            DiffWhiteouts::Aufs => None,
        };
        let parent = match self.parent(&parent_rel, &shown) {
            Ok(parent) => parent,
            // `rm -rf /foo/bar` gives some tools `/.wh.foo` then `/foo/.wh.bar`: the first made
            // `foo` a whiteout device, and podman's whiteout converter drops the second when it
            // meets ENOTDIR.
            Err(Error::Io { source, .. })
                if source.raw_os_error() == Some(libc::ENOTDIR)
                    && matches!(marker, Some((_, Marker::Whiteout(_)))) =>
            {
                return Ok(None)
            }
            Err(e) => return Err(e),
        };
        if let Some((xattr_prefix, marker)) = marker {
            match marker {
                Marker::Opaque => {
                    let key = format!("{xattr_prefix}overlay.opaque");
                    rustix::fs::lsetxattr(
                        proc_path(&parent, OsStr::new(".")),
                        key.as_str(),
                        b"y",
                        XattrFlags::empty(),
                    )
                    .map_err(|e| Error::io(&shown, e.into()))?;
                    return Ok(None);
                }
                Marker::Whiteout(deleted) => {
                    remove_existing(&parent, deleted, &shown)?;
                    rustix::fs::mknodat(
                        &parent,
                        deleted,
                        FileType::CharacterDevice,
                        Mode::empty(),
                        0,
                    )
                    .map_err(|e| Error::io(&shown, e.into()))?;
                    chown(&parent, deleted, header, &shown)?;
                    return Ok(None);
                }
                Marker::None => {}
            }
        }
        let kind = header.kind;
        let is_dir = kind.is_dir();
        if !(is_dir && is_directory(&parent, &name)) {
            remove_existing(&parent, &name, &shown)?;
        }
        let io = |e: Errno| Error::io(&shown, e.into());
        let mut crc = None;
        if header.is_regular() {
            let file = rustix::fs::openat(
                &parent,
                name.as_os_str(),
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )
            .map_err(io)?;
            let mut file = File::from(file);
            crc = match header.sparse.as_ref().and_then(|s| s.map.as_deref()) {
                Some(map) => {
                    sparse::validate(map, header.size)?;
                    let physical = header.physical_size;
                    sparse::expand(body, physical, &file, map, header.size, &mut self.buffer)?
                }
                None => self.copy_body(body, &mut file, header.size, &shown)?,
            };
        } else if is_dir {
            match rustix::fs::mkdirat(&parent, name.as_os_str(), Mode::from_raw_mode(0o700)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(io(e)),
            }
        } else if kind.is_symlink() {
            let target = header.link.clone().unwrap_or_default();
            rustix::fs::symlinkat(OsStr::from_bytes(&target), &parent, name.as_os_str())
                .map_err(io)?;
        } else if kind.is_hard_link() {
            let target = clean_name(header.link.as_deref().unwrap_or_default())?;
            self.diff.hard_link(&target, &parent, &name).map_err(|e| {
                Error::InvalidArgument(format!(
                    "hard link {} -> {}: {e}",
                    shown.display(),
                    target.display()
                ))
            })?;
            // A hard link shares its target's inode: its metadata is the target's.
            return Ok(None);
        } else if (kind.is_character_special() || kind.is_block_special()) && self.user_namespace {
            // A user namespace cannot make device nodes; containers/storage leaves them out there.
            return Ok(None);
        } else if kind.is_fifo() || kind.is_character_special() || kind.is_block_special() {
            let file_type = if kind.is_fifo() {
                FileType::Fifo
            } else if kind.is_character_special() {
                FileType::CharacterDevice
            } else {
                FileType::BlockDevice
            };
            let dev = rustix::fs::makedev(header.device.0, header.device.1);
            rustix::fs::mknodat(
                &parent,
                name.as_os_str(),
                file_type,
                Mode::from_raw_mode(0o600),
                dev,
            )
            .map_err(io)?;
        } else {
            // Other types (GNU volume labels, ...) carry no file; podman skips them too.
            return Ok(None);
        }
        self.set_meta(&parent, &name, header, &shown)?;
        if is_dir {
            self.dir_times.push((rel, times(header)));
        }
        Ok(crc)
    }

    /// Opens the directory `rel` beneath `diff/`, creating what is missing (mode 0755, as
    /// containers/storage creates parents a tar does not list).
    fn parent(&self, rel: &Path, shown: &Path) -> Result<Dir> {
        if rel.as_os_str().is_empty() {
            return self.diff.try_clone().at(shown);
        }
        match self.diff.open_dir(rel) {
            Ok(dir) => Ok(dir),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let mut builder = cap_std::fs::DirBuilder::new();
                builder.recursive(true);
                cap_std::fs::DirBuilderExt::mode(&mut builder, 0o755);
                self.diff
                    .create_dir_with(rel, &builder)
                    .map_err(|e| escape(shown, e))?;
                self.diff.open_dir(rel).map_err(|e| escape(shown, e))
            }
            Err(e) => Err(escape(shown, e)),
        }
    }

    fn copy_body(
        &mut self,
        body: &mut impl Read,
        file: &mut File,
        size: u64,
        shown: &Path,
    ) -> Result<Option<u64>> {
        if size == 0 {
            return Ok(None);
        }
        let mut digest = crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc64GoIso);
        let mut left = size;
        while left > 0 {
            let want = left.min(self.buffer.len() as u64) as usize;
            let n = body.read(&mut self.buffer[..want]).map_err(source_error)?;
            if n == 0 {
                return Err(Error::InvalidArgument(format!(
                    "the layer tar ends inside {}",
                    shown.display()
                )));
            }
            digest.update(&self.buffer[..n]);
            file.write_all(&self.buffer[..n]).at(shown)?;
            left -= n as u64;
        }
        Ok(Some(digest.finalize()))
    }

    /// Owner, xattrs, mode, times — containers/storage's order (a chown clears setuid bits and
    /// file capabilities, so both come after it).
    fn set_meta(&self, dir: &Dir, name: &OsStr, header: &Header, shown: &Path) -> Result<()> {
        let io = |e: Errno| Error::io(shown, e.into());
        chown(dir, name, header, shown)?;
        if !header.xattrs.is_empty() {
            let path = proc_path(dir, name);
            for (key, value) in &header.xattrs {
                match rustix::fs::lsetxattr(
                    &path,
                    OsStr::from_bytes(key),
                    value,
                    XattrFlags::empty(),
                ) {
                    // podman warns and goes on when the filesystem or the caller cannot keep a
                    // namespace (`trusted.*` unprivileged, `security.*` on some filesystems).
                    Ok(()) | Err(Errno::NOTSUP) | Err(Errno::PERM) => {}
                    Err(e) => return Err(io(e)),
                }
            }
        }
        if !header.kind.is_symlink() {
            let mode = Mode::from_raw_mode(header.mode & 0o7777);
            rustix::fs::chmodat(dir, name, mode, AtFlags::empty()).map_err(io)?;
        }
        if !header.kind.is_dir() {
            rustix::fs::utimensat(dir, name, &times(header), AtFlags::SYMLINK_NOFOLLOW)
                .map_err(io)?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        for (rel, times) in std::mem::take(&mut self.dir_times) {
            let shown = Path::new("diff").join(&rel);
            let (dir, name) = match (rel.parent(), rel.file_name()) {
                (Some(parent), Some(name)) => (self.parent(parent, &shown)?, name.to_owned()),
                _ => (
                    self.diff.try_clone().at(&shown)?,
                    OsStr::new(".").to_owned(),
                ),
            };
            rustix::fs::utimensat(&dir, name.as_os_str(), &times, AtFlags::SYMLINK_NOFOLLOW)
                .map_err(|e| Error::io(&shown, e.into()))?;
        }
        Ok(())
    }
}

/// Gives an entry the header's owner. In a user namespace an ID it does not map fails with
/// EINVAL, which podman reports (and refuses the layer) as below.
fn chown(dir: &Dir, name: &OsStr, header: &Header, shown: &Path) -> Result<()> {
    let owner = (
        rustix::fs::Uid::from_raw(header.uid),
        rustix::fs::Gid::from_raw(header.gid),
    );
    match rustix::fs::chownat(
        dir,
        name,
        Some(owner.0),
        Some(owner.1),
        AtFlags::SYMLINK_NOFOLLOW,
    ) {
        Ok(()) => Ok(()),
        Err(Errno::INVAL) => Err(Error::InvalidArgument(format!(
            "potentially insufficient UIDs or GIDs available in user namespace (requested {}:{} \
             for {}): check /etc/subuid and /etc/subgid",
            header.uid,
            header.gid,
            shown.display()
        ))),
        Err(e) => Err(Error::io(shown, e.into())),
    }
}

/// Access time is the later of the recorded atime and mtime, as podman sets it.
fn times(header: &Header) -> Timestamps {
    let mtime = header.mtime;
    let atime = match header.atime {
        Some(a) if (a.tv_sec, a.tv_nsec) > (mtime.tv_sec, mtime.tv_nsec) => a,
        _ => mtime,
    };
    Timestamps {
        last_access: atime,
        last_modification: mtime,
    }
}

/// A path naming `name` in `dir` for the xattr calls Linux offers only by path.
fn proc_path(dir: &Dir, name: &OsStr) -> PathBuf {
    use std::os::fd::AsRawFd;
    let mut path = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
    path.push(name);
    path
}

/// A tar name as a relative path beneath `diff/`: leading `/` and `.` components dropped, `..`
/// refused (podman refuses names that break out of the layer too).
fn clean_name(name: &[u8]) -> Result<PathBuf> {
    let mut rel = PathBuf::new();
    for component in Path::new(OsStr::from_bytes(name)).components() {
        match component {
            Component::Normal(part) => rel.push(part),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(Error::InvalidArgument(format!(
                    "the layer tar names {:?}, outside the layer",
                    String::from_utf8_lossy(name)
                )))
            }
        }
    }
    Ok(rel)
}

/// An error resolving a path beneath `diff/`: cap-std refuses symlinks that lead out of it.
fn escape(shown: &Path, e: io::Error) -> Error {
    if e.kind() == io::ErrorKind::PermissionDenied && e.raw_os_error().is_none() {
        Error::InvalidArgument(format!(
            "{} resolves outside the layer through a symlink",
            shown.display()
        ))
    } else {
        Error::io(shown, e)
    }
}

fn is_directory(dir: &Dir, name: &OsStr) -> bool {
    rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
        .is_ok_and(|s| FileType::from_raw_mode(s.st_mode) == FileType::Directory)
}

/// Removes what a later entry replaces (a directory with its contents).
fn remove_existing(dir: &Dir, name: &OsStr, shown: &Path) -> Result<()> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(Error::io(shown, e.into())),
        Ok(s) if FileType::from_raw_mode(s.st_mode) == FileType::Directory => {
            dir.remove_dir_all(name).at(shown)
        }
        Ok(_) => rustix::fs::unlinkat(dir, name, AtFlags::empty())
            .map_err(|e| Error::io(shown, e.into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_times_keep_nanoseconds() {
        let t = pax_time(b"1700000000.5").unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (1700000000, 500_000_000));
        let t = pax_time(b"12").unwrap();
        assert_eq!((t.tv_sec, t.tv_nsec), (12, 0));
        assert!(pax_time(b"x").is_err());
    }

    #[test]
    fn names_stay_beneath_the_layer() {
        assert_eq!(clean_name(b"./a/b/").unwrap(), PathBuf::from("a/b"));
        assert_eq!(
            clean_name(b"/etc/passwd").unwrap(),
            PathBuf::from("etc/passwd")
        );
        assert_eq!(clean_name(b"./").unwrap(), PathBuf::new());
        assert_eq!(clean_name(b"a/../../x").unwrap_err().code(), "EINVAL");
    }

    /// A tar of `(name, type, mode, body)` entries, mtime 1700000000.
    fn tar_of(entries: &[(&str, tar::EntryType, u32, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, kind, mode, body) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(*kind);
            header.set_mode(*mode);
            header.set_mtime(1_700_000_000);
            header.set_uid(0);
            header.set_gid(0);
            header.set_size(body.len() as u64);
            builder.append_data(&mut header, name, *body).unwrap();
        }
        builder.into_inner().unwrap()
    }

    fn applied(tar: &[u8]) -> (tempfile::TempDir, Applied) {
        let temp = tempfile::tempdir().unwrap();
        let diff = Dir::open_ambient_dir(temp.path(), cap_std::ambient_authority()).unwrap();
        let options = ApplyOptions {
            whiteouts: DiffWhiteouts::Overlay {
                xattr_prefix: "user.",
            },
            user_namespace: false,
        };
        let applied = apply_layer(tar, &diff, options).unwrap();
        (temp, applied)
    }

    #[test]
    fn the_root_entry_leaves_diff_as_the_driver_made_it() {
        use std::os::unix::fs::MetadataExt;
        let dir = tar::EntryType::Directory;
        let (temp, _) = applied(&tar_of(&[
            ("./", dir, 0o700, b""),
            ("./d/", dir, 0o750, b""),
        ]));
        let root = std::fs::metadata(temp.path()).unwrap();
        assert_ne!(root.mode() & 0o7777, 0o700);
        assert_ne!(root.mtime(), 1_700_000_000);
        let d = std::fs::metadata(temp.path().join("d")).unwrap();
        assert_eq!((d.mode() & 0o7777, d.mtime()), (0o750, 1_700_000_000));
    }

    #[test]
    fn a_whiteout_beneath_a_whiteout_is_dropped() {
        use std::os::unix::fs::FileTypeExt;
        let file = tar::EntryType::Regular;
        let (temp, applied) = applied(&tar_of(&[
            (".wh.foo", file, 0o644, b""),
            ("foo/.wh.bar", file, 0o644, b""),
            ("foo/x/.wh.baz", file, 0o644, b""),
        ]));
        let foo = std::fs::symlink_metadata(temp.path().join("foo")).unwrap();
        assert!(foo.file_type().is_char_device());
        assert_eq!(applied.diff_size, 5 * 512);
    }
}
