//! `podman import`: a root filesystem tar becomes a one-layer image, described by the config and
//! manifest podman's tarball source writes (an OCI config with one diff ID and an "imported from
//! tarball" history entry; an OCI manifest without a top-level media type). Pulled through
//! [`Store::pull`], it gets the IDs podman gives it: the layer's is its diff ID's hex, the
//! image's the config digest's.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::content::compression::Compression;
use crate::digest::{sha256, Hashing};
use crate::error::{Error, IoContext, Result};
use crate::time::now_rfc3339;
use crate::transport::{host_platform, ImageSource};

/// A tar file offered as a one-layer image.
pub struct Tarball {
    path: PathBuf,
    blob_digest: String,
    manifest: Vec<u8>,
    config: Vec<u8>,
}

impl Tarball {
    /// Reads `path` once to learn its digests (plain, gzip or zstd tar).
    pub fn open(path: &Path) -> Result<Tarball> {
        let mut file = File::open(path).at(path)?;
        let mut head = [0u8; 16];
        let n = file.read(&mut head).at(path)?;
        let compression = Compression::detect(&head[..n]);
        let (blob_digest, blob_size) = digest(File::open(path).at(path)?, path)?;
        let diff_id = digest(
            compression.decoder(File::open(path).at(path)?, "tarballs")?,
            path,
        )?
        .0;
        let media_type = compression.oci_layer_media_type();
        let created = now_rfc3339();
        let platform = host_platform();
        let config = serde_json::to_vec(&json!({
            "created": created,
            "architecture": platform.architecture,
            "os": platform.os,
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{
                "created": created,
                "created_by": format!("/bin/sh -c #(nop) ADD file:{} in /", diff_id.trim_start_matches("sha256:")),
                "comment": "imported from tarball",
            }],
        }))
        .map_err(|e| Error::io(path, io::Error::other(e)))?;
        let config_digest = sha256(&config);
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": config.len(),
            },
            "layers": [{"mediaType": media_type, "digest": blob_digest, "size": blob_size}],
        }))
        .map_err(|e| Error::io(path, io::Error::other(e)))?;
        Ok(Tarball {
            path: path.to_owned(),
            blob_digest,
            manifest,
            config,
        })
    }
}

/// The digest and size of everything `reader` yields.
fn digest(reader: impl Read, path: &Path) -> Result<(String, u64)> {
    let mut hashing = Hashing::new(reader);
    io::copy(&mut hashing, &mut io::sink()).at(path)?;
    let (digest, size, _) = hashing.finish();
    Ok((digest, size))
}

impl ImageSource for Tarball {
    fn manifest(&mut self) -> Result<Vec<u8>> {
        Ok(self.manifest.clone())
    }

    fn blob(&mut self, digest: &str) -> Result<Box<dyn Read + '_>> {
        if digest == self.blob_digest {
            Ok(Box::new(File::open(&self.path).at(&self.path)?))
        } else if digest == sha256(&self.config) {
            Ok(Box::new(io::Cursor::new(self.config.clone())))
        } else {
            Err(Error::InvalidArgument(format!(
                "the tarball has no blob {digest}"
            )))
        }
    }
}
