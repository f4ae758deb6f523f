//! Talking to other processes about a store: JSON messages with file descriptors over Unix
//! sockets, the JSON-RPC 2.0 server and client built on them, and the server's socket.

pub mod fdpass;
pub mod rpc;
pub mod rpc_writes;
pub mod socket;
