//! Copying an image from the store to an OCI image layout directory.
//!
//! The layout is what skopeo's `oci:` transport reads and writes: `oci-layout`, `index.json` and
//! content-addressed `blobs/sha256/<hex>`. Layers are the store's tars rebuilt from tar-split
//! (checked against the layer's `diff-digest` while they stream), uncompressed or gzip/zstd
//! compressed, their blob digests computed on the way; the config is copied byte for byte (its
//! digest, and so the image ID, stays); the manifest is a new OCI manifest naming those blobs.
//!
//! Appending is safe to interrupt: every blob is written to a temp file, synced and renamed to
//! its digest, and `index.json` is replaced by rename last — a crash leaves at worst unreferenced
//! temp files, never an index naming a missing or partial blob. Blobs already present are kept.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use cap_std::ambient_authority;
use cap_std::fs::Dir;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::content::compression::Compression;
use crate::content::reader::LayerReader;
use crate::digest::{self, Hashing};
use crate::error::{Error, IoContext, Result};
use crate::progress::Progress;
use crate::store::images::{Image, Platform};
use crate::store::Store;

const LAYOUT_FILE: &str = "oci-layout";
const INDEX_FILE: &str = "index.json";
const BLOBS: &str = "blobs/sha256";
const REF_NAME: &str = "org.opencontainers.image.ref.name";
const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
const CONFIG_TYPE: &str = "application/vnd.oci.image.config.v1+json";

#[derive(Debug, Clone)]
pub struct OciOptions {
    pub compression: Compression,
    /// The `org.opencontainers.image.ref.name` of the image in `index.json` (`oci:DIR:NAME`);
    /// an entry with the same name is replaced.
    pub ref_name: Option<String>,
    /// `os/architecture[/variant]` the image must be. A store keeps the layers of the one
    /// platform it pulled from a manifest list, so this checks rather than selects.
    pub platform: Option<String>,
}

/// What a copy wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OciCopy {
    pub manifest_digest: String,
    pub manifest_size: u64,
    pub layers: usize,
    /// Bytes of new blobs written.
    pub bytes_written: u64,
    /// Blobs that were in the layout already.
    pub blobs_reused: usize,
}

/// A content descriptor: media type, digest and size.
struct Descriptor {
    media_type: &'static str,
    digest: String,
    size: u64,
}

impl Descriptor {
    fn to_json(&self) -> Value {
        json!({ "mediaType": self.media_type, "digest": self.digest, "size": self.size })
    }
}

impl Store {
    /// Copies `image` into the OCI layout at `dir` (created when missing).
    pub fn copy_to_oci(
        &self,
        image: &Image,
        dir: &Path,
        options: &OciOptions,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<OciCopy> {
        let (config_digest, config) = self.image_config_bytes(image)?;
        let platform = serde_json::from_slice(&config)
            .map(|config| Platform::of_config(&config))
            .ok();
        if let Some(wanted) = &options.platform {
            check_platform(image, platform.as_ref(), wanted)?;
        }
        let layout = Layout::open(dir)?;
        let mut layers = self.image_layers(image)?;
        layers.reverse();
        let total_bytes = layers
            .iter()
            .filter_map(|l| l.record.diff_size)
            .sum::<i64>()
            .max(0) as u64;
        let mut report = Progress {
            layer: 0,
            layers: layers.len(),
            bytes: 0,
            total_bytes,
        };
        let mut stats = OciCopy {
            manifest_digest: String::new(),
            manifest_size: 0,
            layers: layers.len(),
            bytes_written: 0,
            blobs_reused: 0,
        };
        let mut layer_descriptors = Vec::new();
        for (index, layer) in layers.iter().enumerate() {
            report.layer = index;
            progress(report);
            let known = layer.record.diff_digest.as_deref();
            if options.compression == Compression::None {
                if let Some(digest) = known.filter(|d| layout.has_blob(d)) {
                    stats.blobs_reused += 1;
                    let size = layer.record.diff_size.unwrap_or(0).max(0) as u64;
                    report.bytes += size;
                    layer_descriptors.push(Descriptor {
                        media_type: Compression::None.oci_layer_media_type(),
                        digest: digest.to_owned(),
                        size,
                    });
                    continue;
                }
            }
            let mut reader = LayerReader::new(self.layer_parts(layer)?);
            let (descriptor, uncompressed, written) =
                layout.write_layer(&mut reader, options.compression, |n| {
                    report.bytes += n;
                })?;
            if let Some(expected) = known.filter(|d| *d != uncompressed) {
                return Err(Error::corrupt(
                    Path::new("overlay-layers").join(format!("{}.tar-split.gz", layer.id())),
                    format!("layer tar hashes to {uncompressed}, layers.json records {expected}"),
                ));
            }
            stats.bytes_written += written;
            stats.blobs_reused += usize::from(written == 0);
            layer_descriptors.push(descriptor);
        }
        let config_descriptor = layout.write_bytes(CONFIG_TYPE, &config)?;
        if config_descriptor.digest != config_digest {
            return Err(Error::corrupt(
                format!("image {} config", image.id()),
                format!(
                    "config hashes to {}, stored as {config_digest}",
                    config_descriptor.digest
                ),
            ));
        }
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": config_descriptor.to_json(),
            "layers": layer_descriptors.iter().map(Descriptor::to_json).collect::<Vec<_>>(),
        });
        let manifest_bytes =
            serde_json::to_vec(&manifest).map_err(|e| Error::io(dir, std::io::Error::other(e)))?;
        let manifest_descriptor = layout.write_bytes(MANIFEST_TYPE, &manifest_bytes)?;
        layout.add_to_index(&manifest_descriptor, platform, options.ref_name.as_deref())?;
        stats.manifest_digest = manifest_descriptor.digest;
        stats.manifest_size = manifest_descriptor.size;
        progress(report);
        Ok(stats)
    }
}

/// Refuses to copy an image whose platform is not `wanted` (`os/arch[/variant]`).
fn check_platform(image: &Image, platform: Option<&Platform>, wanted: &str) -> Result<()> {
    let have = platform.map(|p| {
        let mut name = format!("{}/{}", p.os, p.architecture);
        if let Some(variant) = &p.variant {
            name = format!("{name}/{variant}");
        }
        name
    });
    let matches = have.as_deref().is_some_and(|have| {
        have == wanted
            || (wanted.matches('/').count() == 1 && have.starts_with(&format!("{wanted}/")))
    });
    if matches {
        return Ok(());
    }
    Err(Error::InvalidArgument(format!(
        "image {} is {}, not {wanted}: the store holds one platform's layers per image",
        image.id(),
        have.as_deref().unwrap_or("of no stated platform")
    )))
}

/// An OCI layout directory being written.
struct Layout {
    dir: Dir,
    path: PathBuf,
}

impl Layout {
    fn open(path: &Path) -> Result<Layout> {
        std::fs::create_dir_all(path.join(BLOBS)).at(path)?;
        let dir = Dir::open_ambient_dir(path, ambient_authority()).at(path)?;
        let layout = Layout {
            dir,
            path: path.to_owned(),
        };
        match layout.dir.read(LAYOUT_FILE) {
            Ok(bytes) => {
                let value: Value = serde_json::from_slice(&bytes)
                    .map_err(|e| Error::corrupt(path.join(LAYOUT_FILE), e.to_string()))?;
                if value
                    .get("imageLayoutVersion")
                    .and_then(Value::as_str)
                    .is_none()
                {
                    return Err(Error::corrupt(
                        path.join(LAYOUT_FILE),
                        "no imageLayoutVersion: not an OCI image layout",
                    ));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                layout.replace(Path::new(LAYOUT_FILE), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
            }
            Err(e) => return Err(Error::io(path.join(LAYOUT_FILE), e)),
        }
        Ok(layout)
    }

    fn blob_path(digest: &str) -> Option<PathBuf> {
        let hex = digest.strip_prefix("sha256:")?;
        let valid = hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit());
        valid.then(|| Path::new(BLOBS).join(hex))
    }

    fn has_blob(&self, digest: &str) -> bool {
        Self::blob_path(digest)
            .is_some_and(|p| self.dir.symlink_metadata(p).is_ok_and(|m| m.is_file()))
    }

    /// A new temp file beside the blobs, for content whose name is known only at the end.
    fn temp(&self, dir: &Path) -> Result<(PathBuf, File)> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let name = dir.join(format!(".cstor-{}-{nanos}.tmp", std::process::id()));
        let mut options = cap_std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        let file = self
            .dir
            .open_with(&name, &options)
            .at(self.path.join(&name))?;
        Ok((name, file.into_std()))
    }

    /// Makes a synced temp file the blob `digest`, or drops it when the blob exists; returns
    /// whether it was new.
    fn commit_blob(&self, temp: &Path, file: File, digest: &str) -> Result<bool> {
        let shown = self.path.join(temp);
        file.sync_all().at(&shown)?;
        drop(file);
        let Some(blob) = Self::blob_path(digest) else {
            return Err(Error::io(&shown, std::io::ErrorKind::InvalidData.into()));
        };
        if self.has_blob(digest) {
            self.dir.remove_file(temp).at(&shown)?;
            return Ok(false);
        }
        self.dir
            .rename(temp, &self.dir, &blob)
            .at(self.path.join(&blob))?;
        Ok(true)
    }

    /// Streams a layer tar into a blob, compressed as asked. Returns the blob's descriptor, the
    /// digest of the uncompressed tar, and the bytes written (0 when the blob existed).
    fn write_layer(
        &self,
        tar: &mut impl Read,
        compression: Compression,
        mut advance: impl FnMut(u64),
    ) -> Result<(Descriptor, String, u64)> {
        let (temp, file) = self.temp(Path::new(BLOBS))?;
        let shown = self.path.join(&temp);
        let result = (|| {
            let blob = Hashing::new(BufWriter::with_capacity(1 << 20, file));
            let mut encoder: Box<dyn Encoder> = match compression {
                Compression::None => Box::new(blob),
                Compression::Gzip => Box::new(flate2::write::GzEncoder::new(
                    blob,
                    flate2::Compression::default(),
                )),
                Compression::Zstd => {
                    Box::new(zstd::stream::write::Encoder::new(blob, 3).at(&shown)?)
                }
                Compression::Bzip2 | Compression::Xz => {
                    return Err(Error::Unsupported {
                        what: format!("writing {compression:?} compressed layers"),
                    })
                }
            };
            let mut uncompressed = Sha256::new();
            let mut buffer = vec![0; 1 << 20];
            loop {
                let n = match tar.read(&mut buffer) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        return Err(crate::content::reader::into_core_error(e, |e| {
                            Error::io(&shown, e)
                        }))
                    }
                };
                uncompressed.update(&buffer[..n]);
                encoder.write_all(&buffer[..n]).at(&shown)?;
                advance(n as u64);
            }
            let blob = encoder.finish_blob().at(&shown)?;
            let (digest, size, buffered) = blob.finish();
            let file = buffered
                .into_inner()
                .map_err(|e| e.into_error())
                .at(&shown)?;
            Ok((digest, size, file, digest::finish(uncompressed)))
        })();
        let (digest, size, file, uncompressed) = match result {
            Ok(done) => done,
            Err(e) => {
                let _ = self.dir.remove_file(&temp);
                return Err(e);
            }
        };
        let new = self.commit_blob(&temp, file, &digest)?;
        let descriptor = Descriptor {
            media_type: compression.oci_layer_media_type(),
            digest,
            size,
        };
        Ok((descriptor, uncompressed, if new { size } else { 0 }))
    }

    fn write_bytes(&self, media_type: &'static str, bytes: &[u8]) -> Result<Descriptor> {
        let digest = digest::sha256(bytes);
        if !self.has_blob(&digest) {
            let (temp, mut file) = self.temp(Path::new(BLOBS))?;
            file.write_all(bytes).at(self.path.join(&temp))?;
            self.commit_blob(&temp, file, &digest)?;
        }
        Ok(Descriptor {
            media_type,
            digest,
            size: bytes.len() as u64,
        })
    }

    /// Adds the manifest to `index.json`, replacing an entry of the same ref name.
    fn add_to_index(
        &self,
        manifest: &Descriptor,
        platform: Option<Platform>,
        ref_name: Option<&str>,
    ) -> Result<()> {
        let shown = self.path.join(INDEX_FILE);
        let mut index: Value = match self.dir.read(INDEX_FILE) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|e| Error::corrupt(&shown, e.to_string()))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                json!({ "schemaVersion": 2, "manifests": [] })
            }
            Err(e) => return Err(Error::io(&shown, e)),
        };
        let Some(manifests) = index.get_mut("manifests").and_then(Value::as_array_mut) else {
            return Err(Error::corrupt(&shown, "no manifests array"));
        };
        if let Some(name) = ref_name {
            manifests.retain(|m| {
                m.pointer(&format!("/annotations/{REF_NAME}"))
                    .and_then(Value::as_str)
                    != Some(name)
            });
        }
        let mut entry = manifest.to_json();
        if let Some(platform) = platform.filter(|p| !p.os.is_empty()) {
            let mut value = json!({ "os": platform.os, "architecture": platform.architecture });
            if let Some(variant) = platform.variant {
                value["variant"] = json!(variant);
            }
            entry["platform"] = value;
        }
        if let Some(name) = ref_name {
            entry["annotations"] = json!({ REF_NAME: name });
        }
        manifests.push(entry);
        let bytes =
            serde_json::to_vec(&index).map_err(|e| Error::io(&shown, std::io::Error::other(e)))?;
        self.replace(Path::new(INDEX_FILE), &bytes)
    }

    /// Replaces a small file by writing a synced temp file and renaming it over.
    fn replace(&self, name: &Path, bytes: &[u8]) -> Result<()> {
        let (temp, mut file) = self.temp(Path::new(""))?;
        let shown = self.path.join(name);
        let written = file.write_all(bytes).and_then(|()| file.sync_all());
        let renamed = written.and_then(|()| self.dir.rename(&temp, &self.dir, name));
        if let Err(e) = renamed {
            let _ = self.dir.remove_file(&temp);
            return Err(Error::io(&shown, e));
        }
        Ok(())
    }
}

type Blob = Hashing<BufWriter<File>>;

/// A compressor (or none) in front of the blob file: written to, then finished for the blob.
trait Encoder: Write {
    fn finish_blob(self: Box<Self>) -> std::io::Result<Blob>;
}

impl Encoder for Blob {
    fn finish_blob(self: Box<Self>) -> std::io::Result<Blob> {
        Ok(*self)
    }
}

impl Encoder for flate2::write::GzEncoder<Blob> {
    fn finish_blob(self: Box<Self>) -> std::io::Result<Blob> {
        self.finish()
    }
}

impl Encoder for zstd::stream::write::Encoder<'static, Blob> {
    fn finish_blob(self: Box<Self>) -> std::io::Result<Blob> {
        self.finish()
    }
}
