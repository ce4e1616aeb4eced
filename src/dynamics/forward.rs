//! `kind = "forward"`: the forward noising SDE dx = -f(t) x dt + g(t) dW of a process (VP,
//! VE, OU) from t = 0 to t_end, Euler–Maruyama or the exact Gaussian transition, on the
//! diffusion pipeline (src/dynamics/diffusion.rs).

use super::diffusion::{
    Diffusion, Parts, StepCoefficients, diffusion_stepper, diffusion_twin, identity_coefficients,
};
use super::{
    Dynamics, ParseContext, ParseKind, References, Stepper, StepperContext, TwinContext, TwinState,
};
use crate::error::Result;
use crate::model::{Mixture, Process};
use crate::scenario::data::SampleTable;
use crate::scenario::keys;
use crate::scenario::range::SIGMAS;
use crate::scenario::resolve::optional;
use crate::scenario::walk::{Issues, Section, choice};
use crate::scenario::{ForwardIntegrator, Init};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForwardPlan {
    pub process: Process,
    pub integrator: ForwardIntegrator,
    pub dt: f64,
    pub steps: u64,
    pub t_end: f64,
}

const KEYS: &[&str] = &["kind", "process", "integrator", "dt", "t_end", "steps"];

impl ParseKind for ForwardPlan {
    fn parse(
        issues: &mut Issues,
        sec: Section<'_>,
        _cx: &ParseContext<'_>,
    ) -> Option<(Self, Option<SampleTable>)> {
        sec.check_keys(KEYS, issues);
        let process = keys::process(issues, sec);
        let integrator = optional(
            issues,
            sec,
            "integrator",
            || Some(ForwardIntegrator::EulerMaruyama),
            |i, k, v| {
                choice(i, k, v, &["euler_maruyama", "exact"]).map(|s| match s {
                    "exact" => ForwardIntegrator::Exact,
                    _ => ForwardIntegrator::EulerMaruyama,
                })
            },
        );
        let dt = keys::positive_dt(issues, sec);
        let (steps, t_end) = keys::duration(issues, sec, dt)?;
        let process = process?;
        keys::check_process_horizon(issues, sec, &process, t_end)?;
        let plan = ForwardPlan {
            process,
            integrator: integrator?,
            dt: dt?,
            steps,
            t_end,
        };
        Some((plan, None))
    }
}

impl Dynamics for ForwardPlan {
    fn steps(&self) -> u64 {
        self.steps
    }

    fn boundary_refusal(&self, _: &crate::scenario::Boundary) -> Option<String> {
        Some(super::diffusion::DIFFUSION_BOUNDARY_REFUSAL.to_string())
    }

    fn time_per_step(&self) -> f64 {
        self.dt
    }

    /// The process's prior, where the forward process ends.
    fn final_box(&self, _data: Option<&SampleTable>, _axis: usize) -> Option<[f64; 2]> {
        let s = SIGMAS * self.process.prior_variance().sqrt();
        Some([-s, s])
    }

    fn references(&self) -> References<'_> {
        References::ExactLaw {
            needs_mixture_init: true,
        }
    }

    /// The process applied to a Gaussian or mixture initial law.
    fn exact_law(&self, init: &Init, _data: Option<&SampleTable>, t: f64) -> Option<Mixture> {
        let start = match init {
            Init::Mixture(m) => m.clone(),
            Init::Gaussian { mean, std } => Mixture {
                weights: vec![1.0],
                means: vec![mean.clone()],
                stds: vec![std.clone()],
            },
            _ => return None,
        };
        Some(self.process.marginal(&start, t))
    }

    fn stepper(&self, cx: &StepperContext<'_>) -> Result<Box<dyn Stepper>> {
        diffusion_stepper(self, cx)
    }

    fn twin(&self, state: &mut TwinState, cx: &TwinContext<'_>) -> Result<()> {
        diffusion_twin(self, state, cx);
        Ok(())
    }
}

impl Diffusion for ForwardPlan {
    fn parts(&self) -> Parts<'_> {
        Parts {
            process: &self.process,
            score: None,
            noise: true,
            heun: false,
        }
    }

    /// Euler–Maruyama: A = 1 - f(t) dt, B = g(t) sqrt(dt); exact: (A, B^2) the transition of
    /// the linear SDE from t to t + dt.
    fn coefficients(&self, n: u64) -> StepCoefficients {
        let (t, t2) = (self.time_at(n), self.time_at(n + 1));
        let process = &self.process;
        let mut c = identity_coefficients();
        match self.integrator {
            ForwardIntegrator::EulerMaruyama => {
                c.a = 1.0 - process.drift(t) * self.dt;
                c.b = (process.g2(t) * self.dt).sqrt();
            }
            ForwardIntegrator::Exact => {
                let (a, v) = process.transition(t, t2);
                c.a = a;
                c.b = v.sqrt();
            }
        }
        c
    }

    fn boxed(&self) -> Box<dyn Diffusion> {
        Box::new(self.clone())
    }
}
