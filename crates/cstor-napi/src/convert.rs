//! Core values as JavaScript objects (field names become camelCase in `index.d.ts`).

use cstor_core::config::StoreConfig;
use std::os::fd::IntoRawFd;

use cstor_core::export::{ExportStats, LayerPart};
use cstor_core::extract::{ExtractOptions, ExtractStats, Progress, Whiteouts};
use cstor_core::names::repo_digests;
use cstor_core::oci::{Compression, OciCopy, OciOptions};
use cstor_core::splitfdstream::LayerStream;
use cstor_core::tardiff::{Difference, TarDiff};
use cstor_core::toc::{TocEntry, TocOptions};
use cstor_core::{Image, ImageDetails, Layer, Platform, Store};
use napi_derive::napi;

pub(crate) fn path_string(path: &std::path::Path) -> String {
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

/// One piece of a layer's tar for JavaScript: `kind` is `"segment"` (with `data`) or `"file"`
/// (with `name`, `size`, `crc` and an `fd` the receiver now owns).
#[napi(object)]
pub struct LayerPartInfo {
    pub kind: String,
    pub data: Option<napi::bindgen_prelude::Buffer>,
    pub name: Option<String>,
    pub size: Option<i64>,
    /// The CRC-64/GO-ISO tar-split recorded, as 16 hex digits.
    pub crc: Option<String>,
    pub fd: Option<i32>,
}

impl From<LayerPart> for LayerPartInfo {
    /// A body's descriptor is handed over to JavaScript, which must close it.
    fn from(part: LayerPart) -> Self {
        let empty = LayerPartInfo {
            kind: String::new(),
            data: None,
            name: None,
            size: None,
            crc: None,
            fd: None,
        };
        match part {
            LayerPart::Segment(data) => LayerPartInfo {
                kind: "segment".into(),
                data: Some(data.into()),
                ..empty
            },
            LayerPart::Body {
                name,
                size,
                crc,
                file,
            } => LayerPartInfo {
                kind: "file".into(),
                name: Some(path_string(&name)),
                size: Some(size as i64),
                crc: crc.map(|c| format!("{c:016x}")),
                fd: Some(file.into_raw_fd()),
                ..empty
            },
        }
    }
}

/// Options of `extractImage`/`extractLayer`; unset fields take the TypeScript API's defaults.
#[napi(object)]
#[derive(Default)]
pub struct ExtractOptionsInfo {
    pub reflinks: Option<bool>,
    pub owners: Option<bool>,
    pub xattrs: Option<bool>,
    /// `"apply"`, `"overlay"` or `"aufs"`.
    pub whiteouts: Option<String>,
}

impl ExtractOptionsInfo {
    pub fn into_core(self, default_whiteouts: Whiteouts) -> cstor_core::Result<ExtractOptions> {
        let whiteouts = match self.whiteouts.as_deref() {
            None => default_whiteouts,
            Some("apply") => Whiteouts::Apply,
            Some("overlay") => Whiteouts::Overlay,
            Some("aufs") => Whiteouts::Aufs,
            Some(other) => {
                return Err(cstor_core::Error::InvalidArgument(format!(
                    "whiteouts must be apply, overlay or aufs, not {other:?}"
                )))
            }
        };
        Ok(ExtractOptions {
            reflinks: self.reflinks.unwrap_or(true),
            // SAFETY: geteuid cannot fail.
            owners: self
                .owners
                .unwrap_or_else(|| unsafe { libc::geteuid() } == 0),
            xattrs: self.xattrs.unwrap_or(true),
            whiteouts,
        })
    }
}

#[napi(object)]
pub struct ExtractStatsInfo {
    pub files: i64,
    pub dirs: i64,
    pub symlinks: i64,
    pub hardlinks: i64,
    pub specials: i64,
    pub whiteouts: i64,
    pub skipped: i64,
    pub bytes: i64,
    pub reflinked_files: i64,
    pub kernel_copied_files: i64,
    pub user_copied_files: i64,
}

impl From<ExtractStats> for ExtractStatsInfo {
    fn from(s: ExtractStats) -> Self {
        ExtractStatsInfo {
            files: s.files as i64,
            dirs: s.dirs as i64,
            symlinks: s.symlinks as i64,
            hardlinks: s.hardlinks as i64,
            specials: s.specials as i64,
            whiteouts: s.whiteouts as i64,
            skipped: s.skipped as i64,
            bytes: s.bytes as i64,
            reflinked_files: s.reflinked_files as i64,
            kernel_copied_files: s.kernel_copied_files as i64,
            user_copied_files: s.user_copied_files as i64,
        }
    }
}

#[napi(object)]
pub struct ProgressInfo {
    /// The layer being applied, 0 = base.
    pub layer: u32,
    pub layers: u32,
    pub bytes: i64,
    pub total_bytes: i64,
}

impl From<Progress> for ProgressInfo {
    fn from(p: Progress) -> Self {
        ProgressInfo {
            layer: p.layer as u32,
            layers: p.layers as u32,
            bytes: p.bytes as i64,
            total_bytes: p.total_bytes as i64,
        }
    }
}

/// One difference of `tarDiff`: `kind` is `missing` (first archive only), `extra` (second only)
/// or `field` (`field` differs: `first` → `second`).
#[napi(object)]
pub struct TarDifferenceInfo {
    pub kind: String,
    pub name: String,
    pub field: Option<String>,
    pub first: Option<String>,
    pub second: Option<String>,
}

#[napi(object)]
pub struct TarDiffInfo {
    pub first_entries: i64,
    pub second_entries: i64,
    pub differences: Vec<TarDifferenceInfo>,
}

impl From<TarDiff> for TarDiffInfo {
    fn from(d: TarDiff) -> Self {
        let entry = |kind: &str, name: String| TarDifferenceInfo {
            kind: kind.into(),
            name,
            field: None,
            first: None,
            second: None,
        };
        TarDiffInfo {
            first_entries: d.first_entries as i64,
            second_entries: d.second_entries as i64,
            differences: d
                .differences
                .into_iter()
                .map(|difference| match difference {
                    Difference::Missing { name } => entry("missing", name),
                    Difference::Extra { name } => entry("extra", name),
                    Difference::Field {
                        name,
                        field,
                        first,
                        second,
                    } => TarDifferenceInfo {
                        field: Some(field),
                        first,
                        second,
                        ..entry("field", name)
                    },
                })
                .collect(),
        }
    }
}

#[napi(object)]
#[derive(Default)]
pub struct TocOptionsInfo {
    pub digests: Option<bool>,
    pub list_whiteouts: Option<bool>,
}

impl From<TocOptionsInfo> for TocOptions {
    fn from(o: TocOptionsInfo) -> Self {
        TocOptions {
            digests: o.digests.unwrap_or(false),
            list_whiteouts: o.list_whiteouts.unwrap_or(false),
        }
    }
}

/// One TOC entry; see `cstor_core::toc::TocEntry`.
#[napi(object)]
pub struct TocEntryInfo {
    pub name: String,
    /// `dir`, `reg`, `symlink`, `hardlink`, `char`, `block`, `fifo` or `whiteout`.
    pub kind: String,
    pub size: i64,
    pub mode: u32,
    pub uid: i64,
    pub gid: i64,
    pub user_name: String,
    pub group_name: String,
    pub mod_time: i64,
    pub link_name: String,
    pub dev_major: u32,
    pub dev_minor: u32,
    pub xattrs: Vec<XattrInfo>,
    pub digest: Option<String>,
    pub opaque: bool,
}

#[napi(object)]
pub struct XattrInfo {
    pub key: String,
    pub value: napi::bindgen_prelude::Buffer,
}

impl From<TocEntry> for TocEntryInfo {
    fn from(e: TocEntry) -> Self {
        TocEntryInfo {
            name: e.name,
            kind: e.kind.as_str().into(),
            size: e.size as i64,
            mode: e.mode,
            uid: e.uid as i64,
            gid: e.gid as i64,
            user_name: e.user_name,
            group_name: e.group_name,
            mod_time: e.mod_time,
            link_name: e.link_name,
            dev_major: e.dev_major,
            dev_minor: e.dev_minor,
            xattrs: e
                .xattrs
                .into_iter()
                .map(|(key, value)| XattrInfo {
                    key,
                    value: value.into(),
                })
                .collect(),
            digest: e.digest,
            opaque: e.opaque,
        }
    }
}

/// A splitfdstream's fds, handed over to JavaScript (which must close them).
#[napi(object)]
pub struct SplitFdStreamInfo {
    /// A memfd holding the stream, at offset 0.
    pub stream: i32,
    /// `content[k - 1]` is the stream's fd `k`.
    pub content: Vec<i32>,
}

impl From<LayerStream> for SplitFdStreamInfo {
    fn from(s: LayerStream) -> Self {
        SplitFdStreamInfo {
            stream: s.stream.into_raw_fd(),
            content: s.content.into_iter().map(|f| f.into_raw_fd()).collect(),
        }
    }
}

#[napi(object)]
#[derive(Default)]
pub struct OciOptionsInfo {
    /// `"none"` (default), `"gzip"` or `"zstd"`.
    pub compression: Option<String>,
    pub ref_name: Option<String>,
    /// `os/architecture[/variant]` the image must be.
    pub platform: Option<String>,
}

impl OciOptionsInfo {
    pub fn into_core(self) -> cstor_core::Result<OciOptions> {
        let compression = match self.compression.as_deref() {
            None | Some("none") => Compression::None,
            Some("gzip") => Compression::Gzip,
            Some("zstd") => Compression::Zstd,
            Some(other) => {
                return Err(cstor_core::Error::InvalidArgument(format!(
                    "compression must be none, gzip or zstd, not {other:?}"
                )))
            }
        };
        Ok(OciOptions {
            compression,
            ref_name: self.ref_name,
            platform: self.platform,
        })
    }
}

#[napi(object)]
pub struct OciCopyInfo {
    pub manifest_digest: String,
    pub manifest_size: i64,
    pub layers: u32,
    pub bytes_written: i64,
    pub blobs_reused: u32,
}

impl From<OciCopy> for OciCopyInfo {
    fn from(c: OciCopy) -> Self {
        OciCopyInfo {
            manifest_digest: c.manifest_digest,
            manifest_size: c.manifest_size as i64,
            layers: c.layers as u32,
            bytes_written: c.bytes_written as i64,
            blobs_reused: c.blobs_reused as u32,
        }
    }
}
