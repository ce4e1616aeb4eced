//! Chains that are linear per coordinate, x <- g x + shift + b xi: their law from a Gaussian
//! mixture stays a Gaussian mixture, known exactly. The forward noising chains are such
//! chains; reverse dynamics driven by one Gaussian's score are too, which models their
//! discretisation bias (tests/diffusion_gpu.rs, tests/reference_run.rs).

use super::stats::{self, EPS32};
use fokker::dynamics::diffusion::coefficients;
use fokker::model::{Mixture, Process};
use fokker::scenario::{DynamicsPlan, HistogramSpec};

/// f32 unit round-off.
pub const U32: f64 = EPS32 / 2.0;

/// Relative error f32 adds to one step, per coordinate, against the scale |m| + sd of the
/// law: the uploaded coefficients a, b, c are rounded once (3 u), the update
/// a x + c s + b xi costs three products and two sums (5 u), the f32 normal (Box–Muller:
/// log, sqrt, cos, product) 4 u. The mixture's score in f32 is within a few u of its f64
/// value where the particles are (exponents of order 1) and enters through c s: also
/// counted in these 12 u.
pub const STEP_ROUNDING: f64 = 12.0 * U32;

/// A chain that is linear per coordinate, x <- g x + shift + b xi with (g, shift, b) =
/// `step(n, k, i)` for step n, component k, coordinate i, run from `start` for `steps`
/// steps: every component stays Gaussian, with mean g m + shift and variance g^2 v + b^2,
/// exactly. Returns that law and a bound on the TV f32 adds to it: an error e made at one
/// step is carried on multiplied by |g|, so e <- |g| e + STEP_ROUNDING (|m| + sd) bounds
/// how far a coordinate's mean and standard deviation can have moved (worst case: the
/// roundings all in one direction; they are really unbiased and mostly cancel), and
/// Pinsker's inequality on the Gaussians' KL turns that into TV.
pub fn linear_chain(
    start: &Mixture,
    steps: u64,
    step: impl Fn(u64, usize, usize) -> (f64, f64, f64),
) -> (Mixture, f64) {
    let mut law = start.clone();
    let mut f32_bias = 0.0;
    for k in 0..start.components() {
        let d = start.means[k].len();
        let mut m = start.means[k].clone();
        let mut v: Vec<f64> = start.stds[k].iter().map(|s| s * s).collect();
        let mut e = vec![0.0; d];
        for n in 0..steps {
            for i in 0..d {
                let (g, shift, b) = step(n, k, i);
                e[i] = g.abs() * e[i] + STEP_ROUNDING * (m[i].abs() + v[i].sqrt());
                m[i] = g * m[i] + shift;
                v[i] = g * g * v[i] + b * b;
            }
        }
        let moved_m: Vec<f64> = m.iter().zip(&e).map(|(m, e)| m + e).collect();
        let moved_v: Vec<f64> = v
            .iter()
            .zip(&e)
            .map(|(v, e)| (v.sqrt() + e).powi(2))
            .collect();
        f32_bias += start.weights[k] * stats::gaussian_tv_bound(&m, &v, &moved_m, &moved_v);
        law.means[k] = m;
        law.stds[k] = v.iter().map(|v| v.sqrt()).collect();
    }
    (law, f32_bias)
}

/// Model of the law reverse dynamics reach, for their discretisation bias: the mixture over
/// components k (weights w_k) of chain_k, the chain driven by component k's own score
/// (alpha mu - x) / (alpha^2 sigma^2 + s^2) from the prior. That score is linear, so chain_k
/// is Gaussian and follows from the step coefficients exactly ([`linear_chain`]):
/// g = a - c / v_t, shift = c alpha mu / v_t for the SDE and the Euler flow, and Heun's
/// average of that and the same at the predictor. Exact for a single Gaussian; for a
/// mixture it models the bias by its components' (near t_end they have all collapsed onto
/// the prior, near t_min separated ones no longer interact). Returns the bias allowed after
/// `steps` steps, the TV between this law and the exact `probs` on the bins of `spec`, plus
/// f32's bound.
#[allow(clippy::too_many_arguments)]
pub fn reverse_bias(
    dynamics: &DynamicsPlan,
    process: &Process,
    heun: bool,
    data: &Mixture,
    steps: u64,
    spec: &HistogramSpec,
    probs: &[f64],
) -> f64 {
    let prior_sd = process.prior_variance().sqrt();
    let start = Mixture {
        weights: data.weights.clone(),
        means: vec![vec![0.0; data.dim()]; data.components()],
        stds: vec![vec![prior_sd; data.dim()]; data.components()],
    };
    let (model, f32_bias) = linear_chain(&start, steps, |n, k, i| {
        let c = coefficients(dynamics, n);
        let (mu, sd) = (data.means[k][i], data.stds[k][i]);
        let vt = c.alpha * c.alpha * sd * sd + c.s2;
        let (l1, k1) = (c.a - c.c / vt, c.c * c.alpha * mu / vt);
        if heun {
            let vt2 = c.alpha2 * c.alpha2 * sd * sd + c.s2_2;
            let (l2, k2) = (c.a2 - 1.0 - c.c2 / vt2, c.c2 * c.alpha2 * mu / vt2);
            (
                1.0 + 0.5 * (l1 - 1.0 + l2 * l1),
                0.5 * (k1 + l2 * k1 + k2),
                c.b,
            )
        } else {
            (l1, k1, c.b)
        }
    });
    let model_probs = model.bin_probabilities(&spec.axes, &spec.bins, &spec.range);
    stats::binned_tv(&model_probs, probs) + f32_bias
}
