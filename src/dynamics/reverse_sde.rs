//! `kind = "reverse_sde"`: the reverse-time SDE x <- x - [f(x, t) - g(t)^2 s(x, t)] h +
//! g(t) sqrt(h) xi from t_end down to t_min, Euler–Maruyama, on the diffusion pipeline
//! (src/dynamics/diffusion.rs): A = 1 + f h, C = g^2 h, B = g sqrt(h).

use super::diffusion::{
    Diffusion, Parts, StepCoefficients, identity_coefficients, reverse_dynamics, reverse_keys,
};
use super::{Dynamics, ParseContext, ParseKind};
use crate::model::Process;
use crate::scenario::data::SampleTable;
use crate::scenario::walk::{Issues, Section};
use crate::scenario::{Score, TimeGrid};
use serde::{Deserialize, Serialize};

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
        let k = reverse_keys(issues, sec, cx, KEYS, |_| Some(()))?;
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
    reverse_dynamics!();

    /// The empirical score sums over the data once per step.
    fn interactions_per_particle_step(&self, _particles: u64) -> Option<f64> {
        match &self.score {
            Score::Samples { rows, .. } => Some(*rows as f64),
            Score::Mixture(_) => None,
        }
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
