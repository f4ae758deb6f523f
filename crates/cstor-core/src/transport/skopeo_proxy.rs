//! A client of stock skopeo's `experimental-image-proxy`: images from any transport skopeo knows
//! (`oci:`, `docker-archive:`, `containers-storage:`, `docker://`) without writing them anywhere.
//!
//! The protocol (FORMAT.md, checked against Debian's skopeo 1.9.3, protocol 0.2.3): a
//! `socketpair(AF_UNIX, SOCK_SEQPACKET)`, one JSON request `{"method", "args"}` per packet, one
//! reply `{"success", "value", "pipeid", "error"}` per packet. Bulk data (manifest, config,
//! blobs) comes on a pipe whose read end rides the reply as SCM_RIGHTS. skopeo 1.9 closes the
//! pipe's write end only inside `FinishPipe(pipeid)`, after its writer is done, so the client
//! must call `FinishPipe` *while* reading: reading to EOF first waits forever (FORMAT.md's "read
//! to EOF, then FinishPipe" deadlocks against this skopeo), and `FinishPipe` alone waits on a
//! full pipe. Its reply says whether the transfer succeeded. Replies are received
//! into a buffer sized by peeking at the packet, never a fixed one. `Shutdown` gets no reply: the
//! proxy just exits.

use std::fs::File;
use std::io::{IoSliceMut, Read};
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;

use rustix::io::Errno;
use rustix::net::{
    recvmsg, send, socketpair, AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags,
    SendFlags, SocketFlags, SocketType,
};
use serde_json::{json, Value};

use crate::error::{Error, Result};

/// A running proxy. Calls are serialized (one request, one reply on the socket); a blob's pipe
/// is read outside the lock, so several blobs can stream at once.
pub struct ImageProxy {
    /// `None` once shut down.
    socket: Mutex<Option<OwnedFd>>,
    child: Mutex<Child>,
    pub protocol: String,
}

/// A proxy call's answer: its value, and the pipe of a bulk transfer with its id.
struct Reply {
    value: Value,
    pipe: Option<(File, u64)>,
}

fn proxy_error(detail: impl Into<String>) -> Error {
    Error::Remote {
        code: "EREMOTE",
        message: format!("skopeo image proxy: {}", detail.into()),
    }
}

impl ImageProxy {
    /// Starts `skopeo experimental-image-proxy` with `options` (e.g. `--tls-verify=false` for a
    /// plain-HTTP registry) and checks it speaks protocol 0.2 or later.
    pub fn start(skopeo: &Path, options: &[String]) -> Result<ImageProxy> {
        let flags = SocketFlags::CLOEXEC;
        let (ours, theirs) = socketpair(AddressFamily::UNIX, SocketType::SEQPACKET, flags, None)
            .map_err(|e| Error::io("socketpair", e.into()))?;
        let fd = theirs.as_raw_fd();
        let mut command = Command::new(skopeo);
        command
            .arg("experimental-image-proxy")
            .args(options)
            .args(["--sockfd", &fd.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        // SAFETY: between fork and exec only fcntl runs, which is async-signal-safe; it clears
        // close-on-exec on the one fd the child is meant to inherit.
        unsafe {
            command.pre_exec(move || {
                if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().map_err(|e| Error::io(skopeo, e))?;
        drop(theirs);
        let mut proxy = ImageProxy {
            socket: Mutex::new(Some(ours)),
            child: Mutex::new(child),
            protocol: String::new(),
        };
        let version = proxy.call("Initialize", json!([]))?.value;
        let version = version.as_str().unwrap_or_default().to_owned();
        let mut numbers = version.split('.').map(|n| n.parse::<u32>().unwrap_or(0));
        let (major, minor) = (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0));
        if major == 0 && minor < 2 {
            return Err(Error::Unsupported {
                what: format!("skopeo image proxy protocol {version:?} (0.2 or later needed)"),
            });
        }
        proxy.protocol = version;
        Ok(proxy)
    }

    fn call(&self, method: &str, args: Value) -> Result<Reply> {
        let guard = self.socket.lock().unwrap_or_else(|p| p.into_inner());
        let socket = guard
            .as_ref()
            .ok_or_else(|| proxy_error(format!("{method}: the proxy was shut down")))?;
        let request = serde_json::to_vec(&json!({ "method": method, "args": args }))
            .map_err(|e| proxy_error(e.to_string()))?;
        send(socket, &request, SendFlags::NOSIGNAL)
            .map_err(|e| proxy_error(format!("{method}: sending: {e}")))?;
        let (bytes, fd) =
            receive_packet(socket).map_err(|e| proxy_error(format!("{method}: {e}")))?;
        drop(guard);
        let reply: Value = serde_json::from_slice(&bytes)
            .map_err(|e| proxy_error(format!("{method}: a reply that is not JSON: {e}")))?;
        if reply.get("success") != Some(&Value::Bool(true)) {
            let error = reply
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("failed");
            return Err(proxy_error(format!("{method}: {error}")));
        }
        let pipeid = reply.get("pipeid").and_then(Value::as_u64).unwrap_or(0);
        let pipe = match (fd, pipeid) {
            (Some(fd), id) if id != 0 => Some((File::from(fd), id)),
            (None, 0) => None,
            _ => {
                return Err(proxy_error(format!(
                    "{method}: a pipe id without its fd, or the reverse"
                )))
            }
        };
        Ok(Reply {
            value: reply.get("value").cloned().unwrap_or(Value::Null),
            pipe,
        })
    }

    /// Reads a bulk reply's pipe to the end while `FinishPipe` runs beside it (see the module
    /// doc), and fails if either does.
    fn drain(&self, method: &str, reply: Reply) -> Result<(Value, Vec<u8>)> {
        let Some((mut pipe, id)) = reply.pipe else {
            return Err(proxy_error(format!("{method}: no data pipe")));
        };
        let mut data = Vec::new();
        let (read, finished) = std::thread::scope(|scope| {
            let finisher = scope.spawn(|| self.finish_pipe(id));
            let read = pipe.read_to_end(&mut data);
            let finished = finisher
                .join()
                .unwrap_or_else(|_| Err(proxy_error("FinishPipe: the waiting thread panicked")));
            (read, finished)
        });
        finished?;
        read.map_err(|e| proxy_error(format!("{method}: {e}")))?;
        Ok((reply.value, data))
    }

    /// Opens an image (`oci:DIR:TAG`, `docker-archive:FILE`, `containers-storage:[...]NAME`,
    /// `docker://...`); returns the proxy's handle for it.
    pub fn open_image(&self, reference: &str) -> Result<u64> {
        let value = self.call("OpenImage", json!([reference]))?.value;
        value.as_u64().ok_or_else(|| {
            proxy_error(format!(
                "OpenImage: an image handle that is not a number: {value}"
            ))
        })
    }

    pub fn close_image(&self, image: u64) -> Result<()> {
        self.call("CloseImage", json!([image])).map(drop)
    }

    /// The image's manifest, as stored, and its digest.
    pub fn manifest(&self, image: u64) -> Result<(String, Vec<u8>)> {
        let (digest, bytes) =
            self.drain("GetManifest", self.call("GetManifest", json!([image]))?)?;
        Ok((digest.as_str().unwrap_or_default().to_owned(), bytes))
    }

    /// The image's config as the manifest names it (OCI form).
    pub fn config(&self, image: u64) -> Result<Vec<u8>> {
        Ok(self
            .drain("GetConfig", self.call("GetConfig", json!([image]))?)?
            .1)
    }

    /// The image's config exactly as stored.
    pub fn full_config(&self, image: u64) -> Result<Vec<u8>> {
        let reply = self.call("GetFullConfig", json!([image]))?;
        Ok(self.drain("GetFullConfig", reply)?.1)
    }

    /// A blob as a pipe and its id: read the pipe while [`ImageProxy::finish_pipe`] runs (it
    /// returns once skopeo has written everything, and only then does the pipe end). A
    /// `containers-storage:` source is asked by uncompressed digest. `size` is -1 when unknown.
    pub fn blob(&self, image: u64, digest: &str, size: i64) -> Result<(File, u64)> {
        self.call("GetBlob", json!([image, digest, size]))?
            .pipe
            .ok_or_else(|| proxy_error("GetBlob: no data pipe"))
    }

    /// Waits for the transfer on pipe `id` to be written, ends the pipe, and says whether it
    /// succeeded; call it while the pipe is being read.
    pub fn finish_pipe(&self, id: u64) -> Result<()> {
        self.call("FinishPipe", json!([id])).map(drop)
    }

    /// Asks the proxy to exit, waits for it, and closes the socket.
    pub fn shutdown(&self) -> Result<()> {
        let socket = self.socket.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(socket) = socket {
            let request = serde_json::to_vec(&json!({ "method": "Shutdown", "args": [] }))
                .map_err(|e| proxy_error(e.to_string()))?;
            // No reply comes: the proxy exits (a peer already gone is as good).
            let _ = send(&socket, &request, SendFlags::NOSIGNAL);
        }
        let mut child = self.child.lock().unwrap_or_else(|p| p.into_inner());
        child.wait().map_err(|e| Error::io("skopeo", e)).map(drop)
    }
}

impl Drop for ImageProxy {
    fn drop(&mut self) {
        let child = self.child.get_mut().unwrap_or_else(|p| p.into_inner());
        if matches!(child.try_wait(), Ok(None)) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Receives one packet and the fd riding it, sizing the buffer by peeking at the packet.
fn receive_packet(socket: &OwnedFd) -> std::result::Result<(Vec<u8>, Option<OwnedFd>), String> {
    let size = loop {
        // No room for control data: a peek must not install the packet's fd (it would be a copy).
        let mut nothing = [0u8; 0];
        let mut control = RecvAncillaryBuffer::new(&mut []);
        match recvmsg(
            socket,
            &mut [IoSliceMut::new(&mut nothing)],
            &mut control,
            RecvFlags::PEEK | RecvFlags::TRUNC,
        ) {
            Ok(peeked) => break peeked.bytes,
            Err(Errno::INTR) => {}
            Err(e) => return Err(format!("receiving: {e}")),
        }
    };
    if size == 0 {
        return Err("the proxy closed the connection".into());
    }
    let mut bytes = vec![0u8; size];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let received = loop {
        match recvmsg(
            socket,
            &mut [IoSliceMut::new(&mut bytes)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        ) {
            Ok(received) => break received,
            Err(Errno::INTR) => {}
            Err(e) => return Err(format!("receiving: {e}")),
        }
    };
    let mut fds: Vec<OwnedFd> = Vec::new();
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(received) = message {
            fds.extend(received);
        }
    }
    if fds.len() > 1 {
        return Err(format!("a reply with {} fds (one at most)", fds.len()));
    }
    bytes.truncate(received.bytes);
    Ok((bytes, fds.pop()))
}
