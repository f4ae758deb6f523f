//! Images and layers as operations report them: their records plus what the store knows around
//! them (the store they live in, whether it is read-only, an image's size and repo digests).
//! Fields a record lacks are left out, not `null`, as JavaScript code has always seen them.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::error::Result;
use crate::store::images::{Image, ImageDetails, Platform};
use crate::store::layers::Layer;
use crate::store::names::repo_digests;
use crate::store::Store;

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ImageInfo {
    pub id: String,
    pub names: Vec<String>,
    pub names_history: Vec<String>,
    /// The digest of the image's manifest, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Every digest the image is known by, `digest` first.
    pub digests: Vec<String>,
    /// `repository@digest` pairs, as podman's `RepoDigests`.
    pub repo_digests: Vec<String>,
    /// Uncompressed layer bytes plus big data, as podman's `Size`.
    pub size: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_layer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    pub big_data_names: Vec<String>,
    /// The store the image lives in: the graph root or an additional image store.
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
            store: store.dirs()[image.store_index]
                .path
                .to_string_lossy()
                .into_owned(),
            read_only: image.read_only,
        }
    }

    /// The image a reference names, with its size.
    pub fn of(store: &Store, reference: &str) -> Result<Self> {
        let image = store.image(reference)?;
        let size = store.image_sizes(std::slice::from_ref(&image))?[0];
        Ok(ImageInfo::new(store, &image, size))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct LayerInfo {
    pub id: String,
    pub names: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// sha256 of the uncompressed layer tar.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff_digest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff_size: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compressed_diff_digest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compressed_size: Option<i64>,
    /// 0 uncompressed, 1 bzip2, 2 gzip, 3 xz, 4 zstd.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub toc_digest: Option<String>,
    pub uidset: Vec<u32>,
    pub gidset: Vec<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<String>,
    #[ts(type = "Record<string, unknown>")]
    pub flags: serde_json::Map<String, serde_json::Value>,
    pub big_data_names: Vec<String>,
    /// The store the layer lives in: the graph root or an additional image store.
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
            flags: r.flags.clone(),
            big_data_names: r.big_data_names.clone(),
            store: store.dirs()[layer.store_index]
                .path
                .to_string_lossy()
                .into_owned(),
            read_only: layer.read_only,
            volatile: layer.volatile,
        }
    }

    pub fn all(store: &Store, layers: &[Layer]) -> Vec<Self> {
        layers.iter().map(|l| LayerInfo::new(store, l)).collect()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct PlatformInfo {
    pub os: String,
    pub architecture: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
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

/// An image with its manifest, config, platform and layers.
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ImageDetailsInfo {
    pub image: ImageInfo,
    #[ts(type = "Record<string, unknown>")]
    pub manifest: serde_json::Value,
    #[ts(type = "Record<string, unknown>")]
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
            layers: LayerInfo::all(store, &d.layers),
            size: d.size,
        }
    }
}
