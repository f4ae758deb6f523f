//! The overlay driver's per-layer files: `overlay/<id>/link`, `overlay/<id>/lower` and the
//! `overlay/l/<LINK>` symlinks (FORMAT.md, "Store layout").
//!
//! The short links exist because a mount's option string is limited to a page: `lower` names the
//! layers below by link (`l/AAA…:l/BBB…`, parent first) instead of by 64-character ID. cstor reads
//! them to walk the chain exactly as the kernel will see it, and never follows a link: each
//! `l/` symlink is read with `readlinkat` and must have the one shape the driver writes,
//! `../<id>/diff`.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};
use crate::store::layers::{find_layer, Layer, MAX_CHAIN_DEPTH};
use crate::store::{is_valid_id, read_metadata_file, Store, StoreDir};

/// Whether `link` has the shape of a link name: the driver writes 26 base32 characters; any run
/// of upper-case letters and digits is accepted so that a store written by another version still
/// reads, and nothing that could be a path is.
fn is_valid_link(link: &str) -> bool {
    !link.is_empty()
        && link.len() <= 64
        && link
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// The file podman 5.8's driver writes beside `lower`: the same chain by layer ID
/// (`<parent-id>:<grandparent-id>:…`), free of the `l/` indirection.
pub(crate) const LOWER_LAYERS: &str = "lower-layers";

pub(crate) fn overlay_file(id: &str, file: &str) -> PathBuf {
    Path::new("overlay").join(id).join(file)
}

/// Reads a small text file of a layer's overlay directory, trimmed; `None` if absent.
fn read_layer_file(store_dir: &StoreDir, id: &str, file: &str) -> Result<Option<String>> {
    let path = overlay_file(id, file);
    read_metadata_file(&store_dir.dir, &path)?
        .map(|bytes| {
            String::from_utf8(bytes)
                .map(|s| s.trim().to_owned())
                .map_err(|_| Error::corrupt(&path, "not UTF-8"))
        })
        .transpose()
}

/// Refuses a chain longer than overlay can mount.
fn within_depth(path: &Path, lowers: usize) -> Result<()> {
    if lowers > MAX_CHAIN_DEPTH {
        return Err(Error::corrupt(
            path,
            format!("{lowers} lower layers, more than overlay's {MAX_CHAIN_DEPTH}"),
        ));
    }
    Ok(())
}

/// The layer ID an `l/` link points to, from the link's target `../<id>/diff`.
pub(crate) fn link_target(store_dir: &StoreDir, link: &str) -> Result<String> {
    if !is_valid_link(link) {
        return Err(Error::InvalidArgument(format!(
            "{link:?} is not an overlay link name"
        )));
    }
    let path = Path::new("overlay/l").join(link);
    let target = store_dir.dir.read_link_contents(&path).at(&path)?;
    let target = target.to_str().unwrap_or_default();
    target
        .strip_prefix("../")
        .and_then(|rest| rest.strip_suffix("/diff"))
        .filter(|id| is_valid_id(id))
        .map(str::to_owned)
        .ok_or_else(|| {
            Error::corrupt(
                &path,
                format!("link target {target:?} is not ../<layer-id>/diff"),
            )
        })
}

impl Store {
    /// The short link name of a layer (`overlay/<id>/link`), if it has one.
    pub fn layer_link(&self, layer: &Layer) -> Result<Option<String>> {
        let link = read_layer_file(self.dir(layer.store_index), layer.id(), "link")?;
        match link {
            Some(link) if !is_valid_link(&link) => Err(Error::corrupt(
                overlay_file(layer.id(), "link"),
                format!("{link:?} is not a link name"),
            )),
            other => Ok(other),
        }
    }

    /// The link names in a layer's `lower` file, parent first, base last; empty for a base layer.
    pub fn layer_lower_links(&self, layer: &Layer) -> Result<Vec<String>> {
        let Some(lower) = read_layer_file(self.dir(layer.store_index), layer.id(), "lower")? else {
            return Ok(Vec::new());
        };
        let path = overlay_file(layer.id(), "lower");
        let links: Vec<String> = lower
            .split(':')
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                entry
                    .strip_prefix("l/")
                    .filter(|link| is_valid_link(link))
                    .map(str::to_owned)
                    .ok_or_else(|| {
                        Error::corrupt(&path, format!("entry {entry:?} is not l/<LINK>"))
                    })
            })
            .collect::<Result<_>>()?;
        within_depth(&path, links.len())?;
        Ok(links)
    }

    /// The IDs of the layers beneath `layer`, parent first: its `lower-layers` file when it has
    /// one, else its `lower` links resolved through `l/` — the order in which podman 5.8's driver
    /// looks when it writes a child's `lower-layers`.
    pub fn layer_lower_ids(&self, layer: &Layer) -> Result<Vec<String>> {
        let store_dir = self.dir(layer.store_index);
        let Some(ids) = read_layer_file(store_dir, layer.id(), LOWER_LAYERS)? else {
            return self
                .layer_lower_links(layer)?
                .iter()
                .map(|link| link_target(store_dir, link))
                .collect();
        };
        let path = overlay_file(layer.id(), LOWER_LAYERS);
        let ids: Vec<String> = ids
            .split(':')
            .filter(|id| !id.is_empty())
            .map(|id| {
                if is_valid_id(id) {
                    Ok(id.to_owned())
                } else {
                    Err(Error::corrupt(&path, format!("{id:?} is not a layer ID")))
                }
            })
            .collect::<Result<_>>()?;
        within_depth(&path, ids.len())?;
        Ok(ids)
    }

    /// The layer an `overlay/l/<LINK>` symlink stands for, looked up in the main store and then
    /// in each additional image store.
    pub fn resolve_link(&self, link: &str) -> Result<Layer> {
        let layers = self.layers()?;
        for (index, store_dir) in self.dirs().iter().enumerate() {
            let id = match link_target(store_dir, link) {
                Ok(id) => id,
                Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                    continue
                }
                Err(e) => return Err(e),
            };
            return layers
                .iter()
                .find(|l| l.store_index == index && l.id() == id)
                .cloned()
                .ok_or_else(|| {
                    Error::corrupt(
                        Path::new("overlay/l").join(link),
                        format!("points to {id}, which layers.json does not list"),
                    )
                });
        }
        Err(Error::NoLayer {
            reference: link.to_owned(),
        })
    }

    /// The layers beneath `top` as the overlay mount would stack them, read from `lower` and the
    /// `l/` links rather than from `layers.json`: parent first, base last. A link that repeats or
    /// that leads back to `top` is a cycle.
    pub fn lower_chain(&self, top: &str) -> Result<Vec<Layer>> {
        let layers = self.layers()?;
        let layer = find_layer(&layers, top)?;
        let by_id: HashMap<(usize, &str), &Layer> = layers
            .iter()
            .map(|l| ((l.store_index, l.id()), l))
            .collect();
        let store_dir = self.dir(layer.store_index);
        let mut seen = HashSet::from([layer.id().to_owned()]);
        let mut chain = Vec::new();
        for link in self.layer_lower_links(&layer)? {
            let id = link_target(store_dir, &link)?;
            let path = overlay_file(layer.id(), "lower");
            if !seen.insert(id.clone()) {
                return Err(Error::corrupt(
                    path,
                    format!("layer {id} appears twice: a cycle"),
                ));
            }
            let lower = by_id
                .get(&(layer.store_index, id.as_str()))
                .ok_or_else(|| {
                    Error::corrupt(&path, format!("link {link} leads to unknown layer {id}"))
                })?;
            chain.push((*lower).clone());
        }
        Ok(chain)
    }
}
