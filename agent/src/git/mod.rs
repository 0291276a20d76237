//! Git on the agent's side: who may use a repository, spawning the pack
//! services, reading repositories with gix, recording pushes, and background
//! maintenance. Shared by every transport.

pub mod access;
pub mod maintenance;
pub mod push;
pub mod read;
pub mod repos;
pub mod service;
pub mod updates;
