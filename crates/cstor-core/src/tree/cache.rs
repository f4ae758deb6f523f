//! Trees built once and reused while the store is unchanged.
//!
//! A tree is keyed by the store's roots, its layers and the last-writer tokens of every
//! `layers.lock` of the store: any process that adds, removes or changes a layer — podman
//! included — rewrites its token first (FORMAT.md, Locks), so a matching key means the layers are
//! what they were. The cache is the process's, not a store's (the store stays metadata only);
//! only a few trees are kept: an image's is tens of MB at 150k entries.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::content::toc::TocOptions;
use crate::error::Result;
use crate::store::images::Image;
use crate::store::layers::Layer;
use crate::store::lock::{LockFile, ReadGuard, TOKEN_BYTES};
use crate::store::Store;
use crate::tree::merge::Stack;
use crate::tree::node::FsTree;

/// How many trees the process keeps.
const CAPACITY: usize = 4;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Key {
    /// The main store and the additional image stores.
    roots: Vec<PathBuf>,
    /// Base first.
    layers: Vec<String>,
    /// A layer's own tree (whiteouts kept) rather than a merged view.
    single: bool,
    tokens: Vec<[u8; TOKEN_BYTES]>,
}

/// The trees built so far, most recently used last.
static TREES: Mutex<Vec<(Key, Arc<FsTree>)>> = Mutex::new(Vec::new());

impl Store {
    /// The merged view of `image`, as `podman image mount` shows it.
    pub fn image_tree(&self, image: &Image) -> Result<Arc<FsTree>> {
        let mut layers = self.image_layers(image)?;
        layers.reverse();
        self.tree(&layers, false)
    }

    /// `layer`'s own entries, whiteouts kept as `Whiteout` entries and opaque directories.
    pub fn layer_tree(&self, layer: &Layer) -> Result<Arc<FsTree>> {
        self.tree(std::slice::from_ref(layer), true)
    }

    fn tree(&self, layers: &[Layer], single: bool) -> Result<Arc<FsTree>> {
        // Held while the tree is built: no writer changes the layers meanwhile.
        let mut guards: Vec<ReadGuard> = Vec::new();
        let mut tokens = Vec::new();
        for dir in self.dirs() {
            if let Some(lock) = LockFile::open(&dir.dir, Path::new("overlay-layers/layers.lock"))? {
                guards.push(lock.read()?);
                tokens.push(lock.token()?);
            }
        }
        let key = Key {
            roots: self.dirs().iter().map(|d| d.path.clone()).collect(),
            layers: layers.iter().map(|l| l.id().to_owned()).collect(),
            single,
            tokens,
        };
        {
            let mut trees = TREES.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(at) = trees.iter().position(|(k, _)| *k == key) {
                let hit = trees.remove(at);
                let tree = hit.1.clone();
                trees.push(hit);
                return Ok(tree);
            }
        }
        let tree = Arc::new(self.build_tree(layers, single)?);
        drop(guards);
        let mut trees = TREES.lock().unwrap_or_else(|p| p.into_inner());
        trees.retain(|(k, _)| *k != key);
        if trees.len() >= CAPACITY {
            trees.remove(0);
        }
        trees.push((key, tree.clone()));
        Ok(tree)
    }
}

impl Store {
    /// A tree built now, not cached: `layers` base first, `single` keeping whiteouts.
    pub(crate) fn build_tree(&self, layers: &[Layer], single: bool) -> Result<FsTree> {
        let mut stack = if single {
            Stack::keeping_whiteouts()
        } else {
            Stack::merged()
        };
        for layer in layers {
            stack.begin_layer(layer.id(), layer.store_index, self.layer_bodies(layer)?);
            // Entries go straight into the stack; a tree has no use for owner names.
            self.each_layer_entry(layer, TocOptions::default(), &mut |mut entry| {
                entry.user_name = String::new();
                entry.group_name = String::new();
                stack.add(entry);
            })?;
            stack.end_layer();
        }
        Ok(stack.finish())
    }
}
