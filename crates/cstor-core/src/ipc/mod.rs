//! Talking to other processes about a store: JSON messages with file descriptors over Unix
//! sockets, and the JSON-RPC 2.0 server and client built on them.

pub mod fdpass;
pub mod rpc;
pub mod rpc_writes;
