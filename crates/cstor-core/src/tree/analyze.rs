//! What each layer of an image adds, changes and removes, and the image's wasted bytes and
//! efficiency score computed as dive computes them (`dive --ci`, `dive --json`), from the layers'
//! headers: no `podman save`, no tar read.
//!
//! dive's rules (wagoodman/dive `filetree/efficiency.go`, `image/analysis.go`), kept to the
//! letter, quirks included: each layer is a tree of its tar's entries (parents a header does not
//! list are nodes without metadata; `.wh..wh..opq` is ignored); the leaves of every layer are
//! counted by path: a file its header size, a whiteout the size of what it deletes when that was
//! a directory with a header (its whole subtree in the layers below, stacked as dive stacks them),
//! else 0; a whiteout of a path the layers below lack stops that layer's count, as dive's walk
//! stops there. A path counted in two or more layers wastes all it counts; the score is the sum
//! of each path's smallest count over the sum of all counts. A layer's size is the sum of its
//! headers' sizes; the user's bytes are all but the first layer's.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::content::toc::{EntryKind, TocEntry};
use crate::content::whiteout::{self, Marker};
use crate::error::Result;
use crate::store::images::Image;
use crate::store::Store;
use crate::tree::merge::Stack;

/// A file a layer adds, changes or removes.
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct FileSize {
    /// `/` first.
    pub path: String,
    /// Header bytes; for a removal, what the path held in the layers below.
    pub size: u64,
}

/// One layer's part in the image.
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct LayerAnalysis {
    pub id: String,
    /// The sum of its headers' sizes (dive's layer size).
    pub size_bytes: u64,
    /// Files (not directories) new to the image.
    pub added: Vec<FileSize>,
    /// Files a lower layer had, written again.
    pub changed: Vec<FileSize>,
    /// Paths deleted (whiteouts; an opaque directory's former contents).
    pub removed: Vec<FileSize>,
}

/// A path counted in several layers.
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct InefficientFile {
    pub path: String,
    /// In how many layers.
    pub count: u32,
    /// All it counts, in every layer (dive's wasted bytes of the path).
    pub size_bytes: u64,
}

/// An image's layers and waste, with dive's figures.
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct Analysis {
    /// Base first.
    pub layers: Vec<LayerAnalysis>,
    pub size_bytes: u64,
    /// All layers' bytes but the first's.
    pub user_size_bytes: u64,
    pub wasted_bytes: u64,
    /// `wastedBytes / userSizeBytes` (dive's `userWastedPercent`, a fraction); 0 without user bytes.
    pub wasted_user_fraction: f64,
    /// dive's efficiency score, 0 to 1.
    pub efficiency: f64,
    /// Most wasted bytes first.
    pub inefficient_files: Vec<InefficientFile>,
}

impl Store {
    /// The analysis of `image`'s layers (see the module documentation).
    pub fn analyze_image(&self, image: &Image) -> Result<Analysis> {
        let mut layers = self.image_layers(image)?;
        layers.reverse();
        let mut stack = Stack::merged();
        let mut trees = Vec::with_capacity(layers.len());
        let mut analyses = Vec::with_capacity(layers.len());
        for layer in &layers {
            let source = self.layer_source(layer)?;
            let mut analysis = LayerAnalysis {
                id: layer.id().to_owned(),
                size_bytes: source.entries.iter().map(|e| e.size).sum(),
                added: Vec::new(),
                changed: Vec::new(),
                removed: Vec::new(),
            };
            for entry in &source.entries {
                changes_of(&stack, entry, &mut analysis);
            }
            trees.push(DiveTree::new(&source.entries));
            stack.push(layer.id(), layer.store_index, source);
            analyses.push(analysis);
        }
        Ok(efficiency(&trees, analyses))
    }
}

/// Files and removals an entry stands for, against the layers below (`stack`).
fn changes_of(stack: &Stack, entry: &TocEntry, analysis: &mut LayerAnalysis) {
    let (parent, base) = entry.name.rsplit_once('/').unwrap_or(("", &entry.name));
    let file = |path: &str, size| FileSize {
        path: format!("/{path}"),
        size,
    };
    match whiteout::marker(base.as_ref()) {
        Marker::Opaque => {
            for (path, gone) in stack.beneath(parent) {
                if gone.kind != EntryKind::Dir {
                    analysis.removed.push(file(path, gone.size));
                }
            }
        }
        Marker::Whiteout(name) => {
            let path = match parent {
                "" => name.to_string_lossy().into_owned(),
                parent => format!("{parent}/{}", name.to_string_lossy()),
            };
            let size = stack.entry(&path).map_or(0, |e| e.size)
                + stack.beneath(&path).map(|(_, e)| e.size).sum::<u64>();
            analysis.removed.push(file(&path, size));
        }
        Marker::None if entry.kind == EntryKind::Dir => {}
        Marker::None => {
            let list = if stack.entry(&entry.name).is_some() {
                &mut analysis.changed
            } else {
                &mut analysis.added
            };
            list.push(file(&entry.name, entry.size));
        }
    }
}

/// A node of dive's tree of one layer: `data` is `None` for a parent no header lists.
struct DiveNode {
    /// The node's name in its parent (`.wh.x` for a whiteout).
    name: String,
    data: Option<(u64, bool)>,
    children: BTreeMap<String, usize>,
}

/// dive's tree of one layer's tar.
struct DiveTree {
    nodes: Vec<DiveNode>,
}

impl DiveTree {
    fn new(entries: &[TocEntry]) -> DiveTree {
        let mut tree = DiveTree {
            nodes: vec![DiveNode {
                name: String::new(),
                data: None,
                children: BTreeMap::new(),
            }],
        };
        for entry in entries {
            let data = (entry.size, entry.kind == EntryKind::Dir);
            let names: Vec<&str> = entry.name.split('/').collect();
            let mut at = 0;
            for (i, name) in names.iter().enumerate() {
                let next = match tree.nodes[at].children.get(*name) {
                    Some(&next) => next,
                    // dive adds no node for the opaque marker (its parents it does).
                    None if name.starts_with(whiteout::OPAQUE_MARKER) => break,
                    None => {
                        tree.nodes.push(DiveNode {
                            name: (*name).to_owned(),
                            data: None,
                            children: BTreeMap::new(),
                        });
                        let next = tree.nodes.len() - 1;
                        tree.nodes[at].children.insert((*name).to_owned(), next);
                        next
                    }
                };
                if i == names.len() - 1 {
                    tree.nodes[next].data = Some(data);
                }
                at = next;
            }
        }
        tree
    }

    /// Every node but the root, children before their parent, siblings by name: dive's walk;
    /// each with its path (a whiteout's: the path it deletes).
    fn walk(&self) -> Vec<(String, usize)> {
        let mut out = Vec::new();
        self.walk_from(0, "", &mut out);
        out
    }

    fn walk_from(&self, at: usize, path: &str, out: &mut Vec<(String, usize)>) {
        for &child in self.nodes[at].children.values() {
            let name = &self.nodes[child].name;
            let shown = name.strip_prefix(whiteout::PREFIX).unwrap_or(name);
            let child_path = format!("{path}/{shown}");
            self.walk_from(child, &child_path, out);
            out.push((child_path, child));
        }
    }

    fn is_whiteout(&self, node: usize) -> bool {
        self.nodes[node].name.starts_with(whiteout::PREFIX)
    }
}

/// The layers stacked as dive stacks them, path → header size and directory-ness (`None` for a
/// node without a header).
#[derive(Default)]
struct DiveStack {
    paths: BTreeMap<String, Option<(u64, bool)>>,
}

impl DiveStack {
    /// A copy of a layer's tree (dive starts every stack from the first layer's tree).
    fn of(tree: &DiveTree) -> DiveStack {
        let mut stack = DiveStack::default();
        for (path, node) in tree.walk() {
            if !tree.is_whiteout(node) {
                stack.paths.insert(path, tree.nodes[node].data);
            }
        }
        stack
    }

    /// dive's `Stack`: every node of `upper`, children first; a whiteout removes its path, any
    /// other node sets its path's data (adding missing parents without data).
    fn apply(&mut self, upper: &DiveTree) {
        for (path, node) in upper.walk() {
            if upper.is_whiteout(node) {
                let doomed: Vec<String> = self.subtree(&path).map(|(p, _)| p.clone()).collect();
                for p in doomed {
                    self.paths.remove(&p);
                }
                continue;
            }
            let mut end = 1;
            while let Some(slash) = path[end..].find('/') {
                self.paths
                    .entry(path[..end + slash].to_owned())
                    .or_insert(None);
                end += slash + 1;
            }
            self.paths.insert(path, upper.nodes[node].data);
        }
    }

    /// `path` and everything beneath it.
    fn subtree<'a>(
        &'a self,
        path: &'a str,
    ) -> impl Iterator<Item = (&'a String, &'a Option<(u64, bool)>)> {
        self.paths
            .range(path.to_owned()..)
            .take_while(move |(p, _)| {
                p.as_str() == path || p.strip_prefix(path).is_some_and(|r| r.starts_with('/'))
            })
    }
}

/// Counts every layer's leaves as dive does, and fills in the image's figures.
fn efficiency(trees: &[DiveTree], layers: Vec<LayerAnalysis>) -> Analysis {
    // Path → (cumulative size, smallest size, count).
    let mut counted: HashMap<String, (u64, u64, u32)> = HashMap::new();
    let mut below = trees.first().map(DiveStack::of).unwrap_or_default();
    for tree in trees {
        for (path, node) in tree.walk() {
            if !tree.nodes[node].children.is_empty() {
                continue;
            }
            let size = if tree.is_whiteout(node) {
                // dive looks the deleted path up in the layers below; missing, its walk of this
                // layer ends here.
                let Some(data) = below.paths.get(&path) else {
                    break;
                };
                match data {
                    Some((_, true)) => below
                        .subtree(&path)
                        .filter_map(|(_, d)| *d)
                        .map(|d| d.0)
                        .sum(),
                    _ => 0,
                }
            } else {
                tree.nodes[node].data.map_or(0, |d| d.0)
            };
            let slot = counted.entry(path).or_insert((0, u64::MAX, 0));
            slot.0 += size;
            slot.1 = slot.1.min(size);
            slot.2 += 1;
        }
        below.apply(tree);
    }
    let (minimum, discovered) = counted
        .values()
        .fold((0u64, 0u64), |(m, d), c| (m + c.1, d + c.0));
    let mut inefficient_files: Vec<InefficientFile> = counted
        .into_iter()
        .filter(|(_, c)| c.2 >= 2)
        .map(|(path, c)| InefficientFile {
            path,
            count: c.2,
            size_bytes: c.0,
        })
        .collect();
    inefficient_files.sort_by(|a, b| b.size_bytes.cmp(&a.size_bytes).then(a.path.cmp(&b.path)));
    let wasted_bytes = inefficient_files.iter().map(|f| f.size_bytes).sum();
    let size_bytes = layers.iter().map(|l| l.size_bytes).sum();
    let user_size_bytes = layers.iter().skip(1).map(|l| l.size_bytes).sum();
    Analysis {
        layers,
        size_bytes,
        user_size_bytes,
        wasted_bytes,
        wasted_user_fraction: if user_size_bytes == 0 {
            0.0
        } else {
            wasted_bytes as f64 / user_size_bytes as f64
        },
        efficiency: if discovered == 0 {
            1.0
        } else {
            minimum as f64 / discovered as f64
        },
        inefficient_files,
    }
}
