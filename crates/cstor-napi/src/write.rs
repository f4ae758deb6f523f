//! The write half of the binding: layers from tars, images, names, deletion and pulls. Every
//! method runs on the blocking pool under the store's write locks (see `cstor_core::write::transaction`).

use std::fs::File;

use cstor_core::write::image::{Created, NewImage};
use cstor_core::write::layer::NewLayer;
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::store::{image_info, ImageInfo, LayerInfo, NativeStore};
use crate::{blocking, duplicate_fd};

#[napi(object)]
#[derive(Default)]
pub struct CreateLayerOptions {
    /// The layer ID; random when absent.
    pub id: Option<String>,
    pub parent: Option<String>,
    pub names: Option<Vec<String>>,
}

#[napi(object)]
pub struct BigDataItem {
    pub key: String,
    pub data: Buffer,
}

#[napi(object)]
#[derive(Default)]
pub struct CreateImageOptions {
    pub id: Option<String>,
    pub names: Option<Vec<String>>,
    pub top_layer: Option<String>,
    /// The manifest digest the image is known by.
    pub digest: Option<String>,
    /// RFC 3339; now when absent.
    pub created: Option<String>,
    pub metadata: Option<String>,
    pub big_data: Option<Vec<BigDataItem>>,
}

#[napi]
impl NativeStore {
    /// Creates a layer from the tar (plain, gzip or zstd) readable on `fd` (a file or a pipe).
    #[napi]
    pub async fn create_layer(
        &self,
        fd: i32,
        options: Option<CreateLayerOptions>,
    ) -> Result<LayerInfo> {
        let store = self.store()?;
        let options = options.unwrap_or_default();
        blocking(move || {
            let input: File = duplicate_fd(fd)?;
            let new = NewLayer {
                id: options.id,
                parent: options.parent,
                names: options.names.unwrap_or_default(),
                ..Default::default()
            };
            let layer = store.create_layer(&new, input)?;
            Ok(LayerInfo::new(&store, &layer))
        })
        .await
    }

    /// Creates an image record with its big data; returns the image.
    #[napi]
    pub async fn create_image(&self, options: CreateImageOptions) -> Result<ImageInfo> {
        let store = self.store()?;
        blocking(move || {
            let new = NewImage {
                id: options.id,
                names: options.names.unwrap_or_default(),
                top_layer: options.top_layer,
                digest: options.digest,
                created: options.created,
                metadata: options.metadata,
                big_data: options
                    .big_data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|item| (item.key, item.data.to_vec()))
                    .collect(),
            };
            let id = match store.create_image(&new)? {
                Created::New(id) | Created::Existing(id) => id,
            };
            image_info(&store, &id)
        })
        .await
    }

    #[napi]
    pub async fn tag_image(&self, reference: String, names: Vec<String>) -> Result<ImageInfo> {
        let store = self.store()?;
        blocking(move || {
            let image = store.tag_image(&reference, &names)?;
            image_info(&store, image.id())
        })
        .await
    }

    #[napi]
    pub async fn untag_image(&self, reference: String, names: Vec<String>) -> Result<ImageInfo> {
        let store = self.store()?;
        blocking(move || {
            let image = store.untag_image(&reference, &names)?;
            image_info(&store, image.id())
        })
        .await
    }

    /// Deletes an image and the layers only it used; returns those layers' IDs.
    #[napi]
    pub async fn remove_image(&self, reference: String) -> Result<Vec<String>> {
        let store = self.store()?;
        blocking(move || store.remove_image(&reference)).await
    }

    /// Deletes one layer nothing uses; returns its ID.
    #[napi]
    pub async fn remove_layer(&self, reference: String) -> Result<String> {
        let store = self.store()?;
        blocking(move || store.remove_layer(&reference)).await
    }
}
