//! `kind = "svgd"`: Stein variational gradient descent (Liu & Wang 2016), k = exp(-r^2 /
//! h), h = med^2 / log N of the current particles unless given; the target score is a
//! mixture's exact score or the Gaussian-kernel-smoothed score of the target samples
//! (bandwidth `score_bandwidth`, default Silverman's rule). On the kernel-flow pipeline
//! (src/dynamics/kernel_flows.rs). Step-based.

use super::kernel_flows::{
    KernelFlowGpu, TargetRows, Update, target_flow_dynamics, target_rows, target_samples,
};
use super::kernel_flows::{
    SVGD_MEDIAN_ROWS, SvgdScore, kernel_mean_cpu, silverman_bandwidth, svgd_bandwidth, svgd_cpu,
};
use super::{Dynamics, ParseContext, ParseKind, Stepper, StepperContext, TwinContext, TwinState};
use crate::error::Result;
use crate::scenario::Target;
use crate::scenario::data::SampleTable;
use crate::scenario::keys;
use crate::scenario::walk::{Issues, Section};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SvgdPlan {
    pub target: Target,
    pub eta: f64,
    pub steps: u64,
    pub bandwidth: Option<f64>,
    pub score_bandwidth: Option<f64>,
}

const KEYS: &[&str] = &[
    "kind",
    "target",
    "eta",
    "steps",
    "bandwidth",
    "score_bandwidth",
];

impl ParseKind for SvgdPlan {
    fn parse(
        issues: &mut Issues,
        sec: Section<'_>,
        cx: &ParseContext<'_>,
    ) -> Option<(Self, Option<SampleTable>)> {
        sec.check_keys(KEYS, issues);
        let target = keys::target(issues, sec, cx.dim, cx.base_dir);
        let eta = keys::step_size(issues, sec, 0.1);
        let bandwidth = keys::optional_positive(
            issues,
            sec,
            "bandwidth",
            "a finite number > 0 (h in exp(-r^2 / h); default: median^2 / log N each step)",
        );
        let score_bandwidth = keys::optional_positive(
            issues,
            sec,
            "score_bandwidth",
            "a finite number > 0 (smoothing of the target samples' score; default: Silverman's rule)",
        );
        let steps = keys::step_count(issues, sec);
        let (target, data) = target?;
        Some((
            SvgdPlan {
                target,
                eta: eta?,
                steps: steps?,
                bandwidth: bandwidth?,
                score_bandwidth: score_bandwidth?,
            },
            data,
        ))
    }
}

impl SvgdPlan {
    /// Whether the target score is smoothed from samples (not a mixture's exact score).
    fn smoothed(&self) -> bool {
        !matches!(self.target, Target::Mixture { .. }) || self.score_bandwidth.is_some()
    }
}

impl Dynamics for SvgdPlan {
    target_flow_dynamics!();

    /// Twice over the particles, plus the targets for a smoothed score.
    fn interactions_per_particle_step(&self, particles: u64) -> Option<f64> {
        let m = if self.smoothed() {
            target_rows(&self.target) as f64
        } else {
            0.0
        };
        Some(2.0 * particles as f64 + m)
    }

    fn stepper(&self, cx: &StepperContext<'_>) -> Result<Box<dyn Stepper>> {
        let score = match &self.target {
            Target::Mixture { mixture, .. } => SvgdScore::Mixture(mixture.clone()),
            Target::Samples { .. } | Target::Image { .. } => {
                let table = target_samples(&self.target, cx.data, cx.seed)?;
                SvgdScore::Smoothed {
                    bandwidth: self
                        .score_bandwidth
                        .unwrap_or_else(|| silverman_bandwidth(&table)),
                    targets: TargetRows::upload(cx.gpu, &table),
                }
            }
        };
        let update = Update::Svgd {
            eta: self.eta,
            bandwidth: self.bandwidth,
            score,
        };
        Ok(Box::new(KernelFlowGpu::new(
            cx, "svgd", update, self.steps,
        )?))
    }

    fn twin(&self, state: &mut TwinState, cx: &TwinContext<'_>) -> Result<()> {
        let d = cx.dim as usize;
        // The same target score as the stepper: a mixture's exact score, or the samples'
        // Gaussian kernel density score at bandwidth eps (the table converted once).
        let score: Box<ScoreFn<'_>> = match &self.target {
            Target::Mixture { mixture, .. } => Box::new(|x: &[f64]| mixture.score(x)),
            Target::Samples { .. } | Target::Image { .. } => {
                let table = target_samples(&self.target, cx.data, cx.seed)?;
                let eps = self
                    .score_bandwidth
                    .unwrap_or_else(|| silverman_bandwidth(&table));
                let (sources, dim) = (table.values_f64(), table.dim);
                Box::new(move |x: &[f64]| smoothed_score_cpu(&sources, dim, x, eps))
            }
        };
        for _ in 0..cx.steps {
            let n = state.positions.len() / d.max(1);
            let h = match self.bandwidth {
                Some(h) => h,
                None => {
                    let rows: Vec<f32> = state.positions[..n.min(SVGD_MEDIAN_ROWS) * d]
                        .iter()
                        .map(|&v| v as f32)
                        .collect();
                    svgd_bandwidth(&rows, d, n as u64)
                }
            };
            svgd_cpu(&mut state.positions, cx.dim, &*score, self.eta, h);
        }
        Ok(())
    }
}

/// A target score x -> grad log p(x).
type ScoreFn<'a> = dyn Fn(&[f64]) -> Vec<f64> + 'a;

/// The score of the target samples' Gaussian kernel density at bandwidth `eps`:
/// (E_w[y] - x) / eps^2 with weights exp(-|x - y|^2 / (2 eps^2)).
/// `sources` are the target rows (row-major, `dim` per row).
fn smoothed_score_cpu(sources: &[f64], dim: usize, x: &[f64], eps: f64) -> Vec<f64> {
    let (mean, _) = kernel_mean_cpu(x, sources, None, dim, eps * eps);
    mean.iter()
        .zip(x)
        .map(|(m, xi)| (m - xi) / (eps * eps))
        .collect()
}
