//! A `docker-archive:` tar (what `docker save` and `podman save` write) as an image source.
//!
//! Such an archive has no manifest of its own: `manifest.json` names a config file and layer
//! tars. containers/image makes one up — a Docker schema 2 manifest whose layers are the
//! *uncompressed* layer tars, named by their diff IDs — and that generated manifest is what skopeo
//! stores, so cstor generates the same bytes (Go's field order, no spaces) to get the same
//! manifest digest. Layer tars compressed inside the archive are handed over decompressed, as
//! containers/image does.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::content::compression::Compression;
use crate::digest::sha256;
use crate::error::{Error, IoContext, Result};
use crate::transport::{
    diff_ids, read_limited, ImageSource, DOCKER_CONFIG_TYPE as CONFIG_TYPE,
    DOCKER_MANIFEST_TYPE as MANIFEST_TYPE,
};

const LAYER_TYPE: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Item {
    config: String,
    #[serde(default)]
    repo_tags: Vec<String>,
    #[serde(default)]
    layers: Vec<String>,
}

/// An opened docker-archive, with the member offsets of its tar.
pub struct DockerArchive {
    path: PathBuf,
    members: HashMap<String, (u64, u64)>,
    config: Vec<u8>,
    config_digest: String,
    /// Diff ID → member path, in the config's order.
    layers: Vec<(String, String)>,
    manifest: Vec<u8>,
}

impl DockerArchive {
    /// Opens `path` and picks the image tagged `reference`, or the only one.
    pub fn open(path: &Path, reference: Option<&str>) -> Result<DockerArchive> {
        let members = index_members(path)?;
        let mut archive = DockerArchive {
            path: path.to_owned(),
            members,
            config: Vec::new(),
            config_digest: String::new(),
            layers: Vec::new(),
            manifest: Vec::new(),
        };
        let items: Vec<Item> = serde_json::from_slice(&read_limited(
            archive.member("manifest.json")?,
            "manifest.json",
        )?)
        .map_err(|e| Error::InvalidArgument(format!("{}: manifest.json: {e}", path.display())))?;
        let item = match reference {
            Some(r) => items
                .into_iter()
                .find(|i| i.repo_tags.iter().any(|t| t == r)),
            None if items.len() == 1 => items.into_iter().next(),
            None => {
                return Err(Error::InvalidArgument(format!(
                    "{} holds several images: name one (docker-archive:FILE:NAME)",
                    path.display()
                )))
            }
        }
        .ok_or_else(|| Error::NoImage {
            reference: format!(
                "docker-archive:{}:{}",
                path.display(),
                reference.unwrap_or("")
            ),
        })?;
        archive.config = read_limited(archive.member(&item.config)?, "config")?;
        archive.config_digest = sha256(&archive.config);
        let config: Value = serde_json::from_slice(&archive.config)
            .map_err(|e| Error::InvalidArgument(format!("the config is not JSON: {e}")))?;
        let diff_ids = diff_ids(&config);
        if diff_ids.len() != item.layers.len() {
            return Err(Error::InvalidArgument(format!(
                "inconsistent layer count: {} in manifest.json, {} in the config",
                item.layers.len(),
                diff_ids.len()
            )));
        }
        let mut descriptors = Vec::new();
        for (diff_id, layer) in diff_ids.iter().zip(&item.layers) {
            let size = archive.uncompressed_size(layer)?;
            descriptors.push(format!(
                "{{\"mediaType\":\"{LAYER_TYPE}\",\"size\":{size},\"digest\":{}}}",
                json_string(diff_id)
            ));
            archive.layers.push((diff_id.clone(), layer.clone()));
        }
        archive.manifest = format!(
            "{{\"schemaVersion\":2,\"mediaType\":\"{MANIFEST_TYPE}\",\"config\":{{\"mediaType\":\"{CONFIG_TYPE}\",\"size\":{},\"digest\":\"{}\"}},\"layers\":[{}]}}",
            archive.config.len(),
            archive.config_digest,
            descriptors.join(",")
        )
        .into_bytes();
        Ok(archive)
    }

    /// A member of the archive, read in place.
    fn member(&self, name: &str) -> Result<Box<dyn Read>> {
        let (offset, size) = *self.members.get(&clean(name)).ok_or_else(|| {
            Error::InvalidArgument(format!("{} has no member {name:?}", self.path.display()))
        })?;
        let mut file = File::open(&self.path).at(&self.path)?;
        file.seek(SeekFrom::Start(offset)).at(&self.path)?;
        Ok(Box::new(file.take(size)))
    }

    /// A layer member as an uncompressed tar.
    fn layer(&self, name: &str) -> Result<Box<dyn Read>> {
        let mut head = [0u8; 8];
        let n = read_head(self.member(name)?, &mut head)?;
        let member = self.member(name)?;
        Compression::detect(&head[..n]).decoder(member, "layers in a docker-archive")
    }

    fn uncompressed_size(&self, name: &str) -> Result<u64> {
        io::copy(&mut self.layer(name)?, &mut io::sink())
            .map_err(|e| Error::InvalidArgument(format!("layer {name}: {e}")))
    }
}

fn read_head(mut reader: impl Read, buf: &mut [u8]) -> Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader
            .read(&mut buf[filled..])
            .map_err(|e| Error::io("docker-archive", e))?
        {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// Where each regular member's data lies in the archive file.
fn index_members(path: &Path) -> Result<HashMap<String, (u64, u64)>> {
    let file = File::open(path).at(path)?;
    let mut archive = tar::Archive::new(file);
    let mut members = HashMap::new();
    let bad = |e: io::Error| {
        Error::InvalidArgument(format!("{} is not a readable tar: {e}", path.display()))
    };
    for entry in archive.entries().map_err(bad)? {
        let entry = entry.map_err(bad)?;
        if entry.header().entry_type().is_file() {
            let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            members.insert(clean(&name), (entry.raw_file_position(), entry.size()));
        }
    }
    Ok(members)
}

/// A member name as Go's `path.Clean` compares it.
fn clean(name: &str) -> String {
    Path::new(name)
        .components()
        .filter_map(|c| match c {
            Component::Normal(part) => Some(part.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn json_string(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_default()
}

impl ImageSource for DockerArchive {
    fn manifest(&mut self) -> Result<Vec<u8>> {
        Ok(self.manifest.clone())
    }

    fn blob(&mut self, digest: &str) -> Result<Box<dyn Read + '_>> {
        if digest == self.config_digest {
            return Ok(Box::new(io::Cursor::new(self.config.clone())));
        }
        let member = self
            .layers
            .iter()
            .find(|(diff_id, _)| diff_id == digest)
            .map(|(_, member)| member.clone())
            .ok_or_else(|| Error::InvalidArgument(format!("the archive has no blob {digest}")))?;
        self.layer(&member)
    }
}
