//! f32 error models shared by the tests that compare the GPU with its f64 twins, and the
//! matrix norm bound that carries such an error through a step.

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
/// (2 dim + 4) u of their size E absolute, plus 2 u where the exponent is taken in base 2
/// (shaders/diffusion.wgsl: z^2 times log2 e / 2, the constant and the product each
/// rounded; the host's log2 e log w_k is one rounding like the natural one), and exp is
/// within 8 u, so every responsibility is within 2 ((2 dim + 6) E + 8) u relative, times the largest component score
/// S_k^-1 (x - mu_k), which is itself within 3 u. The responsibilities' numerator and
/// total are each summed over K terms (within (K - 1) u relative) and rescaled at most K times
/// by the running log-sum-exp shift (1 u each; the shift's own exp error cancels in the
/// ratio), adding 4 K u to the responsibilities' relative error.
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
    let k = m.components() as f64;
    U * (2.0 * ((2.0 * d + 6.0) * exponent + 8.0) + 4.0 * k + 3.0) * score
}

/// An upper bound on the spectral norm of `m`: with S and A its symmetric and antisymmetric
/// parts, |m|_2 <= rho(S) + |A|_F. Cyclic Jacobi rotations (orthogonal) bring S to D + R,
/// D diagonal, and by Weyl's inequality every eigenvalue of S is within |R|_F of an entry of
/// D; 1e-12 of |S|_F covers the rotations' own rounding.
pub fn spectral_norm_bound(m: &[Vec<f64>]) -> f64 {
    let n = m.len();
    let mut s: Vec<Vec<f64>> = (0..n)
        .map(|i| (0..n).map(|j| 0.5 * (m[i][j] + m[j][i])).collect())
        .collect();
    let anti: f64 = (0..n)
        .flat_map(|i| (0..n).map(move |j| (i, j)))
        .map(|(i, j)| (0.5 * (m[i][j] - m[j][i])).powi(2))
        .sum::<f64>()
        .sqrt();
    let frobenius = |s: &[Vec<f64>], off: bool| -> f64 {
        (0..n)
            .flat_map(|i| (0..n).map(move |j| (i, j)))
            .filter(|&(i, j)| !off || i != j)
            .map(|(i, j)| s[i][j] * s[i][j])
            .sum::<f64>()
            .sqrt()
    };
    let size = frobenius(&s, false);
    for _ in 0..30 {
        if frobenius(&s, true) <= 1e-15 * size {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                if s[p][q] == 0.0 {
                    continue;
                }
                let theta = (s[q][q] - s[p][p]) / (2.0 * s[p][q]);
                let t = if theta >= 0.0 { 1.0 } else { -1.0 }
                    / (theta.abs() + (theta * theta + 1.0).sqrt());
                let c = 1.0 / (t * t + 1.0).sqrt();
                let sn = t * c;
                for row in s.iter_mut() {
                    let (kp, kq) = (row[p], row[q]);
                    row[p] = c * kp - sn * kq;
                    row[q] = sn * kp + c * kq;
                }
                let (head, tail) = s.split_at_mut(q);
                for (a, b) in head[p].iter_mut().zip(tail[0].iter_mut()) {
                    let (pk, qk) = (*a, *b);
                    *a = c * pk - sn * qk;
                    *b = sn * pk + c * qk;
                }
            }
        }
    }
    let radius = (0..n).map(|i| s[i][i].abs()).fold(0.0, f64::max);
    radius + frobenius(&s, true) + 1e-12 * size + anti
}

/// One step of an error bound carried two ways (tests/langevin_gpu.rs, `twin_with_bounds`):
/// per coordinate, e_i <- sum_j |J_ij| e_j + r, and in the 2-norm, e2 <- `two` e2 +
/// sqrt(dim) r with `two` >= |J|_2; then each is capped by the other (|v_i| <= |v|_2 <=
/// |e|_2).
pub fn carry_bounds(jac: &[Vec<f64>], two: f64, r: f64, each: &mut [f64], e2: &mut f64) {
    let d = each.len();
    let next: Vec<f64> = jac
        .iter()
        .map(|row| {
            row.iter()
                .zip(each.iter())
                .map(|(j, e)| j.abs() * e)
                .sum::<f64>()
                + r
        })
        .collect();
    *e2 = two * *e2 + (d as f64).sqrt() * r;
    for (e, n) in each.iter_mut().zip(next) {
        *e = n.min(*e2);
    }
    *e2 = e2.min(each.iter().map(|e| e * e).sum::<f64>().sqrt());
}
