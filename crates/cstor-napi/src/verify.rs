//! `Storage.verify()`: a store check's report as JavaScript objects.

use cstor_core::verify::{Finding, VerifyOptions, VerifyReport};
use napi::bindgen_prelude::*;
use napi::threadsafe_function::ThreadsafeFunction;
use napi_derive::napi;

use crate::blocking;
use crate::progress::{reporter, ProgressInfo};
use crate::store::NativeStore;

/// One thing a check found: `severity` is `error`, `warning` or `info`; `kind` a stable name
/// such as `layer-content-modified`; `subject` the layer ID, image ID or link it is about;
/// `path` the path in the layer, for a finding about one.
#[napi(object)]
pub struct FindingInfo {
    pub severity: String,
    pub kind: String,
    pub subject: String,
    pub path: Option<String>,
    pub message: String,
}

impl From<Finding> for FindingInfo {
    fn from(f: Finding) -> Self {
        FindingInfo {
            severity: f.severity.name().to_owned(),
            kind: f.kind.name().to_owned(),
            subject: f.subject,
            path: f.path,
            message: f.message,
        }
    }
}

#[napi(object)]
pub struct VerifyReportInfo {
    /// No finding of severity `error`.
    pub clean: bool,
    pub findings: Vec<FindingInfo>,
    pub images: u32,
    pub layers: u32,
    /// Bytes of layer tar rebuilt and hashed.
    pub bytes: i64,
}

impl From<VerifyReport> for VerifyReportInfo {
    fn from(r: VerifyReport) -> Self {
        VerifyReportInfo {
            clean: r.is_clean(),
            images: r.images as u32,
            layers: r.layers as u32,
            bytes: r.bytes as i64,
            findings: r.findings.into_iter().map(FindingInfo::from).collect(),
        }
    }
}

#[napi]
impl NativeStore {
    /// Checks the whole store, or only the image `reference` names, for damage; `quick`: no
    /// file content read.
    #[napi]
    pub async fn verify(
        &self,
        reference: Option<String>,
        quick: bool,
        on_progress: Option<ThreadsafeFunction<ProgressInfo, (), ProgressInfo, Status, false>>,
    ) -> Result<VerifyReportInfo> {
        let store = self.store()?;
        blocking(move || {
            let image = reference.map(|r| store.image(&r)).transpose()?;
            let options = VerifyOptions { quick };
            store.verify(image.as_ref(), options, &mut reporter(on_progress))
        })
        .await
        .map(VerifyReportInfo::from)
    }
}
