//! GPU plumbing: adapter choice and device, kernels and dispatch, chunked particle state.

pub mod abi;
pub mod choose;
pub mod context;
pub mod ensemble;
pub mod kernel;

pub use choose::{AdapterChoice, Chosen, Devices};
pub use context::{AdapterSummary, Gpu, choose_devices, list_adapters};
pub use ensemble::Ensemble;
pub use kernel::Kernel;
