//! Chains that are linear per coordinate, x <- g x + shift + b xi: their law from a Gaussian
//! mixture stays a Gaussian mixture, known exactly. The forward noising chains are such
//! chains; reverse dynamics driven by one Gaussian's score are too, which models their
//! discretisation bias (tests/diffusion_gpu.rs, tests/reference_run.rs).

use super::stats::{self, EPS32};
use fokker::model::{Mixture, Process};
use fokker::scenario::HistogramSpec;

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

/// The discretisation schemes, with their step coefficients written here from the
/// definitions (independently of src/dynamics/diffusion.rs's `coefficients`, so that a
/// mistake there shows as a difference from these chains). With the forward process
/// dx = -f(t) x dt + g(t) dW and the step from t to t2 (h = |t - t2|):
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scheme {
    /// Forward Euler–Maruyama: x <- (1 - f(t) h) x + sqrt(g^2(t) h) xi.
    ForwardEm,
    /// Forward exact transition: x <- (alpha(t2) / alpha(t)) x + sqrt(v) xi with
    /// v = s^2(t2) - (alpha(t2) / alpha(t))^2 s^2(t).
    ForwardExact,
    /// Reverse SDE: x <- (1 + f(t) h) x + g^2(t) h s(x, t) + sqrt(g^2(t) h) xi.
    ReverseSde,
    /// Probability flow, Euler: x <- (1 + f(t) h) x + (1/2) g^2(t) h s(x, t).
    FlowEuler,
    /// Probability flow, Heun: the average of that increment at (x, t) and at the
    /// predictor (p, t2).
    FlowHeun,
}

/// Law of the chain of `scheme` after `steps` steps from `start`, for data whose law is
/// the Gaussian mixture `data` (diagonal) and whose component k's score drives component k
/// of the chain: s_k(x, t) = (alpha mu - x) / (alpha^2 sigma^2 + s^2). That score is linear,
/// so [`linear_chain`] gives the law exactly; with one Gaussian it is the scheme's law.
/// Forward schemes do not use the score. Returns the law and f32's TV bound.
pub fn scheme_law(
    scheme: Scheme,
    process: &Process,
    time_at: &dyn Fn(u64) -> f64,
    start: &Mixture,
    data: &Mixture,
    steps: u64,
) -> (Mixture, f64) {
    linear_chain(start, steps, |n, k, i| {
        let (t, t2) = (time_at(n), time_at(n + 1));
        let h = (t - t2).abs();
        let (f, g2) = (process.drift(t), process.g2(t));
        // Component k's score at time t as (slope, offset): s = slope x + offset.
        let score = |t: f64| {
            let (alpha, s2) = (process.alpha(t), process.s2(t));
            let (mu, sd) = (data.means[k][i], data.stds[k][i]);
            let v = alpha * alpha * sd * sd + s2;
            (-1.0 / v, alpha * mu / v)
        };
        match scheme {
            Scheme::ForwardEm => (1.0 - f * h, 0.0, (g2 * h).sqrt()),
            Scheme::ForwardExact => {
                let a = process.alpha(t2) / process.alpha(t);
                (a, 0.0, (process.s2(t2) - a * a * process.s2(t)).sqrt())
            }
            Scheme::ReverseSde => {
                let (sl, off) = score(t);
                (1.0 + f * h + g2 * h * sl, g2 * h * off, (g2 * h).sqrt())
            }
            Scheme::FlowEuler | Scheme::FlowHeun => {
                let (sl, off) = score(t);
                let c = 0.5 * g2 * h;
                // Increment d1 = (f h + c sl) x + c off; the predictor p = x + d1.
                let (d1x, d1c) = (f * h + c * sl, c * off);
                if scheme == Scheme::FlowEuler {
                    return (1.0 + d1x, d1c, 0.0);
                }
                let (sl2, off2) = score(t2);
                let c2 = 0.5 * process.g2(t2) * h;
                let (d2x, d2c) = (process.drift(t2) * h + c2 * sl2, c2 * off2);
                // d2 at p = (1 + d1x) x + d1c.
                let (px, pc) = (1.0 + d1x, d1c);
                (
                    1.0 + 0.5 * (d1x + d2x * px),
                    0.5 * (d1c + d2x * pc + d2c),
                    0.0,
                )
            }
        }
    })
}

/// Discretisation bias, in TV on the bins of `spec`, of reverse dynamics that should be at
/// the exact law `probs` after `steps` steps from the prior N(0, prior_variance I). The
/// chain's law for a mixture is not closed form; it is modelled by the mixture over
/// components k (weights w_k) of the chains driven by component k's own score
/// ([`scheme_law`]): exact for a single Gaussian, and for a mixture the components'
/// biases (near t_end they have all collapsed onto the prior, near t_min separated ones no
/// longer interact). Returns the TV between this law and `probs`, plus f32's bound.
#[allow(clippy::too_many_arguments)]
pub fn reverse_bias(
    scheme: Scheme,
    process: &Process,
    time_at: &dyn Fn(u64) -> f64,
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
    let (model, f32_bias) = scheme_law(scheme, process, time_at, &start, data, steps);
    let model_probs = model.bin_probabilities(&spec.axes, &spec.bins, &spec.range);
    stats::binned_tv(&model_probs, probs) + f32_bias
}
