//! Writing a docker-archive as `podman save` (containers/image's docker-archive destination)
//! writes it: the config as `<hex>.json`, each layer uncompressed as `<diff digest hex>.tar`,
//! and `manifest.json` — `[{"Config":…,"RepoTags":[…],"Layers":[…]}]` — naming them, so
//! `podman load` and `docker load` make the image with the same ID. Members are read-only
//! (0444), owned by root, dated 1970, as containers/image writes them. The legacy
//! per-layer directories and `repositories` file, which only Docker before 1.10 reads, are not
//! written.

use std::path::Path;

use serde_json::Value;

use crate::content::compression::Compression;
use crate::error::{Error, Result};
use crate::transport::archive_file::{ArchiveFile, MemberStyle};
use crate::transport::registry::Reference;
use crate::transport::{BlobWriter, Descriptor, ImageDestination, ImageManifest, OCI_CONFIG_TYPE};

/// A docker-archive being written.
pub struct DockerArchiveDestination {
    archive: ArchiveFile,
    /// The `RepoTags` entry, normalized as containers/image does (`app:1` is
    /// `docker.io/library/app:1`).
    tag: Option<String>,
}

impl DockerArchiveDestination {
    /// Starts the archive `path`, replaced when it exists, tagging the image `name` in it.
    pub fn create(path: &Path, name: Option<&str>) -> Result<DockerArchiveDestination> {
        let tag = name.map(repo_tag).transpose()?;
        let style = MemberStyle {
            file_mode: 0o444,
            mtime: 0,
        };
        Ok(DockerArchiveDestination {
            archive: ArchiveFile::create(path, style)?,
            tag,
        })
    }
}

/// The `RepoTags` form of a name: full repository and a tag (`latest` when none); an archive
/// cannot name an image by digest.
fn repo_tag(name: &str) -> Result<String> {
    let reference = Reference::parse(name)?;
    if reference.digest.is_some() {
        return Err(Error::InvalidArgument(format!(
            "{name:?}: docker-archive names images by tag, not by digest"
        )));
    }
    Ok(format!(
        "{}/{}:{}",
        reference.domain,
        reference.repository,
        reference.tag.as_deref().unwrap_or("latest")
    ))
}

/// The member name of a blob: `<hex>.json` for the config, `<hex>.tar` for a layer.
fn member_name(blob: &Descriptor) -> String {
    let hex = blob.digest.trim_start_matches("sha256:");
    match blob.media_type.as_str() {
        OCI_CONFIG_TYPE => format!("{hex}.json"),
        _ => format!("{hex}.tar"),
    }
}

impl ImageDestination for DockerArchiveDestination {
    /// `docker load` takes uncompressed layer tars only.
    fn layer_compression(&self, _asked: Compression) -> Compression {
        Compression::None
    }

    fn reuse_blob(&mut self, blob: &Descriptor, _elsewhere: &[String]) -> Result<bool> {
        Ok(self.archive.has(&member_name(blob)))
    }

    fn new_blob(&mut self, _size: Option<u64>) -> Result<Box<dyn BlobWriter + '_>> {
        Ok(Box::new(self.archive.new_blob(member_name)?))
    }

    /// `manifest.json` last, its fields in Go's struct order (Config, RepoTags, Layers) as
    /// containers/image marshals it.
    fn commit(&mut self, manifest: &ImageManifest<'_>) -> Result<()> {
        let strings = |items: Vec<String>| Value::from(items).to_string();
        let layers = manifest.layers.iter().map(member_name).collect();
        let bytes = format!(
            "[{{\"Config\":{},\"RepoTags\":{},\"Layers\":{}}}]",
            Value::from(member_name(manifest.config)),
            strings(self.tag.iter().cloned().collect()),
            strings(layers)
        );
        let archive = &mut self.archive;
        archive.add("manifest.json", bytes.as_bytes())?;
        archive.commit()
    }
}
