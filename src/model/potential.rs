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

    /// The Laplacian ΔU(x, t) = Σ_k ∂²U/∂x_k², in closed form for the built-ins (the
    /// configurational temperature ⟨|∇U|²⟩ / ⟨ΔU⟩ needs it; src/observe/energy.rs):
    /// - quadratic: tr A;
    /// - double well: 12 x_0² − 4 + (dim − 1);
    /// - Müller–Brown, e_k = A_k exp(a_k dx² + b_k dx dy + c_k dy²):
    ///   scale Σ_k e_k [(2 a_k dx + b_k dy)² + 2 a_k + (b_k dx + 2 c_k dy)² + 2 c_k] + (dim − 2);
    /// - mixture: see [`Mixture::laplacian`].
    ///
    /// An expression's is the symbolic Σ_k ∂²U/∂x_k²; a WGSL file has none (NaN).
    pub fn laplacian_at(&self, x: &[f64], t: f64) -> f64 {
        match self {
            Potential::Quadratic { matrix, .. } => (0..x.len()).map(|i| matrix[i][i]).sum(),
            Potential::DoubleWell => 12.0 * x[0] * x[0] - 4.0 + (x.len() as f64 - 1.0),
            Potential::MuellerBrown { scale } => {
                let (px, py) = (x[0], x.get(1).copied().unwrap_or(0.0));
                let mut l = 0.0;
                for k in 0..4 {
                    let dx = px - MB_X0[k];
                    let dy = py - MB_Y0[k];
                    let e = MB_AMP[k]
                        * (MB_A[k] * dx * dx + MB_B[k] * dx * dy + MB_C[k] * dy * dy).exp();
                    let gx = 2.0 * MB_A[k] * dx + MB_B[k] * dy;
                    let gy = MB_B[k] * dx + 2.0 * MB_C[k] * dy;
                    l += e * (gx * gx + 2.0 * MB_A[k] + gy * gy + 2.0 * MB_C[k]);
                }
                scale * l + (x.len() as f64 - 2.0).max(0.0)
            }
            Potential::Mixture(m) => m.laplacian(x),
            Potential::Expr(e) => e.laplacian_at(x, t),
            Potential::Wgsl(_) => f64::NAN,
        }
    }

    /// ΔU(x) (at t = 0 for a potential that depends on time).
    pub fn laplacian(&self, x: &[f64]) -> f64 {
        self.laplacian_at(x, 0.0)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::expr::PotentialSource;

    /// ΔU of every built-in (and an expression's symbolic one) against central second
    /// differences in f64. Per axis, (U(x + h e) − 2 U(x) + U(x − h e)) / h² =
    /// ∂²U + (h² / 12) ∂⁴U(ξ), |ξ − x| ≤ h; ∂⁴U is estimated by the fourth difference with
    /// step H = 1e-2 (taken twice, for its own O(H²) error and ξ ≠ x), and each U carries at
    /// most 64 ε |U| of rounding, so the numerator's 4 such errors divide by h².
    #[test]
    fn laplacian_matches_second_differences() {
        let quadratic = Potential::Quadratic {
            matrix: vec![
                vec![2.0, 0.3, 0.0],
                vec![0.3, 1.0, -0.2],
                vec![0.0, -0.2, 0.5],
            ],
            center: vec![0.5, -1.0, 0.2],
        };
        let mixture = Potential::Mixture(Mixture {
            weights: vec![0.3, 0.7],
            means: vec![vec![-1.0, 0.5, 0.0], vec![1.0, -0.5, 0.3]],
            stds: vec![vec![0.5, 0.8, 1.0], vec![0.7, 0.4, 0.6]],
        });
        let expr = Potential::Expr(
            ExprPotential::new(PotentialSource {
                expr: "x^4 - k*x*y + sin(y)*z^2 + exp(0.3*z) + t*x".into(),
                params: [("k".to_string(), 1.5)].into(),
                dim: 3,
            })
            .expect("compiles"),
        );
        let potentials = [
            quadratic,
            Potential::DoubleWell,
            Potential::MuellerBrown { scale: 0.1 },
            mixture,
            expr,
        ];
        let points = [
            [0.3, -0.4, 0.7],
            [-0.6, 1.2, -0.3],
            [0.1, 0.4, 1.1],
            [-0.1, 0.6, -0.8],
        ];
        let (h, big) = (1e-4, 1e-2);
        let t = 0.4;
        for p in &potentials {
            for x in &points {
                let at = |dx: &[f64; 3]| {
                    let y: Vec<f64> = x.iter().zip(dx).map(|(a, b)| a + b).collect();
                    p.value_at(&y, t)
                };
                let u0 = at(&[0.0; 3]);
                let (mut fd, mut tol) = (0.0, 0.0);
                for k in 0..3 {
                    let step = |s: f64| {
                        let mut d = [0.0; 3];
                        d[k] = s;
                        at(&d)
                    };
                    let (up, um) = (step(h), step(-h));
                    fd += (up - 2.0 * u0 + um) / (h * h);
                    let d4 = (step(2.0 * big) - 4.0 * step(big) + 6.0 * u0 - 4.0 * step(-big)
                        + step(-2.0 * big))
                        / big.powi(4);
                    let umax = u0.abs().max(up.abs()).max(um.abs());
                    tol +=
                        h * h / 12.0 * 2.0 * d4.abs() + 4.0 * 64.0 * f64::EPSILON * umax / (h * h);
                }
                let exact = p.laplacian_at(x, t);
                assert!(
                    (exact - fd).abs() <= tol,
                    "{p:?} at {x:?}: ΔU {exact} vs second differences {fd} (tolerance {tol})"
                );
            }
        }
    }

    /// Closed forms against the expression compiler's symbolic Laplacian on the same U.
    #[test]
    fn builtin_laplacians_equal_symbolic_ones() {
        let expr = |text: &str| {
            Potential::Expr(
                ExprPotential::new(PotentialSource {
                    expr: text.into(),
                    params: Default::default(),
                    dim: 3,
                })
                .expect("compiles"),
            )
        };
        let pairs = [
            (
                Potential::DoubleWell,
                expr("(x^2 - 1)^2 + 0.5*y^2 + 0.5*z^2"),
            ),
            (
                Potential::Quadratic {
                    matrix: vec![
                        vec![2.0, 0.5, 0.0],
                        vec![0.5, 3.0, 0.0],
                        vec![0.0, 0.0, 0.25],
                    ],
                    center: vec![1.0, 0.0, -1.0],
                },
                expr("0.5*(2*(x-1)^2 + 2*0.5*(x-1)*y + 3*y^2 + 0.25*(z+1)^2)"),
            ),
        ];
        for (builtin, symbolic) in &pairs {
            for x in [[0.3, -0.2, 1.0], [1.4, 0.7, -0.5]] {
                let (a, b) = (builtin.laplacian(&x), symbolic.laplacian(&x));
                assert!((a - b).abs() <= 1e-12 * a.abs().max(1.0), "{a} vs {b}");
            }
        }
    }
}
