//! `podman import`: a root filesystem tar becomes a one-layer image, described by the config and
//! manifest podman 5.8's tarball source writes, byte for byte (an OCI config with one diff ID, an
//! "imported from tarball" history entry and the tar file's mtime as `created`; an OCI
//! manifest). Pulled through [`Store::pull`], it gets the IDs podman gives it: the layer's is its
//! diff ID's hex, the image's the config digest's.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::content::compression::Compression;
use crate::digest::{sha256, Hashing};
use crate::error::{Error, IoContext, Result};
use crate::time::local_rfc3339;
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
        // The newest file's mtime, as containers/image's tarball source takes it.
        let mtime = file.metadata().at(path)?.modified().at(path)?;
        let since_epoch = mtime
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let created = local_rfc3339(since_epoch.as_secs() as i64, since_epoch.subsec_nanos());
        let platform = host_platform();
        let config = ImportConfig {
            created: &created,
            architecture: &platform.architecture,
            os: &platform.os,
            config: Empty {},
            rootfs: RootFs {
                kind: "layers",
                diff_ids: [&diff_id],
            },
            history: [History {
                created: &created,
                created_by: format!(
                    "/bin/sh -c #(nop) ADD file:{} in /",
                    diff_id.trim_start_matches("sha256:")
                ),
                comment: "imported from tarball",
            }],
        };
        let config =
            serde_json::to_vec(&config).map_err(|e| Error::io(path, io::Error::other(e)))?;
        let manifest = ImportManifest {
            schema_version: 2,
            media_type: "application/vnd.oci.image.manifest.v1+json",
            config: Descriptor {
                media_type: "application/vnd.oci.image.config.v1+json",
                digest: &sha256(&config),
                size: config.len() as u64,
            },
            layers: [Descriptor {
                media_type,
                digest: &blob_digest,
                size: blob_size,
            }],
        };
        let manifest =
            serde_json::to_vec(&manifest).map_err(|e| Error::io(path, io::Error::other(e)))?;
        Ok(Tarball {
            path: path.to_owned(),
            blob_digest,
            manifest,
            config,
        })
    }
}

// The config and manifest as containers/image's Go structs marshal them: fields in declaration
// order, so that the bytes — and the image ID, the config's digest — are podman 5.8's.

#[derive(Serialize)]
struct ImportConfig<'a> {
    created: &'a str,
    architecture: &'a str,
    os: &'a str,
    config: Empty,
    rootfs: RootFs<'a>,
    history: [History<'a>; 1],
}

#[derive(Serialize)]
struct Empty {}

#[derive(Serialize)]
struct RootFs<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    diff_ids: [&'a str; 1],
}

#[derive(Serialize)]
struct History<'a> {
    created: &'a str,
    created_by: String,
    comment: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ImportManifest<'a> {
    schema_version: u32,
    media_type: &'a str,
    config: Descriptor<'a>,
    layers: [Descriptor<'a>; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor<'a> {
    media_type: &'a str,
    digest: &'a str,
    size: u64,
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
