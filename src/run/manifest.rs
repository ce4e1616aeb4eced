//! `manifest.json`: what a run directory holds and how it was made (README, output
//! contract). Rewritten atomically at the start, after every snapshot and at the end.

use crate::gpu::AdapterSummary;
use crate::scenario::Plan;
use serde::{Deserialize, Serialize};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const GIT_REVISION: &str = env!("FOKKER_GIT_REVISION");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Running,
    Complete,
    Interrupted,
    Diverged,
    Failed,
}

impl Status {
    /// The word the manifest writes (serde's snake_case name).
    pub fn name(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Complete => "complete",
            Status::Interrupted => "interrupted",
            Status::Diverged => "diverged",
            Status::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InputFile {
    pub path: String,
    pub sha256: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Timings {
    pub wall_seconds: f64,
    pub init_seconds: f64,
    pub stepping_seconds: f64,
    pub observe_seconds: f64,
    pub write_seconds: f64,
    /// Computing references (the grid solver) and writing their files.
    #[serde(default)]
    pub reference_seconds: f64,
    /// count * steps / stepping_seconds.
    pub particle_steps_per_second: f64,
    /// For dynamics built on kernel sums: Gaussian-kernel evaluations per second (particle
    /// steps per second times the evaluations each needs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interactions_per_second: Option<f64>,
    /// GPU time of the stepping and observing submissions by timestamp queries, where the
    /// device has them (absent otherwise): what `stepping_seconds` and `observe_seconds` spent
    /// on the device rather than submitting, waiting and reading back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_stepping_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_observe_seconds: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HistogramRecord {
    pub axes: Vec<u32>,
    pub bins: Vec<u32>,
    pub range: Vec<[f64; 2]>,
    pub in_range: u64,
    pub outside: u64,
    pub nonfinite: u64,
    /// Per axis: finite particles below / above the range.
    pub below: Vec<u64>,
    pub above: Vec<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SnapshotRecord {
    pub step: u64,
    pub time: f64,
    /// Relative paths.
    pub density: String,
    pub heatmap: String,
    pub particles: Option<String>,
    /// Beside `particles`, for dynamics with velocities (underdamped, the heavy ball): the
    /// end-of-step velocities, `velocities/NNNNNNNN.npy`, f32 (count, dim).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub velocities: Option<String>,
    pub histogram: HistogramRecord,
    /// Mean and covariance of the finite particles (also in metrics.csv).
    pub moments: MomentsRecord,
    /// Positions of the traced particles (`output.trajectories`), row-major.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trace: Vec<f32>,
    /// MMD^2 to the target (kernel flows; also in metrics.csv).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mmd2: Option<f64>,
    /// MALA: proposals accepted since the previous snapshot, over this run's particles (an
    /// integer, so that shards merge exactly), and their fraction of the proposals made
    /// (also in metrics.csv; absent at the first snapshot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acceptance_rate: Option<f64>,
    /// Energy observables (src/observe/energy.rs; also in metrics.csv) for dynamics with a
    /// potential other than a WGSL file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy: Option<EnergyRecord>,
    /// With first-passage targets: particles counted, absorbed, and per target still
    /// surviving (integers, so that shards add up; metrics.csv's `survival_<name>` and
    /// `absorbed_fraction`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passage: Option<crate::observe::first_passage::PassageCounts>,
    /// With `[output] reference`: the reference's files and the distances to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<ReferenceRecord>,
    /// The `[output] marginals` histograms, in the plan's order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub marginals: Vec<MarginalRecord>,
}

/// The energy observables of one snapshot: ⟨U⟩, ⟨Σ_k m_k v_k²⟩ / dim (dynamics with
/// velocities) and ⟨|∇U|²⟩ / ⟨ΔU⟩, with the sums they come from (so shards pool exactly).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnergyRecord {
    pub mean_potential: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kinetic_temperature: Option<f64>,
    pub configurational_temperature: Option<f64>,
    pub sums: crate::observe::EnergySums,
}

impl EnergyRecord {
    pub fn from_sums(sums: crate::observe::EnergySums) -> EnergyRecord {
        EnergyRecord {
            mean_potential: sums.mean_potential(),
            kinetic_temperature: sums.kinetic_temperature(),
            configurational_temperature: sums.configurational_temperature(),
            sums,
        }
    }
}

/// A histogram's reference at one snapshot (src/run/reference.rs). Distances are None where
/// undefined (no particles in range).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReferenceRecord {
    pub kind: crate::scenario::ReferenceKind,
    /// Relative paths: the reference bin probabilities (f64 .npy) and their picture, and the
    /// particle | reference | difference picture.
    pub density: String,
    pub heatmap: String,
    pub compare: String,
    pub tv: Option<f64>,
    pub hellinger: Option<f64>,
    pub kl: Option<f64>,
    pub tv_floor: Option<f64>,
    /// F of the particle histogram (U at the bin centres).
    pub free_energy: Option<f64>,
    /// F of the reference on its own grid.
    pub free_energy_reference: Option<f64>,
    /// With absorbing first-passage targets and "fokker_planck": the grid's survival S(t),
    /// the mass no absorbing target has taken (the particles' is 1 - absorbed_fraction).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub survival_reference: Option<f64>,
}

/// One `[output] marginals` histogram at one snapshot.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MarginalRecord {
    pub density: String,
    pub heatmap: String,
    pub histogram: HistogramRecord,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<ReferenceRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MomentsRecord {
    /// Finite particles the moments are over.
    pub count: u64,
    /// NaN (null in the JSON) when no particle is left (all absorbed).
    #[serde(deserialize_with = "nulls_as_nan")]
    pub mean: Vec<f64>,
    /// dim x dim, row-major, population (1/N) covariance.
    #[serde(deserialize_with = "nulls_as_nan")]
    pub cov: Vec<f64>,
}

/// A list of numbers whose NaNs serde_json wrote as null (moments over no particle), read
/// back as NaN so such a manifest can be resumed and merged.
fn nulls_as_nan<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
    let values: Vec<Option<f64>> = Deserialize::deserialize(d)?;
    Ok(values.into_iter().map(|v| v.unwrap_or(f64::NAN)).collect())
}

/// Which part of the particles a sharded run owns: global indices first .. first + particles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardRecord {
    pub index: u64,
    pub count: u64,
    pub first: u64,
    pub particles: u64,
}

/// One device's range of a run split across devices.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeviceRecord {
    pub first: u64,
    pub particles: u64,
    pub adapter: AdapterSummary,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub status: Status,
    pub fokker_version: String,
    pub git_revision: String,
    pub name: Option<String>,
    pub seed: u64,
    /// The adapter the run (its first range, with `--devices`) stepped on: with its
    /// `index`, `pci_bus_id` and `reason` (how it was chosen).
    pub adapter: AdapterSummary,
    /// A run split across devices (`--devices`): each range of global indices and the
    /// adapter that stepped it, in index order. Absent for one device.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<DeviceRecord>,
    pub plan_hash: String,
    pub plan: Plan,
    /// Present when this run is one shard of a job array (`count` in the plan is the total).
    #[serde(default)]
    pub shard: Option<ShardRecord>,
    /// The shard directories a `fokker merge` combined.
    #[serde(default)]
    pub merged_from: Vec<String>,
    pub inputs: Vec<InputFile>,
    pub timings: Timings,
    pub snapshots: Vec<SnapshotRecord>,
    /// Files at the run root, relative paths: metrics.csv, density.gif.
    pub metrics: String,
    pub gif: Option<String>,
    /// `trajectories.npy` and `trajectories.png` when particles are traced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trajectories: Option<String>,
    /// Plots at the run root (distances.png, free_energy.png with a reference).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plots: Vec<String>,
    /// Why the run stopped, when status is not `complete`.
    pub error: Option<String>,
    /// Kernel flows: the MMD diagnostic's Gaussian-kernel bandwidth h (median pairwise
    /// distance of the target samples), fixed for the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mmd_bandwidth: Option<f64>,
    /// Kernel flows: `mmd.png`, MMD^2 against step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mmd_plot: Option<String>,
    /// Runs with first-passage targets or periodic axes: the mean first-passage times and
    /// the end-of-run files (src/run/passage.rs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_passage: Option<super::passage::FirstPassageRecord>,
}
