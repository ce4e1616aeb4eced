//! GPU plumbing: adapter choice and device, kernels and dispatch, chunked particle state.

pub mod abi;
pub mod choose;
pub mod context;
pub mod ensemble;
pub mod kernel;
pub mod mul_hi;
pub mod rows;
pub mod specialise;
pub mod timer;

pub use choose::{AdapterChoice, Chosen, Devices};
pub use context::{AdapterSummary, Gpu, list_adapters, open_devices};
pub use ensemble::Ensemble;
pub use kernel::Kernel;
