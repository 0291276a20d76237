//! GitHub-Actions-compatible workflows: parse, lint, plan.

pub mod cron;
pub mod expr;
pub mod glob;
pub mod yaml;
