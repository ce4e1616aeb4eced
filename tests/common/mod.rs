//! Shared by the integration tests. GPU tests never skip: no adapter is a failure.
#![allow(dead_code)]

use fokker::gpu::{AdapterChoice, Gpu};

/// Opens the adapter named by FOKKER_TEST_ADAPTER (default: auto), or panics with the reason.
pub fn gpu() -> Gpu {
    let choice: AdapterChoice = std::env::var("FOKKER_TEST_ADAPTER")
        .unwrap_or_else(|_| "auto".into())
        .parse()
        .expect("FOKKER_TEST_ADAPTER is an adapter spec");
    match Gpu::open(&choice) {
        Ok(g) => g,
        Err(e) => panic!("GPU tests need an adapter and none could be opened: {e}"),
    }
}

pub mod chain;
pub mod f32err;
pub mod kernel_bounds;
pub mod linear_chain;
pub mod mmd;
pub mod sim;
pub mod stats;
