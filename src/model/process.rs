//! Forward noising processes dx = -f(t) x dt + g(t) dW and their marginals
//! x_t = alpha(t) x_0 + s(t) eps, in f64 (docs/architecture.md, "Host coefficients in f64": in f32, 1 - exp(-B) is 5% off at
//! t = 1e-5, so every coefficient is computed here and passed to the GPU per step).
//!
//! - `vp`: beta(t) = beta_min + t (beta_max - beta_min), f = beta/2, g^2 = beta,
//!   B(t) = int_0^t beta, alpha = exp(-B/2), s^2 = -expm1(-B); prior N(0, I).
//! - `ve`: sigma(t) = sigma_min (sigma_max / sigma_min)^t, f = 0,
//!   g^2 = d sigma^2/dt = 2 sigma^2 ln(sigma_max / sigma_min), alpha = 1,
//!   s^2 = sigma(t)^2 - sigma_min^2; prior N(0, sigma_max^2 I).
//! - `ou`: dx = -theta x dt + sqrt(2 D) dW, alpha = exp(-theta t),
//!   s^2 = (D / theta)(1 - exp(-2 theta t)); prior N(0, D / theta I), its stationary law.

use super::Mixture;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Process {
    Vp { beta_min: f64, beta_max: f64 },
    Ve { sigma_min: f64, sigma_max: f64 },
    Ou { theta: f64, diffusion: f64 },
}

impl Process {
    /// B(t) = int_0^t beta (vp only).
    fn integrated_beta(beta_min: f64, beta_max: f64, t: f64) -> f64 {
        beta_min * t + 0.5 * t * t * (beta_max - beta_min)
    }

    /// The drift factor f(t) in dx = -f(t) x dt + g dW.
    pub fn drift(&self, t: f64) -> f64 {
        match *self {
            Process::Vp { beta_min, beta_max } => 0.5 * (beta_min + t * (beta_max - beta_min)),
            Process::Ve { .. } => 0.0,
            Process::Ou { theta, .. } => theta,
        }
    }

    /// g(t)^2.
    pub fn g2(&self, t: f64) -> f64 {
        match *self {
            Process::Vp { beta_min, beta_max } => beta_min + t * (beta_max - beta_min),
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
            Process::Vp { beta_min, beta_max } => {
                (-0.5 * Self::integrated_beta(beta_min, beta_max, t)).exp()
            }
            Process::Ve { .. } => 1.0,
            Process::Ou { theta, .. } => (-theta * t).exp(),
        }
    }

    /// s(t)^2, by expm1 so that it keeps its digits at small t.
    pub fn s2(&self, t: f64) -> f64 {
        match *self {
            Process::Vp { beta_min, beta_max } => {
                -(-Self::integrated_beta(beta_min, beta_max, t)).exp_m1()
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
            Process::Vp { beta_min, beta_max } => {
                let db = Self::integrated_beta(beta_min, beta_max, t2)
                    - Self::integrated_beta(beta_min, beta_max, t);
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
            Process::Vp { .. } => 1.0,
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

    #[test]
    fn small_times_keep_their_digits() {
        let vp = PROCESSES[0];
        let t = 1e-5;
        // B = 0.1 t + 9.95 t^2, s^2 = B - B^2/2 + ...
        let b = 0.1 * t + 0.5 * t * t * 19.9;
        assert!((vp.s2(t) / (b - b * b / 2.0) - 1.0).abs() < 1e-9);
    }
}
