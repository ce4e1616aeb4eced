//! Forward noising processes dx = -f(t) x dt + g(t) dW and their marginals
//! x_t = alpha(t) x_0 + s(t) eps, in f64 (docs/architecture.md, "Host coefficients in f64": in f32, 1 - exp(-B) is 5% off at
//! t = 1e-5, so every coefficient is computed here and passed to the GPU per step).
//!
//! - `vp`: beta(t) = beta_min + t (beta_max - beta_min), f = beta/2, g^2 = beta,
//!   B(t) = int_0^t beta, alpha = exp(-B/2), s^2 = -expm1(-B); prior N(0, I). With beta(t)
//!   written as an expression ([`BetaSchedule`]) B is computed by quadrature, and a
//!   transition's B(t2) - B(t) as the integral over [t, t2] itself (no difference of nearly
//!   equal numbers).
//! - `ve`: sigma(t) = sigma_min (sigma_max / sigma_min)^t, f = 0,
//!   g^2 = d sigma^2/dt = 2 sigma^2 ln(sigma_max / sigma_min), alpha = 1,
//!   s^2 = sigma(t)^2 - sigma_min^2; prior N(0, sigma_max^2 I).
//! - `ou`: dx = -theta x dt + sqrt(2 D) dW, alpha = exp(-theta t),
//!   s^2 = (D / theta)(1 - exp(-2 theta t)); prior N(0, D / theta I), its stationary law.

use super::Mixture;
use super::expr::TimeExpr;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};

/// A forward process. The plan records it as `{"kind": "vp", "beta_min", "beta_max"}`,
/// `{"kind": "vp", "beta": {"expr", "params"}}`, `{"kind": "ve", ...}` or
/// `{"kind": "ou", ...}` (see [`ProcessRecord`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "ProcessRecord", into = "ProcessRecord")]
pub enum Process {
    Vp {
        beta_min: f64,
        beta_max: f64,
    },
    /// VP with beta(t) written by the user.
    VpSchedule(BetaSchedule),
    Ve {
        sigma_min: f64,
        sigma_max: f64,
    },
    Ou {
        theta: f64,
        diffusion: f64,
    },
}

/// How a [`Process`] is written in a plan: both VP forms under `kind = "vp"`, told apart by
/// their keys (so plans written before schedules existed read back unchanged).
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum ProcessRecord {
    Vp(VpRecord),
    Ve { sigma_min: f64, sigma_max: f64 },
    Ou { theta: f64, diffusion: f64 },
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum VpRecord {
    Schedule { beta: BetaSchedule },
    Linear { beta_min: f64, beta_max: f64 },
}

impl From<ProcessRecord> for Process {
    fn from(r: ProcessRecord) -> Self {
        match r {
            ProcessRecord::Vp(VpRecord::Linear { beta_min, beta_max }) => {
                Process::Vp { beta_min, beta_max }
            }
            ProcessRecord::Vp(VpRecord::Schedule { beta }) => Process::VpSchedule(beta),
            ProcessRecord::Ve {
                sigma_min,
                sigma_max,
            } => Process::Ve {
                sigma_min,
                sigma_max,
            },
            ProcessRecord::Ou { theta, diffusion } => Process::Ou { theta, diffusion },
        }
    }
}

impl From<Process> for ProcessRecord {
    fn from(p: Process) -> Self {
        match p {
            Process::Vp { beta_min, beta_max } => {
                ProcessRecord::Vp(VpRecord::Linear { beta_min, beta_max })
            }
            Process::VpSchedule(beta) => ProcessRecord::Vp(VpRecord::Schedule { beta }),
            Process::Ve {
                sigma_min,
                sigma_max,
            } => ProcessRecord::Ve {
                sigma_min,
                sigma_max,
            },
            Process::Ou { theta, diffusion } => ProcessRecord::Ou { theta, diffusion },
        }
    }
}

/// Width of the panels whose integrals [`BetaSchedule`] keeps (process time).
pub const BETA_PANEL: f64 = 1.0 / 64.0;
/// Panels kept: B(t) for t beyond 2^16 panels (t > 1024) integrates the rest on each call.
const MAX_PANELS: usize = 1 << 16;
/// An interval is accepted when the sum of its two halves' Gauss–Legendre sums agrees with
/// its own and with its Gauss–Lobatto sum to this, relative.
const QUADRATURE_TOLERANCE: f64 = 1e-13;
/// Most intervals one integration splits (the budget for integrands that never settle).
const QUADRATURE_BUDGET: usize = 1 << 12;

/// 8-point Gauss–Legendre nodes (positive half) and weights on [-1, 1].
const GL8: [(f64, f64); 4] = [
    (0.183_434_642_495_649_8, 0.362_683_783_378_362),
    (0.525_532_409_916_329, 0.313_706_645_877_887_3),
    (0.796_666_477_413_626_7, 0.222_381_034_453_374_5),
    (0.960_289_856_497_536_3, 0.101_228_536_290_376_3),
];

/// beta(t) of a VP process written by the user, and B(t) = int_0^t beta by adaptive
/// composite Gauss–Legendre quadrature: 8 points per interval (exact for polynomials of
/// degree 15), an interval split in halves until the halves' sum agrees with the whole's and
/// with a 5-point Gauss–Lobatto sum over the interval (which samples its ends) to 1e-13
/// relative. For smooth beta that leaves an error far below 1e-13 (the halves' sum is the
/// more accurate by about 2^-16); kinks and jumps of abs, min, max or sign are found by the
/// splitting and cost about 1e-13 of the integral each. B is kept per panel of
/// [`BETA_PANEL`]: B(t) = the cumulative sum of the whole panels below t plus the integral
/// over the last part. The panel table is a cache grown on demand; its values do not depend
/// on the order of calls.
#[derive(Clone, Serialize, Deserialize)]
#[serde(from = "TimeExpr", into = "TimeExpr")]
pub struct BetaSchedule {
    beta: TimeExpr,
    /// cumulative[k] = int_0^{k BETA_PANEL} beta.
    cumulative: Arc<Mutex<Vec<f64>>>,
}

/// The schedule as written (the panel cache is left out).
impl std::fmt::Debug for BetaSchedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("BetaSchedule").field(&self.beta).finish()
    }
}

impl PartialEq for BetaSchedule {
    fn eq(&self, other: &Self) -> bool {
        self.beta == other.beta
    }
}

impl From<TimeExpr> for BetaSchedule {
    fn from(beta: TimeExpr) -> Self {
        BetaSchedule {
            beta,
            cumulative: Arc::new(Mutex::new(vec![0.0])),
        }
    }
}

impl From<BetaSchedule> for TimeExpr {
    fn from(b: BetaSchedule) -> Self {
        b.beta
    }
}

impl BetaSchedule {
    pub fn expr(&self) -> &TimeExpr {
        &self.beta
    }

    pub fn beta(&self, t: f64) -> f64 {
        self.beta.at(t)
    }

    /// int_a^b beta (a <= b), adaptively (see the type's description).
    pub fn integral(&self, a: f64, b: f64) -> f64 {
        let f = |t: f64| self.beta.at(t);
        let gauss = |a: f64, b: f64| {
            let (c, h) = (0.5 * (a + b), 0.5 * (b - a));
            h * GL8
                .iter()
                .map(|&(x, w)| w * (f(c - h * x) + f(c + h * x)))
                .sum::<f64>()
        };
        // The 5-point Gauss–Lobatto sum (degree 7), which samples the ends: a kink or jump
        // between GL8's outermost node and an end (2% of the width) is invisible to GL8 on
        // the interval and on its halves alike, but not to this.
        let lobatto = |a: f64, b: f64| {
            let (c, h) = (0.5 * (a + b), 0.5 * (b - a));
            let x = (3.0f64 / 7.0).sqrt();
            h * (32.0 / 45.0 * f(c)
                + 49.0 / 90.0 * (f(c - h * x) + f(c + h * x))
                + 0.1 * (f(a) + f(b)))
        };
        let mut total = 0.0;
        let mut budget = QUADRATURE_BUDGET;
        // (a, b, its Gauss–Legendre sum), left to right.
        let mut stack = vec![(a, b, gauss(a, b))];
        while let Some((a, b, whole)) = stack.pop() {
            let m = 0.5 * (a + b);
            let (left, right) = (gauss(a, m), gauss(m, b));
            let halves = left + right;
            let tolerance = QUADRATURE_TOLERANCE * (left.abs() + right.abs());
            let settled =
                (halves - whole).abs() <= tolerance && (halves - lobatto(a, b)).abs() <= tolerance;
            if settled || !halves.is_finite() || budget == 0 || m <= a || m >= b {
                total += halves;
            } else {
                budget -= 1;
                stack.push((m, b, right));
                stack.push((a, m, left));
            }
        }
        total
    }

    /// B(t) = int_0^t beta.
    pub fn integrated(&self, t: f64) -> f64 {
        if t <= 0.0 {
            return 0.0;
        }
        let k = ((t / BETA_PANEL).floor() as usize).min(MAX_PANELS);
        let base = {
            let mut c = self.cumulative.lock().unwrap_or_else(|e| e.into_inner());
            while c.len() <= k {
                let j = c.len() - 1;
                let panel = self.integral(j as f64 * BETA_PANEL, (j + 1) as f64 * BETA_PANEL);
                let next = c[j] + panel;
                c.push(next);
            }
            c[k]
        };
        let from = k as f64 * BETA_PANEL;
        if t > from {
            base + self.integral(from, t)
        } else {
            base
        }
    }

    /// The first of `points` evenly spaced times in [0, t_end] (both ends included) where
    /// beta is negative or not finite, with that value.
    pub fn first_invalid(&self, t_end: f64, points: u64) -> Option<(f64, f64)> {
        let n = points.max(2) - 1;
        (0..=n)
            .map(|k| {
                if k == n {
                    t_end
                } else {
                    t_end * k as f64 / n as f64
                }
            })
            .map(|t| (t, self.beta(t)))
            .find(|(_, v)| !(v.is_finite() && *v >= 0.0))
    }
}

impl Process {
    /// B(t) = int_0^t beta (linear vp).
    fn integrated_beta(beta_min: f64, beta_max: f64, t: f64) -> f64 {
        beta_min * t + 0.5 * t * t * (beta_max - beta_min)
    }

    /// B(t2) - B(t) of a vp process.
    fn beta_between(&self, t: f64, t2: f64) -> Option<f64> {
        match self {
            Process::Vp { beta_min, beta_max } => Some(
                Self::integrated_beta(*beta_min, *beta_max, t2)
                    - Self::integrated_beta(*beta_min, *beta_max, t),
            ),
            Process::VpSchedule(b) => Some(b.integral(t, t2)),
            _ => None,
        }
    }

    /// B(t) of a vp process.
    fn integrated(&self, t: f64) -> Option<f64> {
        match self {
            Process::Vp { beta_min, beta_max } => {
                Some(Self::integrated_beta(*beta_min, *beta_max, t))
            }
            Process::VpSchedule(b) => Some(b.integrated(t)),
            _ => None,
        }
    }

    /// The drift factor f(t) in dx = -f(t) x dt + g dW.
    pub fn drift(&self, t: f64) -> f64 {
        match self {
            Process::Vp { .. } | Process::VpSchedule(_) => 0.5 * self.g2(t),
            Process::Ve { .. } => 0.0,
            Process::Ou { theta, .. } => *theta,
        }
    }

    /// g(t)^2.
    pub fn g2(&self, t: f64) -> f64 {
        match *self {
            Process::Vp { beta_min, beta_max } => beta_min + t * (beta_max - beta_min),
            Process::VpSchedule(ref b) => b.beta(t),
            Process::Ve {
                sigma_min,
                sigma_max,
            } => {
                let s = self.ve_sigma(sigma_min, sigma_max, t);
                2.0 * s * s * (sigma_max / sigma_min).ln()
            }
            Process::Ou { diffusion, .. } => 2.0 * diffusion,
        }
    }

    fn ve_sigma(&self, sigma_min: f64, sigma_max: f64, t: f64) -> f64 {
        sigma_min * (sigma_max / sigma_min).powf(t)
    }

    /// alpha(t): the marginal is x_t = alpha x_0 + s eps.
    pub fn alpha(&self, t: f64) -> f64 {
        match *self {
            Process::Vp { .. } | Process::VpSchedule(_) => {
                (-0.5 * self.integrated(t).unwrap_or(0.0)).exp()
            }
            Process::Ve { .. } => 1.0,
            Process::Ou { theta, .. } => (-theta * t).exp(),
        }
    }

    /// s(t)^2, by expm1 so that it keeps its digits at small t.
    pub fn s2(&self, t: f64) -> f64 {
        match *self {
            Process::Vp { .. } | Process::VpSchedule(_) => {
                -(-self.integrated(t).unwrap_or(0.0)).exp_m1()
            }
            Process::Ve {
                sigma_min,
                sigma_max,
            } => {
                // sigma_min^2 ((sigma_max/sigma_min)^(2t) - 1)
                sigma_min * sigma_min * (2.0 * t * (sigma_max / sigma_min).ln()).exp_m1()
            }
            Process::Ou { theta, diffusion } => diffusion / theta * -(-2.0 * theta * t).exp_m1(),
        }
    }

    /// The exact transition from time t to t2 > t: x_t2 = a x_t + sqrt(v) eps, as (a, v).
    pub fn transition(&self, t: f64, t2: f64) -> (f64, f64) {
        match *self {
            Process::Vp { .. } | Process::VpSchedule(_) => {
                let db = self.beta_between(t, t2).unwrap_or(0.0);
                ((-0.5 * db).exp(), -(-db).exp_m1())
            }
            Process::Ve {
                sigma_min,
                sigma_max,
            } => {
                let l = (sigma_max / sigma_min).ln();
                // sigma(t2)^2 - sigma(t)^2 = sigma(t)^2 (exp(2 l (t2 - t)) - 1)
                let s = self.ve_sigma(sigma_min, sigma_max, t);
                (1.0, s * s * (2.0 * l * (t2 - t)).exp_m1())
            }
            Process::Ou { theta, diffusion } => {
                let h = t2 - t;
                (
                    (-theta * h).exp(),
                    diffusion / theta * -(-2.0 * theta * h).exp_m1(),
                )
            }
        }
    }

    /// Variance per coordinate of the prior, the terminal law reverse dynamics start from.
    pub fn prior_variance(&self) -> f64 {
        match *self {
            Process::Vp { .. } | Process::VpSchedule(_) => 1.0,
            Process::Ve { sigma_max, .. } => sigma_max * sigma_max,
            Process::Ou { theta, diffusion } => diffusion / theta,
        }
    }

    /// The law at time t of data drawn from `data`: the mixture pushed through the process.
    pub fn marginal(&self, data: &Mixture, t: f64) -> Mixture {
        let (a, s2) = (self.alpha(t), self.s2(t));
        Mixture {
            weights: data.weights.clone(),
            means: data
                .means
                .iter()
                .map(|m| m.iter().map(|x| a * x).collect())
                .collect(),
            stds: data
                .stds
                .iter()
                .map(|s| s.iter().map(|x| (a * a * x * x + s2).sqrt()).collect())
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROCESSES: [Process; 3] = [
        Process::Vp {
            beta_min: 0.1,
            beta_max: 20.0,
        },
        Process::Ve {
            sigma_min: 0.01,
            sigma_max: 10.0,
        },
        Process::Ou {
            theta: 0.7,
            diffusion: 1.3,
        },
    ];

    #[test]
    fn marginal_coefficients_solve_their_odes() {
        // d alpha/dt = -f alpha and d s^2/dt = -2 f s^2 + g^2, by central differences.
        for p in PROCESSES {
            for t in [0.05, 0.3, 0.8] {
                let h = 1e-6;
                let da = (p.alpha(t + h) - p.alpha(t - h)) / (2.0 * h);
                let ds = (p.s2(t + h) - p.s2(t - h)) / (2.0 * h);
                assert!((da + p.drift(t) * p.alpha(t)).abs() < 1e-6 * (1.0 + da.abs()));
                let rhs = -2.0 * p.drift(t) * p.s2(t) + p.g2(t);
                assert!(
                    (ds - rhs).abs() < 1e-5 * (1.0 + rhs.abs()),
                    "{p:?} {ds} {rhs}"
                );
            }
            assert_eq!(p.s2(0.0), 0.0);
            assert_eq!(p.alpha(0.0), 1.0);
        }
    }

    #[test]
    fn transitions_compose_to_the_marginal() {
        for p in PROCESSES {
            let (t1, t2) = (0.2, 0.9);
            let (a, v) = p.transition(t1, t2);
            let alpha = a * p.alpha(t1);
            let s2 = a * a * p.s2(t1) + v;
            assert!((alpha - p.alpha(t2)).abs() < 1e-12);
            assert!((s2 - p.s2(t2)).abs() < 1e-10 * p.s2(t2).max(1.0));
        }
    }

    /// A vp process whose beta is written as an expression.
    fn schedule(expr: &str, params: &[(&str, f64)]) -> Process {
        let source = crate::model::expr::TimeSource {
            expr: expr.into(),
            params: params.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        };
        Process::VpSchedule(BetaSchedule::from(TimeExpr::new(source).unwrap()))
    }

    fn linear_expression() -> Process {
        schedule("lo + t*(hi - lo)", &[("lo", 0.1), ("hi", 20.0)])
    }

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * a.abs().max(b.abs())
    }

    #[test]
    fn the_linear_schedule_as_an_expression_gives_the_built_in_coefficients() {
        let (built_in, expr) = (PROCESSES[0].clone(), linear_expression());
        // Small times (s^2 and A - 1 by expm1), panel edges, inside panels, beyond t = 1.
        let times = [
            0.0, 1e-9, 1e-5, 1e-3, 0.015625, 0.0156251, 0.3, 0.5, 0.999, 1.0, 2.7,
        ];
        for &t in &times {
            assert!(close(expr.alpha(t), built_in.alpha(t), 1e-13), "alpha({t})");
            assert!(close(expr.s2(t), built_in.s2(t), 1e-12), "s2({t})");
            assert!(close(expr.drift(t), built_in.drift(t), 1e-14), "f({t})");
            assert!(close(expr.g2(t), built_in.g2(t), 1e-14), "g2({t})");
            for dt in [1e-6, 1e-3, 0.05] {
                // The built-in takes B(t + dt) - B(t), which loses digits to cancellation
                // when dt << t (relative eps B(t + dt) / (B(t + dt) - B(t))); the schedule
                // integrates over [t, t + dt] itself. Both against the exact difference,
                // dt (lo + (hi - lo)(t + dt / 2)).
                // (t + dt) - t, exact: the interval the transition integrates over.
                let h = (t + dt) - t;
                let db = h * (0.1 + 19.9 * (t + 0.5 * h));
                let cancellation = 4.0 * f64::EPSILON * built_in.s2(t + dt).max(1e-300)
                    / (1.0 - built_in.s2(t + dt))
                    / db;
                let (a, v) = expr.transition(t, t + h);
                let (a0, v0) = built_in.transition(t, t + h);
                let (a_exact, v_exact) = ((-0.5 * db).exp(), -(-db).exp_m1());
                assert!(close(a - 1.0, a_exact - 1.0, 1e-11), "A - 1 at {t} + {dt}");
                assert!(close(v, v_exact, 1e-13), "v at {t} + {dt}: {v} {v_exact}");
                assert!(close(v0, v_exact, 1e-13 + cancellation), "built-in at {t}");
                assert!(close(a0 - 1.0, a_exact - 1.0, 1e-11 + cancellation), "{t}");
                assert!(
                    close(v, v0, 1e-12 + cancellation),
                    "v at {t} + {dt}: {v} {v0}"
                );
            }
        }
        assert_eq!(expr.prior_variance(), 1.0);
    }

    #[test]
    fn quadrature_resolves_curvature_and_kinks() {
        // B(t) in closed form for a smooth and a kinked beta.
        let smooth = schedule("exp(3*t) + sin(20*t)^2", &[]);
        let b_smooth = |t: f64| (3.0 * t).exp_m1() / 3.0 + 0.5 * t - (40.0 * t).sin() / 80.0;
        let kinked = schedule("abs(t - 0.3)*10 + max(t, 0.7)", &[]);
        let b_kinked = |t: f64| {
            let a = if t <= 0.3 {
                5.0 * (0.09 - (0.3 - t).powi(2))
            } else {
                5.0 * (0.09 + (t - 0.3).powi(2))
            };
            let m = if t <= 0.7 {
                0.7 * t
            } else {
                0.49 + 0.5 * (t * t - 0.49)
            };
            a + m
        };
        for t in [1e-4, 0.1, 0.3, 0.3001, 0.65, 0.7, 0.93, 1.0, 3.3] {
            for (p, b) in [
                (&smooth, &b_smooth as &dyn Fn(f64) -> f64),
                (&kinked, &b_kinked),
            ] {
                let Process::VpSchedule(s) = p else {
                    unreachable!()
                };
                let (got, want) = (s.integrated(t), b(t));
                assert!(close(got, want, 1e-12), "B({t}) = {got}, want {want}");
                // A transition's integral is taken over [t, t2] itself.
                let h = 1e-3;
                assert!(
                    close(s.integral(t, t + h), b(t + h) - b(t), 1e-9),
                    "int over [{t}, {}]",
                    t + h
                );
            }
        }
    }

    #[test]
    fn schedules_solve_their_odes_and_compose() {
        for p in [linear_expression(), schedule("0.5 + 8*t^2", &[])] {
            for t in [0.05, 0.3, 0.8] {
                let h = 1e-6;
                let da = (p.alpha(t + h) - p.alpha(t - h)) / (2.0 * h);
                let ds = (p.s2(t + h) - p.s2(t - h)) / (2.0 * h);
                assert!((da + p.drift(t) * p.alpha(t)).abs() < 1e-6 * (1.0 + da.abs()));
                let rhs = -2.0 * p.drift(t) * p.s2(t) + p.g2(t);
                assert!((ds - rhs).abs() < 1e-5 * (1.0 + rhs.abs()));
            }
            let (t1, t2) = (0.2, 0.9);
            let (a, v) = p.transition(t1, t2);
            assert!((a * p.alpha(t1) - p.alpha(t2)).abs() < 1e-12);
            assert!((a * a * p.s2(t1) + v - p.s2(t2)).abs() < 1e-12);
            assert_eq!((p.alpha(0.0), p.s2(0.0)), (1.0, 0.0));
        }
    }

    #[test]
    fn plans_record_both_vp_forms_under_kind_vp() {
        let built_in = serde_json::to_value(&PROCESSES[0]).unwrap();
        assert_eq!(
            built_in,
            serde_json::json!({"kind": "vp", "beta_min": 0.1, "beta_max": 20.0})
        );
        let expr = linear_expression();
        let json = serde_json::to_value(&expr).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"kind": "vp", "beta": {
                "expr": "lo + t*(hi - lo)", "params": {"hi": 20.0, "lo": 0.1}}})
        );
        let back: Process = serde_json::from_value(json).unwrap();
        assert_eq!(back, expr);
        assert_eq!(back.s2(0.4), expr.s2(0.4));
        let back: Process = serde_json::from_value(built_in).unwrap();
        assert_eq!(back, PROCESSES[0]);
    }

    #[test]
    fn negative_or_undefined_beta_is_found() {
        let Process::VpSchedule(s) = schedule("1 - 2*t", &[]) else {
            unreachable!()
        };
        let (t, v) = s.first_invalid(1.0, 1025).expect("negative past t = 0.5");
        assert!(t > 0.5 && t < 0.502 && v < 0.0, "{t} {v}");
        assert_eq!(s.first_invalid(0.5, 1025), None);
        let Process::VpSchedule(s) = schedule("log(t)", &[]) else {
            unreachable!()
        };
        assert_eq!(s.first_invalid(1.0, 2).map(|(t, _)| t), Some(0.0));
    }

    #[test]
    fn small_times_keep_their_digits() {
        let vp = &PROCESSES[0];
        let t = 1e-5;
        // B = 0.1 t + 9.95 t^2, s^2 = B - B^2/2 + ...
        let b = 0.1 * t + 0.5 * t * t * 19.9;
        assert!((vp.s2(t) / (b - b * b / 2.0) - 1.0).abs() < 1e-9);
    }
}
