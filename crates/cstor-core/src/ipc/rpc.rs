//! JSON-RPC 2.0 over a Unix stream socket, file descriptors passed alongside ([`crate::ipc::fdpass`]).
//!
//! The wire protocol only: which methods exist and what they do is the caller's business (the
//! store's operations, [`crate::ops`], serve themselves through [`serve`]). A request is
//! `{"jsonrpc":"2.0","id":…,"method":…,"params":…}`, with two members of ours beside them:
//! `"fds": N` when fds ride along (FORMAT.md), and `"cwd"`, the directory the caller's relative
//! paths are relative to (the caller may run in another directory, or another mount namespace's
//! view of the same files). Before its response the server may send notifications (messages
//! without an id: progress, the parts of a streamed layer), each with its own fds.
//!
//! Errors: the JSON-RPC codes (-32700 parse, -32600 invalid request, -32601 unknown method,
//! -32602 bad params), -32050 when promised fds did not arrive, and -32000 for store errors with
//! `data.code` the cstor error code (`ENOLAYER`, ...).
//!
//! Each connection is served on a thread of its own, since what it does — reading layers,
//! passing fds — is blocking work; a client that goes away mid-stream only ends its connection.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::ipc::fdpass::{self, Receiver, WireError};

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;
pub const MISSING_FDS: i64 = -32050;
pub const STORE_ERROR: i64 = -32000;

/// One request, as the server's handler gets it.
#[derive(Debug)]
pub struct Request {
    pub method: String,
    pub params: Value,
    pub fds: Vec<OwnedFd>,
    /// The caller's working directory, if it sent one.
    pub cwd: Option<PathBuf>,
}

/// What a handler answers: a result with its fds, or an error.
pub enum Response {
    Result(Value, Vec<OwnedFd>),
    Error {
        code: i64,
        message: String,
        /// The cstor error code (`ENOLAYER`, …) of a store error.
        cstor: Option<&'static str>,
    },
}

/// The client end of a connection, as a handler sees it: notifications go out through it (from
/// any thread), and it tells when the client has gone.
#[derive(Clone)]
pub struct Peer {
    socket: Arc<Mutex<UnixStream>>,
}

impl Peer {
    /// Sends a notification with its fds; fails when the client is gone.
    pub fn notify(&self, method: &str, params: Value, fds: &[OwnedFd]) -> Result<(), WireError> {
        let mut message = json!({ "jsonrpc": "2.0", "method": method, "params": params });
        if !fds.is_empty() {
            message["fds"] = json!(fds.len());
        }
        self.send(&message, fds)
    }

    fn send(&self, message: &Value, fds: &[OwnedFd]) -> Result<(), WireError> {
        let socket = self.socket.lock().unwrap_or_else(|p| p.into_inner());
        let borrowed: Vec<_> = fds.iter().map(AsFd::as_fd).collect();
        fdpass::send(&socket, message, &borrowed)
    }

    /// Blocks until the client closes its end of the connection (or shuts down its writing
    /// half): how a long-running method (a server) learns it should stop.
    pub fn wait_closed(&self) {
        let fd = self
            .socket
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_raw_fd();
        loop {
            let mut poll = libc::pollfd {
                fd,
                events: libc::POLLRDHUP,
                revents: 0,
            };
            // SAFETY: one valid pollfd; the socket outlives this call (we hold an Arc of it).
            let ready = unsafe { libc::poll(&mut poll, 1, -1) };
            if ready > 0 && poll.revents & (libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR) != 0 {
                return;
            }
            if ready < 0
                && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted
            {
                return;
            }
        }
    }
}

/// How a server answers requests: the method's outcome, notifications sent through the peer.
pub type Handler = dyn Fn(Request, &Peer) -> Response + Send + Sync;

/// Serves connections accepted on `listener`, each on a thread of its own, until the listener
/// is shut down ([`stop`]).
pub fn serve(listener: &UnixListener, handler: Arc<Handler>) {
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                let handler = handler.clone();
                let spawned = std::thread::Builder::new()
                    .name("cstor-rpc".into())
                    .spawn(move || serve_connection(stream, &*handler));
                if spawned.is_err() {
                    // Out of threads: the connection is dropped, the clients served go on.
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
            }
            // shutdown(2) of the listening socket: [`stop`] was called.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => return,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            // Out of fds, say: let the clients already served finish some work.
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(50)),
        }
    }
}

/// Makes [`serve`] on `listener` return: connections being served finish on their threads.
pub fn stop(listener: &UnixListener) {
    let _ = rustix::net::shutdown(listener, rustix::net::Shutdown::Both);
}

/// Answers one client's requests until it disconnects or breaks the protocol.
pub fn serve_connection(stream: UnixStream, handler: &Handler) {
    let Ok(writer) = stream.try_clone() else {
        return;
    };
    let peer = Peer {
        socket: Arc::new(Mutex::new(writer)),
    };
    let mut receiver = Receiver::new(stream);
    loop {
        let (request, fds) = match receiver.next_message() {
            Ok(Some(message)) => message,
            Ok(None) | Err(WireError::Io(_)) => return,
            Err(WireError::Malformed(detail)) => {
                let _ = send_error(&peer, &Value::Null, PARSE_ERROR, &detail, None);
                return;
            }
            Err(e @ WireError::MissingFds { .. }) => {
                let _ = send_error(&peer, &Value::Null, MISSING_FDS, &e.to_string(), None);
                return;
            }
        };
        if answer(&peer, request, fds, handler).is_err() {
            return; // the client went away mid-reply
        }
    }
}

/// Runs one request and sends its response (none for a notification).
fn answer(
    peer: &Peer,
    request: Value,
    fds: Vec<OwnedFd>,
    handler: &Handler,
) -> Result<(), WireError> {
    let id = request.get("id").cloned();
    let method = request.get("method").and_then(Value::as_str);
    let (Some(method), true) = (method, request.get("jsonrpc") == Some(&json!("2.0"))) else {
        return send_error(
            peer,
            &id.unwrap_or(Value::Null),
            INVALID_REQUEST,
            "not a JSON-RPC 2.0 request",
            None,
        );
    };
    let cwd = request
        .get("cwd")
        .and_then(Value::as_str)
        .map(PathBuf::from);
    let request = Request {
        method: method.to_owned(),
        params: request.get("params").cloned().unwrap_or(Value::Null),
        fds,
        cwd,
    };
    let response = handler(request, peer);
    let Some(id) = id else {
        return Ok(());
    };
    match response {
        Response::Result(result, fds) => {
            let mut message = json!({ "jsonrpc": "2.0", "id": id, "result": result });
            if !fds.is_empty() {
                message["fds"] = json!(fds.len());
            }
            peer.send(&message, &fds)
        }
        Response::Error {
            code,
            message,
            cstor,
        } => send_error(peer, &id, code, &message, cstor),
    }
}

fn send_error(
    peer: &Peer,
    id: &Value,
    code: i64,
    message: &str,
    cstor: Option<&str>,
) -> Result<(), WireError> {
    let mut error = json!({ "code": code, "message": message });
    if let Some(cstor) = cstor {
        error["data"] = json!({ "code": cstor });
    }
    peer.send(&json!({ "jsonrpc": "2.0", "id": id, "error": error }), &[])
}

/// A message of a call in flight, as the client receives it.
pub enum Message {
    /// A notification the server sent before its response.
    Notification {
        method: String,
        params: Value,
        fds: Vec<OwnedFd>,
    },
    /// The response: the result and its fds.
    Result { result: Value, fds: Vec<OwnedFd> },
}

/// A blocking client of a JSON-RPC server: one call at a time over one connection.
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

    /// Sends a request with `fds` (and the directory relative paths in it are relative to);
    /// the messages that answer it come from [`Client::next_message`].
    pub fn request(
        &mut self,
        method: &str,
        params: Value,
        fds: &[OwnedFd],
        cwd: Option<&Path>,
    ) -> Result<()> {
        let id = self.next_id;
        self.next_id += 1;
        let mut request = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
        if !fds.is_empty() {
            request["fds"] = json!(fds.len());
        }
        if let Some(cwd) = cwd {
            request["cwd"] = json!(cwd.to_string_lossy());
        }
        let borrowed: Vec<_> = fds.iter().map(AsFd::as_fd).collect();
        fdpass::send(&self.writer, &request, &borrowed).map_err(|e| self.wire(e))
    }

    /// The next message of the call in flight; an error response is the server's error, with
    /// its cstor code when it sent one.
    pub fn next_message(&mut self) -> Result<Message> {
        let Some((mut message, fds)) = self.receiver.next_message().map_err(|e| self.wire(e))?
        else {
            return Err(self.wire(WireError::Malformed(
                "the server closed the connection".into(),
            )));
        };
        if message.get("id").is_none() {
            let method = message
                .get("method")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            return Ok(Message::Notification {
                method,
                params: message["params"].take(),
                fds,
            });
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
                message: text.to_owned(),
            });
        }
        Ok(Message::Result {
            result: message["result"].take(),
            fds,
        })
    }

    /// A handle that ends the call in flight from another thread (the reading one may be
    /// blocked in [`Client::next_message`]): the server sees the connection close, so a
    /// long-running method stops and a streaming one fails its next send.
    pub fn hang_up_handle(&self) -> Result<HangUp> {
        let socket = self
            .writer
            .try_clone()
            .map_err(|e| Error::io(&self.path, e))?;
        Ok(HangUp { socket })
    }
}

/// See [`Client::hang_up_handle`].
pub struct HangUp {
    socket: UnixStream,
}

impl HangUp {
    /// Ends the call: nothing more is read or sent.
    pub fn hang_up(&self) {
        let _ = self.socket.shutdown(std::net::Shutdown::Both);
    }

    /// Asks a long-running method to stop (the server sees the connection's end) while its last
    /// notifications and result can still be read.
    pub fn stop(&self) {
        let _ = self.socket.shutdown(std::net::Shutdown::Write);
    }
}
