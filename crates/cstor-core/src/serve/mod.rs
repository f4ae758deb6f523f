//! The store served to other machines as a read-only OCI registry, so that podman, skopeo, CRI-O
//! and containerd on other nodes pull an image straight from this node's store.
//!
//! containers-storage keeps no compressed blobs, so every layer is served as what the store can
//! rebuild bit for bit: its uncompressed tar, whose digest is the layer's diff ID, written by the
//! export engine straight into the socket (`sendfile(2)` moves file bodies from the page cache).
//! The config goes out byte for byte, so a pulled image has the same image ID.
//!
//! This is the last stage of the data flow: it reads the store like every transport does, but
//! it is not a source or destination of a copy — it is a long-running service answering many
//! clients at once — so it has its own folder rather than a place among the transports.
//!
//! Shape: one thread accepts (loopback unless another address is given), one thread serves each
//! connection with blocking I/O — a layer transfer is blocking work from start to end, the
//! export engine's — up to [`MAX_CONNECTIONS`] at once. A connection that goes quiet is closed
//! after [`IDLE_TIMEOUT`]; one whose client stops reading mid-blob is cut by the kernel after
//! the same time (`TCP_USER_TIMEOUT`), so a stalled client cannot hold the store's lock for
//! long. A client that disconnects ends its thread at the next write, which drops every fd the
//! transfer had open.

pub mod access_log;
pub mod auth;
mod http;
pub mod repositories;
mod routes;
pub mod tls;

use std::collections::HashSet;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crate::content::export::{ExportOptions, TarWriter};
use crate::error::{Error, Result};
use crate::store::Store;
use access_log::{AccessEntry, AccessLog};
use auth::Htpasswd;
use http::{HeadError, HeadReader, Request};
use routes::{Body, Response};

/// Connections served at once; more wait in the listen backlog.
pub const MAX_CONNECTIONS: usize = 512;

/// How long a connection may take to send a request head (and stay idle between requests), and
/// how long a client may leave sent data unacknowledged before the kernel drops it.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The port a registry listens on by convention.
const DEFAULT_PORT: u16 = 5000;

/// How to serve.
#[derive(Clone, Default)]
pub struct RegistryOptions {
    /// `IP:PORT`, `[IPv6]:PORT`, `localhost:PORT`, `:PORT` or `PORT`; the last three (and an empty
    /// address, port 5000) listen on 127.0.0.1 only. Port 0 picks a free port.
    pub address: String,
    /// A PEM certificate chain and private key: HTTPS instead of HTTP.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// An htpasswd file of bcrypt entries: every request needs basic auth.
    pub htpasswd: Option<PathBuf>,
    /// Check each file body against its tar-split CRC-64 while it is sent.
    pub verify: bool,
    pub access_log: Option<AccessLog>,
}

/// A running registry; dropping it (or [`RegistryServer::close`]) stops it.
pub struct RegistryServer {
    address: SocketAddr,
    shared: Arc<Shared>,
    /// Dropped to wake the accepting thread.
    wake: Option<UnixStream>,
    acceptor: Option<std::thread::JoinHandle<()>>,
}

/// What every connection's thread shares.
struct Shared {
    store: Arc<Store>,
    tls: Option<Arc<rustls::ServerConfig>>,
    auth: Option<Htpasswd>,
    export: ExportOptions,
    log: Option<AccessLog>,
    closing: AtomicBool,
    connections: Mutex<usize>,
    freed: Condvar,
    /// Sockets of the connections waiting for their next request, shut down by `close`.
    idle: Mutex<HashSet<RawFd>>,
}

impl RegistryServer {
    /// Starts serving `store`.
    pub fn start(store: Arc<Store>, options: RegistryOptions) -> Result<RegistryServer> {
        let address = parse_address(&options.address)?;
        let tls = match &options.tls {
            Some((cert, key)) => Some(tls::server_config(cert, key)?),
            None => None,
        };
        let auth = options
            .htpasswd
            .as_deref()
            .map(Htpasswd::load)
            .transpose()?;
        let shown = || format!("registry address {address}");
        let listener = TcpListener::bind(address).map_err(|e| Error::io(shown(), e))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| Error::io(shown(), e))?;
        let address = listener.local_addr().map_err(|e| Error::io(shown(), e))?;
        let (wake, woken) = UnixStream::pair().map_err(|e| Error::io(shown(), e))?;
        let shared = Arc::new(Shared {
            store,
            tls,
            auth,
            export: ExportOptions {
                verify: options.verify,
            },
            log: options.access_log,
            closing: AtomicBool::new(false),
            connections: Mutex::new(0),
            freed: Condvar::new(),
            idle: Mutex::new(HashSet::new()),
        });
        let accepting = shared.clone();
        let acceptor = std::thread::Builder::new()
            .name("cstor-registry".into())
            .spawn(move || accept(&listener, &woken, &accepting))
            .map_err(|e| Error::io(shown(), e))?;
        Ok(RegistryServer {
            address,
            shared,
            wake: Some(wake),
            acceptor: Some(acceptor),
        })
    }

    /// The address it listens on (with the port picked when 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.address
    }

    /// Stops accepting; each open connection ends after the response it is sending, and those
    /// waiting for a request end now. Returns when every connection has ended, so every
    /// request answered has been given to the access log.
    pub fn close(&mut self) {
        self.shared.closing.store(true, Ordering::SeqCst);
        self.shared.freed.notify_all();
        for fd in self.shared.idle().iter() {
            // SAFETY: the fd is open while it is in the set (its thread takes it out, under the
            // lock held here, before the socket closes); shutdown only wakes its blocked read.
            unsafe { libc::shutdown(*fd, libc::SHUT_RDWR) };
        }
        drop(self.wake.take());
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        let mut open = self
            .shared
            .connections
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        while *open > 0 {
            open = self
                .shared
                .freed
                .wait(open)
                .unwrap_or_else(|p| p.into_inner());
        }
    }
}

impl Drop for RegistryServer {
    fn drop(&mut self) {
        self.close();
    }
}

/// Reads a listen address; anything short of an explicit IP is loopback.
pub fn parse_address(text: &str) -> Result<SocketAddr> {
    let text = text.trim();
    let loopback = |port| Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    if text.is_empty() {
        return loopback(DEFAULT_PORT);
    }
    let port = text
        .strip_prefix("localhost:")
        .or_else(|| text.strip_prefix(':'))
        .unwrap_or(text);
    if let Ok(port) = port.parse::<u16>() {
        return loopback(port);
    }
    text.parse().map_err(|_| {
        Error::InvalidArgument(format!(
            "{text:?}: give the address to listen on as IP:PORT, [IPv6]:PORT or PORT (loopback)"
        ))
    })
}

/// Accepts connections until `woken` says to stop, one thread each, at most
/// [`MAX_CONNECTIONS`] at once.
fn accept(listener: &TcpListener, woken: &UnixStream, shared: &Arc<Shared>) {
    loop {
        {
            let mut open = shared.connections.lock().unwrap_or_else(|p| p.into_inner());
            while *open >= MAX_CONNECTIONS && !shared.closing.load(Ordering::SeqCst) {
                open = shared.freed.wait(open).unwrap_or_else(|p| p.into_inner());
            }
        }
        let mut fds = [
            libc::pollfd {
                fd: listener.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: woken.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: two valid pollfds, no timeout.
        let ready = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if shared.closing.load(Ordering::SeqCst) || fds[1].revents != 0 {
            return;
        }
        if ready <= 0 {
            continue;
        }
        let (stream, remote) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(_) => {
                // Out of fds, say: let the connections being served finish some work.
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        *shared.connections.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        let slot = Slot(shared.clone());
        let spawned = std::thread::Builder::new()
            .name("cstor-registry-conn".into())
            .spawn(move || {
                let slot = slot;
                serve_connection(&slot.0, stream, remote);
            });
        // A thread that could not start dropped its slot and its stream with it.
        drop(spawned);
    }
}

impl Shared {
    fn idle(&self) -> std::sync::MutexGuard<'_, HashSet<RawFd>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One of the [`MAX_CONNECTIONS`], given back when the connection's thread ends.
struct Slot(Arc<Shared>);

impl Drop for Slot {
    fn drop(&mut self) {
        *self.0.connections.lock().unwrap_or_else(|p| p.into_inner()) -= 1;
        self.0.freed.notify_all();
    }
}

/// A client's connection, in plain TCP or TLS.
enum Connection {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ServerConnection, TcpStream>>),
}

impl Read for Connection {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Connection::Plain(s) => s.read(buf),
            Connection::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Connection {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Connection::Plain(s) => s.write(buf),
            Connection::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Connection::Plain(s) => s.flush(),
            Connection::Tls(s) => s.flush(),
        }
    }
}

/// Sets how long the next read of `fd` may wait.
fn set_read_timeout(fd: RawFd, timeout: Duration) -> std::io::Result<()> {
    // SAFETY: `fd` is the connection's socket, open for as long as the connection is served.
    let socket = unsafe { BorrowedFd::borrow_raw(fd) };
    rustix::net::sockopt::set_socket_timeout(
        socket,
        rustix::net::sockopt::Timeout::Recv,
        Some(timeout.max(Duration::from_millis(1))),
    )
    .map_err(Into::into)
}

/// `TCP_USER_TIMEOUT`: the kernel drops the connection when sent data stays unacknowledged —
/// or the client's window stays shut — for that long, which ends a blocked `sendfile`.
fn set_user_timeout(stream: &TcpStream, timeout: Duration) {
    let millis = timeout.as_millis().min(u128::from(u32::MAX)) as libc::c_uint;
    // SAFETY: setsockopt on an open socket with a c_uint option of the right size.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_USER_TIMEOUT,
            (&millis as *const libc::c_uint).cast(),
            std::mem::size_of::<libc::c_uint>() as libc::socklen_t,
        );
    }
}

fn serve_connection(shared: &Shared, stream: TcpStream, remote: SocketAddr) {
    if stream.set_nonblocking(false).is_err() {
        return;
    }
    let _ = stream.set_nodelay(true);
    set_user_timeout(&stream, IDLE_TIMEOUT);
    let fd = stream.as_raw_fd();
    let mut connection = match &shared.tls {
        None => Connection::Plain(stream),
        Some(config) => match rustls::ServerConnection::new(config.clone()) {
            Ok(tls) => Connection::Tls(Box::new(rustls::StreamOwned::new(tls, stream))),
            Err(_) => return,
        },
    };
    let mut reader = HeadReader::default();
    loop {
        // Idle (and so woken by `close`) while waiting for the request; `close` sets `closing`
        // before it looks at the idle set, so either it wakes this read or this sees `closing`.
        shared.idle().insert(fd);
        if shared.closing.load(Ordering::SeqCst) {
            shared.idle().remove(&fd);
            break;
        }
        let deadline = Instant::now() + IDLE_TIMEOUT;
        let request = reader.read(&mut connection, deadline, |left| set_read_timeout(fd, left));
        shared.idle().remove(&fd);
        let (started, time) = (Instant::now(), SystemTime::now());
        let log = |request: Option<&Request>, user, status, bytes, error| {
            if let Some(log) = &shared.log {
                log(&AccessEntry {
                    time,
                    remote,
                    user,
                    method: request.map_or_else(|| "-".into(), |r| r.method.clone()),
                    target: request.map_or_else(|| "-".into(), target),
                    status,
                    bytes,
                    user_agent: request.and_then(|r| r.header("user-agent").map(str::to_owned)),
                    duration: started.elapsed(),
                    error,
                });
            }
        };
        let request = match request {
            Ok(request) => request,
            Err(HeadError::Closed) => return,
            Err(HeadError::TooLarge) => {
                let response = Response::error(431, "UNSUPPORTED", "the request head is too large");
                let (bytes, _) = send(shared, &mut connection, response, true);
                return log(None, None, 431, bytes, None);
            }
            Err(HeadError::Malformed(detail)) => {
                let message = format!("not an HTTP/1.1 request: {detail}");
                let response = Response::error(400, "UNSUPPORTED", message.clone());
                let (bytes, _) = send(shared, &mut connection, response, true);
                return log(None, None, 400, bytes, Some(message));
            }
        };
        let (user, response) = match &shared.auth {
            None => (None, routes::respond(&shared.store, &request)),
            Some(auth) => match auth.check(request.header("authorization")) {
                Some(user) => (Some(user), routes::respond(&shared.store, &request)),
                None => (None, unauthorized()),
            },
        };
        let close =
            !request.keep_alive() || request.has_body() || shared.closing.load(Ordering::SeqCst);
        let status = response.head.status;
        let (bytes, error) = send(shared, &mut connection, response, close);
        let broke_off = error.is_some();
        log(Some(&request), user, status, bytes, error);
        if close || broke_off {
            break;
        }
    }
    if let Connection::Tls(tls) = &mut connection {
        tls.conn.send_close_notify();
        let _ = tls.flush();
    }
}

fn unauthorized() -> Response {
    Response::error(401, "UNAUTHORIZED", "authentication required")
        .header("WWW-Authenticate", "Basic realm=\"cstor\"")
}

fn target(request: &Request) -> String {
    if request.query.is_empty() {
        request.path.clone()
    } else {
        format!("{}?{}", request.path, request.query)
    }
}

/// Sends a response; returns the body bytes sent, and why it broke off if it did (the
/// connection must then be closed: the client was promised more).
fn send(
    shared: &Shared,
    connection: &mut Connection,
    response: Response,
    close: bool,
) -> (u64, Option<String>) {
    let Response { head, body } = response;
    let (layer, range, guard) = match body {
        Body::Layer {
            layer,
            range,
            _guard,
        } => (layer, range, _guard),
        Body::None => {
            let sent = http::send_small(connection, &head, &[], close);
            return (0, sent.err().map(|e| e.to_string()));
        }
        Body::Bytes(bytes) => {
            let sent = http::send_small(connection, &head, &bytes, close);
            return match sent {
                Ok(()) => (bytes.len() as u64, None),
                Err(e) => (0, Some(e.to_string())),
            };
        }
    };
    let expected = range.end - range.start;
    if let Err(e) = connection
        .write_all(&head.to_bytes(close))
        .and_then(|()| connection.flush())
    {
        return (0, Some(e.to_string()));
    }
    let written = match connection {
        Connection::Plain(stream) => stream
            .try_clone()
            .map_err(|e| Error::io("<socket>", e))
            .and_then(|socket| {
                let mut socket = File::from(OwnedFd::from(socket));
                let writer = TarWriter::new(&mut socket, shared.export).window(range);
                shared.store.write_layer(&layer, writer)
            }),
        Connection::Tls(stream) => {
            let writer = TarWriter::to_writer(&mut **stream, shared.export).window(range);
            shared.store.write_layer(&layer, writer).and_then(|stats| {
                stream.flush().map_err(|e| Error::io("<socket>", e))?;
                Ok(stats)
            })
        }
    };
    drop(guard);
    match written {
        Ok(stats) if stats.bytes == expected => (expected, None),
        Ok(stats) => (
            stats.bytes,
            Some(format!(
                "layer {}: its tar is {} bytes here, not the {expected} its record gives",
                layer.id(),
                stats.bytes
            )),
        ),
        Err(e) => (0, Some(e.to_string())),
    }
}
