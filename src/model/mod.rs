//! The mathematical model: potentials, Gaussian mixtures and noising processes, in f64.

pub mod expr;
pub mod mixture;
pub mod potential;
pub mod process;
pub mod step_size;
pub mod temperature;
pub mod wgsl_model;

pub use mixture::Mixture;
pub use potential::Potential;
pub use process::Process;
pub use step_size::StepSize;
pub use temperature::Temperature;
