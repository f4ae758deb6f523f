//! JSON-RPC 2.0 over a Unix stream socket, file descriptors passed alongside ([`crate::ipc::fdpass`]).
//!
//! A cstor server lends a store to processes that cannot (or should not) open it themselves: it
//! answers with metadata, and with layers as fds open on the store's files, so content never
//! crosses the socket. Methods:
//! - `ListImages`, `ListLayers` → arrays of records;
//! - `GetLayerSplitfdstream {layer, inlineThreshold?}` → `{layer, content: n}` with `1 + n` fds:
//!   the stream (a memfd) first, then the content fds, numbered as [`crate::content::splitfdstream`] says;
//! - `StreamLayer {layer}` → notifications `layer.start {layer, size}`, `layer.segment {data}`
//!   (base64), `layer.file {name, size, crc}` (one fd each), `layer.end {bytes}`, then the result
//!   `{files, bytes}`;
//! - on a writable server ([`Access::Writable`]) also the write methods of [`crate::ipc::rpc_writes`]
//!   (pull, import, tag, untag, remove, create).
//!
//! Errors: the JSON-RPC codes (-32700 parse, -32600 invalid request, -32601 unknown method,
//! -32602 bad params), -32050 when promised fds did not arrive, and -32000 for store errors with
//! `data.code` the cstor error code (`ENOLAYER`, ...).
//!
//! tokio accepts connections; each is then served on the blocking pool, since what it does —
//! reading layers, passing fds — is blocking work. A client that goes away mid-stream only ends
//! its connection: the fds opened for it are closed as the stream is dropped.

use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use serde_json::{json, Value};

use crate::content::export::LayerPart;
use crate::content::splitfdstream::DEFAULT_INLINE_THRESHOLD;
use crate::error::{Error, Result};
use crate::ipc::fdpass::{self, Receiver, WireError};
use crate::ipc::rpc_writes;
use crate::store::Store;

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;
pub const MISSING_FDS: i64 = -32050;
pub const STORE_ERROR: i64 = -32000;

/// Segments of a streamed layer are sent in notifications of up to this many bytes.
const SEGMENT_NOTIFICATION_BYTES: usize = 1 << 20;

/// Whether a server answers the write methods of [`crate::ipc::rpc_writes`] too. Off by default: a
/// socket lends a store for reading unless its owner asks for more.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Access {
    #[default]
    ReadOnly,
    Writable,
}

/// Serves `store` on `listener` until `shutdown` fires.
pub async fn serve(
    store: Arc<Store>,
    listener: tokio::net::UnixListener,
    access: Access,
    mut shutdown: tokio::sync::oneshot::Receiver<()>,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    // Out of fds, say: let the clients already served finish some work.
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                };
                let Ok(stream) = stream.into_std().and_then(|s| s.set_nonblocking(false).map(|()| s)) else {
                    continue;
                };
                let store = store.clone();
                tokio::task::spawn_blocking(move || serve_connection(&store, stream, access));
            }
            _ = &mut shutdown => return,
        }
    }
}

/// Answers one client's requests until it disconnects or breaks the protocol.
pub fn serve_connection(store: &Store, stream: UnixStream, access: Access) {
    let Ok(writer) = stream.try_clone() else {
        return;
    };
    let mut receiver = Receiver::new(stream);
    loop {
        let reply = match receiver.next_message() {
            Ok(None) | Err(WireError::Io(_)) => return,
            Ok(Some((request, fds))) => match handle(store, &writer, &request, fds, access) {
                Ok(reply) => reply,
                Err(_) => return, // the client went away mid-reply
            },
            Err(WireError::Malformed(detail)) => {
                let _ = send_error(&writer, &Value::Null, PARSE_ERROR, &detail, None);
                return;
            }
            Err(e @ WireError::MissingFds { .. }) => {
                let _ = send_error(&writer, &Value::Null, MISSING_FDS, &e.to_string(), None);
                return;
            }
        };
        if let Some((message, fds)) = reply {
            let borrowed: Vec<_> = fds.iter().map(|f| f.as_fd()).collect();
            if fdpass::send(&writer, &message, &borrowed).is_err() {
                return;
            }
        }
    }
}

type Reply = Option<(Value, Vec<File>)>;

/// Runs one request; the reply to send (none for a notification), or a send failure.
fn handle(
    store: &Store,
    out: &UnixStream,
    request: &Value,
    fds: Vec<OwnedFd>,
    access: Access,
) -> std::result::Result<Reply, WireError> {
    let id = request.get("id").cloned();
    let method = request.get("method").and_then(Value::as_str);
    let (Some(method), true) = (method, request.get("jsonrpc") == Some(&json!("2.0"))) else {
        send_error(
            out,
            &id.unwrap_or(Value::Null),
            INVALID_REQUEST,
            "not a JSON-RPC 2.0 request",
            None,
        )?;
        return Ok(None);
    };
    let params = request.get("params").cloned().unwrap_or(Value::Null);
    let outcome = match method {
        "ListImages" => list_images(store)
            .map(|v| (v, Vec::new()))
            .map_err(Failure::Store),
        "ListLayers" => list_layers(store)
            .map(|v| (v, Vec::new()))
            .map_err(Failure::Store),
        "GetLayerSplitfdstream" => get_layer_splitfdstream(store, &params),
        "StreamLayer" => stream_layer(store, out, &params),
        write if rpc_writes::is_write(write) && access == Access::Writable => {
            let mut notify = |method: &str, params: Value| {
                let message = json!({ "jsonrpc": "2.0", "method": method, "params": params });
                fdpass::send(out, &message, &[])
            };
            rpc_writes::handle(store, write, &params, fds, &mut notify)
                .map(|result| (result, Vec::new()))
                .map_err(|failure| match failure {
                    rpc_writes::Failure::Params(detail) => Failure::Params(detail),
                    rpc_writes::Failure::Store(e) => Failure::Store(e),
                    rpc_writes::Failure::Wire(e) => Failure::Wire(e),
                })
        }
        _ => {
            if let Some(id) = &id {
                let message = if rpc_writes::is_write(method) {
                    format!("{method} needs a writable server (cstor serve --writable)")
                } else {
                    format!("no method {method:?}")
                };
                send_error(out, id, METHOD_NOT_FOUND, &message, None)?;
            }
            return Ok(None);
        }
    };
    let Some(id) = id else {
        return Ok(None);
    };
    match outcome {
        Ok((result, fds)) => {
            let mut message = json!({ "jsonrpc": "2.0", "id": id, "result": result });
            if !fds.is_empty() {
                message["fds"] = json!(fds.len());
            }
            Ok(Some((message, fds)))
        }
        Err(Failure::Params(detail)) => {
            send_error(out, &id, INVALID_PARAMS, &detail, None)?;
            Ok(None)
        }
        Err(Failure::Store(e)) => {
            send_error(out, &id, STORE_ERROR, &e.to_string(), Some(e.code()))?;
            Ok(None)
        }
        Err(Failure::Wire(e)) => Err(e),
    }
}

enum Failure {
    Params(String),
    Store(Error),
    Wire(WireError),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Store(e)
    }
}

type Outcome = std::result::Result<(Value, Vec<File>), Failure>;

/// Sends a notification (a message without an id) with its fds.
fn notify(
    out: &UnixStream,
    method: &str,
    params: Value,
    fds: &[&File],
) -> std::result::Result<(), Failure> {
    let mut message = json!({ "jsonrpc": "2.0", "method": method, "params": params });
    if !fds.is_empty() {
        message["fds"] = json!(fds.len());
    }
    let borrowed: Vec<_> = fds.iter().map(|f| f.as_fd()).collect();
    fdpass::send(out, &message, &borrowed).map_err(Failure::Wire)
}

fn send_error(
    out: &UnixStream,
    id: &Value,
    code: i64,
    message: &str,
    cstor: Option<&str>,
) -> std::result::Result<(), WireError> {
    let mut error = json!({ "code": code, "message": message });
    if let Some(cstor) = cstor {
        error["data"] = json!({ "code": cstor });
    }
    fdpass::send(
        out,
        &json!({ "jsonrpc": "2.0", "id": id, "error": error }),
        &[],
    )
}

fn list_images(store: &Store) -> Result<Value> {
    Ok(store
        .images()?
        .iter()
        .map(|image| {
            let r = &image.record;
            json!({ "id": r.id, "names": r.names, "digest": r.digest, "created": r.created, "topLayer": r.layer })
        })
        .collect())
}

fn list_layers(store: &Store) -> Result<Value> {
    Ok(store
        .layers()?
        .iter()
        .map(|layer| {
            let r = &layer.record;
            json!({ "id": r.id, "parent": r.parent, "diffDigest": r.diff_digest, "diffSize": r.diff_size })
        })
        .collect())
}

fn layer_param(params: &Value) -> std::result::Result<&str, Failure> {
    params
        .get("layer")
        .and_then(Value::as_str)
        .ok_or_else(|| Failure::Params("params.layer must be a layer ID or reference".into()))
}

fn get_layer_splitfdstream(store: &Store, params: &Value) -> Outcome {
    let layer = store.layer(layer_param(params)?)?;
    let threshold = match params.get("inlineThreshold") {
        None | Some(Value::Null) => DEFAULT_INLINE_THRESHOLD,
        Some(t) => t
            .as_u64()
            .ok_or_else(|| Failure::Params("params.inlineThreshold must be a byte count".into()))?,
    };
    let stream = store.layer_splitfdstream(&layer, threshold)?;
    let result = json!({ "layer": layer.id(), "content": stream.content.len() });
    let mut fds = vec![stream.stream];
    fds.extend(stream.content);
    Ok((result, fds))
}

fn stream_layer(store: &Store, out: &UnixStream, params: &Value) -> Outcome {
    let layer = store.layer(layer_param(params)?)?;
    let parts = store.layer_parts(&layer)?;
    let notify = |method: &str, params: Value, fds: &[&File]| notify(out, method, params, fds);
    notify(
        "layer.start",
        json!({ "layer": layer.id(), "size": layer.record.diff_size }),
        &[],
    )?;
    let base64 = base64::engine::general_purpose::STANDARD;
    let (mut segment, mut bytes, mut files) = (Vec::new(), 0u64, 0u64);
    for part in parts {
        match part? {
            LayerPart::Segment(data) => {
                bytes += data.len() as u64;
                segment.extend_from_slice(&data);
                if segment.len() >= SEGMENT_NOTIFICATION_BYTES {
                    notify(
                        "layer.segment",
                        json!({ "data": base64.encode(&segment) }),
                        &[],
                    )?;
                    segment.clear();
                }
            }
            LayerPart::Body {
                name,
                size,
                crc,
                file,
            } => {
                if !segment.is_empty() {
                    notify(
                        "layer.segment",
                        json!({ "data": base64.encode(&segment) }),
                        &[],
                    )?;
                    segment.clear();
                }
                bytes += size;
                files += 1;
                let crc = crc.map(|c| format!("{c:016x}"));
                let params = json!({ "name": name.to_string_lossy(), "size": size, "crc": crc });
                notify("layer.file", params, &[&file])?;
            }
        }
    }
    if !segment.is_empty() {
        notify(
            "layer.segment",
            json!({ "data": base64.encode(&segment) }),
            &[],
        )?;
    }
    notify("layer.end", json!({ "bytes": bytes }), &[])?;
    Ok((json!({ "files": files, "bytes": bytes }), Vec::new()))
}

/// A blocking client of a cstor server.
pub struct Client {
    receiver: Receiver,
    writer: UnixStream,
    next_id: u64,
    path: PathBuf,
}

impl Client {
    pub fn connect(path: &Path) -> Result<Client> {
        let stream = UnixStream::connect(path).map_err(|e| Error::io(path, e))?;
        let writer = stream.try_clone().map_err(|e| Error::io(path, e))?;
        Ok(Client {
            receiver: Receiver::new(stream),
            writer,
            next_id: 1,
            path: path.to_owned(),
        })
    }

    fn wire(&self, e: WireError) -> Error {
        match e {
            WireError::Io(e) => Error::io(&self.path, e),
            other => Error::corrupt(&self.path, other.to_string()),
        }
    }

    /// Sends a request with `fds`; returns its id.
    fn request(&mut self, method: &str, params: Value, fds: &[BorrowedFd<'_>]) -> Result<u64> {
        let id = self.next_id;
        self.next_id += 1;
        let mut request = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
        if !fds.is_empty() {
            request["fds"] = json!(fds.len());
        }
        fdpass::send(&self.writer, &request, fds).map_err(|e| self.wire(e))?;
        Ok(id)
    }

    /// The next message: `Ok(Err(..))` for a notification (method, params, fds), `Ok(Ok(..))`
    /// for the response (result, fds), `Err` for an error response or a broken connection.
    #[allow(clippy::type_complexity)]
    fn receive(
        &mut self,
        method: &str,
    ) -> Result<std::result::Result<(Value, Vec<OwnedFd>), (String, Value, Vec<OwnedFd>)>> {
        let Some((mut message, fds)) = self.receiver.next_message().map_err(|e| self.wire(e))?
        else {
            return Err(self.wire(WireError::Malformed(
                "the server closed the connection".into(),
            )));
        };
        if message.get("id").is_none() {
            let name = message
                .get("method")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            return Ok(Err((name, message["params"].take(), fds)));
        }
        if let Some(error) = message.get("error") {
            let code = error
                .pointer("/data/code")
                .and_then(Value::as_str)
                .unwrap_or("EREMOTE");
            let text = error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("unknown error");
            return Err(Error::Remote {
                code: Error::known_code(code),
                message: format!("{method}: {text}"),
            });
        }
        Ok(Ok((message["result"].take(), fds)))
    }

    /// Calls a method that answers without notifications; returns the result and its fds.
    pub fn call(&mut self, method: &str, params: Value) -> Result<(Value, Vec<OwnedFd>)> {
        let path = self.path.clone();
        self.call_with(method, params, &[], &mut |name, _| {
            Err(Error::corrupt(
                &path,
                format!("unexpected notification {name}"),
            ))
        })
    }

    /// Calls a method, sending `fds` along and handing each notification that comes before the
    /// response (its method and params; fds that came with one are closed) to `on_notification`.
    pub fn call_with(
        &mut self,
        method: &str,
        params: Value,
        fds: &[BorrowedFd<'_>],
        on_notification: &mut dyn FnMut(&str, Value) -> Result<()>,
    ) -> Result<(Value, Vec<OwnedFd>)> {
        self.request(method, params, fds)?;
        loop {
            match self.receive(method)? {
                Ok(response) => return Ok(response),
                Err((name, params, _fds)) => on_notification(&name, params)?,
            }
        }
    }

    /// A layer's tar as parts, received from `StreamLayer` notifications one at a time (each
    /// body an fd open on the server's store). The connection is the stream's from now on.
    pub fn stream_layer(mut self, layer: &str) -> Result<RemoteLayerParts> {
        self.request("StreamLayer", json!({ "layer": layer }), &[])?;
        Ok(RemoteLayerParts {
            client: self,
            done: false,
        })
    }
}

/// The parts of a layer streamed by a server; see [`Client::stream_layer`].
pub struct RemoteLayerParts {
    client: Client,
    done: bool,
}

impl RemoteLayerParts {
    fn next_part(&mut self) -> Result<Option<LayerPart>> {
        let bad = |client: &Client, detail: &str| {
            Error::corrupt(&client.path, format!("StreamLayer: {detail}"))
        };
        loop {
            let (method, params, mut fds) = match self.client.receive("StreamLayer")? {
                Ok(_) => return Ok(None),
                Err(notification) => notification,
            };
            match method.as_str() {
                "layer.segment" => {
                    let data = params["data"]
                        .as_str()
                        .ok_or_else(|| bad(&self.client, "a segment without data"))?;
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(data)
                        .map_err(|_| bad(&self.client, "a segment that is not base64"))?;
                    return Ok(Some(LayerPart::Segment(bytes)));
                }
                "layer.file" => {
                    let file = fds.pop().filter(|_| fds.is_empty());
                    let file =
                        file.ok_or_else(|| bad(&self.client, "a file without its one fd"))?;
                    let size = params["size"]
                        .as_u64()
                        .ok_or_else(|| bad(&self.client, "a file without a size"))?;
                    return Ok(Some(LayerPart::Body {
                        name: PathBuf::from(params["name"].as_str().unwrap_or_default()),
                        size,
                        crc: params["crc"]
                            .as_str()
                            .and_then(|c| u64::from_str_radix(c, 16).ok()),
                        file: File::from(file),
                    }));
                }
                _ => {}
            }
        }
    }
}

impl Iterator for RemoteLayerParts {
    type Item = Result<LayerPart>;

    fn next(&mut self) -> Option<Result<LayerPart>> {
        if self.done {
            return None;
        }
        let next = self.next_part().transpose();
        self.done = !matches!(next, Some(Ok(_)));
        next
    }
}
