//! A layer's content: its tar exported to an fd or as parts, its splitfdstream, tables of
//! contents, and comparisons of tars.

use std::fs::File;
use std::os::fd::IntoRawFd;
use std::sync::{Arc, Mutex};

use cstor_core::content::export::{ExportOptions, ExportStats, LayerPart};
use cstor_core::content::splitfdstream::{self, LayerStream};
use cstor_core::content::tardiff::{Difference, TarDiff};
use cstor_core::content::toc::{TocEntry, TocOptions};
use cstor_core::Store;
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::store::NativeStore;
use crate::{blocking, duplicate_fd, path_string};

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
}

#[napi]
impl NativeStore {
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
    pub(crate) fn new(source: PartSource) -> Self {
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

/// One piece of a layer's tar for JavaScript: `kind` is `"segment"` (with `data`) or `"file"`
/// (with `name`, `size`, `crc` and an `fd` the receiver now owns).
#[napi(object)]
pub struct LayerPartInfo {
    pub kind: String,
    pub data: Option<napi::bindgen_prelude::Buffer>,
    pub name: Option<String>,
    pub size: Option<i64>,
    /// The CRC-64/GO-ISO tar-split recorded, as 16 hex digits.
    pub crc: Option<String>,
    pub fd: Option<i32>,
}

impl From<LayerPart> for LayerPartInfo {
    /// A body's descriptor is handed over to JavaScript, which must close it.
    fn from(part: LayerPart) -> Self {
        let empty = LayerPartInfo {
            kind: String::new(),
            data: None,
            name: None,
            size: None,
            crc: None,
            fd: None,
        };
        match part {
            LayerPart::Segment(data) => LayerPartInfo {
                kind: "segment".into(),
                data: Some(data.into()),
                ..empty
            },
            LayerPart::Body {
                name,
                size,
                crc,
                file,
            } => LayerPartInfo {
                kind: "file".into(),
                name: Some(path_string(&name)),
                size: Some(size as i64),
                crc: crc.map(|c| format!("{c:016x}")),
                fd: Some(file.into_raw_fd()),
                ..empty
            },
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

#[napi(object)]
#[derive(Default)]
pub struct TocOptionsInfo {
    pub digests: Option<bool>,
    pub list_whiteouts: Option<bool>,
}

impl From<TocOptionsInfo> for TocOptions {
    fn from(o: TocOptionsInfo) -> Self {
        TocOptions {
            digests: o.digests.unwrap_or(false),
            list_whiteouts: o.list_whiteouts.unwrap_or(false),
        }
    }
}

/// One TOC entry; see `cstor_core::content::toc::TocEntry`.
#[napi(object)]
pub struct TocEntryInfo {
    pub name: String,
    /// `dir`, `reg`, `symlink`, `hardlink`, `char`, `block`, `fifo` or `whiteout`.
    pub kind: String,
    pub size: i64,
    pub mode: u32,
    pub uid: i64,
    pub gid: i64,
    pub user_name: String,
    pub group_name: String,
    pub mod_time: i64,
    pub link_name: String,
    pub dev_major: u32,
    pub dev_minor: u32,
    pub xattrs: Vec<XattrInfo>,
    pub digest: Option<String>,
    pub opaque: bool,
}

#[napi(object)]
pub struct XattrInfo {
    pub key: String,
    pub value: napi::bindgen_prelude::Buffer,
}

impl From<TocEntry> for TocEntryInfo {
    fn from(e: TocEntry) -> Self {
        TocEntryInfo {
            name: e.name,
            kind: e.kind.as_str().into(),
            size: e.size as i64,
            mode: e.mode,
            uid: e.uid as i64,
            gid: e.gid as i64,
            user_name: e.user_name,
            group_name: e.group_name,
            mod_time: e.mod_time,
            link_name: e.link_name,
            dev_major: e.dev_major,
            dev_minor: e.dev_minor,
            xattrs: e
                .xattrs
                .into_iter()
                .map(|(key, value)| XattrInfo {
                    key,
                    value: value.into(),
                })
                .collect(),
            digest: e.digest,
            opaque: e.opaque,
        }
    }
}

/// A splitfdstream's fds, handed over to JavaScript (which must close them).
#[napi(object)]
pub struct SplitFdStreamInfo {
    /// A memfd holding the stream, at offset 0.
    pub stream: i32,
    /// `content[k - 1]` is the stream's fd `k`.
    pub content: Vec<i32>,
}

impl From<LayerStream> for SplitFdStreamInfo {
    fn from(s: LayerStream) -> Self {
        SplitFdStreamInfo {
            stream: s.stream.into_raw_fd(),
            content: s.content.into_iter().map(|f| f.into_raw_fd()).collect(),
        }
    }
}
