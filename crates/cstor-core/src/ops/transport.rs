//! Moving images between the store and other places: copies out (registries, archives, OCI
//! layouts) and pulls in.

use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;
use ts_rs::TS;

use crate::content::compression::Compression;
use crate::error::Result;
use crate::ops::registries::RegistryOptions;
use crate::ops::{composefs, Access, Call, Operation};
use crate::store::Store;
use crate::transport::copy::{Copied, CopyOptions};
use crate::transport::oci_layout::OciLayoutDestination;
use crate::transport::pull::{PullOptions, Pulled};
use crate::transport::{open_destination, path_and_name};

/// Copies an image to `destination`, named as skopeo names it: `docker://HOST/REPO[:TAG]`
/// (push, to the registry's own location as registries.conf gives it, with the user's
/// credentials and certificates), `docker-archive:FILE[:NAME]`, `oci-archive:FILE[:NAME]`,
/// `oci:DIR[:NAME]`, `composefs:REPO[:NAME]` (a composefs-rs 0.9.4 repository, made when
/// missing: `cfsctl oci` finds the image by NAME). Layers compressed as `compression` says (`gzip`, the default, `zstd` or
/// `none`); `platform` (`os/arch[/variant]`) is checked.
#[derive(Debug, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(optional_fields)]
pub struct CopyTo {
    pub image: String,
    pub destination: String,
    #[serde(default)]
    #[ts(optional, type = "'gzip' | 'zstd' | 'none'")]
    pub compression: Option<String>,
    #[serde(default)]
    pub platform: Option<String>,
    /// A `composefs:` destination made anew: the fs-verity hash naming its objects, `sha512`
    /// (default, as `cfsctl init`) or `sha256` (an existing repository's `meta.json` decides).
    #[serde(default)]
    #[ts(optional, type = "'sha256' | 'sha512'")]
    pub algorithm: Option<String>,
    /// A `composefs:` destination: objects are hard links to the store's layer files instead of
    /// reflinks or copies (`EXDEV` before anything is written when the repository is on another
    /// mount than the store's `overlay/`, which podman often bind-mounts on itself, rootless
    /// podman always). In a secure repository that would enable fs-verity on the store's own files for
    /// good; cstor writes insecure repositories only.
    #[serde(default)]
    pub hardlink: Option<bool>,
    #[serde(flatten)]
    pub registry: RegistryOptions,
}

impl Operation for CopyTo {
    const METHOD: &'static str = "CopyTo";
    type Output = Copied;

    fn run(self, store: &Arc<Store>, call: &mut Call) -> Result<Copied> {
        let options = CopyOptions {
            compression: Compression::for_writing(self.compression.as_deref().unwrap_or("gzip"))?,
            platform: self.platform,
        };
        let image = store.image(&self.image)?;
        let destination = call.image_reference(&self.destination);
        if let Some(rest) = destination.strip_prefix("composefs:") {
            let (repo, name) = path_and_name(rest);
            let algorithm = composefs::algorithm(self.algorithm.as_deref())?;
            let hardlink = self.hardlink.unwrap_or(false);
            return store.copy_to_composefs(&image, Path::new(repo), name, algorithm, hardlink);
        }
        let ctx = self.registry.context(call, None);
        let open = || open_destination(&destination, &ctx);
        store.copy_to(&image, open, &options, &mut call.progress())
    }
}

/// Copies an image into the OCI image layout at `dir` (created when missing, appended to
/// otherwise), named `refName` in its index; layers uncompressed unless `compression` says
/// `gzip` or `zstd`.
#[derive(Debug, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(optional_fields)]
pub struct CopyToOci {
    pub image: String,
    pub dir: String,
    #[serde(default)]
    pub ref_name: Option<String>,
    #[serde(default)]
    #[ts(optional, type = "'gzip' | 'zstd' | 'none'")]
    pub compression: Option<String>,
    #[serde(default)]
    pub platform: Option<String>,
}

impl Operation for CopyToOci {
    const METHOD: &'static str = "CopyToOci";
    type Output = Copied;

    fn run(self, store: &Arc<Store>, call: &mut Call) -> Result<Copied> {
        let options = CopyOptions {
            compression: Compression::for_writing(self.compression.as_deref().unwrap_or("none"))?,
            platform: self.platform,
        };
        let image = store.image(&self.image)?;
        let dir = call.path(&self.dir);
        let ref_name = self.ref_name;
        let open = || {
            let layout = OciLayoutDestination::open(&dir, ref_name.as_deref())?;
            Ok(Box::new(layout) as Box<_>)
        };
        store.copy_to(&image, open, &options, &mut call.progress())
    }
}

/// Pulls an image into the store, as podman pulls it: from `oci:DIR[:REF]`,
/// `docker-archive:FILE[:REF]`, `docker://REFERENCE`, or a name without a transport (a registry
/// image; a short name resolved through aliases and unqualified-search registries). A registry
/// image comes from where registries.conf says (mirrors first). The signature policy judges
/// every image before anything but its manifest is fetched. The store gets what skopeo would
/// write (same IDs, records and big data), named `name` when given, else as pulled.
#[derive(Debug, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(optional_fields)]
pub struct Pull {
    pub source: String,
    #[serde(default)]
    pub name: Option<String>,
    /// The policy.json to judge the image by instead of the user's or the system's
    /// (`--signature-policy`).
    #[serde(default)]
    pub signature_policy: Option<String>,
    #[serde(flatten)]
    pub registry: RegistryOptions,
}

impl Operation for Pull {
    const METHOD: &'static str = "Pull";
    const ACCESS: Access = Access::Write;
    type Output = Pulled;

    fn run(self, store: &Arc<Store>, call: &mut Call) -> Result<Pulled> {
        let source = call.image_reference(&self.source);
        let options = PullOptions {
            name: self.name,
            platform: None,
            context: self.registry.context(call, self.signature_policy),
        };
        store.pull_image(&source, &options, &mut call.progress())
    }
}

/// `podman import`: a root filesystem tar file (plain, gzip or zstd) as a one-layer image,
/// judged first by the signature policy's `tarball` transport, as podman judges it.
#[derive(Debug, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(optional_fields)]
pub struct Import {
    pub path: String,
    #[serde(default)]
    pub name: Option<String>,
    /// The policy.json to use instead of the user's or the system's.
    #[serde(default)]
    pub signature_policy: Option<String>,
}

impl Operation for Import {
    const METHOD: &'static str = "Import";
    const ACCESS: Access = Access::Write;
    type Output = Pulled;

    fn run(self, store: &Arc<Store>, call: &mut Call) -> Result<Pulled> {
        let options = PullOptions {
            name: self.name,
            platform: None,
            context: RegistryOptions::default().context(call, self.signature_policy),
        };
        store.import_tarball(&call.path(&self.path), &options, &mut call.progress())
    }
}
