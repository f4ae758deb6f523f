//! The Node.js binding of cstor-core.
//!
//! It decides nothing: it converts core values into JavaScript objects, runs every store access
//! on the blocking pool so the JS thread never waits on disk or on a lock, and turns each core
//! error into a JavaScript error whose message starts with its stable code (`[ENOIMAGE] …`),
//! which `ts/errors.ts` maps to a typed error class. A panic in the core becomes an `EINTERNAL`
//! error, never an abort of the Node process.

mod convert;
pub mod proxy;
pub mod rpc;
pub mod verify;
pub mod write;

use std::fs::File;
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::{Arc, Mutex};

use cstor_core::config::{discover, Environment};
use cstor_core::export::{ExportOptions, LayerPart};
use cstor_core::extract::{Progress, Whiteouts};
use cstor_core::splitfdstream;
use cstor_core::toc::{TocEntry, TocOptions};
use cstor_core::{Store, StoreOptions};
use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;

use convert::path_string;
pub use convert::{
    ExportStatsInfo, ExtractOptionsInfo, ExtractStatsInfo, ImageDetailsInfo, ImageInfo, LayerInfo,
    LayerPartInfo, OciCopyInfo, OciOptionsInfo, PlatformInfo, ProgressInfo, SplitFdStreamInfo,
    StoreConfigInfo, TarDiffInfo, TarDifferenceInfo, TocEntryInfo, TocOptionsInfo, XattrInfo,
};

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

#[napi(object)]
pub struct OpenOptions {
    pub root: String,
    pub runroot: Option<String>,
    pub driver: Option<String>,
    pub additional_image_stores: Option<Vec<String>>,
    pub create: Option<bool>,
}

/// Where podman would find its store, from `storage.conf` and the environment.
#[napi]
pub async fn discover_config() -> Result<StoreConfigInfo> {
    blocking(|| discover(&Environment::current()).map(StoreConfigInfo::from)).await
}

/// Compares two tar archives (plain or gzip) entry by entry.
#[napi]
pub async fn tar_diff(first: String, second: String) -> Result<TarDiffInfo> {
    blocking(move || cstor_core::tardiff::tar_diff(first.as_ref(), second.as_ref()))
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

/// Opens a store; see `Storage.open` in the TypeScript API.
#[napi]
pub async fn open_store(options: OpenOptions) -> Result<NativeStore> {
    let options = StoreOptions {
        graph_root: options.root.into(),
        run_root: options.runroot.map(Into::into),
        driver: options.driver,
        additional_image_stores: options
            .additional_image_stores
            .unwrap_or_default()
            .into_iter()
            .map(Into::into)
            .collect(),
        create: options.create.unwrap_or(false),
    };
    blocking(move || Store::open(options))
        .await
        .map(|store| NativeStore {
            graph_root: path_string(store.graph_root()),
            run_root: store.run_root().map(path_string),
            store_paths: store.dirs().iter().map(|d| path_string(&d.path)).collect(),
            store: Mutex::new(Some(Arc::new(store))),
        })
}

/// An opened store. Every method re-reads the metadata under the store's locks, so it always
/// answers with what is on disk now.
#[napi]
pub struct NativeStore {
    graph_root: String,
    run_root: Option<String>,
    store_paths: Vec<String>,
    /// `None` once closed. Calls under way hold their own reference and finish first.
    store: Mutex<Option<Arc<Store>>>,
}

impl NativeStore {
    /// Runs a TOC reader on the blocking pool and converts its entries.
    async fn toc<F>(&self, options: Option<TocOptionsInfo>, read: F) -> Result<Vec<TocEntryInfo>>
    where
        F: FnOnce(&Store, TocOptions) -> cstor_core::Result<Vec<TocEntry>> + Send + 'static,
    {
        let store = self.store()?;
        let options = options.unwrap_or_default().into();
        blocking(move || read(&store, options))
            .await
            .map(|entries| entries.into_iter().map(TocEntryInfo::from).collect())
    }

    /// The open store, or `EINVAL` after `close`.
    pub(crate) fn store(&self) -> Result<Arc<Store>> {
        self.store
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
            .ok_or_else(|| {
                to_js_error(cstor_core::Error::InvalidArgument(
                    "the store has been closed".into(),
                ))
            })
    }
}

#[napi]
impl NativeStore {
    #[napi(getter)]
    pub fn graph_root(&self) -> String {
        self.graph_root.clone()
    }

    #[napi(getter)]
    pub fn run_root(&self) -> Option<String> {
        self.run_root.clone()
    }

    /// The main store followed by the additional image stores.
    #[napi(getter)]
    pub fn store_paths(&self) -> Vec<String> {
        self.store_paths.clone()
    }

    /// Releases the store's directory descriptors (so its filesystem can be unmounted); later
    /// calls fail with `EINVAL`.
    #[napi]
    pub fn close(&self) {
        *self
            .store
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = None;
    }

    #[napi]
    pub async fn list_images(&self) -> Result<Vec<ImageInfo>> {
        let store = self.store()?;
        blocking(move || {
            let images = store.images()?;
            let sizes = store.image_sizes(&images)?;
            Ok(images
                .iter()
                .zip(sizes)
                .map(|(image, size)| ImageInfo::new(&store, image, size))
                .collect())
        })
        .await
    }

    #[napi]
    pub async fn get_image(&self, reference: String) -> Result<ImageInfo> {
        let store = self.store()?;
        blocking(move || {
            let image = store.image(&reference)?;
            let size = store.image_sizes(std::slice::from_ref(&image))?[0];
            Ok(ImageInfo::new(&store, &image, size))
        })
        .await
    }

    #[napi]
    pub async fn inspect_image(&self, reference: String) -> Result<ImageDetailsInfo> {
        let store = self.store()?;
        blocking(move || {
            let image = store.image(&reference)?;
            let details = store.inspect_image(&image)?;
            Ok(ImageDetailsInfo::new(&store, details))
        })
        .await
    }

    /// The raw bytes of one big-data item of an image.
    #[napi]
    pub async fn image_big_data(&self, reference: String, key: String) -> Result<Buffer> {
        let store = self.store()?;
        blocking(move || {
            let image = store.image(&reference)?;
            store.image_big_data(&image, &key)
        })
        .await
        .map(Buffer::from)
    }

    #[napi]
    pub async fn list_layers(&self) -> Result<Vec<LayerInfo>> {
        let store = self.store()?;
        blocking(move || {
            let layers = store.layers()?;
            Ok(layers.iter().map(|l| LayerInfo::new(&store, l)).collect())
        })
        .await
    }

    #[napi]
    pub async fn get_layer(&self, reference: String) -> Result<LayerInfo> {
        let store = self.store()?;
        blocking(move || store.layer(&reference).map(|l| LayerInfo::new(&store, &l))).await
    }

    /// The layer and its ancestors by `parent`, top first.
    #[napi]
    pub async fn layer_chain(&self, reference: String) -> Result<Vec<LayerInfo>> {
        let store = self.store()?;
        blocking(move || {
            let top = store.layer(&reference)?;
            let chain = store.layer_chain(top.id())?;
            Ok(chain.iter().map(|l| LayerInfo::new(&store, l)).collect())
        })
        .await
    }

    /// The layers below a layer as its overlay `lower` file stacks them, parent first.
    #[napi]
    pub async fn lower_chain(&self, reference: String) -> Result<Vec<LayerInfo>> {
        let store = self.store()?;
        blocking(move || {
            let chain = store.lower_chain(&reference)?;
            Ok(chain.iter().map(|l| LayerInfo::new(&store, l)).collect())
        })
        .await
    }

    /// Writes the layer's tar, rebuilt from its tar-split, to `fd` (which stays the caller's).
    #[napi]
    pub async fn export_layer(
        &self,
        reference: String,
        fd: i32,
        verify: Option<bool>,
    ) -> Result<ExportStatsInfo> {
        let store = self.store()?;
        let options = ExportOptions {
            verify: verify.unwrap_or(true),
        };
        blocking(move || {
            let layer = store.layer(&reference)?;
            let mut out = duplicate_fd(fd)?;
            store.export_layer(&layer, &mut out, options)
        })
        .await
        .map(ExportStatsInfo::from)
    }

    /// The entries of a layer's tar.
    #[napi]
    pub async fn layer_toc(
        &self,
        reference: String,
        options: Option<TocOptionsInfo>,
    ) -> Result<Vec<TocEntryInfo>> {
        self.toc(options, move |store, options| {
            store.layer_toc(&store.layer(&reference)?, options)
        })
        .await
    }

    /// The entries of an image's merged filesystem.
    #[napi]
    pub async fn image_toc(
        &self,
        reference: String,
        options: Option<TocOptionsInfo>,
    ) -> Result<Vec<TocEntryInfo>> {
        self.toc(options, move |store, options| {
            store.image_toc(&store.image(&reference)?, options)
        })
        .await
    }

    /// The layer's tar as a splitfdstream: a memfd with the stream and the content fds, all
    /// handed over to the caller.
    #[napi]
    pub async fn layer_splitfdstream(
        &self,
        reference: String,
        inline_threshold: Option<i64>,
    ) -> Result<SplitFdStreamInfo> {
        let store = self.store()?;
        let threshold =
            inline_threshold.map_or(splitfdstream::DEFAULT_INLINE_THRESHOLD, |t| t.max(0) as u64);
        blocking(move || store.layer_splitfdstream(&store.layer(&reference)?, threshold))
            .await
            .map(SplitFdStreamInfo::from)
    }

    /// The layer's tar as parts: verbatim segments and file bodies as open fds.
    #[napi]
    pub async fn layer_parts(&self, reference: String) -> Result<NativeLayerParts> {
        let store = self.store()?;
        blocking(move || {
            let layer = store.layer(&reference)?;
            store.layer_parts(&layer)
        })
        .await
        .map(|parts| NativeLayerParts::new(Box::new(parts)))
    }

    /// Extracts an image's merged filesystem into `target` (created; must not exist or be empty).
    #[napi]
    pub async fn extract_image(
        &self,
        reference: String,
        target: String,
        options: Option<ExtractOptionsInfo>,
        on_progress: Option<ThreadsafeFunction<ProgressInfo, (), ProgressInfo, Status, false>>,
    ) -> Result<ExtractStatsInfo> {
        let store = self.store()?;
        let options = options.unwrap_or_default().into_core(Whiteouts::Apply);
        blocking(move || {
            let options = options?;
            let image = store.image(&reference)?;
            store.extract_image(&image, target.as_ref(), options, &mut reporter(on_progress))
        })
        .await
        .map(ExtractStatsInfo::from)
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
        let store = self.store()?;
        let options = options.unwrap_or_default().into_core(Whiteouts::Overlay);
        blocking(move || {
            let options = options?;
            let layer = store.layer(&reference)?;
            store.extract_layer(&layer, target.as_ref(), options, &mut reporter(on_progress))
        })
        .await
        .map(ExtractStatsInfo::from)
    }

    /// Copies an image into an OCI image layout directory (created when missing).
    #[napi]
    pub async fn copy_to_oci(
        &self,
        reference: String,
        dir: String,
        options: Option<OciOptionsInfo>,
        on_progress: Option<ThreadsafeFunction<ProgressInfo, (), ProgressInfo, Status, false>>,
    ) -> Result<OciCopyInfo> {
        let store = self.store()?;
        let options = options.unwrap_or_default().into_core();
        blocking(move || {
            let options = options?;
            let image = store.image(&reference)?;
            store.copy_to_oci(&image, dir.as_ref(), &options, &mut reporter(on_progress))
        })
        .await
        .map(OciCopyInfo::from)
    }

    #[napi]
    pub async fn resolve_link(&self, link: String) -> Result<LayerInfo> {
        let store = self.store()?;
        blocking(move || {
            store
                .resolve_link(&link)
                .map(|l| LayerInfo::new(&store, &l))
        })
        .await
    }
}

/// Forwards core progress reports to an optional JavaScript callback.
fn reporter(
    callback: Option<ThreadsafeFunction<ProgressInfo, (), ProgressInfo, Status, false>>,
) -> impl FnMut(Progress) {
    move |progress| {
        if let Some(callback) = &callback {
            callback.call(progress.into(), ThreadsafeFunctionCallMode::NonBlocking);
        }
    }
}

/// A batch is cut after this many segment bytes...
const PART_BATCH_BYTES: usize = 1 << 20;
/// ...or this many open fds, so a consumer that is slow to close them cannot exhaust the table.
const PART_BATCH_FDS: usize = 64;

/// A layer's parts, fetched in batches so a tar of many small files is not a promise per file.
#[napi]
pub struct NativeLayerParts {
    /// `None` once finished or closed: the tar-split stream and `diff/` directory (or the
    /// server connection) are released then, not whenever the garbage collector gets to this.
    parts: Arc<Mutex<Option<PartSource>>>,
}

/// Where parts come from: a store's layer, or a server streaming one.
type PartSource = Box<dyn Iterator<Item = cstor_core::Result<LayerPart>> + Send>;

impl NativeLayerParts {
    fn new(source: PartSource) -> Self {
        NativeLayerParts {
            parts: Arc::new(Mutex::new(Some(source))),
        }
    }
}

#[napi]
impl NativeLayerParts {
    /// The next parts, consecutive segments joined; an empty array at the end.
    #[napi]
    pub async fn next_batch(&self) -> Result<Vec<LayerPartInfo>> {
        let parts = self.parts.clone();
        blocking(move || {
            let mut guard = parts
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let Some(parts) = guard.as_mut() else {
                return Ok(Vec::new());
            };
            // Bodies stay `File`s until the batch is complete, so an error midway closes them.
            let mut batch: Vec<LayerPart> = Vec::new();
            let mut segment_bytes = 0;
            let mut fds = 0;
            while segment_bytes < PART_BATCH_BYTES && fds < PART_BATCH_FDS {
                let next = parts.next().transpose();
                match next {
                    Err(e) => {
                        *guard = None;
                        return Err(e);
                    }
                    Ok(None) => {
                        *guard = None;
                        break;
                    }
                    Ok(Some(LayerPart::Segment(bytes))) => {
                        segment_bytes += bytes.len();
                        match batch.last_mut() {
                            Some(LayerPart::Segment(joined)) => joined.extend_from_slice(&bytes),
                            _ => batch.push(LayerPart::Segment(bytes)),
                        }
                    }
                    Ok(Some(body)) => {
                        batch.push(body);
                        fds += 1;
                    }
                }
            }
            Ok(batch.into_iter().map(LayerPartInfo::from).collect())
        })
        .await
    }

    /// Releases the tar-split stream and the layer directory before the end is reached.
    #[napi]
    pub fn close(&self) {
        *self
            .parts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = None;
    }
}
