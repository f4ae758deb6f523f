//! Core values as JavaScript objects (field names become camelCase in `index.d.ts`).

use cstor_core::config::StoreConfig;
use cstor_core::export::ExportStats;
use cstor_core::names::repo_digests;
use cstor_core::{Image, ImageDetails, Layer, Platform, Store};
use napi_derive::napi;

fn path_string(path: &std::path::Path) -> String {
    path.to_string_lossy().into_owned()
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

#[napi(object)]
pub struct ExportStatsInfo {
    /// Bytes of tar written.
    pub bytes: i64,
    /// File bodies taken from `diff/`.
    pub files: i64,
}

impl From<ExportStats> for ExportStatsInfo {
    fn from(s: ExportStats) -> Self {
        ExportStatsInfo {
            bytes: s.bytes as i64,
            files: s.files as i64,
        }
    }
}
