//! Extracting an image's merged filesystem, or one layer, into a directory.

use std::sync::Arc;

use serde::Deserialize;
use ts_rs::TS;

use crate::error::{Error, Result};
use crate::extract::{ExtractOptions, ExtractStats, Whiteouts};
use crate::ops::{Call, Operation};
use crate::store::Store;

/// How an extraction writes: each unset field takes its default.
#[derive(Debug, Default, Deserialize, TS)]
#[ts(optional_fields)]
pub struct ExtractSettings {
    /// Share extents with the store (`FICLONE`) where the filesystem allows; default true.
    #[serde(default)]
    pub reflinks: Option<bool>,
    /// Give entries their recorded uid/gid; default: when running as root (for a rootless
    /// store: in the user namespace, where the IDs are the image's own).
    #[serde(default)]
    pub owners: Option<bool>,
    /// Copy extended attributes; default true.
    #[serde(default)]
    pub xattrs: Option<bool>,
}

impl ExtractSettings {
    fn options(&self, whiteouts: Whiteouts) -> ExtractOptions {
        ExtractOptions {
            reflinks: self.reflinks.unwrap_or(true),
            // SAFETY: geteuid cannot fail.
            owners: self
                .owners
                .unwrap_or_else(|| unsafe { libc::geteuid() } == 0),
            xattrs: self.xattrs.unwrap_or(true),
            whiteouts,
        }
    }
}

/// Writes an image's merged filesystem — as `podman image mount` shows it — into `target`,
/// which must not exist or be empty; built beside it and renamed into place when complete.
#[derive(Debug, Deserialize, TS)]
pub struct ExtractImage {
    pub image: String,
    pub target: String,
    #[serde(flatten)]
    #[ts(flatten)]
    pub settings: ExtractSettings,
}

impl Operation for ExtractImage {
    const METHOD: &'static str = "ExtractImage";
    type Output = ExtractStats;

    fn run(self, store: &Arc<Store>, call: &mut Call) -> Result<ExtractStats> {
        let image = store.image(&self.image)?;
        let options = self.settings.options(Whiteouts::Apply);
        let target = call.path(&self.target);
        store.extract_image(&image, &target, options, &mut call.progress())
    }
}

/// Writes one layer's own content into `target`; its whiteouts as `whiteouts` says: `overlay`
/// (default) as overlayfs stores them, `aufs` as a layer tar has them, `apply` to drop them.
#[derive(Debug, Deserialize, TS)]
#[ts(optional_fields)]
pub struct ExtractLayer {
    pub layer: String,
    pub target: String,
    #[serde(default)]
    #[ts(optional, type = "'overlay' | 'aufs' | 'apply'")]
    pub whiteouts: Option<String>,
    #[serde(flatten)]
    #[ts(flatten)]
    pub settings: ExtractSettings,
}

impl Operation for ExtractLayer {
    const METHOD: &'static str = "ExtractLayer";
    type Output = ExtractStats;

    fn run(self, store: &Arc<Store>, call: &mut Call) -> Result<ExtractStats> {
        let whiteouts = match self.whiteouts.as_deref() {
            None | Some("overlay") => Whiteouts::Overlay,
            Some("aufs") => Whiteouts::Aufs,
            Some("apply") => Whiteouts::Apply,
            Some(other) => {
                return Err(Error::InvalidArgument(format!(
                    "whiteouts must be overlay, aufs or apply, not {other:?}"
                )))
            }
        };
        let layer = store.layer(&self.layer)?;
        let options = self.settings.options(whiteouts);
        let target = call.path(&self.target);
        store.extract_layer(&layer, &target, options, &mut call.progress())
    }
}
