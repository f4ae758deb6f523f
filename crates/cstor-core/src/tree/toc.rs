//! An image's table of contents: its layers' TOC entries stacked by the same merge as the
//! image's filesystem ([`crate::tree::merge`]), so the TOC lists what `image.fs` and
//! `podman image mount` show.

use crate::content::toc::{TocEntry, TocOptions};
use crate::error::Result;
use crate::store::images::Image;
use crate::store::Store;
use crate::tree::merge::Stack;
use crate::tree::source::{Bodies, LayerSource};

impl Store {
    /// The merged filesystem of `image`, parents before children; with `list_whiteouts`, deleted
    /// paths (kind `Whiteout`) and opaque directories too.
    pub fn image_toc(&self, image: &Image, options: TocOptions) -> Result<Vec<TocEntry>> {
        let mut layers = self.image_layers(image)?;
        layers.reverse();
        let mut stack = if options.list_whiteouts {
            Stack::keeping_whiteouts()
        } else {
            Stack::merged()
        };
        for layer in &layers {
            let source = LayerSource {
                entries: self.layer_toc(layer, options)?,
                bodies: Bodies::OwnPath,
            };
            stack.push(layer.id(), layer.store_index, source);
        }
        Ok(stack.into_toc())
    }
}
