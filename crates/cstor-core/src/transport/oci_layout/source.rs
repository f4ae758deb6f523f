//! Reading an OCI image layout (`oci:DIR[:REF]`) as an image source: `index.json` picks the
//! manifest by its `org.opencontainers.image.ref.name` (nested indexes by platform), and every
//! blob is opened beneath the layout's root by its checked digest.

use std::io::Read;
use std::path::{Path, PathBuf};

use cap_std::ambient_authority;
use cap_std::fs::Dir;
use serde_json::Value;

use crate::digest::{self, is_sha256};
use crate::error::{Error, IoContext, Result};
use crate::store::images::Platform;
use crate::transport::{descriptor_digest, host_platform, parse_json, read_limited, ImageSource};

/// An OCI image layout directory (`oci:DIR[:REF]`), read beneath its root.
pub struct OciLayout {
    dir: Dir,
    path: PathBuf,
    manifest_digest: String,
}

impl OciLayout {
    /// Opens the layout and picks the manifest named `reference` (its
    /// `org.opencontainers.image.ref.name`), or the only one; an index is resolved for
    /// `platform` (default: this machine's linux platform).
    pub fn open(path: &Path, reference: Option<&str>, platform: Option<&Platform>) -> Result<Self> {
        let dir = Dir::open_ambient_dir(path, ambient_authority()).at(path)?;
        let index_bytes = read_limited(
            dir.open("index.json").at(path.join("index.json"))?,
            "index.json",
        )?;
        let index = parse_json(&index_bytes, "index.json")?;
        let manifests = index
            .get("manifests")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let candidates: Vec<&Value> = manifests
            .iter()
            .filter(|m| match reference {
                Some(r) => {
                    m.pointer("/annotations/org.opencontainers.image.ref.name")
                        .and_then(Value::as_str)
                        == Some(r)
                }
                None => true,
            })
            .collect();
        let chosen = match candidates.as_slice() {
            [one] => (*one).clone(),
            [] => {
                return Err(Error::NoImage {
                    reference: format!("oci:{}:{}", path.display(), reference.unwrap_or("")),
                })
            }
            _ => {
                return Err(Error::InvalidArgument(format!(
                    "{} holds several images: name one (oci:DIR:NAME)",
                    path.display()
                )))
            }
        };
        let mut layout = OciLayout {
            dir,
            path: path.to_owned(),
            manifest_digest: descriptor_digest(Some(&chosen), "index entry")?,
        };
        // A nested index (a multi-platform image): pick the instance.
        let bytes = layout.manifest()?;
        let parsed = parse_json(&bytes, "manifest")?;
        if let Some(instances) = parsed.get("manifests").and_then(Value::as_array) {
            let wanted = platform.cloned().unwrap_or_else(host_platform);
            let instance = instances
                .iter()
                .find(|m| {
                    let p = m.get("platform");
                    let field = |k: &str| p.and_then(|p| p.get(k)).and_then(Value::as_str);
                    field("os") == Some(wanted.os.as_str())
                        && field("architecture") == Some(wanted.architecture.as_str())
                        && (wanted.variant.is_none()
                            || field("variant") == wanted.variant.as_deref())
                })
                .ok_or_else(|| Error::NoImage {
                    reference: format!(
                        "{} for {}/{}",
                        path.display(),
                        wanted.os,
                        wanted.architecture
                    ),
                })?;
            layout.manifest_digest = descriptor_digest(Some(instance), "index entry")?;
        }
        Ok(layout)
    }

    fn blob_path(digest: &str) -> PathBuf {
        Path::new("blobs/sha256").join(digest.trim_start_matches("sha256:"))
    }
}

impl ImageSource for OciLayout {
    fn manifest(&mut self) -> Result<Vec<u8>> {
        let digest = self.manifest_digest.clone();
        let bytes = read_limited(self.blob(&digest)?, "manifest")?;
        digest::check(&digest, &digest::sha256(&bytes), "manifest")?;
        Ok(bytes)
    }

    fn blob(&mut self, digest: &str) -> Result<Box<dyn Read + '_>> {
        if !is_sha256(digest) {
            return Err(Error::InvalidArgument(format!(
                "{digest:?} is not a sha256 digest"
            )));
        }
        let path = Self::blob_path(digest);
        let file = self.dir.open(&path).at(self.path.join(&path))?;
        Ok(Box::new(file))
    }
}
