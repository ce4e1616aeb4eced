//! `kind = "interaction"`: mean-field interacting particles (McKean–Vlasov),
//! Euler–Maruyama: x_i += [-grad V(x_i) - (1/N) sum_j grad W(x_i - x_j)] dt + sqrt(2 T dt)
//! xi, on the kernel-flow pipeline (src/dynamics/kernel_flows.rs).

use super::kernel_flows::{KernelFlowGpu, Update, interaction_cpu, kernel_flow_memory};
use super::potential_params::check_potential_shader;
use super::{
    Dynamics, ParseContext, ParseKind, StateMemory, Stepper, StepperContext, TwinContext, TwinState,
};
use crate::error::Result;
use crate::model::Potential;
use crate::scenario::Interaction;
use crate::scenario::data::SampleTable;
use crate::scenario::keys;
use crate::scenario::resolve::{kind, optional, required};
use crate::scenario::walk::{Issues, Section, number, table};
use crate::shaders;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InteractionPlan {
    pub potential: Potential,
    pub interaction: Interaction,
    pub temperature: f64,
    pub dt: f64,
    pub steps: u64,
    pub t_end: f64,
}

const KEYS: &[&str] = &[
    "kind",
    "potential",
    "interaction",
    "temperature",
    "dt",
    "t_end",
    "steps",
];

impl ParseKind for InteractionPlan {
    fn parse(
        issues: &mut Issues,
        sec: Section<'_>,
        cx: &ParseContext<'_>,
    ) -> Option<(Self, Option<SampleTable>)> {
        sec.check_keys(KEYS, issues);
        let potential = keys::potential(issues, sec, cx.dim, cx.base_dir);
        let pair = required(
            issues,
            sec,
            "interaction",
            "a table { kind = \"gaussian\", strength, width } or { kind = \"quadratic\", strength }",
            |i, k, v| {
                let t = table(i, k, v)?;
                let sec = Section::new(k, t);
                let strength = |i: &mut Issues| {
                    required(i, sec, "strength", "a finite number", |i, k, v| {
                        number(
                            i,
                            k,
                            v,
                            "a finite number (W's strength; > 0 repels for gaussian, attracts for quadratic)",
                            |_| true,
                        )
                    })
                };
                match kind(i, sec, &["gaussian", "quadratic"])? {
                    "gaussian" => {
                        sec.check_keys(&["kind", "strength", "width"], i);
                        let s = strength(i);
                        let width = required(i, sec, "width", "a finite number > 0", |i, k, v| {
                            number(i, k, v, "a finite number > 0", |x| x > 0.0)
                        });
                        Some(Interaction::Gaussian {
                            strength: s?,
                            width: width?,
                        })
                    }
                    _ => {
                        sec.check_keys(&["kind", "strength"], i);
                        Some(Interaction::Quadratic {
                            strength: strength(i)?,
                        })
                    }
                }
            },
        );
        let temperature = optional(
            issues,
            sec,
            "temperature",
            || Some(1.0),
            |i, k, v| number(i, k, v, "a finite number >= 0", |x| x >= 0.0),
        );
        let dt = keys::positive_dt(issues, sec);
        let (steps, t_end) = keys::duration(issues, sec, dt)?;
        let plan = InteractionPlan {
            potential: potential?,
            interaction: pair?,
            temperature: temperature?,
            dt: dt?,
            steps,
            t_end,
        };
        if !check_potential_shader(issues, sec, shaders::KERNEL_FLOWS, &plan.potential, None) {
            return None;
        }
        Some((plan, None))
    }
}

impl Dynamics for InteractionPlan {
    fn steps(&self) -> u64 {
        self.steps
    }

    fn time_per_step(&self) -> f64 {
        self.dt
    }

    /// The confinement's equilibrium: W only narrows it for attraction and widens it
    /// modestly for repulsion; the initial box adds the rest.
    fn potential(&self) -> Option<(&Potential, f64)> {
        Some((&self.potential, self.temperature))
    }

    fn couples_particles(&self) -> bool {
        true
    }

    fn state_memory(&self, dim: u64) -> StateMemory {
        kernel_flow_memory(0, dim)
    }

    /// Over the particles for a Gaussian W; a quadratic W needs only the ensemble mean, one
    /// sum of N per step, O(1) each.
    fn interactions_per_particle_step(&self, particles: u64) -> Option<f64> {
        match self.interaction {
            Interaction::Gaussian { .. } => Some(particles as f64),
            Interaction::Quadratic { .. } => None,
        }
    }

    fn stepper(&self, cx: &StepperContext<'_>) -> Result<Box<dyn Stepper>> {
        let update = Update::Interaction {
            potential: self.potential.clone(),
            interaction: self.interaction,
            temperature: self.temperature,
            dt: self.dt,
        };
        Ok(Box::new(KernelFlowGpu::new(
            cx,
            "interaction",
            update,
            self.steps,
        )?))
    }

    fn twin(&self, state: &mut TwinState, cx: &TwinContext<'_>) -> Result<()> {
        for step in cx.step0..cx.step0 + cx.steps {
            interaction_cpu(
                &mut state.positions,
                cx.dim,
                &self.potential,
                self.interaction,
                self.temperature,
                self.dt,
                cx.seed,
                step,
            );
        }
        Ok(())
    }
}
