//! A grid Fokker–Planck solver in f64, 1D and 2D:
//!
//! ```text
//! d rho / dt = div(rho grad U) + T laplacian rho = div(T e^{-U/T} grad(rho e^{U/T}))
//! ```
//!
//! Finite volumes on a uniform box of cells holding *masses* m_i. The flux through the face
//! between neighbouring cells i and i+1 along an axis with spacing h is Scharfetter–Gummel's
//!
//! ```text
//! f = (T / h^2) [B(d) m_i - B(-d) m_{i+1}],   d = (U_{i+1} - U_i) / T,   B(z) = z / (e^z - 1),
//! ```
//!
//! which vanishes exactly for m proportional to e^{-U/T} (so the discrete stationary state is
//! the Boltzmann density at the cell centres), reduces to upwinding as T -> 0 and to central
//! differences as U flattens. Faces on the boundary carry no flux, so no mass is lost.
//!
//! Time: each step is split by axis (Lie splitting, the order alternating from step to step)
//! and each axis is solved by backward Euler, `(I - dt A_axis) m' = m`. Every such matrix is
//! an M-matrix whose columns sum to 1: its inverse is non-negative and preserves the total, so
//! the density can never turn negative and the mass is exact to round-off, at any dt. Each
//! axis system is a set of independent tridiagonal lines; the Thomas factors are computed once
//! per dt and reused, so a step costs a few multiply-adds per cell and axis. The same step is
//! a Markov kernel leaving e^{-U/T} invariant, so the discrete free energy
//! `sum m U + T sum m log(m / vol)` never increases (data-processing inequality).
//!
//! Accuracy: second order in h where the cell Péclet number |dU| / T is small, first order
//! in dt (backward Euler and the splitting).

use rayon::prelude::*;

/// A uniform grid of `cells` over `range`, one entry per axis (1 or 2 axes). Cell `[i, j]`
/// is `i * cells[1] + j` (numpy order, axis 0 slowest).
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    pub cells: Vec<usize>,
    pub range: Vec<[f64; 2]>,
}

impl Grid {
    pub fn new(cells: Vec<usize>, range: Vec<[f64; 2]>) -> Grid {
        debug_assert!(cells.len() == range.len() && (1..=2).contains(&cells.len()));
        Grid { cells, range }
    }

    pub fn axes(&self) -> usize {
        self.cells.len()
    }

    pub fn len(&self) -> usize {
        self.cells.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Cell width along `axis`.
    pub fn width(&self, axis: usize) -> f64 {
        (self.range[axis][1] - self.range[axis][0]) / self.cells[axis] as f64
    }

    /// Volume (length, area) of one cell.
    pub fn volume(&self) -> f64 {
        (0..self.axes()).map(|a| self.width(a)).product()
    }

    pub fn centre(&self, axis: usize, i: usize) -> f64 {
        self.range[axis][0] + (i as f64 + 0.5) * self.width(axis)
    }

    /// The coordinates of every cell centre, in cell order.
    pub fn centres(&self) -> Vec<Vec<f64>> {
        let n1 = self.cells.get(1).copied().unwrap_or(1);
        (0..self.len())
            .map(|k| {
                let mut x = vec![self.centre(0, k / n1)];
                if self.axes() == 2 {
                    x.push(self.centre(1, k % n1));
                }
                x
            })
            .collect()
    }
}

/// B(z) = z / (e^z - 1), B(0) = 1; the Bernoulli function of the Scharfetter–Gummel flux.
pub fn bernoulli(z: f64) -> f64 {
    if z.abs() < 1e-8 {
        1.0 - 0.5 * z
    } else {
        z / z.exp_m1()
    }
}

/// Face rates of one face: `(right, left)`, so that the mass flux from cell i to i+1 is
/// `right * m_i - left * m_{i+1}`.
fn face_rates(u_i: f64, u_next: f64, temperature: f64, h: f64) -> (f64, f64) {
    let du = u_next - u_i;
    if temperature > 0.0 {
        let d = du / temperature;
        let k = temperature / (h * h);
        (k * bernoulli(d), k * bernoulli(-d))
    } else {
        // The T -> 0 limit of the same flux: upwinding of the drift -dU/dx.
        ((-du).max(0.0) / (h * h), du.max(0.0) / (h * h))
    }
}

/// Thomas factors of one axis for one dt: per cell the sub-diagonal `a`, the pivot inverse
/// and the modified super-diagonal `c'`, laid out like the masses.
struct AxisFactors {
    sub: Vec<f64>,
    inv: Vec<f64>,
    sup: Vec<f64>,
    /// Every line has the same factors (a potential separable between the axes, e.g. the
    /// double well): the vectors hold one line, indexed by position along the axis, which
    /// takes most of the memory traffic out of a step.
    shared: bool,
}

impl AxisFactors {
    /// Keeps one line when all lines agree to round-off (1e-13 relative).
    fn share_if_uniform(
        self,
        len: usize,
        lines: usize,
        at: impl Fn(usize, usize) -> usize,
    ) -> Self {
        let same = |v: &[f64]| {
            (0..lines).all(|l| {
                (0..len).all(|i| {
                    let (a, b) = (v[at(l, i)], v[at(0, i)]);
                    (a - b).abs() <= 1e-13 * a.abs().max(b.abs())
                })
            })
        };
        if lines > 1 && same(&self.sub) && same(&self.inv) && same(&self.sup) {
            let line = |v: &[f64]| (0..len).map(|i| v[at(0, i)]).collect();
            AxisFactors {
                sub: line(&self.sub),
                inv: line(&self.inv),
                sup: line(&self.sup),
                shared: true,
            }
        } else {
            self
        }
    }
}

/// The solver's state: masses on the grid at `time`.
pub struct FokkerPlanck {
    grid: Grid,
    temperature: f64,
    potential: Vec<f64>,
    mass: Vec<f64>,
    time: f64,
    dt_max: f64,
    steps: u64,
    factors: Option<(f64, Vec<AxisFactors>)>,
}

impl FokkerPlanck {
    /// `potential` holds U at every cell centre, `mass` the initial masses (any total; it is
    /// kept). `dt_max` bounds the time step (the step actually used divides each requested
    /// interval evenly).
    pub fn new(
        grid: Grid,
        temperature: f64,
        potential: Vec<f64>,
        mass: Vec<f64>,
        dt_max: f64,
    ) -> FokkerPlanck {
        debug_assert_eq!(potential.len(), grid.len());
        debug_assert_eq!(mass.len(), grid.len());
        FokkerPlanck {
            grid,
            temperature,
            potential,
            mass,
            time: 0.0,
            dt_max,
            steps: 0,
            factors: None,
        }
    }

    pub fn grid(&self) -> &Grid {
        &self.grid
    }

    pub fn time(&self) -> f64 {
        self.time
    }

    pub fn mass(&self) -> &[f64] {
        &self.mass
    }

    /// Time steps taken so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Discrete free energy `sum m U + T sum m log(m / vol)` (0 log 0 = 0), for total mass 1.
    pub fn free_energy(&self) -> f64 {
        free_energy(
            &self.mass,
            &self.potential,
            self.temperature,
            self.grid.volume(),
        )
    }

    /// Advances to `time` (no-op if already there or past it) in equal steps of at most
    /// `dt_max`.
    pub fn advance_to(&mut self, time: f64) {
        let span = time - self.time;
        if span.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
            return;
        }
        let n = (span / self.dt_max * (1.0 - 1e-12)).ceil().max(1.0) as u64;
        let dt = span / n as f64;
        self.factor(dt);
        for _ in 0..n {
            self.step_once();
        }
        self.time = time;
    }

    fn factor(&mut self, dt: f64) {
        if let Some((have, _)) = &self.factors {
            if (have - dt).abs() <= 1e-12 * dt {
                return;
            }
        }
        let factors = (0..self.grid.axes())
            .map(|a| self.axis_factors(a, dt))
            .collect();
        self.factors = Some((dt, factors));
    }

    /// Builds `(I - dt A_axis)` line by line and factors it.
    fn axis_factors(&self, axis: usize, dt: f64) -> AxisFactors {
        let n0 = self.grid.cells[0];
        let n1 = self.grid.cells.get(1).copied().unwrap_or(1);
        let (len, lines, stride, line_stride) = if axis == 0 {
            (n0, n1, n1, 1)
        } else {
            (n1, n0, 1, n1)
        };
        let h = self.grid.width(axis);
        let total = self.grid.len();
        let (mut sub, mut inv, mut sup) = (vec![0.0; total], vec![0.0; total], vec![0.0; total]);
        for line in 0..lines {
            let at = |i: usize| line * line_stride + i * stride;
            let mut prev_c = 0.0;
            for i in 0..len {
                // Face i-1/2 (into cell i from the left) and i+1/2.
                let (r_left, l_left) = if i > 0 {
                    face_rates(
                        self.potential[at(i - 1)],
                        self.potential[at(i)],
                        self.temperature,
                        h,
                    )
                } else {
                    (0.0, 0.0)
                };
                let (r_right, l_right) = if i + 1 < len {
                    face_rates(
                        self.potential[at(i)],
                        self.potential[at(i + 1)],
                        self.temperature,
                        h,
                    )
                } else {
                    (0.0, 0.0)
                };
                let a = -dt * r_left;
                let b = 1.0 + dt * (l_left + r_right);
                let c = -dt * l_right;
                let pivot = b - a * prev_c;
                let k = at(i);
                sub[k] = a;
                inv[k] = 1.0 / pivot;
                sup[k] = c / pivot;
                prev_c = sup[k];
            }
        }
        AxisFactors {
            sub,
            inv,
            sup,
            shared: false,
        }
        .share_if_uniform(len, lines, |line, i| line * line_stride + i * stride)
    }

    fn step_once(&mut self) {
        let Some((_, factors)) = &self.factors else {
            return;
        };
        let n1 = self.grid.cells.get(1).copied().unwrap_or(1);
        let order: &[usize] = match (self.grid.axes(), self.steps % 2) {
            (1, _) => &[0],
            (_, 0) => &[0, 1],
            _ => &[1, 0],
        };
        for &axis in order {
            let f = &factors[axis];
            if axis == 1 {
                solve_rows(&mut self.mass, f, n1);
            } else {
                solve_columns(&mut self.mass, f, n1);
            }
        }
        self.steps += 1;
    }
}

/// Axis 1: every row is a contiguous tridiagonal line. Rows are taken in groups whose
/// recurrences are interleaved, so that the sweep is not bound by the latency of one chain.
fn solve_rows(mass: &mut [f64], f: &AxisFactors, n1: usize) {
    const GROUP: usize = 8;
    if f.shared {
        mass.par_chunks_mut(n1 * GROUP).for_each(|m| {
            let rows = m.len() / n1;
            for g in 0..rows {
                m[g * n1] *= f.inv[0];
            }
            for i in 1..n1 {
                let (a, inv) = (f.sub[i], f.inv[i]);
                for g in 0..rows {
                    let k = g * n1 + i;
                    m[k] = (m[k] - a * m[k - 1]) * inv;
                }
            }
            for i in (0..n1 - 1).rev() {
                let c = f.sup[i];
                for g in 0..rows {
                    let k = g * n1 + i;
                    m[k] -= c * m[k + 1];
                }
            }
        });
        return;
    }
    mass.par_chunks_mut(n1 * GROUP)
        .zip(f.sub.par_chunks(n1 * GROUP))
        .zip(
            f.inv
                .par_chunks(n1 * GROUP)
                .zip(f.sup.par_chunks(n1 * GROUP)),
        )
        .for_each(|((m, sub), (inv, sup))| {
            let rows = m.len() / n1;
            for g in 0..rows {
                m[g * n1] *= inv[g * n1];
            }
            for i in 1..n1 {
                for g in 0..rows {
                    let k = g * n1 + i;
                    m[k] = (m[k] - sub[k] * m[k - 1]) * inv[k];
                }
            }
            for i in (0..n1 - 1).rev() {
                for g in 0..rows {
                    let k = g * n1 + i;
                    m[k] -= sup[k] * m[k + 1];
                }
            }
        });
}

/// Axis 0: the lines are columns. Blocks of columns are gathered into contiguous scratch
/// (row by row, so each sweep runs vectorised across the block's columns), solved in
/// parallel, and scattered back.
fn solve_columns(mass: &mut [f64], f: &AxisFactors, n1: usize) {
    const BLOCK: usize = 64;
    let n0 = mass.len() / n1;
    let blocks = n1.div_ceil(BLOCK);
    let solved: Vec<Vec<f64>> = (0..blocks)
        .into_par_iter()
        .map(|b| {
            let lo = b * BLOCK;
            let w = (lo + BLOCK).min(n1) - lo;
            let mut m = Vec::with_capacity(n0 * w);
            for i in 0..n0 {
                m.extend_from_slice(&mass[i * n1 + lo..i * n1 + lo + w]);
            }
            if f.shared {
                for v in &mut m[..w] {
                    *v *= f.inv[0];
                }
                for i in 1..n0 {
                    let (prev, row) = m[(i - 1) * w..(i + 1) * w].split_at_mut(w);
                    let (a, inv) = (f.sub[i], f.inv[i]);
                    for (v, p) in row.iter_mut().zip(prev.iter()) {
                        *v = (*v - a * p) * inv;
                    }
                }
                for i in (0..n0 - 1).rev() {
                    let (row, next) = m[i * w..(i + 2) * w].split_at_mut(w);
                    let c = f.sup[i];
                    for (v, n) in row.iter_mut().zip(next.iter()) {
                        *v -= c * n;
                    }
                }
                return m;
            }
            for (v, inv) in m[..w].iter_mut().zip(&f.inv[lo..lo + w]) {
                *v *= inv;
            }
            for i in 1..n0 {
                let (prev, row) = m[(i - 1) * w..(i + 1) * w].split_at_mut(w);
                let k = i * n1 + lo;
                for j in 0..w {
                    row[j] = (row[j] - f.sub[k + j] * prev[j]) * f.inv[k + j];
                }
            }
            for i in (0..n0 - 1).rev() {
                let (row, next) = m[i * w..(i + 2) * w].split_at_mut(w);
                let k = i * n1 + lo;
                for j in 0..w {
                    row[j] -= f.sup[k + j] * next[j];
                }
            }
            m
        })
        .collect();
    mass.par_chunks_mut(n1).enumerate().for_each(|(i, row)| {
        for (b, block) in solved.iter().enumerate() {
            let lo = b * BLOCK;
            let w = block.len() / n0;
            row[lo..lo + w].copy_from_slice(&block[i * w..(i + 1) * w]);
        }
    });
}

/// `sum m U + T sum m log(m / vol)` with 0 log 0 = 0: the free energy of the piecewise
/// constant density m / vol (masses summing to 1).
pub fn free_energy(mass: &[f64], potential: &[f64], temperature: f64, volume: f64) -> f64 {
    let mut energy = 0.0;
    let mut entropy = 0.0;
    for (&m, &u) in mass.iter().zip(potential) {
        if m > 0.0 {
            energy += m * u;
            entropy += m * (m / volume).ln();
        }
    }
    energy + temperature * entropy
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quadratic_2d(n: usize) -> (Grid, Vec<f64>) {
        let grid = Grid::new(vec![n, n], vec![[-3.0, 3.0], [-3.0, 3.0]]);
        let u = grid
            .centres()
            .iter()
            .map(|x| 0.5 * (x[0] * x[0] + 2.0 * x[1] * x[1]))
            .collect();
        (grid, u)
    }

    #[test]
    fn bernoulli_is_smooth_through_zero_and_finite_far_out() {
        assert_eq!(bernoulli(0.0), 1.0);
        assert!((bernoulli(1e-9) - bernoulli(2e-8)).abs() < 1e-8);
        assert!((bernoulli(1e-3) - 1e-3 / 1e-3f64.exp_m1()).abs() < 1e-15);
        assert_eq!(bernoulli(800.0), 0.0);
        assert!((bernoulli(-800.0) - 800.0).abs() < 1e-9);
    }

    #[test]
    fn boltzmann_is_exactly_stationary_and_mass_is_kept() {
        let (grid, u) = quadratic_2d(40);
        let t = 0.7;
        let mut m: Vec<f64> = u.iter().map(|u| (-u / t).exp()).collect();
        let z: f64 = m.iter().sum();
        m.iter_mut().for_each(|v| *v /= z);
        let start = m.clone();
        let mut fp = FokkerPlanck::new(grid, t, u, m, 0.05);
        fp.advance_to(1.0);
        for (a, b) in fp.mass().iter().zip(&start) {
            assert!((a - b).abs() <= 1e-14, "{a} vs {b}");
        }
    }

    #[test]
    fn zero_temperature_moves_mass_downhill_and_keeps_it() {
        let grid = Grid::new(vec![50], vec![[-1.0, 1.0]]);
        let u: Vec<f64> = grid.centres().iter().map(|x| 0.5 * x[0] * x[0]).collect();
        let mut m = vec![0.0; 50];
        m[45] = 1.0;
        let mut fp = FokkerPlanck::new(grid, 0.0, u, m, 0.01);
        fp.advance_to(3.0);
        let total: f64 = fp.mass().iter().sum();
        assert!((total - 1.0).abs() < 1e-13);
        let mean: f64 = fp
            .mass()
            .iter()
            .enumerate()
            .map(|(i, m)| m * fp.grid().centre(0, i))
            .sum();
        assert!(mean.abs() < 0.1, "{mean}");
        assert!(fp.mass().iter().all(|&v| v >= 0.0));
    }
}
