//! An OCI image layout as a destination (`oci:DIR[:REF]`), written as skopeo writes one:
//! `oci-layout`, content-addressed `blobs/sha256/<hex>`, and `index.json` naming the manifest by
//! its `org.opencontainers.image.ref.name`.
//!
//! Appending is safe to interrupt: every blob is written to a temp file, synced and renamed to
//! its digest, and `index.json` is replaced by rename last — a crash leaves at worst unreferenced
//! temp files, never an index naming a missing or partial blob. Blobs already present are kept.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use cap_std::ambient_authority;
use cap_std::fs::Dir;
use serde_json::{json, Value};

use crate::error::{into_core_error, Error, IoContext, Result};
use crate::transport::{
    BlobWriter, Descriptor, ImageDestination, ImageManifest, OCI_INDEX_TYPE, OCI_MANIFEST_TYPE,
};

pub(crate) const LAYOUT_FILE: &str = "oci-layout";
pub(crate) const LAYOUT_VERSION: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;
pub(crate) const INDEX_FILE: &str = "index.json";
pub(crate) const BLOBS: &str = "blobs/sha256";
const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// An OCI layout directory being written.
pub struct OciLayoutDestination {
    dir: Dir,
    path: PathBuf,
    /// The `org.opencontainers.image.ref.name` of the image in `index.json` (`oci:DIR:NAME`);
    /// an entry with the same name is replaced.
    ref_name: Option<String>,
}

impl OciLayoutDestination {
    /// Opens the layout at `path`, creating it when missing.
    pub fn open(path: &Path, ref_name: Option<&str>) -> Result<OciLayoutDestination> {
        std::fs::create_dir_all(path.join(BLOBS)).at(path)?;
        let dir = Dir::open_ambient_dir(path, ambient_authority()).at(path)?;
        let layout = OciLayoutDestination {
            dir,
            path: path.to_owned(),
            ref_name: ref_name.map(str::to_owned),
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
                layout.replace(Path::new(LAYOUT_FILE), LAYOUT_VERSION)?;
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

    /// Adds the manifest to `index.json`, replacing an entry of the same ref name.
    fn add_to_index(&self, manifest: &ImageManifest<'_>) -> Result<()> {
        let shown = self.path.join(INDEX_FILE);
        let mut index: Value = match self.dir.read(INDEX_FILE) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|e| Error::corrupt(&shown, e.to_string()))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => empty_index(),
            Err(e) => return Err(Error::io(&shown, e)),
        };
        let Some(manifests) = index.get_mut("manifests").and_then(Value::as_array_mut) else {
            return Err(Error::corrupt(&shown, "no manifests array"));
        };
        if let Some(name) = &self.ref_name {
            manifests.retain(|m| {
                m.pointer(&format!("/annotations/{REF_NAME}"))
                    .and_then(Value::as_str)
                    != Some(name)
            });
        }
        manifests.push(index_entry(manifest, self.ref_name.as_deref()));
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

impl ImageDestination for OciLayoutDestination {
    /// skopeo's `oci:` destination takes OCI manifests only (it converts others).
    fn accepts_manifest(&self, media_type: &str) -> bool {
        media_type == OCI_MANIFEST_TYPE || media_type == OCI_INDEX_TYPE
    }

    fn reuse_blob(&mut self, blob: &Descriptor, _elsewhere: &[String]) -> Result<bool> {
        Ok(self.has_blob(&blob.digest))
    }

    fn new_blob(&mut self, _size: Option<u64>) -> Result<Box<dyn BlobWriter + '_>> {
        let (temp, file) = self.temp(Path::new(BLOBS))?;
        Ok(Box::new(TempBlob {
            shown: self.path.join(&temp),
            layout: self,
            temp,
            file: Some(BufWriter::with_capacity(1 << 20, file)),
        }))
    }

    fn commit(&mut self, manifest: &ImageManifest<'_>) -> Result<()> {
        let descriptor = Descriptor {
            media_type: manifest.media_type.to_owned(),
            digest: manifest.digest.to_owned(),
            size: manifest.bytes.len() as u64,
        };
        if !self.has_blob(&descriptor.digest) {
            let shown = self.path.clone();
            let mut blob = self.new_blob(Some(descriptor.size))?;
            blob.write_all(manifest.bytes)
                .map_err(|e| into_core_error(e, |e| Error::io(shown, e)))?;
            blob.finish(&descriptor)?;
        }
        self.add_to_index(manifest)
    }
}

/// An `index.json` with no image yet.
pub(crate) fn empty_index() -> Value {
    json!({ "schemaVersion": 2, "manifests": [] })
}

/// The `index.json` entry of a manifest: its descriptor, platform and `ref.name` annotation.
pub(crate) fn index_entry(manifest: &ImageManifest<'_>, ref_name: Option<&str>) -> Value {
    let mut entry = json!({
        "mediaType": manifest.media_type,
        "digest": manifest.digest,
        "size": manifest.bytes.len(),
    });
    if let Some(platform) = manifest.platform.filter(|p| !p.os.is_empty()) {
        let mut value = json!({ "os": platform.os, "architecture": platform.architecture });
        if let Some(variant) = &platform.variant {
            value["variant"] = json!(variant);
        }
        entry["platform"] = value;
    }
    if let Some(name) = ref_name {
        entry["annotations"] = json!({ REF_NAME: name });
    }
    entry
}

/// The path of a blob in a layout.
pub(crate) fn blob_name(blob: &Descriptor) -> String {
    format!("{BLOBS}/{}", blob.digest.trim_start_matches("sha256:"))
}

/// A blob being written to a temp file of the layout, renamed to its digest when finished and
/// removed when dropped unfinished.
struct TempBlob<'a> {
    layout: &'a OciLayoutDestination,
    temp: PathBuf,
    shown: PathBuf,
    file: Option<BufWriter<File>>,
}

impl Write for TempBlob<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let file = self.file.as_mut().ok_or(io::ErrorKind::BrokenPipe)?;
        file.write(buf)
            .map_err(|e| io::Error::other(Error::io(&self.shown, e)))
    }

    fn flush(&mut self) -> io::Result<()> {
        let file = self.file.as_mut().ok_or(io::ErrorKind::BrokenPipe)?;
        file.flush()
            .map_err(|e| io::Error::other(Error::io(&self.shown, e)))
    }
}

impl BlobWriter for TempBlob<'_> {
    fn finish(mut self: Box<Self>, descriptor: &Descriptor) -> Result<bool> {
        let Some(buffered) = self.file.take() else {
            return Err(Error::io(&self.shown, io::ErrorKind::BrokenPipe.into()));
        };
        let new = buffered
            .into_inner()
            .map_err(|e| e.into_error())
            .at(&self.shown)
            .and_then(|file| {
                self.layout
                    .commit_blob(&self.temp, file, &descriptor.digest)
            });
        if new.is_err() {
            let _ = self.layout.dir.remove_file(&self.temp);
        }
        new
    }
}

impl Drop for TempBlob<'_> {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = self.layout.dir.remove_file(&self.temp);
        }
    }
}
