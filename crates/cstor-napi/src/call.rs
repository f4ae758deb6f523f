//! Calls of store operations from JavaScript: run here (`NativeStore.start`) or by a cstor
//! JSON-RPC server (`rpcStart` — the user-namespace helper of a rootless store, say), seen the
//! same way from JavaScript: a `NativeCall` whose `next()` gives the events the operation
//! emitted so far and, at the end, its result.
//!
//! Either way a thread produces the call's messages into a bounded queue and `next()` drains
//! it in batches, so a stream of many small events costs few promises, and an operation that
//! outruns JavaScript (a layer streamed as thousands of fds) waits instead of piling them up.

use std::fs::File;
use std::os::fd::{IntoRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError};
use std::sync::{Arc, Condvar, Mutex};

use cstor_core::ipc::rpc::{Client, Message as RpcMessage};
use cstor_core::ops::{self, Allowed, Call, Event, Gone, Sink};
use cstor_core::Store;
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::{blocking, to_js_error};

/// Messages queued before the producer waits for JavaScript to take them.
const QUEUE_MESSAGES: usize = 64;

/// A batch ends after this many fds (each event's fds are JavaScript's to close from then on)…
const BATCH_FDS: usize = 64;

/// …or this many bytes of event params.
const BATCH_BYTES: usize = 4 << 20;

/// What a call's producer sends.
enum Message {
    Event(Event),
    Done(cstor_core::Result<ops::Outcome>),
}

/// Whether JavaScript cancelled the call, for an operation waiting on it.
#[derive(Default)]
struct Cancelled {
    flag: Mutex<bool>,
    changed: Condvar,
}

impl Cancelled {
    fn set(&self) {
        *self.flag.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.changed.notify_all();
    }

    fn wait(&self) {
        let mut flag = self.flag.lock().unwrap_or_else(|p| p.into_inner());
        while !*flag {
            flag = self.changed.wait(flag).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// An operation's events, queued for JavaScript.
struct QueueSink {
    queue: SyncSender<Message>,
    cancelled: Arc<Cancelled>,
}

impl Sink for QueueSink {
    /// Fails once JavaScript dropped the queue (`cancel`); after a `stop` events still go, so
    /// a server's last access-log entries arrive.
    fn emit(&self, event: Event) -> std::result::Result<(), Gone> {
        self.queue.send(Message::Event(event)).map_err(|_| Gone)
    }

    fn wait_cancelled(&self) {
        self.cancelled.wait();
    }
}

/// A call in flight: its queue, and how to cancel it.
#[napi]
pub struct NativeCall {
    state: Arc<CallState>,
}

struct CallState {
    /// `None` once the result was taken or the call cancelled.
    queue: Mutex<Option<Receiver<Message>>>,
    /// `None` once the call ended: what it held (a connection to a server) is released then,
    /// not when the garbage collector gets to the `NativeCall`.
    cancel: Mutex<Option<Canceller>>,
}

/// How a call is ended from JavaScript's side.
trait Cancel: Send + Sync {
    /// Asks the operation to wind down; its last events and its result still come.
    fn stop(&self);
    /// Abandons the call: nothing more is read.
    fn cancel(&self);
}

type Canceller = Box<dyn Cancel>;

impl Cancel for Arc<Cancelled> {
    fn stop(&self) {
        self.set();
    }

    fn cancel(&self) {
        self.set();
    }
}

impl Cancel for cstor_core::ipc::rpc::HangUp {
    fn stop(&self) {
        cstor_core::ipc::rpc::HangUp::stop(self);
    }

    fn cancel(&self) {
        self.hang_up();
    }
}

impl NativeCall {
    fn new(queue: Receiver<Message>, cancel: Canceller) -> Self {
        NativeCall {
            state: Arc::new(CallState {
                queue: Mutex::new(Some(queue)),
                cancel: Mutex::new(Some(cancel)),
            }),
        }
    }
}

impl CallState {
    fn cancel(&self) {
        if let Some(cancel) = self.cancel.lock().unwrap_or_else(|p| p.into_inner()).take() {
            cancel.cancel();
        }
    }

    fn stop(&self) {
        if let Some(cancel) = self
            .cancel
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            cancel.stop();
        }
    }

    /// Forgets how to cancel a call that has ended.
    fn ended(&self) {
        self.cancel.lock().unwrap_or_else(|p| p.into_inner()).take();
    }
}

/// The events and, at the end, the result of a call, as `next()` gives them.
#[napi(object)]
pub struct CallBatch {
    pub events: Vec<CallEvent>,
    /// The call ended: `result` (JSON text) and `fds` are its outcome.
    pub done: bool,
    pub result: Option<String>,
    pub fds: Vec<i32>,
}

/// One event: its name, its params (JSON text), and fds that are now the caller's.
#[napi(object)]
pub struct CallEvent {
    pub method: String,
    pub params: String,
    pub fds: Vec<i32>,
}

#[napi]
impl NativeCall {
    /// The events queued so far (waiting for one when there are none), and the result once the
    /// call has ended; a failed call rejects with its error.
    #[napi]
    pub async fn next(&self) -> Result<CallBatch> {
        let state = self.state.clone();
        blocking(move || {
            let mut guard = state.queue.lock().unwrap_or_else(|p| p.into_inner());
            let Some(receiver) = guard.as_ref() else {
                return Err(cstor_core::Error::InvalidArgument(
                    "the call has ended".into(),
                ));
            };
            let mut batch = CallBatch {
                events: Vec::new(),
                done: false,
                result: None,
                fds: Vec::new(),
            };
            let (mut fds, mut bytes) = (0, 0);
            let mut next = receiver.recv().map_err(|_| gone());
            loop {
                match next? {
                    Message::Event(event) => {
                        fds += event.fds.len();
                        let params = event.params.to_string();
                        bytes += params.len();
                        batch.events.push(CallEvent {
                            method: event.method,
                            params,
                            fds: hand_over(event.fds),
                        });
                    }
                    Message::Done(outcome) => {
                        *guard = None;
                        state.ended();
                        let outcome = outcome?;
                        batch.done = true;
                        batch.result = Some(outcome.result.to_string());
                        batch.fds = hand_over(outcome.fds);
                        return Ok(batch);
                    }
                }
                if fds >= BATCH_FDS || bytes >= BATCH_BYTES {
                    return Ok(batch);
                }
                next = match receiver.try_recv() {
                    Ok(message) => Ok(message),
                    Err(TryRecvError::Empty) => return Ok(batch),
                    Err(TryRecvError::Disconnected) => Err(gone()),
                };
            }
        })
        .await
    }

    /// Asks the call to wind down — a server stops listening — while its last events and its
    /// result still come through `next()`.
    #[napi]
    pub fn stop(&self) {
        self.state.stop();
    }

    /// Abandons the call: a server stops, a stream stops producing; queued events (and their
    /// fds) are dropped.
    #[napi]
    pub fn cancel(&self) {
        self.state.cancel();
        // The queue is dropped once no `next()` holds it, which wakes a producer waiting to send.
        let state = self.state.clone();
        std::thread::spawn(move || {
            state.queue.lock().unwrap_or_else(|p| p.into_inner()).take();
        });
    }
}

impl Drop for NativeCall {
    fn drop(&mut self) {
        self.state.cancel();
    }
}

fn gone() -> cstor_core::Error {
    cstor_core::Error::Remote {
        code: "EINTERNAL",
        message: "the call ended without a result".into(),
    }
}

/// Fds handed over to JavaScript, which closes them.
fn hand_over(fds: Vec<OwnedFd>) -> Vec<i32> {
    fds.into_iter().map(IntoRawFd::into_raw_fd).collect()
}

/// Starts `method` on `store` on a thread of its own.
pub(crate) fn local_call(
    store: Arc<Store>,
    method: String,
    params: String,
    fds: Vec<OwnedFd>,
) -> Result<NativeCall> {
    let params = parse_params(&params).map_err(to_js_error)?;
    let (queue, receiver) = sync_channel(QUEUE_MESSAGES);
    let cancelled = Arc::new(Cancelled::default());
    let sink = Arc::new(QueueSink {
        queue: queue.clone(),
        cancelled: cancelled.clone(),
    });
    spawn(move || {
        let call = Call::new(fds, sink, None);
        let outcome = ops::dispatch(&store, &method, params, call, Allowed::ReadWrite)
            .map_err(ops::Failure::into_error);
        let _ = queue.send(Message::Done(outcome));
    })?;
    Ok(NativeCall::new(receiver, Box::new(cancelled)))
}

/// Starts `method` on the cstor server listening at `path`, over a connection of its own,
/// sending `fds` along (they stay the caller's) and `cwd`, the directory relative paths in
/// `params` are relative to.
#[napi]
pub fn rpc_start(
    path: String,
    method: String,
    params: String,
    fds: Option<Vec<i32>>,
    cwd: Option<String>,
) -> Result<NativeCall> {
    let start = || -> cstor_core::Result<(Client, cstor_core::ipc::rpc::HangUp)> {
        let params = parse_params(&params)?;
        let fds = duplicate_fds(fds.unwrap_or_default())?;
        let mut client = Client::connect(path.as_ref())?;
        client.request(&method, params, &fds, cwd.map(PathBuf::from).as_deref())?;
        let hang_up = client.hang_up_handle()?;
        Ok((client, hang_up))
    };
    let (mut client, hang_up) = start().map_err(to_js_error)?;
    let (queue, receiver) = sync_channel(QUEUE_MESSAGES);
    spawn(move || loop {
        let message = match client.next_message() {
            Ok(RpcMessage::Notification {
                method,
                params,
                fds,
            }) => Message::Event(Event {
                method,
                params,
                fds,
            }),
            Ok(RpcMessage::Result { result, fds }) => {
                Message::Done(Ok(ops::Outcome { result, fds }))
            }
            Err(e) => Message::Done(Err(e)),
        };
        let done = matches!(message, Message::Done(_));
        if queue.send(message).is_err() || done {
            return;
        }
    })?;
    Ok(NativeCall::new(receiver, Box::new(hang_up)))
}

fn parse_params(params: &str) -> cstor_core::Result<serde_json::Value> {
    serde_json::from_str(params)
        .map_err(|e| cstor_core::Error::InvalidArgument(format!("params are not JSON: {e}")))
}

fn spawn(work: impl FnOnce() + Send + 'static) -> Result<()> {
    std::thread::Builder::new()
        .name("cstor-call".into())
        .spawn(work)
        .map(drop)
        .map_err(|e| {
            to_js_error(cstor_core::Error::Io {
                path: PathBuf::new(),
                source: e,
            })
        })
}

/// Private duplicates of a caller's fds, so the core owns (and closes) what it uses.
pub(crate) fn duplicate_fds(fds: Vec<i32>) -> cstor_core::Result<Vec<OwnedFd>> {
    fds.into_iter()
        .map(|fd| crate::duplicate_fd(fd).map(|file: File| file.into()))
        .collect()
}
