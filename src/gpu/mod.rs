//! GPU plumbing: adapter and device, kernels and dispatch, chunked particle state.

pub mod abi;
pub mod context;
pub mod ensemble;
pub mod kernel;
pub mod mul_hi;
pub mod timer;

pub use context::{AdapterChoice, AdapterSummary, Gpu, list_adapters};
pub use ensemble::Ensemble;
pub use kernel::Kernel;
