//! ldv (crate `llm-data-vault`): a data vault that stores datasets and model artifacts as
//! content-addressed, deduplicated, verified chunks in object storage.
//!
//! Layers, top to bottom: `cli` (arguments, settings, rendering, exit codes), `ops` (one function
//! per command, returning serializable results), `store` (chunks, manifests, frames), `backend`
//! (the storage trait, its implementations and layers). Only `cli` prints.

pub mod backend;
pub mod cli;
pub mod config;
pub mod error;
#[doc(hidden)]
pub mod fuzz;
pub mod ops;
pub mod report;
pub mod store;
pub mod time;

pub use error::{Error, ErrorKind, Result};
