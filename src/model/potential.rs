//! Built-in potentials U(x) and their exact gradients, in f64 (the CPU reference).
//! The WGSL versions live in `shaders/common/potential.wgsl` and must agree with these.

use super::expr::ExprPotential;
use super::mixture::Mixture;
use super::wgsl_model::WgslModel;
use serde::{Deserialize, Serialize};

/// Müller–Brown constants (Müller & Brown 1979), the standard four-term surface.
pub const MB_AMP: [f64; 4] = [-200.0, -100.0, -170.0, 15.0];
pub const MB_A: [f64; 4] = [-1.0, -1.0, -6.5, 0.7];
pub const MB_B: [f64; 4] = [0.0, 0.0, 11.0, 0.6];
pub const MB_C: [f64; 4] = [-10.0, -10.0, -6.5, 0.7];
pub const MB_X0: [f64; 4] = [1.0, 0.0, -0.5, -1.0];
pub const MB_Y0: [f64; 4] = [0.0, 0.5, 1.5, 1.0];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Potential {
    /// U = (1/2)(x - c)^T A (x - c), A symmetric (dim x dim, row-major).
    Quadratic {
        matrix: Vec<Vec<f64>>,
        center: Vec<f64>,
    },
    /// U = (x_0^2 - 1)^2 + (1/2) sum_{i>=1} x_i^2.
    DoubleWell,
    /// scale * (standard Müller–Brown surface) on axes 0, 1, plus (1/2) sum_{i>=2} x_i^2.
    MuellerBrown { scale: f64 },
    /// U = -log p for a Gaussian mixture p.
    Mixture(Mixture),
    /// U(x, t) written by the user (src/model/expr), with its symbolic gradient.
    Expr(ExprPotential),
    /// grad U written in WGSL by the user (src/model/wgsl_model.rs): GPU only, U and its
    /// gradient are NaN on the CPU.
    Wgsl(WgslModel),
}

impl Potential {
    /// Whether U changes with time (only expressions and WGSL can; WGSL is taken to).
    pub fn is_timed(&self) -> bool {
        match self {
            Potential::Expr(e) => e.is_timed(),
            Potential::Wgsl(_) => true,
            _ => false,
        }
    }

    /// U(x, t).
    pub fn value_at(&self, x: &[f64], t: f64) -> f64 {
        match self {
            Potential::Expr(e) => e.value_at(x, t),
            _ => self.value(x),
        }
    }

    /// grad U(x, t).
    pub fn gradient_at(&self, x: &[f64], t: f64) -> Vec<f64> {
        match self {
            Potential::Expr(e) => e.gradient_at(x, t),
            _ => self.gradient(x),
        }
    }

    /// U(x) (at t = 0 for a potential that depends on time).
    pub fn value(&self, x: &[f64]) -> f64 {
        match self {
            Potential::Quadratic { matrix, center } => {
                let d: Vec<f64> = x.iter().zip(center).map(|(a, c)| a - c).collect();
                let mut u = 0.0;
                for i in 0..d.len() {
                    for j in 0..d.len() {
                        u += d[i] * matrix[i][j] * d[j];
                    }
                }
                0.5 * u
            }
            Potential::DoubleWell => {
                let a = x[0] * x[0] - 1.0;
                a * a + 0.5 * x[1..].iter().map(|v| v * v).sum::<f64>()
            }
            Potential::MuellerBrown { scale } => {
                let (px, py) = (x[0], x.get(1).copied().unwrap_or(0.0));
                let mut u = 0.0;
                for k in 0..4 {
                    let dx = px - MB_X0[k];
                    let dy = py - MB_Y0[k];
                    u += MB_AMP[k]
                        * (MB_A[k] * dx * dx + MB_B[k] * dx * dy + MB_C[k] * dy * dy).exp();
                }
                scale * u + 0.5 * x.iter().skip(2).map(|v| v * v).sum::<f64>()
            }
            Potential::Mixture(m) => -m.log_density(x),
            Potential::Expr(e) => e.value_at(x, 0.0),
            Potential::Wgsl(_) => f64::NAN,
        }
    }

    /// grad U(x) (at t = 0 for a potential that depends on time).
    pub fn gradient(&self, x: &[f64]) -> Vec<f64> {
        match self {
            Potential::Quadratic { matrix, center } => (0..x.len())
                .map(|i| {
                    (0..x.len())
                        .map(|j| matrix[i][j] * (x[j] - center[j]))
                        .sum()
                })
                .collect(),
            Potential::DoubleWell => {
                let mut g = x.to_vec();
                g[0] = 4.0 * x[0] * (x[0] * x[0] - 1.0);
                g
            }
            Potential::MuellerBrown { scale } => {
                let mut g = x.to_vec();
                let (px, py) = (x[0], x.get(1).copied().unwrap_or(0.0));
                let (mut gx, mut gy) = (0.0, 0.0);
                for k in 0..4 {
                    let dx = px - MB_X0[k];
                    let dy = py - MB_Y0[k];
                    let e = MB_AMP[k]
                        * (MB_A[k] * dx * dx + MB_B[k] * dx * dy + MB_C[k] * dy * dy).exp();
                    gx += e * (2.0 * MB_A[k] * dx + MB_B[k] * dy);
                    gy += e * (MB_B[k] * dx + 2.0 * MB_C[k] * dy);
                }
                g[0] = scale * gx;
                if g.len() > 1 {
                    g[1] = scale * gy;
                }
                g
            }
            Potential::Mixture(m) => m.score(x).into_iter().map(|s| -s).collect(),
            Potential::Expr(e) => e.gradient_at(x, 0.0),
            Potential::Wgsl(_) => vec![f64::NAN; x.len()],
        }
    }
}
