//! Tables of contents: what a layer's tar holds, or what an image's merged filesystem holds,
//! entry by entry, in the spirit of eStargz's TOC (same field meanings).
//!
//! A layer's TOC is read from its tar as exported (headers from the tar-split; `diff/` is only
//! read when content digests are asked for), so it lists exactly the tar's entries, whiteout
//! markers (`.wh.*`) included. An image's TOC is its layers stacked as overlayfs stacks them, by
//! the one merge every merged view uses ([`crate::tree::toc`]).

use std::path::Path;

use sha2::{Digest, Sha256};

use crate::content::export::entry_path;
use crate::content::reader::{ContentReads, LayerReader};
use crate::content::whiteout;
use crate::error::{into_core_error, Error, Result};
use crate::store::layers::Layer;
use crate::store::Store;

/// PAX record prefix of an extended attribute, as GNU tar and Go's archive/tar write it.
const PAX_XATTR_PREFIX: &str = "SCHILY.xattr.";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    Dir,
    Reg,
    Symlink,
    Hardlink,
    Char,
    Block,
    Fifo,
    /// In an image TOC with whiteouts listed: a path an upper layer deleted.
    Whiteout,
}

impl EntryKind {
    /// The eStargz name of the type.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Dir => "dir",
            EntryKind::Reg => "reg",
            EntryKind::Symlink => "symlink",
            EntryKind::Hardlink => "hardlink",
            EntryKind::Char => "char",
            EntryKind::Block => "block",
            EntryKind::Fifo => "fifo",
            EntryKind::Whiteout => "whiteout",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TocEntry {
    /// The path, without `./` or a trailing `/`.
    pub name: String,
    pub kind: EntryKind,
    pub size: u64,
    /// Permission bits with setuid, setgid and sticky.
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub user_name: String,
    pub group_name: String,
    /// Seconds since the epoch.
    pub mod_time: i64,
    /// A symlink's target, or a hardlink's target entry name.
    pub link_name: String,
    pub dev_major: u32,
    pub dev_minor: u32,
    pub xattrs: Vec<(String, Vec<u8>)>,
    /// `sha256:<hex>` of a regular file's content (a hardlink's: its target's), when asked for.
    pub digest: Option<String>,
    /// In an image TOC with whiteouts listed: a directory that hides what the layers below had.
    pub opaque: bool,
}

impl TocEntry {
    /// An entry with only a name, a type and permission bits: no owner, time, size or xattrs.
    pub fn new(name: String, kind: EntryKind, mode: u32) -> TocEntry {
        TocEntry {
            name,
            kind,
            size: 0,
            mode,
            uid: 0,
            gid: 0,
            user_name: String::new(),
            group_name: String::new(),
            mod_time: 0,
            link_name: String::new(),
            dev_major: 0,
            dev_minor: 0,
            xattrs: Vec::new(),
            digest: None,
            opaque: false,
        }
    }

    /// A whiteout in overlayfs's own form — a character device 0:0, or an empty file with an
    /// `overlay.whiteout` xattr — as an entry read from a `diff/`-shaped tree has it.
    pub fn is_overlay_whiteout(&self) -> bool {
        (self.kind == EntryKind::Char && self.dev_major == 0 && self.dev_minor == 0)
            || (self.kind == EntryKind::Reg
                && self.size == 0
                && self.has_flag(&whiteout::WHITEOUT_XATTRS))
    }

    /// Whether one of the xattrs `names` is set to `y` on the entry.
    pub fn has_flag(&self, names: &[&str]) -> bool {
        self.xattrs
            .iter()
            .any(|(k, v)| names.contains(&k.as_str()) && v.as_slice() == b"y")
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct TocOptions {
    /// Read file contents to give each regular file a digest.
    pub digests: bool,
    /// Image TOCs: list deleted paths (kind `Whiteout`) and opaque directories.
    pub list_whiteouts: bool,
}

impl Store {
    /// The entries of `layer`'s tar, in tar order.
    pub fn layer_toc(&self, layer: &Layer, options: TocOptions) -> Result<Vec<TocEntry>> {
        let mut entries = Vec::new();
        self.each_layer_entry(layer, options, &mut |entry| entries.push(entry))?;
        Ok(entries)
    }

    /// Hands each entry of `layer`'s tar to `each`, in tar order, without keeping them.
    pub fn each_layer_entry(
        &self,
        layer: &Layer,
        options: TocOptions,
        each: &mut dyn FnMut(TocEntry),
    ) -> Result<()> {
        let split_path = Path::new("overlay-layers").join(format!("{}.tar-split.gz", layer.id()));
        let corrupt = |e: std::io::Error| Error::Corrupt {
            path: split_path.clone(),
            detail: format!("the layer's tar does not parse: {e}"),
        };
        let failed = |e: std::io::Error| into_core_error(e, corrupt);
        // Without digests no body is read: the tar-split alone has every header.
        let (reader, content) = if options.digests {
            LayerReader::for_parser(self.layer_parts(layer)?)
        } else {
            let (decoder, _) = self.tar_split(layer)?;
            let reader = LayerReader::headers_only(decoder, layer.id());
            (reader, ContentReads::default())
        };
        let mut archive = tar::Archive::new(reader);
        for entry in archive.entries_with_seek().map_err(failed)? {
            let mut entry = entry.map_err(failed)?;
            let Some(name) = clean_name(&entry.path_bytes(), &split_path)? else {
                continue;
            };
            let toc = toc_entry(
                name,
                &mut entry,
                options.digests.then_some(&content),
                &split_path,
            );
            each(toc.map_err(failed)?);
        }
        Ok(())
    }
}

/// `./a/b/` → `a/b`; `None` for the root; a `..` component is corrupt.
fn clean_name(raw: &[u8], split_path: &Path) -> Result<Option<String>> {
    let path = entry_path(raw, split_path)?;
    Ok((!path.as_os_str().is_empty()).then(|| path.to_string_lossy().into_owned()))
}

/// What a tar entry type is once extracted: anything not a directory, link or special file is a
/// regular file, as tar readers (Go's, containers/storage's) take it.
pub(crate) fn entry_kind(entry_type: tar::EntryType) -> EntryKind {
    match entry_type {
        tar::EntryType::Directory => EntryKind::Dir,
        tar::EntryType::Symlink => EntryKind::Symlink,
        tar::EntryType::Link => EntryKind::Hardlink,
        tar::EntryType::Char => EntryKind::Char,
        tar::EntryType::Block => EntryKind::Block,
        tar::EntryType::Fifo => EntryKind::Fifo,
        _ => EntryKind::Reg,
    }
}

/// The extended attributes an entry's PAX header carries (`SCHILY.xattr.<name>` records).
pub(crate) fn pax_xattrs<R: std::io::Read>(
    entry: &mut tar::Entry<R>,
) -> std::io::Result<Vec<(String, Vec<u8>)>> {
    let mut xattrs = Vec::new();
    if let Some(extensions) = entry.pax_extensions()? {
        for extension in extensions {
            let extension = extension?;
            if let Some(key) = extension
                .key()
                .ok()
                .and_then(|k| k.strip_prefix(PAX_XATTR_PREFIX))
            {
                xattrs.push((key.to_owned(), extension.value_bytes().to_vec()));
            }
        }
    }
    Ok(xattrs)
}

/// The TOC entry of a tar entry; with `digests`, its content is read (through that permit) and
/// hashed.
fn toc_entry<R: std::io::Read>(
    name: String,
    entry: &mut tar::Entry<R>,
    digests: Option<&ContentReads>,
    split_path: &Path,
) -> std::io::Result<TocEntry> {
    let header = entry.header().clone();
    let kind = entry_kind(header.entry_type());
    let xattrs = pax_xattrs(entry)?;
    let link_name = match entry.link_name_bytes() {
        Some(link) if kind == EntryKind::Hardlink => clean_name(&link, split_path)
            .map_err(std::io::Error::other)?
            .unwrap_or_default(),
        Some(link) if kind == EntryKind::Symlink => String::from_utf8_lossy(&link).into_owned(),
        // Other entries may carry a stale link name (podman writes whiteouts with one); tar
        // readers ignore it.
        _ => String::new(),
    };
    let digest = match digests {
        Some(content) if kind == EntryKind::Reg => {
            let mut hasher = Sha256::new();
            content.during(|| std::io::copy(entry, &mut hasher))?;
            Some(crate::digest::finish(hasher))
        }
        _ => None,
    };
    Ok(TocEntry {
        name,
        kind,
        size: if kind == EntryKind::Reg {
            entry.size()
        } else {
            0
        },
        mode: header.mode()? & 0o7777,
        uid: header.uid()?,
        gid: header.gid()?,
        user_name: header
            .username()
            .ok()
            .flatten()
            .unwrap_or_default()
            .to_owned(),
        group_name: header
            .groupname()
            .ok()
            .flatten()
            .unwrap_or_default()
            .to_owned(),
        mod_time: header.mtime()? as i64,
        link_name,
        dev_major: header.device_major().ok().flatten().unwrap_or(0),
        dev_minor: header.device_minor().ok().flatten().unwrap_or(0),
        xattrs,
        digest,
        opaque: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::reader::MAX_METADATA_RUN;
    use crate::StoreOptions;
    use base64::Engine;
    use std::io::Write;

    /// A store holding one layer whose tar-split is `tar` as segments (1 MiB a line) and nothing
    /// else: the shape of a hostile tar-split, whose segments need not be what a tar holds.
    fn store_of_segments(root: &Path, tar: &[u8]) -> (Store, Layer) {
        let id = "a".repeat(64);
        std::fs::create_dir_all(root.join("overlay").join(&id).join("diff")).unwrap();
        std::fs::create_dir_all(root.join("overlay-layers")).unwrap();
        std::fs::write(
            root.join("overlay-layers/layers.json"),
            format!(r#"[{{"id":"{id}"}}]"#),
        )
        .unwrap();
        let split = std::fs::File::create(root.join(format!("overlay-layers/{id}.tar-split.gz")));
        let mut gz = flate2::write::GzEncoder::new(split.unwrap(), flate2::Compression::fast());
        for (position, chunk) in tar.chunks(1 << 20).enumerate() {
            let payload = base64::engine::general_purpose::STANDARD.encode(chunk);
            writeln!(
                gz,
                r#"{{"type":2,"payload":"{payload}","position":{position}}}"#
            )
            .unwrap();
        }
        gz.finish().unwrap();
        let store = Store::open(StoreOptions {
            graph_root: root.to_owned(),
            ..Default::default()
        })
        .unwrap();
        let layer = store.layer(&id).unwrap();
        (store, layer)
    }

    /// A PAX header declaring 8 GiB over a tar-split of many MiB once had the TOC read all of
    /// it into memory (`tar` reads a metadata entry whole), which a gzip bomb of a tar-split
    /// or a sparse body in `diff/` could make gigabytes: now it stops at the limit.
    #[test]
    fn a_metadata_header_declaring_gigabytes_is_corrupt_at_the_limit() {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::XHeader);
        header.set_path("pax").unwrap();
        header.set_size(8 << 30);
        header.set_cksum();
        let mut tar = header.as_bytes().to_vec();
        tar.resize(512 + 2 * MAX_METADATA_RUN as usize, 0);

        let temp = tempfile::tempdir().unwrap();
        let (store, layer) = store_of_segments(temp.path(), &tar);
        for digests in [false, true] {
            let options = TocOptions {
                digests,
                list_whiteouts: false,
            };
            let err = store.layer_toc(&layer, options).unwrap_err();
            assert_eq!(err.code(), "ECORRUPT");
            assert!(err.to_string().contains("bytes of metadata"), "{err}");
        }
    }
}
