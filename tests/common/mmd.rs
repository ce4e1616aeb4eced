//! The noise floor of the MMD^2 diagnostic (observe/mmd.rs: the V-statistic
//! ||mu^_x - mu_y||^2 in the RKHS of k(a, b) = exp(-|a - b|^2 / (2 h^2)), the particles'
//! empirical embedding mu^_x against the target samples' mu_y): how large it is for N
//! particles drawn independently from a law P, the target set Y held fixed.
//!
//! - Mean: E mu^_x = mu_P and E ||mu^_x - mu_P||^2 = (E k(x, x) - E k(x, x')) / N for x, x'
//!   independent draws of P, so E MMD^2 = ||mu_P - mu_y||^2 + (1 - E_P k(x, x')) / N
//!   (k(x, x) = 1), exact. By Jensen E MMD <= sqrt(E MMD^2).
//! - Fluctuation: MMD = ||mu^_x - mu_y|| is a function of N independent particles; one moved
//!   moves mu^_x by ||phi(x) - phi(x')|| / N = sqrt(2 - 2 k(x, x')) / N <= sqrt(2) / N, so by
//!   McDiarmid P(MMD - E MMD > eps) <= exp(-2 eps^2 / (N 2 / N^2)) = exp(-N eps^2): with
//!   eps = sqrt(ln(1 / FALSE_ALARM) / N) an independent sample exceeds
//!   sqrt(E MMD^2) + eps with probability at most FALSE_ALARM.
//!
//! A flow that claims to carry the particles onto P must end at least that close (it
//! minimises the very discrepancy that an independent sample only reaches by chance); a
//! start that is farther than the floor is one the diagnostic tells apart from P.

use super::stats::FALSE_ALARM;

fn kernel(a: &[f64], b: &[f64], h: f64) -> f64 {
    let d2: f64 = a.iter().zip(b).map(|(p, q)| (p - q).powi(2)).sum();
    (-d2 / (2.0 * h * h)).exp()
}

/// Largest MMD^2 an independent sample of `n` particles whose law has embedding terms
/// `pp` = E_P k(x, x'), `py` = mean over Y of E_P k(x, y), `yy` = mean over Y x Y of k
/// shows, but with probability FALSE_ALARM (module notes).
pub fn floor(n: u64, pp: f64, py: f64, yy: f64) -> f64 {
    let n = n as f64;
    let gap = (pp - 2.0 * py + yy).max(0.0);
    let mean_sq = gap + (1.0 - pp) / n;
    (mean_sq.sqrt() + ((1.0 / FALSE_ALARM).ln() / n).sqrt()).powi(2)
}

/// Mean of k over all pairs of rows of `a` and `b` (`dim` per row).
pub fn mean_kernel(a: &[f64], b: &[f64], dim: usize, h: f64) -> f64 {
    let mut total = 0.0;
    for p in a.chunks_exact(dim) {
        for q in b.chunks_exact(dim) {
            total += kernel(p, q, h);
        }
    }
    total / ((a.len() / dim) as f64 * (b.len() / dim) as f64)
}

/// [`floor`] for P the empirical law of the target set `y` itself (a sample-table
/// target): ||mu_P - mu_y|| = 0 and E_P k(x, x') is the mean of the table's kernel matrix.
pub fn floor_empirical(n: u64, y: &[f64], dim: usize, h: f64) -> f64 {
    let yy = mean_kernel(y, y, dim, h);
    floor(n, yy, yy, yy)
}

/// [`floor`] for P = N(m, diag(s^2)) against the target set `y`, in closed form: the
/// Gaussian kernel is h^d (2 pi)^(d/2) times the N(0, h^2 I) density, so
/// E_P k(x, y) = prod_i (h^2 / (h^2 + s_i^2))^(1/2) exp(-(y_i - m_i)^2 / (2 (h^2 + s_i^2)))
/// and E_P k(x, x') = prod_i (h^2 / (h^2 + 2 s_i^2))^(1/2) (x - x' ~ N(0, 2 diag(s^2))).
pub fn floor_gaussian(n: u64, m: &[f64], s: &[f64], y: &[f64], h: f64) -> f64 {
    let d = m.len();
    let h2 = h * h;
    let pp: f64 = s.iter().map(|s| (h2 / (h2 + 2.0 * s * s)).sqrt()).product();
    let rows = (y.len() / d) as f64;
    let py: f64 = y
        .chunks_exact(d)
        .map(|r| {
            (0..d)
                .map(|i| {
                    let v = h2 + s[i] * s[i];
                    (h2 / v).sqrt() * (-(r[i] - m[i]).powi(2) / (2.0 * v)).exp()
                })
                .product::<f64>()
        })
        .sum::<f64>()
        / rows;
    floor(n, pp, py, mean_kernel(y, y, d, h))
}
