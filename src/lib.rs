//! fokker: a GPU particle simulator for Fokker–Planck density experiments.

pub mod dynamics;
pub mod error;
pub mod gpu;
pub mod model;
pub mod observe;
pub mod output;
pub mod reference;
pub mod rng;
pub mod run;
pub mod scenario;
pub mod shaders;
pub mod simulation;

pub use error::{Error, Result};
