//! Which image another was built on, as podman decides it (common/libimage's layer tree): an
//! image's parent has the same top layer or the parent of its top layer, and its config is the
//! child's minus one history entry over the same leading diff IDs. `podman rmi` removes a
//! nameless parent left without children along with the image, and so does
//! [`Store::remove_image`](crate::store::Store).
//!
//! A build commits an image per instruction, and one that changes no file (`ENV`, `LABEL`)
//! shares its top layer with the one before it, so the layer chain alone cannot tell parents
//! from siblings; the configs can.

use std::collections::HashMap;

use serde_json::Value;

use crate::store::images::{Image, ImageRecord};
use crate::store::layers::LayerRecord;
use crate::store::Store;

/// The parent/child relation over one snapshot of the records, reading each config once.
pub(crate) struct Lineage<'a> {
    store: &'a Store,
    layers: &'a [LayerRecord],
    /// Config by image ID; `None` when it cannot be read (podman then finds no relation).
    configs: HashMap<String, Option<Value>>,
}

impl<'a> Lineage<'a> {
    /// For a caller holding the images lock (the configs are read without taking it).
    pub(crate) fn new(store: &'a Store, layers: &'a [LayerRecord]) -> Self {
        Lineage {
            store,
            layers,
            configs: HashMap::new(),
        }
    }

    /// The image `child` was built on, if any of `images` is.
    pub(crate) fn parent<'i>(
        &mut self,
        images: &'i [ImageRecord],
        child: &ImageRecord,
    ) -> Option<&'i ImageRecord> {
        let top = top_layer(child)?;
        let below = parent_layer(self.layers, top);
        // libimage looks at the images of the child's own top layer first, then its parent's.
        let same_top = images.iter().filter(|i| top_layer(i) == Some(top));
        let parent_top = images
            .iter()
            .filter(|i| below.is_some() && top_layer(i) == below);
        same_top
            .chain(parent_top)
            .filter(|candidate| candidate.id != child.id)
            .find(|candidate| self.is_parent(candidate, child))
    }

    /// Whether any of `images` was built on `parent`.
    pub(crate) fn has_children(&mut self, images: &[ImageRecord], parent: &ImageRecord) -> bool {
        let Some(top) = top_layer(parent) else {
            return false;
        };
        let layers = self.layers;
        images
            .iter()
            .filter(|i| i.id != parent.id)
            .filter(|i| {
                top_layer(i).is_some_and(|t| t == top || parent_layer(layers, t) == Some(top))
            })
            .any(|child| self.is_parent(parent, child))
    }

    fn is_parent(&mut self, parent: &ImageRecord, child: &ImageRecord) -> bool {
        let (Some(parent), Some(child)) = (self.config(parent), self.config(child)) else {
            return false;
        };
        extends_by_one(&parent, &child)
    }

    fn config(&mut self, record: &ImageRecord) -> Option<Value> {
        let store = self.store;
        self.configs
            .entry(record.id.clone())
            .or_insert_with(|| {
                let image = Image {
                    record: record.clone(),
                    store_index: 0,
                    read_only: false,
                };
                store.image_config_held(&image).ok()
            })
            .clone()
    }
}

fn parent_layer<'a>(layers: &'a [LayerRecord], layer: &str) -> Option<&'a str> {
    layers
        .iter()
        .find(|l| l.id == layer)?
        .parent
        .as_deref()
        .filter(|p| !p.is_empty())
}

fn top_layer(image: &ImageRecord) -> Option<&str> {
    image.layer.as_deref().filter(|l| !l.is_empty())
}

/// libimage's `areParentAndChild`: the child uses all of the parent's diff IDs, in order, and
/// its history is the parent's plus one entry.
fn extends_by_one(parent: &Value, child: &Value) -> bool {
    let list = |config: &Value, pointer: &str| -> Vec<Value> {
        config
            .pointer(pointer)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let (parent_ids, child_ids) = (
        list(parent, "/rootfs/diff_ids"),
        list(child, "/rootfs/diff_ids"),
    );
    let (parent_history, child_history) = (list(parent, "/history"), list(child, "/history"));
    child_ids.starts_with(&parent_ids)
        && parent_history.len() + 1 == child_history.len()
        && parent_history
            .iter()
            .zip(&child_history)
            .all(|(a, b)| same_history_entry(a, b))
}

/// The fields libimage's `historiesMatch` compares, with Go's zero values for absent ones.
fn same_history_entry(a: &Value, b: &Value) -> bool {
    let text = |v: &Value, field: &str| {
        v.get(field)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let empty = |v: &Value| {
        v.get("empty_layer")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    };
    a.get("created").and_then(Value::as_str) == b.get("created").and_then(Value::as_str)
        && ["created_by", "author", "comment"]
            .iter()
            .all(|field| text(a, field) == text(b, field))
        && empty(a) == empty(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_child_extends_its_parent_by_one_history_entry() {
        let step = |n: u32| json!({ "created": format!("2026-01-0{n}T00:00:00Z"), "created_by": format!("RUN {n}") });
        let parent = json!({ "rootfs": { "diff_ids": ["sha256:a"] }, "history": [step(1)] });
        let child = json!({ "rootfs": { "diff_ids": ["sha256:a", "sha256:b"] }, "history": [step(1), step(2)] });
        let env_only =
            json!({ "rootfs": { "diff_ids": ["sha256:a"] }, "history": [step(1), step(2)] });
        let sibling =
            json!({ "rootfs": { "diff_ids": ["sha256:c"] }, "history": [step(1), step(2)] });
        let grandchild = json!({ "rootfs": { "diff_ids": ["sha256:a", "sha256:b"] }, "history": [step(1), step(2), step(3)] });
        assert!(extends_by_one(&parent, &child));
        assert!(
            extends_by_one(&parent, &env_only),
            "an ENV step shares the layers"
        );
        assert!(!extends_by_one(&parent, &sibling));
        assert!(!extends_by_one(&parent, &grandchild));
        assert!(!extends_by_one(&child, &parent));
    }
}
