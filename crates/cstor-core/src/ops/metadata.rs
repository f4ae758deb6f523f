//! Reading the store's metadata: the store itself, images, layers, chains, big data.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::error::Result;
use crate::ops::records::{ImageDetailsInfo, ImageInfo, LayerInfo};
use crate::ops::{Base64, Call, Operation};
use crate::store::Store;

/// Where the store is: its graph root, run root, and the stores read (the main one first).
#[derive(Debug, Deserialize, TS)]
pub struct Describe {}

#[derive(Debug, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct StoreInfo {
    pub graph_root: String,
    pub run_root: Option<String>,
    /// The main store followed by the additional image stores.
    pub store_paths: Vec<String>,
}

impl Operation for Describe {
    const METHOD: &'static str = "Describe";
    type Output = StoreInfo;

    fn run(self, store: &Arc<Store>, _: &mut Call) -> Result<StoreInfo> {
        let text = |p: &std::path::Path| p.to_string_lossy().into_owned();
        Ok(StoreInfo {
            graph_root: text(store.graph_root()),
            run_root: store.run_root().map(text),
            store_paths: store.dirs().iter().map(|d| text(&d.path)).collect(),
        })
    }
}

/// Every image, the main store's first.
#[derive(Debug, Deserialize, TS)]
pub struct ListImages {}

impl Operation for ListImages {
    const METHOD: &'static str = "ListImages";
    type Output = Vec<ImageInfo>;

    fn run(self, store: &Arc<Store>, _: &mut Call) -> Result<Vec<ImageInfo>> {
        let images = store.images()?;
        let sizes = store.image_sizes(&images)?;
        Ok(images
            .iter()
            .zip(sizes)
            .map(|(image, size)| ImageInfo::new(store, image, size))
            .collect())
    }
}

/// The image a reference names: ID, `sha256:`ID, name, `name@digest`, digest or ID prefix.
#[derive(Debug, Deserialize, TS)]
pub struct GetImage {
    pub image: String,
}

impl Operation for GetImage {
    const METHOD: &'static str = "GetImage";
    type Output = ImageInfo;

    fn run(self, store: &Arc<Store>, _: &mut Call) -> Result<ImageInfo> {
        ImageInfo::of(store, &self.image)
    }
}

/// An image with its manifest, config, platform and layers (top first).
#[derive(Debug, Deserialize, TS)]
pub struct InspectImage {
    pub image: String,
}

impl Operation for InspectImage {
    const METHOD: &'static str = "InspectImage";
    type Output = ImageDetailsInfo;

    fn run(self, store: &Arc<Store>, _: &mut Call) -> Result<ImageDetailsInfo> {
        let image = store.image(&self.image)?;
        let details = store.inspect_image(&image)?;
        Ok(ImageDetailsInfo::new(store, details))
    }
}

/// One big-data item of an image (manifest, config, signatures …), its bytes in base64.
#[derive(Debug, Deserialize, TS)]
pub struct ImageBigData {
    pub image: String,
    pub key: String,
}

impl Operation for ImageBigData {
    const METHOD: &'static str = "ImageBigData";
    type Output = Base64;

    fn run(self, store: &Arc<Store>, _: &mut Call) -> Result<Base64> {
        let image = store.image(&self.image)?;
        store.image_big_data(&image, &self.key).map(Base64)
    }
}

/// Every layer, the main store's first.
#[derive(Debug, Deserialize, TS)]
pub struct ListLayers {}

impl Operation for ListLayers {
    const METHOD: &'static str = "ListLayers";
    type Output = Vec<LayerInfo>;

    fn run(self, store: &Arc<Store>, _: &mut Call) -> Result<Vec<LayerInfo>> {
        Ok(LayerInfo::all(store, &store.layers()?))
    }
}

/// The layer with this ID, name or unique ID prefix.
#[derive(Debug, Deserialize, TS)]
pub struct GetLayer {
    pub layer: String,
}

impl Operation for GetLayer {
    const METHOD: &'static str = "GetLayer";
    type Output = LayerInfo;

    fn run(self, store: &Arc<Store>, _: &mut Call) -> Result<LayerInfo> {
        Ok(LayerInfo::new(store, &store.layer(&self.layer)?))
    }
}

/// A layer and its ancestors by `parent`, top first.
#[derive(Debug, Deserialize, TS)]
pub struct LayerChain {
    pub layer: String,
}

impl Operation for LayerChain {
    const METHOD: &'static str = "LayerChain";
    type Output = Vec<LayerInfo>;

    fn run(self, store: &Arc<Store>, _: &mut Call) -> Result<Vec<LayerInfo>> {
        let top = store.layer(&self.layer)?;
        Ok(LayerInfo::all(store, &store.layer_chain(top.id())?))
    }
}

/// The layers below a layer as its overlay `lower` file stacks them, parent first.
#[derive(Debug, Deserialize, TS)]
pub struct LowerChain {
    pub layer: String,
}

impl Operation for LowerChain {
    const METHOD: &'static str = "LowerChain";
    type Output = Vec<LayerInfo>;

    fn run(self, store: &Arc<Store>, _: &mut Call) -> Result<Vec<LayerInfo>> {
        Ok(LayerInfo::all(store, &store.lower_chain(&self.layer)?))
    }
}

/// The layer an `overlay/l/<LINK>` short link stands for.
#[derive(Debug, Deserialize, TS)]
pub struct ResolveLink {
    pub link: String,
}

impl Operation for ResolveLink {
    const METHOD: &'static str = "ResolveLink";
    type Output = LayerInfo;

    fn run(self, store: &Arc<Store>, _: &mut Call) -> Result<LayerInfo> {
        Ok(LayerInfo::new(store, &store.resolve_link(&self.link)?))
    }
}
