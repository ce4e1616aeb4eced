//! Scenario file → validated, resolved [`Plan`].

pub mod data;
pub mod plan;

pub use plan::*;
