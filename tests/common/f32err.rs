//! f32 error models shared by the tests that compare the GPU with its f64 twins.

/// f32 unit round-off, 2^-24.
pub const U: f64 = f32::EPSILON as f64 / 2.0;

/// Absolute error of one f32 Box–Muller normal r cos(2 pi v), r = sqrt(-2 log u), from the
/// same 24-bit u, v as the twin's: with f32 log, sqrt, cos within 4 ulp (8 u) each (true of
/// lavapipe's LLVM and of GPU drivers' precise paths; the WGSL spec allows more), r is
/// within 4 + 1 + 8 u relative, the angle 2 pi v within 2 u, so cos(angle) within
/// 8 u + 2 pi 2 u absolute; with r <= sqrt(2 ln 2^24) = 5.8, |error| <= 5.8 (13 + 8 + 13) u
/// < 200 u.
pub const NORMAL_ERROR: f64 = 200.0 * U;

/// Error bound of a Gaussian mixture's score (or minus its potential's gradient) computed in
/// f32 at x, max norm, first order in u: each exponent
/// l_k = log w_k - sum log sigma - z^2 / 2 is summed from 2 dim + 2 rounded terms,
/// (2 dim + 4) u of their size E absolute, and exp is within 8 u, so every responsibility
/// is within 2 ((2 dim + 4) E + 8) u relative, times the largest component score
/// S_k^-1 (x - mu_k), which is itself within 3 u.
pub fn mixture_score_error(m: &fokker::model::Mixture, x: &[f64]) -> f64 {
    let d = x.len() as f64;
    let (mut exponent, mut score) = (0.0f64, 0.0f64);
    for k in 0..m.components() {
        let (mu, sd) = (&m.means[k], &m.stds[k]);
        let z2: f64 = (0..x.len()).map(|i| ((x[i] - mu[i]) / sd[i]).powi(2)).sum();
        let logs: f64 = sd.iter().map(|s| s.ln().abs()).sum();
        exponent = exponent.max(m.weights[k].ln().abs() + logs + 0.5 * z2);
        for i in 0..x.len() {
            score = score.max(((x[i] - mu[i]) / (sd[i] * sd[i])).abs());
        }
    }
    U * (2.0 * ((2.0 * d + 4.0) * exponent + 8.0) + 3.0) * score
}
