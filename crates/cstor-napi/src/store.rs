//! Opening a store, and starting operations on it.

use std::sync::{Arc, Mutex};

use cstor_core::store::config::{discover, Environment, StoreConfig};
use cstor_core::{Store, StoreOptions};
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::call::{duplicate_fds, local_call, NativeCall};
use crate::{blocking, path_string, to_js_error};

#[napi(object)]
pub struct OpenOptions {
    pub root: String,
    pub runroot: Option<String>,
    pub driver: Option<String>,
    pub additional_image_stores: Option<Vec<String>>,
    pub create: Option<bool>,
}

/// Where podman would find its store, from `storage.conf` and the environment.
#[napi]
pub async fn discover_config() -> Result<StoreConfigInfo> {
    blocking(|| discover(&Environment::current()).map(StoreConfigInfo::from)).await
}

/// Opens a store; see `Storage.open` in the TypeScript API.
#[napi]
pub async fn open_store(options: OpenOptions) -> Result<NativeStore> {
    let options = StoreOptions {
        graph_root: options.root.into(),
        run_root: options.runroot.map(Into::into),
        driver: options.driver,
        additional_image_stores: options
            .additional_image_stores
            .unwrap_or_default()
            .into_iter()
            .map(Into::into)
            .collect(),
        create: options.create.unwrap_or(false),
    };
    blocking(move || Store::open(options))
        .await
        .map(|store| NativeStore {
            store: Mutex::new(Some(Arc::new(store))),
        })
}

/// An opened store, on which operations (`cstor_core::ops`) run by name.
#[napi]
pub struct NativeStore {
    /// `None` once closed. Calls under way hold their own reference and finish first.
    store: Mutex<Option<Arc<Store>>>,
}

#[napi]
impl NativeStore {
    /// Starts the operation `method` with `params` (JSON text) and the caller's `fds` (which are
    /// duplicated: they stay the caller's).
    #[napi]
    pub fn start(
        &self,
        method: String,
        params: String,
        fds: Option<Vec<i32>>,
    ) -> Result<NativeCall> {
        let store = self
            .store
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
            .ok_or_else(|| {
                to_js_error(cstor_core::Error::InvalidArgument(
                    "the store has been closed".into(),
                ))
            })?;
        let fds = duplicate_fds(fds.unwrap_or_default()).map_err(to_js_error)?;
        local_call(store, method, params, fds)
    }

    /// Releases the store's directory descriptors (so its filesystem can be unmounted); later
    /// calls fail with `EINVAL`.
    #[napi]
    pub fn close(&self) {
        *self
            .store
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = None;
    }
}

#[napi(object)]
pub struct StoreConfigInfo {
    pub graph_root: String,
    pub run_root: String,
    pub driver: Option<String>,
    pub additional_image_stores: Vec<String>,
    pub config_file: Option<String>,
}

impl From<StoreConfig> for StoreConfigInfo {
    fn from(c: StoreConfig) -> Self {
        StoreConfigInfo {
            graph_root: path_string(&c.graph_root),
            run_root: path_string(&c.run_root),
            driver: c.driver,
            additional_image_stores: c
                .additional_image_stores
                .iter()
                .map(|p| path_string(p))
                .collect(),
            config_file: c.config_file.as_deref().map(path_string),
        }
    }
}
