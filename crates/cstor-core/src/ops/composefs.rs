//! An image as a composefs image: its EROFS image, or the dumpfile it is made from.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::content::{dumpfile, erofs};
use crate::digest::fsverity::{self, Algorithm};
use crate::error::{Error, IoContext, Result};
use crate::ops::{Call, Operation};
use crate::store::Store;

/// Writes the composefs image of `image` (format 1, byte for byte what C
/// `mkcomposefs --min-version=1` writes for its dumpfile; file contents named by fs-verity
/// digest) to `output`, or with `dumpfile` that dumpfile; the file appears whole or not at all.
#[derive(Debug, Deserialize, TS)]
#[ts(optional_fields)]
pub struct ComposefsImage {
    pub image: String,
    pub output: String,
    /// Write the dumpfile instead of the EROFS image.
    #[serde(default)]
    pub dumpfile: Option<bool>,
    /// The fs-verity hash naming objects and the image: `sha512` (default, as `cfsctl init`)
    /// or `sha256` (as C `mkcomposefs --digest-store`).
    #[serde(default)]
    #[ts(optional, type = "'sha256' | 'sha512'")]
    pub algorithm: Option<String>,
}

/// What a composefs image was made of.
#[derive(Debug, Serialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(rename_all = "camelCase")]
pub struct ComposefsImageInfo {
    /// The image's composefs ID: the fs-verity digest of its EROFS image (hex), what
    /// `cfsctl oci compute-id` prints.
    pub id: String,
    /// Content objects it names (distinct files).
    pub objects: u32,
    /// Their bytes.
    pub object_bytes: f64,
}

/// The algorithm a caller named.
pub(crate) fn algorithm(name: Option<&str>) -> Result<Algorithm> {
    match name.unwrap_or("sha512") {
        "sha512" => Ok(Algorithm::Sha512),
        "sha256" => Ok(Algorithm::Sha256),
        other => Err(Error::InvalidArgument(format!(
            "fs-verity algorithm {other:?}: sha256 or sha512"
        ))),
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Operation for ComposefsImage {
    const METHOD: &'static str = "ComposefsImage";
    type Output = ComposefsImageInfo;

    fn run(self, store: &Arc<Store>, call: &mut Call) -> Result<ComposefsImageInfo> {
        let algorithm = algorithm(self.algorithm.as_deref())?;
        let image = store.image(&self.image)?;
        let tree = store.composefs_image(&image, algorithm)?;
        let erofs = erofs::writer::write(&tree.entries, 1)?;
        let mut hasher = fsverity::Hasher::new(algorithm);
        hasher.update(&erofs);
        let id = hex(&hasher.finish());
        let output = call.path(&self.output);
        let bytes = if self.dumpfile.unwrap_or(false) {
            let mut text = Vec::new();
            dumpfile::write(&tree.entries, &mut text).map_err(|e| Error::io(&output, e))?;
            text
        } else {
            erofs
        };
        write_whole(&output, &bytes)?;
        Ok(ComposefsImageInfo {
            id,
            objects: tree.objects.len() as u32,
            object_bytes: tree.objects.iter().map(|o| o.size as f64).sum(),
        })
    }
}

/// Writes `bytes` to `path` through a temporary file beside it, renamed into place.
fn write_whole(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| Error::InvalidArgument(format!("{} is not a file name", path.display())))?;
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(name);
    temp_name.push(format!(".cstor-{}", std::process::id()));
    let temp = path.with_file_name(temp_name);
    let written = (|| {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written.at(path)
}
