//! A layer's tree as stored, entry by entry: a walk of its `diff/` (fd-relative, never
//! following a symlink), or for a composefs layer the records of its EROFS blob — the same
//! [`Walked`] either way, for the metadata check and for an image's composefs tree.

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

use cap_fs_ext::DirExt;
use cap_std::fs::Dir;
use rustix::fs::{AtFlags, FileType, Stat};

use crate::content::composefs::stat_of;
use crate::content::erofs::{Data, Entry};
use crate::content::whiteout::{self, Marker};
use crate::content::xattr::{read_xattrs, Target};
use crate::error::{Error, IoContext, Result};

/// A path beneath the layer root as bytes (`a/b/c`, empty for the root): hashed and compared as
/// bytes, which for a hundred thousand entries is much cheaper than `Path`'s component-wise
/// hashing and ordering.
pub(crate) type Key = Vec<u8>;

/// `parent/name` as a key.
pub(crate) fn join(parent: &[u8], name: &[u8]) -> Key {
    let mut key = Vec::with_capacity(parent.len() + 1 + name.len());
    if !parent.is_empty() {
        key.extend_from_slice(parent);
        key.push(b'/');
    }
    key.extend_from_slice(name);
    key
}

/// A key's parent and last component.
pub(crate) fn split(key: &[u8]) -> (&[u8], &[u8]) {
    match key.iter().rposition(|b| *b == b'/') {
        Some(at) => (&key[..at], &key[at + 1..]),
        None => (&[], key),
    }
}

/// A key as a path.
pub(crate) fn as_path(key: &[u8]) -> &Path {
    Path::new(OsStr::from_bytes(key))
}

/// What a walk of `diff/` saw: every entry with its path, parents before children, and the
/// AUFS-form markers (`.wh.<name>` files, `.wh..wh..opq` files), which are not entries.
#[derive(Default)]
pub(crate) struct Walked {
    pub entries: Vec<(Key, Actual)>,
    pub aufs_whiteouts: HashSet<Key>,
    pub aufs_opaque: HashSet<Key>,
}

/// Reads every entry beneath `diff` (`diff_path` names it in errors): its `lstat`, xattrs and
/// symlink target, fd-relative and without following a symlink. With `aufs_markers`, regular
/// files named `.wh.*` are set apart as the markers they are; without, they are entries like any
/// other, for a reader that interprets names itself ([`crate::tree::merge`]).
pub(crate) fn walk(diff: &Dir, diff_path: &Path, aufs_markers: bool) -> Result<Walked> {
    let mut walked = Walked::default();
    let mut pending = vec![Key::new()];
    while let Some(rel) = pending.pop() {
        let shown = diff_path.join(as_path(&rel));
        let dir = if rel.is_empty() {
            diff.try_clone().at(&shown)?
        } else {
            diff.open_dir_nofollow(as_path(&rel)).at(&shown)?
        };
        for entry in dir.entries().at(&shown)? {
            let name = entry.at(&shown)?.file_name();
            let actual = actual(&dir, &name, &shown)?;
            let file_type = FileType::from_raw_mode(actual.stat.st_mode);
            let marker = match aufs_markers {
                true => whiteout::marker(&name),
                false => Marker::None,
            };
            match marker {
                Marker::Opaque if file_type == FileType::RegularFile => {
                    walked.aufs_opaque.insert(rel.clone());
                    continue;
                }
                Marker::Whiteout(deleted) if file_type == FileType::RegularFile => {
                    walked.aufs_whiteouts.insert(join(&rel, deleted.as_bytes()));
                    continue;
                }
                _ => {}
            }
            let path = join(&rel, name.as_bytes());
            if file_type == FileType::Directory {
                pending.push(path.clone());
            }
            walked.entries.push((path, actual));
        }
    }
    Ok(walked)
}

/// What [`walk`] sees of a `diff/`, for a composefs layer's tree read from its blob (see
/// [`crate::content::composefs`]). With `aufs_markers`, regular files named `.wh.*` are the
/// markers they are in the layer's tar; without, files of those names, as podman 5.8 mounts the
/// blob.
pub(crate) fn walk_composefs(entries: Vec<Entry>, aufs_markers: bool) -> Walked {
    let mut walked = Walked::default();
    for entry in entries.into_iter().filter(|e| !e.path.is_empty()) {
        let stat = stat_of(&entry.inode);
        let file_type = FileType::from_raw_mode(stat.st_mode);
        let (dir, name) = split(&entry.path);
        let marker = match aufs_markers {
            true => whiteout::marker(OsStr::from_bytes(name)),
            false => Marker::None,
        };
        match marker {
            Marker::Opaque if file_type == FileType::RegularFile => {
                walked.aufs_opaque.insert(dir.to_vec());
                continue;
            }
            Marker::Whiteout(deleted) if file_type == FileType::RegularFile => {
                walked.aufs_whiteouts.insert(join(dir, deleted.as_bytes()));
                continue;
            }
            _ => {}
        }
        let (target, data) = match entry.inode.data {
            Data::Inline(target) if file_type == FileType::Symlink => (target, Data::None),
            data => (Vec::new(), data),
        };
        let xattrs = entry
            .inode
            .xattrs
            .into_iter()
            .map(|(k, v)| (OsString::from_vec(k), v))
            .collect();
        let actual = Actual {
            stat,
            xattrs,
            target,
            data,
        };
        walked.entries.push((entry.path, actual));
    }
    walked
}

/// The `lstat`, xattrs and symlink target of `name` in `dir` (`dir_path` names it in errors).
fn actual(dir: &Dir, name: &OsStr, dir_path: &Path) -> Result<Actual> {
    let shown = || dir_path.join(name);
    let stat = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
        .map_err(|e| Error::io(shown(), e.into()))?;
    let xattrs = read_xattrs(Target::At(dir, name), dir_path)?;
    let target = if FileType::from_raw_mode(stat.st_mode) == FileType::Symlink {
        rustix::fs::readlinkat(dir, name, Vec::new())
            .map_err(|e| Error::io(shown(), e.into()))?
            .into_bytes()
    } else {
        Vec::new()
    };
    Ok(Actual {
        stat,
        xattrs,
        target,
        data: Data::None,
    })
}

/// What the walk saw of one `diff/` entry.
pub(crate) struct Actual {
    pub stat: Stat,
    pub xattrs: Vec<(OsString, Vec<u8>)>,
    /// A symlink's target.
    pub target: Vec<u8>,
    /// A composefs layer's regular file: where its content is (the blob's record).
    pub data: Data,
}
