//! Dynamics: one file per kind, each with its GPU pipeline and its CPU twin.

pub mod init;
pub mod kernel_sum;
pub mod langevin;
pub mod potential_params;
