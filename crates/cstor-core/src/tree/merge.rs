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
use crate::tree::source::LayerSource;

/// Mode of a directory no header describes: containers/storage creates missing parents 0755.
const IMPLICIT_DIR_MODE: u32 = 0o755;

/// One entry while layers are being stacked.
struct Item {
    entry: TocEntry,
    layer: u32,
    nlink: u32,
    /// A hardlink's group: the tar path of its first name.
    group: Option<String>,
    opaque: bool,
}

impl Item {
    fn implicit_dir(name: String, layer: u32) -> Item {
        Item {
            entry: TocEntry {
                name,
                kind: EntryKind::Dir,
                size: 0,
                mode: IMPLICIT_DIR_MODE,
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
            },
            layer,
            nlink: 1,
            group: None,
            opaque: false,
        }
    }
}

/// Layers being stacked into a tree.
pub struct Stack {
    items: BTreeMap<String, Item>,
    layers: Vec<TreeLayer>,
    /// Keep deletions and opaque marks as entries (a layer's own tree) instead of applying them.
    keep_whiteouts: bool,
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
        items.insert(String::new(), Item::implicit_dir(String::new(), 0));
        Stack {
            items,
            layers: Vec::new(),
            keep_whiteouts,
        }
    }

    /// Puts the layer `id` (of store `store_index`) on top.
    pub fn push(&mut self, id: &str, store_index: usize, source: LayerSource) {
        let layer = self.layers.len() as u32;
        self.layers.push(TreeLayer {
            id: id.to_owned(),
            store_index,
            bodies: source.bodies,
        });
        let mut kept = Vec::with_capacity(source.entries.len());
        let mut deleted = Vec::new();
        let mut opaque = Vec::new();
        for mut entry in source.entries {
            let (parent, base) = split(&entry.name);
            match whiteout::marker(base.as_ref()) {
                Marker::Opaque => opaque.push(parent.to_owned()),
                Marker::Whiteout(name) => {
                    deleted.push((join(parent, &name.to_string_lossy()), entry))
                }
                Marker::None if is_overlay_whiteout(&entry) => {
                    deleted.push((entry.name.clone(), entry))
                }
                Marker::None => {
                    if entry.kind == EntryKind::Dir && has_flag(&entry, &whiteout::OPAQUE_XATTRS) {
                        opaque.push(entry.name.clone());
                    }
                    entry
                        .xattrs
                        .retain(|(k, _)| !whiteout::is_overlay_xattr(k.as_bytes()));
                    kept.push(entry);
                }
            }
        }
        for dir in opaque {
            self.remove_below(&dir);
            if self.keep_whiteouts {
                self.ensure_dir(&dir, layer);
                if let Some(item) = self.items.get_mut(&dir) {
                    item.opaque = true;
                }
            }
        }
        for (path, entry) in deleted {
            self.remove_below(&path);
            self.items.remove(&path);
            if self.keep_whiteouts {
                let marker = TocEntry {
                    name: path.clone(),
                    kind: EntryKind::Whiteout,
                    size: 0,
                    link_name: String::new(),
                    xattrs: Vec::new(),
                    ..entry
                };
                self.insert(marker, layer, 1, None);
            }
        }
        for (entry, nlink, group) in hardlink_groups(kept) {
            self.insert(entry, layer, nlink, group);
        }
    }

    fn insert(&mut self, entry: TocEntry, layer: u32, nlink: u32, group: Option<String>) {
        if let Some((parent, _)) = entry.name.rsplit_once('/') {
            self.ensure_dir(parent, layer);
        }
        let old = self.items.get(&entry.name);
        if old.is_some_and(|o| o.entry.kind == EntryKind::Dir) && entry.kind != EntryKind::Dir {
            self.remove_below(&entry.name);
        }
        let opaque = self.keep_whiteouts
            && entry.kind == EntryKind::Dir
            && self.items.get(&entry.name).is_some_and(|o| o.opaque);
        let name = entry.name.clone();
        let item = Item {
            entry,
            layer,
            nlink,
            group,
            opaque,
        };
        self.items.insert(name, item);
    }

    /// Makes `dir` and its parents directories, replacing lower non-directories in the way.
    fn ensure_dir(&mut self, dir: &str, layer: u32) {
        let mut end = 0;
        while end < dir.len() {
            end = dir[end..].find('/').map_or(dir.len(), |i| end + i);
            let path = &dir[..end];
            match self.items.get(path) {
                Some(item) if item.entry.kind == EntryKind::Dir => {}
                _ => {
                    self.items
                        .insert(path.to_owned(), Item::implicit_dir(path.to_owned(), layer));
                }
            }
            end += 1;
        }
    }

    /// The entry at `path` in the layers stacked so far.
    pub(crate) fn entry(&self, path: &str) -> Option<&TocEntry> {
        self.items.get(path).map(|item| &item.entry)
    }

    /// The entries beneath `dir` (`""`: the root) in the layers stacked so far.
    pub(crate) fn beneath<'a>(&'a self, dir: &str) -> impl Iterator<Item = &'a TocEntry> + 'a {
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        self.items
            .range(prefix.clone()..)
            .take_while(move |(name, _)| name.starts_with(&prefix))
            .filter(|(name, _)| !name.is_empty())
            .map(|(_, item)| &item.entry)
    }

    /// Removes every entry beneath `dir` (`""`: the root).
    fn remove_below(&mut self, dir: &str) {
        let doomed: Vec<String> = self.beneath(dir).map(|e| e.name.clone()).collect();
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
            .map(|(name, item)| (name.as_str(), item.layer))
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
            .into_values()
            .zip(stale)
            .skip(1)
            .map(|(item, stale)| {
                let mut entry = item.entry;
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
        let mut groups: HashMap<(u32, String), u64> = HashMap::new();
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
                path: path.into_boxed_str(),
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

/// A whiteout in overlayfs's own form (a layer source that reads `diff/`-shaped trees gives it).
fn is_overlay_whiteout(entry: &TocEntry) -> bool {
    (entry.kind == EntryKind::Char && entry.dev_major == 0 && entry.dev_minor == 0)
        || (entry.kind == EntryKind::Reg
            && entry.size == 0
            && has_flag(entry, &whiteout::WHITEOUT_XATTRS))
}

/// Whether one of `names` is set to `y` on the entry.
fn has_flag(entry: &TocEntry, names: &[&str]) -> bool {
    entry
        .xattrs
        .iter()
        .any(|(k, v)| names.contains(&k.as_str()) && v.as_slice() == b"y")
}

/// The layer's entries with each hardlink group's shared metadata (its last header's), the
/// group's size and its first name; a link to a name the layer does not have stays a file of
/// its own.
fn hardlink_groups(entries: Vec<TocEntry>) -> Vec<(TocEntry, u32, Option<String>)> {
    let index: HashMap<&str, usize> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| (e.name.as_str(), i))
        .collect();
    // Member → its group's first name (following links to links).
    let mut root_of: Vec<Option<usize>> = vec![None; entries.len()];
    for (i, entry) in entries.iter().enumerate() {
        if entry.kind != EntryKind::Hardlink {
            continue;
        }
        let mut target = index.get(entry.link_name.as_str()).copied();
        let mut hops = 0;
        while let Some(t) = target {
            if entries[t].kind != EntryKind::Hardlink || hops > entries.len() {
                break;
            }
            target = index.get(entries[t].link_name.as_str()).copied();
            hops += 1;
        }
        root_of[i] = target.filter(|&t| entries[t].kind == EntryKind::Reg);
    }
    let mut members: HashMap<usize, Vec<usize>> = HashMap::new();
    for (i, root) in root_of.iter().enumerate() {
        if let Some(root) = root {
            members.entry(*root).or_insert_with(|| vec![*root]).push(i);
        }
    }
    // Each member takes the owner, mode and time of the group's last header, the last one
    // applied, and the xattrs every header set (a header without them removes none).
    let mut shared: Vec<Option<(usize, usize, u32)>> = vec![None; entries.len()];
    let mut group_xattrs: HashMap<usize, Vec<(String, Vec<u8>)>> = HashMap::new();
    for (&root, group) in &members {
        let last = group.iter().copied().max().unwrap_or(root);
        let mut in_order = group.clone();
        in_order.sort_unstable();
        let mut xattrs: Vec<(String, Vec<u8>)> = Vec::new();
        for &m in &in_order {
            for (key, value) in &entries[m].xattrs {
                match xattrs.iter_mut().find(|(k, _)| k == key) {
                    Some(slot) => slot.1 = value.clone(),
                    None => xattrs.push((key.clone(), value.clone())),
                }
            }
            shared[m] = Some((root, last, group.len() as u32));
        }
        group_xattrs.insert(root, xattrs);
    }
    let digests: Vec<Option<String>> = entries.iter().map(|e| e.digest.clone()).collect();
    let templates: Vec<(u32, u64, u64, i64, u64, String)> = entries
        .iter()
        .map(|e| (e.mode, e.uid, e.gid, e.mod_time, e.size, e.name.clone()))
        .collect();
    entries
        .into_iter()
        .enumerate()
        .map(|(i, mut entry)| match shared[i] {
            Some((root, last, nlink)) => {
                let (mode, uid, gid, mtime, _, _) = &templates[last];
                (entry.mode, entry.uid, entry.gid, entry.mod_time) = (*mode, *uid, *gid, *mtime);
                entry.xattrs = group_xattrs.get(&root).cloned().unwrap_or_default();
                let (.., size, root_name) = &templates[root];
                entry.size = *size;
                entry.digest = digests[root].clone();
                if entry.kind == EntryKind::Hardlink {
                    entry.link_name = root_name.clone();
                }
                (entry, nlink, Some(root_name.clone()))
            }
            None if entry.kind == EntryKind::Hardlink => {
                // A link to a name this layer lacks: `diff/` still has the file under this name.
                entry.kind = EntryKind::Reg;
                entry.link_name.clear();
                (entry, 1, None)
            }
            None => (entry, 1, None),
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::tree::source::Bodies;

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
                let mut entry = Item::implicit_dir(name.to_owned(), 0).entry;
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
            };
            stack.push(&format!("layer{i}"), 0, source);
        }
        stack.finish()
    }

    fn paths(tree: &FsTree) -> String {
        let kinds: Vec<String> = tree
            .entries(&[])
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
