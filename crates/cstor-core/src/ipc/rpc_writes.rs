//! The write methods of a writable JSON-RPC server ([`crate::ipc::rpc`], `cstor serve --writable`).
//!
//! They exist for the user-namespace helper (`podman unshare cstor serve`): in a rootless store
//! the files of layers belong to subordinate IDs, so a pull, an import or an `rmi` must run where
//! podman's own writes run — inside the user's namespace, as its root — to chown what it
//! creates and to delete what it removes. The helper does the whole write there, under the
//! store's locks; the caller outside gets the result. Methods:
//! - `Pull {source, name?, tlsVerify?}` → notifications `pull.progress {layer, layers, bytes,
//!   totalBytes}`, then `{imageId, layers, layersWritten, existed}`;
//! - `Import {path, name?}` → the same result (`podman import`);
//! - `Tag {image, names}`, `Untag {image, names}` → `{id}`;
//! - `RemoveImage {image}` → the deleted layers' IDs; `RemoveLayer {layer}` → its ID;
//! - `CreateLayer {id?, parent?, names?}` with the tar on the one fd sent along → `{id}`;
//! - `CreateImage {id?, names?, topLayer?, digest?, created?, metadata?, bigData?: [{key, data}]}`
//!   (data in base64) → `{id}`.

use std::fs::File;
use std::os::fd::OwnedFd;

use base64::Engine;
use serde_json::{json, Value};

use crate::error::Error;
use crate::ipc::fdpass::WireError;
use crate::store::Store;
use crate::transport::pull::PullOptions;
use crate::transport::pull::Pulled;
use crate::transport::system_context::SystemContext;
use crate::transport::tarball::Tarball;
use crate::write::image::{Created, NewImage};
use crate::write::layer::NewLayer;

/// Whether `method` is one of the write methods.
pub(crate) fn is_write(method: &str) -> bool {
    matches!(
        method,
        "Pull"
            | "Import"
            | "Tag"
            | "Untag"
            | "RemoveImage"
            | "RemoveLayer"
            | "CreateLayer"
            | "CreateImage"
    )
}

/// Why a method (read or write) did not answer with a result.
pub(crate) enum Failure {
    /// The params are not what the method takes.
    Params(String),
    Store(Error),
    /// A notification could not be sent: the client is gone.
    Wire(WireError),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Store(e)
    }
}

/// Runs the write method `method`; `notify` sends a notification (pull progress) to the client.
pub(crate) fn handle(
    store: &Store,
    method: &str,
    params: &Value,
    fds: Vec<OwnedFd>,
    notify: &mut dyn FnMut(&str, Value) -> Result<(), WireError>,
) -> Result<Value, Failure> {
    let result = match method {
        "Pull" => {
            let options = PullOptions {
                name: optional(params, "name")?.map(str::to_owned),
                platform: None,
                context: SystemContext {
                    tls_verify: params.get("tlsVerify").and_then(Value::as_bool),
                    ..SystemContext::default()
                },
            };
            let mut failed = None;
            let pulled = store.pull_image(
                string(params, "source")?,
                &options,
                &mut |p| {
                    let progress = json!({ "layer": p.layer, "layers": p.layers, "bytes": p.bytes, "totalBytes": p.total_bytes });
                    if failed.is_none() {
                        failed = notify("pull.progress", progress).err();
                    }
                },
            );
            if let Some(e) = failed {
                return Err(Failure::Wire(e));
            }
            pulled_json(pulled?)
        }
        "Import" => {
            let mut source = Tarball::open(string(params, "path")?.as_ref())?;
            pulled_json(store.pull(&mut source, optional(params, "name")?, &mut |_| {})?)
        }
        "Tag" => {
            json!({ "id": store.tag_image(string(params, "image")?, &strings(params, "names")?)?.id() })
        }
        "Untag" => {
            json!({ "id": store.untag_image(string(params, "image")?, &strings(params, "names")?)?.id() })
        }
        "RemoveImage" => json!(store.remove_image(string(params, "image")?)?),
        "RemoveLayer" => json!(store.remove_layer(string(params, "layer")?)?),
        "CreateLayer" => {
            let [tar]: [OwnedFd; 1] = fds
                .try_into()
                .map_err(|_| Failure::Params("CreateLayer takes the tar as its one fd".into()))?;
            let new = NewLayer {
                id: optional(params, "id")?.map(str::to_owned),
                parent: optional(params, "parent")?.map(str::to_owned),
                names: optional_strings(params, "names")?,
                ..Default::default()
            };
            json!({ "id": store.create_layer(&new, File::from(tar))?.id() })
        }
        "CreateImage" => {
            let new = NewImage {
                id: optional(params, "id")?.map(str::to_owned),
                names: optional_strings(params, "names")?,
                top_layer: optional(params, "topLayer")?.map(str::to_owned),
                digest: optional(params, "digest")?.map(str::to_owned),
                created: optional(params, "created")?.map(str::to_owned),
                metadata: optional(params, "metadata")?.map(str::to_owned),
                big_data: big_data(params)?,
            };
            let (Created::New(id) | Created::Existing(id)) = store.create_image(&new)?;
            json!({ "id": id })
        }
        other => return Err(Failure::Params(format!("no write method {other:?}"))),
    };
    Ok(result)
}

fn pulled_json(pulled: Pulled) -> Value {
    json!({
        "imageId": pulled.image_id,
        "layers": pulled.layers,
        "layersWritten": pulled.layers_written,
        "existed": pulled.existed,
    })
}

fn string<'a>(params: &'a Value, key: &str) -> Result<&'a str, Failure> {
    params
        .get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| Failure::Params(format!("params.{key} must be a string")))
}

fn optional<'a>(params: &'a Value, key: &str) -> Result<Option<&'a str>, Failure> {
    match params.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(_) => string(params, key).map(Some),
    }
}

fn strings(params: &Value, key: &str) -> Result<Vec<String>, Failure> {
    params
        .get(key)
        .and_then(Value::as_array)
        .and_then(|items| {
            items
                .iter()
                .map(|item| item.as_str().map(str::to_owned))
                .collect()
        })
        .ok_or_else(|| Failure::Params(format!("params.{key} must be an array of strings")))
}

fn optional_strings(params: &Value, key: &str) -> Result<Vec<String>, Failure> {
    match params.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(_) => strings(params, key),
    }
}

fn big_data(params: &Value) -> Result<Vec<(String, Vec<u8>)>, Failure> {
    let bad = || Failure::Params("params.bigData must be [{key, data (base64)}]".into());
    let Some(items) = params.get("bigData").filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    items
        .as_array()
        .ok_or_else(bad)?
        .iter()
        .map(|item| {
            let key = item.get("key").and_then(Value::as_str).ok_or_else(bad)?;
            let data = item.get("data").and_then(Value::as_str).ok_or_else(bad)?;
            let data = base64::engine::general_purpose::STANDARD
                .decode(data)
                .map_err(|_| bad())?;
            Ok((key.to_owned(), data))
        })
        .collect()
}
