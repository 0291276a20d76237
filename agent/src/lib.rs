//! The Hangar agent: one process serving git over HTTP, the REST API, and
//! (in later layers) builds, webhooks and mirrors. The `hangar` CLI in
//! [`cli`] is a client of the same API.

pub mod agent;
pub mod build;
pub mod changes;
pub mod cli;
pub mod forges;
pub mod git;
pub mod hooks;
pub mod host;
pub mod http;
pub mod mirror;
pub mod service;
pub mod ssh;
pub mod tunnel;

pub use agent::{Agent, Config, Running, start};
