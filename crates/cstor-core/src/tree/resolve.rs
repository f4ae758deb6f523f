//! Walking a path in a tree as the kernel walks it inside a chroot of the image: `..` at the
//! root stays at the root, an absolute symlink target starts again at the image's root, so no
//! path leaves the image; more than [`MAX_SYMLINKS`] symlinks on the way is `ELOOP`.

use std::collections::VecDeque;

use crate::content::toc::EntryKind;
use crate::error::{Error, FsCode, Result};
use crate::tree::node::FsTree;

/// Linux's limit on the symlinks one lookup follows (`MAXSYMLINKS`).
pub const MAX_SYMLINKS: usize = 40;

/// Whether the last component, when a symlink, is followed (`stat`) or not (`lstat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Follow {
    Last,
    NotLast,
}

impl FsTree {
    /// The entry `path` names; relative paths are relative to the root.
    pub fn resolve(&self, path: &str, follow: Follow) -> Result<u32> {
        let fail = |code| Error::Fs {
            code,
            path: path.to_owned(),
        };
        if path.contains('\0') {
            return Err(fail(FsCode::Invalid));
        }
        if path.is_empty() {
            return Err(fail(FsCode::NoEntry));
        }
        // A trailing slash asks for a directory, through a final symlink too.
        let wants_dir = path.ends_with('/');
        let follow = if wants_dir { Follow::Last } else { follow };
        let mut pending: VecDeque<String> = components(path).collect();
        // The directories walked through, root first: `..` pops one.
        let mut walked: Vec<u32> = vec![0];
        let mut links = 0;
        while let Some(component) = pending.pop_front() {
            let here = *walked.last().unwrap_or(&0);
            if self.node(here).kind != EntryKind::Dir {
                return Err(fail(FsCode::NotDir));
            }
            match component.as_str() {
                "." => continue,
                ".." => {
                    if walked.len() > 1 {
                        walked.pop();
                    }
                    continue;
                }
                _ => {}
            }
            let child = self
                .child(here, &component)
                .ok_or_else(|| fail(FsCode::NoEntry))?;
            let node = self.node(child);
            let last = pending.is_empty();
            if node.kind == EntryKind::Symlink && (!last || follow == Follow::Last) {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(fail(FsCode::Loop));
                }
                if node.link.starts_with('/') {
                    walked.truncate(1);
                }
                if node.link.is_empty() {
                    return Err(fail(FsCode::NoEntry));
                }
                for (i, part) in components(&node.link).enumerate() {
                    pending.insert(i, part);
                }
                continue;
            }
            walked.push(child);
        }
        let found = *walked.last().unwrap_or(&0);
        if wants_dir && self.node(found).kind != EntryKind::Dir {
            return Err(fail(FsCode::NotDir));
        }
        Ok(found)
    }
}

/// The non-empty components of a path.
fn components(path: &str) -> impl Iterator<Item = String> + '_ {
    path.split('/').filter(|c| !c.is_empty()).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::merge::tests::stack;

    #[test]
    fn resolves_as_a_chroot_does() {
        let tree = stack(
            &[
                "etc/ etc/target etc/abs->/etc/target etc/up->../../../../etc/target \
               etc/root->/../.. etc/loop->loop etc/dir->.",
            ],
            false,
        );
        let outcome = |path: &str, follow: Follow| match tree.resolve(path, follow) {
            Ok(n) => format!("/{}", tree.node(n).path),
            Err(e) => e.code().to_owned(),
        };
        let cases = [
            ("/etc/abs", Follow::Last, "/etc/target"),
            ("etc/up", Follow::Last, "/etc/target"),
            (
                "/../../etc/root/etc/dir/dir/up",
                Follow::Last,
                "/etc/target",
            ),
            ("/etc/root", Follow::Last, "/"),
            ("/etc/loop", Follow::Last, "ELOOP"),
            ("/etc/loop", Follow::NotLast, "/etc/loop"),
            ("/etc/target/x", Follow::Last, "ENOTDIR"),
            ("/etc/target/", Follow::NotLast, "ENOTDIR"),
            ("/etc/target/..", Follow::Last, "ENOTDIR"),
            ("/etc/none", Follow::Last, "ENOENT"),
            ("/etc/\0", Follow::Last, "EINVAL"),
            ("", Follow::Last, "ENOENT"),
        ];
        for (path, follow, expected) in cases {
            assert_eq!(outcome(path, follow), expected, "{path:?}");
        }
    }
}
