//! Observers: what crosses the bus between snapshots (histograms, moments).

pub mod distance;
pub mod energy;
pub mod first_passage;
pub mod histogram;
pub mod mmd;
pub mod moments;
pub mod passage_counts;

pub use energy::{EnergyGpu, EnergySums, energy_cpu};
pub use histogram::{HistogramCounts, HistogramGpu, histogram_cpu, phase_histogram_cpu};
pub use mmd::{MmdGpu, median_bandwidth, mmd2_cpu};
pub use moments::{Moments, MomentsGpu, moments_cpu};
