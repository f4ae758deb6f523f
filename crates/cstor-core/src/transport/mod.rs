//! Transports: where images come from and go to, each named as skopeo names it (`oci:DIR:REF`,
//! `docker-archive:FILE`, `docker://HOST/REPO:TAG`), with containers/image's two traits: an
//! [`ImageSource`] is read by [`pull`], one routine into the store for every source; an
//! [`ImageDestination`] is written by [`copy`], one routine out of the store (the
//! [`store_source`]) for every destination. A new transport touches no other.
//!
//! The pieces every transport shares live here: the traits, the size bound on JSON documents,
//! the descriptor and config fields they read, and the platform podman picks from a list.

mod archive_file;
pub mod blob_info_cache;
pub mod composefs_repo;
pub mod copy;
pub mod docker_archive;
pub mod oci_archive;
pub mod oci_layout;
pub mod pull;
pub mod registry;
pub mod signature;
pub mod skopeo_proxy;
pub mod store_source;
pub mod system_context;
pub mod tarball;

use std::io::{Read, Write};
use std::path::Path;

use serde_json::{json, Value};

use crate::content::compression::Compression;
use crate::digest::is_sha256;
use crate::error::{Error, Result};
use crate::store::images::Platform;
use crate::transport::system_context::SystemContext;

/// The largest manifest, config or index a source may hand over.
const MAX_JSON_BYTES: u64 = 16 << 20;

/// Where an image comes from.
pub trait ImageSource {
    /// The manifest (not a list: sources pick the platform) as stored at the source.
    fn manifest(&mut self) -> Result<Vec<u8>>;
    /// A blob (config or layer) by digest, with its size when known.
    fn blob(&mut self, digest: &str) -> Result<Box<dyn Read + '_>>;
    /// The sigstore signatures stored with the image (untrusted until a policy checks them);
    /// only a registry keeps them.
    fn sigstore_signatures(&mut self) -> Result<Vec<signature::sigstore::Signature>> {
        Ok(Vec::new())
    }
}

/// A content descriptor of the OCI image spec: what a manifest says of a blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
}

impl Descriptor {
    pub fn to_json(&self) -> Value {
        json!({ "mediaType": self.media_type, "digest": self.digest, "size": self.size })
    }
}

/// Where an image goes, as containers/image's `ImageDestination`: blobs first, each stored under
/// the digest the copy computed while streaming it, then [`ImageDestination::commit`] with the
/// manifest that names them — the one step that makes the image visible there, so a copy that
/// fails midway leaves what was there before.
pub trait ImageDestination {
    /// The compression layer blobs get when `asked` is asked for: `podman save`'s archives hold
    /// uncompressed layers whatever is asked.
    fn layer_compression(&self, asked: Compression) -> Compression {
        asked
    }

    /// Whether a manifest of this media type can be stored as it is (an OCI layout holds OCI
    /// manifests only); otherwise the copy writes a new OCI manifest.
    fn accepts_manifest(&self, _media_type: &str) -> bool {
        true
    }

    /// Where blobs stored here can be found again (`domain/repository` of a registry), for the
    /// [`blob_info_cache`]; `None` for a file or directory.
    fn location(&self) -> Option<String> {
        None
    }

    /// Makes `blob` available without writing it — it is there already, or a registry mounts it
    /// from one of the locations `elsewhere` known to have it; `false` when it must be written.
    fn reuse_blob(&mut self, blob: &Descriptor, elsewhere: &[String]) -> Result<bool>;

    /// Starts a new blob, `size` bytes when known in advance (`None` for a layer still to be
    /// compressed). Its digest is known only once every byte went through the writer.
    fn new_blob(&mut self, size: Option<u64>) -> Result<Box<dyn BlobWriter + '_>>;

    /// Stores the manifest and whatever names the image: the last step of a copy.
    fn commit(&mut self, manifest: &ImageManifest<'_>) -> Result<()>;
}

/// A blob being written to a destination. Dropped without [`BlobWriter::finish`] (a failed
/// copy), it leaves nothing under any blob's name.
pub trait BlobWriter: Write {
    /// Keeps the bytes written as the blob `descriptor` names; `false` when the destination had
    /// that blob already and dropped the copy.
    fn finish(self: Box<Self>, descriptor: &Descriptor) -> Result<bool>;
}

/// What [`ImageDestination::commit`] stores: the manifest and what it names.
#[derive(Debug)]
pub struct ImageManifest<'a> {
    pub bytes: &'a [u8],
    pub media_type: &'a str,
    pub digest: &'a str,
    pub config: &'a Descriptor,
    /// The layer blobs, base first.
    pub layers: &'a [Descriptor],
    pub platform: Option<&'a Platform>,
}

/// The media type of a manifest: its `mediaType`, or for an OCI manifest that omits it (as
/// podman's own do), what its config's media type implies.
pub(crate) fn manifest_media_type(manifest: &Value) -> &str {
    if let Some(media_type) = manifest.get("mediaType").and_then(Value::as_str) {
        return media_type;
    }
    match manifest
        .pointer("/config/mediaType")
        .and_then(Value::as_str)
    {
        Some(DOCKER_CONFIG_TYPE) => DOCKER_MANIFEST_TYPE,
        _ if manifest.get("manifests").is_some() => OCI_INDEX_TYPE,
        _ => OCI_MANIFEST_TYPE,
    }
}

pub(crate) const OCI_MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub(crate) const OCI_INDEX_TYPE: &str = "application/vnd.oci.image.index.v1+json";
pub(crate) const OCI_CONFIG_TYPE: &str = "application/vnd.oci.image.config.v1+json";
pub(crate) const DOCKER_MANIFEST_TYPE: &str =
    "application/vnd.docker.distribution.manifest.v2+json";
pub(crate) const DOCKER_CONFIG_TYPE: &str = "application/vnd.docker.container.image.v1+json";

/// What a pull names: a registry image (`docker://REF`, or a name without a transport, which
/// is resolved as a short name as podman resolves it) or a file or directory of another
/// transport.
pub(crate) enum SourceSpec<'a> {
    /// What follows `docker://`: fully qualified, Docker Hub when it names no registry.
    Docker(&'a str),
    /// A name typed without a transport (`myapp:1`, `quay.io/x`).
    Name(&'a str),
    /// `oci:DIR[:REF]` or `docker-archive:FILE[:REF]`.
    Local {
        transport: &'a str,
        path: &'a Path,
        name: Option<&'a str>,
    },
}

/// The transports of containers/image: a prefix naming one of them is a transport, anything
/// else is an image name (`alltransports.ParseImageName`).
const KNOWN_TRANSPORTS: [&str; 10] = [
    "docker",
    "oci",
    "docker-archive",
    "oci-archive",
    "dir",
    "containers-storage",
    "docker-daemon",
    "sif",
    "tarball",
    "ostree",
];

impl<'a> SourceSpec<'a> {
    pub fn parse(spec: &'a str) -> Result<SourceSpec<'a>> {
        let (transport, rest) = match spec.split_once(':') {
            Some((transport, rest)) if KNOWN_TRANSPORTS.contains(&transport) => (transport, rest),
            _ => return Ok(SourceSpec::Name(spec)),
        };
        let (path, name) = path_and_name(rest);
        match transport {
            "docker" => rest
                .strip_prefix("//")
                .map(SourceSpec::Docker)
                .ok_or_else(|| Error::InvalidArgument(format!("{spec:?}: a registry image is docker://REFERENCE"))),
            "oci" | "docker-archive" if !path.is_empty() => Ok(SourceSpec::Local {
                transport,
                path: Path::new(path),
                name,
            }),
            _ => Err(Error::InvalidArgument(format!(
                "{spec:?}: name a source as oci:DIR[:REF], docker-archive:FILE[:REF], docker://REFERENCE or a registry image name"
            ))),
        }
    }
}

/// Opens a source of a transport other than a registry.
pub(crate) fn open_local_source(
    transport: &str,
    path: &Path,
    name: Option<&str>,
    platform: Option<&Platform>,
) -> Result<Box<dyn ImageSource>> {
    Ok(match transport {
        "oci" => Box::new(oci_layout::OciLayout::open(path, name, platform)?),
        _ => Box::new(docker_archive::DockerArchive::open(path, name)?),
    })
}

/// Opens a destination named as skopeo names it: `docker://REFERENCE`, `oci:DIR[:REF]`,
/// `docker-archive:FILE[:NAME]`, `oci-archive:FILE[:REF]`; a registry as `ctx` configures it.
pub fn open_destination(spec: &str, ctx: &SystemContext) -> Result<Box<dyn ImageDestination>> {
    let (transport, rest) = split_spec(spec);
    if transport == "docker" {
        return Ok(Box::new(registry::RegistryDestination::open(ctx, rest)?));
    }
    let (path, name) = path_and_name(rest);
    let path = Path::new(path);
    Ok(match transport {
        "oci" => Box::new(oci_layout::OciLayoutDestination::open(path, name)?),
        "docker-archive" => Box::new(docker_archive::DockerArchiveDestination::create(path, name)?),
        "oci-archive" => Box::new(oci_archive::OciArchiveDestination::create(path, name)?),
        _ => return Err(Error::InvalidArgument(format!(
            "{spec:?}: name a destination as docker://REFERENCE, oci:DIR[:REF], docker-archive:FILE[:NAME] or oci-archive:FILE[:REF]"
        ))),
    })
}

/// `reference` (as [`SourceSpec::parse`] and [`open_destination`] take one) with a relative path in it
/// made relative to `cwd`: the caller that named it runs in that directory, this process may not.
pub fn absolute_reference(reference: &str, cwd: &Path) -> String {
    let (transport, rest) = split_spec(reference);
    if !PATH_TRANSPORTS.contains(&transport) || rest.starts_with('/') {
        return reference.to_owned();
    }
    format!("{transport}:{}", cwd.join(rest).display())
}

/// The transports whose reference starts with a path (`oci:DIR`, `docker-archive:FILE`, …).
const PATH_TRANSPORTS: &[&str] = &["oci", "oci-archive", "docker-archive", "composefs"];

/// `transport:rest` → (`transport`, `rest`); `docker://REF` → (`docker`, `REF`).
fn split_spec(spec: &str) -> (&str, &str) {
    match spec.split_once(':') {
        Some(("docker", rest)) => match rest.strip_prefix("//") {
            Some(reference) => ("docker", reference),
            None => ("", spec),
        },
        Some((transport, rest)) if !rest.is_empty() => (transport, rest),
        _ => ("", spec),
    }
}

/// `PATH[:NAME]`, split at the first colon as skopeo splits it (a path cannot hold a colon).
pub(crate) fn path_and_name(rest: &str) -> (&str, Option<&str>) {
    match rest.split_once(':') {
        Some((path, name)) if !name.is_empty() => (path, Some(name)),
        _ => (rest.strip_suffix(':').unwrap_or(rest), None),
    }
}

/// The layer diff IDs an image config lists (`rootfs.diff_ids`), base first.
pub(crate) fn diff_ids(config: &Value) -> Vec<String> {
    config
        .pointer("/rootfs/diff_ids")
        .and_then(Value::as_array)
        .map(|ids| {
            ids.iter()
                .filter_map(|d| d.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) fn parse_json(bytes: &[u8], what: &str) -> Result<Value> {
    serde_json::from_slice(bytes)
        .map_err(|e| Error::InvalidArgument(format!("the {what} is not JSON: {e}")))
}

pub(crate) fn descriptor_digest(descriptor: Option<&Value>, what: &str) -> Result<String> {
    descriptor
        .and_then(|d| d.get("digest"))
        .and_then(Value::as_str)
        .filter(|d| is_sha256(d))
        .map(str::to_owned)
        .ok_or_else(|| {
            Error::InvalidArgument(format!("the manifest's {what} has no sha256 digest"))
        })
}

pub(crate) fn read_limited(reader: impl Read, what: &str) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    reader
        .take(MAX_JSON_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(what, e))?;
    if bytes.len() as u64 > MAX_JSON_BYTES {
        return Err(Error::InvalidArgument(format!(
            "the {what} is implausibly large"
        )));
    }
    Ok(bytes)
}

/// The platform podman pulls for by default on this machine.
pub fn host_platform() -> Platform {
    let architecture = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    };
    Platform {
        os: "linux".into(),
        architecture: architecture.into(),
        variant: None,
    }
}

#[cfg(test)]
mod tests {
    use super::absolute_reference;
    use std::path::Path;

    #[test]
    fn only_paths_are_made_absolute() {
        let cwd = Path::new("/home/u");
        assert_eq!(
            absolute_reference("oci:layout:app", cwd),
            "oci:/home/u/layout:app"
        );
        assert_eq!(
            absolute_reference("docker-archive:a.tar", cwd),
            "docker-archive:/home/u/a.tar"
        );
        assert_eq!(
            absolute_reference("oci-archive:/abs.tar:x", cwd),
            "oci-archive:/abs.tar:x"
        );
        assert_eq!(
            absolute_reference("docker://host/app:1", cwd),
            "docker://host/app:1"
        );
        assert_eq!(absolute_reference("myapp:1", cwd), "myapp:1");
    }
}
