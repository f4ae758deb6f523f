//! The write half of the binding: layers from tars, images, names, deletion and pulls. Every
//! method runs on the blocking pool under the store's write locks (see `cstor_core::transaction`).

use std::fs::File;

use cstor_core::image_write::{Created, NewImage};
use cstor_core::layer_create::NewLayer;
use cstor_core::pull::open_source;
use cstor_core::tarball::Tarball;
use napi::bindgen_prelude::*;
use napi::threadsafe_function::ThreadsafeFunction;
use napi_derive::napi;

use crate::convert::{ImageInfo, LayerInfo, ProgressInfo};
use crate::{blocking, duplicate_fd, reporter, NativeStore};

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

#[napi(object)]
pub struct PullInfo {
    pub image_id: String,
    /// Layer IDs, base first.
    pub layers: Vec<String>,
    /// How many layers were written (the rest were in the store).
    pub layers_written: u32,
    /// Whether the image was in the store already (it got the name).
    pub existed: bool,
}

impl From<cstor_core::pull::Pulled> for PullInfo {
    fn from(p: cstor_core::pull::Pulled) -> Self {
        PullInfo {
            image_id: p.image_id,
            layers: p.layers,
            layers_written: p.layers_written as u32,
            existed: p.existed,
        }
    }
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

    /// Pulls `source` (`oci:DIR[:REF]`, `docker-archive:FILE[:REF]`, `docker://REFERENCE`) into the
    /// store; `tls_verify: false` speaks plain HTTP to a registry.
    #[napi]
    pub async fn pull(
        &self,
        source: String,
        name: Option<String>,
        tls_verify: Option<bool>,
        on_progress: Option<ThreadsafeFunction<ProgressInfo, (), ProgressInfo, Status, false>>,
    ) -> Result<PullInfo> {
        let store = self.store()?;
        blocking(move || {
            let mut source = open_source(&source, None, tls_verify.unwrap_or(true))?;
            store.pull(source.as_mut(), name.as_deref(), &mut reporter(on_progress))
        })
        .await
        .map(PullInfo::from)
    }

    /// `podman import`: a root filesystem tar file as a one-layer image.
    #[napi]
    pub async fn import_tarball(&self, path: String, name: Option<String>) -> Result<PullInfo> {
        let store = self.store()?;
        blocking(move || {
            let mut source = Tarball::open(path.as_ref())?;
            store.pull(&mut source, name.as_deref(), &mut |_| {})
        })
        .await
        .map(PullInfo::from)
    }
}

fn image_info(store: &cstor_core::Store, id: &str) -> cstor_core::Result<ImageInfo> {
    let image = store.image(id)?;
    let size = store.image_sizes(std::slice::from_ref(&image))?[0];
    Ok(ImageInfo::new(store, &image, size))
}
