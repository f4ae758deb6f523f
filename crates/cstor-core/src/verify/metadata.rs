//! A layer's `diff/` against the tar headers its tar-split recorded: type, mode, owner, mtime,
//! size, link target, device numbers, xattrs and whiteouts, path by path.
//!
//! podman 5's `system check` (containers/storage `check.go`) mounts each layer and compares the
//! merged tree with the headers of every layer below; cstor compares each layer's own `diff/` with
//! its own headers, which finds the same damage (a chmod, chown, touch or replaced symlink in a
//! `diff/` shows in every merged view above it) and names the one layer that holds it. What may
//! differ follows what containers/storage's extraction (`pkg/archive`) does and does not restore:
//!
//! - The layer root (`diff/` itself) is the driver's, whatever a `./` header says; directories
//!   with no header of their own (parents the tar never named) are made by the extraction with
//!   its own metadata: neither is compared, nor "added".
//! - A hardlink is the same inode as its target (checked by inode); its header's owner, mode and
//!   time may have been applied to that inode, so the target matches either header.
//! - Permission bits are not compared on symlinks (Linux has none to set); sizes only on regular
//!   files; mtimes in whole seconds, a time before 1970 being restored as the epoch.
//! - Whiteouts (`.wh.<name>`) are a character device 0:0, an `overlay.whiteout` file or an AUFS
//!   `.wh.` file; opaque markers the `overlay.opaque` xattr or an AUFS marker file. Their own
//!   metadata is not restored and not compared.
//! - Xattrs: overlayfs's own, `security.selinux` (containers/storage never copies it) and
//!   `user.containers.override_stat` (which `force_mask` stores hold the real owner and mode in,
//!   and which is read for them) are not compared; in a user namespace only `user.*` ones are,
//!   as the others cannot be set there, and missing devices (no mknod there) are not reported.
//! - Layers pulled partially (zstd:chunked, a `toc-digest` in the record): podman 5.8 restores
//!   neither directory nor symlink mtimes and makes no fifos there; such differences come back
//!   marked [`Difference::unrestored`], which `verify` reports as notes, not damage.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use cap_fs_ext::DirExt;

use rustix::fs::FileType;

use crate::content::export::entry_path;
use crate::content::layer_tree::{as_path, join, split, walk, walk_composefs, Actual, Key, Walked};
use crate::content::reader::LayerReader;
use crate::content::toc::{entry_kind, pax_xattrs, EntryKind};
use crate::content::whiteout::{self, Marker};
use crate::content::xattr::has_flag;
use crate::error::{into_core_error, Error, IoContext, Result};
use crate::store::layers::{IdMapping, Layer};
use crate::store::Store;

/// Xattrs that are never compared: containers/storage does not restore the SELinux label from a
/// tar, and keeps a `force_mask` store's real owner and mode in the override xattr.
const UNCOMPARED_XATTRS: [&str; 2] = ["security.selinux", OVERRIDE_XATTR];

/// Where a store with `force_mask` keeps the owner and mode a file should have ("uid:gid:mode").
const OVERRIDE_XATTR: &str = "user.containers.override_stat";

/// One path whose `diff/` entry differs from the layer's tar headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// The path beneath the layer root (the tar's name, without `./`; empty for the root).
    pub path: PathBuf,
    pub changes: Vec<Change>,
    /// Every change is one podman's own partial pulls leave (see the module documentation).
    pub unrestored: bool,
}

impl Difference {
    /// The changes, comma-separated.
    pub fn describe(&self) -> String {
        let changes: Vec<String> = self.changes.iter().map(Change::to_string).collect();
        changes.join(", ")
    }
}

/// One way a `diff/` entry differs; values read as `tar→diff`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The tar has the entry, `diff/` does not.
    Missing,
    /// `diff/` has an entry the tar does not (for a directory: its contents too).
    Added,
    Type(&'static str, &'static str),
    Mode(u32, u32),
    Uid(u64, u64),
    Gid(u64, u64),
    Mtime(i64, i64),
    Size(u64, u64),
    /// A symlink's target.
    Target(Vec<u8>, Vec<u8>),
    /// A hardlink that is not the same file as the entry it links to (named here).
    NotLinked(PathBuf),
    Device((u32, u32), (u32, u32)),
    /// An xattr missing (`Some`, `None`), added (`None`, `Some`) or with another value.
    Xattr(String, Option<Vec<u8>>, Option<Vec<u8>>),
    /// Whether the directory is opaque (hides the layers below).
    Opaque(bool, bool),
}

impl fmt::Display for Change {
    /// In the form of `podman system check`'s findings (`mtime:0x…→0x…`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let yes_no = |b: bool| if b { "yes" } else { "no" };
        match self {
            Change::Missing => write!(f, "missing"),
            Change::Added => write!(f, "added"),
            Change::Type(tar, diff) => write!(f, "type:{tar}→{diff}"),
            Change::Mode(tar, diff) => write!(f, "mode:{tar:04o}→{diff:04o}"),
            Change::Uid(tar, diff) => write!(f, "uid:{tar}→{diff}"),
            Change::Gid(tar, diff) => write!(f, "gid:{tar}→{diff}"),
            Change::Mtime(tar, diff) => write!(f, "mtime:{tar:#x}→{diff:#x}"),
            Change::Size(tar, diff) => write!(f, "size:{tar}→{diff}"),
            Change::Target(tar, diff) => write!(
                f,
                "target:{}→{}",
                String::from_utf8_lossy(tar),
                String::from_utf8_lossy(diff)
            ),
            Change::NotLinked(target) => {
                write!(f, "hardlink:not the same file as {}", target.display())
            }
            Change::Device(tar, diff) => {
                write!(f, "device:{},{}→{},{}", tar.0, tar.1, diff.0, diff.1)
            }
            Change::Xattr(name, tar, diff) => match (tar, diff) {
                (Some(_), None) => write!(f, "xattr {name}:missing"),
                (None, _) => write!(f, "xattr {name}:added"),
                (Some(_), Some(_)) => write!(f, "xattr {name}:changed"),
            },
            Change::Opaque(tar, diff) => write!(f, "opaque:{}→{}", yes_no(*tar), yes_no(*diff)),
        }
    }
}

/// What a header says an entry is; `kind` `Whiteout` for a `.wh.` entry (a deletion).
#[derive(Debug, Clone)]
struct Expected {
    kind: EntryKind,
    attrs: Attrs,
    size: u64,
    /// A symlink's target, or a hardlink's target path.
    link: Vec<u8>,
    device: (u32, u32),
    xattrs: Vec<(String, Vec<u8>)>,
}

/// What the extraction sets on an inode from a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Attrs {
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: i64,
}

/// The layer as its headers describe it.
#[derive(Default)]
struct Headers {
    entries: HashMap<Key, Expected>,
    /// Directories holding a `.wh..wh..opq` marker.
    opaque: HashSet<Key>,
    /// Hardlink target → the attributes its links' headers carry (applied to the same inode).
    link_attrs: HashMap<Key, Vec<Attrs>>,
}

/// How comparisons bend for where the check runs and how the layer was written.
struct Rules<'a> {
    in_user_namespace: bool,
    partial_pull: bool,
    uidmap: &'a [IdMapping],
    gidmap: &'a [IdMapping],
}

impl Store {
    /// The paths where `layer`'s `diff/` differs from its tar headers, in path order. Reads the
    /// tar-split and every entry's `lstat`, link target and xattrs — never file content.
    /// `EUNSUPPORTED` for a layer without a tar-split (nothing recorded to compare with). A
    /// composefs layer's tree is read from its EROFS blob instead of `diff/`.
    pub fn compare_layer_metadata(&self, layer: &Layer) -> Result<Vec<Difference>> {
        let rules = Rules {
            in_user_namespace: in_user_namespace(),
            partial_pull: layer.record.toc_digest.is_some(),
            uidmap: &layer.record.uidmap,
            gidmap: &layer.record.gidmap,
        };
        if self.is_composefs_layer(layer) {
            let walked = walk_composefs(self.composefs_entries(layer)?, true);
            return Ok(Comparison::new(self.layer_headers(layer)?, rules).run(walked));
        }
        let diff_path = Path::new("overlay").join(layer.id()).join("diff");
        let diff = self
            .dir(layer.store_index)
            .dir
            .open_dir_nofollow(&diff_path)
            .at(&diff_path)?;
        // The tar-split's headers and the walk of diff/ take about as long as each other on a
        // big layer (gunzip and tar parsing; a stat and listxattr per entry): side by side.
        let (headers, walked) = std::thread::scope(|scope| {
            let headers = scope.spawn(|| self.layer_headers(layer));
            let walked = walk(&diff, &diff_path, true);
            let headers = headers.join().unwrap_or_else(|_| {
                Err(Error::io(
                    &diff_path,
                    std::io::Error::other("the header reader panicked"),
                ))
            });
            (headers, walked)
        });
        Ok(Comparison::new(headers?, rules).run(walked?))
    }

    fn layer_headers(&self, layer: &Layer) -> Result<Headers> {
        let (decoder, split_path) = self.tar_split(layer)?;
        let corrupt = |e: std::io::Error| Error::Corrupt {
            path: split_path.clone(),
            detail: format!("the layer's tar does not parse: {e}"),
        };
        let failed = |e: std::io::Error| into_core_error(e, corrupt);
        let mut archive = tar::Archive::new(LayerReader::headers_only(decoder, layer.id()));
        let mut headers = Headers::default();
        for entry in archive.entries_with_seek().map_err(failed)? {
            let mut entry = entry.map_err(failed)?;
            if entry.header().entry_type() == tar::EntryType::XGlobalHeader {
                continue;
            }
            let path = entry_path(&entry.path_bytes(), &split_path)?;
            let expected = expected(&mut entry, &split_path).map_err(failed)?;
            headers.add(path.into_os_string().into_vec(), expected);
        }
        Ok(headers)
    }
}

/// An entry's expected state from its header (PAX records override the header fields).
fn expected<R: std::io::Read>(
    entry: &mut tar::Entry<R>,
    split_path: &Path,
) -> std::io::Result<Expected> {
    let header = entry.header();
    let kind = entry_kind(header.entry_type());
    let mut attrs = Attrs {
        mode: header.mode()? & 0o7777,
        uid: header.uid()?,
        gid: header.gid()?,
        mtime: header.mtime()? as i64,
    };
    let device = (
        header.device_major().ok().flatten().unwrap_or(0),
        header.device_minor().ok().flatten().unwrap_or(0),
    );
    if let Some(extensions) = entry.pax_extensions()? {
        for extension in extensions {
            let extension = extension?;
            let value = || extension.value().ok().map(str::trim);
            match extension.key() {
                Ok("uid") => attrs.uid = value().and_then(|v| v.parse().ok()).unwrap_or(attrs.uid),
                Ok("gid") => attrs.gid = value().and_then(|v| v.parse().ok()).unwrap_or(attrs.gid),
                Ok("mtime") => {
                    let seconds = value().and_then(|v| v.split('.').next()?.parse().ok());
                    attrs.mtime = seconds.unwrap_or(attrs.mtime);
                }
                _ => {}
            }
        }
    }
    let link = match entry.link_name_bytes() {
        Some(link) if kind == EntryKind::Hardlink => entry_path(&link, split_path)
            .map_err(std::io::Error::other)?
            .into_os_string()
            .into_vec(),
        Some(link) if kind == EntryKind::Symlink => link.into_owned(),
        _ => Vec::new(),
    };
    Ok(Expected {
        kind,
        attrs,
        size: if kind == EntryKind::Reg {
            entry.size()
        } else {
            0
        },
        link,
        device,
        xattrs: pax_xattrs(entry)?,
    })
}

impl Headers {
    /// Records one header; a later header of the same path replaces an earlier one, as the
    /// extraction overwrites it.
    fn add(&mut self, path: Key, mut expected: Expected) {
        let (parent, name) = split(&path);
        match whiteout::marker(OsStr::from_bytes(name)) {
            Marker::Opaque => {
                self.opaque.insert(parent.to_vec());
            }
            Marker::Whiteout(deleted) => {
                expected.kind = EntryKind::Whiteout;
                self.entries
                    .insert(join(parent, deleted.as_bytes()), expected);
            }
            Marker::None => {
                if expected.kind == EntryKind::Hardlink {
                    self.link_attrs
                        .entry(expected.link.clone())
                        .or_default()
                        .push(expected.attrs);
                }
                self.entries.insert(path, expected);
            }
        }
    }

    /// Directories the extraction made on the way to a named path without a header of their own.
    fn implicit_dirs(&self) -> HashSet<Key> {
        let mut dirs = HashSet::new();
        for path in self.entries.keys().chain(self.opaque.iter()) {
            let mut ancestor: &[u8] = path;
            while !ancestor.is_empty() {
                ancestor = split(ancestor).0;
                if self.entries.contains_key(ancestor) {
                    continue;
                }
                if !dirs.insert(ancestor.to_vec()) {
                    break;
                }
            }
        }
        dirs
    }
}

/// Whether this process runs in a user namespace (a rootless store's `podman unshare`), where
/// containers/storage could set no device node and no non-`user.` xattr when it wrote the layer.
fn in_user_namespace() -> bool {
    std::fs::read_to_string("/proc/self/uid_map")
        .map(|map| {
            let fields: Vec<&str> = map.split_whitespace().collect();
            fields != ["0", "0", "4294967295"]
        })
        .unwrap_or(false)
}

/// One walk of `diff/` against the headers.
struct Comparison<'a> {
    headers: Headers,
    implicit: HashSet<Key>,
    rules: Rules<'a>,
    /// Hardlink targets → their (device, inode) in `diff/`.
    inodes: HashMap<Key, (u64, u64)>,
    targets: HashSet<Key>,
    /// Directories found opaque: by the overlay xattr or an AUFS marker file.
    opaque: HashSet<Key>,
    differences: Vec<Difference>,
}

/// A hardlink met in the walk: its path, the path it links to, its (device, inode).
type Link = (Key, Key, (u64, u64));

impl<'a> Comparison<'a> {
    fn new(headers: Headers, rules: Rules<'a>) -> Self {
        let implicit = headers.implicit_dirs();
        let targets = headers
            .entries
            .values()
            .filter(|e| e.kind == EntryKind::Hardlink)
            .map(|e| e.link.clone())
            .collect();
        Comparison {
            headers,
            implicit,
            rules,
            inodes: HashMap::new(),
            targets,
            opaque: HashSet::new(),
            differences: Vec::new(),
        }
    }

    fn run(mut self, walked: Walked) -> Vec<Difference> {
        // The layer root is `diff/` itself, which the driver makes (mode 0555 once committed);
        // no extraction restores a `./` header on it, and podman's check compares what is
        // beneath the root only.
        self.headers.entries.remove(&Key::new());
        self.opaque = walked.aufs_opaque;
        // Directories reported as added or of another type: what is beneath them is not
        // reported again.
        let mut skipped = HashSet::new();
        let mut links = Vec::new();
        for (path, actual) in walked.entries {
            let is_dir = FileType::from_raw_mode(actual.stat.st_mode) == FileType::Directory;
            if skipped.contains(split(&path).0) {
                if is_dir {
                    skipped.insert(path);
                }
                continue;
            }
            if !self.entry(&path, actual, &mut links) && is_dir {
                skipped.insert(path);
            }
        }
        self.hardlinks(links);
        self.leftovers(&walked.aufs_whiteouts);
        let mut differences = self.differences;
        differences.sort_by(|a, b| a.path.cmp(&b.path));
        differences
    }

    /// Compares one `diff/` entry; returns whether what is beneath it is to be compared too (a
    /// directory the headers name or imply; not one that was added or replaced a file).
    fn entry(&mut self, path: &Key, actual: Actual, links: &mut Vec<Link>) -> bool {
        let file_type = FileType::from_raw_mode(actual.stat.st_mode);
        let is_dir = file_type == FileType::Directory;
        let inode = (actual.stat.st_dev, actual.stat.st_ino);
        if self.targets.contains(path) {
            self.inodes.insert(path.clone(), inode);
        }
        let opaque = is_dir && has_flag(&actual.xattrs, &whiteout::OPAQUE_XATTRS);
        let Some(expected) = self.headers.entries.remove(path) else {
            if is_dir && self.implicit.contains(path) {
                if opaque {
                    self.opaque.insert(path.clone());
                }
                return true;
            }
            self.differ(path, vec![Change::Added], None);
            return false;
        };
        if expected.kind == EntryKind::Hardlink {
            links.push((path.clone(), expected.link, inode));
            return false;
        }
        let mut changes = Vec::new();
        let actual_kind = kind_of(&actual);
        if actual_kind != expected.kind {
            changes.push(Change::Type(expected.kind.as_str(), actual_kind.as_str()));
            self.differ(path, changes, Some(expected.kind));
            return false;
        }
        if expected.kind != EntryKind::Whiteout {
            self.attributes(path, &expected, &actual, &mut changes);
        }
        self.differ(path, changes, Some(expected.kind));
        if opaque {
            self.opaque.insert(path.clone());
        }
        is_dir
    }

    fn attributes(
        &self,
        path: &Key,
        expected: &Expected,
        actual: &Actual,
        changes: &mut Vec<Change>,
    ) {
        let stat = &actual.stat;
        let (mut uid, mut gid, mut mode) = (
            stat.st_uid as u64,
            stat.st_gid as u64,
            stat.st_mode & 0o7777,
        );
        if let Some((o_uid, o_gid, o_mode)) = override_stat(&actual.xattrs) {
            (uid, gid, mode) = (o_uid, o_gid, o_mode);
        }
        let mtime = stat.st_mtime;
        let own = expected.attrs;
        let alternatives = self.headers.link_attrs.get(path);
        let matches = |test: &dyn Fn(&Attrs) -> bool| {
            test(&own) || alternatives.is_some_and(|list| list.iter().any(test))
        };
        let host_uid = map_id(own.uid, self.rules.uidmap);
        let host_gid = map_id(own.gid, self.rules.gidmap);
        if !matches(&|a| map_id(a.uid, self.rules.uidmap) == uid) {
            changes.push(Change::Uid(host_uid, uid));
        }
        if !matches(&|a| map_id(a.gid, self.rules.gidmap) == gid) {
            changes.push(Change::Gid(host_gid, gid));
        }
        if expected.kind != EntryKind::Symlink && !matches(&|a| a.mode == mode) {
            changes.push(Change::Mode(own.mode, mode));
        }
        // containers/storage restores a time before the epoch as the epoch.
        if !matches(&|a| a.mtime.max(0) == mtime) {
            changes.push(Change::Mtime(own.mtime.max(0), mtime));
        }
        if expected.kind == EntryKind::Reg && expected.size != stat.st_size as u64 {
            changes.push(Change::Size(expected.size, stat.st_size as u64));
        }
        if expected.kind == EntryKind::Symlink && expected.link != actual.target {
            changes.push(Change::Target(expected.link.clone(), actual.target.clone()));
        }
        if matches!(expected.kind, EntryKind::Char | EntryKind::Block) {
            let device = (
                rustix::fs::major(stat.st_rdev),
                rustix::fs::minor(stat.st_rdev),
            );
            if device != expected.device {
                changes.push(Change::Device(expected.device, device));
            }
        }
        self.xattrs(&expected.xattrs, &actual.xattrs, changes);
    }

    fn xattrs(
        &self,
        tar: &[(String, Vec<u8>)],
        diff: &[(OsString, Vec<u8>)],
        changes: &mut Vec<Change>,
    ) {
        let compared = |name: &[u8]| {
            !whiteout::is_overlay_xattr(name)
                && !UNCOMPARED_XATTRS.iter().any(|n| n.as_bytes() == name)
                && (!self.rules.in_user_namespace || name.starts_with(b"user."))
        };
        let tar: BTreeMap<&[u8], &Vec<u8>> = tar
            .iter()
            .map(|(k, v)| (k.as_bytes(), v))
            .filter(|(k, _)| compared(k))
            .collect();
        let diff: BTreeMap<&[u8], &Vec<u8>> = diff
            .iter()
            .map(|(k, v)| (k.as_bytes(), v))
            .filter(|(k, _)| compared(k))
            .collect();
        for name in tar
            .keys()
            .chain(diff.keys())
            .collect::<std::collections::BTreeSet<_>>()
        {
            let (t, d) = (tar.get(name), diff.get(name));
            if t != d {
                changes.push(Change::Xattr(
                    String::from_utf8_lossy(name).into_owned(),
                    t.map(|v| v.to_vec()),
                    d.map(|v| v.to_vec()),
                ));
            }
        }
    }

    fn hardlinks(&mut self, links: Vec<Link>) {
        for (path, target, inode) in links {
            if self.inodes.get(&target) != Some(&inode) {
                let target = PathBuf::from(OsString::from_vec(target));
                self.differ(
                    &path,
                    vec![Change::NotLinked(target)],
                    Some(EntryKind::Hardlink),
                );
            }
        }
    }

    /// Headers the walk met no entry for, and opacity that does not match the markers.
    fn leftovers(&mut self, aufs_whiteouts: &HashSet<Key>) {
        let entries = std::mem::take(&mut self.headers.entries);
        for (path, expected) in entries {
            if expected.kind == EntryKind::Whiteout && aufs_whiteouts.contains(&path) {
                continue;
            }
            let device = matches!(expected.kind, EntryKind::Char | EntryKind::Block);
            if device && self.rules.in_user_namespace {
                continue;
            }
            self.differ(&path, vec![Change::Missing], Some(expected.kind));
        }
        let marked = std::mem::take(&mut self.headers.opaque);
        let found = std::mem::take(&mut self.opaque);
        for path in marked.symmetric_difference(&found) {
            let tar = marked.contains(path);
            self.differ(path, vec![Change::Opaque(tar, !tar)], Some(EntryKind::Dir));
        }
    }

    fn differ(&mut self, path: &[u8], changes: Vec<Change>, kind: Option<EntryKind>) {
        if changes.is_empty() {
            return;
        }
        let unrestored =
            self.rules.partial_pull && changes.iter().all(|c| unrestored_by_partial_pull(kind, c));
        self.differences.push(Difference {
            path: as_path(path).to_owned(),
            changes,
            unrestored,
        });
    }
}

/// What podman 5.8's partial (zstd:chunked) pulls do not restore: directory and symlink mtimes,
/// and fifos, which it does not make.
fn unrestored_by_partial_pull(kind: Option<EntryKind>, change: &Change) -> bool {
    matches!(
        (kind, change),
        (Some(EntryKind::Dir | EntryKind::Symlink), Change::Mtime(..))
            | (Some(EntryKind::Fifo), Change::Missing)
    )
}

/// The kind of a `diff/` entry, whiteouts (char 0:0, or an `overlay.whiteout` empty file) told
/// apart.
fn kind_of(actual: &Actual) -> EntryKind {
    let stat = &actual.stat;
    match FileType::from_raw_mode(stat.st_mode) {
        FileType::Directory => EntryKind::Dir,
        FileType::Symlink => EntryKind::Symlink,
        FileType::CharacterDevice if stat.st_rdev == 0 => EntryKind::Whiteout,
        FileType::CharacterDevice => EntryKind::Char,
        FileType::BlockDevice => EntryKind::Block,
        FileType::Fifo => EntryKind::Fifo,
        FileType::RegularFile
            if stat.st_size == 0 && has_flag(&actual.xattrs, &whiteout::WHITEOUT_XATTRS) =>
        {
            EntryKind::Whiteout
        }
        _ => EntryKind::Reg,
    }
}

/// The owner and permission bits a `force_mask` store keeps in its override xattr.
fn override_stat(xattrs: &[(OsString, Vec<u8>)]) -> Option<(u64, u64, u32)> {
    let (_, value) = xattrs
        .iter()
        .find(|(k, _)| k.as_bytes() == OVERRIDE_XATTR.as_bytes())?;
    let text = std::str::from_utf8(value).ok()?;
    let mut parts = text.split(':');
    let uid = parts.next()?.parse().ok()?;
    let gid = parts.next()?.parse().ok()?;
    let mode = u32::from_str_radix(parts.next()?, 8).ok()?;
    Some((uid, gid, mode & 0o7777))
}

/// A container ID as the layer's ID mapping stores it on the host (unchanged without a mapping).
fn map_id(id: u64, mappings: &[IdMapping]) -> u64 {
    mappings
        .iter()
        .find(|m| id >= m.container_id as u64 && id < m.container_id as u64 + m.size as u64)
        .map_or(id, |m| id - m.container_id as u64 + m.host_id as u64)
}
