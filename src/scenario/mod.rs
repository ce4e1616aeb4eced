//! Scenario file → validated, resolved [`Plan`].
//!
//! [`load`] / [`resolve_str`] parse the TOML, apply `--set` overrides and `--seed`, report
//! every problem at once ([`crate::error::Error::Scenario`]), and return a [`Resolved`] plan with all
//! defaults filled in, the sample table it needs, and the run hash.

pub mod boundary;
pub mod data;
pub(crate) mod expr_keys;
pub(crate) mod keys;
pub mod parse;
pub mod plan;
pub(crate) mod range;
pub(crate) mod resolve;
pub(crate) mod walk;

pub use parse::{
    PLAN_HASH_FORMAT, Resolved, input_digests, load, plan_hash, resolve_str, resolve_table,
};
pub use plan::*;
pub use range::default_range;
pub use resolve::{DEFAULT_BINS, MAX_BINS, MAX_DIM, MAX_STEPS};
