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

    /// The rates of every face along `axis` at the sampled time t, laid out like the cells:
    /// entry k holds `(right, left)` of the face between cell k and the next cell along the
    /// axis ((0, 0) for the last cell of a line).
    fn axis_rates(&self, grid: &Grid, axis: usize, t: f64, centre_d: &[f64]) -> Vec<(f64, f64)> {
        let axes = grid.axes();
        let n1 = grid.cells.get(1).copied().unwrap_or(1);
        let len = grid.cells[axis];
        let stride = if axis == 0 { n1 } else { 1 };
        let h = grid.width(axis);
        let index = |k: usize| if axis == 0 { k / n1 } else { k % n1 };
        let mut rates = vec![(0.0, 0.0); grid.len()];
        match self {
            Sampler::Gradient { cells, current, .. } => {
                rates
                    .par_chunks_mut(SAMPLE_CHUNK)
                    .enumerate()
                    .for_each(|(c, chunk)| {
                        for (o, r) in chunk.iter_mut().enumerate() {
                            let k = c * SAMPLE_CHUNK + o;
                            if index(k) + 1 < len {
                                *r = face_rates(cells[k], cells[k + stride], *current, h);
                            }
                        }
                    });
            }
            Sampler::General {
                field, axis_scale, ..
            } => {
                let scale = axis_scale[axis];
                rates
                    .par_chunks_mut(SAMPLE_CHUNK)
                    .enumerate()
                    .for_each(|(c, chunk)| {
                        let mut scratch = Vec::new();
                        let mut out = [0.0; 3];
                        for (o, r) in chunk.iter_mut().enumerate() {
                            let k = c * SAMPLE_CHUNK + o;
                            let i = index(k);
                            if i + 1 >= len {
                                continue;
                            }
                            let mut y = [grid.centre(0, k / n1), grid.centre(1 % axes, k % n1)];
                            y[axis] = grid.range[axis][0] + (i + 1) as f64 * h;
                            field(&y[..axes], t, &mut scratch, &mut out[..=axes]);
                            *r = fitted_rates(
                                h * out[axis],
                                scale * out[axes],
                                scale * centre_d[k],
                                scale * centre_d[k + stride],
                                h,
                            );
                        }
                    });
            }
        }
        rates
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
    factors: Option<(f64, Vec<AxisFactors>)>,
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

    /// Discrete free energy `sum m U + T sum m log(m / vol)` (0 log 0 = 0), for total mass
    /// 1, with U and T at the current time; NaN for a general drift (no potential).
    pub fn free_energy(&self) -> f64 {
        match &self.sampler {
            Sampler::Gradient { cells, current, .. } => {
                free_energy(&self.mass, cells, *current, self.grid.volume())
            }
            Sampler::General { .. } => f64::NAN,
        }
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
    fn build_factors(&self, dt: f64, t: f64) -> Vec<AxisFactors> {
        let centre_d = self.sampler.centre_diffusion(&self.grid, t);
        (0..self.grid.axes())
            .map(|a| {
                let rates = self.sampler.axis_rates(&self.grid, a, t, &centre_d);
                self.axis_factors(a, dt, &rates)
            })
            .collect()
    }

    /// Builds `(I - dt A_axis)` line by line from the face rates and factors it. Axis 1's
    /// lines are the rows (contiguous, factored in parallel); axis 0's are the columns, whose
    /// recurrences run together row after row (each row a contiguous, vectorisable sweep).
    fn axis_factors(&self, axis: usize, dt: f64, rates: &[(f64, f64)]) -> AxisFactors {
        let n0 = self.grid.cells[0];
        let n1 = self.grid.cells.get(1).copied().unwrap_or(1);
        let total = self.grid.len();
        let (mut sub, mut inv, mut sup) = (vec![0.0; total], vec![0.0; total], vec![0.0; total]);
        // One entry of the factorisation: cell i of a line of `len`, from the rates of the
        // faces before and after it and the previous cell's modified super-diagonal.
        let entry = |i: usize, len: usize, left: (f64, f64), right: (f64, f64), prev_c: f64| {
            // Face i-1/2 (into cell i from the left) and i+1/2.
            let (r_left, l_left) = if i > 0 { left } else { (0.0, 0.0) };
            let (r_right, l_right) = if i + 1 < len { right } else { (0.0, 0.0) };
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
                .zip(rates.par_chunks(n1))
                .for_each(|(((sub, inv), sup), rates)| {
                    let mut prev_c = 0.0;
                    for i in 0..n1 {
                        let left = if i > 0 { rates[i - 1] } else { (0.0, 0.0) };
                        let (a, p, c) = entry(i, n1, left, rates[i], prev_c);
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
                let left = if i > 0 { rates[k - n1] } else { (0.0, 0.0) };
                let prev_c = if i > 0 { prev[j] } else { 0.0 };
                let (a, p, c) = entry(i, n0, left, rates[k], prev_c);
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
