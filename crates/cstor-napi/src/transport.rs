//! Moving images between the store and other places: OCI layouts, and pulls from any source.

use cstor_core::content::compression::Compression;
use cstor_core::transport::copy::{Copied, CopyOptions};
use cstor_core::transport::oci_layout::OciLayoutDestination;
use cstor_core::transport::open_destination;
use cstor_core::transport::pull::{PullOptions, Pulled};
use cstor_core::transport::system_context::SystemContext;
use cstor_core::transport::tarball::Tarball;
use napi::bindgen_prelude::*;
use napi::threadsafe_function::ThreadsafeFunction;
use napi_derive::napi;

use crate::blocking;
use crate::progress::{reporter, ProgressCallback, ProgressInfo};
use crate::store::NativeStore;

#[napi]
impl NativeStore {
    /// Pulls `source` (`oci:DIR[:REF]`, `docker-archive:FILE[:REF]`, `docker://REFERENCE`, or a
    /// registry image name) into the store; `tls_verify: false` skips TLS verification.
    #[napi]
    pub async fn pull(
        &self,
        source: String,
        name: Option<String>,
        tls_verify: Option<bool>,
        on_progress: Option<ThreadsafeFunction<ProgressInfo, (), ProgressInfo, Status, false>>,
    ) -> Result<PullInfo> {
        let store = self.store()?;
        blocking(move || {
            let options = PullOptions {
                name,
                platform: None,
                context: SystemContext {
                    tls_verify,
                    ..SystemContext::default()
                },
            };
            store.pull_image(&source, &options, &mut reporter(on_progress))
        })
        .await
        .map(PullInfo::from)
    }

    /// `podman import`: a root filesystem tar file as a one-layer image.
    #[napi]
    pub async fn import_tarball(&self, path: String, name: Option<String>) -> Result<PullInfo> {
        let store = self.store()?;
        blocking(move || {
            let mut source = Tarball::open(path.as_ref())?;
            store.pull(&mut source, name.as_deref(), &mut |_| {})
        })
        .await
        .map(PullInfo::from)
    }

    /// Copies an image into an OCI image layout directory (created when missing).
    #[napi]
    pub async fn copy_to_oci(
        &self,
        reference: String,
        dir: String,
        options: Option<OciOptionsInfo>,
        on_progress: Option<ProgressCallback>,
    ) -> Result<CopyInfo> {
        let store = self.store()?;
        let options = options.unwrap_or_default();
        let ref_name = options.ref_name;
        let options = copy_options(options.compression.as_deref(), "none", options.platform);
        blocking(move || {
            let image = store.image(&reference)?;
            let open = || {
                let layout = OciLayoutDestination::open(dir.as_ref(), ref_name.as_deref())?;
                Ok(Box::new(layout) as Box<_>)
            };
            store.copy_to(&image, open, &options?, &mut reporter(on_progress))
        })
        .await
        .map(CopyInfo::from)
    }

    /// Copies an image to `destination` (`docker://REFERENCE`, `oci:DIR[:REF]`,
    /// `docker-archive:FILE[:NAME]`, `oci-archive:FILE[:REF]`).
    #[napi]
    pub async fn copy_to(
        &self,
        reference: String,
        destination: String,
        options: Option<CopyOptionsInfo>,
        on_progress: Option<ProgressCallback>,
    ) -> Result<CopyInfo> {
        let store = self.store()?;
        let options = options.unwrap_or_default();
        let context = SystemContext {
            tls_verify: options.tls_verify,
            ..SystemContext::default()
        };
        let options = copy_options(options.compression.as_deref(), "gzip", options.platform);
        blocking(move || {
            let image = store.image(&reference)?;
            let open = || open_destination(&destination, &context);
            store.copy_to(&image, open, &options?, &mut reporter(on_progress))
        })
        .await
        .map(CopyInfo::from)
    }
}

fn copy_options(
    compression: Option<&str>,
    default: &str,
    platform: Option<String>,
) -> cstor_core::Result<CopyOptions> {
    Ok(CopyOptions {
        compression: Compression::for_writing(compression.unwrap_or(default))?,
        platform,
    })
}

#[napi(object)]
#[derive(Default)]
pub struct OciOptionsInfo {
    /// `"none"` (default), `"gzip"` or `"zstd"`.
    pub compression: Option<String>,
    pub ref_name: Option<String>,
    /// `os/architecture[/variant]` the image must be.
    pub platform: Option<String>,
}

#[napi(object)]
#[derive(Default)]
pub struct CopyOptionsInfo {
    /// `"gzip"` (default), `"zstd"` or `"none"`.
    pub compression: Option<String>,
    /// `false` skips TLS verification (and allows plain HTTP) for a registry.
    pub tls_verify: Option<bool>,
    /// `os/architecture[/variant]` the image must be.
    pub platform: Option<String>,
}

#[napi(object)]
pub struct CopyInfo {
    pub manifest_digest: String,
    pub manifest_size: i64,
    pub layers: u32,
    pub bytes_written: i64,
    pub blobs_reused: u32,
}

impl From<Copied> for CopyInfo {
    fn from(c: Copied) -> Self {
        CopyInfo {
            manifest_digest: c.manifest_digest,
            manifest_size: c.manifest_size as i64,
            layers: c.layers as u32,
            bytes_written: c.bytes_written as i64,
            blobs_reused: c.blobs_reused as u32,
        }
    }
}

#[napi(object)]
pub struct PullInfo {
    pub image_id: String,
    /// Layer IDs, base first.
    pub layers: Vec<String>,
    /// How many layers were written (the rest were in the store).
    pub layers_written: u32,
    /// Whether the image was in the store already (it got the name).
    pub existed: bool,
}

impl From<Pulled> for PullInfo {
    fn from(p: Pulled) -> Self {
        PullInfo {
            image_id: p.image_id,
            layers: p.layers,
            layers_written: p.layers_written as u32,
            existed: p.existed,
        }
    }
}
