//! The resolved plan: everything a run does, decided before any buffer exists.
//! All defaults are filled in; the plan is written into the manifest and hashed.

use crate::model::Mixture;
use crate::model::expr::{PairPotential, TimeExpr};
use crate::model::temperature::SCAN_POINTS;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub name: Option<String>,
    pub seed: u64,
    pub particles: ParticlesPlan,
    pub dynamics: DynamicsPlan,
    pub output: OutputPlan,
    /// Walls, periodic axes and first-passage targets (src/scenario/boundary.rs); left out
    /// of the JSON when there are none, so plans without them keep their hashes.
    #[serde(default, skip_serializing_if = "Boundary::is_empty")]
    pub boundary: Boundary,
}

pub use super::boundary::{Boundary, PassageTarget, Region, Wall};

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

pub use crate::dynamics::DynamicsPlan;

/// The pair potential W of the `interaction` kind; the step subtracts
/// (1/N) sum_j grad W(|x_i - x_j|) dt, the sum over all N particles (the particle itself adds
/// nothing: grad W vanishes at r = 0).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Interaction {
    /// W(r) = strength exp(-|r|^2 / (2 width^2)) (repulsive for strength > 0).
    Gaussian { strength: f64, width: f64 },
    /// W(r) = (strength / 2) |r|^2 (attraction to the ensemble mean for strength > 0).
    Quadratic { strength: f64 },
    /// W(r) written by the user (`{ expr = "W(r)", params = {...} }`), recorded as its
    /// source: `{"kind": "expr", "expr": ..., "params": ...}`.
    Expr(PairPotential),
}

/// The law a kernel flow pushes the particles onto, given by samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Target {
    /// Rows of an M x dim table (.npy or .csv).
    Samples {
        path: PathBuf,
        rows: u64,
        sha256: String,
    },
    /// `count` samples of a Gaussian mixture, drawn from the run's seed (Philox stream
    /// [`crate::rng::STREAM_TARGET`]).
    Mixture { mixture: Mixture, count: u64 },
    /// `count` points with density proportional to the brightness of an image over
    /// `range = [[x0, x1], [y0, y1]]` (2D), drawn from the run's seed.
    Image {
        path: PathBuf,
        sha256: String,
        range: [[f64; 2]; 2],
        count: u64,
    },
}

/// The proxy-noise level of SD flow per step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SigmaSchedule {
    Constant {
        sigma: f64,
    },
    /// Geometric from `start` at step 0 to `end` at the last step (decreasing in use).
    Geometric {
        start: f64,
        end: f64,
    },
    /// sigma(t) written by the user, t the run's progress [`SigmaSchedule::progress`]
    /// (recorded as `{"kind": "expr", "expr": ..., "params": ...}`); checked finite and > 0
    /// at every step when the scenario is read.
    Expr(TimeExpr),
}

impl SigmaSchedule {
    /// The progress of step `step` of `steps` (0-based): step / (steps - 1), 0 at the first
    /// step and 1 at the last (0 for a single step). A schedule's `t`.
    pub fn progress(step: u64, steps: u64) -> f64 {
        if steps <= 1 {
            return 0.0;
        }
        step.min(steps - 1) as f64 / (steps - 1) as f64
    }

    /// sigma at step `step` of `steps` (0-based).
    pub fn at(&self, step: u64, steps: u64) -> f64 {
        match self {
            SigmaSchedule::Constant { sigma } => *sigma,
            SigmaSchedule::Geometric { start, end } => {
                if steps <= 1 {
                    return *start;
                }
                start * (end / start).powf(Self::progress(step, steps))
            }
            SigmaSchedule::Expr(f) => f.at(Self::progress(step, steps)),
        }
    }

    /// The first step (of every step up to [`SCAN_POINTS`] steps, evenly thinned beyond, and
    /// the last) where sigma is not finite and > 0: (step, t, sigma).
    pub fn first_invalid(&self, steps: u64) -> Option<(u64, f64, f64)> {
        let last = steps.saturating_sub(1);
        let stride = steps.div_ceil(SCAN_POINTS).max(1);
        (0..=last / stride)
            .map(|k| k * stride)
            .chain(std::iter::once(last))
            .map(|k| (k, Self::progress(k, steps), self.at(k, steps)))
            .find(|(_, _, v)| !(v.is_finite() && *v > 0.0))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ForwardIntegrator {
    /// x += -f x dt + g sqrt(dt) xi.
    EulerMaruyama,
    /// The exact Gaussian transition of the linear SDE (any dt).
    Exact,
}

/// How reverse dynamics place their steps between t_end and t_min.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeGrid {
    /// t_n = t_end - n (t_end - t_min) / steps.
    #[default]
    Uniform,
    /// t_n = t_end (t_min / t_end)^(n / steps): steps shrink with t, so the last ones
    /// resolve a data law blurred only by s(t_min).
    Geometric,
}

impl TimeGrid {
    pub fn is_uniform(&self) -> bool {
        *self == TimeGrid::Uniform
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowIntegrator {
    Euler,
    Heun,
}

/// Where reverse dynamics take the score of the noised data law from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Score {
    /// The closed-form score of a Gaussian mixture pushed through the process.
    Mixture(Mixture),
    /// The exact score of the noised empirical distribution of a data set (N x dim table).
    Samples {
        path: PathBuf,
        rows: u64,
        sha256: String,
    },
}

/// Process time after `step` of `steps` uniform steps from `t_end` down to `t_min`; exactly
/// t_min at the end.
pub fn reverse_time(t_end: f64, t_min: f64, steps: u64, step: u64) -> f64 {
    if step >= steps {
        return t_min;
    }
    t_end - (t_end - t_min) * (step as f64 / steps as f64)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputPlan {
    /// Snapshot period in steps (resolved from `every` in time units); None: first and last only.
    pub every_steps: Option<u64>,
    pub histogram: HistogramSpec,
    pub heatmap: HeatmapSpec,
    pub particles: ParticlesOutput,
    pub gif: bool,
    /// Trace the first this many particles: their positions at every snapshot go to
    /// `trajectories.npy` and are drawn in `trajectories.png`.
    #[serde(default)]
    pub trajectories: u32,
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
