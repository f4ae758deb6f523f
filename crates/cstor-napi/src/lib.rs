//! The Node.js binding of cstor-core.
//!
//! It decides nothing: store operations (`cstor_core::ops`) are started by name with JSON
//! params, here or on a cstor server (`call.rs`), and their events and results go back to
//! JavaScript as JSON text; the few functions that need no store (tar comparison, pipes,
//! splitfdstream assembly, skopeo's proxy) convert their values. Blocking work runs off the JS
//! thread, and each core error becomes a JavaScript error whose message starts with its stable
//! code (`[ENOIMAGE] …`), which `ts/errors.ts` maps to a typed error class. A panic in the core
//! becomes an `EINTERNAL` error, never an abort of the Node process.

pub mod call;
pub mod content;
pub mod proxy;
pub mod store;

use std::fs::File;
use std::os::fd::{FromRawFd, OwnedFd};

use napi::bindgen_prelude::*;

/// Maps a core error to the message format `ts/errors.ts` parses.
fn to_js_error(e: cstor_core::Error) -> Error {
    Error::new(Status::GenericFailure, format!("[{}] {e}", e.code()))
}

/// Runs `work` on tokio's blocking pool and converts its outcome.
async fn blocking<T, F>(work: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> cstor_core::Result<T> + Send + 'static,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result.map_err(to_js_error),
        Err(e) => Err(Error::new(
            Status::GenericFailure,
            format!("[EINTERNAL] cstor failed internally: {e}"),
        )),
    }
}

/// A private duplicate of a caller's fd, so the core owns (and closes) what it writes to.
fn duplicate_fd(fd: i32) -> cstor_core::Result<File> {
    // SAFETY: F_DUPFD_CLOEXEC on any integer is safe; failure is reported through errno.
    let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if dup < 0 {
        return Err(cstor_core::Error::InvalidArgument(format!(
            "fd {fd} is not open: {}",
            std::io::Error::last_os_error()
        )));
    }
    // SAFETY: `dup` is a fresh descriptor that nothing else owns.
    Ok(File::from(unsafe { OwnedFd::from_raw_fd(dup) }))
}

pub(crate) fn path_string(path: &std::path::Path) -> String {
    path.to_string_lossy().into_owned()
}
