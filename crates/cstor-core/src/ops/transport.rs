//! Moving images between the store and other places: copies out (registries, archives, OCI
//! layouts) and pulls in.

use std::sync::Arc;

use serde::Deserialize;
use ts_rs::TS;

use crate::content::compression::Compression;
use crate::error::Result;
use crate::ops::{Access, Call, Operation};
use crate::store::Store;
use crate::transport::copy::{Copied, CopyOptions};
use crate::transport::oci_layout::OciLayoutDestination;
use crate::transport::open_destination;
use crate::transport::pull::{PullOptions, Pulled};
use crate::transport::system_context::SystemContext;
use crate::transport::tarball::Tarball;

/// Copies an image to `destination`, named as skopeo names it: `docker://HOST/REPO[:TAG]`
/// (push), `docker-archive:FILE[:NAME]`, `oci-archive:FILE[:NAME]`, `oci:DIR[:NAME]`. Layers
/// compressed as `compression` says (`gzip`, the default, `zstd` or `none`); `tlsVerify: false`
/// skips TLS verification (unset, registries.conf decides); `platform` (`os/arch[/variant]`) is checked.
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
    pub tls_verify: Option<bool>,
    #[serde(default)]
    pub platform: Option<String>,
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
        let ctx = SystemContext {
            tls_verify: self.tls_verify,
            ..SystemContext::default()
        };
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

/// Pulls an image into the store from `oci:DIR[:REF]`, `docker-archive:FILE[:REF]` or
/// `docker://REFERENCE`, writing what skopeo would (same IDs, records and big data), named
/// `name` when given; `tlsVerify: false` speaks plain HTTP to a registry.
#[derive(Debug, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(optional_fields)]
pub struct Pull {
    pub source: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub tls_verify: Option<bool>,
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
            context: SystemContext {
                tls_verify: self.tls_verify,
                ..SystemContext::default()
            },
        };
        store.pull_image(&source, &options, &mut call.progress())
    }
}

/// `podman import`: a root filesystem tar file (plain, gzip or zstd) as a one-layer image.
#[derive(Debug, Deserialize, TS)]
#[ts(optional_fields)]
pub struct Import {
    pub path: String,
    #[serde(default)]
    pub name: Option<String>,
}

impl Operation for Import {
    const METHOD: &'static str = "Import";
    const ACCESS: Access = Access::Write;
    type Output = Pulled;

    fn run(self, store: &Arc<Store>, call: &mut Call) -> Result<Pulled> {
        let mut source = Tarball::open(&call.path(&self.path))?;
        store.pull(&mut source, self.name.as_deref(), &mut call.progress())
    }
}
