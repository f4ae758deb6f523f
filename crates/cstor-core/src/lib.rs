//! cstor-core reads containers-storage — the on-disk image store of podman, buildah, skopeo and
//! CRI-O (overlay driver) — directly, without a daemon.
//!
//! Start with [`Store::open`] (or [`config::discover`] to find the store the way podman does),
//! then list and resolve [`images`] and [`layers`]. The module names follow the containers/storage
//! vocabulary and the sections of FORMAT.md: [`lock`] for its lock files, [`overlay`] for the
//! driver's link files, [`names`] for reference resolution.

pub mod apply;
pub mod atomic;
pub mod clone;
pub mod composefs;
pub mod config;
pub mod containers;
pub mod docker_archive;
pub mod error;
pub mod export;
pub mod extract;
pub mod fdpass;
pub mod hasher;
pub mod image_write;
pub mod images;
pub mod layer_create;
pub mod layers;
pub mod lock;
pub mod metadata_check;
pub mod names;
pub mod oci;
pub mod overlay;
pub mod progress;
pub mod proxy;
pub mod pull;
pub mod random;
pub mod reader;
pub mod registry;
pub mod rpc;
pub mod splitfdstream;
pub mod store;
pub mod tarball;
pub mod tardiff;
pub mod tarsplit;
pub mod toc;
pub mod transaction;
pub mod verify;
pub mod whiteout;
pub(crate) mod xattr;

pub use error::{Error, Result};
pub use images::{Image, ImageDetails, ImageRecord, Platform};
pub use layers::{Layer, LayerRecord};
pub use store::{Store, StoreOptions};
