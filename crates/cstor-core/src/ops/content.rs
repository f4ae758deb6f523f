//! A layer's content: its tar exported to an fd, streamed as parts, as a splitfdstream, and the
//! tables of contents of layers and images.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::content::export::{ExportOptions, ExportStats, LayerPart};
use crate::content::splitfdstream::DEFAULT_INLINE_THRESHOLD;
use crate::content::toc::{EntryKind, TocEntry, TocOptions};
use crate::error::{Error, Result};
use crate::ops::typescript::Declarations;
use crate::ops::{Base64, Call, Operation};
use crate::store::Store;

/// Writes a layer's tar, rebuilt bit for bit from its tar-split and `diff/`, to the one fd sent
/// with the call (a file, pipe or socket); `verify` (default true) checks every body's CRC-64.
#[derive(Debug, Deserialize, TS)]
#[ts(optional_fields)]
pub struct ExportLayer {
    pub layer: String,
    #[serde(default)]
    pub verify: Option<bool>,
}

impl Operation for ExportLayer {
    const METHOD: &'static str = "ExportLayer";
    type Output = ExportStats;

    fn run(self, store: &Arc<Store>, call: &mut Call) -> Result<ExportStats> {
        let mut out = call.take_fd("the output")?;
        let layer = store.layer(&self.layer)?;
        let options = ExportOptions {
            verify: self.verify.unwrap_or(true),
        };
        store.export_layer(&layer, &mut out, options)
    }
}

/// Segments of a streamed layer travel in events of up to this many bytes.
const SEGMENT_EVENT_BYTES: usize = 1 << 20;

/// A layer's tar as events, in order: `layer.segment` (verbatim bytes) and `layer.file` (a body,
/// as the one fd that comes with the event), between `layer.start` and `layer.end`. The caller
/// checks each body's CRC if it reads it.
#[derive(Debug, Deserialize, TS)]
pub struct StreamLayer {
    pub layer: String,
}

#[derive(Debug, Serialize, Deserialize, TS)]
pub struct LayerStart {
    pub layer: String,
    pub size: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize, TS)]
pub struct LayerSegment {
    pub data: Base64,
}

/// A body: `name` is its path beneath `diff/`, `crc` the CRC-64/GO-ISO tar-split recorded (16
/// hex digits).
#[derive(Debug, Serialize, Deserialize, TS)]
pub struct LayerFile {
    pub name: String,
    pub size: u64,
    pub crc: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, TS)]
pub struct LayerStreamed {
    pub files: u64,
    pub bytes: u64,
}

impl Operation for StreamLayer {
    const METHOD: &'static str = "StreamLayer";
    type Output = LayerStreamed;

    fn run(self, store: &Arc<Store>, call: &mut Call) -> Result<LayerStreamed> {
        let layer = store.layer(&self.layer)?;
        let parts = store.layer_parts(&layer)?;
        let start = LayerStart {
            layer: layer.id().to_owned(),
            size: layer.record.diff_size,
        };
        call.emit("layer.start", start, Vec::new())?;
        let flush = |segment: &mut Vec<u8>| {
            if segment.is_empty() {
                return Ok(());
            }
            let data = Base64(std::mem::take(segment));
            call.emit("layer.segment", LayerSegment { data }, Vec::new())
        };
        let (mut segment, mut bytes, mut files) = (Vec::new(), 0u64, 0u64);
        for part in parts {
            match part? {
                LayerPart::Segment(data) => {
                    bytes += data.len() as u64;
                    segment.extend_from_slice(&data);
                    if segment.len() >= SEGMENT_EVENT_BYTES {
                        flush(&mut segment)?;
                    }
                }
                LayerPart::Body {
                    name,
                    size,
                    crc,
                    file,
                } => {
                    flush(&mut segment)?;
                    bytes += size;
                    files += 1;
                    let body = LayerFile {
                        name: name.to_string_lossy().into_owned(),
                        size,
                        crc: crc.map(|c| format!("{c:016x}")),
                    };
                    call.emit("layer.file", body, vec![file.into()])?;
                }
            }
        }
        flush(&mut segment)?;
        call.emit("layer.end", LayerStreamed { files, bytes }, Vec::new())?;
        Ok(LayerStreamed { files, bytes })
    }
}

/// A layer's tar as a splitfdstream: the result comes with `1 + content` fds, the stream (a memfd
/// at offset 0) first, then the content fds, numbered from 1 as the stream refers to them.
/// Bodies up to `inlineThreshold` bytes (default 4096) go inline, CRC-checked.
#[derive(Debug, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(optional_fields)]
pub struct GetLayerSplitfdstream {
    pub layer: String,
    #[serde(default)]
    pub inline_threshold: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize, TS)]
pub struct SplitfdstreamInfo {
    pub layer: String,
    /// How many content fds follow the stream.
    pub content: usize,
}

impl Operation for GetLayerSplitfdstream {
    const METHOD: &'static str = "GetLayerSplitfdstream";
    type Output = SplitfdstreamInfo;

    fn run(self, store: &Arc<Store>, call: &mut Call) -> Result<SplitfdstreamInfo> {
        let layer = store.layer(&self.layer)?;
        let threshold = self.inline_threshold.unwrap_or(DEFAULT_INLINE_THRESHOLD);
        let stream = store.layer_splitfdstream(&layer, threshold)?;
        let content = stream.content.len();
        call.reply_fd(stream.stream);
        for fd in stream.content {
            call.reply_fd(fd);
        }
        Ok(SplitfdstreamInfo {
            layer: layer.id().to_owned(),
            content,
        })
    }
}

/// The entries of a layer's tar, in tar order, whiteout markers included; `digests` reads every
/// regular file for its sha256.
#[derive(Debug, Deserialize, TS)]
#[ts(optional_fields)]
pub struct LayerToc {
    pub layer: String,
    #[serde(default)]
    pub digests: Option<bool>,
}

impl Operation for LayerToc {
    const METHOD: &'static str = "LayerToc";
    type Output = Toc;

    fn run(self, store: &Arc<Store>, _: &mut Call) -> Result<Toc> {
        let options = TocOptions {
            digests: self.digests.unwrap_or(false),
            list_whiteouts: false,
        };
        let layer = store.layer(&self.layer)?;
        Ok(Toc::new(store.layer_toc(&layer, options)?))
    }
}

/// The entries of an image's merged filesystem, parents before children; `whiteouts: "list"`
/// adds deleted paths and opaque marks to the merged view (`"apply"`, the default, does not).
#[derive(Debug, Deserialize, TS)]
#[ts(optional_fields)]
pub struct ImageToc {
    pub image: String,
    #[serde(default)]
    pub digests: Option<bool>,
    #[serde(default)]
    #[ts(optional, type = "'apply' | 'list'")]
    pub whiteouts: Option<String>,
}

impl Operation for ImageToc {
    const METHOD: &'static str = "ImageToc";
    type Output = Toc;

    fn run(self, store: &Arc<Store>, _: &mut Call) -> Result<Toc> {
        let list_whiteouts = match self.whiteouts.as_deref() {
            None | Some("apply") => false,
            Some("list") => true,
            Some(other) => {
                return Err(Error::InvalidArgument(format!(
                    "whiteouts must be 'apply' or 'list', not {other:?}"
                )))
            }
        };
        let options = TocOptions {
            digests: self.digests.unwrap_or(false),
            list_whiteouts,
        };
        let image = store.image(&self.image)?;
        Ok(Toc::new(store.image_toc(&image, options)?))
    }
}

/// A table of contents as eStargz writes one.
#[derive(Debug, Serialize, Deserialize, TS)]
pub struct Toc {
    pub version: u32,
    pub entries: Vec<TocItem>,
}

impl Toc {
    fn new(entries: Vec<TocEntry>) -> Toc {
        Toc {
            version: 1,
            entries: entries.into_iter().map(TocItem::from).collect(),
        }
    }
}

/// One entry with eStargz's field names and meanings; empty fields are left out, as eStargz
/// leaves them out.
#[derive(Debug, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(rename = "TocEntry", optional_fields)]
pub struct TocItem {
    /// The path, without `./` or a trailing `/`.
    pub name: String,
    /// `whiteout` only in an image TOC with `whiteouts: 'list'`: a path an upper layer deleted.
    #[serde(rename = "type")]
    #[ts(type = "'dir' | 'reg' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo' | 'whiteout'")]
    pub kind: String,
    /// Content bytes of a regular file (a hardlink: of its target).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// RFC 3339, whole seconds as tar headers keep them.
    #[ts(optional = false)]
    pub modtime: String,
    /// A symlink's target, or the entry a hardlink points at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_name: Option<String>,
    /// Permission bits with setuid, setgid and sticky.
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dev_major: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dev_minor: Option<u32>,
    /// Extended attributes, values in base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xattrs: Option<BTreeMap<String, Base64>>,
    /// `sha256:<hex>` of the content, when asked for with `digests: true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Only with `whiteouts: 'list'`: the directory hides what layers below it had.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(type = "true")]
    pub opaque: Option<bool>,
}

impl From<TocEntry> for TocItem {
    fn from(e: TocEntry) -> Self {
        let nonempty = |s: String| (!s.is_empty()).then_some(s);
        let device = matches!(e.kind, EntryKind::Char | EntryKind::Block);
        TocItem {
            name: e.name,
            kind: e.kind.as_str().to_owned(),
            size: (e.size > 0).then_some(e.size),
            modtime: crate::time::rfc3339(e.mod_time, 0),
            link_name: nonempty(e.link_name),
            mode: e.mode,
            uid: e.uid,
            gid: e.gid,
            user_name: nonempty(e.user_name),
            group_name: nonempty(e.group_name),
            dev_major: device.then_some(e.dev_major),
            dev_minor: device.then_some(e.dev_minor),
            xattrs: (!e.xattrs.is_empty()).then(|| {
                e.xattrs
                    .into_iter()
                    .map(|(key, value)| (key, Base64(value)))
                    .collect()
            }),
            digest: e.digest,
            opaque: e.opaque.then_some(true),
        }
    }
}

/// The payloads of [`StreamLayer`]'s events.
pub(super) fn declare_events(declarations: &mut Declarations) {
    declarations.event::<LayerStart>();
    declarations.event::<LayerSegment>();
    declarations.event::<LayerFile>();
}
