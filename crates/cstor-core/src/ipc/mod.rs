//! Talking to other processes: JSON messages with file descriptors over Unix sockets, the
//! JSON-RPC 2.0 server and client built on them, and the server's socket. What the server
//! answers is [`crate::ops`]'s business.

pub mod fdpass;
pub mod rpc;
pub mod socket;
