//! The store served to others, for as long as the call lasts: as a read-only OCI registry, or
//! over JSON-RPC on a Unix socket. Each is an operation like any other, so a rootless store is
//! served from inside its user namespace, where its files can be read; cancelling the call (or
//! the caller going away) stops the server.

use std::os::unix::net::UnixListener;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::error::{Error, Result};
use crate::ipc::rpc;
use crate::ipc::socket::{self, SocketAccess};
use crate::ops::rpc_server;
use crate::ops::typescript::Declarations;
use crate::ops::{Allowed, Call, Done, Operation};
use crate::serve::access_log::AccessEntry;
use crate::serve::{RegistryOptions, RegistryServer};
use crate::store::Store;

/// Serves the store as a read-only OCI registry on `address` (loopback unless it names another
/// interface; default 127.0.0.1:5000, port 0 picks one): events `registry.listening {address}`
/// once, then `registry.request` per request answered, until the call is cancelled.
#[derive(Debug, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(optional_fields)]
pub struct ServeRegistry {
    #[serde(default)]
    pub address: Option<String>,
    /// HTTPS with this PEM certificate chain and private key.
    #[serde(default)]
    pub tls_cert: Option<String>,
    #[serde(default)]
    pub tls_key: Option<String>,
    /// Basic auth against an htpasswd file of bcrypt entries.
    #[serde(default)]
    pub htpasswd: Option<String>,
    /// Check each file body against its tar-split CRC-64 while sending it (default true).
    #[serde(default)]
    pub verify: Option<bool>,
}

/// Where a server listens: `IP:PORT` or a socket path.
#[derive(Debug, Serialize, Deserialize, TS)]
pub struct Listening {
    pub address: String,
}

/// One request the registry answered.
#[derive(Debug, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(rename = "AccessLogEntry")]
pub struct AccessLogEntry {
    /// `REMOTE - USER [TIME] "METHOD TARGET" STATUS BYTES "USER-AGENT" SECONDSs [error: …]`
    pub line: String,
    /// The client's `IP:PORT`.
    pub remote: String,
    /// The user basic auth proved, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    pub method: String,
    /// The request target, query included.
    pub target: String,
    pub status: u16,
    /// Body bytes sent.
    pub bytes: u64,
    pub seconds: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// Why the response broke off (the client left, the layer changed), if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl From<&AccessEntry> for AccessLogEntry {
    fn from(entry: &AccessEntry) -> Self {
        AccessLogEntry {
            line: entry.line(),
            remote: entry.remote.to_string(),
            user: entry.user.clone(),
            method: entry.method.clone(),
            target: entry.target.clone(),
            status: entry.status,
            bytes: entry.bytes,
            seconds: entry.duration.as_secs_f64(),
            user_agent: entry.user_agent.clone(),
            error: entry.error.clone(),
        }
    }
}

impl Operation for ServeRegistry {
    const METHOD: &'static str = "ServeRegistry";
    type Output = Done;

    fn run(self, store: &Arc<Store>, call: &mut Call) -> Result<Done> {
        let tls = match (self.tls_cert, self.tls_key) {
            (Some(cert), Some(key)) => Some((call.path(&cert), call.path(&key))),
            (None, None) => None,
            _ => {
                return Err(Error::InvalidArgument(
                    "TLS needs both a certificate and a key".into(),
                ))
            }
        };
        let sink = call.sink();
        let access_log = Arc::new(move |entry: &AccessEntry| {
            let params = serde_json::to_value(AccessLogEntry::from(entry)).unwrap_or_default();
            let _ = sink.emit(crate::ops::Event {
                method: "registry.request".into(),
                params,
                fds: Vec::new(),
            });
        });
        let options = RegistryOptions {
            address: self.address.unwrap_or_default(),
            tls,
            htpasswd: self.htpasswd.map(|p| call.path(&p)),
            verify: self.verify.unwrap_or(true),
            access_log: Some(access_log),
        };
        let server = RegistryServer::start(store.clone(), options)?;
        let address = server.local_addr().to_string();
        if call
            .emit("registry.listening", Listening { address }, Vec::new())
            .is_ok()
        {
            call.sink().wait_cancelled();
        }
        drop(server);
        Ok(Done {})
    }
}

/// Serves the store over JSON-RPC 2.0 on a new Unix socket at `socket` (which must not exist):
/// mode 0600 whatever the umask, or 0660 and owned by `group` when one is given; the write
/// operations too when `writable`. Event `rpc.listening {address}` once listening; the socket
/// is removed when the call is cancelled.
#[derive(Debug, Deserialize, TS)]
#[ts(optional_fields)]
pub struct Serve {
    pub socket: String,
    #[serde(default)]
    pub writable: Option<bool>,
    #[serde(default)]
    pub group: Option<String>,
}

impl Operation for Serve {
    const METHOD: &'static str = "Serve";
    type Output = Done;

    fn run(self, store: &Arc<Store>, call: &mut Call) -> Result<Done> {
        let path = call.path(&self.socket);
        let who = self.group.map_or(SocketAccess::Owner, SocketAccess::Group);
        let listener = socket::listen(&path, &who)?;
        let allowed = if self.writable.unwrap_or(false) {
            Allowed::ReadWrite
        } else {
            Allowed::ReadOnly
        };
        let result = serve_until_cancelled(store, &listener, allowed, call, &path);
        let _ = std::fs::remove_file(&path);
        result
    }
}

fn serve_until_cancelled(
    store: &Arc<Store>,
    listener: &UnixListener,
    allowed: Allowed,
    call: &mut Call,
    path: &std::path::Path,
) -> Result<Done> {
    let address = path.to_string_lossy().into_owned();
    call.emit("rpc.listening", Listening { address }, Vec::new())?;
    let handler = rpc_server::handler(store.clone(), allowed);
    std::thread::scope(|scope| {
        let sink = call.sink();
        scope.spawn(move || {
            sink.wait_cancelled();
            rpc::stop(listener);
        });
        rpc::serve(listener, handler);
    });
    Ok(Done {})
}

/// The payloads of the servers' events.
pub(super) fn declare_events(declarations: &mut Declarations) {
    declarations.event::<Listening>();
    declarations.event::<AccessLogEntry>();
}
