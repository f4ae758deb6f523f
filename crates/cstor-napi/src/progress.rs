//! Progress of long work, forwarded to an optional JavaScript callback.

use cstor_core::progress::Progress;
use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;

/// A JavaScript callback that receives progress reports.
pub type ProgressCallback = ThreadsafeFunction<ProgressInfo, (), ProgressInfo, Status, false>;

/// Forwards core progress reports to an optional JavaScript callback.
pub(crate) fn reporter(callback: Option<ProgressCallback>) -> impl FnMut(Progress) {
    move |progress| {
        if let Some(callback) = &callback {
            callback.call(progress.into(), ThreadsafeFunctionCallMode::NonBlocking);
        }
    }
}

#[napi(object)]
pub struct ProgressInfo {
    /// The layer being applied, 0 = base.
    pub layer: u32,
    pub layers: u32,
    pub bytes: i64,
    pub total_bytes: i64,
}

impl From<Progress> for ProgressInfo {
    fn from(p: Progress) -> Self {
        ProgressInfo {
            layer: p.layer as u32,
            layers: p.layers as u32,
            bytes: p.bytes as i64,
            total_bytes: p.total_bytes as i64,
        }
    }
}
