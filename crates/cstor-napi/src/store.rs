//! Opening a store and reading its metadata: images, layers, chains, big data.

use std::sync::{Arc, Mutex};

use cstor_core::store::config::{discover, Environment, StoreConfig};
use cstor_core::store::names::repo_digests;
use cstor_core::{Image, ImageDetails, Layer, Platform, Store, StoreOptions};
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::{blocking, path_string, to_js_error};

#[napi(object)]
pub struct OpenOptions {
    pub root: String,
    pub runroot: Option<String>,
    pub driver: Option<String>,
    pub additional_image_stores: Option<Vec<String>>,
    pub create: Option<bool>,
}

/// Where podman would find its store, from `storage.conf` and the environment.
#[napi]
pub async fn discover_config() -> Result<StoreConfigInfo> {
    blocking(|| discover(&Environment::current()).map(StoreConfigInfo::from)).await
}

/// Opens a store; see `Storage.open` in the TypeScript API.
#[napi]
pub async fn open_store(options: OpenOptions) -> Result<NativeStore> {
    let options = StoreOptions {
        graph_root: options.root.into(),
        run_root: options.runroot.map(Into::into),
        driver: options.driver,
        additional_image_stores: options
            .additional_image_stores
            .unwrap_or_default()
            .into_iter()
            .map(Into::into)
            .collect(),
        create: options.create.unwrap_or(false),
    };
    blocking(move || Store::open(options))
        .await
        .map(|store| NativeStore {
            graph_root: path_string(store.graph_root()),
            run_root: store.run_root().map(path_string),
            store_paths: store.dirs().iter().map(|d| path_string(&d.path)).collect(),
            store: Mutex::new(Some(Arc::new(store))),
        })
}

/// An opened store. Every method re-reads the metadata under the store's locks, so it always
/// answers with what is on disk now.
#[napi]
pub struct NativeStore {
    graph_root: String,
    run_root: Option<String>,
    store_paths: Vec<String>,
    /// `None` once closed. Calls under way hold their own reference and finish first.
    store: Mutex<Option<Arc<Store>>>,
}

impl NativeStore {
    /// The open store, or `EINVAL` after `close`.
    pub(crate) fn store(&self) -> Result<Arc<Store>> {
        self.store
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
            .ok_or_else(|| {
                to_js_error(cstor_core::Error::InvalidArgument(
                    "the store has been closed".into(),
                ))
            })
    }
}

#[napi]
impl NativeStore {
    #[napi(getter)]
    pub fn graph_root(&self) -> String {
        self.graph_root.clone()
    }

    #[napi(getter)]
    pub fn run_root(&self) -> Option<String> {
        self.run_root.clone()
    }

    /// The main store followed by the additional image stores.
    #[napi(getter)]
    pub fn store_paths(&self) -> Vec<String> {
        self.store_paths.clone()
    }

    /// Releases the store's directory descriptors (so its filesystem can be unmounted); later
    /// calls fail with `EINVAL`.
    #[napi]
    pub fn close(&self) {
        *self
            .store
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = None;
    }

    #[napi]
    pub async fn list_images(&self) -> Result<Vec<ImageInfo>> {
        let store = self.store()?;
        blocking(move || {
            let images = store.images()?;
            let sizes = store.image_sizes(&images)?;
            Ok(images
                .iter()
                .zip(sizes)
                .map(|(image, size)| ImageInfo::new(&store, image, size))
                .collect())
        })
        .await
    }

    #[napi]
    pub async fn get_image(&self, reference: String) -> Result<ImageInfo> {
        let store = self.store()?;
        blocking(move || image_info(&store, &reference)).await
    }

    #[napi]
    pub async fn inspect_image(&self, reference: String) -> Result<ImageDetailsInfo> {
        let store = self.store()?;
        blocking(move || {
            let image = store.image(&reference)?;
            let details = store.inspect_image(&image)?;
            Ok(ImageDetailsInfo::new(&store, details))
        })
        .await
    }

    /// The raw bytes of one big-data item of an image.
    #[napi]
    pub async fn image_big_data(&self, reference: String, key: String) -> Result<Buffer> {
        let store = self.store()?;
        blocking(move || {
            let image = store.image(&reference)?;
            store.image_big_data(&image, &key)
        })
        .await
        .map(Buffer::from)
    }

    #[napi]
    pub async fn list_layers(&self) -> Result<Vec<LayerInfo>> {
        let store = self.store()?;
        blocking(move || {
            let layers = store.layers()?;
            Ok(layers.iter().map(|l| LayerInfo::new(&store, l)).collect())
        })
        .await
    }

    #[napi]
    pub async fn get_layer(&self, reference: String) -> Result<LayerInfo> {
        let store = self.store()?;
        blocking(move || store.layer(&reference).map(|l| LayerInfo::new(&store, &l))).await
    }

    /// The layer and its ancestors by `parent`, top first.
    #[napi]
    pub async fn layer_chain(&self, reference: String) -> Result<Vec<LayerInfo>> {
        let store = self.store()?;
        blocking(move || {
            let top = store.layer(&reference)?;
            let chain = store.layer_chain(top.id())?;
            Ok(chain.iter().map(|l| LayerInfo::new(&store, l)).collect())
        })
        .await
    }

    /// The layers below a layer as its overlay `lower` file stacks them, parent first.
    #[napi]
    pub async fn lower_chain(&self, reference: String) -> Result<Vec<LayerInfo>> {
        let store = self.store()?;
        blocking(move || {
            let chain = store.lower_chain(&reference)?;
            Ok(chain.iter().map(|l| LayerInfo::new(&store, l)).collect())
        })
        .await
    }

    #[napi]
    pub async fn resolve_link(&self, link: String) -> Result<LayerInfo> {
        let store = self.store()?;
        blocking(move || {
            store
                .resolve_link(&link)
                .map(|l| LayerInfo::new(&store, &l))
        })
        .await
    }
}

#[napi(object)]
pub struct StoreConfigInfo {
    pub graph_root: String,
    pub run_root: String,
    pub driver: Option<String>,
    pub additional_image_stores: Vec<String>,
    pub config_file: Option<String>,
}

impl From<StoreConfig> for StoreConfigInfo {
    fn from(c: StoreConfig) -> Self {
        StoreConfigInfo {
            graph_root: path_string(&c.graph_root),
            run_root: path_string(&c.run_root),
            driver: c.driver,
            additional_image_stores: c
                .additional_image_stores
                .iter()
                .map(|p| path_string(p))
                .collect(),
            config_file: c.config_file.as_deref().map(path_string),
        }
    }
}

#[napi(object)]
pub struct ImageInfo {
    pub id: String,
    pub names: Vec<String>,
    pub names_history: Vec<String>,
    /// The digest of the image's manifest, when known.
    pub digest: Option<String>,
    /// Every digest the image is known by, `digest` first.
    pub digests: Vec<String>,
    /// `repository@digest` pairs, as podman's `RepoDigests`.
    pub repo_digests: Vec<String>,
    /// Uncompressed layer bytes plus big data, as podman's `Size`.
    pub size: i64,
    pub top_layer: Option<String>,
    pub created: Option<String>,
    pub big_data_names: Vec<String>,
    /// The store the image lives in (the graph root or an additional image store).
    pub store: String,
    pub read_only: bool,
}

impl ImageInfo {
    pub fn new(store: &Store, image: &Image, size: i64) -> Self {
        let r = &image.record;
        ImageInfo {
            repo_digests: repo_digests(image),
            size,
            id: r.id.clone(),
            names: r.names.clone(),
            names_history: r.names_history.clone(),
            digest: r.digest.clone(),
            digests: image.all_digests().into_iter().map(str::to_owned).collect(),
            top_layer: r.layer.clone(),
            created: r.created.clone(),
            big_data_names: r.big_data_names.clone(),
            store: path_string(&store.dirs()[image.store_index].path),
            read_only: image.read_only,
        }
    }
}

#[napi(object)]
pub struct LayerInfo {
    pub id: String,
    pub names: Vec<String>,
    pub parent: Option<String>,
    pub created: Option<String>,
    /// sha256 of the uncompressed layer tar.
    pub diff_digest: Option<String>,
    pub diff_size: Option<i64>,
    pub compressed_diff_digest: Option<String>,
    pub compressed_size: Option<i64>,
    /// 0 uncompressed, 1 bzip2, 2 gzip, 3 xz, 4 zstd.
    pub compression: Option<i32>,
    pub toc_digest: Option<String>,
    pub uidset: Vec<u32>,
    pub gidset: Vec<u32>,
    pub metadata: Option<String>,
    pub flags: serde_json::Value,
    pub big_data_names: Vec<String>,
    pub store: String,
    pub read_only: bool,
    /// Whether the record came from `volatile-layers.json`.
    pub volatile: bool,
}

impl LayerInfo {
    pub fn new(store: &Store, layer: &Layer) -> Self {
        let r = &layer.record;
        LayerInfo {
            id: r.id.clone(),
            names: r.names.clone(),
            parent: r.parent.clone(),
            created: r.created.clone(),
            diff_digest: r.diff_digest.clone(),
            diff_size: r.diff_size,
            compressed_diff_digest: r.compressed_diff_digest.clone(),
            compressed_size: r.compressed_size,
            compression: r.compression,
            toc_digest: r.toc_digest.clone(),
            uidset: r.uidset.clone(),
            gidset: r.gidset.clone(),
            metadata: r.metadata.clone(),
            flags: serde_json::Value::Object(r.flags.clone()),
            big_data_names: r.big_data_names.clone(),
            store: path_string(&store.dirs()[layer.store_index].path),
            read_only: layer.read_only,
            volatile: layer.volatile,
        }
    }
}

#[napi(object)]
pub struct PlatformInfo {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl From<Platform> for PlatformInfo {
    fn from(p: Platform) -> Self {
        PlatformInfo {
            os: p.os,
            architecture: p.architecture,
            variant: p.variant,
        }
    }
}

#[napi(object)]
pub struct ImageDetailsInfo {
    pub image: ImageInfo,
    pub manifest: serde_json::Value,
    pub config: serde_json::Value,
    pub platform: PlatformInfo,
    /// Top first, base last.
    pub layers: Vec<LayerInfo>,
    pub size: i64,
}

impl ImageDetailsInfo {
    pub fn new(store: &Store, d: ImageDetails) -> Self {
        ImageDetailsInfo {
            image: ImageInfo::new(store, &d.image, d.size),
            manifest: d.manifest,
            config: d.config,
            platform: d.platform.into(),
            layers: d.layers.iter().map(|l| LayerInfo::new(store, l)).collect(),
            size: d.size,
        }
    }
}

/// An image by ID with its size, as `getImage` reports it.
pub(crate) fn image_info(store: &cstor_core::Store, id: &str) -> cstor_core::Result<ImageInfo> {
    let image = store.image(id)?;
    let size = store.image_sizes(std::slice::from_ref(&image))?[0];
    Ok(ImageInfo::new(store, &image, size))
}
