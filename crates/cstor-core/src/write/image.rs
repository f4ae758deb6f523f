//! Creating, naming and deleting images, with podman's semantics.
//!
//! - A new image's big data is written into a temporary directory that is renamed to
//!   `overlay-images/<id>/` before the record is saved, so a reader never sees an image whose
//!   manifest or config is missing; a writer killed before the save leaves only a directory
//!   without a record, which the next image write removes.
//! - Names move as in containers/storage's `AddNames`: a name given to one image is taken from
//!   any other, and each name goes to the front of `names-history`.
//! - Deleting an image also deletes the layers that only it used — walking down from its top
//!   layer while a layer is no other image's top, no container's, and has no other child — the
//!   walk of `store.go`'s `DeleteImage`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use cap_std::fs::{Dir, DirBuilder, DirBuilderExt};

use crate::digest::sha256;
use crate::error::{Error, IoContext, Result};
use crate::random;
use crate::store::images::{big_data_file_name, Image, ImageRecord};
use crate::store::lineage::Lineage;
use crate::store::names;
use crate::store::{is_valid_id, Store};
use crate::time::now_rfc3339;
use crate::write::atomic::{self, TEMP_PREFIX};
use crate::write::transaction::IMAGES_DIR;

/// An image to create.
#[derive(Debug, Clone, Default)]
pub struct NewImage {
    /// The ID; random when absent. Pulls use the config digest's hex.
    pub id: Option<String>,
    /// Names to give it, normalized as podman does (`x` is `localhost/x:latest`).
    pub names: Vec<String>,
    pub top_layer: Option<String>,
    /// The manifest digest the image is known by.
    pub digest: Option<String>,
    /// RFC 3339; now when absent.
    pub created: Option<String>,
    pub metadata: Option<String>,
    /// Big-data items in the order to record them: key and bytes.
    pub big_data: Vec<(String, Vec<u8>)>,
}

/// What happened to a reference given to [`Store::create_image`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    New(String),
    /// An image with that ID existed; it got the names.
    Existing(String),
}

impl Store {
    /// Creates an image (or, when one with the same ID exists, gives it the names) and returns
    /// its ID.
    pub fn create_image(&self, new: &NewImage) -> Result<Created> {
        let names = normalized(&new.names)?;
        let layers = self.begin_layers()?;
        if let Some(top) = &new.top_layer {
            let known = layers.get(top).is_some() || self.layers()?.iter().any(|l| l.id() == top);
            if !known {
                return Err(Error::NoLayer {
                    reference: top.clone(),
                });
            }
        }
        let mut images = self.begin_images()?;
        if let Some(id) = &new.id {
            if !is_valid_id(id) {
                return Err(Error::InvalidArgument(format!(
                    "{id:?} is not a valid image ID"
                )));
            }
            if let Some(index) = images.position(id) {
                add_names(&mut images.records, index, &names);
                images.save()?;
                return Ok(Created::Existing(id.clone()));
            }
        }
        let id = match &new.id {
            Some(id) => id.clone(),
            None => loop {
                let id = random::hex_id();
                if images.position(&id).is_none() {
                    break id;
                }
            },
        };
        let mut record = ImageRecord {
            id: id.clone(),
            digest: new.digest.clone(),
            layer: new.top_layer.clone(),
            metadata: new.metadata.clone(),
            created: Some(new.created.clone().unwrap_or_else(now_rfc3339)),
            ..Default::default()
        };
        for (key, bytes) in &new.big_data {
            if key.is_empty() {
                return Err(Error::InvalidArgument("an empty big-data key".into()));
            }
            if !record.big_data_names.contains(key) {
                record.big_data_names.push(key.clone());
            }
            record
                .big_data_sizes
                .insert(key.clone(), bytes.len() as i64);
            record.big_data_digests.insert(key.clone(), sha256(bytes));
        }
        write_big_data(images.dir, &id, &new.big_data)?;
        images.records.push(record);
        let index = images.records.len() - 1;
        add_names(&mut images.records, index, &names);
        images.save()?;
        drop(layers);
        Ok(Created::New(id))
    }

    /// Adds names to the image `reference` names (podman tag).
    pub fn tag_image(&self, reference: &str, names: &[String]) -> Result<Image> {
        let names = normalized(names)?;
        self.update_image(reference, |records, index| {
            add_names(records, index, &names)
        })
    }

    /// Removes names from the image `reference` names (podman untag); all of them when `names`
    /// is empty.
    pub fn untag_image(&self, reference: &str, names: &[String]) -> Result<Image> {
        let names = normalized(names)?;
        self.update_image(reference, |records, index| {
            let record = &mut records[index];
            if names.is_empty() {
                record.names.clear();
            } else {
                record.names.retain(|n| !names.contains(n));
            }
        })
    }

    fn update_image(
        &self,
        reference: &str,
        change: impl FnOnce(&mut Vec<ImageRecord>, usize),
    ) -> Result<Image> {
        let image = self.writable_image(reference)?;
        let mut images = self.begin_images()?;
        let index = images.position(image.id()).ok_or_else(|| Error::NoImage {
            reference: reference.to_owned(),
        })?;
        change(&mut images.records, index);
        images.save()?;
        Ok(Image {
            record: images.records[index].clone(),
            store_index: 0,
            read_only: false,
        })
    }

    /// The image `reference` names, which must live in the main store.
    fn writable_image(&self, reference: &str) -> Result<Image> {
        let image = self.image(reference)?;
        if image.read_only {
            return Err(Error::Unsupported {
                what: format!(
                    "changing image {}: it is in a read-only additional store",
                    image.id()
                ),
            });
        }
        Ok(image)
    }

    /// `podman rmi`: when `reference` is one of several names of an image, only that name is
    /// removed; otherwise the image is deleted with the layers only it used. Returns the IDs of
    /// the deleted layers, top first. Refused (`EBUSY`) while a container uses the image.
    pub fn remove_image(&self, reference: &str) -> Result<Vec<String>> {
        let image = self.writable_image(reference)?;
        if image.record.names.len() > 1 {
            if let Some(name) = matched_name(&image, reference) {
                self.untag_image(image.id(), &[name])?;
                return Ok(Vec::new());
            }
        }
        self.delete_image(&image, reference)
    }

    /// Deletes one layer (containers/storage's `DeleteLayer`): refused (`EBUSY`) while it has a
    /// child layer, is an image's top layer or a container's layer.
    pub fn remove_layer(&self, reference: &str) -> Result<String> {
        let layer = self.layer(reference)?;
        if layer.read_only {
            return Err(Error::Unsupported {
                what: format!(
                    "deleting layer {}: it is in a read-only additional store",
                    layer.id()
                ),
            });
        }
        let id = layer.id().to_owned();
        let mut layers = self.begin_layers()?;
        let images = self.begin_images()?;
        let busy = |what: String| Err(Error::InUse { what });
        if let Some(child) = layers
            .records
            .iter()
            .find(|r| r.parent.as_deref() == Some(id.as_str()))
        {
            return busy(format!("layer {id} is the parent of layer {}", child.id));
        }
        if let Some(image) = images
            .records
            .iter()
            .find(|i| i.layer.as_deref() == Some(id.as_str()) || i.mapped_layers.contains(&id))
        {
            return busy(format!("layer {id} is used by image {}", image.id));
        }
        if let Some(container) = self.containers()?.iter().find(|c| c.layer == id) {
            return busy(format!("layer {id} is used by container {}", container.id));
        }
        drop(images);
        layers.delete(std::slice::from_ref(&id))?;
        Ok(id)
    }

    fn delete_image(&self, image: &Image, reference: &str) -> Result<Vec<String>> {
        let mut layers = self.begin_layers()?;
        let mut images = self.begin_images()?;
        // A container is created under the layers lock held here, so none can appear meanwhile.
        let containers = self.containers()?;
        let container_images: HashSet<&str> = containers.iter().map(|c| c.image.as_str()).collect();
        let container_layers: HashSet<&str> = containers.iter().map(|c| c.layer.as_str()).collect();
        let mut doomed_images = Vec::new();
        let mut doomed_layers: Vec<String> = Vec::new();
        let mut lineage = Lineage::new(self, &layers.records);
        let mut next = Some(image.id().to_owned());
        while let Some(id) = next.take() {
            let Some(index) = images.position(&id) else {
                return Err(Error::NoImage {
                    reference: reference.to_owned(),
                });
            };
            if container_images.contains(id.as_str()) {
                return Err(Error::InUse {
                    what: format!("image {id} is used by a container"),
                });
            }
            // podman finds the parent before the image goes, and removes it afterwards when it
            // is left dangling: no name, no child.
            let parent = lineage
                .parent(&images.records, &images.records[index])
                .map(|p| p.id.clone());
            let removed = images.records.remove(index);
            let mut kept_tops: HashSet<&str> = HashSet::new();
            for other in &images.records {
                kept_tops.extend(other.layer.as_deref());
                kept_tops.extend(other.mapped_layers.iter().map(String::as_str));
            }
            doomed_layers.extend(removed.mapped_layers.iter().cloned());
            let mut layer = removed.layer.clone().filter(|l| !l.is_empty());
            while let Some(current) = layer.take() {
                let Some(record) = layers.get(&current) else {
                    break;
                };
                let has_other_child = layers.records.iter().any(|r| {
                    r.parent.as_deref() == Some(current.as_str()) && !doomed_layers.contains(&r.id)
                });
                if container_layers.contains(current.as_str())
                    || kept_tops.contains(current.as_str())
                    || has_other_child
                {
                    break;
                }
                layer = record.parent.clone().filter(|p| !p.is_empty());
                doomed_layers.push(current);
            }
            next = parent.filter(|id| {
                images
                    .records
                    .iter()
                    .find(|i| &i.id == id)
                    .is_some_and(|p| {
                        p.names.is_empty() && !lineage.has_children(&images.records, p)
                    })
            });
            doomed_images.push(removed.id);
        }
        images.save()?;
        for id in &doomed_images {
            remove_image_dir(images.dir, id)?;
        }
        layers.delete(&doomed_layers)?;
        Ok(doomed_layers)
    }
}

/// Gives `names` to the image at `index` one by one, as `podman tag` does for each: the name is
/// taken from any other image and appended to this one's, and every name of the image is then
/// moved to the front of its `names-history` in order (so the newest ends up last of them).
fn add_names(records: &mut [ImageRecord], index: usize, names: &[String]) {
    for name in names {
        for (i, other) in records.iter_mut().enumerate() {
            if i != index {
                other.names.retain(|n| n != name);
            }
        }
        let record = &mut records[index];
        let mut all = std::mem::take(&mut record.names);
        all.push(name.clone());
        record.names = dedupe(all);
        for name in record.names.clone() {
            let mut history = vec![name];
            history.append(&mut record.names_history);
            record.names_history = dedupe(history);
        }
    }
}

/// The name of `image` that `reference` picked, when it picked the image by name.
fn matched_name(image: &Image, reference: &str) -> Option<String> {
    image.record.names.iter().find_map(|name| {
        let single = Image {
            record: ImageRecord {
                id: image.id().to_owned(),
                names: vec![name.clone()],
                ..Default::default()
            },
            store_index: 0,
            read_only: false,
        };
        let by_name = names::resolve(std::slice::from_ref(&single), reference).is_ok()
            && !image
                .id()
                .starts_with(reference.trim_start_matches("sha256:"));
        by_name.then(|| name.clone())
    })
}

fn dedupe(names: Vec<String>) -> Vec<String> {
    let mut seen = HashSet::new();
    names
        .into_iter()
        .filter(|n| seen.insert(n.clone()))
        .collect()
}

fn normalized(names: &[String]) -> Result<Vec<String>> {
    names.iter().map(|n| names::normalize(n)).collect()
}

/// Writes the big-data files into a temporary directory and renames it into place.
fn write_big_data(dir: &Dir, id: &str, items: &[(String, Vec<u8>)]) -> Result<()> {
    let images = dir.open_dir(IMAGES_DIR).at(IMAGES_DIR)?;
    let temp = format!("{TEMP_PREFIX}{id}");
    let shown = Path::new(IMAGES_DIR).join(&temp);
    let _ = images.remove_dir_all(&temp);
    let mut builder = DirBuilder::new();
    builder.mode(0o700);
    images.create_dir_with(&temp, &builder).at(&shown)?;
    let data = images.open_dir(&temp).at(&shown)?;
    for (key, bytes) in items {
        let file = big_data_file_name(key);
        atomic::write_file(&data, &file, bytes, 0o600, &shown.join(&file))?;
    }
    remove_image_dir(dir, id)?;
    images
        .rename(&temp, &images, id)
        .at(Path::new(IMAGES_DIR).join(id))?;
    atomic::sync_dir(&images, Path::new(IMAGES_DIR))
}

fn remove_image_dir(dir: &Dir, id: &str) -> Result<()> {
    let path: PathBuf = Path::new(IMAGES_DIR).join(id);
    match dir.remove_dir_all(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, names: &[&str]) -> ImageRecord {
        ImageRecord {
            id: id.into(),
            names: names.iter().map(|n| n.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn names_move_between_images_and_history_puts_the_newest_first() {
        let mut records = vec![record("a", &["x:1"]), record("b", &["y:1"])];
        add_names(&mut records, 1, &["x:1".into()]);
        assert!(records[0].names.is_empty());
        assert_eq!(records[1].names, vec!["y:1", "x:1"]);
        assert_eq!(records[1].names_history, vec!["x:1", "y:1"]);
    }
}
