//! Bounds on how far the f32 kernel sum (shaders/kernel_sum.wgsl) lies from its f64 twin,
//! per query, from the twin's own weights:
//! the GPU works on the same f32 inputs in f32 (u = 2^-24). For source j:
//! - d2_j = |s q - y_j|^2: the product s q (u |s q|), the difference (u), its square (u)
//!   and dim - 1 additions give |delta d2_j| <= u ((dim + 5) d2_j + 2 sum_i |D_i| |s q_i|),
//!   D = s q - y_j;
//! - the weight exp2((shift - d2_j) c2), c2 = log2(e) / (2 v) rounded (u), a difference and a
//!   product (3 u of the exponent), exp2 within 4 ulp (8 u; true of lavapipe and GPU drivers'
//!   precise paths, the WGSL spec allows more); a tile summed at an earlier, larger shift is
//!   rescaled by one more such exp2 of the shift difference, at most min(REDO, the first
//!   tile's smallest d2 - the smallest d2) c2: relative error
//!   rho_j = delta d2_j / (2 v) + 3 u (d2_j - d2_min) / (2 v) + 8 u + rescale.
//!
//! The mean sum_j w_j p_j / sum_j w_j moves by at most sum_j w~_j rho_j |p_j - m| under
//! those (w~ the normalised weights: a factor common to all cancels); the log by the
//! shift's own error delta d2_min / (2 v) plus sum_j w~_j rho_j. The sums: tiles of TILE
//! terms summed in f32 then combined with Kahan compensation (2 u). A tile's sum is within
//! lambda sqrt(TILE) u of sum |terms| but with probability 2 exp(-lambda^2 / 2) (Higham and
//! Mary's probabilistic bound, rounding errors independent and of mean zero); lambda = 7
//! makes that 5e-11 per sum, under 1e-6 over the sums of any one test. So sums are within
//! SUM_ROUNDING = (7 sqrt(TILE) + 3) u of sum |terms|, the division, log and store add a few u.

/// f32 unit round-off.
pub const U: f64 = f32::EPSILON as f64 / 2.0;

/// Sources per tile (shaders/kernel_sum.wgsl) and the exponent (base 2) beyond which a tile
/// is summed again with its own shift.
pub const TILE: f64 = 256.0;
pub const REDO: f64 = 64.0;

/// Relative error of an f32 sum of TILE terms (probabilistic, lambda = 7), the Kahan
/// combination of tiles (2 u) and a product (u), relative to the sum of |terms|.
pub const SUM_ROUNDING: f64 = (7.0 * 16.0 + 3.0) * U;

/// Per query (rows of `dim` in `queries`, already scaled): bounds on |gpu - twin| for each
/// coordinate of the kernel mean over `sources` (weighting `payload`, default the sources)
/// at `variance`, and for the log of the sum of weights (module notes).
pub fn kernel_sum_bounds(
    dim: usize,
    queries: &[f64],
    sources: &[f64],
    payload: Option<&[f64]>,
    variance: f64,
) -> (Vec<f64>, Vec<f64>) {
    let d = dim;
    let m = sources.len() / d;
    let payload = payload.unwrap_or(sources);
    let v2 = 2.0 * variance;
    let (mut mean_bounds, mut log_bounds) = (Vec::new(), Vec::new());
    let (mut d2, mut dd2) = (vec![0.0; m], vec![0.0; m]);
    for sq in queries.chunks_exact(d) {
        for j in 0..m {
            let (mut sum, mut cross) = (0.0, 0.0);
            for i in 0..d {
                let diff = sq[i] - sources[j * d + i];
                sum += diff * diff;
                cross += diff.abs() * sq[i].abs();
            }
            d2[j] = sum;
            dd2[j] = U * ((d as f64 + 5.0) * sum + 2.0 * cross);
        }
        let (jmin, &dmin) = d2
            .iter()
            .enumerate()
            .min_by(|a, b| a.1.total_cmp(b.1))
            .expect("sources");
        let first_tile = d2[..m.min(TILE as usize)]
            .iter()
            .copied()
            .fold(f64::INFINITY, f64::min);
        let shift_gap = ((first_tile - dmin) / v2).min(REDO * std::f64::consts::LN_2);
        let rescale = 3.0 * U * shift_gap + 8.0 * U;
        let w: Vec<f64> = d2.iter().map(|x| (-(x - dmin) / v2).exp()).collect();
        let total: f64 = w.iter().sum();
        let rho = |j: usize| dd2[j] / v2 + 3.0 * U * (d2[j] - dmin) / v2 + 8.0 * U + rescale;
        let weighted_rho: f64 = (0..m).map(|j| w[j] / total * rho(j)).sum();
        for i in 0..d {
            let p = |j: usize| payload[j * d + i];
            let mean: f64 = (0..m).map(|j| w[j] * p(j)).sum::<f64>() / total;
            let spread: f64 = (0..m)
                .map(|j| w[j] / total * rho(j) * (p(j) - mean).abs())
                .sum();
            let size: f64 = (0..m).map(|j| w[j] / total * p(j).abs()).sum();
            mean_bounds.push(spread + SUM_ROUNDING * (size + mean.abs()) + 2.0 * U * mean.abs());
        }
        let log = -dmin / v2 + total.ln();
        log_bounds
            .push(dd2[jmin] / v2 + weighted_rho + SUM_ROUNDING + 9.0 * U * log.abs() + 8.0 * U);
    }
    (mean_bounds, log_bounds)
}
