//! `kind = "probability_flow"`: the probability-flow ODE dx = [f(x, t) - (1/2) g(t)^2 s(x, t)]
//! dt from t_end down to t_min, Euler or Heun, on the diffusion pipeline
//! (src/dynamics/diffusion.rs): A = 1 + f h, C = g^2 h / 2; Heun averages this increment at
//! (x, t) and at the predictor (p, t - h).

use super::diffusion::{
    Diffusion, DiffusionGpu, Parts, StepCoefficients, data_box, data_law, diffusion_cpu,
    identity_coefficients, reverse_keys, reverse_time_at, score_file, score_memory,
};
use super::{
    Dynamics, ParseContext, ParseKind, References, StateMemory, Stepper, StepperContext,
    TwinContext, TwinState,
};
use crate::error::Result;
use crate::model::{Mixture, Process};
use crate::scenario::data::SampleTable;
use crate::scenario::walk::{Issues, Section};
use crate::scenario::{FlowIntegrator, Init, Score, TimeGrid};
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbabilityFlowPlan {
    pub process: Process,
    pub score: Score,
    pub integrator: FlowIntegrator,
    pub t_end: f64,
    pub t_min: f64,
    pub steps: u64,
    #[serde(default, skip_serializing_if = "TimeGrid::is_uniform")]
    pub grid: TimeGrid,
}

const KEYS: &[&str] = &[
    "kind",
    "process",
    "score",
    "integrator",
    "t_end",
    "t_min",
    "steps",
    "grid",
];

impl ParseKind for ProbabilityFlowPlan {
    fn parse(
        issues: &mut Issues,
        sec: Section<'_>,
        cx: &ParseContext<'_>,
    ) -> Option<(Self, Option<SampleTable>)> {
        let k = reverse_keys(issues, sec, cx, KEYS, true)?;
        let plan = ProbabilityFlowPlan {
            process: k.process,
            score: k.score,
            integrator: k.integrator.unwrap_or(FlowIntegrator::Heun),
            t_end: k.t_end,
            t_min: k.t_min,
            steps: k.steps,
            grid: k.grid,
        };
        Some((plan, k.data))
    }
}

impl Dynamics for ProbabilityFlowPlan {
    fn steps(&self) -> u64 {
        self.steps
    }

    /// The mean step (t_end - t_min) / steps, whatever the grid.
    fn time_per_step(&self) -> f64 {
        (self.t_end - self.t_min) / self.steps as f64
    }

    fn time_at(&self, step: u64) -> f64 {
        reverse_time_at(self.t_end, self.t_min, self.steps, self.grid, step)
    }

    fn final_box(&self, data: Option<&SampleTable>, axis: usize) -> Option<[f64; 2]> {
        data_box(&self.score, data, axis)
    }

    fn prior_process(&self) -> Option<&Process> {
        Some(&self.process)
    }

    fn state_memory(&self, dim: u64) -> StateMemory {
        score_memory(&self.score, dim)
    }

    fn input_file(&self) -> Option<(&Path, &str)> {
        score_file(&self.score)
    }

    /// The empirical score sums over the data once per step, twice for Heun.
    fn interactions_per_particle_step(&self, _particles: u64) -> Option<f64> {
        match &self.score {
            Score::Samples { rows, .. } => Some(
                *rows as f64
                    * match self.integrator {
                        FlowIntegrator::Heun => 2.0,
                        FlowIntegrator::Euler => 1.0,
                    },
            ),
            Score::Mixture(_) => None,
        }
    }

    fn references(&self) -> References<'_> {
        References::ExactLaw {
            needs_mixture_init: false,
        }
    }

    fn exact_law(&self, _init: &Init, data: Option<&SampleTable>, t: f64) -> Option<Mixture> {
        data_law(&self.process, &self.score, data, t)
    }

    fn stepper(&self, cx: &StepperContext<'_>) -> Result<Box<dyn Stepper>> {
        Ok(Box::new(DiffusionGpu::new(
            cx.gpu,
            cx.ensemble,
            self,
            cx.data,
            cx.seed,
            cx.workgroup_size,
        )?))
    }

    fn twin(&self, state: &mut TwinState, cx: &TwinContext<'_>) -> Result<()> {
        diffusion_cpu(
            &mut state.positions,
            cx.dim,
            0,
            self,
            cx.data,
            cx.seed,
            cx.step0,
            cx.steps,
        );
        Ok(())
    }
}

impl Diffusion for ProbabilityFlowPlan {
    fn parts(&self) -> Parts<'_> {
        Parts {
            process: &self.process,
            score: Some(&self.score),
            noise: false,
            heun: self.integrator == FlowIntegrator::Heun,
        }
    }

    fn coefficients(&self, n: u64) -> StepCoefficients {
        let (t, t2) = (self.time_at(n), self.time_at(n + 1));
        let process = &self.process;
        let h = t - t2;
        let mut c = identity_coefficients();
        c.a = 1.0 + process.drift(t) * h;
        c.c = 0.5 * process.g2(t) * h;
        c.alpha = process.alpha(t);
        c.s2 = process.s2(t);
        c.a2 = 1.0 + process.drift(t2) * h;
        c.c2 = 0.5 * process.g2(t2) * h;
        c.alpha2 = process.alpha(t2);
        c.s2_2 = process.s2(t2);
        c
    }

    fn boxed(&self) -> Box<dyn Diffusion> {
        Box::new(self.clone())
    }
}
