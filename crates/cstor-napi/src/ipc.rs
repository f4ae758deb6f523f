//! The JSON-RPC server and client of `cstor_core::ipc::rpc`, for Node.

use std::os::fd::{AsFd, IntoRawFd};
use std::path::PathBuf;
use std::sync::Mutex;

use cstor_core::ipc::rpc::{self, Client};
use cstor_core::ipc::socket::{self, SocketAccess};
use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;

use crate::content::NativeLayerParts;
use crate::store::NativeStore;
use crate::{blocking, duplicate_fd, to_js_error};

/// A running server; `close()` stops accepting and removes the socket file.
#[napi]
pub struct NativeRpcServer {
    shutdown: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
    path: PathBuf,
}

#[napi]
impl NativeRpcServer {
    #[napi(getter)]
    pub fn path(&self) -> String {
        self.path.to_string_lossy().into_owned()
    }

    /// Stops accepting connections; connections being served finish their current request.
    #[napi]
    pub fn close(&self) {
        let sender = self
            .shutdown
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(sender) = sender {
            let _ = sender.send(());
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[napi]
impl NativeStore {
    /// Serves this store on a new Unix socket at `path` (which must not exist), mode 0600, or
    /// 0660 and owned by `group` when one is given; `writable` adds the write methods.
    #[napi]
    pub fn serve(
        &self,
        path: String,
        writable: Option<bool>,
        group: Option<String>,
    ) -> Result<NativeRpcServer> {
        let store = self.store()?;
        let path = PathBuf::from(path);
        let who = group.map_or(SocketAccess::Owner, SocketAccess::Group);
        let listener = socket::listen(&path, &who).map_err(to_js_error)?;
        let listener = within_runtime_if_available(|| {
            listener.set_nonblocking(true)?;
            tokio::net::UnixListener::from_std(listener)
        })
        .map_err(|e| {
            let _ = std::fs::remove_file(&path);
            to_js_error(cstor_core::Error::Io {
                path: path.clone(),
                source: e,
            })
        })?;
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let access = if writable.unwrap_or(false) {
            rpc::Access::Writable
        } else {
            rpc::Access::ReadOnly
        };
        spawn(rpc::serve(store, listener, access, receiver));
        Ok(NativeRpcServer {
            shutdown: Mutex::new(Some(sender)),
            path,
        })
    }
}

/// A result from a server: its JSON text and the fds that came with it (the caller's to close).
#[napi(object)]
pub struct RpcResultInfo {
    pub result: String,
    pub fds: Vec<i32>,
}

/// A notification a server sent before its response: its method and params (JSON text).
#[napi(object)]
pub struct RpcNotificationInfo {
    pub method: String,
    pub params: String,
}

/// Calls `method` on the server at `path` over a new connection, sending `fds` along (they stay
/// the caller's); notifications before the response go to `on_notification`.
#[napi]
pub async fn rpc_call(
    path: String,
    method: String,
    params: String,
    fds: Option<Vec<i32>>,
    on_notification: Option<
        ThreadsafeFunction<RpcNotificationInfo, (), RpcNotificationInfo, Status, false>,
    >,
) -> Result<RpcResultInfo> {
    blocking(move || {
        let params = serde_json::from_str(&params)
            .map_err(|e| cstor_core::Error::InvalidArgument(format!("params are not JSON: {e}")))?;
        let sent: Vec<std::fs::File> = fds
            .unwrap_or_default()
            .into_iter()
            .map(duplicate_fd)
            .collect::<cstor_core::Result<_>>()?;
        let borrowed: Vec<_> = sent.iter().map(AsFd::as_fd).collect();
        let mut forward = |method: &str, params: serde_json::Value| {
            if let Some(callback) = &on_notification {
                let info = RpcNotificationInfo {
                    method: method.to_owned(),
                    params: params.to_string(),
                };
                callback.call(info, ThreadsafeFunctionCallMode::NonBlocking);
            }
            Ok(())
        };
        let (result, fds) =
            Client::connect(path.as_ref())?.call_with(&method, params, &borrowed, &mut forward)?;
        Ok(RpcResultInfo {
            result: result.to_string(),
            fds: fds.into_iter().map(|fd| fd.into_raw_fd()).collect(),
        })
    })
    .await
}

/// A layer streamed by the server at `path`, as parts, over a connection of its own.
#[napi]
pub async fn rpc_stream_layer(path: String, layer: String) -> Result<NativeLayerParts> {
    blocking(move || Client::connect(path.as_ref())?.stream_layer(&layer))
        .await
        .map(|parts| NativeLayerParts::new(Box::new(parts)))
}
