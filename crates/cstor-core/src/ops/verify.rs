//! Checking the store, or one image, for damage.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::error::Result;
use crate::ops::{Call, Operation};
use crate::store::Store;
use crate::verify::{Finding, VerifyOptions};

/// The whole store, or only the image `image` names; `quick`: no file content read.
#[derive(Debug, Deserialize, TS)]
#[ts(optional_fields)]
pub struct Verify {
    #[serde(default)]
    pub image: Option<String>,
    #[serde(default)]
    pub quick: Option<bool>,
}

/// What a check looked at and found; `clean` when no finding is an error.
#[derive(Debug, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct VerifyReport {
    pub clean: bool,
    pub findings: Vec<Finding>,
    pub images: usize,
    pub layers: usize,
    /// Bytes of layer tar rebuilt and hashed.
    pub bytes: u64,
}

impl Operation for Verify {
    const METHOD: &'static str = "Verify";
    type Output = VerifyReport;

    fn run(self, store: &Arc<Store>, call: &mut Call) -> Result<VerifyReport> {
        let image = self.image.map(|r| store.image(&r)).transpose()?;
        let options = VerifyOptions {
            quick: self.quick.unwrap_or(false),
        };
        let report = store.verify(image.as_ref(), options, &mut call.progress())?;
        Ok(VerifyReport {
            clean: report.is_clean(),
            findings: report.findings,
            images: report.images,
            layers: report.layers,
            bytes: report.bytes,
        })
    }
}
