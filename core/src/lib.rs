//! Hangar's domain: everything that is not a server, a socket or a UI.
//!
//! The agent and the desktop app build on these pieces; they hold no I/O
//! besides the SQLite store and the config file.

pub mod config;
pub mod data_dir;
pub mod ids;
pub mod mirror;
pub mod pktline;
pub mod repo_name;
pub mod secrets;
pub mod store;
pub mod token;
pub mod tunnel;
pub mod webhook;
pub mod workflow;
