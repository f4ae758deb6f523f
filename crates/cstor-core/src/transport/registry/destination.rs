//! Pushing to a registry (`docker://host/repository[:tag]`) over the OCI distribution API, the
//! way containers/image's docker destination does:
//!
//! - a blob the repository has (`HEAD /v2/<name>/blobs/<digest>` answers 200) is not sent;
//! - a blob known to be in another repository of the same registry is mounted from there
//!   (`POST /v2/<name>/blobs/uploads/?mount=<digest>&from=<other>`, 201);
//! - any other blob is uploaded: `POST` opens an upload, the bytes stream in one `PATCH` as the
//!   copy produces them (a small blob waits and goes whole with the closing request), and
//!   `PUT <location>&digest=<digest>` closes it once the digest is known;
//! - the manifest is `PUT` last, under the tag: until then the registry serves what the tag named
//!   before, so a push killed midway changes nothing a puller sees.
//!
//! A push goes to the reference as named — registries.conf's mirrors and locations are for
//! pulls — with that registry's `insecure` and `blocked` settings, credentials and TLS.

use std::io::{self, Read, Write};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;

use ureq::http::Method;
use ureq::SendBody;

use crate::error::{Error, Result};
use crate::transport::registry::client::{header, remote, unexpected, Client};
use crate::transport::registry::credentials;
use crate::transport::registry::registries_conf::RegistriesConf;
use crate::transport::registry::source::blocked;
use crate::transport::registry::Reference;
use crate::transport::system_context::SystemContext;
use crate::transport::{BlobWriter, Descriptor, ImageDestination, ImageManifest};

/// A blob up to this size is sent whole with the request that closes its upload.
const WHOLE_BLOB_BYTES: usize = 4 << 20;

/// Chunks of this size go to the uploading thread, at most [`CHUNKS_IN_FLIGHT`] ahead of it.
const CHUNK_BYTES: usize = 1 << 20;
const CHUNKS_IN_FLIGHT: usize = 4;

/// A repository being pushed to.
pub struct RegistryDestination {
    client: Client,
}

impl RegistryDestination {
    /// A destination for `reference` (what follows `docker://`; the tag defaults to `latest`).
    pub fn open(ctx: &SystemContext, reference: &str) -> Result<RegistryDestination> {
        let reference = Reference::parse(reference)?;
        let conf = RegistriesConf::load(ctx)?;
        let insecure = match conf.find_registry(&reference.name()) {
            Some(registry) if registry.blocked => return Err(blocked(&registry.prefix, &conf)),
            Some(registry) => registry.primary.insecure,
            None => false,
        };
        let found = credentials::find(ctx, &conf.credential_helpers, &reference.name())?;
        Ok(RegistryDestination {
            client: Client::connect(ctx, reference, insecure, found, true)?,
        })
    }

    /// Asks to mount `digest` from `from` (a repository of the same registry); true when done.
    /// A mount refused — no pull access to `from`, as a token server may decide — only means
    /// the blob is uploaded instead, as containers/image does.
    fn mount(&mut self, digest: &str, from: &str) -> Result<bool> {
        let url = format!(
            "{}?mount={digest}&from={from}",
            self.client.url("blobs/uploads/")
        );
        let response = match self.client.send(Method::POST, &url, &[], &[]) {
            Err(e) if e.code() == "EACCES" => return Ok(false),
            other => other?,
        };
        match response.status().as_u16() {
            201 => Ok(true),
            // The registry opened an ordinary upload instead: not needed, cancelled.
            202 => {
                if let Some(location) = header(&response, "location") {
                    let upload = self.client.resolve(&location);
                    let _ = self.client.send(Method::DELETE, &upload, &[], &[]);
                }
                Ok(false)
            }
            _ => Ok(false),
        }
    }

    /// Opens an upload; returns its URL.
    fn start_upload(&mut self) -> Result<String> {
        let url = self.client.url("blobs/uploads/");
        let response = self.client.send(Method::POST, &url, &[], &[])?;
        if response.status().as_u16() != 202 {
            return Err(unexpected(&url, response));
        }
        let location = header(&response, "location").ok_or_else(|| Error::Remote {
            code: "EREMOTE",
            message: format!("{url}: an upload without a Location"),
        })?;
        Ok(self.client.resolve(&location))
    }
}

impl ImageDestination for RegistryDestination {
    fn location(&self) -> Option<String> {
        Some(self.client.reference.location())
    }

    fn reuse_blob(&mut self, blob: &Descriptor, elsewhere: &[String]) -> Result<bool> {
        let url = self.client.url(&format!("blobs/{}", blob.digest));
        let response = self.client.send(Method::HEAD, &url, &[], &[])?;
        match response.status().as_u16() {
            200 => return Ok(true),
            404 => {}
            _ => return Err(unexpected(&url, response)),
        }
        let domain = format!("{}/", self.client.reference.domain);
        let own = self.client.reference.location();
        for location in elsewhere.iter().filter(|l| **l != own) {
            if let Some(repository) = location.strip_prefix(&domain) {
                if self.mount(&blob.digest, repository)? {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    fn new_blob(&mut self, _size: Option<u64>) -> Result<Box<dyn BlobWriter + '_>> {
        let location = self.start_upload()?;
        Ok(Box::new(Upload {
            destination: self,
            location,
            buffer: Vec::new(),
            stream: None,
        }))
    }

    fn commit(&mut self, manifest: &ImageManifest<'_>) -> Result<()> {
        let reference = match &self.client.reference.digest {
            Some(digest) if digest != manifest.digest => {
                return Err(Error::InvalidArgument(format!(
                    "the destination names digest {digest}, the manifest is {}",
                    manifest.digest
                )))
            }
            _ => self.client.reference.manifest_reference().to_owned(),
        };
        let url = self.client.url(&format!("manifests/{reference}"));
        let headers = [("Content-Type", manifest.media_type)];
        let response = self
            .client
            .send(Method::PUT, &url, &headers, manifest.bytes)?;
        match response.status().as_u16() {
            200..=202 => Ok(()),
            _ => Err(unexpected(&url, response)),
        }
    }
}

/// One blob's upload. The first [`WHOLE_BLOB_BYTES`] wait in `buffer`; past them a thread
/// streams the bytes in one `PATCH` while the copy goes on producing them.
struct Upload<'a> {
    destination: &'a mut RegistryDestination,
    location: String,
    buffer: Vec<u8>,
    stream: Option<Stream>,
}

/// The thread that sends a `PATCH` body fed through a channel; its result is the upload's next
/// location.
struct Stream {
    chunks: SyncSender<Chunk>,
    thread: JoinHandle<Result<String>>,
}

/// What the uploading thread reads: bytes, or the end of the blob. A channel closed without
/// `End` is a failed copy: the thread then fails its request instead of closing the body.
enum Chunk {
    Bytes(Vec<u8>),
    End,
}

impl Upload<'_> {
    fn start_stream(&mut self) {
        let (chunks, receiver) = mpsc::sync_channel(CHUNKS_IN_FLIGHT);
        let agent = self.destination.client.agent().clone();
        let authorization = self.destination.client.authorization().map(str::to_owned);
        let url = self.location.clone();
        let origin = self.destination.client.origin().to_owned();
        let thread = std::thread::spawn(move || {
            let mut request = agent
                .patch(&url)
                .header("Content-Type", "application/octet-stream");
            if let Some(authorization) = authorization {
                request = request.header("Authorization", &authorization);
            }
            let body = ChunkReader {
                chunks: receiver,
                current: Vec::new(),
                at: 0,
            };
            let response = request
                .send(SendBody::from_owned_reader(body))
                .map_err(|e| remote(&url, e))?;
            if response.status().as_u16() != 202 {
                return Err(unexpected(&url, response));
            }
            let location = header(&response, "location").unwrap_or(url);
            Ok(match location.starts_with('/') {
                true => format!("{origin}{location}"),
                false => location,
            })
        });
        self.stream = Some(Stream { chunks, thread });
    }

    /// Hands the buffered bytes to the uploading thread; its error when it stopped.
    fn send_buffer(&mut self) -> Result<()> {
        let bytes = std::mem::take(&mut self.buffer);
        let Some(stream) = &self.stream else {
            return Ok(());
        };
        if stream.chunks.send(Chunk::Bytes(bytes)).is_ok() {
            return Ok(());
        }
        Err(self.stopped())
    }

    /// The error of an uploading thread that stopped before the end of the blob.
    fn stopped(&mut self) -> Error {
        match self.stream.take().map(|s| s.thread.join()) {
            Some(Ok(Err(e))) => e,
            _ => Error::Remote {
                code: "EREMOTE",
                message: format!("{}: the upload stopped", self.location),
            },
        }
    }
}

impl Write for Upload<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(buf);
        if self.stream.is_none() && self.buffer.len() > WHOLE_BLOB_BYTES {
            self.start_stream();
        }
        if self.stream.is_some() && self.buffer.len() >= CHUNK_BYTES {
            self.send_buffer().map_err(io::Error::other)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl BlobWriter for Upload<'_> {
    fn finish(mut self: Box<Self>, descriptor: &Descriptor) -> Result<bool> {
        let mut body = std::mem::take(&mut self.buffer);
        if let Some(stream) = self.stream.take() {
            let sent = stream.chunks.send(Chunk::Bytes(body)).is_ok()
                && stream.chunks.send(Chunk::End).is_ok();
            drop(stream.chunks);
            let location = stream.thread.join().map_err(|_| Error::Remote {
                code: "EINTERNAL",
                message: "the upload thread panicked".into(),
            })??;
            if !sent {
                return Err(Error::Remote {
                    code: "EREMOTE",
                    message: format!("{location}: the upload stopped"),
                });
            }
            self.location = location;
            body = Vec::new();
        }
        let separator = if self.location.contains('?') {
            '&'
        } else {
            '?'
        };
        let url = format!("{}{separator}digest={}", self.location, descriptor.digest);
        let headers = [("Content-Type", "application/octet-stream")];
        let client = &mut self.destination.client;
        let response = client.send(Method::PUT, &url, &headers, &body)?;
        match response.status().as_u16() {
            201 | 204 => Ok(true),
            _ => Err(unexpected(&url, response)),
        }
    }
}

impl Drop for Upload<'_> {
    /// An unfinished upload (a failed copy): closing the channel without `End` makes the thread
    /// fail its request, and it is waited for.
    fn drop(&mut self) {
        if let Some(stream) = self.stream.take() {
            drop(stream.chunks);
            let _ = stream.thread.join();
        }
    }
}

/// The `PATCH` body: chunks from the copy, until `End`.
struct ChunkReader {
    chunks: Receiver<Chunk>,
    current: Vec<u8>,
    at: usize,
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.current.len() {
            match self.chunks.recv() {
                Ok(Chunk::Bytes(bytes)) => {
                    self.current = bytes;
                    self.at = 0;
                }
                Ok(Chunk::End) => return Ok(0),
                Err(_) => return Err(io::Error::other("the copy failed: upload abandoned")),
            }
        }
        let n = buf.len().min(self.current.len() - self.at);
        buf[..n].copy_from_slice(&self.current[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}
