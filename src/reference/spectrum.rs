//! The lowest eigenvalues of symmetric matrices, for the rates of the grid solver's operator
//! (`FokkerPlanck::slowest_rates`, see docs/architecture.md, "Boundaries and rates").
//!
//! - A symmetric tridiagonal matrix (a 1D line without a periodic wrap): bisection on Sturm
//!   sequences. The count of negative pivots of the LDLᵀ factorisation of T − x I is the
//!   number of eigenvalues below x, and the computed count is exact for a matrix within a few
//!   ulps of T entry by entry, so each eigenvalue is found to within a few ε‖T‖ (Demmel,
//!   Applied Numerical Linear Algebra, §5.3.4), with no convergence question.
//! - Any sparse symmetric positive semi-definite matrix of small bandwidth (2D grids, periodic
//!   lines): subspace (block inverse) iteration with a shift, S + σ I factored once by banded
//!   Cholesky, Rayleigh–Ritz on the block (the projected matrix diagonalised by Jacobi
//!   rotations) at every iteration, until every wanted Ritz pair has a residual
//!   ‖S v − θ v‖ ≤ 1e-12 ‖S‖. The eigenvalue error is then at most residual² / gap (and at
//!   least the round-off of the Rayleigh quotient, a few ε‖S‖).

/// The `k` smallest eigenvalues (ascending) of the symmetric tridiagonal matrix with
/// diagonal `diag` and off-diagonal `off` (`off[i]` between i and i + 1), by bisection.
pub fn tridiagonal_lowest(diag: &[f64], off: &[f64], k: usize) -> Vec<f64> {
    let n = diag.len();
    let k = k.min(n);
    if n == 0 {
        return Vec::new();
    }
    // Gershgorin bounds.
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    for i in 0..n {
        let r = if i > 0 { off[i - 1].abs() } else { 0.0 } + off.get(i).map_or(0.0, |v| v.abs());
        lo = lo.min(diag[i] - r);
        hi = hi.max(diag[i] + r);
    }
    let norm = lo.abs().max(hi.abs()).max(f64::MIN_POSITIVE);
    let pivmin = f64::MIN_POSITIVE.max(f64::EPSILON * f64::EPSILON * norm);
    // Eigenvalues < x.
    let count = |x: f64| {
        let mut c = 0;
        let mut q = 1.0;
        for i in 0..n {
            let e2 = if i > 0 { off[i - 1] * off[i - 1] } else { 0.0 };
            q = diag[i] - x - if i > 0 { e2 / q } else { 0.0 };
            if q.abs() < pivmin {
                q = -pivmin;
            }
            if q < 0.0 {
                c += 1;
            }
        }
        c
    };
    (0..k)
        .map(|j| {
            let (mut a, mut b) = (lo - pivmin, hi + pivmin);
            // The j-th eigenvalue lies in [a, b): count(a) <= j < count(b).
            while b - a > 2.0 * f64::EPSILON * (a.abs().max(b.abs())) + pivmin {
                let mid = 0.5 * (a + b);
                if mid <= a || mid >= b {
                    break;
                }
                if count(mid) > j {
                    b = mid;
                } else {
                    a = mid;
                }
            }
            0.5 * (a + b)
        })
        .collect()
}

/// A sparse symmetric matrix: its diagonal and its off-diagonal entries (i < j, each once).
pub struct SparseSymmetric {
    pub diag: Vec<f64>,
    pub entries: Vec<(usize, usize, f64)>,
}

impl SparseSymmetric {
    fn multiply(&self, x: &[f64], y: &mut [f64]) {
        for ((y, d), x) in y.iter_mut().zip(&self.diag).zip(x) {
            *y = d * x;
        }
        for &(i, j, v) in &self.entries {
            y[i] += v * x[j];
            y[j] += v * x[i];
        }
    }

    /// max_i sum_j |S_ij|, a bound on ‖S‖₂.
    fn norm(&self) -> f64 {
        let mut rows: Vec<f64> = self.diag.iter().map(|d| d.abs()).collect();
        for &(i, j, v) in &self.entries {
            rows[i] += v.abs();
            rows[j] += v.abs();
        }
        rows.into_iter().fold(0.0, f64::max)
    }

    /// The `k` smallest eigenvalues (ascending) of a positive semi-definite matrix, by
    /// shifted subspace iteration (module doc). The shift σ = 1e-8 ‖S‖ keeps S + σ I
    /// positive definite; the solves' error along the near-null direction does not matter,
    /// since the Ritz values are Rayleigh quotients of S itself.
    pub fn lowest(&self, k: usize) -> Result<Vec<f64>, String> {
        let n = self.diag.len();
        let k = k.min(n);
        if k == 0 {
            return Ok(Vec::new());
        }
        let norm = self.norm().max(f64::MIN_POSITIVE);
        let shift = 1e-8 * norm;
        let chol = BandedCholesky::new(self, shift)?;
        let p = (k + 4).min(n);
        // A start block no eigenvector is orthogonal to: deterministic pseudo-random entries.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut block: Vec<Vec<f64>> = (0..p)
            .map(|_| {
                (0..n)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
                    })
                    .collect()
            })
            .collect();
        let tol = 1e-12 * norm;
        let mut sv = vec![vec![0.0; n]; p];
        for _ in 0..1000 {
            for v in block.iter_mut() {
                chol.solve(v);
            }
            orthonormalise(&mut block);
            for (v, s) in block.iter().zip(sv.iter_mut()) {
                self.multiply(v, s);
            }
            // Rayleigh–Ritz: H = Vᵀ S V.
            let mut h = vec![vec![0.0; p]; p];
            for a in 0..p {
                for b in a..p {
                    let v = dot(&block[a], &sv[b]);
                    h[a][b] = v;
                    h[b][a] = v;
                }
            }
            let (theta, w) = jacobi(h);
            let rotate = |vs: &[Vec<f64>]| -> Vec<Vec<f64>> {
                (0..p)
                    .map(|c| {
                        let mut out = vec![0.0; n];
                        for (a, v) in vs.iter().enumerate() {
                            let f = w[a][c];
                            out.iter_mut().zip(v).for_each(|(o, x)| *o += f * x);
                        }
                        out
                    })
                    .collect()
            };
            block = rotate(&block);
            sv = rotate(&sv);
            let converged = (0..k).all(|c| {
                let r: f64 = sv[c]
                    .iter()
                    .zip(&block[c])
                    .map(|(s, v)| (s - theta[c] * v).powi(2))
                    .sum();
                r.sqrt() <= tol
            });
            if converged {
                return Ok(theta[..k].to_vec());
            }
        }
        Err(format!(
            "the subspace iteration for the {k} lowest eigenvalues did not converge in 1000 iterations"
        ))
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Modified Gram–Schmidt, twice (enough for orthogonality to round-off).
fn orthonormalise(block: &mut [Vec<f64>]) {
    for _ in 0..2 {
        for a in 0..block.len() {
            let (done, rest) = block.split_at_mut(a);
            let v = &mut rest[0];
            for u in done.iter() {
                let c = dot(u, v);
                v.iter_mut().zip(u).for_each(|(x, y)| *x -= c * y);
            }
            let norm = dot(v, v).sqrt();
            if norm > 0.0 {
                v.iter_mut().for_each(|x| *x /= norm);
            }
        }
    }
}

/// Eigenvalues (ascending) and eigenvectors (columns of the returned matrix) of a small
/// dense symmetric matrix, by cyclic Jacobi rotations.
fn jacobi(mut a: Vec<Vec<f64>>) -> (Vec<f64>, Vec<Vec<f64>>) {
    let n = a.len();
    let mut v: Vec<Vec<f64>> = (0..n)
        .map(|i| (0..n).map(|j| if i == j { 1.0 } else { 0.0 }).collect())
        .collect();
    for _ in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i][j] * a[i][j])
            .sum();
        let scale: f64 = (0..n).map(|i| a[i][i] * a[i][i]).sum();
        if off <= f64::EPSILON * f64::EPSILON * scale || off == 0.0 {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                if a[p][q] == 0.0 {
                    continue;
                }
                let theta = (a[q][q] - a[p][p]) / (2.0 * a[p][q]);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                // A <- Jᵀ A J: columns p and q, then rows p and q; V <- V J.
                let turn_columns = |m: &mut Vec<Vec<f64>>| {
                    for row in m.iter_mut() {
                        let (xp, xq) = (row[p], row[q]);
                        row[p] = c * xp - s * xq;
                        row[q] = s * xp + c * xq;
                    }
                };
                turn_columns(&mut a);
                let (low, high) = a.split_at_mut(q);
                for (xp, xq) in low[p].iter_mut().zip(high[0].iter_mut()) {
                    let (vp, vq) = (*xp, *xq);
                    *xp = c * vp - s * vq;
                    *xq = s * vp + c * vq;
                }
                turn_columns(&mut v);
            }
        }
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&x, &y| a[x][x].total_cmp(&a[y][y]));
    let values = order.iter().map(|&i| a[i][i]).collect();
    let vectors = (0..n)
        .map(|r| order.iter().map(|&c| v[r][c]).collect())
        .collect();
    (values, vectors)
}

/// Cholesky factor L of a banded symmetric positive definite matrix, row i holding
/// L[i][i - band ..= i].
struct BandedCholesky {
    band: usize,
    rows: Vec<Vec<f64>>,
}

impl BandedCholesky {
    fn new(s: &SparseSymmetric, shift: f64) -> Result<BandedCholesky, String> {
        let n = s.diag.len();
        let band = s
            .entries
            .iter()
            .map(|&(i, j, _)| i.abs_diff(j))
            .max()
            .unwrap_or(0);
        // rows[i][band + j - i] = A[i][j] for j in i - band ..= i.
        let mut rows = vec![vec![0.0; band + 1]; n];
        for (i, d) in s.diag.iter().enumerate() {
            rows[i][band] = d + shift;
        }
        for &(i, j, v) in &s.entries {
            let (lo, hi) = if i < j { (i, j) } else { (j, i) };
            rows[hi][band + lo - hi] += v;
        }
        for i in 0..n {
            let first = i.saturating_sub(band);
            for j in first..=i {
                let mut sum = rows[i][band + j - i];
                let from = first.max(j.saturating_sub(band));
                for m in from..j {
                    sum -= rows[i][band + m - i] * rows[j][band + m - j];
                }
                if j == i {
                    if sum.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
                        return Err(
                            "the operator is not positive semi-definite (Cholesky pivot <= 0)"
                                .into(),
                        );
                    }
                    rows[i][band] = sum.sqrt();
                } else {
                    rows[i][band + j - i] = sum / rows[j][band];
                }
            }
        }
        Ok(BandedCholesky { band, rows })
    }

    /// x <- (L Lᵀ)^{-1} x.
    fn solve(&self, x: &mut [f64]) {
        let n = x.len();
        let b = self.band;
        for i in 0..n {
            let lo = i.saturating_sub(b);
            let known: f64 = self.rows[i][b + lo - i..b]
                .iter()
                .zip(&x[lo..i])
                .map(|(l, y)| l * y)
                .sum();
            x[i] = (x[i] - known) / self.rows[i][b];
        }
        for i in (0..n).rev() {
            let end = (i + b + 1).min(n);
            let known: f64 = x
                .iter()
                .enumerate()
                .take(end)
                .skip(i + 1)
                .map(|(m, y)| self.rows[m][b + i - m] * y)
                .sum();
            x[i] = (x[i] - known) / self.rows[i][b];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The path Laplacian (2 on the diagonal, −1 off it, Dirichlet ends) has eigenvalues
    /// 4 sin²(πj / (2(n + 1))); both methods find them to a few ε‖S‖ (‖S‖ ≤ 4).
    #[test]
    fn both_methods_find_the_path_laplacian() {
        let n = 50;
        let exact: Vec<f64> = (1..=6)
            .map(|j| {
                4.0 * (std::f64::consts::PI * j as f64 / (2.0 * (n + 1) as f64))
                    .sin()
                    .powi(2)
            })
            .collect();
        let bisect = tridiagonal_lowest(&vec![2.0; n], &vec![-1.0; n - 1], 6);
        let sparse = SparseSymmetric {
            diag: vec![2.0; n],
            entries: (0..n - 1).map(|i| (i, i + 1, -1.0)).collect(),
        }
        .lowest(6)
        .unwrap();
        for ((e, b), s) in exact.iter().zip(&bisect).zip(&sparse) {
            assert!((e - b).abs() <= 32.0 * f64::EPSILON * 4.0, "{e} {b}");
            assert!((e - s).abs() <= 32.0 * f64::EPSILON * 4.0, "{e} {s}");
        }
    }
}
