//! GitHub-Actions-compatible workflows: parse, lint, plan.

pub mod expr;
pub mod yaml;
