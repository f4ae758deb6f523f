//! The one error type of the core.
//!
//! Every failure a caller can act on has its own variant carrying the ID or path involved, and a
//! stable [`Error::code`] that the binding hands to JavaScript unchanged. Nothing in the core
//! panics on bad input: a hostile or damaged store is an `Error`, never an abort.

use std::io;
use std::path::PathBuf;

/// Result alias used throughout the core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No image matches the reference (name, ID, ID prefix or digest).
    #[error("no image matches {reference:?}")]
    NoImage { reference: String },

    /// No layer has this ID (or unique ID prefix, or link name).
    #[error("no layer matches {reference:?}")]
    NoLayer { reference: String },

    /// A short name or ID prefix matched more than one image or layer.
    #[error("{reference:?} is ambiguous: it matches {}", candidates.join(", "))]
    Ambiguous {
        reference: String,
        candidates: Vec<String>,
    },

    /// The store uses something cstor does not read (another graph driver, say).
    #[error("unsupported: {what}")]
    Unsupported { what: String },

    /// A layer whose tar tar-split cannot give back bit for bit: `entry`'s tar body is not its
    /// file's bytes (a sparse file). Exporting it would not match the layer's diff digest.
    #[error("layer {layer}: entry {entry:?} is {reason}: its tar cannot be rebuilt to match the diff digest")]
    Unrebuildable {
        layer: String,
        entry: String,
        reason: String,
    },

    /// The store's metadata or files are not what containers/storage writes.
    #[error("corrupt store: {path}: {detail}")]
    Corrupt { path: PathBuf, detail: String },

    /// The caller passed something malformed (an empty reference, a bad link name, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// The store root does not exist or is not a directory.
    #[error("no containers-storage store at {path}")]
    NoStore { path: PathBuf },

    /// The configuration file could not be read or parsed.
    #[error("bad storage configuration {path}: {detail}")]
    Config { path: PathBuf, detail: String },

    /// The image or layer is in use (by a container, another image, a child layer).
    #[error("in use: {what}")]
    InUse { what: String },

    /// A peer (a cstor JSON-RPC server, a registry) failed or could not be reached; `code` is
    /// the peer's error code when it is one of ours (a registry refusing access is `EACCES`),
    /// `EREMOTE` otherwise.
    #[error("{message}")]
    Remote { code: &'static str, message: String },

    /// A path inside an image's or a layer's filesystem that cannot be read as asked: the
    /// errors `node:fs` gives for the same path on a mounted image (`ENOENT`, `EISDIR`,
    /// `ENOTDIR`, `ELOOP`, `EINVAL`, `ENODATA`), with the path as the caller gave it.
    #[error("{}: {path}", code.describe())]
    Fs { code: FsCode, path: String },

    /// An operating-system error while touching `path` (relative to the store root).
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl Error {
    /// The stable code the TypeScript API exposes as `err.code`.
    ///
    /// These strings are public API: they are matched by users' code and by the CLI's exit-code
    /// logic, so a variant may be added but a code is never renamed.
    pub fn code(&self) -> &'static str {
        match self {
            Error::NoImage { .. } => "ENOIMAGE",
            Error::NoLayer { .. } => "ENOLAYER",
            Error::Ambiguous { .. } => "EAMBIGUOUS",
            Error::Unsupported { .. } | Error::Unrebuildable { .. } => "EUNSUPPORTED",
            Error::Corrupt { .. } => "ECORRUPT",
            Error::InvalidArgument(_) => "EINVAL",
            Error::NoStore { .. } => "ENOSTORE",
            Error::Config { .. } => "ECONFIG",
            Error::InUse { .. } => "EBUSY",
            Error::Remote { code, .. } => code,
            Error::Fs { code, .. } => code.as_str(),
            Error::Io { source, .. } => match source.kind() {
                io::ErrorKind::PermissionDenied => "EACCES",
                io::ErrorKind::NotFound => "ENOENT",
                io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => "ENOSPC",
                io::ErrorKind::CrossesDevices => "EXDEV",
                _ => "EIO",
            },
        }
    }

    /// The static code a peer's code string stands for (`EREMOTE` when it is not one of ours).
    pub fn known_code(code: &str) -> &'static str {
        const CODES: [&str; 19] = [
            "ENOIMAGE",
            "ENOLAYER",
            "EAMBIGUOUS",
            "EUNSUPPORTED",
            "ECORRUPT",
            "EINVAL",
            "ENOSTORE",
            "ECONFIG",
            "EACCES",
            "ENOENT",
            "EIO",
            "ENOSPC",
            "EREMOTE",
            "EBUSY",
            "EISDIR",
            "ENOTDIR",
            "ELOOP",
            "ENODATA",
            "EXDEV",
        ];
        CODES.into_iter().find(|c| *c == code).unwrap_or("EREMOTE")
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corrupt(path: impl Into<PathBuf>, detail: impl Into<String>) -> Self {
        Error::Corrupt {
            path: path.into(),
            detail: detail.into(),
        }
    }
}

/// Why a path in an image's filesystem cannot be read, as the kernel would say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsCode {
    /// No such entry, or one deleted by an upper layer's whiteout.
    NoEntry,
    /// A directory where a file's content was asked for.
    IsDir,
    /// A path goes through something that is not a directory.
    NotDir,
    /// More than [`crate::tree::resolve::MAX_SYMLINKS`] symlinks on the way.
    Loop,
    /// A malformed path (a NUL byte), or `readlink` of something not a symlink.
    Invalid,
    /// No extended attribute of that name.
    NoData,
}

impl FsCode {
    pub fn as_str(self) -> &'static str {
        match self {
            FsCode::NoEntry => "ENOENT",
            FsCode::IsDir => "EISDIR",
            FsCode::NotDir => "ENOTDIR",
            FsCode::Loop => "ELOOP",
            FsCode::Invalid => "EINVAL",
            FsCode::NoData => "ENODATA",
        }
    }

    /// The kernel's words for it (`strerror`), as `node:fs` messages start.
    fn describe(self) -> &'static str {
        match self {
            FsCode::NoEntry => "no such file or directory",
            FsCode::IsDir => "illegal operation on a directory",
            FsCode::NotDir => "not a directory",
            FsCode::Loop => "too many symbolic links encountered",
            FsCode::Invalid => "invalid argument",
            FsCode::NoData => "no data available",
        }
    }
}

/// Attaches the store-relative path to an `io::Error`, the way every store access reports it.
pub(crate) trait IoContext<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| Error::io(path, e))
    }
}

/// The core error an `io::Error` carries — a [`LayerReader`](crate::content::reader::LayerReader)
/// or a destination's blob writer passes one through `Read`/`Write` — or `fallback` for any
/// other.
pub fn into_core_error(e: io::Error, fallback: impl FnOnce(io::Error) -> Error) -> Error {
    if e.get_ref().is_none() {
        return fallback(e);
    }
    let kind = e.kind();
    match e.into_inner().map(|inner| inner.downcast::<Error>()) {
        Some(Ok(core)) => *core,
        Some(Err(other)) => fallback(io::Error::new(kind, other)),
        None => fallback(kind.into()),
    }
}
