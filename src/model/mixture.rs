//! Gaussian mixtures with diagonal covariances: initial distributions, potentials
//! (U = -log p) and, later, score sources.

use serde::{Deserialize, Serialize};

/// p(x) = sum_k w_k N(x; mu_k, diag(sigma_k^2)). Weights are normalised at resolve
/// time; `stds` always holds one entry per dimension (an isotropic std is expanded).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mixture {
    pub weights: Vec<f64>,
    pub means: Vec<Vec<f64>>,
    pub stds: Vec<Vec<f64>>,
}

impl Mixture {
    pub fn components(&self) -> usize {
        self.weights.len()
    }

    pub fn dim(&self) -> usize {
        self.means.first().map_or(0, Vec::len)
    }

    /// Per-component log of w_k N(x; mu_k, diag sigma_k^2).
    fn log_terms(&self, x: &[f64]) -> Vec<f64> {
        let half_log_2pi = 0.5 * (2.0 * std::f64::consts::PI).ln();
        (0..self.components())
            .map(|k| {
                let mut l = self.weights[k].ln();
                for (i, &xi) in x.iter().enumerate() {
                    let s = self.stds[k][i];
                    let z = (xi - self.means[k][i]) / s;
                    l -= 0.5 * z * z + s.ln() + half_log_2pi;
                }
                l
            })
            .collect()
    }

    /// log p(x), by log-sum-exp.
    pub fn log_density(&self, x: &[f64]) -> f64 {
        let terms = self.log_terms(x);
        let m = terms.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        m + terms.iter().map(|t| (t - m).exp()).sum::<f64>().ln()
    }

    /// grad log p(x) = sum_k r_k(x) (mu_k - x) / sigma_k^2 with responsibilities r_k.
    pub fn score(&self, x: &[f64]) -> Vec<f64> {
        let terms = self.log_terms(x);
        let m = terms.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let w: Vec<f64> = terms.iter().map(|t| (t - m).exp()).collect();
        let total: f64 = w.iter().sum();
        let mut g = vec![0.0; x.len()];
        for (k, wk) in w.iter().enumerate() {
            let r = wk / total;
            for (i, gi) in g.iter_mut().enumerate() {
                let s = self.stds[k][i];
                *gi += r * (self.means[k][i] - x[i]) / (s * s);
            }
        }
        g
    }

    /// ΔU for U = −log p. With Λ_k = diag(1 / σ_k²), s_k = −Λ_k (x − μ_k) (the score of
    /// component k) and responsibilities r_k = w_k N_k / p, ∇log p = g = Σ_k r_k s_k and
    /// ∇r_k = r_k (s_k − g), so the Hessian of log p is
    /// Σ_k r_k (−Λ_k) + Σ_k r_k s_k s_kᵀ − g gᵀ; its trace, negated:
    /// ΔU = −Σ_k r_k (|s_k|² − tr Λ_k) + |g|².
    pub fn laplacian(&self, x: &[f64]) -> f64 {
        let terms = self.log_terms(x);
        let m = terms.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let w: Vec<f64> = terms.iter().map(|t| (t - m).exp()).collect();
        let total: f64 = w.iter().sum();
        let mut g = vec![0.0; x.len()];
        let mut acc = 0.0;
        for (k, wk) in w.iter().enumerate() {
            let r = wk / total;
            let (mut s2, mut tr) = (0.0, 0.0);
            for (i, gi) in g.iter_mut().enumerate() {
                let lam = 1.0 / (self.stds[k][i] * self.stds[k][i]);
                let s = lam * (self.means[k][i] - x[i]);
                *gi += r * s;
                s2 += s * s;
                tr += lam;
            }
            acc += r * (s2 - tr);
        }
        -acc + g.iter().map(|v| v * v).sum::<f64>()
    }

    /// Probability of each bin of a histogram over `axes` with `bins` and `range` (numpy
    /// histogram2d order, the first axis slowest): the marginal of the mixture on those
    /// axes integrated over every bin exactly (diagonal covariances factorise per axis).
    pub fn bin_probabilities(&self, axes: &[u32], bins: &[u32], range: &[[f64; 2]]) -> Vec<f64> {
        let cdf = |x: f64| 0.5 * libm::erfc(-x / std::f64::consts::SQRT_2);
        let total: usize = bins.iter().map(|&b| b as usize).product();
        let mut out = vec![0.0; total];
        for k in 0..self.components() {
            // Per axis, the component's mass in each bin.
            let per_axis: Vec<Vec<f64>> = axes
                .iter()
                .zip(bins)
                .zip(range)
                .map(|((&a, &n), r)| {
                    let (mu, s) = (self.means[k][a as usize], self.stds[k][a as usize]);
                    let w = (r[1] - r[0]) / f64::from(n);
                    (0..n)
                        .map(|i| {
                            let lo = r[0] + w * f64::from(i);
                            cdf((lo + w - mu) / s) - cdf((lo - mu) / s)
                        })
                        .collect()
                })
                .collect();
            for (flat, o) in out.iter_mut().enumerate() {
                let mut p = self.weights[k];
                let mut rest = flat;
                for axis in per_axis.iter().rev() {
                    p *= axis[rest % axis.len()];
                    rest /= axis.len();
                }
                *o += p;
            }
        }
        out
    }
}
