//! `kind = "sd_flow"`: score-difference flow, kernel form (Weber, TMLR 2023): z = y +
//! sigma eps, y += eta (D_p(z) - D_q(z)) with Gaussian-kernel denoisers over the target
//! samples and the current particles (`approximate`: D_q(z) ~ y); on the kernel-flow
//! pipeline (src/dynamics/kernel_flows.rs). Step-based: time is the step index. sigma is
//! constant, geometric from start to end, or an expression sigma(t) in the run's progress
//! t = step / (steps - 1) (evaluated on the host in f64 each step).

use super::kernel_flows::{
    KernelFlowGpu, TargetRows, Update, target_flow_dynamics, target_rows, target_samples,
};
use super::kernel_flows::{TargetDenoiser, sd_flow_cpu, sd_flow_exact_cpu};
use super::{Dynamics, ParseContext, ParseKind, Stepper, StepperContext, TwinContext, TwinState};
use crate::error::Result;
use crate::model::Mixture;
use crate::scenario::SigmaSchedule;
use crate::scenario::Target;
use crate::scenario::data::SampleTable;
use crate::scenario::resolve::{optional, required};
use crate::scenario::walk::number;
use crate::scenario::walk::{Issues, Section};
use crate::scenario::{expr_keys, keys};
use serde::{Deserialize, Serialize};
use toml::Value;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SdFlowPlan {
    pub target: Target,
    pub sigma: SigmaSchedule,
    pub eta: f64,
    pub steps: u64,
    pub approximate: bool,
    /// Mixture targets: D_p from the mixture's exact noised score instead of its samples
    /// (the samples still serve the MMD diagnostic).
    #[serde(default)]
    pub exact_score: bool,
}

const KEYS: &[&str] = &[
    "kind",
    "target",
    "sigma",
    "eta",
    "steps",
    "approximate",
    "exact_score",
];

impl ParseKind for SdFlowPlan {
    fn parse(
        issues: &mut Issues,
        sec: Section<'_>,
        cx: &ParseContext<'_>,
    ) -> Option<(Self, Option<SampleTable>)> {
        sec.check_keys(KEYS, issues);
        let target = keys::target(issues, sec, cx.dim, cx.base_dir);
        let sigma_allowed = "a number > 0, a decreasing schedule { start, end } of numbers > 0, \
                             or { expr = \"sigma(t)\", params = {...} } (t = step / (steps - 1))";
        let sigma = required(issues, sec, "sigma", sigma_allowed, |i, k, v| match v {
            // `{ expr = "sigma(t)", params }`: t the run's progress from 0 to 1.
            Value::Table(t)
                if t.contains_key("expr")
                    || t.get("kind").and_then(Value::as_str) == Some("expr") =>
            {
                expr_keys::time_expr(i, k, v).map(SigmaSchedule::Expr)
            }
            Value::Table(t) => {
                let sec = Section::new(k, t);
                sec.check_keys(&["start", "end"], i);
                let positive = |i: &mut Issues, key: &str| {
                    required(i, sec, key, "a finite number > 0", |i, k, v| {
                        number(i, k, v, "a finite number > 0", |x| x > 0.0)
                    })
                };
                let (start, end) = (positive(i, "start"), positive(i, "end"));
                let (start, end) = (start?, end?);
                if end > start {
                    i.add(
                        &sec.key("end"),
                        Some(&Value::Float(end)),
                        format!(
                            "at most start = {start} (sigma decreases geometrically from start to end)"
                        ),
                    );
                    return None;
                }
                Some(SigmaSchedule::Geometric { start, end })
            }
            _ => number(i, k, v, sigma_allowed, |x| x > 0.0)
                .map(|sigma| SigmaSchedule::Constant { sigma }),
        });
        let eta = optional(
            issues,
            sec,
            "eta",
            || Some(0.5),
            |i, k, v| {
                number(
                    i,
                    k,
                    v,
                    "a finite number > 0 (step size; 0.5 to 1 is typical)",
                    |x| x > 0.0,
                )
            },
        );
        let approximate = keys::flag(
            issues,
            sec,
            "approximate",
            "true (D_q(z) ~ y, the diffusion-like variant) or false",
        );
        let exact_score = keys::flag(
            issues,
            sec,
            "exact_score",
            "true (a mixture target's exact noised score) or false",
        );
        let steps = keys::step_count(issues, sec);
        if let (Some(schedule @ SigmaSchedule::Expr(f)), Some(steps)) = (&sigma, steps)
            && let Some((step, t, value)) = schedule.first_invalid(steps)
        {
            issues.add(
                &sec.key("sigma.expr"),
                Some(&Value::String(f.source().expr.clone())),
                format!(
                    "a sigma > 0 and finite at every step; at step {step} (t = {t}) sigma = {value}"
                ),
            );
            return None;
        }
        let (target, data) = target?;
        let exact_score = exact_score?;
        if exact_score && !matches!(target, Target::Mixture { .. }) {
            issues.add(
                &sec.key("exact_score"),
                Some(&Value::Boolean(true)),
                "false for samples and image targets (an exact score exists for mixture targets only)",
            );
            return None;
        }
        Some((
            SdFlowPlan {
                target,
                sigma: sigma?,
                eta: eta?,
                steps: steps?,
                approximate: approximate?,
                exact_score,
            },
            data,
        ))
    }
}

impl SdFlowPlan {
    /// The mixture whose exact noised score gives D_p (`exact_score`, mixture targets only;
    /// the scenario refuses it for others), or None: D_p from the target samples.
    fn exact_target(&self) -> Option<&Mixture> {
        match (&self.target, self.exact_score) {
            (Target::Mixture { mixture, .. }, true) => Some(mixture),
            _ => None,
        }
    }
}

impl Dynamics for SdFlowPlan {
    target_flow_dynamics!();

    /// The peer's N (M + N) count: the targets (unless the score is exact) and the
    /// particles (unless approximate).
    fn interactions_per_particle_step(&self, particles: u64) -> Option<f64> {
        let m = if self.exact_score {
            0.0
        } else {
            target_rows(&self.target) as f64
        };
        let n = if self.approximate {
            0.0
        } else {
            particles as f64
        };
        Some(m + n)
    }

    fn stepper(&self, cx: &StepperContext<'_>) -> Result<Box<dyn Stepper>> {
        let denoiser = match self.exact_target() {
            Some(mixture) => TargetDenoiser::Exact(mixture.clone()),
            None => {
                let table = target_samples(&self.target, cx.data, cx.seed)?;
                TargetDenoiser::Samples(TargetRows::upload(cx.gpu, &table))
            }
        };
        let update = Update::SdFlow {
            sigma: self.sigma.clone(),
            eta: self.eta,
            approximate: self.approximate,
            denoiser,
        };
        Ok(Box::new(KernelFlowGpu::new(
            cx, "sd_flow", update, self.steps,
        )?))
    }

    fn twin(&self, state: &mut TwinState, cx: &TwinContext<'_>) -> Result<()> {
        let exact = self.exact_target();
        let targets = match exact {
            Some(_) => Vec::new(),
            None => target_samples(&self.target, cx.data, cx.seed)?.values_f64(),
        };
        for step in cx.step0..cx.step0 + cx.steps {
            let sigma = self.sigma.at(step, self.steps);
            let (x, dim, eta, approximate) =
                (&mut state.positions[..], cx.dim, self.eta, self.approximate);
            match exact {
                Some(m) => sd_flow_exact_cpu(x, dim, m, sigma, eta, approximate, cx.seed, step),
                None => sd_flow_cpu(x, dim, &targets, sigma, eta, approximate, cx.seed, step),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::scenario::{DynamicsPlan, resolve_str};
    use std::path::Path;

    fn scenario(sigma: &str, steps: u64) -> String {
        format!(
            "[particles]\ncount = 16\ndim = 2\ninit = {{ kind = \"point\", at = [0.0, 0.0] }}\n\
             [dynamics]\nkind = \"sd_flow\"\ntarget = {{ kind = \"mixture\", weights = [1.0], \
             means = [[0.0, 0.0]], stds = [1.0], count = 16 }}\nsigma = {sigma}\nsteps = {steps}\n"
        )
    }

    fn plan(text: &str) -> std::result::Result<SdFlowPlan, Error> {
        let r = resolve_str(text, "t.toml", Path::new(""), &[], None)?;
        match r.plan.dynamics {
            DynamicsPlan::SdFlow(p) => Ok(p),
            other => panic!("not sd_flow: {other:?}"),
        }
    }

    #[test]
    fn the_geometric_schedule_as_an_expression_gives_the_same_sigmas() {
        for steps in [1, 2, 7, 40] {
            let built_in = plan(&scenario("{ start = 0.6, end = 0.1 }", steps)).unwrap();
            let expr = plan(&scenario(
                r#"{ expr = "a*(b/a)^t", params = { a = 0.6, b = 0.1 } }"#,
                steps,
            ))
            .unwrap();
            assert!(matches!(expr.sigma, SigmaSchedule::Expr(_)));
            for step in 0..steps {
                let (u, v) = (built_in.sigma.at(step, steps), expr.sigma.at(step, steps));
                assert!(
                    (u - v).abs() <= 1e-15 * u,
                    "step {step} of {steps}: {u} {v}"
                );
            }
            assert_eq!(expr.sigma.at(0, steps), 0.6);
            let json = serde_json::to_value(DynamicsPlan::SdFlow(expr.clone())).unwrap();
            assert_eq!(json["sigma"]["kind"], "expr");
            let back: DynamicsPlan = serde_json::from_value(json).unwrap();
            assert_eq!(back, DynamicsPlan::SdFlow(expr));
        }
        // t = step / (steps - 1): 0 at the first step, 1 at the last.
        assert_eq!(SigmaSchedule::progress(0, 5), 0.0);
        assert_eq!(SigmaSchedule::progress(4, 5), 1.0);
        assert_eq!(SigmaSchedule::progress(0, 1), 0.0);
    }

    #[test]
    fn a_schedule_not_positive_at_some_step_is_refused_with_the_step() {
        // 0.5 - t reaches 0 at the last step of 11 (t = 1) and is negative after t = 0.5.
        let e = plan(&scenario(r#"{ expr = "0.5 - t" }"#, 11)).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("dynamics.sigma.expr"), "{text}");
        assert!(text.contains("at step 5 (t = 0.5) sigma = 0"), "{text}");
        // Fine over a single step (t = 0).
        assert!(plan(&scenario(r#"{ expr = "0.5 - t" }"#, 1)).is_ok());
        let e = plan(&scenario(r#"{ expr = "log(t)" }"#, 3)).unwrap_err();
        assert!(
            e.to_string().contains("at step 0 (t = 0) sigma = -inf"),
            "{e}"
        );
        let e = plan(&scenario(r#"{ expr = "0.1*k" }"#, 3)).unwrap_err();
        assert!(e.to_string().contains("dynamics.sigma.expr"), "{e}");
    }
}
