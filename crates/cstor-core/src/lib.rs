//! cstor-core reads and writes containers-storage — the on-disk image store of podman, buildah,
//! skopeo and CRI-O (overlay driver) — directly, without a daemon.
//!
//! Start with [`Store::open`] (or [`store::config::discover`] to find the store the way podman
//! does). The folders follow the data flow, each depending only on those before it:
//!
//! - [`store`]: the store's metadata — configuration, locks, layer and image records, names,
//!   the overlay driver's links;
//! - [`content`]: a layer's content — tar-split, the bit-for-bit export and what reads it;
//! - [`extract`]: layers applied into a directory with overlay semantics;
//! - [`write`]: new layers and images, crash-safe, under the store's locks;
//! - [`transport`]: image sources and destinations (OCI layout, docker-archive, registry,
//!   tarball, skopeo's proxy) and the pull between them and the store;
//! - [`ipc`]: fds and JSON-RPC over Unix sockets;
//! - [`serve`]: the store as a read-only OCI registry for other machines;
//! - [`verify`]: a check of the whole store;
//! - [`ops`]: every operation on a store, defined once, as the napi binding and the JSON-RPC
//!   server (and through it a rootless store's user-namespace helper) call them.
//!
//! Beside them, the few pieces every stage uses: [`error`], [`digest`], [`progress`], [`random`],
//! [`time`].

pub mod content;
pub mod digest;
pub mod error;
pub mod extract;
pub mod ipc;
pub mod ops;
pub mod progress;
pub mod random;
pub mod serve;
pub mod store;
pub mod threads;
pub mod time;
pub mod transport;
pub mod tree;
pub mod verify;
pub mod write;

pub use error::{Error, Result};
pub use store::images::{Image, ImageDetails, ImageRecord, Platform};
pub use store::layers::{Layer, LayerRecord};
pub use store::{Store, StoreOptions};
