//! Where a layer's entries and their bodies come from.
//!
//! Every layer podman writes keeps its tar-split, whose headers are the layer's entries exactly as
//! its tar has them (whiteouts as `.wh.` entries). Bodies lie in the layer's `diff/` under their
//! own path, except in a composefs layer, whose `diff/` holds each content once by digest
//! ([`crate::content::composefs`]). Another source of entries (a composefs layer's EROFS tree)
//! plugs in here: [`crate::tree::merge`] takes entries in either whiteout form.

use std::collections::HashMap;
use std::path::PathBuf;

use crate::content::toc::{TocEntry, TocOptions};
use crate::error::Result;
use crate::store::layers::Layer;
use crate::store::Store;

/// Where a layer's file bodies lie beneath its `diff/`.
#[derive(Debug)]
pub enum Bodies {
    /// At the file's own path (plain and zstd:chunked layers).
    OwnPath,
    /// At the content object the layer's TOC names for that path (composefs layers).
    Objects(HashMap<PathBuf, PathBuf>),
}

/// One layer's entries, in tar order, and where their bodies are.
pub struct LayerSource {
    pub entries: Vec<TocEntry>,
    pub bodies: Bodies,
}

impl Store {
    /// The entries of `layer` from its tar-split headers (no body is read).
    pub fn layer_source(&self, layer: &Layer) -> Result<LayerSource> {
        Ok(LayerSource {
            entries: self.layer_toc(layer, TocOptions::default())?,
            bodies: self.layer_bodies(layer)?,
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
}
