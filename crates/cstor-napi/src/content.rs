//! Content work that needs no store: comparing tars, rebuilding a tar from a splitfdstream,
//! and a pipe for streaming into Node.

use std::fs::File;

use cstor_core::content::export::ExportStats;
use cstor_core::content::splitfdstream;
use cstor_core::content::tardiff::{Difference, TarDiff};
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::{blocking, duplicate_fd};

/// Compares two tar archives (plain or gzip) entry by entry.
#[napi]
pub async fn tar_diff(first: String, second: String) -> Result<TarDiffInfo> {
    blocking(move || cstor_core::content::tardiff::tar_diff(first.as_ref(), second.as_ref()))
        .await
        .map(TarDiffInfo::from)
}

/// Rebuilds what a splitfdstream stands for into `out`; `content[k - 1]` is the stream's fd `k`.
/// The caller keeps its fds (they are duplicated).
#[napi]
pub async fn assemble_splitfdstream(
    stream: i32,
    content: Vec<i32>,
    out: i32,
) -> Result<ExportStatsInfo> {
    blocking(move || {
        let stream = duplicate_fd(stream)?;
        let content = content
            .into_iter()
            .map(duplicate_fd)
            .collect::<cstor_core::Result<Vec<File>>>()?;
        let mut out = duplicate_fd(out)?;
        splitfdstream::assemble(&stream, &content, &mut out)
    })
    .await
    .map(ExportStatsInfo::from)
}

/// A pipe (`[readFd, writeFd]`, close-on-exec) for streaming an export into Node, which has no
/// `pipe(2)` of its own.
#[napi]
pub fn create_pipe() -> Result<Vec<i32>> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        let err = std::io::Error::last_os_error();
        return Err(Error::new(
            Status::GenericFailure,
            format!("[EIO] pipe: {err}"),
        ));
    }
    Ok(fds.to_vec())
}

#[napi(object)]
pub struct ExportStatsInfo {
    /// Bytes of tar written.
    pub bytes: i64,
    /// File bodies taken from `diff/`.
    pub files: i64,
}

impl From<ExportStats> for ExportStatsInfo {
    fn from(s: ExportStats) -> Self {
        ExportStatsInfo {
            bytes: s.bytes as i64,
            files: s.files as i64,
        }
    }
}

/// One difference of `tarDiff`: `kind` is `missing` (first archive only), `extra` (second only)
/// or `field` (`field` differs: `first` → `second`).
#[napi(object)]
pub struct TarDifferenceInfo {
    pub kind: String,
    pub name: String,
    pub field: Option<String>,
    pub first: Option<String>,
    pub second: Option<String>,
}

#[napi(object)]
pub struct TarDiffInfo {
    pub first_entries: i64,
    pub second_entries: i64,
    pub differences: Vec<TarDifferenceInfo>,
}

impl From<TarDiff> for TarDiffInfo {
    fn from(d: TarDiff) -> Self {
        let entry = |kind: &str, name: String| TarDifferenceInfo {
            kind: kind.into(),
            name,
            field: None,
            first: None,
            second: None,
        };
        TarDiffInfo {
            first_entries: d.first_entries as i64,
            second_entries: d.second_entries as i64,
            differences: d
                .differences
                .into_iter()
                .map(|difference| match difference {
                    Difference::Missing { name } => entry("missing", name),
                    Difference::Extra { name } => entry("extra", name),
                    Difference::Field {
                        name,
                        field,
                        first,
                        second,
                    } => TarDifferenceInfo {
                        field: Some(field),
                        first,
                        second,
                        ..entry("field", name)
                    },
                })
                .collect(),
        }
    }
}
