//! Layers stored for composefs (`use_composefs = "true"`, podman 5 with zstd:chunked pulls).
//!
//! Such a layer's `diff/` is not its tree: it holds each file's content once, named by its
//! sha256 (`diff/ab/cdef…`), and `overlay/<id>/composefs-data/composefs.blob` (an EROFS image
//! the kernel mounts) holds the tree — names, metadata, and which object each file is. The layer
//! keeps its tar-split and its zstd:chunked TOC (big data `zstd-chunked-manifest`, entries with
//! `name` and the `digest` of each regular file), so its tar is rebuilt bit for bit by taking
//! each body from the object its TOC entry names. containers/storage reads the files through a
//! mount of the blob instead; cstor mounts nothing, and does not read EROFS: what needs the tree
//! itself (extraction, the metadata check) is refused or skipped for these layers.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

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
