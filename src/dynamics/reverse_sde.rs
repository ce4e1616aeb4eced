//! `kind = "reverse_sde"`: the reverse-time SDE x <- x - [f(x, t) - g(t)^2 s(x, t)] h +
//! g(t) sqrt(h) xi from t_end down to t_min, Euler–Maruyama, on the diffusion pipeline
//! (src/dynamics/diffusion.rs): A = 1 + f h, C = g^2 h, B = g sqrt(h).

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
use crate::scenario::{Init, Score, TimeGrid};
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReverseSdePlan {
    pub process: Process,
    pub score: Score,
    pub t_end: f64,
    pub t_min: f64,
    pub steps: u64,
    #[serde(default, skip_serializing_if = "TimeGrid::is_uniform")]
    pub grid: TimeGrid,
}

const KEYS: &[&str] = &[
    "kind", "process", "score", "t_end", "t_min", "steps", "grid",
];

impl ParseKind for ReverseSdePlan {
    fn parse(
        issues: &mut Issues,
        sec: Section<'_>,
        cx: &ParseContext<'_>,
    ) -> Option<(Self, Option<SampleTable>)> {
        let k = reverse_keys(issues, sec, cx, KEYS, false)?;
        let plan = ReverseSdePlan {
            process: k.process,
            score: k.score,
            t_end: k.t_end,
            t_min: k.t_min,
            steps: k.steps,
            grid: k.grid,
        };
        Some((plan, k.data))
    }
}

impl Dynamics for ReverseSdePlan {
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

    /// The empirical score sums over the data once per step.
    fn interactions_per_particle_step(&self, _particles: u64) -> Option<f64> {
        match &self.score {
            Score::Samples { rows, .. } => Some(*rows as f64),
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

impl Diffusion for ReverseSdePlan {
    fn parts(&self) -> Parts<'_> {
        Parts {
            process: &self.process,
            score: Some(&self.score),
            noise: true,
            heun: false,
        }
    }

    fn coefficients(&self, n: u64) -> StepCoefficients {
        let (t, t2) = (self.time_at(n), self.time_at(n + 1));
        let process = &self.process;
        let h = t - t2;
        let mut c = identity_coefficients();
        c.a = 1.0 + process.drift(t) * h;
        c.c = process.g2(t) * h;
        c.b = c.c.sqrt();
        c.alpha = process.alpha(t);
        c.s2 = process.s2(t);
        c
    }

    fn boxed(&self) -> Box<dyn Diffusion> {
        Box::new(self.clone())
    }
}
