//! Writers for everything a run directory holds (README, "Output contract"): one writer per
//! format, each producing bytes that [`write_atomic`] puts in place, so a reader never sees a
//! half-written file and an interrupted run never leaves one behind.

mod atomic;
mod gif;
mod heatmap;
mod metrics;
mod npy;
pub mod plot;
mod rundir;

pub use atomic::{sync_deferred, write_atomic, write_atomic_deferred};
pub use gif::encode_gif;
pub use heatmap::{colormap, colormap_names, png_bytes, render_density_image, render_density_png};
pub use metrics::{MetricsRow, metrics_csv};
pub use npy::{
    npy_f32, npy_f64, npy_i32, npy_u32, npy_u64, read_npy_f32, read_npy_f64, read_npy_i32,
    read_npy_u32, read_npy_u64,
};
pub use rundir::prepare_run_dir;
