//! Extracting an image's merged filesystem or one layer into a directory.

use cstor_core::extract::{ExtractOptions, ExtractStats, Whiteouts};
use cstor_core::progress::Progress;
use cstor_core::Store;
use napi::bindgen_prelude::*;
use napi::threadsafe_function::ThreadsafeFunction;
use napi_derive::napi;

use crate::blocking;
use crate::progress::{reporter, ProgressCallback, ProgressInfo};
use crate::store::NativeStore;

impl NativeStore {
    /// Runs an extraction on the blocking pool with the caller's options, whose whiteout form
    /// defaults to `default_whiteouts`.
    async fn extract<F>(
        &self,
        options: Option<ExtractOptionsInfo>,
        default_whiteouts: Whiteouts,
        on_progress: Option<ProgressCallback>,
        work: F,
    ) -> Result<ExtractStatsInfo>
    where
        F: FnOnce(
                &Store,
                ExtractOptions,
                &mut dyn FnMut(Progress),
            ) -> cstor_core::Result<ExtractStats>
            + Send
            + 'static,
    {
        let store = self.store()?;
        let options = options.unwrap_or_default().into_core(default_whiteouts);
        blocking(move || work(&store, options?, &mut reporter(on_progress)))
            .await
            .map(ExtractStatsInfo::from)
    }
}

#[napi]
impl NativeStore {
    /// Extracts an image's merged filesystem into `target` (created; must not exist or be empty).
    #[napi]
    pub async fn extract_image(
        &self,
        reference: String,
        target: String,
        options: Option<ExtractOptionsInfo>,
        on_progress: Option<ThreadsafeFunction<ProgressInfo, (), ProgressInfo, Status, false>>,
    ) -> Result<ExtractStatsInfo> {
        self.extract(
            options,
            Whiteouts::Apply,
            on_progress,
            move |store, options, progress| {
                store.extract_image(
                    &store.image(&reference)?,
                    target.as_ref(),
                    options,
                    progress,
                )
            },
        )
        .await
    }

    /// Extracts one layer's own content into `target`, whiteouts as overlayfs stores them by
    /// default.
    #[napi]
    pub async fn extract_layer(
        &self,
        reference: String,
        target: String,
        options: Option<ExtractOptionsInfo>,
        on_progress: Option<ThreadsafeFunction<ProgressInfo, (), ProgressInfo, Status, false>>,
    ) -> Result<ExtractStatsInfo> {
        self.extract(
            options,
            Whiteouts::Overlay,
            on_progress,
            move |store, options, progress| {
                store.extract_layer(
                    &store.layer(&reference)?,
                    target.as_ref(),
                    options,
                    progress,
                )
            },
        )
        .await
    }
}

/// Options of `extractImage`/`extractLayer`; unset fields take the TypeScript API's defaults.
#[napi(object)]
#[derive(Default)]
pub struct ExtractOptionsInfo {
    pub reflinks: Option<bool>,
    pub owners: Option<bool>,
    pub xattrs: Option<bool>,
    /// `"apply"`, `"overlay"` or `"aufs"`.
    pub whiteouts: Option<String>,
}

impl ExtractOptionsInfo {
    pub fn into_core(self, default_whiteouts: Whiteouts) -> cstor_core::Result<ExtractOptions> {
        let whiteouts = match self.whiteouts.as_deref() {
            None => default_whiteouts,
            Some("apply") => Whiteouts::Apply,
            Some("overlay") => Whiteouts::Overlay,
            Some("aufs") => Whiteouts::Aufs,
            Some(other) => {
                return Err(cstor_core::Error::InvalidArgument(format!(
                    "whiteouts must be apply, overlay or aufs, not {other:?}"
                )))
            }
        };
        Ok(ExtractOptions {
            reflinks: self.reflinks.unwrap_or(true),
            // SAFETY: geteuid cannot fail.
            owners: self
                .owners
                .unwrap_or_else(|| unsafe { libc::geteuid() } == 0),
            xattrs: self.xattrs.unwrap_or(true),
            whiteouts,
        })
    }
}

#[napi(object)]
pub struct ExtractStatsInfo {
    pub files: i64,
    pub dirs: i64,
    pub symlinks: i64,
    pub hardlinks: i64,
    pub specials: i64,
    pub whiteouts: i64,
    pub skipped: i64,
    pub bytes: i64,
    pub reflinked_files: i64,
    pub kernel_copied_files: i64,
    pub user_copied_files: i64,
}

impl From<ExtractStats> for ExtractStatsInfo {
    fn from(s: ExtractStats) -> Self {
        ExtractStatsInfo {
            files: s.files as i64,
            dirs: s.dirs as i64,
            symlinks: s.symlinks as i64,
            hardlinks: s.hardlinks as i64,
            specials: s.specials as i64,
            whiteouts: s.whiteouts as i64,
            skipped: s.skipped as i64,
            bytes: s.bytes as i64,
            reflinked_files: s.reflinked_files as i64,
            kernel_copied_files: s.kernel_copied_files as i64,
            user_copied_files: s.user_copied_files as i64,
        }
    }
}
