//! JSON messages with file descriptors over a Unix stream socket (`SCM_RIGHTS`).
//!
//! The framing the seeds' JSON-RPC uses (FORMAT.md, "JSON-RPC with fd passing"): messages are
//! JSON values back to back (cstor ends each with a newline); one that carries fds says so with a
//! top-level `"fds": N`, and the fds ride as ancillary data on the bytes — in batches (the
//! protocol allows up to 500 per `sendmsg`, Linux up to 253: `SCM_MAX_FD`), a message with more
//! sending further batches on single spaces (JSON whitespace) after it. A receiver queues fds in
//! arrival order and hands a message its first `N`.
//!
//! Blocking by design: both ends are served on threads (the work behind them is disk I/O).

use std::collections::VecDeque;
use std::io::{IoSlice, IoSliceMut, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;

use rustix::io::Errno;
use rustix::net::{
    recvmsg, sendmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags,
    SendAncillaryBuffer, SendAncillaryMessage, SendFlags,
};
use serde_json::Value;

/// The most fds one `sendmsg` carries: Linux refuses more than `SCM_MAX_FD` (253) with EINVAL.
pub const MAX_FDS_PER_SEND: usize = 253;

/// A message larger than this is refused: a peer must not make us buffer without bound.
pub const MAX_MESSAGE_BYTES: usize = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error("the message promised {promised} fds, {received} arrived")]
    MissingFds { promised: usize, received: usize },
}

/// Sends one JSON message (a newline is added) with `fds` attached.
pub fn send(socket: &UnixStream, message: &Value, fds: &[BorrowedFd<'_>]) -> Result<(), WireError> {
    let mut bytes = serde_json::to_vec(message).map_err(|e| WireError::Malformed(e.to_string()))?;
    bytes.push(b'\n');
    let mut batches = fds.chunks(MAX_FDS_PER_SEND);
    send_with(socket, &bytes, batches.next().unwrap_or(&[]))?;
    for batch in batches {
        send_with(socket, b" ", batch)?;
    }
    Ok(())
}

/// Writes all of `bytes`, the fds riding on the first `sendmsg`.
fn send_with(mut socket: &UnixStream, bytes: &[u8], fds: &[BorrowedFd<'_>]) -> std::io::Result<()> {
    let mut space = vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(fds.len()))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(std::io::Error::other("too many fds for one message"));
    }
    let sent = loop {
        match sendmsg(
            socket,
            &[IoSlice::new(bytes)],
            &mut control,
            SendFlags::NOSIGNAL,
        ) {
            Ok(n) => break n,
            Err(Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    };
    socket.write_all(&bytes[sent..])
}

/// Reads messages and the fds that came with them.
pub struct Receiver {
    socket: UnixStream,
    buffer: Vec<u8>,
    /// Bytes of `buffer` already handed out as messages.
    consumed: usize,
    fds: VecDeque<OwnedFd>,
}

impl Receiver {
    pub fn new(socket: UnixStream) -> Self {
        Receiver {
            socket,
            buffer: Vec::new(),
            consumed: 0,
            fds: VecDeque::new(),
        }
    }

    pub fn socket(&self) -> &UnixStream {
        &self.socket
    }

    /// The next message and its fds; `None` when the peer closed between messages.
    pub fn next_message(&mut self) -> Result<Option<(Value, Vec<OwnedFd>)>, WireError> {
        loop {
            let pending = &self.buffer[self.consumed..];
            let mut values = serde_json::Deserializer::from_slice(pending).into_iter::<Value>();
            match values.next() {
                Some(Ok(message)) => {
                    self.consumed += values.byte_offset();
                    let promised = match message.get("fds") {
                        None => 0,
                        Some(n) => n
                            .as_u64()
                            .and_then(|n| usize::try_from(n).ok())
                            .ok_or_else(|| WireError::Malformed("\"fds\" is not a count".into()))?,
                    };
                    while self.fds.len() < promised {
                        if self.fill()? == 0 {
                            return Err(WireError::MissingFds {
                                promised,
                                received: self.fds.len(),
                            });
                        }
                    }
                    return Ok(Some((message, self.fds.drain(..promised).collect())));
                }
                Some(Err(e)) if e.is_eof() => {}
                Some(Err(e)) => return Err(WireError::Malformed(e.to_string())),
                None => {}
            }
            if self.fill()? == 0 {
                let rest = &self.buffer[self.consumed..];
                return if rest.iter().all(u8::is_ascii_whitespace) {
                    Ok(None)
                } else {
                    Err(WireError::Malformed(
                        "the peer closed inside a message".into(),
                    ))
                };
            }
        }
    }

    /// Receives more bytes and fds; 0 at end of stream.
    fn fill(&mut self) -> Result<usize, WireError> {
        if self.consumed > 0 {
            self.buffer.drain(..self.consumed);
            self.consumed = 0;
        }
        if self.buffer.len() > MAX_MESSAGE_BYTES {
            return Err(WireError::Malformed(format!(
                "a message longer than {MAX_MESSAGE_BYTES} bytes"
            )));
        }
        let mut chunk = vec![0u8; 64 << 10];
        let mut space =
            vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS_PER_SEND))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let received = loop {
            match recvmsg(
                self.socket.as_fd(),
                &mut [IoSliceMut::new(&mut chunk)],
                &mut control,
                RecvFlags::CMSG_CLOEXEC,
            ) {
                Ok(received) => break received,
                Err(Errno::INTR) => {}
                Err(e) => return Err(WireError::Io(e.into())),
            }
        };
        for message in control.drain() {
            if let RecvAncillaryMessage::ScmRights(fds) = message {
                self.fds.extend(fds);
            }
        }
        if received.flags.contains(ReturnFlags::CTRUNC) {
            return Err(WireError::Malformed(
                "fds were dropped: more than one batch arrived at once".into(),
            ));
        }
        self.buffer.extend_from_slice(&chunk[..received.bytes]);
        Ok(received.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::os::fd::AsFd;

    #[test]
    fn messages_keep_their_fds_across_batches() {
        let (a, b) = UnixStream::pair().unwrap();
        let files: Vec<std::fs::File> = (0..1200).map(|_| tempfile::tempfile().unwrap()).collect();
        let fds: Vec<BorrowedFd<'_>> = files.iter().map(|f| f.as_fd()).collect();
        send(&a, &json!({"id": 1, "fds": 1200}), &fds).unwrap();
        send(&a, &json!({"id": 2}), &[]).unwrap();
        drop(a);
        let mut receiver = Receiver::new(b);
        let (first, first_fds) = receiver.next_message().unwrap().unwrap();
        assert_eq!(first["id"], 1);
        assert_eq!(first_fds.len(), 1200);
        let (second, second_fds) = receiver.next_message().unwrap().unwrap();
        assert_eq!(second["id"], 2);
        assert!(second_fds.is_empty());
        assert!(receiver.next_message().unwrap().is_none());
    }

    #[test]
    fn a_message_whose_fds_never_come_is_an_error() {
        let (a, b) = UnixStream::pair().unwrap();
        send(&a, &json!({"id": 1, "fds": 2}), &[]).unwrap();
        drop(a);
        let mut receiver = Receiver::new(b);
        assert!(matches!(
            receiver.next_message(),
            Err(WireError::MissingFds {
                promised: 2,
                received: 0
            })
        ));
    }
}
