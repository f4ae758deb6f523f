//! Transports: where images come from and go to, each named as skopeo names it (`oci:DIR:REF`,
//! `docker-archive:FILE`, `docker://HOST/REPO:TAG`) and read through one [`ImageSource`] trait,
//! so [`pull`] is one routine over every source and a new transport touches no other.
//!
//! The pieces every source shares live here: the trait, the size bound on JSON documents, the
//! descriptor and config fields they read, and the platform podman picks from a list.

pub mod docker_archive;
pub mod oci_layout;
pub mod pull;
pub mod registry;
pub mod skopeo_proxy;
pub mod tarball;

use std::io::Read;
use std::path::Path;

use serde_json::Value;

use crate::digest::is_sha256;
use crate::error::{Error, Result};
use crate::store::images::Platform;

/// The largest manifest, config or index a source may hand over.
const MAX_JSON_BYTES: u64 = 16 << 20;

/// Where an image comes from.
pub trait ImageSource {
    /// The manifest (not a list: sources pick the platform) as stored at the source.
    fn manifest(&mut self) -> Result<Vec<u8>>;
    /// A blob (config or layer) by digest, with its size when known.
    fn blob(&mut self, digest: &str) -> Result<Box<dyn Read + '_>>;
}

/// Opens a source named as skopeo names it: `oci:DIR[:REF]`, `docker-archive:FILE[:REF]`,
/// `docker://REFERENCE` (over plain HTTP when `tls_verify` is off).
pub fn open_source(
    spec: &str,
    platform: Option<&Platform>,
    tls_verify: bool,
) -> Result<Box<dyn ImageSource>> {
    if let Some(reference) = spec.strip_prefix("docker://") {
        return Ok(Box::new(registry::Registry::open(reference, !tls_verify)?));
    }
    match spec.split_once(':') {
        Some(("docker-archive", rest)) => {
            let (file, reference) = match rest.split_once(':') {
                Some((file, reference)) if !reference.is_empty() => (file, Some(reference)),
                _ => (rest, None),
            };
            Ok(Box::new(docker_archive::DockerArchive::open(
                Path::new(file),
                reference,
            )?))
        }
        Some(("oci", rest)) => {
            let (dir, reference) = match rest.split_once(':') {
                Some((dir, reference)) if !reference.is_empty() => (dir, Some(reference)),
                _ => (rest, None),
            };
            Ok(Box::new(oci_layout::OciLayout::open(
                Path::new(dir),
                reference,
                platform,
            )?))
        }
        _ => Err(Error::InvalidArgument(format!(
            "{spec:?}: name a source as oci:DIR[:REF], docker-archive:FILE[:REF] or docker://REFERENCE"
        ))),
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
