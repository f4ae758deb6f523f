//! Extracting a layer, or an image's layers base to top, into a directory.
//!
//! The source is each layer's `diff/` — exactly what overlayfs stacks for `podman image mount` —
//! so an image extraction equals the merged view by construction: whiteouts delete, opaque
//! directories hide what is below, an upper entry replaces a lower one, an upper directory's
//! metadata wins. File content is reflinked where the filesystems allow it (see [`crate::extract::clone`]).
//!
//! Safety by construction: the tree is built in a private (0700) staging directory beside the
//! target and renamed into place only when complete (on error it is removed: nothing
//! half-written). Every operation is relative to an open directory fd and names one component
//! read from a `diff/` listing, so no name can contain `/` or be `..`; final components are
//! never followed, and directories are reopened beneath the staging root without following
//! symlinks — a symlink planted by a lower layer (`a -> /etc`) is replaced, never written through.
//! Directories are walked with an explicit stack, so a hostile depth cannot overflow the stack.

pub mod clone;

use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use cap_fs_ext::DirExt;
use cap_std::ambient_authority;
use cap_std::fs::Dir;
use rustix::fs::{AtFlags, FileType, Gid, Mode, OFlags, Stat, Timestamps, Uid, XattrFlags};
use rustix::io::Errno;

use crate::content::composefs;
use crate::content::erofs::{Data, Entry};
use crate::content::whiteout::{self, Marker};
use crate::content::xattr::{has_flag, proc_path, read_xattrs, Target};
use crate::error::{Error, IoContext, Result};
use crate::extract::clone::{Cloner, CopyMethod};
pub use crate::progress::Progress;
use crate::store::images::Image;
use crate::store::layers::Layer;
use crate::store::lock::read_lock;
use crate::store::Store;

/// What becomes of the whiteouts a layer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whiteouts {
    /// Carry them out: delete what they name, empty opaque directories (an image's merged view).
    Apply,
    /// Write them as overlayfs reads them: char device 0:0, `trusted.overlay.opaque` xattr.
    Overlay,
    /// Write them as a layer tar has them: `.wh.<name>` and `.wh..wh..opq` empty files.
    Aufs,
}

#[derive(Debug, Clone, Copy)]
pub struct ExtractOptions {
    /// Try `FICLONE` before copying content.
    pub reflinks: bool,
    /// Give entries their recorded owners (needs root or `CAP_CHOWN`).
    pub owners: bool,
    /// Copy extended attributes (`security.capability`, `user.*`, ...).
    pub xattrs: bool,
    pub whiteouts: Whiteouts,
}

impl ExtractOptions {
    /// The xattrs to copy: none when not asked, and never overlayfs's own.
    fn own_xattrs(&self, xattrs: Vec<(OsString, Vec<u8>)>) -> Vec<(OsString, Vec<u8>)> {
        if !self.xattrs {
            return Vec::new();
        }
        xattrs
            .into_iter()
            .filter(|(k, _)| !whiteout::is_overlay_xattr(k.as_bytes()))
            .collect()
    }

    /// Owner, then mode (a chown clears setuid bits), then xattrs (a chown also drops
    /// `security.capability`), then times (every other change touches ctime, not mtime).
    fn set_meta(&self, target: Target<'_>, meta: &Meta, path: &Path) -> Result<()> {
        let io = |e: Errno| match e {
            Errno::PERM => Error::io(
                path,
                std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    format!("{e} (not permitted as this user: extract without owners or xattrs)"),
                ),
            ),
            e => Error::io(path, e.into()),
        };
        let stat = &meta.stat;
        let is_symlink = FileType::from_raw_mode(stat.st_mode) == FileType::Symlink;
        let owner = Some(Uid::from_raw(stat.st_uid));
        let group = Some(Gid::from_raw(stat.st_gid));
        let mode = Mode::from_raw_mode(stat.st_mode & 0o7777);
        let times = Timestamps {
            last_access: rustix::fs::Timespec {
                tv_sec: stat.st_atime,
                tv_nsec: stat.st_atime_nsec as _,
            },
            last_modification: rustix::fs::Timespec {
                tv_sec: stat.st_mtime,
                tv_nsec: stat.st_mtime_nsec as _,
            },
        };
        match target {
            Target::Fd(fd) => {
                let fd = fd.as_fd();
                if self.owners {
                    rustix::fs::fchown(fd, owner, group).map_err(io)?;
                }
                rustix::fs::fchmod(fd, mode).map_err(io)?;
                for (key, value) in &meta.xattrs {
                    rustix::fs::fsetxattr(fd, key.as_os_str(), value, XattrFlags::empty())
                        .map_err(io)?;
                }
                rustix::fs::futimens(fd, &times).map_err(io)?;
            }
            Target::At(dir, name) => {
                if self.owners {
                    rustix::fs::chownat(dir, name, owner, group, AtFlags::SYMLINK_NOFOLLOW)
                        .map_err(io)?;
                }
                if !is_symlink {
                    rustix::fs::chmodat(dir, name, mode, AtFlags::empty()).map_err(io)?;
                }
                let xattr_path = proc_path(dir, name);
                for (key, value) in &meta.xattrs {
                    rustix::fs::lsetxattr(&xattr_path, key.as_os_str(), value, XattrFlags::empty())
                        .map_err(io)?;
                }
                rustix::fs::utimensat(dir, name, &times, AtFlags::SYMLINK_NOFOLLOW).map_err(io)?;
            }
        }
        Ok(())
    }
}

/// What an extraction made, and how file content got there.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, ts_rs::TS,
)]
#[serde(rename_all = "camelCase")]
pub struct ExtractStats {
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    /// Names linked to a file already extracted from the same layer.
    pub hardlinks: u64,
    /// Fifos and devices.
    pub specials: u64,
    /// Whiteouts and opaque markers met (applied or written, as asked).
    pub whiteouts: u64,
    /// Devices and sockets not made: creating devices needs `CAP_MKNOD`, and a tar has no sockets.
    pub skipped: u64,
    /// Bytes of file content.
    pub bytes: u64,
    pub reflinked_files: u64,
    pub kernel_copied_files: u64,
    pub user_copied_files: u64,
}

impl ExtractStats {
    /// Counts one regular file and how its content was copied (`None`: it was empty).
    fn count_file(&mut self, method: Option<CopyMethod>) {
        self.files += 1;
        match method {
            Some(CopyMethod::Reflink) => self.reflinked_files += 1,
            Some(CopyMethod::KernelCopy) => self.kernel_copied_files += 1,
            Some(CopyMethod::UserCopy) => self.user_copied_files += 1,
            None => {}
        }
    }

    /// Adds the file counts of a worker (content bytes are counted by the caller).
    fn absorb_files(&mut self, worker: &ExtractStats) {
        self.files += worker.files;
        self.reflinked_files += worker.reflinked_files;
        self.kernel_copied_files += worker.kernel_copied_files;
        self.user_copied_files += worker.user_copied_files;
    }
}

/// Regular files of one directory are copied by worker threads when there are at least this
/// many: per-file work (create, clone, chown, chmod, times) is syscall-bound, and threads pay
/// for themselves only over a batch.
const PARALLEL_MIN_FILES: usize = 16;

/// Reports at most this often (in content bytes), besides once per layer.
const PROGRESS_STEP_BYTES: u64 = 32 << 20;

impl Store {
    /// Extracts the merged filesystem of `image` into `target` (which must not exist, or be an
    /// empty directory).
    pub fn extract_image(
        &self,
        image: &Image,
        target: &Path,
        options: ExtractOptions,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<ExtractStats> {
        let mut layers = self.image_layers(image)?;
        layers.reverse();
        self.extract_layers(&layers, target, options, progress)
    }

    /// Extracts one layer's own content into `target`.
    pub fn extract_layer(
        &self,
        layer: &Layer,
        target: &Path,
        options: ExtractOptions,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<ExtractStats> {
        self.extract_layers(std::slice::from_ref(layer), target, options, progress)
    }

    fn extract_layers(
        &self,
        layers: &[Layer],
        target: &Path,
        options: ExtractOptions,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<ExtractStats> {
        let staging = Staging::create(target)?;
        let total_bytes = layers
            .iter()
            .filter_map(|l| l.record.diff_size)
            .sum::<i64>();
        let mut applier = Applier {
            root: &staging.dir,
            options,
            cloner: Cloner::new(options.reflinks),
            stats: ExtractStats::default(),
            dir_meta: BTreeMap::new(),
            progress,
            report: Progress {
                layer: 0,
                layers: layers.len(),
                bytes: 0,
                total_bytes: total_bytes.max(0) as u64,
            },
            reported_bytes: 0,
            fresh: true,
        };
        for (index, layer) in layers.iter().enumerate() {
            let store_dir = &self.dir(layer.store_index).dir;
            let _guard = read_lock(store_dir, Path::new("overlay-layers/layers.lock"))?;
            let diff_path = Path::new("overlay").join(layer.id()).join("diff");
            let diff = store_dir.open_dir_nofollow(&diff_path).at(&diff_path)?;
            applier.report.layer = index;
            (applier.progress)(applier.report);
            if self.is_composefs_layer(layer) {
                let entries = self.composefs_entries(layer)?;
                applier.apply_composefs_layer(&entries, &diff, &diff_path)?;
            } else {
                applier.apply_layer(&diff, &diff_path, index == 0)?;
            }
        }
        applier.finish()?;
        let stats = applier.stats;
        staging.commit()?;
        Ok(stats)
    }
}

/// A private directory beside the target that becomes the target by one `rename`, or is removed.
struct Staging {
    parent: Dir,
    parent_path: PathBuf,
    name: OsString,
    temp: OsString,
    dir: Dir,
    committed: bool,
}

impl Staging {
    fn create(target: &Path) -> Result<Staging> {
        let name = target
            .file_name()
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "{} cannot be an extraction target",
                    target.display()
                ))
            })?
            .to_owned();
        let parent_path = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let parent = Dir::open_ambient_dir(&parent_path, ambient_authority()).at(&parent_path)?;
        match parent.symlink_metadata(&name) {
            Ok(meta) if meta.is_dir() => {
                let mut entries = parent.read_dir(&name).at(target)?;
                if entries.next().is_some() {
                    return Err(not_empty(target));
                }
            }
            Ok(_) => return Err(not_empty(target)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(target, e)),
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let mut temp = OsString::from(".");
        temp.push(&name);
        temp.push(format!(".cstor-{}-{nanos}", std::process::id()));
        rustix::fs::mkdirat(&parent, temp.as_os_str(), Mode::from_raw_mode(0o700))
            .map_err(|e| Error::io(parent_path.join(&temp), e.into()))?;
        let dir = parent
            .open_dir_nofollow(&temp)
            .at(parent_path.join(&temp))?;
        Ok(Staging {
            parent,
            parent_path,
            name,
            temp,
            dir,
            committed: false,
        })
    }

    fn commit(mut self) -> Result<()> {
        let target = self.parent_path.join(&self.name);
        rustix::fs::renameat(
            &self.parent,
            self.temp.as_os_str(),
            &self.parent,
            self.name.as_os_str(),
        )
        .map_err(|e| match e {
            Errno::NOTEMPTY | Errno::EXIST | Errno::NOTDIR | Errno::ISDIR => not_empty(&target),
            e => Error::io(&target, e.into()),
        })?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed {
            let _ = self.parent.remove_dir_all(&self.temp);
        }
    }
}

fn not_empty(target: &Path) -> Error {
    Error::InvalidArgument(format!(
        "{} exists and is not an empty directory",
        target.display()
    ))
}

/// What an entry holds besides its metadata.
enum Content {
    /// A regular file's content, open.
    File(File),
    /// A regular file's content, in memory (a small file inline in a composefs blob).
    Bytes(Vec<u8>),
    /// A symlink's target.
    Symlink(Vec<u8>),
    None,
}

/// An entry's recorded metadata: its `lstat` and the xattrs that are the file's own.
struct Meta {
    stat: Stat,
    xattrs: Vec<(OsString, Vec<u8>)>,
}

struct Applier<'a> {
    root: &'a Dir,
    options: ExtractOptions,
    cloner: Cloner,
    stats: ExtractStats,
    /// Directory metadata, applied at the end, deepest first: a directory's mode may forbid
    /// writing into it, and every write into it changes its mtime. A later layer's record
    /// replaces a lower one's, as overlayfs shows the upper directory.
    dir_meta: BTreeMap<PathBuf, Meta>,
    progress: &'a mut dyn FnMut(Progress),
    report: Progress,
    reported_bytes: u64,
    /// The directory being applied was created by this layer (or is the root of the first):
    /// nothing in it can be in the way, so nothing is looked up before being created.
    fresh: bool,
}

impl Applier<'_> {
    /// Applies one layer; `first` when nothing was extracted before it.
    fn apply_layer(&mut self, diff: &Dir, diff_path: &Path, first: bool) -> Result<()> {
        // Inode → first extracted path: hardlinks inside one layer stay hardlinks.
        let mut links: HashMap<u64, PathBuf> = HashMap::new();
        let mut pending = vec![(PathBuf::new(), first)];
        while let Some((rel, fresh)) = pending.pop() {
            self.fresh = fresh;
            let src = open_beneath(diff, &rel, &diff_path.join(&rel))?;
            let dst = open_beneath(self.root, &rel, &rel)?;
            let mut entries = Vec::new();
            for entry in src.entries().at(diff_path.join(&rel))? {
                let name = entry.at(diff_path.join(&rel))?.file_name();
                let shown = diff_path.join(&rel).join(&name);
                let stat = rustix::fs::statat(&src, name.as_os_str(), AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|e| Error::io(&shown, e.into()))?;
                entries.push((name, stat));
            }
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            let dir_xattrs = read_xattrs(Target::At(&src, OsStr::new(".")), &diff_path.join(&rel))?;
            let opaque = !rel.as_os_str().is_empty()
                && (has_flag(&dir_xattrs, &whiteout::OPAQUE_XATTRS)
                    || entries
                        .iter()
                        .any(|(n, _)| whiteout::marker(n) == Marker::Opaque));
            if opaque {
                let stat = rustix::fs::fstat(&src).map_err(|e| Error::io(&rel, e.into()))?;
                self.opaque(&dst, &rel, &stat)?;
            }
            // In a directory this layer created nothing is in the way, so its plain files —
            // not empty (a whiteout may be), not hardlinked, no marker — can be copied apart.
            let (simple, others): (Vec<_>, Vec<_>) =
                entries.into_iter().partition(|(name, stat)| {
                    self.fresh
                        && FileType::from_raw_mode(stat.st_mode) == FileType::RegularFile
                        && stat.st_nlink == 1
                        && stat.st_size > 0
                        && whiteout::marker(name) == Marker::None
                });
            for (name, stat) in others {
                let shown = diff_path.join(&rel).join(&name);
                if let Some(sub) = self.entry(&src, &dst, &rel, &name, stat, &shown, &mut links)? {
                    pending.push(sub);
                }
            }
            self.copy_files(&src, &dst, &rel, &diff_path.join(&rel), &simple)?;
            if rel.as_os_str().is_empty() {
                let xattrs = self.options.own_xattrs(dir_xattrs);
                let stat = rustix::fs::fstat(&src).map_err(|e| Error::io(diff_path, e.into()))?;
                self.dir_meta.insert(rel, Meta { stat, xattrs });
            }
        }
        Ok(())
    }

    /// Applies one composefs layer, its tree read from the blob ([`Store::composefs_entries`]):
    /// the same rules as [`Applier::apply_layer`] but for `.wh.` names (see below), each regular
    /// file's content taken from the object beneath `diff/` its payload names.
    fn apply_composefs_layer(
        &mut self,
        entries: &[Entry],
        diff: &Dir,
        diff_path: &Path,
    ) -> Result<()> {
        self.fresh = false;
        let mut links: HashMap<u64, PathBuf> = HashMap::new();
        for entry in entries {
            let rel = PathBuf::from(OsStr::from_bytes(&entry.path));
            let stat = composefs::stat_of(&entry.inode);
            let xattrs: Vec<(OsString, Vec<u8>)> = entry
                .inode
                .xattrs
                .iter()
                .map(|(k, v)| (OsString::from_vec(k.clone()), v.clone()))
                .collect();
            let file_type = FileType::from_raw_mode(stat.st_mode);
            let opaque =
                file_type == FileType::Directory && has_flag(&xattrs, &whiteout::OPAQUE_XATTRS);
            let (parent, name) = match (rel.parent(), rel.file_name()) {
                (Some(parent), Some(name)) => (parent, name),
                _ => {
                    let xattrs = self.options.own_xattrs(xattrs);
                    self.dir_meta.insert(PathBuf::new(), Meta { stat, xattrs });
                    continue;
                }
            };
            let dst = open_beneath(self.root, parent, parent)?;
            // The blob was made from the layer's TOC, whose whiteouts are already devices 0:0: a
            // `.wh.` name here is a file of that name, as podman's mount shows it.
            let placed = match () {
                _ if file_type == FileType::CharacterDevice && stat.st_rdev == 0 => {
                    self.whiteout(&dst, parent, name, &stat)?;
                    None
                }
                _ => {
                    let content = match &entry.inode.data {
                        Data::External { payload, .. } => {
                            let object = Path::new(OsStr::from_bytes(payload));
                            let shown = diff_path.join(object);
                            Content::File(diff.open(object).at(&shown)?.into_std())
                        }
                        Data::Inline(bytes) if file_type == FileType::Symlink => {
                            Content::Symlink(bytes.clone())
                        }
                        Data::Inline(bytes) => Content::Bytes(bytes.clone()),
                        Data::None if file_type == FileType::RegularFile => {
                            Content::Bytes(Vec::new())
                        }
                        Data::None => Content::None,
                    };
                    let meta = Meta {
                        stat,
                        xattrs: self.options.own_xattrs(xattrs),
                    };
                    self.place(
                        &dst,
                        parent,
                        name,
                        meta,
                        content,
                        entry.inode.nid,
                        &mut links,
                    )?
                }
            };
            if placed.is_some() && opaque {
                let dir = open_beneath(self.root, &rel, &rel)?;
                self.opaque(&dir, &rel, &stat)?;
            }
        }
        Ok(())
    }

    /// Copies plain regular files of one directory, on worker threads when there are enough.
    fn copy_files(
        &mut self,
        src: &Dir,
        dst: &Dir,
        rel: &Path,
        src_path: &Path,
        jobs: &[(OsString, Stat)],
    ) -> Result<()> {
        let place = Place {
            src,
            dst,
            rel,
            src_path,
        };
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
        if workers == 1 || jobs.len() < PARALLEL_MIN_FILES {
            for (name, stat) in jobs {
                let method = copy_plain(&self.options, &mut self.cloner, &place, name, stat)?;
                self.stats.count_file(method);
                self.advance(stat.st_size as u64);
            }
            return Ok(());
        }
        let next = std::sync::atomic::AtomicUsize::new(0);
        let (options, cloner) = (self.options, self.cloner);
        let outcomes: Vec<Result<(ExtractStats, Cloner)>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers)
                .map(|_| {
                    scope.spawn(|| {
                        let (mut cloner, mut stats) = (cloner, ExtractStats::default());
                        loop {
                            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let Some((name, stat)) = jobs.get(i) else {
                                return Ok((stats, cloner));
                            };
                            let method = copy_plain(&options, &mut cloner, &place, name, stat)?;
                            stats.count_file(method);
                        }
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(Error::io(
                            rel,
                            std::io::Error::other("a copying thread panicked"),
                        ))
                    })
                })
                .collect()
        });
        for outcome in outcomes {
            let (stats, cloner) = outcome?;
            self.stats.absorb_files(&stats);
            // A method a worker found refused stays refused for the next files.
            self.cloner = cloner;
        }
        self.advance(jobs.iter().map(|(_, stat)| stat.st_size as u64).sum());
        Ok(())
    }

    /// Handles an opaque directory (by xattr or marker) whose entries are about to be applied;
    /// `dir` is its recorded stat.
    fn opaque(&mut self, dst: &Dir, rel: &Path, dir: &Stat) -> Result<()> {
        self.stats.whiteouts += 1;
        match self.options.whiteouts {
            Whiteouts::Apply => {
                for entry in dst.entries().at(rel)? {
                    let name = entry.at(rel)?.file_name();
                    self.remove(dst, rel, &name)?;
                }
            }
            Whiteouts::Overlay => {
                if let Some(meta) = self.dir_meta.get_mut(rel) {
                    meta.xattrs
                        .push((whiteout::OPAQUE_XATTRS[0].into(), b"y".to_vec()));
                }
            }
            Whiteouts::Aufs => {
                // As containers/storage writes the marker into a layer tar: the directory's
                // permissions and owner, time zero.
                let mut stat = *dir;
                stat.st_mode = (stat.st_mode & 0o7777) | libc::S_IFREG;
                (
                    stat.st_mtime,
                    stat.st_mtime_nsec,
                    stat.st_atime,
                    stat.st_atime_nsec,
                ) = (0, 0, 0, 0);
                let path = rel.join(whiteout::OPAQUE_MARKER);
                let marker = create_file(dst, OsStr::new(whiteout::OPAQUE_MARKER), &path)?;
                let meta = Meta {
                    stat,
                    xattrs: Vec::new(),
                };
                self.options.set_meta(Target::Fd(&marker), &meta, &path)?;
            }
        }
        Ok(())
    }

    /// Applies one entry of a `diff/` directory; returns its path when it is a directory to walk,
    /// with whether this layer created it.
    #[allow(clippy::too_many_arguments)]
    fn entry(
        &mut self,
        src: &Dir,
        dst: &Dir,
        rel: &Path,
        name: &OsStr,
        stat: Stat,
        shown: &Path,
        links: &mut HashMap<u64, PathBuf>,
    ) -> Result<Option<(PathBuf, bool)>> {
        let file_type = FileType::from_raw_mode(stat.st_mode);
        match whiteout::marker(name) {
            Marker::Opaque if file_type == FileType::RegularFile => return Ok(None),
            Marker::Whiteout(deleted) if file_type == FileType::RegularFile => {
                return self.whiteout(dst, rel, deleted, &stat).map(|()| None)
            }
            _ => {}
        }
        let is_char_whiteout = file_type == FileType::CharacterDevice && stat.st_rdev == 0;
        // A regular file is opened first: its xattrs are then read by fd, not by a path
        // resolved through /proc.
        let from = match file_type {
            FileType::RegularFile => Some(File::from(
                rustix::fs::openat(
                    src,
                    name,
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| Error::io(shown, e.into()))?,
            )),
            _ => None,
        };
        let xattrs = match &from {
            _ if !self.options.xattrs && stat.st_size != 0 => Vec::new(),
            Some(file) => read_xattrs(Target::Fd(file), shown)?,
            None => read_xattrs(Target::At(src, name), shown)?,
        };
        let is_xattr_whiteout = file_type == FileType::RegularFile
            && stat.st_size == 0
            && has_flag(&xattrs, &whiteout::WHITEOUT_XATTRS);
        if is_char_whiteout || is_xattr_whiteout {
            return self.whiteout(dst, rel, name, &stat).map(|()| None);
        }
        let content = match (file_type, from) {
            (FileType::RegularFile, Some(from)) => Content::File(from),
            (FileType::Symlink, _) => Content::Symlink(
                rustix::fs::readlinkat(src, name, Vec::new())
                    .map_err(|e| Error::io(shown, e.into()))?
                    .into_bytes(),
            ),
            _ => Content::None,
        };
        let meta = Meta {
            stat,
            xattrs: self.options.own_xattrs(xattrs),
        };
        self.place(dst, rel, name, meta, content, stat.st_ino, links)
    }

    /// Writes one entry that is not a whiteout into `dst` (what was there goes), with `meta`;
    /// `inode` identifies it among the layer's hardlinks. Returns its path when it is a
    /// directory to walk, with whether this layer created it.
    #[allow(clippy::too_many_arguments)]
    fn place(
        &mut self,
        dst: &Dir,
        rel: &Path,
        name: &OsStr,
        meta: Meta,
        content: Content,
        inode: u64,
        links: &mut HashMap<u64, PathBuf>,
    ) -> Result<Option<(PathBuf, bool)>> {
        let stat = meta.stat;
        let file_type = FileType::from_raw_mode(stat.st_mode);
        let path = rel.join(name);
        if file_type == FileType::Directory {
            let existing = !self.fresh
                && rustix::fs::statat(dst, name, AtFlags::SYMLINK_NOFOLLOW)
                    .is_ok_and(|s| FileType::from_raw_mode(s.st_mode) == FileType::Directory);
            if !existing {
                self.remove(dst, rel, name)?;
                rustix::fs::mkdirat(dst, name, Mode::from_raw_mode(0o700))
                    .map_err(|e| Error::io(&path, e.into()))?;
                self.stats.dirs += 1;
            }
            self.dir_meta.insert(path.clone(), meta);
            return Ok(Some((path, !existing)));
        }
        self.remove(dst, rel, name)?;
        if stat.st_nlink > 1 {
            if let Some(first) = links.get(&inode) {
                rustix::fs::linkat(self.root, first.as_os_str(), dst, name, AtFlags::empty())
                    .map_err(|e| Error::io(&path, e.into()))?;
                self.stats.hardlinks += 1;
                return Ok(None);
            }
            links.insert(inode, path.clone());
        }
        match (file_type, content) {
            (FileType::RegularFile, Content::File(from)) => {
                let method = write_regular(
                    &self.options,
                    &mut self.cloner,
                    from,
                    dst,
                    name,
                    &meta,
                    &path,
                )?;
                self.stats.count_file(method);
                self.advance(stat.st_size as u64);
            }
            (FileType::RegularFile, Content::Bytes(bytes)) => {
                let mut file = create_file(dst, name, &path)?;
                std::io::Write::write_all(&mut file, &bytes).map_err(|e| Error::io(&path, e))?;
                self.options.set_meta(Target::Fd(&file), &meta, &path)?;
                self.stats.count_file(None);
                self.advance(bytes.len() as u64);
            }
            (FileType::Symlink, Content::Symlink(link)) => {
                rustix::fs::symlinkat(link, dst, name).map_err(|e| Error::io(&path, e.into()))?;
                self.options.set_meta(Target::At(dst, name), &meta, &path)?;
                self.stats.symlinks += 1;
            }
            (FileType::Fifo, _) => {
                rustix::fs::mkfifoat(dst, name, Mode::from_raw_mode(0o600))
                    .map_err(|e| Error::io(&path, e.into()))?;
                self.options.set_meta(Target::At(dst, name), &meta, &path)?;
                self.stats.specials += 1;
            }
            (FileType::CharacterDevice | FileType::BlockDevice, _) => {
                match rustix::fs::mknodat(
                    dst,
                    name,
                    file_type,
                    Mode::from_raw_mode(0o600),
                    stat.st_rdev,
                ) {
                    Ok(()) => {
                        self.options.set_meta(Target::At(dst, name), &meta, &path)?;
                        self.stats.specials += 1;
                    }
                    Err(Errno::PERM) => self.stats.skipped += 1,
                    Err(e) => return Err(Error::io(&path, e.into())),
                }
            }
            _ => self.stats.skipped += 1,
        }
        Ok(None)
    }

    /// Handles a whiteout of `deleted` in the directory `dst`; `recorded` is the stat of the
    /// whiteout itself, whose mode, owner and times a written whiteout keeps.
    fn whiteout(&mut self, dst: &Dir, rel: &Path, deleted: &OsStr, recorded: &Stat) -> Result<()> {
        self.stats.whiteouts += 1;
        self.remove(dst, rel, deleted)?;
        let meta = Meta {
            stat: *recorded,
            xattrs: Vec::new(),
        };
        match self.options.whiteouts {
            Whiteouts::Apply => Ok(()),
            Whiteouts::Overlay => {
                let path = rel.join(deleted);
                rustix::fs::mknodat(dst, deleted, FileType::CharacterDevice, Mode::empty(), 0)
                    .map_err(|e| Error::io(&path, e.into()))?;
                self.options
                    .set_meta(Target::At(dst, deleted), &meta, &path)
            }
            Whiteouts::Aufs => {
                let mut marker = OsString::from(whiteout::PREFIX);
                marker.push(deleted);
                let path = rel.join(&marker);
                self.remove(dst, rel, &marker)?;
                let file = create_file(dst, &marker, &path)?;
                self.options.set_meta(Target::Fd(&file), &meta, &path)
            }
        }
    }

    /// Removes `name` from `dst` whatever it is (a directory with its contents), and forgets the
    /// metadata recorded for directories that were beneath it.
    fn remove(&mut self, dst: &Dir, rel: &Path, name: &OsStr) -> Result<()> {
        if self.fresh {
            return Ok(());
        }
        let path = rel.join(name);
        let result = match rustix::fs::statat(dst, name, AtFlags::SYMLINK_NOFOLLOW) {
            Err(Errno::NOENT) => return Ok(()),
            Err(e) => Err(e.into()),
            Ok(s) if FileType::from_raw_mode(s.st_mode) == FileType::Directory => {
                dst.remove_dir_all(name)
            }
            Ok(_) => rustix::fs::unlinkat(dst, name, AtFlags::empty()).map_err(Into::into),
        };
        result.map_err(|e| Error::io(&path, e))?;
        let doomed: Vec<PathBuf> = self
            .dir_meta
            .range(path.clone()..)
            .take_while(|(k, _)| k.starts_with(&path))
            .map(|(k, _)| k.clone())
            .collect();
        for key in doomed {
            self.dir_meta.remove(&key);
        }
        Ok(())
    }

    fn advance(&mut self, bytes: u64) {
        self.stats.bytes += bytes;
        self.report.bytes = self.stats.bytes;
        if self.stats.bytes - self.reported_bytes >= PROGRESS_STEP_BYTES {
            self.reported_bytes = self.stats.bytes;
            (self.progress)(self.report);
        }
    }

    /// Gives every directory its recorded metadata, children before parents.
    fn finish(&mut self) -> Result<()> {
        let dir_meta = std::mem::take(&mut self.dir_meta);
        for (rel, meta) in dir_meta.iter().rev() {
            // `open_beneath` may give an `O_PATH` descriptor, which metadata calls refuse;
            // reopening `.` through it stays beneath the staging root.
            let dir = rustix::fs::openat(
                open_beneath(self.root, rel, rel)?,
                ".",
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| Error::io(rel, e.into()))?;
            self.options.set_meta(Target::Fd(&dir), meta, rel)?;
        }
        (self.progress)(self.report);
        Ok(())
    }
}

/// Where the files of one directory are copied: from the layer's directory to the target's.
struct Place<'a> {
    src: &'a Dir,
    dst: &'a Dir,
    /// The directory beneath the target, and beneath the store, for errors.
    rel: &'a Path,
    src_path: &'a Path,
}

/// Copies one plain regular file (see [`Applier::copy_files`]): opens it, reads its xattrs by fd,
/// writes the copy with its metadata.
fn copy_plain(
    options: &ExtractOptions,
    cloner: &mut Cloner,
    place: &Place<'_>,
    name: &OsStr,
    stat: &Stat,
) -> Result<Option<CopyMethod>> {
    let shown = place.src_path.join(name);
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let from = File::from(
        rustix::fs::openat(place.src, name, flags, Mode::empty())
            .map_err(|e| Error::io(&shown, e.into()))?,
    );
    let xattrs = if options.xattrs {
        read_xattrs(Target::Fd(&from), &shown)?
    } else {
        Vec::new()
    };
    let meta = Meta {
        stat: *stat,
        xattrs: options.own_xattrs(xattrs),
    };
    write_regular(
        options,
        cloner,
        from,
        place.dst,
        name,
        &meta,
        &place.rel.join(name),
    )
}

/// Creates `name` in `dst` as a copy of the open regular file `from`, with `meta`; returns how
/// the content got there (`None` for an empty file).
fn write_regular(
    options: &ExtractOptions,
    cloner: &mut Cloner,
    mut from: File,
    dst: &Dir,
    name: &OsStr,
    meta: &Meta,
    path: &Path,
) -> Result<Option<CopyMethod>> {
    let mut to = create_file(dst, name, path)?;
    let size = meta.stat.st_size as u64;
    let method = if size > 0 {
        Some(
            cloner
                .copy(&mut from, &mut to, size)
                .map_err(|e| Error::io(path, e))?,
        )
    } else {
        None
    };
    options.set_meta(Target::Fd(&to), meta, path)?;
    Ok(method)
}

/// Opens the directory `rel` beneath `root` without following a symlink anywhere on the way out.
fn open_beneath(root: &Dir, rel: &Path, shown: &Path) -> Result<Dir> {
    if rel.as_os_str().is_empty() {
        root.try_clone().at(shown)
    } else {
        root.open_dir_nofollow(rel).at(shown)
    }
}

/// Creates an empty regular file, private until its metadata is applied.
fn create_file(dir: &Dir, name: &OsStr, path: &Path) -> Result<File> {
    rustix::fs::openat(
        dir,
        name,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )
    .map(File::from)
    .map_err(|e| Error::io(path, e.into()))
}
