//! Containers: the records of `overlay-containers/containers.json` (graph root) and
//! `volatile-containers.json` (run root), read for what they keep alive: the layers and images they use.
//!
//! Each container has a read-write layer of its own, a child of its image's top layer, recorded
//! in `layers.json` like any other; a checker that did not read these files would call that
//! layer unused.

use std::path::Path;

use cap_std::ambient_authority;
use cap_std::fs::Dir;
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::store::lock::read_lock;
use crate::store::{read_json_records, Store};

const CONTAINERS_DIR: &str = "overlay-containers";

/// The fields of a container record that cstor reads; the rest is podman's business.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ContainerRecord {
    pub id: String,
    /// The container's own read-write layer.
    #[serde(default)]
    pub layer: String,
    /// The image it was made from (deleting it is refused while the container exists).
    #[serde(default)]
    pub image: String,
}

impl Store {
    /// The containers of the main store (additional image stores hold none), stable ones first.
    pub fn containers(&self) -> Result<Vec<ContainerRecord>> {
        let graph = &self.dirs()[0].dir;
        let _guard = read_lock(graph, &Path::new(CONTAINERS_DIR).join("containers.lock"))?;
        let mut records =
            read_json_records(graph, &Path::new(CONTAINERS_DIR).join("containers.json"))?;
        if let Some(run_root) = self.run_root() {
            match Dir::open_ambient_dir(run_root, ambient_authority()) {
                Ok(run) => records.extend(read_json_records::<ContainerRecord>(
                    &run,
                    &Path::new(CONTAINERS_DIR).join("volatile-containers.json"),
                )?),
                // A run root is a tmpfs that a reboot empties: no volatile containers then.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(run_root, e)),
            }
        }
        Ok(records)
    }
}
