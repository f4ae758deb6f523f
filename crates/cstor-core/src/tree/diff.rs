//! What `podman image diff A [B]` prints: the paths A adds (`A`), changes (`C`) and deletes
//! (`D`) relative to B, or to its top layer's parent when B is not given.
//!
//! podman asks containers/storage for the layers' `Changes` and drops a few paths every
//! container gets (libpod's `initInodes`). containers/storage answers one of two ways, and so
//! does this module:
//! - B's top layer is the parent of A's (or B is not given): the overlay driver reads A's top
//!   `diff/` alone (`archive.OverlayChanges`). A whiteout is `D`; an opaque directory that a lower
//!   layer has is `D` too; anything else is `C` when a lower layer (top first, stopping at one
//!   that whites it or a parent out) has the path, else `A` — but a directory a lower layer has
//!   with the same mode and time is not listed. The parents of an `A` or `D` path not listed
//!   yet are listed `C`.
//! - Otherwise both images are compared as trees (`archive.ChangesDirs`): a path only in A is
//!   `A` (with everything beneath it), one only in B is `D` (alone), one whose type, mode,
//!   owner, device, time, size (not a directory's), symlink target, capability or `user.*`
//!   xattrs differ is `C`, and a directory with changes beneath it is `C`.
//!
//! Divergence kept on purpose: where containers/storage `stat`s a path in a lower `diff/`, it
//! follows a symlink there (to the host's files for an absolute one); cstor looks the path up in
//! the layer's own entries, never outside the image.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::content::toc::EntryKind;
use crate::error::Result;
use crate::store::images::Image;
use crate::store::Store;
use crate::tree::node::{FsTree, Node};

/// Paths every container gets, which podman leaves out of every diff (libpod `initInodes`).
const INIT_INODES: [&str; 12] = [
    "/dev",
    "/dev/init",
    "/etc/hostname",
    "/etc/hosts",
    "/etc/resolv.conf",
    "/proc",
    "/run",
    "/run/notify",
    "/run/.containerenv",
    "/run/secrets",
    "/sys",
    "/etc/mtab",
];

/// One line of `podman image diff`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, TS)]
pub struct Change {
    /// The path, `/` first.
    pub path: String,
    /// `A` added, `C` changed, `D` deleted.
    #[ts(type = "'A' | 'C' | 'D'")]
    pub kind: String,
}

impl Change {
    fn new(kind: &str, path: &str) -> Change {
        Change {
            path: format!("/{path}"),
            kind: kind.to_owned(),
        }
    }
}

impl Store {
    /// What `podman image diff image [base]` prints, sorted by path.
    pub fn image_diff(&self, image: &Image, base: Option<&Image>) -> Result<Vec<Change>> {
        let layers = self.image_layers(image)?;
        let Some(top) = layers.first() else {
            return Ok(Vec::new());
        };
        let base_top = match base {
            Some(base) => base.record.layer.clone(),
            None => top.record.parent.clone(),
        };
        let mut changes = match base {
            Some(base) if top.record.parent != base_top => {
                tree_changes(&*self.image_tree(image)?, &*self.image_tree(base)?)
            }
            _ => {
                let upper = self.layer_tree(top)?;
                let lowers = layers[1..]
                    .iter()
                    .map(|layer| self.build_tree(std::slice::from_ref(layer), true))
                    .collect::<Result<Vec<_>>>()?;
                overlay_changes(&upper, &lowers)
            }
        };
        changes.retain(|c| !INIT_INODES.contains(&c.path.as_str()));
        changes.sort();
        changes.dedup();
        Ok(changes)
    }
}

/// Changes of a top layer over its lower layers (top first), from its own entries.
fn overlay_changes(upper: &FsTree, lowers: &[FsTree]) -> Vec<Change> {
    let mut changes = Vec::new();
    let mut changed_dirs: HashSet<&str> = HashSet::new();
    for node in upper.entries(&[], None) {
        let path: &str = &node.path;
        let kind = if node.kind == EntryKind::Whiteout || deleted_opaque(node, lowers) {
            "D"
        } else {
            match lowers.iter().find_map(|lower| lower_has(lower, path)) {
                Some(Some(old)) if old.is_dir() && node.is_dir() && same_dir(old, node) => continue,
                Some(Some(_)) => "C",
                _ => "A",
            }
        };
        if node.is_dir() {
            changed_dirs.insert(path);
        }
        if kind != "C" {
            let mut parent = path;
            let mut missing = Vec::new();
            while let Some((up, _)) = parent.rsplit_once('/') {
                if changed_dirs.insert(up) {
                    missing.push(up);
                }
                parent = up;
            }
            changes.extend(missing.into_iter().rev().map(|p| Change::new("C", p)));
        }
        changes.push(Change::new(kind, path));
    }
    changes
}

/// An opaque directory hides a lower layer's directory of that name: containers/storage
/// reports that directory deleted (and what the upper one holds added).
fn deleted_opaque(node: &Node, lowers: &[FsTree]) -> bool {
    node.opaque
        && lowers
            .iter()
            .find_map(|lower| lower.get(&node.path).map(|n| lower.node(n)))
            .is_some_and(|old| old.kind != EntryKind::Whiteout)
}

/// What a lower layer says of `path`: `Some(Some(entry))` it has it, `Some(None)` it whites it
/// or a parent out (the search ends: the path is new above it), `None` nothing.
fn lower_has<'a>(lower: &'a FsTree, path: &str) -> Option<Option<&'a Node>> {
    let mut prefix = path;
    loop {
        if let Some(n) = lower.get(prefix) {
            if lower.node(n).kind == EntryKind::Whiteout {
                return Some(None);
            }
        }
        match prefix.rsplit_once('/') {
            Some((up, _)) => prefix = up,
            None => break,
        }
    }
    lower.get(path).map(|n| Some(lower.node(n)))
}

fn same_dir(old: &Node, new: &Node) -> bool {
    old.mode == new.mode && old.mtime == new.mtime
}

/// Changes of one tree over another, compared path by path.
fn tree_changes(new: &FsTree, old: &FsTree) -> Vec<Change> {
    let mut changes = Vec::new();
    walk(new, 0, old, Some(0), false, &mut changes);
    changes
}

/// Compares the entry `at` of `new` with `old_at` of `old` (none: it is new, with all beneath
/// it); `listed` when it is already listed as changed.
fn walk(
    new: &FsTree,
    at: u32,
    old: &FsTree,
    old_at: Option<u32>,
    mut listed: bool,
    changes: &mut Vec<Change>,
) {
    let at_entry = changes.len();
    let node = new.node(at);
    if old_at.is_none() {
        changes.push(Change::new("A", &node.path));
        listed = true;
    }
    for &child in &node.children {
        let old_child = old_at.and_then(|o| old.child(o, new.node(child).name()));
        let changed = old_child.is_some_and(|o| differs(old.node(o), new.node(child)));
        if changed {
            changes.push(Change::new("C", &new.node(child).path));
        }
        walk(new, child, old, old_child, changed, changes);
    }
    if let Some(o) = old_at.filter(|_| node.is_dir()) {
        for gone in old.children(o) {
            if new.child(at, gone.name()).is_none() {
                changes.push(Change::new("D", &gone.path));
            }
        }
    }
    // A directory with changes beneath it is listed too, before them.
    if changes.len() > at_entry && node.is_dir() && !listed && at != 0 {
        changes.insert(at_entry, Change::new("C", &node.path));
    }
}

/// Whether containers/storage's `ChangesDirs` sees a change between two entries of a name.
fn differs(old: &Node, new: &Node) -> bool {
    let user_xattrs = |n: &Node| -> Vec<(String, Vec<u8>)> {
        let mut own: Vec<_> = n
            .xattrs
            .iter()
            .filter(|(k, _)| k.starts_with("user."))
            .cloned()
            .collect();
        own.sort();
        own
    };
    let capability = |n: &Node| {
        n.xattrs
            .iter()
            .find(|(k, _)| k == "security.capability")
            .map(|(_, v)| v.clone())
    };
    old.kind != new.kind
        || old.mode != new.mode
        || (old.uid, old.gid) != (new.uid, new.gid)
        || (old.dev_major, old.dev_minor) != (new.dev_major, new.dev_minor)
        || old.mtime != new.mtime
        || (!old.is_dir() && old.size != new.size)
        || old.link != new.link
        || capability(old) != capability(new)
        || user_xattrs(old) != user_xattrs(new)
}
