//! A file's content, opened where it lies: in the `diff/` of the layer that provides it.
//!
//! The file is opened as an export opens a body ([`crate::content::export::open_body`]):
//! read-only beneath the layer's `diff/` (cap-std), never following a symlink, never blocking on
//! a FIFO planted there, and refused unless it is a regular file of the size the tar header
//! records — a `diff/` changed under the store must not pass for the image's file.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::content::export::open_body;
use crate::content::toc::EntryKind;
use crate::error::{Error, FsCode, IoContext, Result};
use crate::store::Store;
use crate::tree::node::FsTree;
use crate::tree::source::Bodies;

impl FsTree {
    /// Opens the content of the regular file `node`; `shown` is the path the caller asked for.
    /// `EISDIR` for a directory, `ENOENT` for a whiteout, `EINVAL` for anything else that has no
    /// content.
    pub fn open_body(&self, store: &Store, node: u32, shown: &str) -> Result<File> {
        let entry = self.node(node);
        match entry.kind {
            EntryKind::Reg => {}
            EntryKind::Dir => {
                return Err(Error::Fs {
                    code: FsCode::IsDir,
                    path: shown.to_owned(),
                })
            }
            // A layer's record of a deletion: the file is what it is not.
            EntryKind::Whiteout => {
                return Err(Error::Fs {
                    code: FsCode::NoEntry,
                    path: shown.to_owned(),
                })
            }
            _ => {
                return Err(Error::Fs {
                    code: FsCode::Invalid,
                    path: shown.to_owned(),
                })
            }
        }
        let layer = &self.layers[entry.layer as usize];
        let tar_path = Path::new(entry.body.as_deref().unwrap_or(&entry.path));
        let beneath: PathBuf = match &layer.bodies {
            Bodies::OwnPath => tar_path.to_owned(),
            Bodies::Objects(objects) => objects
                .get(tar_path)
                .or_else(|| objects.get(Path::new(entry.path.as_ref())))
                .cloned()
                .ok_or_else(|| {
                    Error::corrupt(
                        Path::new("overlay-layers").join(&layer.id),
                        format!("the layer's TOC names no content object for {tar_path:?}"),
                    )
                })?,
        };
        let diff_path = Path::new("overlay").join(&layer.id).join("diff");
        let diff = store
            .dir(layer.store_index)
            .dir
            .open_dir(&diff_path)
            .at(&diff_path)?;
        open_body(&diff, &diff_path, &beneath, entry.size)
    }
}
