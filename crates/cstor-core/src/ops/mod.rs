//! The store's operations, each defined once: typed parameters (serde), a typed result, and the
//! core call that does it.
//!
//! Every front end dispatches over [`OPERATIONS`] by method name and nothing else: the napi
//! binding (in process) and the JSON-RPC server ([`rpc_server`]) — which is also how a rootless
//! store is read and written, through a helper inside the user namespace. So an operation behaves
//! the same whichever way it is reached, and adding one is a struct here plus its line in
//! [`OPERATIONS`]; its TypeScript types come from [`typescript_declarations`].
//!
//! A call gets its parameters as JSON, the fds sent with it (an export's output, a tar to
//! import), and a [`Sink`] for the events it emits before its result (progress, the parts of a
//! streamed layer, a server's access log). Defaults, validation and relative paths are settled
//! here, where the work runs, never in the front ends.

mod composefs;
mod content;
mod extract;
mod files;
mod metadata;
pub mod records;
mod registries;
pub mod rpc_server;
mod serve;
mod transport;
mod verify;
mod write;

use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use ts_rs::TS;

use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::store::Store;

pub use composefs::ComposefsImage;
pub use content::{ExportLayer, GetLayerSplitfdstream, ImageToc, LayerToc, StreamLayer};
pub use extract::{ExtractImage, ExtractLayer};
pub use files::{
    AnalyzeImage, FsEntries, FsOpen, FsReaddir, FsReadlink, FsStat, FsXattrs, ImageDiff,
};
pub use metadata::{
    Describe, GetImage, GetLayer, ImageBigData, InspectImage, LayerChain, ListImages, ListLayers,
    LowerChain, ResolveLink,
};
pub use registries::{Login, Logout, Registries, RegistryOptions};
pub use serve::{Serve, ServeRegistry};
pub use transport::{CopyTo, CopyToOci, Import, Pull};
pub use verify::Verify;
pub use write::{CreateImage, CreateLayer, RemoveImage, RemoveLayer, Tag, Untag};

/// Whether an operation changes the store: a read-only server answers only [`Access::Read`] ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

/// One operation on an open store.
pub trait Operation: DeserializeOwned + TS + 'static {
    /// Its name, in JSON-RPC requests and for the binding.
    const METHOD: &'static str;
    const ACCESS: Access = Access::Read;
    type Output: Serialize + TS + 'static;

    fn run(self, store: &Arc<Store>, call: &mut Call) -> Result<Self::Output>;
}

/// Something an operation tells its caller before its result.
#[derive(Debug)]
pub struct Event {
    pub method: String,
    pub params: Value,
    pub fds: Vec<OwnedFd>,
}

/// The caller went away (closed its connection, or cancelled the call).
#[derive(Debug, Clone, Copy)]
pub struct Gone;

/// Where a call's events go: a socket to a JSON-RPC client, or a queue JavaScript drains.
pub trait Sink: Send + Sync {
    /// Hands an event to the caller; blocks while the caller is behind (so a stream of fds
    /// cannot outrun it), fails once the caller is gone.
    fn emit(&self, event: Event) -> std::result::Result<(), Gone>;

    /// Blocks until the caller cancels the call or goes away: how a server operation knows to
    /// stop.
    fn wait_cancelled(&self);
}

/// What an operation has of its caller: the fds sent with the call, the fds to send back, the
/// event sink, and the directory relative paths are relative to.
pub struct Call {
    fds: Vec<OwnedFd>,
    reply_fds: Vec<OwnedFd>,
    sink: Arc<dyn Sink>,
    cwd: Option<PathBuf>,
}

impl Call {
    /// A call with the fds sent along and, when the caller runs elsewhere (a JSON-RPC client),
    /// its working directory.
    pub fn new(fds: Vec<OwnedFd>, sink: Arc<dyn Sink>, cwd: Option<PathBuf>) -> Call {
        Call {
            fds,
            reply_fds: Vec::new(),
            sink,
            cwd,
        }
    }

    /// The one fd an operation takes (`what` says what it is for the error message).
    pub fn take_fd(&mut self, what: &str) -> Result<File> {
        match self.fds.len() {
            1 => Ok(File::from(self.fds.remove(0))),
            n => Err(Error::InvalidArgument(format!(
                "this call takes {what} as its one fd, not {n} fds"
            ))),
        }
    }

    /// Sends `fd` back with the result.
    pub fn reply_fd(&mut self, fd: impl Into<OwnedFd>) {
        self.reply_fds.push(fd.into());
    }

    pub fn emit(
        &self,
        method: &'static str,
        params: impl Serialize,
        fds: Vec<OwnedFd>,
    ) -> Result<()> {
        let params = serde_json::to_value(params)
            .map_err(|e| Error::InvalidArgument(format!("{method}: {e}")))?;
        self.sink
            .emit(Event {
                method: method.to_owned(),
                params,
                fds,
            })
            .map_err(|Gone| cancelled())
    }

    /// A progress callback for the core's long work: each report becomes a `progress` event
    /// (dropped once the caller is gone: the work finishes, its result goes nowhere).
    pub fn progress(&self) -> impl FnMut(Progress) + '_ {
        move |progress| {
            let _ = self.emit("progress", progress, Vec::new());
        }
    }

    pub fn sink(&self) -> Arc<dyn Sink> {
        self.sink.clone()
    }

    /// A path the caller gave, relative to the caller's working directory.
    pub fn path(&self, path: &str) -> PathBuf {
        match &self.cwd {
            Some(cwd) => cwd.join(path),
            None => PathBuf::from(path),
        }
    }

    /// An image reference the caller gave (`oci:DIR:REF`, `docker-archive:FILE`, …), its path
    /// relative to the caller's working directory.
    pub fn image_reference(&self, reference: &str) -> String {
        match &self.cwd {
            Some(cwd) => crate::transport::absolute_reference(reference, cwd),
            None => reference.to_owned(),
        }
    }

    /// The caller's working directory, if it runs elsewhere.
    pub fn cwd(&self) -> Option<&Path> {
        self.cwd.as_deref()
    }
}

fn cancelled() -> Error {
    Error::Io {
        path: PathBuf::new(),
        source: std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the caller went away"),
    }
}

/// Why a call has no result.
#[derive(Debug)]
pub enum Failure {
    /// No operation has this name.
    UnknownMethod(String),
    /// A write on a read-only server.
    ReadOnly(String),
    /// The parameters are not what the operation takes.
    Params(String),
    /// The operation failed.
    Store(Error),
}

impl Failure {
    /// The failure as a core error (`EINVAL` for the caller's mistakes).
    pub fn into_error(self) -> Error {
        match self {
            Failure::UnknownMethod(method) => {
                Error::InvalidArgument(format!("no operation {method:?}"))
            }
            Failure::ReadOnly(message) | Failure::Params(message) => {
                Error::InvalidArgument(message)
            }
            Failure::Store(e) => e,
        }
    }
}

/// A call's outcome: the result as JSON and the fds that go with it.
pub struct Outcome {
    pub result: Value,
    pub fds: Vec<OwnedFd>,
}

/// Which operations a caller may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allowed {
    ReadOnly,
    ReadWrite,
}

/// Runs the operation `method` names.
pub fn dispatch(
    store: &Arc<Store>,
    method: &str,
    params: Value,
    mut call: Call,
    allowed: Allowed,
) -> Result<Outcome, Failure> {
    let entry = OPERATIONS
        .iter()
        .find(|entry| entry.method == method)
        .ok_or_else(|| Failure::UnknownMethod(method.to_owned()))?;
    if entry.access == Access::Write && allowed == Allowed::ReadOnly {
        return Err(Failure::ReadOnly(format!(
            "{method} needs a writable server (cstor serve --writable)"
        )));
    }
    let result = (entry.run)(store, params, &mut call)?;
    Ok(Outcome {
        result,
        fds: call.reply_fds,
    })
}

/// An operation in the table: its name, access, and its runner over JSON.
pub struct Entry {
    pub method: &'static str,
    pub access: Access,
    run: fn(&Arc<Store>, Value, &mut Call) -> Result<Value, Failure>,
    declare: fn(&mut typescript::Declarations),
}

const fn entry<O: Operation>() -> Entry {
    Entry {
        method: O::METHOD,
        access: O::ACCESS,
        run: run::<O>,
        declare: typescript::declare::<O>,
    }
}

fn run<O: Operation>(store: &Arc<Store>, params: Value, call: &mut Call) -> Result<Value, Failure> {
    // No params at all (`{"method": "ListImages"}`) means an empty object.
    let params = if params.is_null() {
        Value::Object(Default::default())
    } else {
        params
    };
    let operation: O = serde_path_to_error::deserialize(params).map_err(|e| {
        let field = match e.path().to_string().as_str() {
            "." => String::new(),
            path => format!(".{path}"),
        };
        Failure::Params(format!("{}: params{field}: {}", O::METHOD, e.inner()))
    })?;
    let output = operation.run(store, call).map_err(Failure::Store)?;
    serde_json::to_value(output)
        .map_err(|e| Failure::Store(Error::InvalidArgument(format!("{}: {e}", O::METHOD))))
}

/// Every operation, by method name.
pub static OPERATIONS: &[Entry] = &[
    entry::<Describe>(),
    entry::<ListImages>(),
    entry::<GetImage>(),
    entry::<InspectImage>(),
    entry::<ImageBigData>(),
    entry::<ListLayers>(),
    entry::<GetLayer>(),
    entry::<LayerChain>(),
    entry::<LowerChain>(),
    entry::<ResolveLink>(),
    entry::<ExportLayer>(),
    entry::<StreamLayer>(),
    entry::<GetLayerSplitfdstream>(),
    entry::<LayerToc>(),
    entry::<ImageToc>(),
    entry::<FsStat>(),
    entry::<FsReaddir>(),
    entry::<FsReadlink>(),
    entry::<FsOpen>(),
    entry::<FsXattrs>(),
    entry::<FsEntries>(),
    entry::<ImageDiff>(),
    entry::<AnalyzeImage>(),
    entry::<ExtractImage>(),
    entry::<ComposefsImage>(),
    entry::<ExtractLayer>(),
    entry::<CopyTo>(),
    entry::<CopyToOci>(),
    entry::<Verify>(),
    entry::<ServeRegistry>(),
    entry::<Serve>(),
    entry::<Pull>(),
    entry::<Import>(),
    entry::<Registries>(),
    entry::<Login>(),
    entry::<Logout>(),
    entry::<CreateLayer>(),
    entry::<CreateImage>(),
    entry::<Tag>(),
    entry::<Untag>(),
    entry::<RemoveImage>(),
    entry::<RemoveLayer>(),
];

/// A file's bytes in JSON: base64 (standard, padded), as JSON-RPC carries them.
#[derive(Debug, Clone, Default, PartialEq, Eq, TS)]
#[ts(type = "string")]
pub struct Base64(pub Vec<u8>);

impl Serialize for Base64 {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        use base64::Engine;
        serializer.serialize_str(&base64::engine::general_purpose::STANDARD.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Base64 {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        use base64::Engine;
        let text = String::deserialize(deserializer)?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map(Base64)
            .map_err(serde::de::Error::custom)
    }
}

/// An operation's result when it has nothing to say but that it finished.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, TS)]
pub struct Done {}

pub mod typescript {
    //! The TypeScript declarations of every operation's parameters, result and events, for
    //! `ts/generated/operations.ts` (checked against this by a test, so the two never differ).

    use std::any::TypeId;
    use std::collections::{BTreeMap, HashSet};

    use ts_rs::{Config, TypeVisitor, TS};

    use super::{Operation, OPERATIONS};

    /// Declarations collected once each, by name: the order ts-rs visits dependencies in is
    /// not the same in every build, and TypeScript needs none.
    #[derive(Default)]
    pub struct Declarations {
        seen: HashSet<TypeId>,
        declared: BTreeMap<String, String>,
        methods: String,
        config: Config,
    }

    impl Declarations {
        fn add<T: TS + 'static + ?Sized>(&mut self) {
            if !self.seen.insert(TypeId::of::<T>()) {
                return;
            }
            T::visit_dependencies(&mut Visitor(self));
            // A result such as `Vec<FsDirent>` names its element only as a generic.
            T::visit_generics(&mut Visitor(self));
            if T::output_path().is_some() {
                let declaration = format!("export {}\n\n", T::decl(&self.config));
                self.declared.insert(T::name(&self.config), declaration);
            }
        }
    }

    struct Visitor<'a>(&'a mut Declarations);

    impl TypeVisitor for Visitor<'_> {
        fn visit<T: TS + 'static + ?Sized>(&mut self) {
            self.0.add::<T>();
        }
    }

    pub(super) fn declare<O: Operation>(declarations: &mut Declarations) {
        declarations.add::<O>();
        declarations.add::<O::Output>();
        let output = <O::Output as TS>::name(&declarations.config);
        declarations.methods.push_str(&format!(
            "  {}: {{ params: {}; result: {} }}\n",
            O::METHOD,
            O::name(&declarations.config),
            output
        ));
    }

    /// The whole generated file: every type an operation takes, returns or emits, and the
    /// `Operations` map from method name to parameters and result.
    pub fn typescript_declarations() -> String {
        let mut declarations = Declarations {
            config: Config::new().with_large_int("number"),
            ..Default::default()
        };
        for entry in OPERATIONS {
            (entry.declare)(&mut declarations);
        }
        super::content::declare_events(&mut declarations);
        super::serve::declare_events(&mut declarations);
        declarations.add::<crate::progress::Progress>();
        format!(
            "// Generated from crates/cstor-core/src/ops by `cargo test -p cstor-core typescript` \
             (CSTOR_UPDATE_TS=1 rewrites it). Do not edit.\n\n{}/** Every operation: its parameters and result. */\nexport interface Operations {{\n{}}}\n",
            declarations.declared.into_values().collect::<String>(),
            declarations.methods
        )
    }

    impl Declarations {
        /// Declares an event's payload type.
        pub(super) fn event<T: TS + 'static>(&mut self) {
            self.add::<T>();
        }
    }

    #[cfg(test)]
    mod tests {
        use super::typescript_declarations;

        /// `ts/generated/operations.ts` is what the operations say; `CSTOR_UPDATE_TS=1` rewrites it.
        #[test]
        fn typescript_declarations_are_current() {
            let path = concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../ts/generated/operations.ts"
            );
            let generated = typescript_declarations();
            if std::env::var_os("CSTOR_UPDATE_TS").is_some() {
                std::fs::write(path, &generated).unwrap();
            }
            let committed = std::fs::read_to_string(path).unwrap_or_default();
            assert!(
                committed == generated,
                "ts/generated/operations.ts is stale: run CSTOR_UPDATE_TS=1 cargo test -p cstor-core typescript"
            );
        }
    }
}

pub use typescript::typescript_declarations;
