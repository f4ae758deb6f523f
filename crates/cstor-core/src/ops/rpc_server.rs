//! The operations over JSON-RPC: requests dispatched to [`crate::ops`], events sent as
//! notifications, failures as JSON-RPC errors (see [`crate::ipc::rpc`] for the wire protocol).
//!
//! This is what `cstor serve --socket` answers and what the user-namespace helper of a rootless
//! store is: every operation the binding can call, a JSON-RPC client can call the same way.

use std::sync::Arc;

use crate::ipc::rpc::{self, Handler, Peer, Request, Response};
use crate::ops::{dispatch, Allowed, Call, Event, Failure, Gone, Sink};
use crate::store::Store;

/// A server's answer to each request: the operation it names, run on `store`.
pub fn handler(store: Arc<Store>, allowed: Allowed) -> Arc<Handler> {
    Arc::new(move |request: Request, peer: &Peer| {
        let sink = Arc::new(PeerSink(peer.clone()));
        let call = Call::new(request.fds, sink, request.cwd);
        match dispatch(&store, &request.method, request.params, call, allowed) {
            Ok(outcome) => Response::Result(outcome.result, outcome.fds),
            Err(failure) => failure_response(failure),
        }
    })
}

fn failure_response(failure: Failure) -> Response {
    let (code, message, cstor) = match failure {
        Failure::UnknownMethod(method) => {
            (rpc::METHOD_NOT_FOUND, format!("no method {method:?}"), None)
        }
        Failure::ReadOnly(message) => (rpc::METHOD_NOT_FOUND, message, None),
        Failure::Params(message) => (rpc::INVALID_PARAMS, message, Some("EINVAL")),
        Failure::Store(e) => (rpc::STORE_ERROR, e.to_string(), Some(e.code())),
    };
    Response::Error {
        code,
        message,
        cstor,
    }
}

/// Events as notifications on the caller's connection; cancelled when it closes.
struct PeerSink(Peer);

impl Sink for PeerSink {
    fn emit(&self, event: Event) -> Result<(), Gone> {
        self.0
            .notify(&event.method, event.params, &event.fds)
            .map_err(|_| Gone)
    }

    fn wait_cancelled(&self) {
        self.0.wait_closed();
    }
}
