//! An image's filesystem as one merged tree: the view `podman image mount` shows, or one
//! layer's own entries — built without mounting or extracting anything, and the one merge every
//! view of an image goes through.
//!
//! The data flows through one module per step: [`source`] gives a layer's entries — from its
//! tar-split headers, or as stored (its `diff/` walked, a composefs layer's EROFS blob read) —
//! and where their bodies lie; [`merge`] stacks layers as overlayfs does (whiteouts, opaque
//! directories, upper entries replacing lower ones, hardlink groups); [`node`] is the resulting
//! [`FsTree`]; [`resolve`] walks a path in it as a chroot would; [`body`] opens a file's content
//! in the owning layer's `diff/`; [`glob`] matches paths for [`FsTree::entries`]; [`cache`] keeps
//! built trees while the store is unchanged; [`toc`] lists an image's merged entries as a TOC;
//! [`diff`] compares images as `podman image diff` does; [`analyze`] counts each layer's files
//! and the waste as dive does; [`composefs_image`] is an image's tree as composefs-rs builds it.
//! Extraction ([`crate::extract`]) writes a tree stacked here from the layers as stored.

pub mod analyze;
pub mod body;
pub mod cache;
pub mod composefs_image;
pub mod diff;
pub mod glob;
pub mod merge;
pub mod node;
pub mod resolve;
pub mod source;
pub mod toc;

pub use node::{FsTree, Node};
