//! The pull side of the OCI distribution spec, read-only: `GET /v2/`, the catalog, tag lists,
//! manifests by tag and by digest, blobs by digest (HEAD and `Range` too). Every other endpoint
//! or method gets the spec's status and error JSON (`{"errors":[{"code","message"}]}`).
//!
//! Each request looks at the store as it is at that moment (images.json, layers.json), so an
//! image podman adds or removes shows up or disappears at the next request. A layer blob is
//! answered under the store's layers lock, taken before the layer is looked up and held until
//! its last byte is sent: a `podman rmi` waits for the transfer, and a request after it finds
//! no layer (404) rather than half of one.

use std::ops::Range;

use serde_json::json;

use crate::digest::{is_sha256, sha256};
use crate::error::{Error, Result};
use crate::serve::http::{self, Head, RangeRequest, Request};
use crate::serve::repositories::{is_repository_name, Repositories, Repository};
use crate::store::images::Image;
use crate::store::layers::Layer;
use crate::store::lock::{read_lock, ReadGuard};
use crate::store::Store;
use crate::transport::store_source::StoreSource;

const API_VERSION: (&str, &str) = ("Docker-Distribution-API-Version", "registry/2.0");
const JSON: &str = "application/json";
const OCTET_STREAM: &str = "application/octet-stream";

/// A response: its head, and the body to send after it (none for HEAD).
pub(crate) struct Response {
    pub head: Head,
    pub body: Body,
}

pub(crate) enum Body {
    None,
    Bytes(Vec<u8>),
    /// Bytes `range` of a layer's tar, written by the export engine while `guard` holds the
    /// store's layers lock.
    Layer {
        layer: Box<Layer>,
        range: Range<u64>,
        _guard: Option<ReadGuard>,
    },
}

impl Response {
    fn bytes(status: u16, content_type: &str, body: Vec<u8>) -> Response {
        let head = Head::new(status, body.len() as u64)
            .header(API_VERSION.0, API_VERSION.1)
            .header("Content-Type", content_type);
        Response {
            head,
            body: Body::Bytes(body),
        }
    }

    fn json(status: u16, value: &serde_json::Value) -> Response {
        Response::bytes(status, JSON, value.to_string().into_bytes())
    }

    /// An error as the spec words it: `{"errors":[{"code","message","detail"}]}`.
    pub fn error(status: u16, code: &str, message: impl Into<String>) -> Response {
        let message = message.into();
        Response::json(
            status,
            &json!({ "errors": [{ "code": code, "message": message, "detail": null }] }),
        )
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Response {
        self.head = self.head.header(name, value);
        self
    }

    /// The same response without its body, as HEAD answers.
    fn without_body(mut self) -> Response {
        self.body = Body::None;
        self
    }
}

/// Answers `request` from `store`.
pub(crate) fn respond(store: &Store, request: &Request) -> Response {
    let method = request.method.as_str();
    let Some(rest) = request
        .path
        .strip_prefix("/v2/")
        .or((request.path == "/v2").then_some(""))
    else {
        return not_found(request);
    };
    let read = matches!(method, "GET" | "HEAD");
    let route = Route::of(rest);
    if let Route::Unknown = route {
        return not_found(request);
    }
    if !read {
        return Response::error(
            405,
            "UNSUPPORTED",
            format!("this registry is read-only: {method} is not supported"),
        )
        .header("Allow", "GET, HEAD");
    }
    let response = match answer(store, request, route) {
        Ok(response) => response,
        Err(e) => store_error(&e),
    };
    if method == "HEAD" {
        response.without_body()
    } else {
        response
    }
}

/// The endpoints of the spec, by path below `/v2/`.
enum Route<'a> {
    Ping,
    Catalog,
    /// An endpoint of the repository `name`.
    Repository(&'a str, InRepository<'a>),
    /// Uploads, the referrers API: known endpoints this read-only registry does not serve.
    Unsupported(&'a str),
    Unknown,
}

enum InRepository<'a> {
    Tags,
    Manifest(&'a str),
    Blob(&'a str),
}

impl<'a> Route<'a> {
    fn of(rest: &'a str) -> Route<'a> {
        if rest.is_empty() {
            return Route::Ping;
        }
        if rest == "_catalog" {
            return Route::Catalog;
        }
        if let Some(name) = rest.strip_suffix("/tags/list") {
            return Route::Repository(name, InRepository::Tags);
        }
        if let Some(i) = rest.rfind("/blobs/uploads") {
            return Route::Unsupported(&rest[..i]);
        }
        if let Some(i) = rest.rfind("/referrers/") {
            return Route::Unsupported(&rest[..i]);
        }
        if let Some(i) = rest.rfind("/manifests/") {
            let reference = &rest[i + "/manifests/".len()..];
            return Route::Repository(&rest[..i], InRepository::Manifest(reference));
        }
        if let Some(i) = rest.rfind("/blobs/") {
            let digest = &rest[i + "/blobs/".len()..];
            return Route::Repository(&rest[..i], InRepository::Blob(digest));
        }
        Route::Unknown
    }
}

fn not_found(request: &Request) -> Response {
    Response::error(
        404,
        "NOT_FOUND",
        format!("no such endpoint: {}", request.path),
    )
}

fn answer(store: &Store, request: &Request, route: Route) -> Result<Response> {
    let images = || store.images();
    match route {
        Route::Ping => Ok(Response::json(200, &json!({}))),
        Route::Catalog => {
            let images = images()?;
            let repositories = Repositories::of(&images);
            let names: Vec<&str> = repositories.names().collect();
            Ok(page(request, "/v2/_catalog", "repositories", &names, None))
        }
        Route::Unknown => Ok(not_found(request)),
        Route::Unsupported(name) => Ok(match check_name(name) {
            Err(response) => response,
            Ok(()) => Response::error(
                404,
                "UNSUPPORTED",
                "this read-only registry serves manifests, blobs and tag lists",
            ),
        }),
        Route::Repository(name, endpoint) => {
            let images = images()?;
            let repositories = Repositories::of(&images);
            let repository = match repository(&repositories, name) {
                Ok(r) => r,
                Err(response) => return Ok(response),
            };
            match endpoint {
                InRepository::Tags => {
                    let tags: Vec<&str> = repository.tags.keys().map(String::as_str).collect();
                    let path = format!("/v2/{name}/tags/list");
                    Ok(page(request, &path, "tags", &tags, Some(name)))
                }
                InRepository::Manifest(reference) => {
                    manifest(store, &images, repository, reference)
                }
                InRepository::Blob(digest) => blob(store, request, &images, repository, digest),
            }
        }
    }
}

fn check_name(name: &str) -> std::result::Result<(), Response> {
    if is_repository_name(name) {
        Ok(())
    } else {
        Err(Response::error(
            400,
            "NAME_INVALID",
            format!("{name:?} is not a repository name"),
        ))
    }
}

fn repository<'r>(
    repositories: &'r Repositories,
    name: &str,
) -> std::result::Result<&'r Repository, Response> {
    check_name(name)?;
    repositories.get(name).ok_or_else(|| {
        Response::error(
            404,
            "NAME_UNKNOWN",
            format!("no repository {name:?} in this store"),
        )
    })
}

/// A list answered a page at a time: `n` items after `last` (both optional), with a `Link`
/// header to the next page when there is one, as the spec's pagination has it.
fn page(request: &Request, path: &str, key: &str, sorted: &[&str], name: Option<&str>) -> Response {
    let after = request.query_param("last");
    let start = after
        .as_deref()
        .map_or(0, |last| sorted.partition_point(|item| *item <= last));
    let limit = request
        .query_param("n")
        .and_then(|n| n.parse::<usize>().ok());
    let end = limit.map_or(sorted.len(), |n| (start + n).min(sorted.len()));
    let items = &sorted[start.min(end)..end];
    let mut body = json!({ key: items });
    if let Some(name) = name {
        body = json!({ "name": name, key: items });
    }
    let mut response = Response::json(200, &body);
    if let (Some(n), Some(last)) = (limit, items.last()) {
        if end < sorted.len() {
            response = response.header("Link", format!("<{path}?last={last}&n={n}>; rel=\"next\""));
        }
    }
    response
}

/// Whether `reference` is a digest by the spec's grammar (`algorithm:encoded`); a `sha256:`
/// one must also have the length and alphabet its algorithm requires.
fn digest_grammar(reference: &str) -> Option<bool> {
    let (algorithm, encoded) = reference.split_once(':')?;
    let algorithm_ok = !algorithm.is_empty()
        && algorithm.split(['+', '.', '_', '-']).all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        });
    let encoded_ok = !encoded.is_empty()
        && encoded
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'=' | b'_' | b'-'));
    let valid = algorithm_ok && encoded_ok && (algorithm != "sha256" || is_sha256(reference));
    Some(valid)
}

fn digest_invalid(reference: &str) -> Response {
    Response::error(
        400,
        "DIGEST_INVALID",
        format!("{reference:?} is not a valid digest"),
    )
}

fn images_of<'i>(images: &'i [Image], repository: &Repository) -> Vec<&'i Image> {
    repository
        .images
        .iter()
        .filter_map(|id| images.iter().find(|i| i.id() == id))
        .collect()
}

fn manifest(
    store: &Store,
    images: &[Image],
    repository: &Repository,
    reference: &str,
) -> Result<Response> {
    let unknown = || {
        Response::error(
            404,
            "MANIFEST_UNKNOWN",
            format!("no manifest {reference:?} in this repository"),
        )
    };
    let served = match digest_grammar(reference) {
        Some(false) => return Ok(digest_invalid(reference)),
        Some(true) => {
            let mut found = None;
            for image in images_of(images, repository) {
                let served = served_manifest(store, image)?;
                if served.digest == reference {
                    found = Some(served);
                    break;
                }
            }
            found
        }
        None => match repository.tags.get(reference) {
            Some(id) => images_of(images, repository)
                .into_iter()
                .find(|i| i.id() == id)
                .map(|image| served_manifest(store, image))
                .transpose()?,
            None => None,
        },
    };
    let Some(served) = served else {
        return Ok(unknown());
    };
    Ok(Response::bytes(200, &served.media_type, served.bytes)
        .header("Docker-Content-Digest", served.digest.clone())
        .header("ETag", format!("\"{}\"", served.digest)))
}

/// A manifest as the registry serves it.
struct ServedManifest {
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub digest: String,
}

/// The manifest served for `image`: the one the store keeps when it names exactly the blobs
/// served (the config and the layer tars), else a new OCI manifest for them — the same bytes
/// every time, so its digest is stable.
fn served_manifest(store: &Store, image: &Image) -> Result<ServedManifest> {
    let source = StoreSource::open(store, image)?;
    let layers: Vec<_> = source
        .layers()
        .iter()
        .map(StoreSource::layer_descriptor)
        .collect();
    let (bytes, media_type) = source.manifest_for(&layers, &|_| true);
    Ok(ServedManifest {
        digest: sha256(&bytes),
        bytes,
        media_type,
    })
}

/// Where a blob of a repository comes from.
enum BlobSource {
    Config(Vec<u8>),
    Layer(Box<Layer>),
}

fn blob(
    store: &Store,
    request: &Request,
    images: &[Image],
    repository: &Repository,
    digest: &str,
) -> Result<Response> {
    if digest_grammar(digest) != Some(true) {
        return Ok(digest_invalid(digest));
    }
    let Some(source) = find_blob(store, images, repository, digest)? else {
        return Ok(blob_unknown(digest));
    };
    let (size, body) = match source {
        BlobSource::Config(bytes) => (bytes.len() as u64, Some(bytes)),
        BlobSource::Layer(layer) => (layer_size(&layer)?, None),
    };
    let range = match http::range(request.header("range"), size) {
        RangeRequest::Whole => None,
        RangeRequest::Part(part) => Some(part),
        RangeRequest::Unsatisfiable => {
            return Ok(Response::error(
                416,
                "RANGE_INVALID",
                format!("the range is outside the blob's {size} bytes"),
            )
            .header("Content-Range", format!("bytes */{size}")));
        }
    };
    let part = range.clone().unwrap_or(0..size);
    let mut head = Head::new(
        if range.is_some() { 206 } else { 200 },
        part.end - part.start,
    )
    .header(API_VERSION.0, API_VERSION.1)
    .header("Content-Type", OCTET_STREAM)
    .header("Docker-Content-Digest", digest)
    .header("ETag", format!("\"{digest}\""))
    .header("Accept-Ranges", "bytes");
    if range.is_some() {
        head = head.header(
            "Content-Range",
            format!("bytes {}-{}/{size}", part.start, part.end.saturating_sub(1)),
        );
    }
    let body = match body {
        Some(bytes) => Body::Bytes(bytes[part.start as usize..part.end as usize].to_vec()),
        None if request.method == "HEAD" => Body::None,
        None => match locked_layer(store, digest, images, repository)? {
            Some((layer, guard)) => Body::Layer {
                layer,
                range: part,
                _guard: guard,
            },
            None => return Ok(blob_unknown(digest)),
        },
    };
    Ok(Response { head, body })
}

fn blob_unknown(digest: &str) -> Response {
    Response::error(
        404,
        "BLOB_UNKNOWN",
        format!("no blob {digest} in this repository"),
    )
}

/// The config or layer of one of the repository's images whose digest is `digest`.
fn find_blob(
    store: &Store,
    images: &[Image],
    repository: &Repository,
    digest: &str,
) -> Result<Option<BlobSource>> {
    for image in images_of(images, repository) {
        let source = StoreSource::open(store, image)?;
        if source.config_descriptor().digest == digest {
            return Ok(Some(BlobSource::Config(source.config().to_vec())));
        }
        if let Some(layer) = source.layer_of_blob(digest) {
            return Ok(Some(BlobSource::Layer(Box::new(layer.clone()))));
        }
    }
    Ok(None)
}

/// The layer of the repository whose tar is `digest`, found under the layers lock of the store
/// holding it, with the lock: while it is held no writer can delete or change the layer.
fn locked_layer(
    store: &Store,
    digest: &str,
    images: &[Image],
    repository: &Repository,
) -> Result<Option<(Box<Layer>, Option<ReadGuard>)>> {
    let Some(BlobSource::Layer(layer)) = find_blob(store, images, repository, digest)? else {
        return Ok(None);
    };
    let guard = read_lock(
        &store.dir(layer.store_index).dir,
        std::path::Path::new("overlay-layers/layers.lock"),
    )?;
    // Look again under the lock: a writer may have deleted it since.
    let now = store
        .layers()?
        .into_iter()
        .find(|l| l.id() == layer.id() && l.record.diff_digest.as_deref() == Some(digest));
    Ok(now.map(|layer| (Box::new(layer), guard)))
}

/// The length of a layer's tar: `diff-size` as recorded.
fn layer_size(layer: &Layer) -> Result<u64> {
    layer
        .record
        .diff_size
        .and_then(|size| u64::try_from(size).ok())
        .ok_or_else(|| Error::Unsupported {
            what: format!(
                "layer {} has no recorded diff-size to serve it with",
                layer.id()
            ),
        })
}

/// A store failure as the client sees it.
fn store_error(e: &Error) -> Response {
    match e {
        Error::NoImage { .. } | Error::NoLayer { .. } => {
            Response::error(404, "NAME_UNKNOWN", e.to_string())
        }
        _ => Response::error(500, "UNKNOWN", e.to_string()),
    }
}
