//! Layers: the records of `overlay-layers/layers.json` and the parent chains they form.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::store::lock::read_lock;
use crate::store::{is_valid_id, read_json_records, Store};

/// overlay stacks at most 500 lower layers under a layer (containers/storage's `maxDepth`), so a
/// longer chain is damage or an attack, never a real image.
pub const MAX_CHAIN_DEPTH: usize = 500;

/// One ID mapping range of a layer (`uidmap` / `gidmap`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdMapping {
    pub container_id: u32,
    pub host_id: u32,
    pub size: u32,
}

/// A record of `layers.json` / `volatile-layers.json`, field names as containers/storage writes
/// them. Fields are serialized in Go's order and omitted when empty, as `json.Marshal` of its
/// `Layer` does; fields cstor does not know are kept in `extra`, so a rewrite loses nothing.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct LayerRecord {
    pub id: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    #[serde(skip_serializing_if = "is_unset")]
    pub parent: Option<String>,
    #[serde(skip_serializing_if = "is_unset")]
    pub metadata: Option<String>,
    #[serde(skip_serializing_if = "is_unset")]
    pub mountlabel: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(skip_serializing_if = "is_unset")]
    pub compressed_diff_digest: Option<String>,
    #[serde(skip_serializing_if = "is_zero")]
    pub compressed_size: Option<i64>,
    #[serde(skip_serializing_if = "is_unset")]
    pub diff_digest: Option<String>,
    #[serde(skip_serializing_if = "is_zero")]
    pub diff_size: Option<i64>,
    #[serde(skip_serializing_if = "is_unset")]
    pub toc_digest: Option<String>,
    /// 0 uncompressed, 1 bzip2, 2 gzip, 3 xz, 4 zstd: how the layer arrived.
    #[serde(skip_serializing_if = "is_zero_i32")]
    pub compression: Option<i32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uidset: Vec<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gidset: Vec<u32>,
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub flags: serde_json::Map<String, serde_json::Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uidmap: Vec<IdMapping>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gidmap: Vec<IdMapping>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub big_data_names: Vec<String>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// Go's `omitempty` for a string: absent and empty are one.
pub(crate) fn is_unset(value: &Option<String>) -> bool {
    value.as_deref().is_none_or(str::is_empty)
}

fn is_zero(value: &Option<i64>) -> bool {
    value.is_none_or(|v| v == 0)
}

fn is_zero_i32(value: &Option<i32>) -> bool {
    value.is_none_or(|v| v == 0)
}

impl LayerRecord {
    /// containers/storage marks a layer `incomplete` while it is being written and deletes it on
    /// the next start if the writer died: such a record is garbage, not a layer.
    fn is_incomplete(&self) -> bool {
        self.flags
            .get("incomplete")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false)
    }
}

/// A layer of the store, with where it lives.
#[derive(Debug, Clone)]
pub struct Layer {
    pub record: LayerRecord,
    /// Index into [`Store::dirs`]: 0 is the main store.
    pub store_index: usize,
    /// Whether the layer lives in a read-only additional image store.
    pub read_only: bool,
    /// Whether it came from `volatile-layers.json`.
    pub volatile: bool,
}

impl Layer {
    pub fn id(&self) -> &str {
        &self.record.id
    }
}

const LAYERS_DIR: &str = "overlay-layers";

impl Store {
    /// Every complete layer of the main store and the additional image stores, in file order;
    /// an ID present in several places is reported once, from the first.
    pub fn layers(&self) -> Result<Vec<Layer>> {
        let mut seen = HashSet::new();
        let mut layers = Vec::new();
        for (index, store_dir) in self.dirs().iter().enumerate() {
            let dir = &store_dir.dir;
            let _guard = read_lock(dir, Path::new("overlay-layers/layers.lock"))?;
            for (file, volatile) in [("layers.json", false), ("volatile-layers.json", true)] {
                let path = Path::new(LAYERS_DIR).join(file);
                for record in read_json_records::<LayerRecord>(dir, &path)? {
                    if !is_valid_id(&record.id) {
                        return Err(Error::corrupt(
                            path,
                            format!("layer ID {:?} is not a valid ID", record.id),
                        ));
                    }
                    if record.is_incomplete() || !seen.insert(record.id.clone()) {
                        continue;
                    }
                    layers.push(Layer {
                        record,
                        store_index: index,
                        read_only: store_dir.read_only,
                        volatile,
                    });
                }
            }
        }
        Ok(layers)
    }

    /// The layer with this full ID, name, or unique ID prefix.
    pub fn layer(&self, reference: &str) -> Result<Layer> {
        find_layer(&self.layers()?, reference)
    }

    /// `top` and its ancestors by `parent`, top first, base last.
    pub fn layer_chain(&self, top: &str) -> Result<Vec<Layer>> {
        let layers = self.layers()?;
        let by_id: HashMap<&str, &Layer> = layers.iter().map(|l| (l.id(), l)).collect();
        parent_chain(&by_id, top)
    }
}

/// Follows `parent` links from `top`, refusing cycles, dangling parents and chains deeper than
/// overlay allows, so a hostile `layers.json` ends in an error rather than a loop.
pub(crate) fn parent_chain(by_id: &HashMap<&str, &Layer>, top: &str) -> Result<Vec<Layer>> {
    let mut chain: Vec<Layer> = Vec::new();
    let mut visited = HashSet::new();
    let mut next = Some(top.to_owned());
    while let Some(id) = next {
        let layer = by_id.get(id.as_str()).ok_or_else(|| match chain.last() {
            None => Error::NoLayer {
                reference: id.clone(),
            },
            Some(child) => Error::corrupt(
                Path::new(LAYERS_DIR).join("layers.json"),
                format!(
                    "layer {} names a parent {id} that does not exist",
                    child.id()
                ),
            ),
        })?;
        if !visited.insert(id.clone()) {
            return Err(Error::corrupt(
                Path::new(LAYERS_DIR).join("layers.json"),
                format!("the parent chain of layer {top} has a cycle at {id}"),
            ));
        }
        if chain.len() > MAX_CHAIN_DEPTH {
            return Err(Error::corrupt(
                Path::new(LAYERS_DIR).join("layers.json"),
                format!("the parent chain of layer {top} is deeper than {MAX_CHAIN_DEPTH}"),
            ));
        }
        next = layer.record.parent.clone().filter(|p| !p.is_empty());
        chain.push((*layer).clone());
    }
    Ok(chain)
}

/// Exact ID, then exact name, then unique ID prefix: the order containers/storage's
/// `Layer(id)` lookup uses.
pub(crate) fn find_layer(layers: &[Layer], reference: &str) -> Result<Layer> {
    if reference.is_empty() {
        return Err(Error::InvalidArgument("empty layer reference".into()));
    }
    if let Some(layer) = layers.iter().find(|l| l.id() == reference) {
        return Ok(layer.clone());
    }
    if let Some(layer) = layers
        .iter()
        .find(|l| l.record.names.iter().any(|n| n == reference))
    {
        return Ok(layer.clone());
    }
    let matches: Vec<&Layer> = layers
        .iter()
        .filter(|l| l.id().starts_with(reference))
        .collect();
    match matches.as_slice() {
        [] => Err(Error::NoLayer {
            reference: reference.to_owned(),
        }),
        [one] => Ok((*one).clone()),
        many => Err(Error::Ambiguous {
            reference: reference.to_owned(),
            candidates: many.iter().map(|l| l.id().to_owned()).collect(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(id: &str, parent: Option<&str>) -> Layer {
        Layer {
            record: LayerRecord {
                id: id.into(),
                parent: parent.map(Into::into),
                ..Default::default()
            },
            store_index: 0,
            read_only: false,
            volatile: false,
        }
    }

    fn index(layers: &[Layer]) -> HashMap<&str, &Layer> {
        layers.iter().map(|l| (l.id(), l)).collect()
    }

    #[test]
    fn cycles_and_deep_chains_are_corrupt_not_loops() {
        let cyclic = vec![layer("a", Some("b")), layer("b", Some("a"))];
        let err = parent_chain(&index(&cyclic), "a").unwrap_err();
        assert_eq!(err.code(), "ECORRUPT");
        assert!(err.to_string().contains("cycle"));

        let deep: Vec<Layer> = (0..=MAX_CHAIN_DEPTH + 1)
            .map(|i| {
                let parent = (i > 0).then(|| format!("l{}", i - 1));
                layer(&format!("l{i}"), parent.as_deref())
            })
            .collect();
        let top = format!("l{}", MAX_CHAIN_DEPTH + 1);
        let err = parent_chain(&index(&deep), &top).unwrap_err();
        assert!(err.to_string().contains("deeper"));
        let ok = format!("l{MAX_CHAIN_DEPTH}");
        assert_eq!(
            parent_chain(&index(&deep), &ok).unwrap().len(),
            MAX_CHAIN_DEPTH + 1
        );
    }

    #[test]
    fn dangling_parent_is_corrupt_and_unknown_top_is_no_layer() {
        let layers = vec![layer("a", Some("gone"))];
        assert_eq!(
            parent_chain(&index(&layers), "a").unwrap_err().code(),
            "ECORRUPT"
        );
        assert_eq!(
            parent_chain(&index(&layers), "zz").unwrap_err().code(),
            "ENOLAYER"
        );
    }

    #[test]
    fn prefix_lookup_is_unique_or_ambiguous() {
        let layers = vec![layer("abc1", None), layer("abc2", None)];
        assert_eq!(find_layer(&layers, "abc1").unwrap().id(), "abc1");
        assert_eq!(find_layer(&layers, "abc").unwrap_err().code(), "EAMBIGUOUS");
        assert_eq!(find_layer(&layers, "x").unwrap_err().code(), "ENOLAYER");
    }
}
