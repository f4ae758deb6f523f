//! Where a layer's entries and their bodies come from.
//!
//! Two sources feed the one merge ([`crate::tree::merge`]). The layer's tar-split, whose headers
//! are its entries exactly as its tar has them (whiteouts as `.wh.` entries): what the file view,
//! the image TOC, diff and analyze read. And the layer as stored — a walk of its `diff/`, or a
//! composefs layer's EROFS blob — with each entry's `lstat` (nanosecond times, the inode that
//! ties hardlinks): what a composefs image is built from, since composefs keeps what overlayfs
//! shows. Bodies lie in the layer's `diff/` under their own path, except in a composefs layer,
//! whose `diff/` holds each content once by digest ([`crate::content::composefs`]).

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use cap_fs_ext::DirExt;
use rustix::fs::FileType;

use crate::content::composefs::stat_of;
use crate::content::erofs::Data;
use crate::content::layer_tree::{as_path, walk, walk_composefs, Actual};
use crate::content::toc::{EntryKind, TocEntry, TocOptions};
use crate::content::xattr::{read_xattrs, Target};
use crate::error::{Error, IoContext, Result};
use crate::store::layers::Layer;
use crate::store::lock::read_lock;
use crate::store::overlay::overlay_file;
use crate::store::Store;

/// Where a layer's file bodies lie beneath its `diff/`.
#[derive(Debug)]
pub enum Bodies {
    /// At the file's own path (plain and zstd:chunked layers).
    OwnPath,
    /// At the content object the layer names for that path (composefs layers).
    Objects(HashMap<PathBuf, PathBuf>),
}

/// One layer's entries, in tar order, and where their bodies are.
pub struct LayerSource {
    pub entries: Vec<TocEntry>,
    pub bodies: Bodies,
    /// Whether a `.wh.` name is a whiteout or opaque marker (as in a tar, or a `diff/`), or just
    /// a name (a composefs blob as podman 5.8 mounts it).
    pub markers_by_name: bool,
}

/// What a composefs layer's `.wh.`-named files are (other layers keep no such files but their
/// markers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobNames {
    /// Markers, as in the layer's tar: what composefs-rs makes of the image it imports.
    Markers,
    /// Files of those names: what podman 5.8's mount of the blob shows.
    Files,
}

/// A layer as stored: its entries for the merge (`.wh.` markers among them, by name), and what
/// the walk saw of each, by path; `""` is the layer's root directory.
pub(crate) struct StoredLayer {
    pub source: LayerSource,
    pub seen: HashMap<Box<str>, Actual>,
}

impl Store {
    /// The entries of `layer` from its tar-split headers (no body is read).
    pub fn layer_source(&self, layer: &Layer) -> Result<LayerSource> {
        Ok(LayerSource {
            entries: self.layer_toc(layer, TocOptions::default())?,
            bodies: self.layer_bodies(layer)?,
            markers_by_name: true,
        })
    }

    /// Where `layer`'s bodies lie.
    pub fn layer_bodies(&self, layer: &Layer) -> Result<Bodies> {
        Ok(if self.is_composefs_layer(layer) {
            Bodies::Objects(self.composefs_objects(layer)?)
        } else {
            Bodies::OwnPath
        })
    }

    /// The entries of `layer` as stored: its `diff/` walked (fd-relative, never following a
    /// symlink) or its composefs blob read (its `.wh.` files marking as `names` says), under the
    /// store's layer lock. A name that is not UTF-8 is refused (`EUNSUPPORTED`): the merge keys
    /// paths as text.
    pub(crate) fn stored_layer(&self, layer: &Layer, names: BlobNames) -> Result<StoredLayer> {
        let store_dir = &self.dir(layer.store_index).dir;
        let _guard = read_lock(store_dir, Path::new("overlay-layers/layers.lock"))?;
        let diff_path = overlay_file(layer.id(), "diff");
        let composefs = self.is_composefs_layer(layer);
        let (root, walked) = if composefs {
            let entries = self.composefs_entries(layer)?;
            let root = entries.iter().find(|e| e.path.is_empty()).map(|e| Actual {
                stat: stat_of(&e.inode),
                xattrs: e
                    .inode
                    .xattrs
                    .iter()
                    .map(|(k, v)| (OsString::from_vec(k.clone()), v.clone()))
                    .collect(),
                target: Vec::new(),
                data: Data::None,
            });
            (root, walk_composefs(entries, false))
        } else {
            let diff = store_dir.open_dir_nofollow(&diff_path).at(&diff_path)?;
            let root = Actual {
                stat: rustix::fs::fstat(&diff).map_err(|e| Error::io(&diff_path, e.into()))?,
                xattrs: read_xattrs(Target::At(&diff, OsStr::new(".")), &diff_path)?,
                target: Vec::new(),
                data: Data::None,
            };
            (Some(root), walk(&diff, &diff_path, false)?)
        };
        let text = |key: &[u8]| {
            std::str::from_utf8(key)
                .map(str::to_owned)
                .map_err(|_| Error::Unsupported {
                    what: format!(
                        "{}: a name that is not UTF-8",
                        diff_path.join(as_path(key)).display()
                    ),
                })
        };
        let mut entries = Vec::with_capacity(walked.entries.len());
        let mut seen = HashMap::with_capacity(walked.entries.len());
        let mut objects = HashMap::new();
        // Inode → its first name: the others are that file's hardlinks, as a tar would list them.
        let mut first_names: HashMap<u64, String> = HashMap::new();
        for (key, actual) in walked.entries {
            let name = text(&key)?;
            let mut entry = toc_entry(&actual, name.clone(), text(&actual.target)?);
            if entry.kind == EntryKind::Reg
                && actual.stat.st_nlink > 1
                && !entry.is_overlay_whiteout()
            {
                match first_names.get(&actual.stat.st_ino) {
                    Some(first) => {
                        entry.kind = EntryKind::Hardlink;
                        entry.link_name = first.clone();
                    }
                    None => {
                        first_names.insert(actual.stat.st_ino, name.clone());
                    }
                }
            }
            if let Data::External { payload, .. } = &actual.data {
                objects.insert(PathBuf::from(&name), as_path(payload).to_owned());
            }
            entries.push(entry);
            seen.insert(name.into_boxed_str(), actual);
        }
        if let Some(root) = root {
            seen.insert(Box::from(""), root);
        }
        let bodies = if composefs {
            Bodies::Objects(objects)
        } else {
            Bodies::OwnPath
        };
        Ok(StoredLayer {
            source: LayerSource {
                entries,
                bodies,
                markers_by_name: !composefs || names == BlobNames::Markers,
            },
            seen,
        })
    }
}

/// What a tar header would say of an entry `lstat` saw (seconds of its time; the rest is kept
/// in [`StoredLayer::seen`]).
fn toc_entry(actual: &Actual, name: String, target: String) -> TocEntry {
    let stat = &actual.stat;
    let kind = match FileType::from_raw_mode(stat.st_mode) {
        FileType::Directory => EntryKind::Dir,
        FileType::Symlink => EntryKind::Symlink,
        FileType::CharacterDevice => EntryKind::Char,
        FileType::BlockDevice => EntryKind::Block,
        FileType::Fifo => EntryKind::Fifo,
        // A socket has no tar form: it is merged as the file it cannot be read as.
        _ => EntryKind::Reg,
    };
    let rdev = matches!(kind, EntryKind::Char | EntryKind::Block).then_some(stat.st_rdev);
    let mut entry = TocEntry::new(name, kind, stat.st_mode & 0o7777);
    (entry.uid, entry.gid) = (stat.st_uid.into(), stat.st_gid.into());
    entry.size = if kind == EntryKind::Reg {
        stat.st_size as u64
    } else {
        0
    };
    entry.mod_time = stat.st_mtime;
    entry.link_name = target;
    if let Some(rdev) = rdev {
        entry.dev_major = rustix::fs::major(rdev);
        entry.dev_minor = rustix::fs::minor(rdev);
    }
    entry.xattrs = actual
        .xattrs
        .iter()
        .map(|(k, v)| (k.to_string_lossy().into_owned(), v.clone()))
        .collect();
    entry
}
