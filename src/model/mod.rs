//! The mathematical model: potentials and Gaussian mixtures, evaluated in f64.

pub mod mixture;
pub mod potential;

pub use mixture::Mixture;
pub use potential::Potential;
