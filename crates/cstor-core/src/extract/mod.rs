//! Extracting a layer, or an image's layers base to top, into a directory.
//!
//! The layers are read as stored — each `diff/`, exactly what overlayfs stacks for `podman image
//! mount`, or a composefs layer's blob — and stacked by the one merge every view of an image
//! uses ([`crate::tree::merge`]): whiteouts delete, opaque directories hide what is below, an
//! upper entry replaces a lower one, an upper directory's metadata wins. The merged tree is then
//! written once, each entry where it ends up; nothing is written only to be deleted by an upper
//! layer. File content is reflinked where the filesystems allow it (see [`crate::extract::clone`]).
//!
//! Safety by construction: the tree is built in a private (0700) staging directory beside the
//! target and renamed into place only when complete (on error it is removed: nothing
//! half-written). Every operation is relative to an open directory fd and names one component
//! of the tree, so no name can contain `/` or be `..`; final components are never followed,
//! and directories are reopened beneath the staging root and beneath each `diff/` without
//! following symlinks. Directories are walked with an explicit stack, so a hostile depth cannot
//! overflow the stack.

pub mod clone;

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use cap_fs_ext::DirExt;
use cap_std::ambient_authority;
use cap_std::fs::Dir;
use rustix::fs::{AtFlags, FileType, Gid, Mode, OFlags, Stat, Timestamps, Uid, XattrFlags};
use rustix::io::Errno;

use crate::content::erofs::Data;
use crate::content::layer_tree::Actual;
use crate::content::toc::EntryKind;
use crate::content::whiteout;
use crate::content::xattr::{proc_path, Target};
use crate::error::{Error, IoContext, Result};
use crate::extract::clone::{Cloner, CopyMethod};
pub use crate::progress::Progress;
use crate::store::images::Image;
use crate::store::layers::Layer;
use crate::store::lock::read_lock;
use crate::store::overlay::overlay_file;
use crate::store::Store;
use crate::threads;
use crate::tree::merge::Stack;
use crate::tree::source::BlobNames;
use crate::tree::{FsTree, Node};

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

    /// Extracts `layers` (base first) stacked by the one merge ([`crate::tree::merge`]): their
    /// merged view when whiteouts are applied, else every layer's entries with the deletions
    /// and opaque directories they record. The tree comes from the layers as stored (each
    /// `diff/` walked, or a composefs layer's blob), so times keep their nanoseconds and
    /// hardlinks their inodes; then it is written, each entry once.
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
        let mut report = Progress {
            layer: 0,
            layers: layers.len(),
            bytes: 0,
            total_bytes: total_bytes.max(0) as u64,
        };
        // The layers stay read-locked until every body is copied.
        let mut guards = Vec::with_capacity(layers.len());
        let mut stack = match options.whiteouts {
            Whiteouts::Apply => Stack::merged(),
            Whiteouts::Overlay | Whiteouts::Aufs => Stack::keeping_whiteouts(),
        };
        let mut seen = Vec::with_capacity(layers.len());
        let mut diffs = Vec::with_capacity(layers.len());
        for (index, layer) in layers.iter().enumerate() {
            report.layer = index;
            progress(report);
            let store_dir = &self.dir(layer.store_index).dir;
            guards.push(read_lock(
                store_dir,
                Path::new("overlay-layers/layers.lock"),
            )?);
            // podman's own mount is what an extraction equals.
            let stored = self.stored_layer(layer, BlobNames::Files)?;
            stack.push(layer.id(), layer.store_index, stored.source);
            seen.push(stored.seen);
            let diff_path = overlay_file(layer.id(), "diff");
            let diff = store_dir.open_dir_nofollow(&diff_path).at(&diff_path)?;
            diffs.push((diff, diff_path));
        }
        let markers = stack.markers();
        let tree = stack.finish();
        let mut writer = Writer {
            tree: &tree,
            seen: &seen,
            diffs: &diffs,
            root: &staging.dir,
            options,
            cloner: Cloner::new(options.reflinks),
            stats: ExtractStats {
                whiteouts: markers,
                ..ExtractStats::default()
            },
            dir_meta: Vec::new(),
            links: HashMap::new(),
            progress,
            report,
            reported_bytes: 0,
        };
        writer.write()?;
        writer.finish()?;
        let stats = writer.stats;
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

/// An entry's recorded metadata: its `lstat` and the xattrs that are the file's own.
#[derive(Clone)]
struct Meta {
    stat: Stat,
    xattrs: Vec<(OsString, Vec<u8>)>,
}

/// Writes a built tree into the staging directory. Everything it creates is new — the tree is
/// final, so nothing is ever replaced or removed — and every name it writes is one component
/// of the tree, created beneath a directory it opened without following a symlink.
struct Writer<'a> {
    tree: &'a FsTree,
    /// What each layer's walk saw, by path.
    seen: &'a [HashMap<Box<str>, Actual>],
    /// Each layer's `diff/`, and its path for errors.
    diffs: &'a [(Dir, PathBuf)],
    root: &'a Dir,
    options: ExtractOptions,
    cloner: Cloner,
    stats: ExtractStats,
    /// Directories with their metadata, parents first; applied children first at the end: a
    /// directory's mode may forbid writing into it, and every write into it changes its mtime.
    dir_meta: Vec<(PathBuf, Meta)>,
    /// The first name written of each hardlink group, by the tree's inode number.
    links: HashMap<u64, PathBuf>,
    progress: &'a mut dyn FnMut(Progress),
    report: Progress,
    reported_bytes: u64,
}

/// A directory's counterpart beneath one layer's `diff/`, and its path for errors.
type Source = (Dir, PathBuf);

/// A plain regular file of one directory, copied apart (see [`Writer::copy_files`]).
struct Job<'n> {
    layer: u32,
    name: &'n OsStr,
    meta: Meta,
}

impl<'a> Writer<'a> {
    /// Writes every entry, directory by directory, and then the directories' metadata.
    fn write(&mut self) -> Result<()> {
        let root_meta = self
            .seen
            .last()
            .and_then(|seen| seen.get(""))
            .map_or_else(implicit_dir_meta, |actual| self.meta_of(actual));
        self.dir_meta.push((PathBuf::new(), root_meta));
        let mut pending = vec![(0u32, PathBuf::new())];
        while let Some((dir, rel)) = pending.pop() {
            let dst = open_beneath(self.root, &rel, &rel)?;
            let mut plain = Vec::new();
            if self.tree.node(dir).opaque && self.options.whiteouts == Whiteouts::Aufs {
                self.opaque_marker(&dst, &rel)?;
            }
            let tree: &'a FsTree = self.tree;
            for &child in &tree.node(dir).children {
                let node = tree.node(child);
                let name = OsStr::new(node.name());
                let path = rel.join(name);
                match node.kind {
                    EntryKind::Dir => {
                        rustix::fs::mkdirat(&dst, name, Mode::from_raw_mode(0o700))
                            .map_err(|e| Error::io(&path, e.into()))?;
                        self.stats.dirs += 1;
                        let mut meta = self
                            .actual(node)
                            .map_or_else(implicit_dir_meta, |a| self.meta_of(a));
                        if node.opaque && self.options.whiteouts == Whiteouts::Overlay {
                            meta.xattrs
                                .push((whiteout::OPAQUE_XATTRS[0].into(), b"y".to_vec()));
                        }
                        self.dir_meta.push((path.clone(), meta));
                        pending.push((child, path));
                    }
                    EntryKind::Whiteout => self.whiteout(&dst, &rel, node)?,
                    _ => {
                        if let Some(first) = self.links.get(&node.ino) {
                            rustix::fs::linkat(self.root, first, &dst, name, AtFlags::empty())
                                .map_err(|e| Error::io(&path, e.into()))?;
                            self.stats.hardlinks += 1;
                            continue;
                        }
                        let actual = self.actual(node).ok_or_else(|| {
                            Error::corrupt(&path, "an entry the layer's walk did not see")
                        })?;
                        let is_plain = FileType::from_raw_mode(actual.stat.st_mode)
                            == FileType::RegularFile
                            && node.nlink == 1
                            && actual.stat.st_size > 0
                            && matches!(actual.data, Data::None);
                        if is_plain {
                            let meta = self.meta_of(actual);
                            plain.push(Job {
                                layer: node.layer,
                                name,
                                meta,
                            });
                            continue;
                        }
                        if node.nlink > 1 {
                            self.links.insert(node.ino, path.clone());
                        }
                        self.place(&dst, &rel, node, actual)?;
                    }
                }
            }
            let sources = self.sources(&rel, plain.iter().map(|job| job.layer))?;
            self.copy_files(&dst, &rel, &sources, &plain)?;
        }
        Ok(())
    }

    /// What the walk of the layer providing `node` saw of it (a hardlink: of its group's body).
    fn actual(&self, node: &Node) -> Option<&'a Actual> {
        let key = node.body.as_deref().unwrap_or(&node.path);
        let seen: &'a [HashMap<Box<str>, Actual>] = self.seen;
        seen[node.layer as usize].get(key)
    }

    /// An entry's metadata, its xattrs filtered as asked.
    fn meta_of(&self, actual: &Actual) -> Meta {
        Meta {
            stat: actual.stat,
            xattrs: self.options.own_xattrs(actual.xattrs.clone()),
        }
    }

    /// The directory `rel` beneath each of `layers`' `diff/`, each opened once.
    fn sources(
        &self,
        rel: &Path,
        layers: impl Iterator<Item = u32>,
    ) -> Result<HashMap<u32, Source>> {
        let mut sources = HashMap::new();
        for layer in layers {
            if let std::collections::hash_map::Entry::Vacant(slot) = sources.entry(layer) {
                let (diff, diff_path) = &self.diffs[layer as usize];
                let shown = diff_path.join(rel);
                slot.insert((open_beneath(diff, rel, &shown)?, shown));
            }
        }
        Ok(sources)
    }

    /// Writes one entry that is neither a directory nor a plain file: a hardlink group's first
    /// name, an empty or inline or content-object file, a symlink, a fifo, a device.
    fn place(&mut self, dst: &Dir, rel: &Path, node: &Node, actual: &Actual) -> Result<()> {
        let name = OsStr::new(node.name());
        let path = rel.join(name);
        let meta = self.meta_of(actual);
        let stat = meta.stat;
        let file_type = FileType::from_raw_mode(stat.st_mode);
        // Content with nothing to open: inline in a composefs blob, or none at all.
        let in_hand: Option<&[u8]> = match &actual.data {
            Data::Inline(bytes) => Some(bytes),
            Data::None if stat.st_size == 0 => Some(&[]),
            _ => None,
        };
        match (file_type, in_hand) {
            (FileType::RegularFile, Some(bytes)) => {
                let mut file = create_file(dst, name, &path)?;
                std::io::Write::write_all(&mut file, bytes).map_err(|e| Error::io(&path, e))?;
                self.options.set_meta(Target::Fd(&file), &meta, &path)?;
                self.stats.count_file(None);
                self.advance(bytes.len() as u64);
            }
            (FileType::RegularFile, None) => {
                let (diff, diff_path) = &self.diffs[node.layer as usize];
                let beneath = match &actual.data {
                    Data::External { payload, .. } => PathBuf::from(OsStr::from_bytes(payload)),
                    _ => PathBuf::from(node.body.as_deref().unwrap_or(&node.path)),
                };
                let from = open_stored(diff, &beneath, &diff_path.join(&beneath))?;
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
            (FileType::Symlink, _) => {
                rustix::fs::symlinkat(actual.target.as_slice(), dst, name)
                    .map_err(|e| Error::io(&path, e.into()))?;
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
        Ok(())
    }

    /// Copies the plain regular files of one directory, on worker threads when there are enough.
    fn copy_files(
        &mut self,
        dst: &Dir,
        rel: &Path,
        sources: &HashMap<u32, Source>,
        jobs: &[Job<'_>],
    ) -> Result<()> {
        let copy_one = |cloner: &mut Cloner, job: &Job<'_>| {
            let (src, src_path) = &sources[&job.layer];
            let shown = src_path.join(job.name);
            let from = open_stored(src, Path::new(job.name), &shown)?;
            let path = rel.join(job.name);
            write_regular(&self.options, cloner, from, dst, job.name, &job.meta, &path)
        };
        let mut stats = ExtractStats::default();
        if threads::workers() == 1 || jobs.len() < PARALLEL_MIN_FILES {
            let mut cloner = self.cloner;
            for job in jobs {
                stats.count_file(copy_one(&mut cloner, job)?);
            }
            self.cloner = cloner;
        } else {
            let cloner = self.cloner;
            let init = || (ExtractStats::default(), cloner);
            let done = threads::each(jobs, "copying", init, |(stats, cloner), job| {
                stats.count_file(copy_one(cloner, job)?);
                Ok(())
            })?;
            for (worker, cloner) in done {
                stats.absorb_files(&worker);
                // A method a worker found refused stays refused for the next files.
                self.cloner = cloner;
            }
        }
        self.stats.absorb_files(&stats);
        self.advance(jobs.iter().map(|j| j.meta.stat.st_size as u64).sum());
        Ok(())
    }

    /// Writes a deletion a layer records (layer trees only), in the form asked for, with the
    /// mode, owner and times of the whiteout the layer holds.
    fn whiteout(&mut self, dst: &Dir, rel: &Path, node: &Node) -> Result<()> {
        let name = OsStr::new(node.name());
        let mut marker = OsString::from(whiteout::PREFIX);
        marker.push(name);
        // The overlay forms are seen at the deleted path, the AUFS form at its `.wh.` file's.
        let marker_key = match node.path.rsplit_once('/') {
            Some((dir, deleted)) => format!("{dir}/{}{deleted}", whiteout::PREFIX),
            None => format!("{}{}", whiteout::PREFIX, node.path),
        };
        let recorded = self
            .actual(node)
            .or_else(|| self.seen[node.layer as usize].get(marker_key.as_str()))
            .ok_or_else(|| Error::corrupt(rel.join(&marker), "a deletion the walk did not see"))?
            .stat;
        let meta = Meta {
            stat: recorded,
            xattrs: Vec::new(),
        };
        match self.options.whiteouts {
            Whiteouts::Apply => Ok(()),
            Whiteouts::Overlay => {
                let path = rel.join(name);
                rustix::fs::mknodat(dst, name, FileType::CharacterDevice, Mode::empty(), 0)
                    .map_err(|e| Error::io(&path, e.into()))?;
                self.options.set_meta(Target::At(dst, name), &meta, &path)
            }
            Whiteouts::Aufs => {
                let path = rel.join(&marker);
                let file = create_file(dst, &marker, &path)?;
                self.options.set_meta(Target::Fd(&file), &meta, &path)
            }
        }
    }

    /// The `.wh..wh..opq` marker of an opaque directory, as containers/storage writes it into a
    /// layer tar: the directory's permissions and owner, time zero.
    fn opaque_marker(&mut self, dst: &Dir, rel: &Path) -> Result<()> {
        let Some((_, dir)) = self.dir_meta.iter().rev().find(|(p, _)| p == rel) else {
            return Ok(());
        };
        let mut stat = dir.stat;
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
        self.options.set_meta(Target::Fd(&marker), &meta, &path)
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

/// The metadata of a directory no layer lists: containers/storage makes missing parents 0755.
fn implicit_dir_meta() -> Meta {
    // SAFETY: `struct stat` is plain integers, for which all-zero bytes are a valid value.
    let mut stat: Stat = unsafe { std::mem::zeroed() };
    stat.st_mode = libc::S_IFDIR | 0o755;
    Meta {
        stat,
        xattrs: Vec::new(),
    }
}

/// Opens a stored file for reading: beneath `diff` without following a symlink anywhere, and
/// without blocking should a FIFO have taken the file's place since the walk.
fn open_stored(diff: &Dir, beneath: &Path, shown: &Path) -> Result<File> {
    let (parent, name) = match (beneath.parent(), beneath.file_name()) {
        (Some(parent), Some(name)) => (parent, name),
        _ => return Err(Error::corrupt(shown, "not a file's path")),
    };
    let dir = open_beneath(diff, parent, shown)?;
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    rustix::fs::openat(&dir, name, flags, Mode::empty())
        .map(File::from)
        .map_err(|e| Error::io(shown, e.into()))
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
