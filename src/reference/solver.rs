//! A grid Fokker–Planck solver in f64, 1D and 2D, for the Itô SDE
//! dX = f(X, t) dt + sqrt(2 D(X, t)) dW (D a scalar, the same noise on every axis):
//!
//! ```text
//! d rho / dt = -div(f rho) + laplacian(D rho),   no flux through the walls of the box.
//! ```
//!
//! Overdamped Langevin dynamics is the case f = -grad U, D = T (the temperature, the same at
//! every point), where the equation reads d rho / dt = div(T e^{-U/T} grad(rho e^{U/T})).
//!
//! # Space: finite volumes on masses, exponentially fitted fluxes
//!
//! The box is a uniform grid of cells holding *masses* m_i (rho_i times the cell volume).
//! Along an axis with spacing h, the flux (per unit area) through the face between cells i
//! and i+1 is J = f rho - d(D rho)/dx. Write q = D rho and freeze f and D at the face,
//! f_face and D_face: then J = (f_face / D_face) q - q' is an ODE for q across the face.
//! Taking J constant over [x_i, x_{i+1}] (exponential fitting), the solution through
//! q(x_i) = q_i and q(x_{i+1}) = q_{i+1} is
//!
//! ```text
//! q(x) = J / a + C e^{a (x - x_i)},   a = f_face / D_face,   C = (q_{i+1} - q_i) / (e^P - 1),
//! J = (1 / h) [B(-P) q_i - B(P) q_{i+1}],   P = a h = f_face h / D_face,   B(z) = z / (e^z - 1),
//! ```
//!
//! using B(-z) = B(z) e^z. This is Scharfetter–Gummel's flux for the drift-diffusion form.
//! Multiplying by the face's area (the cell volume over h) and writing rho_i = m_i / vol, the
//! mass moved per unit time from cell i to cell i+1 is
//!
//! ```text
//! F = r m_i - l m_{i+1},   r = B(-P) D_i / h^2,   l = B(P) D_{i+1} / h^2,
//! ```
//!
//! with D_i = D at the centre of cell i. The rates r, l are never negative, so each axis
//! operator A (dm/dt = A m) has non-negative off-diagonal entries and columns summing to 0.
//! F vanishes when q_{i+1} / q_i = e^P: the discrete stationary state (1D) is
//! q_i ∝ exp(sum over the faces left of i of h f_face / D_face), the midpoint rule for the
//! exact rho ∝ (1 / D) exp(∫ f / D), hence second order in h. As D_face -> 0 the flux tends to
//! upwinding of the drift (r = max(f_face, 0) / h, l = max(-f_face, 0) / h), which is what a
//! face with D_face = 0 gets; as P -> 0 it tends to central differences.
//!
//! For a gradient drift the exponent is taken from the potential itself,
//! P = -(U_{i+1} - U_i) / T, instead of h f_face / T: then F vanishes exactly for
//! m ∝ e^{-U/T} at the cell centres, so the Boltzmann density is the exact discrete stationary
//! state in 1D and 2D (every axis operator annihilates it). With U sampled at the centres the
//! two agree exactly for a quadratic U (the midpoint rule is exact for a linear U'), and to
//! O(h^3) per face otherwise. This is the original Scharfetter–Gummel form,
//! r = (T / h^2) B((U_{i+1} - U_i) / T), l = (T / h^2) B(-(U_{i+1} - U_i) / T), kept
//! operation for operation.
//!
//! # Time: backward Euler, split by axis
//!
//! Each step is split by axis (Lie splitting, the order alternating from step to step) and
//! each axis is solved by backward Euler, `(I - dt A_axis) m' = m`. Every such matrix is an
//! M-matrix whose columns sum to 1: its inverse is non-negative and preserves the total, so
//! the density can never turn negative and the mass is exact to round-off, at any dt (in
//! floating point too: the Thomas sweeps below only add non-negative terms). Each axis
//! system is a set of independent tridiagonal lines. Coefficients that depend on time are
//! taken at the step's new time (backward Euler): their rates and Thomas factors are rebuilt
//! at every step. Coefficients that do not are sampled once and their factors computed once
//! per dt and reused, so a step costs a few multiply-adds per cell and axis.
//!
//! For a time-independent gradient drift the step is a Markov kernel leaving e^{-U/T}
//! invariant, so the discrete free energy `sum m U + T sum m log(m / vol)` never increases
//! (data-processing inequality). A non-gradient drift has no such invariant: the split
//! step's stationary state is the kernel of A_0 + A_1 up to O(dt).
//!
//! Accuracy: second order in h where the cell Péclet number |P| is small, first order in dt
//! (backward Euler and the splitting).
//!
//! # Boundaries
//!
//! The box's ends carry no flux unless [`FokkerPlanck::with_boundaries`] says otherwise:
//! a periodic axis wraps the last face round to the first cell (each line then a cyclic
//! M-matrix system, `CyclicLine`), an absorbing end adds the half-cell fitted flux out of
//! the end cell to its diagonal (columns then sum to at most 1), and the sink cells of
//! absorbing regions emit nothing and are emptied after each step (`boundary.rs`). The
//! rates of the discretised operator come from `spectrum.rs`
//! ([`FokkerPlanck::slowest_rates`]).

use super::boundary::{AxisBoundary, Region};
use super::spectrum;
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

    /// The lines along `axis`: `(cells per line, stride between neighbours, number of lines)`.
    pub fn lines(&self, axis: usize) -> (usize, usize, usize) {
        let n1 = self.cells.get(1).copied().unwrap_or(1);
        let len = self.cells[axis];
        (len, if axis == 0 { n1 } else { 1 }, self.len() / len.max(1))
    }

    /// The first cell of line `line` along `axis` (axis 0's lines are the columns, axis 1's
    /// the rows).
    pub fn line_start(&self, axis: usize, line: usize) -> usize {
        if axis == 0 {
            line
        } else {
            line * self.cells[1]
        }
    }

    /// The cell after cell `k` along `axis`, if any: on a `periodic` axis the line's first
    /// cell follows its last.
    pub fn next_along(&self, axis: usize, k: usize, periodic: bool) -> Option<usize> {
        let (len, stride, _) = self.lines(axis);
        let n1 = self.cells.get(1).copied().unwrap_or(1);
        let i = if axis == 0 { k / n1 } else { k % n1 };
        if i + 1 < len {
            Some(k + stride)
        } else if periodic {
            Some(k + stride - len * stride)
        } else {
            None
        }
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

/// Face rates of one face of a gradient drift: `(right, left)`, so that the mass flux from
/// cell i to i+1 is `right * m_i - left * m_{i+1}`.
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

/// Face rates of one face of a general drift (the module doc's exponential fitting):
/// `s = h f_face`, `d_face = D` at the face, `d_left`, `d_right` = D at the two cell centres.
/// A negative D counts as 0; a NaN anywhere gives NaN rates (the reference shows it).
fn fitted_rates(s: f64, d_face: f64, d_left: f64, d_right: f64, h: f64) -> (f64, f64) {
    let h2 = h * h;
    if s.is_nan() || d_face.is_nan() {
        return (f64::NAN, f64::NAN);
    }
    if d_face > 0.0 {
        let p = s / d_face;
        let at_least_zero = |d: f64| if d < 0.0 { 0.0 } else { d };
        (
            bernoulli(-p) * at_least_zero(d_left) / h2,
            bernoulli(p) * at_least_zero(d_right) / h2,
        )
    } else {
        // D_face = 0: the limit P -> +-infinity of the same flux, upwinding of f.
        (s.max(0.0) / h2, (-s).max(0.0) / h2)
    }
}

/// U(y, t) on the grid's axes; the `Vec` is scratch the function may use.
pub type PotentialFn = Box<dyn Fn(&[f64], f64, &mut Vec<f64>) -> f64 + Send + Sync>;
/// T(t).
pub type ScheduleFn = Box<dyn Fn(f64) -> f64 + Send + Sync>;
/// Writes `[f_0, .., f_{axes-1}, D]` at (y, t) into the slice; the `Vec` is scratch.
pub type FieldFn = Box<dyn Fn(&[f64], f64, &mut Vec<f64>, &mut [f64]) + Send + Sync>;

/// The coefficients of the equation, as functions the solver samples on its grid.
pub enum Coefficients {
    /// f = -grad U(y, t), D = T(t) (the same at every point): Langevin dynamics. U is
    /// sampled at the cell centres, so e^{-U/T} is exactly stationary (see the module doc).
    /// The flags say whether U and T depend on t.
    Gradient {
        potential: PotentialFn,
        potential_timed: bool,
        temperature: ScheduleFn,
        temperature_timed: bool,
    },
    /// Any f(y, t) and D(y, t) >= 0. `timed`: whether either depends on t. `axis_scale`
    /// multiplies D per axis (1 for the isotropic SDE; Kramers' equation has no diffusion
    /// in position: [0, 1], see [`Coefficients::kramers`]).
    General {
        field: FieldFn,
        timed: bool,
        axis_scale: [f64; 2],
    },
}

impl Coefficients {
    /// [`Coefficients::Gradient`] from closures.
    pub fn gradient(
        potential: impl Fn(&[f64], f64, &mut Vec<f64>) -> f64 + Send + Sync + 'static,
        potential_timed: bool,
        temperature: impl Fn(f64) -> f64 + Send + Sync + 'static,
        temperature_timed: bool,
    ) -> Coefficients {
        Coefficients::Gradient {
            potential: Box::new(potential),
            potential_timed,
            temperature: Box::new(temperature),
            temperature_timed,
        }
    }

    /// [`Coefficients::General`] from a closure, D the same on every axis.
    pub fn general(
        field: impl Fn(&[f64], f64, &mut Vec<f64>, &mut [f64]) + Send + Sync + 'static,
        timed: bool,
    ) -> Coefficients {
        Coefficients::General {
            field: Box::new(field),
            timed,
            axis_scale: [1.0; 2],
        }
    }

    /// Kramers' equation of underdamped Langevin dynamics in one dimension, on the (x, v)
    /// plane: dX = V dt, m dV = -U'(X) dt - gamma m V dt + sqrt(2 gamma m T) dW, so
    ///
    /// ```text
    /// d rho / dt = -d/dx (v rho) - d/dv ((-U'(x) / m - gamma v) rho) + (gamma T / m) d2 rho / dv2,
    /// ```
    ///
    /// the general equation with f = (v, -U'/m - gamma v), D = gamma T / m on the v axis and
    /// none on x: the x faces are upwinded (first order in h_x, the limit D_face -> 0 of the
    /// fitted flux), the v faces exponentially fitted. `gradient` gives U'(x) at time t.
    /// The stationary law is exp(-U/T - m v^2 / (2T)) / Z, up to O(h_x).
    pub fn kramers(
        gradient: impl Fn(f64, f64) -> f64 + Send + Sync + 'static,
        timed: bool,
        gamma: f64,
        mass: f64,
        temperature: f64,
    ) -> Coefficients {
        let d = gamma * temperature / mass;
        Coefficients::General {
            field: Box::new(
                move |y: &[f64], t: f64, _: &mut Vec<f64>, out: &mut [f64]| {
                    out[0] = y[1];
                    out[1] = -gradient(y[0], t) / mass - gamma * y[1];
                    out[2] = d;
                },
            ),
            timed,
            axis_scale: [0.0, 1.0],
        }
    }
}

/// The coefficients as the solver holds them, with their latest samples.
enum Sampler {
    Gradient {
        /// None: U was given at the cell centres and never changes.
        potential: Option<PotentialFn>,
        potential_timed: bool,
        temperature: ScheduleFn,
        temperature_timed: bool,
        /// U at the cell centres and T, at the time of the latest sample.
        cells: Vec<f64>,
        current: f64,
    },
    General {
        field: FieldFn,
        timed: bool,
        axis_scale: [f64; 2],
    },
}

/// Cells per rayon task when sampling coefficients.
const SAMPLE_CHUNK: usize = 1024;

impl Sampler {
    fn timed(&self) -> bool {
        match self {
            Sampler::Gradient {
                potential_timed,
                temperature_timed,
                ..
            } => *potential_timed || *temperature_timed,
            Sampler::General { timed, .. } => *timed,
        }
    }

    /// Brings the gradient samples (U at the centres, T) to time t; nothing to keep for a
    /// general field.
    fn sample(&mut self, grid: &Grid, t: f64, first: bool) {
        if let Sampler::Gradient {
            potential,
            potential_timed,
            temperature,
            cells,
            current,
            ..
        } = self
        {
            *current = temperature(t);
            if let Some(u) = potential {
                if first || *potential_timed {
                    let n1 = grid.cells.get(1).copied().unwrap_or(1);
                    let axes = grid.axes();
                    cells.resize(grid.len(), 0.0);
                    cells
                        .par_chunks_mut(SAMPLE_CHUNK)
                        .enumerate()
                        .for_each(|(c, chunk)| {
                            let mut scratch = Vec::new();
                            for (o, v) in chunk.iter_mut().enumerate() {
                                let k = c * SAMPLE_CHUNK + o;
                                let y = [grid.centre(0, k / n1), grid.centre(1 % axes, k % n1)];
                                *v = u(&y[..axes], t, &mut scratch);
                            }
                        });
                }
            }
        }
    }

    /// The rates of every face along `axis` at the sampled time t under `boundary`, with the
    /// cells of `sink` (a region index per cell, [`NO_SINK`] for none; empty: no sinks)
    /// emitting nothing. `faces` is laid out like the cells: entry k holds `(right, left)` of
    /// the face between cell k and the next cell along the axis; the last cell of a line holds
    /// the wrap face to the line's first cell on a periodic axis, (0, 0) otherwise. `ends`
    /// holds per line the rates out of its first and last cells through absorbing ends.
    fn axis_rates(
        &self,
        grid: &Grid,
        axis: usize,
        t: f64,
        centre_d: &[f64],
        boundary: AxisBoundary,
        sink: &[u32],
    ) -> AxisRates {
        let axes = grid.axes();
        let n1 = grid.cells.get(1).copied().unwrap_or(1);
        let (len, stride, lines) = grid.lines(axis);
        let h = grid.width(axis);
        let index = |k: usize| if axis == 0 { k / n1 } else { k % n1 };
        let periodic = boundary == AxisBoundary::Periodic;
        // The cell across the face after cell k, if there is one.
        let next = |k: usize| grid.next_along(axis, k, periodic);
        let mut faces = vec![(0.0, 0.0); grid.len()];
        let mut ends = vec![[0.0; 2]; lines];
        match self {
            Sampler::Gradient { cells, current, .. } => {
                faces
                    .par_chunks_mut(SAMPLE_CHUNK)
                    .enumerate()
                    .for_each(|(c, chunk)| {
                        for (o, r) in chunk.iter_mut().enumerate() {
                            let k = c * SAMPLE_CHUNK + o;
                            if let Some(j) = next(k) {
                                *r = face_rates(cells[k], cells[j], *current, h);
                            }
                        }
                    });
                for (line, end) in ends.iter_mut().enumerate() {
                    let first = grid.line_start(axis, line);
                    let last = first + (len - 1) * stride;
                    // U at the ends by linear extrapolation from the two outermost centres.
                    let (u_low, u_high) = if len > 1 {
                        (
                            1.5 * cells[first] - 0.5 * cells[first + stride],
                            1.5 * cells[last] - 0.5 * cells[last - stride],
                        )
                    } else {
                        (cells[first], cells[last])
                    };
                    if boundary.absorbs(0) {
                        end[0] = 2.0 * face_rates(u_low, cells[first], *current, h).1;
                    }
                    if boundary.absorbs(1) {
                        end[1] = 2.0 * face_rates(cells[last], u_high, *current, h).0;
                    }
                }
            }
            Sampler::General {
                field, axis_scale, ..
            } => {
                let scale = axis_scale[axis];
                faces
                    .par_chunks_mut(SAMPLE_CHUNK)
                    .enumerate()
                    .for_each(|(c, chunk)| {
                        let mut scratch = Vec::new();
                        let mut out = [0.0; 3];
                        for (o, r) in chunk.iter_mut().enumerate() {
                            let k = c * SAMPLE_CHUNK + o;
                            let Some(j) = next(k) else {
                                continue;
                            };
                            let mut y = [grid.centre(0, k / n1), grid.centre(1 % axes, k % n1)];
                            y[axis] = grid.range[axis][0] + (index(k) + 1) as f64 * h;
                            field(&y[..axes], t, &mut scratch, &mut out[..=axes]);
                            *r = fitted_rates(
                                h * out[axis],
                                scale * out[axes],
                                scale * centre_d[k],
                                scale * centre_d[j],
                                h,
                            );
                        }
                    });
                let mut scratch = Vec::new();
                let mut out = [0.0; 3];
                for (line, end) in ends.iter_mut().enumerate() {
                    let first = grid.line_start(axis, line);
                    let last = first + (len - 1) * stride;
                    for (e, (cell, at)) in [(first, 0), (last, 1)].into_iter().enumerate() {
                        if !boundary.absorbs(e) {
                            continue;
                        }
                        let mut y = [grid.centre(0, cell / n1), grid.centre(1 % axes, cell % n1)];
                        y[axis] = grid.range[axis][at];
                        field(&y[..axes], t, &mut scratch, &mut out[..=axes]);
                        // The half cell between the centre and the end, q = 0 at the end.
                        let (s, d_face, d) = (
                            0.5 * h * out[axis],
                            scale * out[axes],
                            scale * centre_d[cell],
                        );
                        end[e] = 2.0
                            * if e == 0 {
                                fitted_rates(s, d_face, 0.0, d, h).1
                            } else {
                                fitted_rates(s, d_face, d, 0.0, h).0
                            };
                    }
                }
            }
        }
        if !sink.is_empty() {
            // Nothing leaves a sink; what enters it is absorbed.
            for k in 0..grid.len() {
                if sink[k] != NO_SINK {
                    faces[k].0 = 0.0;
                }
                if let Some(j) = next(k) {
                    if sink[j] != NO_SINK {
                        faces[k].1 = 0.0;
                    }
                }
            }
            for (line, end) in ends.iter_mut().enumerate() {
                let first = grid.line_start(axis, line);
                if sink[first] != NO_SINK {
                    end[0] = 0.0;
                }
                if sink[first + (len - 1) * stride] != NO_SINK {
                    end[1] = 0.0;
                }
            }
        }
        AxisRates { faces, ends }
    }

    /// D at every cell centre at time t (general fields only; empty otherwise).
    fn centre_diffusion(&self, grid: &Grid, t: f64) -> Vec<f64> {
        let Sampler::General { field, .. } = self else {
            return Vec::new();
        };
        let axes = grid.axes();
        let n1 = grid.cells.get(1).copied().unwrap_or(1);
        let mut d = vec![0.0; grid.len()];
        d.par_chunks_mut(SAMPLE_CHUNK)
            .enumerate()
            .for_each(|(c, chunk)| {
                let mut scratch = Vec::new();
                let mut out = [0.0; 3];
                for (o, v) in chunk.iter_mut().enumerate() {
                    let k = c * SAMPLE_CHUNK + o;
                    let y = [grid.centre(0, k / n1), grid.centre(1 % axes, k % n1)];
                    field(&y[..axes], t, &mut scratch, &mut out[..=axes]);
                    *v = out[axes];
                }
            });
        d
    }
}

/// Region index of a cell that is no sink.
const NO_SINK: u32 = u32::MAX;

/// The rates of one axis (see `Sampler::axis_rates`).
struct AxisRates {
    faces: Vec<(f64, f64)>,
    ends: Vec<[f64; 2]>,
}

/// How one axis's backward-Euler systems are solved.
enum AxisSolve {
    /// Tridiagonal lines; `ends` holds per line dt times the rates out through absorbing
    /// ends (empty when neither end absorbs), to count what leaves.
    Thomas {
        factors: AxisFactors,
        ends: Vec<[f64; 2]>,
    },
    /// Periodic lines, one factorisation per line.
    Cyclic(Vec<CyclicLine>),
}

/// LU factors (no pivoting) of one periodic line's matrix `I - dt A`: tridiagonal with the
/// two corner entries of the wrap face. Rows 0..n-2 are reduced to
/// `x_i + c_i x_{i+1} + e_i x_{n-1} = y_i` (row n-2's `c` already holds its x_{n-1}
/// coefficient, `e` is 0 there), and the last row, with x_0 .. x_{n-2} eliminated by the
/// multipliers `g`, to `beta x_{n-1} = mu`. The matrix is an M-matrix, so `a`, `c`, `e` and
/// `g` are never positive and the pivots positive: both sweeps only add non-negative terms,
/// as in the Thomas algorithm, and the columns summing to 1 keep the mass to round-off.
struct CyclicLine {
    a: Vec<f64>,
    inv: Vec<f64>,
    c: Vec<f64>,
    e: Vec<f64>,
    g: Vec<f64>,
    beta_inv: f64,
}

impl CyclicLine {
    /// From the line's rows: `a[i]` couples cell i to i-1 (cell 0 to n-1), `b[i]` is the
    /// diagonal, `c[i]` couples cell i to i+1 (cell n-1 to 0).
    fn new(a: Vec<f64>, b: &[f64], c_in: &[f64]) -> CyclicLine {
        let n = b.len();
        if n == 1 {
            // One cell: its wrap face leads back to itself and moves nothing.
            return CyclicLine {
                a: vec![0.0],
                inv: vec![],
                c: vec![],
                e: vec![],
                g: vec![],
                beta_inv: 1.0,
            };
        }
        let (mut inv, mut c, mut e) = (vec![0.0; n - 1], vec![0.0; n - 1], vec![0.0; n - 1]);
        for i in 0..n - 1 {
            let (pivot, e_prev) = if i == 0 {
                (b[0], 1.0)
            } else {
                (b[i] - a[i] * c[i - 1], -e[i - 1])
            };
            inv[i] = 1.0 / pivot;
            c[i] = c_in[i] * inv[i];
            e[i] = if i == 0 {
                a[0] * inv[0]
            } else {
                a[i] * e_prev * inv[i]
            };
        }
        // Row n-2's neighbour to the right is x_{n-1} itself.
        c[n - 2] += e[n - 2];
        e[n - 2] = 0.0;
        let mut g = vec![0.0; n - 1];
        let mut beta = b[n - 1];
        let mut coef = c_in[n - 1];
        for j in 0..n - 1 {
            if j == n - 2 {
                coef += a[n - 1];
            }
            g[j] = coef;
            if j == n - 2 {
                beta -= coef * c[j];
            } else {
                beta -= coef * e[j];
                coef = -coef * c[j];
            }
        }
        CyclicLine {
            a,
            inv,
            c,
            e,
            g,
            beta_inv: 1.0 / beta,
        }
    }

    /// Solves in place (`x` holds the right-hand side on entry).
    fn solve(&self, x: &mut [f64]) {
        let n = x.len();
        if n == 1 {
            return;
        }
        x[0] *= self.inv[0];
        for i in 1..n - 1 {
            x[i] = (x[i] - self.a[i] * x[i - 1]) * self.inv[i];
        }
        // g <= 0: the sum is never positive, and subtracting it only adds.
        let eliminated: f64 = self.g.iter().zip(&x[..n - 1]).map(|(g, y)| g * y).sum();
        let last = (x[n - 1] - eliminated) * self.beta_inv;
        x[n - 1] = last;
        for i in (0..n - 1).rev() {
            let right = if i + 2 < n { self.c[i] * x[i + 1] } else { 0.0 };
            let wrap = if i + 2 < n { self.e[i] } else { self.c[i] };
            x[i] -= right + wrap * last;
        }
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

/// Relative slack on step sizes: a span that exceeds `dt_max` (or a multiple of it) by less
/// than this is taken in whole steps of (about) `dt_max`, and factors are reused for steps
/// that differ by less than this. Times written k * dt in f64 differ from whole multiples by
/// k ulps, 2e-12 relative at k = 1e4: without the slack a caller stepping to k * dt would get
/// two half steps now and then.
const STEP_SLACK: f64 = 1e-9;

/// The solver's state: masses on the grid at `time`.
pub struct FokkerPlanck {
    grid: Grid,
    sampler: Sampler,
    mass: Vec<f64>,
    time: f64,
    dt_max: f64,
    steps: u64,
    /// The Thomas factors and the dt they were made for (for time-dependent coefficients,
    /// those of the latest step).
    factors: Option<(f64, Vec<AxisSolve>)>,
    bounds: Bounds,
}

/// The solver's boundaries (`boundary.rs`) and what they have absorbed.
#[derive(Default)]
struct Bounds {
    /// Per axis; empty: every axis `Free`.
    axes: Vec<AxisBoundary>,
    /// The absorbing regions, in the order they were added.
    regions: Vec<Region>,
    /// Per cell the first region containing its centre, [`NO_SINK`] for none; empty while
    /// there is no region.
    sink: Vec<u32>,
    /// The sink cells and their regions, in cell order.
    sink_cells: Vec<(usize, u32)>,
    /// Mass absorbed by each region.
    absorbed_regions: Vec<f64>,
    /// Mass absorbed through each axis's (low, high) end.
    absorbed_ends: Vec<[f64; 2]>,
    /// ∫ S dt so far by the right-endpoint rule (see [`FokkerPlanck::survival_integral`]).
    survival_integral: f64,
}

impl Bounds {
    fn axis(&self, axis: usize) -> AxisBoundary {
        self.axes.get(axis).copied().unwrap_or_default()
    }

    /// Whether anything absorbs (an absorbing end or a region).
    fn absorbs(&self) -> bool {
        !self.regions.is_empty() || self.axes.iter().any(|b| b.absorbs(0) || b.absorbs(1))
    }
}

impl FokkerPlanck {
    /// Langevin dynamics with a fixed potential and temperature: `potential` holds U at every
    /// cell centre, `mass` the initial masses (any total; it is kept). `dt_max` bounds the
    /// time step (the step actually used divides each requested interval evenly).
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
            sampler: Sampler::Gradient {
                potential: None,
                potential_timed: false,
                temperature: Box::new(move |_| temperature),
                temperature_timed: false,
                cells: potential,
                current: temperature,
            },
            mass,
            time: 0.0,
            dt_max,
            steps: 0,
            factors: None,
            bounds: Bounds::default(),
        }
    }

    /// The equation of `coefficients` from `mass` at t = 0 (as [`FokkerPlanck::new`]).
    pub fn with_coefficients(
        grid: Grid,
        coefficients: Coefficients,
        mass: Vec<f64>,
        dt_max: f64,
    ) -> FokkerPlanck {
        debug_assert_eq!(mass.len(), grid.len());
        let sampler = match coefficients {
            Coefficients::Gradient {
                potential,
                potential_timed,
                temperature,
                temperature_timed,
            } => Sampler::Gradient {
                potential: Some(potential),
                potential_timed,
                temperature,
                temperature_timed,
                cells: Vec::new(),
                current: 0.0,
            },
            Coefficients::General {
                field,
                timed,
                axis_scale,
            } => Sampler::General {
                field,
                timed,
                axis_scale,
            },
        };
        let mut fp = FokkerPlanck {
            grid,
            sampler,
            mass,
            time: 0.0,
            dt_max,
            steps: 0,
            factors: None,
            bounds: Bounds::default(),
        };
        fp.sampler.sample(&fp.grid, 0.0, true);
        fp
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

    /// Whether the coefficients depend on time (the factors are then rebuilt every step).
    pub fn is_timed(&self) -> bool {
        self.sampler.timed()
    }

    /// Discrete free energy `sum m U + T sum m log(m / vol)` (0 log 0 = 0) of the mass on
    /// the grid normalised to 1 (with absorption: of the surviving law), with U and T at the
    /// current time; NaN for a general drift (no potential).
    pub fn free_energy(&self) -> f64 {
        match &self.sampler {
            Sampler::Gradient { cells, current, .. } => {
                let total = self.survival();
                if self.bounds.absorbs() && total > 0.0 {
                    let law: Vec<f64> = self.mass.iter().map(|m| m / total).collect();
                    free_energy(&law, cells, *current, self.grid.volume())
                } else {
                    free_energy(&self.mass, cells, *current, self.grid.volume())
                }
            }
            Sampler::General { .. } => f64::NAN,
        }
    }

    /// The same solver with `boundaries`, one per grid axis (see `boundary.rs`), in place of
    /// the free box. Set boundaries and regions before advancing: the absorbed masses and
    /// [`FokkerPlanck::survival_integral`] count from the steps taken after.
    pub fn with_boundaries(mut self, boundaries: Vec<AxisBoundary>) -> Result<Self, String> {
        if boundaries.len() != self.grid.axes() {
            return Err(format!(
                "{} boundaries for a grid of {} axes: give one per axis",
                boundaries.len(),
                self.grid.axes()
            ));
        }
        self.bounds.absorbed_ends = vec![[0.0; 2]; boundaries.len()];
        self.bounds.axes = boundaries;
        self.factors = None;
        Ok(self)
    }

    /// The same solver with one more absorbing region: the cells whose centre `region`
    /// contains (and that no earlier region took) become sinks of density 0. Mass they hold
    /// now counts as absorbed by the region at once. Refused if the region is written for
    /// another number of axes or contains no cell centre.
    pub fn with_absorbing_region(mut self, region: Region) -> Result<Self, String> {
        let axes = self.grid.axes();
        if let Some(n) = region.axes() {
            if n != axes {
                return Err(format!(
                    "absorbing region {region:?} has {n} axes, the grid {axes}"
                ));
            }
        }
        let index = self.bounds.regions.len() as u32;
        let centres = self.grid.centres();
        if self.bounds.sink.is_empty() {
            self.bounds.sink = vec![NO_SINK; self.grid.len()];
        }
        let mut cells = 0usize;
        let mut taken = 0.0;
        for (k, x) in centres.iter().enumerate() {
            if self.bounds.sink[k] == NO_SINK && region.contains(x) {
                self.bounds.sink[k] = index;
                taken += self.mass[k];
                self.mass[k] = 0.0;
                cells += 1;
            }
        }
        if cells == 0 {
            return Err(format!(
                "absorbing region {region:?} contains no free cell centre of the grid {:?}",
                self.grid.range
            ));
        }
        self.bounds.sink_cells = (0..self.grid.len())
            .filter(|&k| self.bounds.sink[k] != NO_SINK)
            .map(|k| (k, self.bounds.sink[k]))
            .collect();
        self.bounds.regions.push(region);
        self.bounds.absorbed_regions.push(taken);
        if self.bounds.absorbed_ends.is_empty() {
            self.bounds.absorbed_ends = vec![[0.0; 2]; axes];
        }
        self.factors = None;
        Ok(self)
    }

    /// The boundary of every axis.
    pub fn boundaries(&self) -> Vec<AxisBoundary> {
        (0..self.grid.axes()).map(|a| self.bounds.axis(a)).collect()
    }

    /// Whether cell `k` is a sink of an absorbing region.
    pub fn is_sink(&self, k: usize) -> bool {
        self.bounds.sink.get(k).is_some_and(|&r| r != NO_SINK)
    }

    /// The survival S(t): the mass still on the grid (out of the initial total; mass is only
    /// lost to absorbing ends and regions).
    pub fn survival(&self) -> f64 {
        self.mass.iter().sum()
    }

    /// Mass absorbed so far by each region, in the order they were added.
    pub fn absorbed(&self) -> &[f64] {
        &self.bounds.absorbed_regions
    }

    /// Mass absorbed so far through each axis's (low, high) end.
    pub fn absorbed_at_ends(&self) -> Vec<[f64; 2]> {
        (0..self.grid.axes())
            .map(|a| {
                self.bounds
                    .absorbed_ends
                    .get(a)
                    .copied()
                    .unwrap_or([0.0; 2])
            })
            .collect()
    }

    /// ∫ S dt over the steps taken while something absorbs, by the right-endpoint rule
    /// `sum dt S(t_{n+1})`. For fixed coefficients in 1D this is backward Euler's own sum:
    /// `sum_n dt 1ᵀ(I − dt A)^{−n−1} m0 → 1ᵀ(−A)^{−1} m0` as t → ∞, the discrete mean
    /// first-passage time times the initial mass *at any dt*; at a finite t the rest is
    /// S(t) / λ₁ to leading order, λ₁ the lowest rate ([`FokkerPlanck::slowest_rates`]).
    /// (In 2D the axis splitting adds O(dt).)
    pub fn survival_integral(&self) -> f64 {
        self.bounds.survival_integral
    }

    /// The `k` slowest rates of the discretised operator at the current time: the `k`
    /// smallest eigenvalues (ascending) of −A, where dm/dt = A m is the semi-discrete
    /// equation (unsplit, no time step) with the boundaries, sink cells removed (their
    /// density is held at 0). See docs/architecture.md, "Boundaries and rates".
    ///
    /// - A 1D grid without a periodic wrap, any coefficients: A is tridiagonal with
    ///   off-diagonal products r_i l_i >= 0, so it has the spectrum of the symmetric
    ///   tridiagonal matrix with off-diagonals −sqrt(r_i l_i) (its characteristic polynomial
    ///   depends on the products only): bisection on Sturm sequences, within a few ε‖A‖.
    /// - Otherwise a gradient drift at T > 0: the rates obey detailed balance with
    ///   e^{−U/T} at the centres, so e^{U/2T} A e^{−U/2T} is symmetric (the same
    ///   −sqrt(r l) off the diagonal), positive semi-definite and sparse with bandwidth one
    ///   line: shifted subspace iteration with a banded Cholesky solve (`spectrum.rs`).
    ///   Refused for a general drift there (a non-reversible A may have complex eigenvalues)
    ///   and for a 2D grid periodic on both axes (the band would be the whole grid).
    pub fn slowest_rates(&self, k: usize) -> Result<Vec<f64>, String> {
        let grid = &self.grid;
        let t = self.time;
        let axes = grid.axes();
        let n1 = grid.cells.get(1).copied().unwrap_or(1);
        let periodic: Vec<bool> = (0..axes)
            .map(|a| self.bounds.axis(a) == AxisBoundary::Periodic)
            .collect();
        let tridiagonal = axes == 1 && !periodic[0];
        let reversible = matches!(self.sampler, Sampler::Gradient { current, .. } if current > 0.0);
        if !tridiagonal && !reversible {
            return Err("the rates of a 2D or periodic grid need a gradient drift at a temperature > 0 \
                 (a reversible operator); a general drift is supported on a 1D grid without a periodic wrap"
                .into());
        }
        if axes == 2 && periodic[0] && periodic[1] {
            return Err("the rates of a 2D grid periodic on both axes are not supported".into());
        }
        // The order of the unknowns: the periodic axis (if any) fastest, so that its wrap
        // stays within one line of the band.
        let transposed = axes == 2 && periodic[0];
        let mut order: Vec<usize> = (0..grid.len()).collect();
        if transposed {
            order.sort_by_key(|&k| (k % n1, k / n1));
        }
        let mut active = vec![usize::MAX; grid.len()];
        let mut count = 0;
        for &k in &order {
            if !self.is_sink(k) {
                active[k] = count;
                count += 1;
            }
        }
        let centre_d = self.sampler.centre_diffusion(grid, t);
        let mut diag = vec![0.0; count];
        let mut entries = Vec::new();
        for (axis, &wrap) in periodic.iter().enumerate() {
            let rates = self.sampler.axis_rates(
                grid,
                axis,
                t,
                &centre_d,
                self.bounds.axis(axis),
                &self.bounds.sink,
            );
            let (len, stride, _) = grid.lines(axis);
            for (k, &(r, l)) in rates.faces.iter().enumerate() {
                // A one-cell periodic line's face leads back to its cell and moves nothing.
                let Some(j) = grid.next_along(axis, k, wrap).filter(|&j| j != k) else {
                    continue;
                };
                let (ak, aj) = (active[k], active[j]);
                if ak != usize::MAX {
                    diag[ak] += r;
                }
                if aj != usize::MAX {
                    diag[aj] += l;
                }
                if ak != usize::MAX && aj != usize::MAX {
                    entries.push((ak, aj, -(r * l).sqrt()));
                }
            }
            for (line, e) in rates.ends.iter().enumerate() {
                let first = grid.line_start(axis, line);
                for (cell, rate) in [(first, e[0]), (first + (len - 1) * stride, e[1])] {
                    if active[cell] != usize::MAX {
                        diag[active[cell]] += rate;
                    }
                }
            }
        }
        if tridiagonal {
            // Consecutive unknowns that are neighbours on the grid share an entry; a sink
            // between them leaves 0.
            let mut off = vec![0.0; count.saturating_sub(1)];
            for &(a, b, v) in &entries {
                if b == a + 1 {
                    off[a] = v;
                }
            }
            return Ok(spectrum::tridiagonal_lowest(&diag, &off, k));
        }
        spectrum::SparseSymmetric { diag, entries }.lowest(k)
    }

    /// The mean velocity of the mass on the grid, per axis, at the current time:
    /// Σ over the faces (a periodic axis's wrap face included, absorbing ends not) of
    /// h × the face's net mass flux, over the mass on the grid. On a reflecting axis it is
    /// d⟨x⟩/dt of the semi-discrete equation; on a periodic one, at the stationary state,
    /// the drift velocity of the unwrapped motion (one period L times the current).
    pub fn mean_velocity(&self) -> Vec<f64> {
        let grid = &self.grid;
        let centre_d = self.sampler.centre_diffusion(grid, self.time);
        let total = self.survival();
        (0..grid.axes())
            .map(|axis| {
                let boundary = self.bounds.axis(axis);
                let rates = self.sampler.axis_rates(
                    grid,
                    axis,
                    self.time,
                    &centre_d,
                    boundary,
                    &self.bounds.sink,
                );
                let periodic = boundary == AxisBoundary::Periodic;
                let flux: f64 = rates
                    .faces
                    .iter()
                    .enumerate()
                    .filter_map(|(k, &(r, l))| {
                        let j = grid.next_along(axis, k, periodic)?;
                        Some(r * self.mass[k] - l * self.mass[j])
                    })
                    .sum();
                grid.width(axis) * flux / total
            })
            .collect()
    }

    /// With anything absorbing, the lowest rate: the exact escape rate of the discretised
    /// problem into the absorbing set (S(t) ~ c e^{−λ t} at long times). Without, the first
    /// non-zero rate: the relaxation rate, k_AB + k_BA between two metastable sets (2k for
    /// a symmetric double well).
    pub fn escape_rate(&self) -> Result<f64, String> {
        let absorbs = self.bounds.absorbs();
        let rates = self.slowest_rates(if absorbs { 1 } else { 2 })?;
        rates
            .get(if absorbs { 0 } else { 1 })
            .copied()
            .ok_or_else(|| "the grid has too few free cells for a rate".to_string())
    }

    /// Advances to `time` (no-op if already there or past it) in equal steps of at most
    /// `dt_max` (up to a relative [`STEP_SLACK`]).
    pub fn advance_to(&mut self, time: f64) {
        let span = time - self.time;
        if span.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
            return;
        }
        let n = (span / self.dt_max * (1.0 - STEP_SLACK)).ceil().max(1.0) as u64;
        let dt = span / n as f64;
        let start = self.time;
        if self.sampler.timed() {
            for k in 1..=n {
                // Backward Euler: the coefficients at the step's new time (the last one
                // exactly `time`, so that the free energy is taken there).
                let t = if k == n { time } else { start + k as f64 * dt };
                self.sampler.sample(&self.grid, t, false);
                self.factors = Some((dt, self.build_factors(dt, t)));
                self.step_once();
            }
        } else {
            self.factor(dt);
            for _ in 0..n {
                self.step_once();
            }
        }
        self.time = time;
    }

    /// Factors for `dt` of time-independent coefficients, reused while dt stays the same.
    fn factor(&mut self, dt: f64) {
        if let Some((have, _)) = &self.factors {
            if (have - dt).abs() <= STEP_SLACK * dt {
                return;
            }
        }
        let factors = self.build_factors(dt, 0.0);
        self.factors = Some((dt, factors));
    }

    /// Every axis's factors for `dt`, the coefficients sampled at t.
    fn build_factors(&self, dt: f64, t: f64) -> Vec<AxisSolve> {
        let centre_d = self.sampler.centre_diffusion(&self.grid, t);
        (0..self.grid.axes())
            .map(|a| {
                let boundary = self.bounds.axis(a);
                let rates = self.sampler.axis_rates(
                    &self.grid,
                    a,
                    t,
                    &centre_d,
                    boundary,
                    &self.bounds.sink,
                );
                if boundary == AxisBoundary::Periodic {
                    return AxisSolve::Cyclic(self.cyclic_factors(a, dt, &rates.faces));
                }
                let absorbing = boundary.absorbs(0) || boundary.absorbs(1);
                AxisSolve::Thomas {
                    factors: self.axis_factors(a, dt, &rates.faces, &rates.ends),
                    ends: if absorbing {
                        rates.ends.iter().map(|e| [dt * e[0], dt * e[1]]).collect()
                    } else {
                        Vec::new()
                    },
                }
            })
            .collect()
    }

    /// `(I - dt A_axis)` of a periodic axis, factored line by line.
    fn cyclic_factors(&self, axis: usize, dt: f64, faces: &[(f64, f64)]) -> Vec<CyclicLine> {
        let (len, stride, lines) = self.grid.lines(axis);
        (0..lines)
            .into_par_iter()
            .map(|line| {
                let first = self.grid.line_start(axis, line);
                let face = |i: usize| faces[first + i * stride];
                let (mut a, mut b, mut c) = (vec![0.0; len], vec![0.0; len], vec![0.0; len]);
                for i in 0..len {
                    let (r_left, l_left) = face((i + len - 1) % len);
                    let (r_right, l_right) = face(i);
                    a[i] = -dt * r_left;
                    b[i] = 1.0 + dt * (l_left + r_right);
                    c[i] = -dt * l_right;
                }
                CyclicLine::new(a, &b, &c)
            })
            .collect()
    }

    /// Builds `(I - dt A_axis)` line by line from the face rates and factors it. Axis 1's
    /// lines are the rows (contiguous, factored in parallel); axis 0's are the columns, whose
    /// recurrences run together row after row (each row a contiguous, vectorisable sweep).
    fn axis_factors(
        &self,
        axis: usize,
        dt: f64,
        rates: &[(f64, f64)],
        ends: &[[f64; 2]],
    ) -> AxisFactors {
        let n0 = self.grid.cells[0];
        let n1 = self.grid.cells.get(1).copied().unwrap_or(1);
        let total = self.grid.len();
        let (mut sub, mut inv, mut sup) = (vec![0.0; total], vec![0.0; total], vec![0.0; total]);
        // One entry of the factorisation: cell i of a line of `len`, from the rates of the
        // faces before and after it and the previous cell's modified super-diagonal.
        // The line's first cell takes (0, rate out through the low end) as its left face, the
        // last (rate out through the high end, 0) as its right one.
        let entry = |left: (f64, f64), right: (f64, f64), prev_c: f64| {
            // Face i-1/2 (into cell i from the left) and i+1/2.
            let (r_left, l_left) = left;
            let (r_right, l_right) = right;
            let a = -dt * r_left;
            let b = 1.0 + dt * (l_left + r_right);
            let c = -dt * l_right;
            let pivot = b - a * prev_c;
            (a, 1.0 / pivot, c / pivot)
        };
        if axis == 1 {
            sub.par_chunks_mut(n1)
                .zip(inv.par_chunks_mut(n1))
                .zip(sup.par_chunks_mut(n1))
                .zip(rates.par_chunks(n1).zip(ends.par_iter()))
                .for_each(|(((sub, inv), sup), (rates, end))| {
                    let mut prev_c = 0.0;
                    for i in 0..n1 {
                        let left = if i > 0 { rates[i - 1] } else { (0.0, end[0]) };
                        let right = if i + 1 < n1 { rates[i] } else { (end[1], 0.0) };
                        let (a, p, c) = entry(left, right, prev_c);
                        sub[i] = a;
                        inv[i] = p;
                        sup[i] = c;
                        prev_c = c;
                    }
                });
            return AxisFactors {
                sub,
                inv,
                sup,
                shared: false,
            }
            .share_if_uniform(n1, n0, |line, i| line * n1 + i);
        }
        for i in 0..n0 {
            let row = i * n1..(i + 1) * n1;
            let (before, this) = sup.split_at_mut(row.start);
            let prev: &[f64] = if i > 0 {
                &before[row.start - n1..]
            } else {
                &[]
            };
            for j in 0..n1 {
                let k = row.start + j;
                let left = if i > 0 {
                    rates[k - n1]
                } else {
                    (0.0, ends[j][0])
                };
                let right = if i + 1 < n0 {
                    rates[k]
                } else {
                    (ends[j][1], 0.0)
                };
                let prev_c = if i > 0 { prev[j] } else { 0.0 };
                let (a, p, c) = entry(left, right, prev_c);
                sub[k] = a;
                inv[k] = p;
                this[j] = c;
            }
        }
        AxisFactors {
            sub,
            inv,
            sup,
            shared: false,
        }
        .share_if_uniform(n0, n1, |line, i| line + i * n1)
    }

    fn step_once(&mut self) {
        let Some((dt, factors)) = &self.factors else {
            return;
        };
        let n1 = self.grid.cells.get(1).copied().unwrap_or(1);
        let order: &[usize] = match (self.grid.axes(), self.steps % 2) {
            (1, _) => &[0],
            (_, 0) => &[0, 1],
            _ => &[1, 0],
        };
        for &axis in order {
            match &factors[axis] {
                AxisSolve::Thomas { factors: f, ends } => {
                    if axis == 1 {
                        solve_rows(&mut self.mass, f, n1);
                    } else {
                        solve_columns(&mut self.mass, f, n1);
                    }
                    if !ends.is_empty() {
                        // Backward Euler: what left through an end is dt times its rate
                        // times the new mass of the end's cell, exactly what the solve took.
                        let (len, stride, _) = self.grid.lines(axis);
                        let out = &mut self.bounds.absorbed_ends[axis];
                        for (line, e) in ends.iter().enumerate() {
                            let first = self.grid.line_start(axis, line);
                            out[0] += e[0] * self.mass[first];
                            out[1] += e[1] * self.mass[first + (len - 1) * stride];
                        }
                    }
                }
                AxisSolve::Cyclic(lines) => solve_cyclic(&mut self.mass, &self.grid, axis, lines),
            }
        }
        let bounds = &mut self.bounds;
        for &(k, region) in &bounds.sink_cells {
            bounds.absorbed_regions[region as usize] += self.mass[k];
            self.mass[k] = 0.0;
        }
        if bounds.absorbs() {
            bounds.survival_integral += dt * self.mass.iter().sum::<f64>();
        }
        self.steps += 1;
    }
}

/// A periodic axis: each line solved on its own (axis 0's columns gathered and scattered).
fn solve_cyclic(mass: &mut [f64], grid: &Grid, axis: usize, lines: &[CyclicLine]) {
    let (len, stride, _) = grid.lines(axis);
    if axis == 1 {
        mass.par_chunks_mut(len)
            .zip(lines.par_iter())
            .for_each(|(row, line)| line.solve(row));
        return;
    }
    let solved: Vec<Vec<f64>> = lines
        .par_iter()
        .enumerate()
        .map(|(j, line)| {
            let mut x: Vec<f64> = (0..len).map(|i| mass[j + i * stride]).collect();
            line.solve(&mut x);
            x
        })
        .collect();
    for (j, x) in solved.iter().enumerate() {
        for (i, v) in x.iter().enumerate() {
            mass[j + i * stride] = *v;
        }
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
