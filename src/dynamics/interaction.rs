//! `kind = "interaction"`: mean-field interacting particles (McKean–Vlasov),
//! Euler–Maruyama: x_i += [-grad V(x_i) - (1/N) sum_j grad W(x_i - x_j)] dt + sqrt(2 T dt)
//! xi, the sum over all N particles (the particle itself adds nothing), on the kernel-flow
//! pipeline (src/dynamics/kernel_flows.rs). W is built in (Gaussian: a Gaussian-kernel sum;
//! quadratic: the ensemble mean) or written as an expression W(r) (`{ expr, params }`: a
//! pair sum with generated code, src/dynamics/kernel_sum.rs).

use super::kernel_flows::{KernelFlowGpu, Update, interaction_cpu, kernel_flow_memory};
use super::kernel_sum::pair_shader;
use super::potential_params::check_potential_shader;
use super::{
    Dynamics, ParseContext, ParseKind, StateMemory, Stepper, StepperContext, TwinContext, TwinState,
};
use crate::error::Result;
use crate::model::Potential;
use crate::scenario::Interaction;
use crate::scenario::data::SampleTable;
use crate::scenario::resolve::{kind, required};
use crate::scenario::walk::{Issues, Section, number, table};
use crate::scenario::{expr_keys, keys};
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
            "a table { kind = \"gaussian\", strength, width }, { kind = \"quadratic\", strength } \
             or { expr = \"W(r)\", params = {...} }",
            |i, k, v| {
                let t = table(i, k, v)?;
                let sec = Section::new(k, t);
                // `{ expr = "W(r)", params }` needs no kind.
                if sec.get("expr").is_some()
                    || sec.get("kind").and_then(toml::Value::as_str) == Some("expr")
                {
                    return expr_keys::pair_expr(i, k, v).map(Interaction::Expr);
                }
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
                match kind(i, sec, &["gaussian", "quadratic", "expr"])? {
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
        let temperature = keys::constant_temperature(issues, sec, "a finite number >= 0");
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
        // Generated shaders must compile before anything is written.
        if !check_potential_shader(issues, sec, shaders::KERNEL_FLOWS, &plan.potential, None) {
            return None;
        }
        if let Interaction::Expr(w) = &plan.interaction
            && let Err(why) = pair_shader(w)
        {
            issues.add(
                &sec.key("interaction"),
                None,
                format!("an expression whose generated WGSL compiles; naga says: {why}"),
            );
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

    /// None: the stationary law has the pair energy beside the confinement, so the
    /// confinement's configurational temperature alone would not estimate T.
    fn energy_potential(&self) -> Option<&Potential> {
        None
    }

    fn couples_particles(&self) -> bool {
        true
    }

    fn state_memory(&self, dim: u64) -> StateMemory {
        kernel_flow_memory(0, dim)
    }

    /// Over the particles for a Gaussian or expression W; a quadratic W needs only the
    /// ensemble mean, one sum of N per step, O(1) each.
    fn interactions_per_particle_step(&self, particles: u64) -> Option<f64> {
        match self.interaction {
            Interaction::Gaussian { .. } | Interaction::Expr(_) => Some(particles as f64),
            Interaction::Quadratic { .. } => None,
        }
    }

    /// Walls, periodic axes (the pair sums take the minimum image), recording targets and
    /// basins are applied after every step (shaders/kernel_flows.wgsl). Absorbing targets
    /// are refused: an absorbed particle would still act on the others through W, and the
    /// mean field of the survivors alone is not built.
    fn boundary_refusal(&self, boundary: &crate::scenario::Boundary) -> Option<String> {
        boundary.absorbs().then(|| {
            "absorb = true is not supported with interacting particles (a frozen particle \
             would still act on the others through W; the mean field of the survivors alone \
             is not built): use absorb = false to record first passages"
                .to_string()
        })
    }

    fn stepper(&self, cx: &StepperContext<'_>) -> Result<Box<dyn Stepper>> {
        let update = Update::Interaction {
            potential: self.potential.clone(),
            interaction: self.interaction.clone(),
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
                &self.interaction,
                self.temperature,
                self.dt,
                cx.seed,
                step,
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::model::expr::{PairPotential, TimeSource};
    use crate::scenario::{DynamicsPlan, resolve_str};
    use std::path::Path;

    fn scenario(interaction: &str) -> String {
        format!(
            "[particles]\ncount = 16\ndim = 2\ninit = {{ kind = \"point\", at = [0.0, 0.0] }}\n\
             [dynamics]\nkind = \"interaction\"\npotential = {{ kind = \"double_well\" }}\n\
             interaction = {interaction}\ndt = 0.01\nsteps = 3\n"
        )
    }

    fn plan(text: &str, overrides: &[&str]) -> Result<InteractionPlan> {
        let o: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
        let r = resolve_str(text, "t.toml", Path::new(""), &o, None)?;
        match r.plan.dynamics {
            DynamicsPlan::Interaction(p) => Ok(p),
            other => panic!("not interaction: {other:?}"),
        }
    }

    fn issue_text(text: &str) -> String {
        match plan(text, &[]) {
            Err(e @ Error::Scenario { .. }) => e.to_string(),
            other => panic!("expected scenario issues, got {other:?}"),
        }
    }

    fn pair(expr: &str, params: &[(&str, f64)]) -> Interaction {
        Interaction::Expr(
            PairPotential::new(TimeSource {
                expr: expr.into(),
                params: params.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            })
            .unwrap(),
        )
    }

    #[test]
    fn an_expression_pair_potential_is_read_recorded_and_overridden() {
        let text =
            scenario(r#"{ expr = "eps*exp(-r^2/(2*w^2))", params = { eps = 0.5, w = 0.7 } }"#);
        let p = plan(&text, &[]).unwrap();
        assert_eq!(
            p.interaction,
            pair("eps*exp(-r^2/(2*w^2))", &[("eps", 0.5), ("w", 0.7)])
        );
        let json = serde_json::to_value(DynamicsPlan::Interaction(p.clone())).unwrap();
        assert_eq!(json["interaction"]["kind"], "expr");
        assert_eq!(json["interaction"]["expr"], "eps*exp(-r^2/(2*w^2))");
        let back: DynamicsPlan = serde_json::from_value(json).unwrap();
        assert_eq!(back, DynamicsPlan::Interaction(p));
        // `kind = "expr"` may be written; params change with --set.
        let text = scenario(r#"{ kind = "expr", expr = "0.5*k*r^2", params = { k = 1.0 } }"#);
        let p = plan(&text, &["dynamics.interaction.params.k=2.5"]).unwrap();
        assert_eq!(p.interaction, pair("0.5*k*r^2", &[("k", 2.5)]));
    }

    #[test]
    fn bad_pair_expressions_name_their_key() {
        let e = issue_text(&scenario(r#"{ expr = "exp(-r^2" }"#));
        assert!(e.contains("dynamics.interaction.expr"), "{e}");
        let e = issue_text(&scenario(r#"{ expr = "r^2", params = { k = 1.0 } }"#));
        assert!(e.contains("dynamics.interaction.params.k"), "{e}");
        let e = issue_text(&scenario(r#"{ expr = "x^2" }"#));
        assert!(e.contains("dynamics.interaction.expr"), "{e}");
        let e = issue_text(&scenario(r#"{ kind = "gausian", strength = 1.0 }"#));
        assert!(e.contains("did you mean \"gaussian\""), "{e}");
    }

    /// The twin's step with W written as an expression equals the built-in one's (same
    /// noise) to f64 round-off: Gaussian and quadratic W.
    #[test]
    fn expression_twins_match_the_built_in_interactions() {
        let x0: Vec<f64> = (0..64)
            .map(|k| ((k * 37 % 19) as f64 - 9.0) * 0.21 + (k % 2) as f64 * 0.05)
            .collect();
        let cases = [
            (
                Interaction::Gaussian {
                    strength: 0.5,
                    width: 0.7,
                },
                pair("eps*exp(-r^2/(2*s^2))", &[("eps", 0.5), ("s", 0.7)]),
            ),
            (
                Interaction::Quadratic { strength: 1.3 },
                pair("0.5*k*r^2", &[("k", 1.3)]),
            ),
        ];
        for (built_in, expr) in cases {
            let (mut a, mut b) = (x0.clone(), x0.clone());
            for step in 0..3 {
                let v = &Potential::DoubleWell;
                interaction_cpu(&mut a, 2, v, &built_in, 0.3, 0.01, 5, step);
                interaction_cpu(&mut b, 2, v, &expr, 0.3, 0.01, 5, step);
            }
            for (u, w) in a.iter().zip(&b) {
                assert!(
                    (u - w).abs() < 1e-13 * (1.0 + u.abs()),
                    "{built_in:?}: {u} {w}"
                );
            }
        }
    }

    /// W = r: 2 W'(s) = 1/r is infinite at r = 0; pairs at distance 0 (the particle itself,
    /// coincident particles) add nothing, so the forces stay finite.
    #[test]
    fn pairs_at_distance_zero_add_nothing() {
        let x = [0.0, 0.0, 0.0, 0.0, 3.0, 4.0];
        let f = super::super::kernel_flows::interaction_forces(&x, 2, &pair("r", &[]));
        // Particles 0 and 1 coincide; each feels only particle 2 at distance 5, and particle
        // 2 feels both: grad W(x_i - x_j) = (x_i - x_j) / r, summed and divided by N = 3.
        let third = 1.0 / 3.0;
        let want = [
            -0.6 * third,
            -0.8 * third,
            -0.6 * third,
            -0.8 * third,
            1.2 * third,
            1.6 * third,
        ];
        for (a, b) in f.iter().zip(&want) {
            assert!((a - b).abs() < 1e-15, "{f:?}");
        }
    }
}
