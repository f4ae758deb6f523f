//! Writes: layers from tars, image records, names, deletion — each under the store's write
//! locks (see [`crate::write::transaction`]).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::error::Result;
use crate::ops::records::{ImageInfo, LayerInfo};
use crate::ops::{Access, Base64, Call, Operation};
use crate::store::Store;
use crate::write::image::{Created, NewImage};
use crate::write::layer::NewLayer;

/// Creates a layer from the tar (plain, gzip or zstd) readable on the one fd sent with the call
/// (a file or a pipe), as podman's `PutLayer` writes one.
#[derive(Debug, Deserialize, TS)]
#[ts(optional_fields)]
pub struct CreateLayer {
    /// The layer ID; random when absent (as `podman import` makes).
    #[serde(default)]
    pub id: Option<String>,
    /// The layer below, by ID.
    #[serde(default)]
    pub parent: Option<String>,
    #[serde(default)]
    pub names: Option<Vec<String>>,
}

impl Operation for CreateLayer {
    const METHOD: &'static str = "CreateLayer";
    const ACCESS: Access = Access::Write;
    type Output = LayerInfo;

    fn run(self, store: &Arc<Store>, call: &mut Call) -> Result<LayerInfo> {
        let tar = call.take_fd("the tar")?;
        let new = NewLayer {
            id: self.id,
            parent: self.parent,
            names: self.names.unwrap_or_default(),
            ..Default::default()
        };
        Ok(LayerInfo::new(store, &store.create_layer(&new, tar)?))
    }
}

/// One big-data item of a new image.
#[derive(Debug, Serialize, Deserialize, TS)]
pub struct BigDataItem {
    pub key: String,
    pub data: Base64,
}

/// Creates an image record with its big data (or names an existing image of the same ID).
#[derive(Debug, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(optional_fields)]
pub struct CreateImage {
    /// The image ID; random when absent.
    #[serde(default)]
    pub id: Option<String>,
    /// Names, normalized as podman stores them (`x` becomes `localhost/x:latest`).
    #[serde(default)]
    pub names: Option<Vec<String>>,
    #[serde(default)]
    pub top_layer: Option<String>,
    /// The manifest digest the image is known by.
    #[serde(default)]
    pub digest: Option<String>,
    /// RFC 3339; now when absent.
    #[serde(default)]
    pub created: Option<String>,
    #[serde(default)]
    pub metadata: Option<String>,
    /// Big-data items (`manifest`, the config under its digest, …), in the order to record them.
    #[serde(default)]
    pub big_data: Option<Vec<BigDataItem>>,
}

impl Operation for CreateImage {
    const METHOD: &'static str = "CreateImage";
    const ACCESS: Access = Access::Write;
    type Output = ImageInfo;

    fn run(self, store: &Arc<Store>, _: &mut Call) -> Result<ImageInfo> {
        let new = NewImage {
            id: self.id,
            names: self.names.unwrap_or_default(),
            top_layer: self.top_layer,
            digest: self.digest,
            created: self.created,
            metadata: self.metadata,
            big_data: self
                .big_data
                .unwrap_or_default()
                .into_iter()
                .map(|item| (item.key, item.data.0))
                .collect(),
        };
        let (Created::New(id) | Created::Existing(id)) = store.create_image(&new)?;
        ImageInfo::of(store, &id)
    }
}

/// Gives an image more names (`podman tag`); a name another image had moves here.
#[derive(Debug, Deserialize, TS)]
pub struct Tag {
    pub image: String,
    pub names: Vec<String>,
}

impl Operation for Tag {
    const METHOD: &'static str = "Tag";
    const ACCESS: Access = Access::Write;
    type Output = ImageInfo;

    fn run(self, store: &Arc<Store>, _: &mut Call) -> Result<ImageInfo> {
        let image = store.tag_image(&self.image, &self.names)?;
        ImageInfo::of(store, image.id())
    }
}

/// Takes names from an image (`podman untag`); all of them when none are given.
#[derive(Debug, Deserialize, TS)]
pub struct Untag {
    pub image: String,
    pub names: Vec<String>,
}

impl Operation for Untag {
    const METHOD: &'static str = "Untag";
    const ACCESS: Access = Access::Write;
    type Output = ImageInfo;

    fn run(self, store: &Arc<Store>, _: &mut Call) -> Result<ImageInfo> {
        let image = store.untag_image(&self.image, &self.names)?;
        ImageInfo::of(store, image.id())
    }
}

/// Deletes an image and the layers no other image or container uses (`podman rmi`); the result
/// is the deleted layers' IDs.
#[derive(Debug, Deserialize, TS)]
pub struct RemoveImage {
    pub image: String,
}

impl Operation for RemoveImage {
    const METHOD: &'static str = "RemoveImage";
    const ACCESS: Access = Access::Write;
    type Output = Vec<String>;

    fn run(self, store: &Arc<Store>, _: &mut Call) -> Result<Vec<String>> {
        store.remove_image(&self.image)
    }
}

/// Deletes one layer (containers/storage's `DeleteLayer`); the result is its ID.
#[derive(Debug, Deserialize, TS)]
pub struct RemoveLayer {
    pub layer: String,
}

impl Operation for RemoveLayer {
    const METHOD: &'static str = "RemoveLayer";
    const ACCESS: Access = Access::Write;
    type Output = String;

    fn run(self, store: &Arc<Store>, _: &mut Call) -> Result<String> {
        store.remove_layer(&self.layer)
    }
}
