//! An image's table of contents: its layers' TOC entries stacked by the same merge as the
//! image's filesystem ([`crate::tree::merge`]), so the TOC lists what `image.fs` and
//! `podman image mount` show.

use crate::content::toc::{TocEntry, TocOptions};
use crate::error::Result;
use crate::store::images::Image;
use crate::store::Store;
use crate::tree::merge::Stack;
use crate::tree::source::Bodies;

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
            stack.begin_layer(layer.id(), layer.store_index, Bodies::OwnPath);
            self.each_layer_entry(layer, options, &mut |entry| stack.add(entry))?;
            stack.end_layer();
        }
        Ok(stack.into_toc())
    }
}
