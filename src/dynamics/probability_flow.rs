//! `kind = "probability_flow"`: the probability-flow ODE dx = [f(x, t) - (1/2) g(t)^2 s(x, t)]
//! dt from t_end down to t_min, Euler or Heun, on the diffusion pipeline
//! (src/dynamics/diffusion.rs): A = 1 + f h, C = g^2 h / 2; Heun averages this increment at
//! (x, t) and at the predictor (p, t - h).

use super::diffusion::{
    Diffusion, Parts, StepCoefficients, identity_coefficients, reverse_dynamics, reverse_keys,
};
use super::{Dynamics, ParseContext, ParseKind};
use crate::model::Process;
use crate::scenario::data::SampleTable;
use crate::scenario::resolve::optional;
use crate::scenario::walk::{Issues, Section, choice};
use crate::scenario::{FlowIntegrator, Score, TimeGrid};
use serde::{Deserialize, Serialize};

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
        let integrator = |issues: &mut Issues| {
            optional(
                issues,
                sec,
                "integrator",
                || Some(FlowIntegrator::Heun),
                |i, k, v| {
                    choice(i, k, v, &["euler", "heun"]).map(|s| match s {
                        "euler" => FlowIntegrator::Euler,
                        _ => FlowIntegrator::Heun,
                    })
                },
            )
        };
        let k = reverse_keys(issues, sec, cx, KEYS, integrator)?;
        let plan = ProbabilityFlowPlan {
            process: k.process,
            score: k.score,
            integrator: k.extra,
            t_end: k.t_end,
            t_min: k.t_min,
            steps: k.steps,
            grid: k.grid,
        };
        Some((plan, k.data))
    }
}

impl Dynamics for ProbabilityFlowPlan {
    reverse_dynamics!();

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
