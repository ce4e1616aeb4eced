//! The resolved plan: everything a run does, decided before any buffer exists.
//! All defaults are filled in; the plan is written into the manifest and hashed.

use crate::model::{Mixture, Potential};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub name: Option<String>,
    pub seed: u64,
    pub particles: ParticlesPlan,
    pub dynamics: DynamicsPlan,
    pub output: OutputPlan,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParticlesPlan {
    /// Total particle count (over all shards).
    pub count: u64,
    /// 1..=8.
    pub dim: u32,
    pub init: Init,
}

/// Initial distributions. Sampling uses Philox stream 1 (see `rng`), on the GPU.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Init {
    Point {
        at: Vec<f64>,
    },
    /// Independent normal coordinates; `std` has one entry per dimension.
    Gaussian {
        mean: Vec<f64>,
        std: Vec<f64>,
    },
    Uniform {
        low: Vec<f64>,
        high: Vec<f64>,
    },
    Mixture(Mixture),
    /// Rows of an N x dim table (.npy or .csv). When `count` equals the number of rows the
    /// rows are used in order; otherwise each particle draws a row uniformly (with replacement).
    Samples {
        path: PathBuf,
        rows: u64,
        sha256: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DynamicsPlan {
    /// Overdamped Langevin, Euler–Maruyama: x += -grad U dt + sqrt(2 T dt) xi.
    Langevin {
        potential: Potential,
        temperature: f64,
        dt: f64,
        /// Number of steps; t_end = steps * dt.
        steps: u64,
        t_end: f64,
    },
}

impl DynamicsPlan {
    pub fn steps(&self) -> u64 {
        match self {
            DynamicsPlan::Langevin { steps, .. } => *steps,
        }
    }

    /// The dynamics' own time after `step` steps.
    pub fn time_at(&self, step: u64) -> f64 {
        match self {
            DynamicsPlan::Langevin { dt, .. } => step as f64 * dt,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputPlan {
    /// Snapshot period in steps (resolved from `every` in time units); None: first and last only.
    pub every_steps: Option<u64>,
    pub histogram: HistogramSpec,
    pub heatmap: HeatmapSpec,
    pub particles: ParticlesOutput,
    pub gif: bool,
    /// A reference density for every histogram (left out of the plan, and so of its hash,
    /// when absent, so older plans keep their hashes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<ReferenceKind>,
    /// Further 2D histograms (axis pairs), written to `density/<a>_<b>/`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub marginals: Vec<HistogramSpec>,
}

/// `[output] reference`: what the particle histograms are compared with (src/reference/).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReferenceKind {
    /// The grid Fokker–Planck solution from the initial law.
    FokkerPlanck,
    /// The stationary density exp(-U/T)/Z.
    Boltzmann,
    /// A closed form (the Ornstein–Uhlenbeck transient Gaussian).
    Analytic,
}

impl ReferenceKind {
    pub const NAMES: &[&str] = &["fokker_planck", "boltzmann", "analytic"];

    pub fn name(self) -> &'static str {
        match self {
            ReferenceKind::FokkerPlanck => "fokker_planck",
            ReferenceKind::Boltzmann => "boltzmann",
            ReferenceKind::Analytic => "analytic",
        }
    }
}

impl OutputPlan {
    /// Steps at which snapshots are taken: 0, every multiple of `every_steps`, and the end.
    pub fn snapshot_steps(&self, total_steps: u64) -> Vec<u64> {
        let mut s = vec![0];
        if let Some(e) = self.every_steps {
            let mut k = e;
            while k < total_steps {
                s.push(k);
                k += e;
            }
        }
        if total_steps > 0 {
            s.push(total_steps);
        }
        s
    }
}

/// A 1D or 2D histogram of chosen axes. `axes`, `bins` and `range` have equal length (1 or 2).
/// Bins follow numpy: half-open [lo, hi) except the last, which includes hi.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistogramSpec {
    pub axes: Vec<u32>,
    pub bins: Vec<u32>,
    pub range: Vec<[f64; 2]>,
}

impl HistogramSpec {
    pub fn total_bins(&self) -> usize {
        self.bins.iter().map(|&b| b as usize).product()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeatmapSpec {
    /// A colorous sequential colormap name: viridis, magma, inferno, plasma, cividis, turbo, greys.
    pub colormap: String,
    pub scale: Scale,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scale {
    Linear,
    Log,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParticlesOutput {
    None,
    Final,
    Snapshots,
}
