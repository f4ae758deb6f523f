//! skopeo's image proxy (`cstor_core::transport::skopeo_proxy`) for Node.

use std::os::fd::IntoRawFd;
use std::sync::Arc;

use cstor_core::transport::skopeo_proxy::ImageProxy;
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::blocking;

/// A running `skopeo experimental-image-proxy`.
#[napi]
pub struct NativeImageProxy {
    proxy: Arc<ImageProxy>,
}

#[napi(object)]
pub struct ProxyManifestInfo {
    pub digest: String,
    pub data: Buffer,
}

/// A blob's pipe (read it to the end, then call `finishPipe(pipeId)`); the fd is the caller's.
#[napi(object)]
pub struct ProxyBlobInfo {
    pub fd: i32,
    pub pipe_id: i64,
}

/// Starts the proxy (`skopeo` from PATH unless given) with extra options for it.
#[napi]
pub async fn start_image_proxy(
    skopeo: Option<String>,
    options: Option<Vec<String>>,
) -> Result<NativeImageProxy> {
    let skopeo = skopeo.unwrap_or_else(|| "skopeo".into());
    let options = options.unwrap_or_default();
    blocking(move || ImageProxy::start(skopeo.as_ref(), &options))
        .await
        .map(|proxy| NativeImageProxy {
            proxy: Arc::new(proxy),
        })
}

#[napi]
impl NativeImageProxy {
    #[napi(getter)]
    pub fn protocol(&self) -> String {
        self.proxy.protocol.clone()
    }

    #[napi]
    pub async fn open_image(&self, reference: String) -> Result<i64> {
        let proxy = self.proxy.clone();
        blocking(move || proxy.open_image(&reference).map(|id| id as i64)).await
    }

    #[napi]
    pub async fn close_image(&self, image: i64) -> Result<()> {
        let proxy = self.proxy.clone();
        blocking(move || proxy.close_image(image as u64)).await
    }

    #[napi]
    pub async fn manifest(&self, image: i64) -> Result<ProxyManifestInfo> {
        let proxy = self.proxy.clone();
        blocking(move || proxy.manifest(image as u64))
            .await
            .map(|(digest, data)| ProxyManifestInfo {
                digest,
                data: data.into(),
            })
    }

    #[napi]
    pub async fn config(&self, image: i64) -> Result<Buffer> {
        let proxy = self.proxy.clone();
        blocking(move || proxy.config(image as u64))
            .await
            .map(Into::into)
    }

    #[napi]
    pub async fn full_config(&self, image: i64) -> Result<Buffer> {
        let proxy = self.proxy.clone();
        blocking(move || proxy.full_config(image as u64))
            .await
            .map(Into::into)
    }

    #[napi]
    pub async fn blob(&self, image: i64, digest: String, size: i64) -> Result<ProxyBlobInfo> {
        let proxy = self.proxy.clone();
        blocking(move || proxy.blob(image as u64, &digest, size))
            .await
            .map(|(pipe, id)| ProxyBlobInfo {
                fd: pipe.into_raw_fd(),
                pipe_id: id as i64,
            })
    }

    #[napi]
    pub async fn finish_pipe(&self, pipe_id: i64) -> Result<()> {
        let proxy = self.proxy.clone();
        blocking(move || proxy.finish_pipe(pipe_id as u64)).await
    }

    #[napi]
    pub async fn shutdown(&self) -> Result<()> {
        let proxy = self.proxy.clone();
        blocking(move || proxy.shutdown()).await
    }
}
