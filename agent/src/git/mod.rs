//! Git on the agent's side: spawning the pack services, reading repositories
//! with gix, recording pushes, and background maintenance.

pub mod maintenance;
pub mod push;
pub mod read;
pub mod repos;
pub mod service;
pub mod updates;
