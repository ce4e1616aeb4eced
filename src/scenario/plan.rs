//! The resolved plan: everything a run does, decided before any buffer exists.
//! All defaults are filled in; the plan is written into the manifest and hashed.

use crate::model::{Mixture, Potential, Process};
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
    /// `kind = "prior"` as written: the resolver replaces it by the Gaussian prior of the
    /// reverse dynamics' process, so a plan never holds it.
    Prior,
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
    /// Gradient descent x += -grad U dt (T = 0); with `friction` the heavy ball
    /// x'' + friction x' + grad U = 0 by semi-implicit Euler: v += -(friction v + grad U) dt,
    /// x += v dt, from rest.
    GradientFlow {
        potential: Potential,
        dt: f64,
        steps: u64,
        t_end: f64,
        friction: Option<f64>,
    },
    /// The forward noising SDE from t = 0 to t_end.
    Forward {
        process: Process,
        integrator: ForwardIntegrator,
        dt: f64,
        steps: u64,
        t_end: f64,
    },
    /// The reverse-time SDE, Euler–Maruyama on a uniform grid from t_end down to t_min.
    ReverseSde {
        process: Process,
        score: Score,
        t_end: f64,
        t_min: f64,
        steps: u64,
        #[serde(default, skip_serializing_if = "TimeGrid::is_uniform")]
        grid: TimeGrid,
    },
    /// The probability-flow ODE dx = [f - (1/2) g^2 score] dt from t_end down to t_min.
    ProbabilityFlow {
        process: Process,
        score: Score,
        integrator: FlowIntegrator,
        t_end: f64,
        t_min: f64,
        steps: u64,
        #[serde(default, skip_serializing_if = "TimeGrid::is_uniform")]
        grid: TimeGrid,
    },
    /// Score-difference flow, kernel form (seed 004): z = y + sigma eps, y += eta (D_p(z) -
    /// D_q(z)) with Gaussian-kernel denoisers over the target samples and the current
    /// particles (`approximate`: D_q(z) ~ y). Step-based: time is the step index.
    SdFlow {
        target: Target,
        sigma: SigmaSchedule,
        eta: f64,
        steps: u64,
        approximate: bool,
        /// Mixture targets: D_p from the mixture's exact noised score instead of its samples
        /// (the samples still serve the MMD diagnostic).
        #[serde(default)]
        exact_score: bool,
    },
    /// MMD gradient flow with a Gaussian kernel of bandwidth h:
    /// x_i -= eta grad_x [(1/N) sum_j k(x, x_j) - (1/M) sum_m k(x, y_m)] at x = x_i + beta eps
    /// (noise injection, `noise` = beta; 0 for none). Step-based.
    MmdFlow {
        target: Target,
        eta: f64,
        steps: u64,
        /// h; None: the median pairwise distance of the target samples.
        bandwidth: Option<f64>,
        noise: f64,
    },
    /// Stein variational gradient descent, k = exp(-r^2 / h), h = med^2 / log N of the
    /// current particles unless given. The target score is a mixture's exact score or the
    /// Gaussian-kernel-smoothed score of the target samples (bandwidth `score_bandwidth`,
    /// default Silverman's rule). Step-based.
    Svgd {
        target: Target,
        eta: f64,
        steps: u64,
        bandwidth: Option<f64>,
        score_bandwidth: Option<f64>,
    },
    /// Mean-field interacting particles (McKean–Vlasov), Euler–Maruyama:
    /// x_i += [-grad V(x_i) - (1/N) sum_j grad W(x_i - x_j)] dt + sqrt(2 T dt) xi.
    Interaction {
        potential: Potential,
        interaction: Interaction,
        temperature: f64,
        dt: f64,
        steps: u64,
        t_end: f64,
    },
}

/// The pair potential W of [`DynamicsPlan::Interaction`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Interaction {
    /// W(r) = strength exp(-|r|^2 / (2 width^2)) (repulsive for strength > 0).
    Gaussian { strength: f64, width: f64 },
    /// W(r) = (strength / 2) |r|^2 (attraction to the ensemble mean for strength > 0).
    Quadratic { strength: f64 },
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
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
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
}

impl SigmaSchedule {
    /// sigma at step `step` of `steps` (0-based).
    pub fn at(&self, step: u64, steps: u64) -> f64 {
        match *self {
            SigmaSchedule::Constant { sigma } => sigma,
            SigmaSchedule::Geometric { start, end } => {
                if steps <= 1 {
                    return start;
                }
                let f = step.min(steps - 1) as f64 / (steps - 1) as f64;
                start * (end / start).powf(f)
            }
        }
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

impl DynamicsPlan {
    pub fn steps(&self) -> u64 {
        match self {
            DynamicsPlan::Langevin { steps, .. }
            | DynamicsPlan::GradientFlow { steps, .. }
            | DynamicsPlan::Forward { steps, .. }
            | DynamicsPlan::ReverseSde { steps, .. }
            | DynamicsPlan::ProbabilityFlow { steps, .. }
            | DynamicsPlan::SdFlow { steps, .. }
            | DynamicsPlan::MmdFlow { steps, .. }
            | DynamicsPlan::Svgd { steps, .. }
            | DynamicsPlan::Interaction { steps, .. } => *steps,
        }
    }

    /// (t_end, t_min, steps, grid) of reverse dynamics, which run from t_end down to t_min.
    fn reverse_grid(&self) -> Option<(f64, f64, u64, TimeGrid)> {
        match self {
            DynamicsPlan::ReverseSde {
                t_end,
                t_min,
                steps,
                grid,
                ..
            }
            | DynamicsPlan::ProbabilityFlow {
                t_end,
                t_min,
                steps,
                grid,
                ..
            } => Some((*t_end, *t_min, *steps, *grid)),
            _ => None,
        }
    }

    /// The dynamics' own time after `step` steps: physical time, or process time (which
    /// decreases) for reverse dynamics.
    pub fn time_at(&self, step: u64) -> f64 {
        match self.reverse_grid() {
            Some((t_end, t_min, steps, TimeGrid::Uniform)) => {
                reverse_time(t_end, t_min, steps, step)
            }
            Some((t_end, t_min, steps, TimeGrid::Geometric)) => {
                if step >= steps {
                    t_min
                } else {
                    t_end * (t_min / t_end).powf(step as f64 / steps as f64)
                }
            }
            None => step as f64 * self.time_per_step(),
        }
    }

    /// Time units per step (positive), to turn `output.every` into steps; for reverse
    /// dynamics the mean step (t_end - t_min) / steps, whatever the grid.
    pub fn time_per_step(&self) -> f64 {
        match self {
            DynamicsPlan::Langevin { dt, .. }
            | DynamicsPlan::GradientFlow { dt, .. }
            | DynamicsPlan::Forward { dt, .. } => *dt,
            DynamicsPlan::ReverseSde { .. } | DynamicsPlan::ProbabilityFlow { .. } => {
                let (t_end, t_min, steps, _) =
                    self.reverse_grid()
                        .unwrap_or((1.0, 0.0, 1, TimeGrid::Uniform));
                (t_end - t_min) / steps as f64
            }
            DynamicsPlan::SdFlow { .. }
            | DynamicsPlan::MmdFlow { .. }
            | DynamicsPlan::Svgd { .. } => 1.0,
            DynamicsPlan::Interaction { dt, .. } => *dt,
        }
    }

    /// Gaussian-kernel evaluations per particle and step for dynamics built on kernel sums
    /// (`particles` is the ensemble size N), None for the others: the empirical score sums
    /// over the data (twice for Heun); SD flow over the targets and the particles (the peer's
    /// N (M + N) count); MMD flow likewise; SVGD twice over the particles, plus the targets
    /// for a smoothed score; interaction over the particles (a Gaussian W; a quadratic W
    /// needs only the mean).
    pub fn interactions_per_particle_step(&self, particles: u64) -> Option<f64> {
        let n = particles as f64;
        let m = match self.kernel_target() {
            Some(Target::Samples { rows, .. }) => *rows as f64,
            Some(Target::Mixture { count, .. } | Target::Image { count, .. }) => *count as f64,
            None => 0.0,
        };
        match self {
            DynamicsPlan::ReverseSde {
                score: Score::Samples { rows, .. },
                ..
            } => Some(*rows as f64),
            DynamicsPlan::ProbabilityFlow {
                score: Score::Samples { rows, .. },
                integrator,
                ..
            } => Some(
                *rows as f64
                    * match integrator {
                        FlowIntegrator::Heun => 2.0,
                        FlowIntegrator::Euler => 1.0,
                    },
            ),
            DynamicsPlan::SdFlow {
                approximate,
                exact_score,
                ..
            } => Some(if *exact_score { 0.0 } else { m } + if *approximate { 0.0 } else { n }),
            DynamicsPlan::MmdFlow { .. } => Some(m + n),
            DynamicsPlan::Svgd {
                target,
                score_bandwidth,
                ..
            } => {
                let smoothed =
                    !matches!(target, Target::Mixture { .. }) || score_bandwidth.is_some();
                Some(2.0 * n + if smoothed { m } else { 0.0 })
            }
            // Quadratic W needs only the ensemble mean: one sum of N per step, O(1) each.
            DynamicsPlan::Interaction {
                interaction: Interaction::Quadratic { .. },
                ..
            } => None,
            DynamicsPlan::Interaction { .. } => Some(n),
            _ => None,
        }
    }

    /// The `kind` as written in a scenario.
    pub fn kind_name(&self) -> &'static str {
        match self {
            DynamicsPlan::Langevin { .. } => "langevin",
            DynamicsPlan::GradientFlow { .. } => "gradient_flow",
            DynamicsPlan::Forward { .. } => "forward",
            DynamicsPlan::ReverseSde { .. } => "reverse_sde",
            DynamicsPlan::ProbabilityFlow { .. } => "probability_flow",
            DynamicsPlan::SdFlow { .. } => "sd_flow",
            DynamicsPlan::MmdFlow { .. } => "mmd_flow",
            DynamicsPlan::Svgd { .. } => "svgd",
            DynamicsPlan::Interaction { .. } => "interaction",
        }
    }

    /// Whether a step needs the whole ensemble (kernel sums over the particles themselves):
    /// such dynamics cannot be sharded.
    pub fn couples_particles(&self) -> bool {
        matches!(
            self,
            DynamicsPlan::SdFlow { .. }
                | DynamicsPlan::MmdFlow { .. }
                | DynamicsPlan::Svgd { .. }
                | DynamicsPlan::Interaction { .. }
        )
    }

    /// The target of a kernel flow (whose MMD^2 each snapshot reports).
    pub fn kernel_target(&self) -> Option<&Target> {
        match self {
            DynamicsPlan::SdFlow { target, .. }
            | DynamicsPlan::MmdFlow { target, .. }
            | DynamicsPlan::Svgd { target, .. } => Some(target),
            _ => None,
        }
    }

    /// The target image a kernel flow samples, if any: (path, sha256). Not a table: it is
    /// read (and its hash checked) by the stepper when the run starts or resumes.
    pub fn image_file(&self) -> Option<(&std::path::Path, &str)> {
        match self.kernel_target() {
            Some(Target::Image { path, sha256, .. }) => Some((path, sha256)),
            _ => None,
        }
    }

    /// The data set file the dynamics read, if any: (path, sha256).
    pub fn input_file(&self) -> Option<(&std::path::Path, &str)> {
        match self {
            DynamicsPlan::ReverseSde { score, .. }
            | DynamicsPlan::ProbabilityFlow { score, .. } => match score {
                Score::Samples { path, sha256, .. } => Some((path, sha256)),
                Score::Mixture(_) => None,
            },
            DynamicsPlan::SdFlow { .. }
            | DynamicsPlan::MmdFlow { .. }
            | DynamicsPlan::Svgd { .. } => match self.kernel_target() {
                Some(Target::Samples { path, sha256, .. }) => Some((path, sha256)),
                _ => None,
            },
            _ => None,
        }
    }
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
