//! The registry server of `cstor_core::serve`, for Node.

use std::sync::{Arc, Mutex};

use cstor_core::serve::access_log::AccessEntry;
use cstor_core::serve::{RegistryOptions, RegistryServer};
use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;

use crate::blocking;
use crate::store::NativeStore;

/// The access-log callback; weak, so a server that was closed (or a log entry still queued)
/// never keeps Node running — `RegistryServer` in ts/ keeps it alive while it serves.
pub type AccessLogCallback =
    ThreadsafeFunction<AccessEntryInfo, (), AccessEntryInfo, Status, false, true>;

#[napi(object)]
#[derive(Default)]
pub struct RegistryOptionsInfo {
    pub address: Option<String>,
    pub tls_cert: Option<String>,
    pub tls_key: Option<String>,
    pub htpasswd: Option<String>,
    pub verify: Option<bool>,
}

/// One request the registry answered.
#[napi(object)]
pub struct AccessEntryInfo {
    /// `REMOTE - USER [TIME] "METHOD TARGET" STATUS BYTES "USER-AGENT" SECONDSs [error: …]`
    pub line: String,
    /// The client's `IP:PORT`.
    pub remote: String,
    /// The user basic auth proved, if any.
    pub user: Option<String>,
    pub method: String,
    /// The request target, query included.
    pub target: String,
    pub status: u32,
    /// Body bytes sent.
    pub bytes: i64,
    pub seconds: f64,
    pub user_agent: Option<String>,
    /// Why the response broke off (the client left, the layer changed), if it did.
    pub error: Option<String>,
}

impl From<&AccessEntry> for AccessEntryInfo {
    fn from(entry: &AccessEntry) -> Self {
        AccessEntryInfo {
            line: entry.line(),
            remote: entry.remote.to_string(),
            user: entry.user.clone(),
            method: entry.method.clone(),
            target: entry.target.clone(),
            status: u32::from(entry.status),
            bytes: entry.bytes as i64,
            seconds: entry.duration.as_secs_f64(),
            user_agent: entry.user_agent.clone(),
            error: entry.error.clone(),
        }
    }
}

/// A running registry; `close()` stops it.
#[napi]
pub struct NativeRegistryServer {
    server: Mutex<Option<RegistryServer>>,
    address: String,
}

#[napi]
impl NativeRegistryServer {
    /// `IP:PORT` it listens on.
    #[napi(getter)]
    pub fn address(&self) -> String {
        self.address.clone()
    }

    /// Stops accepting; open connections end after the response they are sending.
    #[napi]
    pub fn close(&self) {
        let server = self
            .server
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        drop(server);
    }
}

#[napi]
impl NativeStore {
    /// Serves this store as a read-only OCI registry; `on_request` receives each request's
    /// access-log entry.
    #[napi]
    pub async fn serve_registry(
        &self,
        options: Option<RegistryOptionsInfo>,
        on_request: Option<AccessLogCallback>,
    ) -> Result<NativeRegistryServer> {
        let store = self.store()?;
        let options = options.unwrap_or_default();
        let tls = match (options.tls_cert, options.tls_key) {
            (Some(cert), Some(key)) => Some((cert.into(), key.into())),
            (None, None) => None,
            _ => {
                return Err(crate::to_js_error(cstor_core::Error::InvalidArgument(
                    "TLS needs both a certificate and a key".into(),
                )))
            }
        };
        let access_log = on_request.map(|callback| {
            Arc::new(move |entry: &AccessEntry| {
                callback.call(entry.into(), ThreadsafeFunctionCallMode::NonBlocking);
            }) as cstor_core::serve::access_log::AccessLog
        });
        let options = RegistryOptions {
            address: options.address.unwrap_or_default(),
            tls,
            htpasswd: options.htpasswd.map(Into::into),
            verify: options.verify.unwrap_or(true),
            access_log,
        };
        let server = blocking(move || RegistryServer::start(store, options)).await?;
        Ok(NativeRegistryServer {
            address: server.local_addr().to_string(),
            server: Mutex::new(Some(server)),
        })
    }
}
