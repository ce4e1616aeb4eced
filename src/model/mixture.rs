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
}
