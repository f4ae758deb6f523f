//! Layers stored for composefs (`use_composefs = "true"`, podman 5 with zstd:chunked pulls).
//!
//! Such a layer's `diff/` is not its tree: it holds each file's content once, named by its
//! sha256 (`diff/ab/cdef…`), and `overlay/<id>/composefs-data/composefs.blob` (an EROFS image
//! the kernel mounts) holds the tree — names, metadata, and which object each file is. The layer
//! keeps its tar-split and its zstd:chunked TOC (big data `zstd-chunked-manifest`, entries with
//! `name` and the `digest` of each regular file), so its tar is rebuilt bit for bit by taking
//! each body from the object its TOC entry names. containers/storage reads the files through a
//! mount of the blob instead; cstor mounts nothing: it reads the blob itself
//! ([`crate::content::erofs::reader`]), so extraction and the metadata check see the layer's
//! tree as overlayfs would, each regular file's content being the object its redirect names.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rustix::fs::Stat;
use serde::Deserialize;

use crate::content::erofs::reader::Image;
use crate::content::erofs::{Entry, Inode};
use crate::content::export::entry_path;
use crate::error::{Error, Result};
use crate::store::images::big_data_file_name;
use crate::store::layers::Layer;
use crate::store::overlay::overlay_file;
use crate::store::{read_metadata_file, Store};

/// The big-data key of a zstd:chunked layer's table of contents.
const TOC_KEY: &str = "zstd-chunked-manifest";

#[derive(Deserialize)]
struct Toc {
    #[serde(default)]
    entries: Vec<TocEntry>,
}

#[derive(Deserialize)]
struct TocEntry {
    #[serde(rename = "type")]
    kind: String,
    name: String,
    #[serde(default)]
    digest: Option<String>,
}

impl Store {
    /// Whether `layer` is stored for composefs (its `composefs-data/composefs.blob` exists).
    pub fn is_composefs_layer(&self, layer: &Layer) -> bool {
        self.dir(layer.store_index)
            .dir
            .is_file(overlay_file(layer.id(), "composefs-data/composefs.blob"))
    }

    /// A composefs layer's tree, read from its EROFS blob: a directory before its contents,
    /// whiteouts as character devices 0:0 and opaque directories marked `trusted.overlay.opaque`
    /// as in any overlay layer's `diff/`; a regular file's content is the object beneath `diff/`
    /// its payload names (or inline in the blob).
    pub fn composefs_entries(&self, layer: &Layer) -> Result<Vec<Entry>> {
        let path = overlay_file(layer.id(), "composefs-data/composefs.blob");
        let bytes = read_metadata_file(&self.dir(layer.store_index).dir, &path)?
            .ok_or_else(|| Error::corrupt(&path, "the composefs blob is gone"))?;
        Image::new(&bytes, &path)?.entries()
    }

    /// For a composefs layer: each regular file's path in the tar → its content object beneath
    /// `diff/` (`ab/cdef…`), from the layer's TOC.
    pub(crate) fn composefs_objects(&self, layer: &Layer) -> Result<HashMap<PathBuf, PathBuf>> {
        let path = Path::new("overlay-layers")
            .join(layer.id())
            .join(big_data_file_name(TOC_KEY));
        let bytes =
            read_metadata_file(&self.dir(layer.store_index).dir, &path)?.ok_or_else(|| {
                Error::corrupt(
                    &path,
                    "a composefs layer without the zstd:chunked TOC that names its files' objects",
                )
            })?;
        let toc: Toc = serde_json::from_slice(&bytes).map_err(|e| {
            Error::corrupt(
                &path,
                format!("the TOC is not the JSON zstd:chunked writes: {e}"),
            )
        })?;
        let mut objects = HashMap::new();
        for entry in toc.entries.into_iter().filter(|e| e.kind == "reg") {
            let Some(hex) = entry
                .digest
                .as_deref()
                .and_then(|d| d.strip_prefix("sha256:"))
            else {
                continue;
            };
            if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(Error::corrupt(
                    &path,
                    format!("entry {:?} has digest {hex:?}", entry.name),
                ));
            }
            let object = Path::new(&hex[..2]).join(&hex[2..]);
            objects.insert(entry_path(entry.name.as_bytes(), &path)?, object);
        }
        Ok(objects)
    }
}

/// An entry's metadata as `lstat` would give it on a mount of the blob (the access time is the
/// modification time; device and inode numbers are not the blob's concern).
pub(crate) fn stat_of(inode: &Inode) -> Stat {
    // SAFETY: `struct stat` is plain integers, for which all-zero bytes are a valid value.
    let mut stat: Stat = unsafe { std::mem::zeroed() };
    stat.st_mode = inode.mode;
    stat.st_uid = inode.uid;
    stat.st_gid = inode.gid;
    stat.st_size = inode.size as i64;
    stat.st_nlink = inode.nlink as _;
    stat.st_rdev = inode.rdev as _;
    stat.st_ino = inode.nid;
    stat.st_mtime = inode.mtime;
    stat.st_mtime_nsec = inode.mtime_nsec as _;
    stat.st_atime = inode.mtime;
    stat.st_atime_nsec = inode.mtime_nsec as _;
    stat
}
