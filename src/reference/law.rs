//! Laws on grids: initial distributions integrated over cells, the Boltzmann density by
//! quadrature, and the Ornstein–Uhlenbeck transient Gaussian in closed form.

use super::solver::Grid;
use crate::model::Mixture;
use crate::scenario::Init;
use crate::scenario::data::SampleTable;

/// P(lo <= X < hi) for X ~ N(mean, std^2) (std = 0: a point mass, half-open cell).
pub fn normal_mass(lo: f64, hi: f64, mean: f64, std: f64) -> f64 {
    if std <= 0.0 {
        return f64::from(u8::from(lo <= mean && mean < hi));
    }
    let z = |x: f64| (x - mean) / (std * std::f64::consts::SQRT_2);
    // erfc on the side away from the mean keeps far tails accurate.
    let (a, b) = (z(lo), z(hi));
    if a >= 0.0 {
        0.5 * (libm::erfc(a) - libm::erfc(b))
    } else if b <= 0.0 {
        0.5 * (libm::erfc(-b) - libm::erfc(-a))
    } else {
        0.5 * (libm::erf(b) - libm::erf(a))
    }
}

/// Per-axis cell masses of a product law, multiplied out over the grid (cell order).
fn outer(grid: &Grid, per_axis: &[Vec<f64>]) -> Vec<f64> {
    match per_axis {
        [a] => a.clone(),
        [a, b] => a
            .iter()
            .flat_map(|&x| b.iter().map(move |&y| x * y))
            .collect(),
        _ => vec![0.0; grid.len()],
    }
}

fn cell_edges(grid: &Grid, axis: usize, i: usize) -> (f64, f64) {
    let lo = grid.range[axis][0] + i as f64 * grid.width(axis);
    (lo, lo + grid.width(axis))
}

/// Linear (cloud-in-cell) weights of a point between the two nearest cell centres on one
/// axis: the grid mean equals the point (when it lies between the first and last centre).
fn cloud_in_cell(grid: &Grid, axis: usize, x: f64) -> Vec<f64> {
    let n = grid.cells[axis];
    let mut w = vec![0.0; n];
    let s = (x - grid.range[axis][0]) / grid.width(axis) - 0.5;
    if s <= 0.0 {
        w[0] = 1.0;
    } else if s >= (n - 1) as f64 {
        w[n - 1] = 1.0;
    } else {
        let i = s.floor() as usize;
        let f = s - i as f64;
        w[i] = 1.0 - f;
        w[i + 1] = f;
    }
    w
}

fn gaussian_cells(grid: &Grid, axes: &[usize], mean: &[f64], std: &[f64]) -> Vec<f64> {
    let per_axis: Vec<Vec<f64>> = axes
        .iter()
        .enumerate()
        .map(|(k, &a)| {
            (0..grid.cells[k])
                .map(|i| {
                    let (lo, hi) = cell_edges(grid, k, i);
                    normal_mass(lo, hi, mean[a], std[a])
                })
                .collect()
        })
        .collect();
    outer(grid, &per_axis)
}

fn mixture_cells(grid: &Grid, axes: &[usize], m: &Mixture) -> Vec<f64> {
    let mut total = vec![0.0; grid.len()];
    for k in 0..m.components() {
        let c = gaussian_cells(grid, axes, &m.means[k], &m.stds[k]);
        for (t, v) in total.iter_mut().zip(c) {
            *t += m.weights[k] * v;
        }
    }
    total
}

/// The initial law's masses on `grid` (whose axes are the particle axes `axes`), normalised
/// to total 1 on the grid's box. A point is spread linearly over the nearest cell centres
/// (cloud in cell), which keeps its mean; Gaussian, uniform and mixture laws are integrated
/// exactly over each cell; samples are binned. Err when no mass falls on the box.
pub fn initial_masses(
    grid: &Grid,
    axes: &[usize],
    init: &Init,
    samples: Option<&SampleTable>,
) -> Result<Vec<f64>, String> {
    let mut m = match init {
        Init::Point { at } => {
            let per_axis: Vec<Vec<f64>> = axes
                .iter()
                .enumerate()
                .map(|(k, &a)| cloud_in_cell(grid, k, at[a]))
                .collect();
            outer(grid, &per_axis)
        }
        Init::Gaussian { mean, std } => gaussian_cells(grid, axes, mean, std),
        Init::Uniform { low, high } => {
            let per_axis: Vec<Vec<f64>> = axes
                .iter()
                .enumerate()
                .map(|(k, &a)| {
                    (0..grid.cells[k])
                        .map(|i| {
                            let (lo, hi) = cell_edges(grid, k, i);
                            (hi.min(high[a]) - lo.max(low[a])).max(0.0) / (high[a] - low[a])
                        })
                        .collect()
                })
                .collect();
            outer(grid, &per_axis)
        }
        Init::Mixture(mix) => mixture_cells(grid, axes, mix),
        Init::Samples { .. } => {
            let table = samples.ok_or("the sample table is not loaded")?;
            let mut m = vec![0.0; grid.len()];
            let n1 = grid.cells.get(1).copied().unwrap_or(1);
            for r in 0..table.rows {
                let row = table.row(r);
                let mut k = 0;
                let mut inside = true;
                for (g, &a) in axes.iter().enumerate() {
                    let x = f64::from(row[a]);
                    let [lo, hi] = grid.range[g];
                    if !(lo..=hi).contains(&x) {
                        inside = false;
                        break;
                    }
                    let i = (((x - lo) / grid.width(g)) as usize).min(grid.cells[g] - 1);
                    k = if g == 0 { i * n1 } else { k + i };
                }
                if inside {
                    m[k] += 1.0;
                }
            }
            m
        }
    };
    let total: f64 = m.iter().sum();
    if total.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
        return Err("the initial distribution puts no mass inside output.histogram.range".into());
    }
    m.iter_mut().for_each(|v| *v /= total);
    Ok(m)
}

/// exp(-U/T) / Z on `grid`, by the midpoint rule on each cell (normalised on the box).
/// `potential` is U at the cell centres.
pub fn boltzmann_masses(potential: &[f64], temperature: f64) -> Vec<f64> {
    let low = potential.iter().copied().fold(f64::INFINITY, f64::min);
    let mut m: Vec<f64> = potential
        .iter()
        .map(|u| (-(u - low) / temperature).exp())
        .collect();
    let z: f64 = m.iter().sum();
    m.iter_mut().for_each(|v| *v /= z);
    m
}

/// A Gaussian law N(mean, cov) on 1 or 2 axes (cov row-major).
#[derive(Debug, Clone, PartialEq)]
pub struct Gaussian {
    pub mean: Vec<f64>,
    pub cov: Vec<f64>,
}

/// Points per cell (or per the part of a cell within 8 standard deviations) of the midpoint
/// rule over axis 0 in [`gaussian_bins`]; axis 1 is integrated exactly given axis 0.
const QUADRATURE_POINTS: usize = 64;

/// P(X in cell) for every cell of `grid`, X ~ N(mean, cov), *not* renormalised: what lies
/// outside the box is the law's mass outside the range.
pub fn gaussian_bins(grid: &Grid, g: &Gaussian) -> Vec<f64> {
    if grid.axes() == 1 {
        let s = g.cov[0].max(0.0).sqrt();
        return (0..grid.cells[0])
            .map(|i| {
                let (lo, hi) = cell_edges(grid, 0, i);
                normal_mass(lo, hi, g.mean[0], s)
            })
            .collect();
    }
    let (sxx, sxy, syy) = (g.cov[0].max(0.0), g.cov[1], g.cov[3].max(0.0));
    let (mx, my) = (g.mean[0], g.mean[1]);
    let n1 = grid.cells[1];
    let mut out = vec![0.0; grid.len()];
    // Y | X = x ~ N(my + beta (x - mx), s_cond^2).
    let (beta, s_cond) = if sxx > 0.0 {
        (sxy / sxx, (syy - sxy * sxy / sxx).max(0.0).sqrt())
    } else {
        (0.0, syy.sqrt())
    };
    let y_row = |x: f64, weight: f64, row: &mut [f64]| {
        let mu = my + beta * (x - mx);
        for (j, v) in row.iter_mut().enumerate() {
            let (lo, hi) = cell_edges(grid, 1, j);
            *v += weight * normal_mass(lo, hi, mu, s_cond);
        }
    };
    let sx = sxx.sqrt();
    for i in 0..grid.cells[0] {
        let (lo, hi) = cell_edges(grid, 0, i);
        let row = &mut out[i * n1..(i + 1) * n1];
        if sx == 0.0 {
            if lo <= mx && mx < hi {
                y_row(mx, 1.0, row);
            }
            continue;
        }
        let a = lo.max(mx - 8.0 * sx);
        let b = hi.min(mx + 8.0 * sx);
        if a >= b {
            continue;
        }
        let cell = normal_mass(a, b, mx, sx);
        if cell == 0.0 {
            continue;
        }
        // Midpoint nodes weighted by the exact mass of their sub-interval.
        let h = (b - a) / QUADRATURE_POINTS as f64;
        for k in 0..QUADRATURE_POINTS {
            let x0 = a + k as f64 * h;
            let w = normal_mass(x0, x0 + h, mx, sx);
            if w > 0.0 {
                y_row(x0 + 0.5 * h, w, row);
            }
        }
    }
    out
}

/// Eigen-decomposition of a symmetric 1x1 or 2x2 matrix: (eigenvalues, eigenvectors as
/// columns, row-major).
fn symmetric_eigen(m: &[f64]) -> (Vec<f64>, Vec<f64>) {
    if m.len() == 1 {
        return (vec![m[0]], vec![1.0]);
    }
    let (a, b, d) = (m[0], m[1], m[3]);
    if b == 0.0 {
        return (vec![a, d], vec![1.0, 0.0, 0.0, 1.0]);
    }
    let half_trace = 0.5 * (a + d);
    let r = (0.25 * (a - d) * (a - d) + b * b).sqrt();
    let (l1, l2) = (half_trace + r, half_trace - r);
    // Eigenvector of l1: (b, l1 - a), normalised; the other is orthogonal.
    let (vx, vy) = (b, l1 - a);
    let n = (vx * vx + vy * vy).sqrt();
    let (vx, vy) = (vx / n, vy / n);
    (vec![l1, l2], vec![vx, -vy, vy, vx])
}

/// V diag(f(lambda)) V^T.
fn matrix_function(vals: &[f64], vecs: &[f64], f: impl Fn(f64) -> f64) -> Vec<f64> {
    let n = vals.len();
    let mut out = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            out[i * n + j] = (0..n)
                .map(|k| vecs[i * n + k] * f(vals[k]) * vecs[j * n + k])
                .sum();
        }
    }
    out
}

fn mat_mul(a: &[f64], b: &[f64], n: usize) -> Vec<f64> {
    let mut out = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            out[i * n + j] = (0..n).map(|k| a[i * n + k] * b[k * n + j]).sum();
        }
    }
    out
}

/// The law at time t of dX = -M (X - c) dt + sqrt(2 T) dW from X(0) ~ N(m0, S0):
/// mean c + e^{-Mt}(m0 - c), covariance e^{-Mt} S0 e^{-Mt} + T V diag((1 - e^{-2 lambda t}) /
/// lambda) V^T (2t where lambda = 0). `matrix` is M (symmetric, n x n row-major, n = 1, 2).
pub fn ou_transient(
    matrix: &[f64],
    center: &[f64],
    temperature: f64,
    start: &Gaussian,
    t: f64,
) -> Gaussian {
    let n = center.len();
    let (vals, vecs) = symmetric_eigen(matrix);
    let decay = matrix_function(&vals, &vecs, |l| (-l * t).exp());
    let noise = matrix_function(&vals, &vecs, |l| {
        if (l * t).abs() < 1e-12 {
            2.0 * t
        } else {
            -(-2.0 * l * t).exp_m1() / l
        }
    });
    let mean = (0..n)
        .map(|i| {
            center[i]
                + (0..n)
                    .map(|k| decay[i * n + k] * (start.mean[k] - center[k]))
                    .sum::<f64>()
        })
        .collect();
    let spread = mat_mul(&mat_mul(&decay, &start.cov, n), &decay, n);
    let cov = spread
        .iter()
        .zip(&noise)
        .map(|(s, q)| s + temperature * q)
        .collect();
    Gaussian { mean, cov }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_mass_sums_to_one_and_handles_tails() {
        let total: f64 = (-100..100)
            .map(|i| normal_mass(i as f64 * 0.1, (i + 1) as f64 * 0.1, 0.3, 0.7))
            .sum();
        assert!((total - 1.0).abs() < 1e-14);
        let tail = normal_mass(10.0, 11.0, 0.0, 1.0);
        assert!(tail > 0.0 && tail < 1e-22);
        assert_eq!(normal_mass(0.0, 1.0, 0.5, 0.0), 1.0);
        assert_eq!(normal_mass(0.0, 1.0, 1.0, 0.0), 0.0);
    }

    #[test]
    fn correlated_gaussian_bins_match_their_moments() {
        let grid = Grid::new(vec![80, 80], vec![[-4.0, 4.0], [-4.0, 4.0]]);
        let g = Gaussian {
            mean: vec![0.3, -0.2],
            cov: vec![0.5, 0.3, 0.3, 0.4],
        };
        let p = gaussian_bins(&grid, &g);
        let total: f64 = p.iter().sum();
        assert!((total - 1.0).abs() < 1e-6, "{total}");
        let (mut mx, mut my, mut cxy) = (0.0, 0.0, 0.0);
        for (k, c) in grid.centres().iter().enumerate() {
            mx += p[k] * c[0];
            my += p[k] * c[1];
            cxy += p[k] * (c[0] - 0.3) * (c[1] + 0.2);
        }
        assert!((mx - 0.3).abs() < 1e-4 && (my + 0.2).abs() < 1e-4);
        assert!((cxy - 0.3).abs() < 1e-3, "{cxy}");
    }

    #[test]
    fn ou_transient_matches_the_scalar_formula_and_rotates() {
        let start = Gaussian {
            mean: vec![2.0],
            cov: vec![0.0],
        };
        let g = ou_transient(&[1.0], &[0.0], 0.5, &start, 0.7);
        assert!((g.mean[0] - 2.0 * (-0.7f64).exp()).abs() < 1e-14);
        assert!((g.cov[0] - 0.5 * (1.0 - (-1.4f64).exp())).abs() < 1e-14);
        // A coupled 2x2 matrix: the stationary covariance is T M^{-1}.
        let m = [2.0, 0.5, 0.5, 1.0];
        let start = Gaussian {
            mean: vec![1.0, -1.0],
            cov: vec![0.0; 4],
        };
        let g = ou_transient(&m, &[0.0, 0.0], 1.0, &start, 60.0);
        let det = 2.0 - 0.25;
        let inv = [1.0 / det, -0.5 / det, -0.5 / det, 2.0 / det];
        for (a, b) in g.cov.iter().zip(inv) {
            assert!((a - b).abs() < 1e-12, "{a} vs {b}");
        }
    }
}
