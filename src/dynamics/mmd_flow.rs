//! `kind = "mmd_flow"`: MMD gradient flow (Arbel et al. 2019) with a Gaussian kernel of
//! bandwidth h: x_i -= eta grad_x [(1/N) sum_j k(x, x_j) - (1/M) sum_m k(x, y_m)] at
//! x = x_i + beta eps (noise injection, `noise` = beta; 0 for none), on the kernel-flow
//! pipeline (src/dynamics/kernel_flows.rs). Step-based.

use super::kernel_flows::mmd_flow_cpu;
use super::kernel_flows::{
    KernelFlowGpu, TargetRows, Update, target_flow_dynamics, target_rows, target_samples,
};
use super::{Dynamics, ParseContext, ParseKind, Stepper, StepperContext, TwinContext, TwinState};
use crate::error::Result;
use crate::observe::median_bandwidth;
use crate::scenario::Target;
use crate::scenario::data::SampleTable;
use crate::scenario::keys;
use crate::scenario::resolve::optional;
use crate::scenario::walk::number;
use crate::scenario::walk::{Issues, Section};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MmdFlowPlan {
    pub target: Target,
    pub eta: f64,
    pub steps: u64,
    /// h; None: the median pairwise distance of the target samples.
    pub bandwidth: Option<f64>,
    pub noise: f64,
}

const KEYS: &[&str] = &["kind", "target", "eta", "steps", "bandwidth", "noise"];

impl ParseKind for MmdFlowPlan {
    fn parse(
        issues: &mut Issues,
        sec: Section<'_>,
        cx: &ParseContext<'_>,
    ) -> Option<(Self, Option<SampleTable>)> {
        sec.check_keys(KEYS, issues);
        let target = keys::target(issues, sec, cx.dim, cx.base_dir);
        let eta = keys::step_size(issues, sec, 1.0);
        let bandwidth = keys::optional_positive(
            issues,
            sec,
            "bandwidth",
            "a finite number > 0 (Gaussian kernel width; default: median target distance)",
        );
        let noise = optional(
            issues,
            sec,
            "noise",
            || Some(0.0),
            |i, k, v| {
                number(
                    i,
                    k,
                    v,
                    "a finite number >= 0 (noise injection level beta)",
                    |x| x >= 0.0,
                )
            },
        );
        let steps = keys::step_count(issues, sec);
        let (target, data) = target?;
        Some((
            MmdFlowPlan {
                target,
                eta: eta?,
                steps: steps?,
                bandwidth: bandwidth?,
                noise: noise?,
            },
            data,
        ))
    }
}

impl MmdFlowPlan {
    fn bandwidth(&self, targets: &SampleTable) -> f64 {
        self.bandwidth.unwrap_or_else(|| median_bandwidth(targets))
    }
}

impl Dynamics for MmdFlowPlan {
    target_flow_dynamics!();

    /// The targets and the particles.
    fn interactions_per_particle_step(&self, particles: u64) -> Option<f64> {
        Some(target_rows(&self.target) as f64 + particles as f64)
    }

    fn stepper(&self, cx: &StepperContext<'_>) -> Result<Box<dyn Stepper>> {
        let table = target_samples(&self.target, cx.data, cx.seed)?;
        let update = Update::MmdFlow {
            eta: self.eta,
            bandwidth: self.bandwidth(&table),
            noise: self.noise,
            targets: TargetRows::upload(cx.gpu, &table),
        };
        Ok(Box::new(KernelFlowGpu::new(
            cx, "mmd_flow", update, self.steps,
        )?))
    }

    fn twin(&self, state: &mut TwinState, cx: &TwinContext<'_>) -> Result<()> {
        let table = target_samples(&self.target, cx.data, cx.seed)?;
        let targets = table.values_f64();
        let h = self.bandwidth(&table);
        for step in cx.step0..cx.step0 + cx.steps {
            mmd_flow_cpu(
                &mut state.positions,
                cx.dim,
                &targets,
                self.eta,
                h,
                self.noise,
                cx.seed,
                step,
            );
        }
        Ok(())
    }
}
