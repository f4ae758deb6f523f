//! Writes, crash-safe and under containers/storage's locks: metadata files replaced atomically,
//! transactions over the layers and images stores, layer tars applied to `diff/`, and new layers
//! and images made as podman's `PutLayer` and `CreateImage` make them.

pub mod apply;
pub mod atomic;
pub mod image;
pub mod layer;
pub mod transaction;
