//! Stacking layers as overlayfs does, base to top, into one [`FsTree`].
//!
//! A layer's markers act on the layers below it, so they go first: a whiteout (`.wh.x` in a
//! tar, a character device 0:0 or an empty file with an `overlay.whiteout` xattr in `diff/`)
//! deletes `x` and everything beneath; an opaque marker (`.wh..wh..opq`, or a directory with
//! `overlay.opaque = y`) empties its directory below. Then the layer's entries replace lower
//! ones; a non-directory replacing a directory takes its subtree, and a directory an upper layer
//! needs for its entries (its tar may not list it) hides a lower non-directory of that name.
//!
//! Hardlinks: a layer's tar names a group's first path and links the others to it; `diff/`
//! (and so the mount) has one inode per group, whose metadata is the last header applied and
//! whose link count is the group's size in that layer — even when an upper layer deletes some
//! names.

use std::collections::{BTreeMap, HashMap};

use crate::content::toc::{EntryKind, TocEntry};
use crate::content::whiteout::{self, Marker};
use crate::tree::node::{FsTree, Node, TreeLayer};
use crate::tree::source::{Bodies, LayerSource};

/// Mode of a directory no header describes: containers/storage creates missing parents 0755.
const IMPLICIT_DIR_MODE: u32 = 0o755;

/// One entry while layers are being stacked; its path is its key in [`Stack`] (`entry.name` is
/// left empty, so the path is stored once).
struct Item {
    entry: TocEntry,
    layer: u32,
    nlink: u32,
    /// A hardlink's group: the tar path of its first name.
    group: Option<Box<str>>,
    opaque: bool,
}

impl Item {
    fn implicit_dir(layer: u32) -> Item {
        Item {
            entry: TocEntry::new(String::new(), EntryKind::Dir, IMPLICIT_DIR_MODE),
            layer,
            nlink: 1,
            group: None,
            opaque: false,
        }
    }
}

/// Layers being stacked into a tree, one entry at a time (a layer's entries need not all be in
/// memory at once).
pub struct Stack {
    items: BTreeMap<Box<str>, Item>,
    layers: Vec<TreeLayer>,
    /// Keep deletions and opaque marks as entries (a layer's own tree) instead of applying them.
    keep_whiteouts: bool,
    /// The layer being added's hardlinks: (name, target), in tar order.
    links: Vec<(String, String)>,
    /// Whiteouts and opaque marks met.
    markers: u64,
    /// Whether the layer being added marks by `.wh.` names ([`LayerSource::markers_by_name`]).
    markers_by_name: bool,
}

impl Stack {
    /// The merged view of an image (whiteouts applied).
    pub fn merged() -> Stack {
        Stack::new(false)
    }

    /// Deletions and opaque marks kept as entries: one layer's own tree, or an image's TOC
    /// listing what its layers deleted.
    pub fn keeping_whiteouts() -> Stack {
        Stack::new(true)
    }

    fn new(keep_whiteouts: bool) -> Stack {
        let mut items = BTreeMap::new();
        items.insert(Box::from(""), Item::implicit_dir(0));
        Stack {
            items,
            layers: Vec::new(),
            keep_whiteouts,
            links: Vec::new(),
            markers: 0,
            markers_by_name: true,
        }
    }

    /// Puts the layer `id` (of store `store_index`) on top, all its entries at once.
    pub fn push(&mut self, id: &str, store_index: usize, source: LayerSource) {
        self.begin_layer(id, store_index, source.bodies);
        self.markers_by_name = source.markers_by_name;
        for entry in source.entries {
            self.add(entry);
        }
        self.end_layer();
    }

    /// Starts a layer on top; its entries follow with [`Stack::add`], then [`Stack::end_layer`].
    pub fn begin_layer(&mut self, id: &str, store_index: usize, bodies: Bodies) {
        self.markers_by_name = true;
        self.layers.push(TreeLayer {
            id: id.to_owned(),
            store_index,
            bodies,
        });
    }

    /// Adds one entry of the current layer, in tar order. Its markers act on the layers below
    /// only, wherever they stand in the tar.
    pub fn add(&mut self, mut entry: TocEntry) {
        let layer = self.layers.len().saturating_sub(1) as u32;
        let (parent, base) = split(&entry.name);
        let marker = match self.markers_by_name {
            true => whiteout::marker(base.as_ref()),
            false => Marker::None,
        };
        match marker {
            Marker::Opaque => {
                self.markers += 1;
                let dir = parent.to_owned();
                self.opaque(&dir, layer);
            }
            Marker::Whiteout(name) => {
                self.markers += 1;
                let path = join(parent, &name.to_string_lossy());
                self.delete(path, entry, layer);
            }
            Marker::None if entry.is_overlay_whiteout() => {
                self.markers += 1;
                let path = std::mem::take(&mut entry.name);
                self.delete(path, entry, layer);
            }
            Marker::None => {
                if entry.kind == EntryKind::Dir && entry.has_flag(&whiteout::OPAQUE_XATTRS) {
                    self.markers += 1;
                    let dir = entry.name.clone();
                    self.opaque(&dir, layer);
                }
                entry
                    .xattrs
                    .retain(|(k, _)| !whiteout::is_overlay_xattr(k.as_bytes()));
                if entry.kind == EntryKind::Hardlink {
                    self.links
                        .push((entry.name.clone(), entry.link_name.clone()));
                }
                self.insert(entry, layer);
            }
        }
    }

    /// Ends the current layer: its hardlink groups get their shared metadata.
    pub fn end_layer(&mut self) {
        let layer = self.layers.len().saturating_sub(1) as u32;
        let links = std::mem::take(&mut self.links);
        let targets: HashMap<&str, &str> = links
            .iter()
            .map(|(name, target)| (name.as_str(), target.as_str()))
            .collect();
        // Group's first name → the others, in tar order.
        let mut groups: Vec<(String, Vec<String>)> = Vec::new();
        let mut group_of: HashMap<String, usize> = HashMap::new();
        for (name, target) in &links {
            let mut root = target.as_str();
            for _ in 0..links.len() {
                match targets.get(root) {
                    Some(next) => root = next,
                    None => break,
                }
            }
            let is_file_here = self
                .items
                .get(root)
                .is_some_and(|item| item.layer == layer && item.entry.kind == EntryKind::Reg);
            if !is_file_here {
                // A link to a name this layer lacks: `diff/` still has the file under its name.
                if let Some(item) = self.items.get_mut(name.as_str()) {
                    item.entry.kind = EntryKind::Reg;
                    item.entry.link_name.clear();
                }
                continue;
            }
            let at = *group_of.entry(root.to_owned()).or_insert_with(|| {
                groups.push((root.to_owned(), Vec::new()));
                groups.len() - 1
            });
            groups[at].1.push(name.clone());
        }
        for (root, members) in groups {
            self.share(&root, &members);
        }
    }

    /// Gives a hardlink group the metadata `diff/` has: one inode, whose owner, mode and time
    /// are the last header's and whose xattrs are every header's.
    fn share(&mut self, root: &str, members: &[String]) {
        let names: Vec<&str> = std::iter::once(root)
            .chain(members.iter().map(String::as_str))
            .collect();
        let Some(last) = names.iter().rev().find_map(|n| self.items.get(*n)) else {
            return;
        };
        let (mode, uid, gid, mtime) = (
            last.entry.mode,
            last.entry.uid,
            last.entry.gid,
            last.entry.mod_time,
        );
        let mut xattrs: Vec<(String, Vec<u8>)> = Vec::new();
        for item in names.iter().filter_map(|n| self.items.get(*n)) {
            for (key, value) in &item.entry.xattrs {
                match xattrs.iter_mut().find(|(k, _)| k == key) {
                    Some(slot) => slot.1 = value.clone(),
                    None => xattrs.push((key.clone(), value.clone())),
                }
            }
        }
        let (size, digest) = self
            .items
            .get(root)
            .map(|item| (item.entry.size, item.entry.digest.clone()))
            .unwrap_or_default();
        for name in &names {
            if let Some(item) = self.items.get_mut(*name) {
                let e = &mut item.entry;
                (e.mode, e.uid, e.gid, e.mod_time) = (mode, uid, gid, mtime);
                e.xattrs = xattrs.clone();
                if e.kind == EntryKind::Hardlink {
                    (e.size, e.digest, e.link_name) = (size, digest.clone(), root.to_owned());
                }
                item.nlink = names.len() as u32;
                item.group = Some(Box::from(root));
            }
        }
    }

    /// An opaque mark on `dir`: what the layers below had in it is gone.
    fn opaque(&mut self, dir: &str, layer: u32) {
        self.remove_below(dir, Some(layer));
        if self.keep_whiteouts {
            self.ensure_dir(dir, layer);
            if let Some(item) = self.items.get_mut(dir) {
                item.opaque = true;
            }
        }
    }

    /// A whiteout of `path`: it is gone from the layers below, with everything beneath it.
    fn delete(&mut self, path: String, recorded: TocEntry, layer: u32) {
        self.remove_below(&path, Some(layer));
        if self
            .items
            .get(path.as_str())
            .is_some_and(|item| item.layer < layer)
        {
            self.items.remove(path.as_str());
        }
        if self.keep_whiteouts {
            let marker = TocEntry {
                name: path,
                kind: EntryKind::Whiteout,
                size: 0,
                link_name: String::new(),
                xattrs: Vec::new(),
                ..recorded
            };
            self.insert(marker, layer);
        }
    }

    fn insert(&mut self, mut entry: TocEntry, layer: u32) {
        if let Some((parent, _)) = entry.name.rsplit_once('/') {
            let parent = parent.to_owned();
            self.ensure_dir(&parent, layer);
        }
        let old = self.items.get(entry.name.as_str());
        if old.is_some_and(|o| o.entry.kind == EntryKind::Dir) && entry.kind != EntryKind::Dir {
            self.remove_below(&entry.name, None);
        }
        let opaque = self.keep_whiteouts
            && entry.kind == EntryKind::Dir
            && self
                .items
                .get(entry.name.as_str())
                .is_some_and(|o| o.opaque);
        let path = std::mem::take(&mut entry.name).into_boxed_str();
        let item = Item {
            entry,
            layer,
            nlink: 1,
            group: None,
            opaque,
        };
        self.items.insert(path, item);
    }

    /// Makes `dir` and its parents directories, replacing lower non-directories in the way.
    fn ensure_dir(&mut self, dir: &str, layer: u32) {
        let mut end = 0;
        while end < dir.len() {
            end = dir[end..].find('/').map_or(dir.len(), |i| end + i);
            let path = &dir[..end];
            let is_dir = self
                .items
                .get(path)
                .is_some_and(|item| item.entry.kind == EntryKind::Dir);
            if !is_dir {
                self.remove_below(path, None);
                self.items
                    .insert(Box::from(path), Item::implicit_dir(layer));
            }
            end += 1;
        }
    }

    /// How many whiteouts and opaque marks the layers stacked so far hold.
    pub fn markers(&self) -> u64 {
        self.markers
    }

    /// The entry at `path` in the layers stacked so far.
    pub(crate) fn entry(&self, path: &str) -> Option<&TocEntry> {
        self.items.get(path).map(|item| &item.entry)
    }

    /// The entries beneath `dir` (`""`: the root) in the layers stacked so far, with their paths.
    pub(crate) fn beneath<'a>(
        &'a self,
        dir: &str,
    ) -> impl Iterator<Item = (&'a str, &'a TocEntry)> + 'a {
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        self.items
            .range::<str, _>((
                std::ops::Bound::Included(prefix.as_str()),
                std::ops::Bound::Unbounded,
            ))
            .take_while(move |(name, _)| name.starts_with(prefix.as_str()))
            .filter(|(name, _)| !name.is_empty())
            .map(|(name, item)| (name.as_ref(), &item.entry))
    }

    /// Removes every entry beneath `dir` (`""`: the root); with `below`, only those of lower
    /// layers.
    fn remove_below(&mut self, dir: &str, below: Option<u32>) {
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        let doomed: Vec<Box<str>> = self
            .items
            .range::<str, _>((
                std::ops::Bound::Included(prefix.as_str()),
                std::ops::Bound::Unbounded,
            ))
            .take_while(|(name, _)| name.starts_with(prefix.as_str()))
            .filter(|(name, item)| !name.is_empty() && below.is_none_or(|l| item.layer < l))
            .map(|(name, _)| name.clone())
            .collect();
        for name in doomed {
            self.items.remove(&name);
        }
    }

    /// The entries as a TOC lists them, in path order (the root left out): a hardlink stays one
    /// while its group's first name is still there from its layer, else it is the file it is.
    pub fn into_toc(self) -> Vec<TocEntry> {
        let layers: HashMap<&str, u32> = self
            .items
            .iter()
            .map(|(name, item)| (name.as_ref(), item.layer))
            .collect();
        let stale: Vec<bool> = self
            .items
            .values()
            .map(|item| {
                item.entry.kind == EntryKind::Hardlink
                    && layers.get(item.entry.link_name.as_str()) != Some(&item.layer)
            })
            .collect();
        self.items
            .into_iter()
            .zip(stale)
            .skip(1)
            .map(|((name, item), stale)| {
                let mut entry = item.entry;
                entry.name = name.into_string();
                entry.opaque = item.opaque;
                if stale {
                    entry.kind = EntryKind::Reg;
                    entry.link_name.clear();
                }
                entry
            })
            .collect()
    }

    /// The tree: entries in path order, children listed, hardlink groups numbered.
    pub fn finish(self) -> FsTree {
        let mut groups: HashMap<(u32, Box<str>), u64> = HashMap::new();
        let mut nodes: Vec<Node> = Vec::with_capacity(self.items.len());
        for (index, (path, item)) in self.items.into_iter().enumerate() {
            let ino = match item.group {
                Some(group) => *groups
                    .entry((item.layer, group))
                    .or_insert(index as u64 + 1),
                None => index as u64 + 1,
            };
            let e = item.entry;
            let (kind, body) = match e.kind {
                EntryKind::Hardlink => (EntryKind::Reg, Some(e.link_name.clone().into_boxed_str())),
                kind => (kind, None),
            };
            let size = match kind {
                EntryKind::Symlink => e.link_name.len() as u64,
                _ => e.size,
            };
            nodes.push(Node {
                path,
                kind,
                mode: e.mode,
                uid: e.uid,
                gid: e.gid,
                size,
                mtime: e.mod_time,
                link: if kind == EntryKind::Symlink {
                    e.link_name.into_boxed_str()
                } else {
                    Box::default()
                },
                dev_major: e.dev_major,
                dev_minor: e.dev_minor,
                xattrs: e.xattrs,
                layer: item.layer,
                body,
                ino,
                nlink: item.nlink,
                opaque: item.opaque,
                children: Vec::new(),
            });
        }
        // Children in path order are in name order too: siblings share their parent's prefix.
        let mut parents: Vec<(u32, u32)> = Vec::new();
        for (index, node) in nodes.iter().enumerate().skip(1) {
            let parent = node.path.rsplit_once('/').map_or("", |(p, _)| p);
            if let Ok(p) = nodes.binary_search_by(|n| n.path.as_ref().cmp(parent)) {
                parents.push((p as u32, index as u32));
            }
        }
        for (parent, child) in parents {
            nodes[parent as usize].children.push(child);
        }
        let mut tree = FsTree {
            nodes,
            layers: self.layers,
        };
        for index in 0..tree.nodes.len() {
            if tree.nodes[index].kind == EntryKind::Dir {
                let subdirs = tree.nodes[index]
                    .children
                    .iter()
                    .filter(|&&c| tree.nodes[c as usize].kind == EntryKind::Dir)
                    .count();
                tree.nodes[index].nlink = 2 + subdirs as u32;
            }
        }
        tree
    }
}

/// `a/b/c` → (`a/b`, `c`); `c` → (`""`, `c`).
fn split(name: &str) -> (&str, &str) {
    name.rsplit_once('/').unwrap_or(("", name))
}

fn join(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_owned()
    } else {
        format!("{parent}/{name}")
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    /// A layer's tar entries, written `dir/`, `link->target`, `hardlink=>target` or `file`.
    pub(crate) fn layer(spec: &str) -> Vec<TocEntry> {
        spec.split_whitespace()
            .map(|word| {
                let (name, kind, link) = if let Some((name, target)) = word.split_once("->") {
                    (name, EntryKind::Symlink, target)
                } else if let Some((name, target)) = word.split_once("=>") {
                    (name, EntryKind::Hardlink, target)
                } else if let Some(name) = word.strip_suffix('/') {
                    (name, EntryKind::Dir, "")
                } else {
                    (word, EntryKind::Reg, "")
                };
                let mut entry = Item::implicit_dir(0).entry;
                entry.name = name.to_owned();
                entry.kind = kind;
                entry.link_name = link.to_owned();
                entry.size = if kind == EntryKind::Reg { 3 } else { 0 };
                entry.mod_time = 1;
                entry
            })
            .collect()
    }

    pub(crate) fn stack(layers: &[&str], single: bool) -> FsTree {
        let mut stack = if single {
            Stack::keeping_whiteouts()
        } else {
            Stack::merged()
        };
        for (i, spec) in layers.iter().enumerate() {
            let source = LayerSource {
                entries: layer(spec),
                bodies: Bodies::OwnPath,
                markers_by_name: true,
            };
            stack.push(&format!("layer{i}"), 0, source);
        }
        stack.finish()
    }

    fn paths(tree: &FsTree) -> String {
        let kinds: Vec<String> = tree
            .entries(&[], None)
            .map(|n| format!("{} {}", n.path, n.kind.as_str()))
            .collect();
        kinds.join(", ")
    }

    #[test]
    fn whiteouts_and_opaque_directories_hide_what_is_below() {
        let base = "etc/ etc/motd etc/keep app/ app/old lib/ lib/x";
        // A whiteout, an opaque directory, a file replacing a directory (and its subtree), and
        // a file whose parents the tar does not list.
        let top = "etc/.wh.motd app/ app/.wh..wh..opq app/new lib srv/data/f";
        let merged = stack(&[base, top], false);
        assert_eq!(
            paths(&merged),
            "app dir, app/new reg, etc dir, etc/keep reg, lib reg, srv dir, srv/data dir, \
             srv/data/f reg"
        );
        assert_eq!(merged.node(merged.get("app/new").unwrap()).layer, 1);
        let own = stack(&[top], true);
        assert_eq!(
            own.node(own.get("etc/motd").unwrap()).kind,
            EntryKind::Whiteout
        );
        assert!(own.node(own.get("app").unwrap()).opaque);
    }

    #[test]
    fn hardlinks_share_an_inode_with_the_last_header_applied() {
        let mut entries = layer("a b=>a c");
        entries[1].mode = 0o600;
        let mut stack = Stack::merged();
        let source = LayerSource {
            entries,
            bodies: Bodies::OwnPath,
            markers_by_name: true,
        };
        stack.push("layer0", 0, source);
        let tree = stack.finish();
        let node = |p: &str| tree.node(tree.get(p).unwrap());
        let (a, b, c) = (node("a"), node("b"), node("c"));
        assert_eq!((a.ino, a.nlink, a.mode), (b.ino, 2, 0o600));
        assert_eq!((b.kind, b.size, b.nlink), (EntryKind::Reg, 3, 2));
        assert_ne!(c.ino, a.ino);
        assert_eq!(c.nlink, 1);
    }
}
