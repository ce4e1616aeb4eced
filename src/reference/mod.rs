//! Reference densities for the particle histograms (`[output] reference = ...`): the grid
//! Fokker–Planck solution, the stationary (Boltzmann) density, or the Ornstein–Uhlenbeck
//! closed form, as probabilities on the histogram's bins at each snapshot time.
//!
//! A histogram of axes A has a reference only where the coordinates x_A move on their own.
//! For Langevin dynamics that is where the potential separates A from the other axes,
//! U(x, t) = U_A(x_A, t) + U_rest(x_rest, t): then x_A follows Langevin dynamics in U_A, and
//! its law solves the Fokker–Planck equation of U_A from the marginal of the initial law,
//! whatever the other axes do. For the general SDE (`References::Sde`) it is where the drifts
//! f_a of the axes a in A and the diffusion D read no coordinate outside A: the marginal
//! then solves d rho / dt = -div(f_A rho) + laplacian(D rho) on A.

pub mod boundary;
pub mod law;
pub mod solver;
pub mod spectrum;

use crate::dynamics::References;
use crate::dynamics::underdamped::UnderdampedPlan;
use crate::error::ScenarioIssue;
use crate::model::expr::{Point, SdeModel};
use crate::model::{Potential, Temperature};
use crate::scenario::data::SampleTable;
// The solver's closures build points on the stack, up to the largest particles.dim.
use crate::scenario::{DynamicsPlan, HistogramSpec, Init, MAX_DIM, Plan, ReferenceKind};
use law::Gaussian;
use solver::{Coefficients, FieldFn, FokkerPlanck, Grid, PotentialFn};

/// Largest solver time step. Backward Euler is first order in dt; at 1e-3 its error is well
/// below the sampling noise of 1e8 particles on 128^2 bins in the tests' problems.
pub const SOLVER_DT: f64 = 1e-3;

/// Solver cells per axis aimed at: bins are refined by a whole factor up to this (a bin that
/// is already this fine is used as is).
pub const SOLVER_CELLS_1D: u32 = 2048;
pub const SOLVER_CELLS_2D: u32 = 256;

/// The potential of the axes `axes`, U_A(y, t) = U(x, t) with x_A = y and the other
/// coordinates at a fixed base point (where U_rest is 0 for the built-in potentials).
#[derive(Debug, Clone)]
pub struct AxisPotential {
    potential: Potential,
    base: Vec<f64>,
    axes: Vec<usize>,
}

impl AxisPotential {
    fn point(&self, y: &[f64]) -> Vec<f64> {
        let mut x = self.base.clone();
        for (k, &a) in self.axes.iter().enumerate() {
            x[a] = y[k];
        }
        x
    }

    /// U_A(y) (at t = 0 for a potential that depends on time).
    pub fn value(&self, y: &[f64]) -> f64 {
        self.potential.value(&self.point(y))
    }

    /// U_A(y, t).
    pub fn value_at(&self, y: &[f64], t: f64) -> f64 {
        self.potential.value_at(&self.point(y), t)
    }

    /// grad U_A(y, t) on the axes.
    pub fn gradient_at(&self, y: &[f64], t: f64) -> Vec<f64> {
        let g = self.potential.gradient_at(&self.point(y), t);
        self.axes.iter().map(|&a| g[a]).collect()
    }

    /// U_A as the grid solver samples it: an expression through a tape of U alone, its
    /// point and scratch reused (it is evaluated at every cell and, when it depends on t, at
    /// every step).
    fn sampler(&self) -> PotentialFn {
        match &self.potential {
            Potential::Expr(e) if self.base.len() <= MAX_DIM => {
                let tape = e.value_tape();
                let params = e.params();
                let dim = self.base.len();
                let mut base = [0.0; MAX_DIM];
                base[..dim].copy_from_slice(&self.base);
                let axes = self.axes.clone();
                Box::new(move |y, t, scratch| {
                    let mut x = base;
                    for (k, &a) in axes.iter().enumerate() {
                        x[a] = y[k];
                    }
                    let mut out = [0.0];
                    tape.eval_into(&Point::new(&x[..dim], t), &params, scratch, &mut out);
                    out[0]
                })
            }
            _ => {
                let me = self.clone();
                Box::new(move |y, t, _| me.value_at(y, t))
            }
        }
    }
}

/// U_A when `potential` separates `axes` from the other axes of `dim`; otherwise why not.
pub fn axis_potential(
    potential: &Potential,
    dim: usize,
    axes: &[usize],
) -> Result<AxisPotential, String> {
    let inside = |a: usize| axes.contains(&a);
    let base = match potential {
        Potential::DoubleWell => vec![0.0; dim],
        Potential::Quadratic { matrix, center } => {
            for a in axes {
                for b in (0..dim).filter(|&b| !inside(b)) {
                    if matrix[*a][b] != 0.0 {
                        return Err(format!(
                            "the quadratic matrix couples axis {a} (histogrammed) with axis {b} \
                             (matrix[{a}][{b}] = {}); a reference needs it block-diagonal \
                             between the histogram axes and the others",
                            matrix[*a][b]
                        ));
                    }
                }
            }
            center.clone()
        }
        Potential::MuellerBrown { .. } => {
            if dim >= 2 && inside(0) != inside(1) {
                return Err(
                    "mueller_brown couples axes 0 and 1: a reference needs both among the \
                     histogram axes, or neither"
                        .into(),
                );
            }
            vec![0.0; dim]
        }
        Potential::Expr(e) => {
            if let Some((a, b)) = e.coupling(axes) {
                return Err(format!(
                    "the potential expression couples axis {a} (histogrammed) with axis {b} \
                     (d2U/dx{a}dx{b} is not 0); a reference needs U = U_A(histogram axes) + \
                     U_rest(other axes)"
                ));
            }
            vec![0.0; dim]
        }
        Potential::Wgsl(w) => {
            return Err(format!(
                "the potential is WGSL ({}), which has no CPU form; a reference needs the \
                 potential as an expression",
                w.wgsl
            ));
        }
        Potential::Mixture(_) => {
            if axes.len() != dim {
                return Err(format!(
                    "a mixture potential couples all {dim} axes: a reference needs a histogram \
                     of every axis (dim <= 2)"
                ));
            }
            vec![0.0; dim]
        }
    };
    Ok(AxisPotential {
        potential: potential.clone(),
        base,
        axes: axes.to_vec(),
    })
}

/// The dynamics a grid, stationary or OU reference describes.
enum Model<'a> {
    Langevin {
        potential: &'a Potential,
        temperature: &'a Temperature,
    },
    /// Plain gradient descent: Langevin at T = 0 (its analytic reference: exp(-A t)).
    Descent {
        potential: &'a Potential,
    },
    Sde {
        model: &'a SdeModel,
    },
}

fn model(dynamics: &DynamicsPlan) -> Option<Model<'_>> {
    match dynamics.references() {
        References::Langevin {
            potential,
            temperature,
        } => Some(Model::Langevin {
            potential,
            temperature,
        }),
        References::Descent { potential } => Some(Model::Descent { potential }),
        References::Sde { model } => Some(Model::Sde { model }),
        References::None | References::ExactLaw { .. } | References::Underdamped(_) => None,
    }
}

/// Why an underdamped run's `kind` reference cannot be made on the histogram of axes
/// `axes` (phase-space axes: positions below dim, velocities from dim).
fn underdamped_issue(
    u: &UnderdampedPlan,
    kind: ReferenceKind,
    dim: usize,
    axes: &[usize],
) -> Option<String> {
    let positions: Vec<usize> = axes.iter().copied().filter(|&a| a < dim).collect();
    match kind {
        ReferenceKind::Analytic => Some(
            "\"analytic\" has no closed form for kind = underdamped; use \"fokker_planck\" (a \
             position and its velocity) or \"boltzmann\""
                .into(),
        ),
        ReferenceKind::FokkerPlanck => {
            let [a, v] = axes else {
                return Some(kramers_axes(dim));
            };
            if *v != a + dim {
                return Some(kramers_axes(dim));
            }
            axis_potential(&u.potential, dim, &[*a]).err()
        }
        ReferenceKind::Boltzmann => {
            if u.temperature.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
                return Some("\"boltzmann\" needs dynamics.temperature > 0".into());
            }
            if u.potential.is_timed() {
                return Some("\"boltzmann\" needs a potential that does not depend on t".into());
            }
            if positions.is_empty() {
                None
            } else {
                axis_potential(&u.potential, dim, &positions).err()
            }
        }
    }
}

/// Kramers' equation on the grid has no walls: "fokker_planck" is refused for an
/// underdamped run with a wall on the histogram's position axis ("boltzmann" holds: elastic
/// walls keep Boltzmann x Maxwell stationary).
fn underdamped_walls_issue(
    plan: &Plan,
    kind: ReferenceKind,
    dim: usize,
    axes: &[usize],
) -> Option<String> {
    let walled = axes
        .iter()
        .find(|&&a| a < dim && !plan.boundary.wall(a).is_free())?;
    (kind == ReferenceKind::FokkerPlanck).then(|| {
        format!(
            "\"fokker_planck\" for kind = underdamped solves Kramers' equation without walls, \
             and axis {walled} has a [boundary] wall; use \"boltzmann\" (with the histogram's \
             range equal to the wall interval)"
        )
    })
}

fn kramers_axes(dim: usize) -> String {
    format!(
        "\"fokker_planck\" for kind = underdamped solves Kramers' equation of one position and \
         its own velocity: histogram axes [a, a + dim] (dim = {dim}, e.g. [0, {dim}])"
    )
}

/// The underdamped reference: Kramers' equation on (x_a, v_a) from the initial law
/// (positions from `particles.init`, velocities Maxwell or given), or the stationary
/// Boltzmann x Maxwell law on the bins.
fn underdamped_track(
    plan: &Plan,
    u: &UnderdampedPlan,
    kind: ReferenceKind,
    spec: &HistogramSpec,
    samples: Option<&SampleTable>,
) -> Result<Track, String> {
    let dim = plan.particles.dim as usize;
    let axes: Vec<usize> = spec.axes.iter().map(|&a| a as usize).collect();
    if let Some(why) = underdamped_issue(u, kind, dim, &axes)
        .or_else(|| underdamped_walls_issue(plan, kind, dim, &axes))
    {
        return Err(why);
    }
    let velocity_law = u.initial_velocity_law();
    // Bin (or cell) masses of a Gaussian N(mean, std^2) along grid axis k (std 0: a point).
    let normal_cells = |grid: &Grid, k: usize, mean: f64, std: f64| -> Vec<f64> {
        (0..grid.cells[k])
            .map(|i| {
                let lo = grid.range[k][0] + i as f64 * grid.width(k);
                law::normal_mass(lo, lo + grid.width(k), mean, std)
            })
            .collect()
    };
    let outer = |a: &[f64], b: &[f64]| -> Vec<f64> {
        a.iter()
            .flat_map(|x| b.iter().map(move |y| x * y))
            .collect()
    };
    match kind {
        ReferenceKind::FokkerPlanck => {
            let (a, v) = (axes[0], axes[1] - dim);
            let refine = refinement(spec);
            let grid = grid_of(spec, refine);
            let line = Grid::new(vec![grid.cells[0]], vec![grid.range[0]]);
            let x_mass = law::initial_masses(&line, &[a], &plan.particles.init, samples)?;
            let (scale, mean) = velocity_law[v];
            let v_mass = normal_cells(&grid, 1, mean, scale);
            let mass = outer(&x_mass, &v_mass);
            let axis = axis_potential(&u.potential, dim, &[a])?;
            let gradient = move |x: f64, t: f64| axis.gradient_at(&[x], t)[0];
            let coefficients = Coefficients::kramers(
                gradient,
                u.potential.is_timed(),
                u.gamma,
                u.mass[a],
                u.temperature,
            );
            Ok(Track::Solver {
                fp: FokkerPlanck::with_coefficients(grid, coefficients, mass, SOLVER_DT),
                refine,
                start: None,
                absorbs: false,
            })
        }
        ReferenceKind::Boltzmann => {
            let bins = grid_of(spec, 1);
            let positions: Vec<usize> = axes.iter().copied().filter(|&a| a < dim).collect();
            // The positions' Boltzmann masses on their own bins (midpoint rule on cells 8
            // times finer), then each velocity axis's Maxwell N(0, T / m) masses.
            let position_bins = if positions.is_empty() {
                vec![1.0]
            } else {
                let own = HistogramSpec {
                    axes: positions.iter().map(|&a| a as u32).collect(),
                    bins: axes
                        .iter()
                        .zip(&spec.bins)
                        .filter(|(a, _)| **a < dim)
                        .map(|(_, b)| *b)
                        .collect(),
                    range: axes
                        .iter()
                        .zip(&spec.range)
                        .filter(|(a, _)| **a < dim)
                        .map(|(_, r)| *r)
                        .collect(),
                };
                let fine = grid_of(&own, 8);
                let potential = axis_potential(&u.potential, dim, &positions)?;
                let cell: Vec<f64> = fine.centres().iter().map(|y| potential.value(y)).collect();
                restrict(&law::boltzmann_masses(&cell, u.temperature), &fine, 8)
            };
            let mut p = position_bins;
            for (k, &a) in axes.iter().enumerate() {
                if a >= dim {
                    let std = (u.temperature / u.mass[a - dim]).sqrt();
                    let maxwell = normal_cells(&bins, k, 0.0, std);
                    // Axis order: a velocity first (then a position) is the outer factor.
                    p = if k == 0 && axes.len() == 2 && axes[1] < dim {
                        outer(&maxwell, &p)
                    } else {
                        outer(&p, &maxwell)
                    };
                }
            }
            Ok(Track::Boltzmann(p))
        }
        ReferenceKind::Analytic => Err("\"analytic\" has no closed form".into()),
    }
}

/// Why the SDE's law on `axes` is not its own (None when it is).
fn sde_coupling(model: &SdeModel, axes: &[usize]) -> Option<String> {
    let dim = model.dim();
    let (a, b) = model.couples(axes)?;
    let what = if a == dim {
        "the diffusion D".to_string()
    } else {
        format!("the drift of axis {a} (histogrammed)")
    };
    Some(format!(
        "{what} reads x{b}, an axis outside the histogram; a reference needs the drifts of \
         the histogram axes and D to read only those axes"
    ))
}

/// Per histogram axis the solver's boundary, and the absorbing targets as solver regions
/// (each with its key, for messages).
pub type GridBoundaries = (Vec<boundary::AxisBoundary>, Vec<(String, boundary::Region)>);

/// How the grid reference of the histogram `spec` takes the run's `[boundary]` and absorbing
/// `[[observe.first_passage]]` targets (docs/architecture.md, "Boundaries and rates"): per
/// histogram axis the solver's boundary (a reflecting or periodic axis needs the histogram's
/// range on it to be the wall interval, which the grid then spans), and each absorbing target
/// as an absorbing region on the histogram's axes (it may constrain no other axis: the
/// histogram's marginal would not move on its own). Targets that only record are not the
/// grid's business. Err: why the grid cannot follow, naming the keys.
pub fn grid_boundaries(
    plan: &Plan,
    key: &str,
    spec: &HistogramSpec,
) -> Result<GridBoundaries, String> {
    use crate::scenario::boundary::{Region as Target, Wall};
    let axes: Vec<usize> = spec.axes.iter().map(|&a| a as usize).collect();
    let name = |a: usize| match a {
        0 => "x".to_string(),
        1 => "y".to_string(),
        2 => "z".to_string(),
        _ => format!("x{a}"),
    };
    let mut sides = Vec::with_capacity(axes.len());
    for (k, &a) in axes.iter().enumerate() {
        let wall = plan.boundary.wall(a);
        let side = match wall {
            Wall::Free => boundary::AxisBoundary::Free,
            Wall::Reflecting { .. } => boundary::AxisBoundary::Reflecting,
            Wall::Periodic { .. } => boundary::AxisBoundary::Periodic,
        };
        if let Some((low, high)) = wall.interval() {
            let [lo, hi] = spec.range[k];
            if (lo, hi) != (low, high) {
                return Err(format!(
                    "the grid reference spans the histogram's range, which on a {} axis must \
                     be the wall interval: boundary.{} is [{low}, {high}], {key}.range[{k}] is \
                     [{lo}, {hi}] (set {key}.range[{k}] = [{low}, {high}])",
                    if side == boundary::AxisBoundary::Periodic {
                        "periodic"
                    } else {
                        "reflecting"
                    },
                    name(a)
                ));
            }
        }
        sides.push(side);
    }
    let mut regions = Vec::new();
    for (j, t) in plan.boundary.first_passage.iter().enumerate() {
        if !t.absorb {
            continue;
        }
        let outside = |a: usize| {
            format!(
                "observe.first_passage[{j}] (\"{}\") absorbs on axis {} outside {key}.axes \
                 {:?}: the grid reference of a histogram needs every absorbing target to \
                 constrain only the histogram's axes",
                t.name,
                name(a),
                spec.axes
            )
        };
        let region = match &t.region {
            Target::Box { intervals } => {
                if let Some(a) =
                    (0..intervals.len()).find(|&a| intervals[a].is_some() && !axes.contains(&a))
                {
                    return Err(outside(a));
                }
                boundary::Region::Box(
                    axes.iter()
                        .map(|&a| {
                            intervals
                                .get(a)
                                .copied()
                                .flatten()
                                .unwrap_or([f64::NEG_INFINITY, f64::INFINITY])
                        })
                        .collect(),
                )
            }
            Target::HalfSpace { normal, offset } => {
                if let Some(a) = (0..normal.len()).find(|&a| normal[a] != 0.0 && !axes.contains(&a))
                {
                    return Err(outside(a));
                }
                boundary::Region::HalfSpace {
                    normal: axes
                        .iter()
                        .map(|&a| normal.get(a).copied().unwrap_or(0.0))
                        .collect(),
                    offset: *offset,
                }
            }
        };
        regions.push((
            format!("observe.first_passage[{j}] (\"{}\")", t.name),
            region,
        ));
    }
    Ok((sides, regions))
}

/// Why `kind` cannot be made for the histogram `spec` of a run with walls or absorbing
/// targets (None when it can): "fokker_planck" follows them ([`grid_boundaries`]);
/// "boltzmann" has no stationary density once particles are absorbed; "analytic" (the free
/// OU transient) knows no walls on the histogram's axes and no absorption.
fn boundary_issue(
    plan: &Plan,
    kind: ReferenceKind,
    key: &str,
    spec: &HistogramSpec,
) -> Option<String> {
    let walled = spec
        .axes
        .iter()
        .any(|&a| !plan.boundary.wall(a as usize).is_free());
    let absorbs = plan.boundary.absorbs();
    match kind {
        ReferenceKind::FokkerPlanck => grid_boundaries(plan, key, spec).err(),
        ReferenceKind::Boltzmann if absorbs => Some(
            "\"boltzmann\" has no stationary density with an absorbing observe.first_passage \
             target (every particle is absorbed in the end); use \"fokker_planck\", which \
             absorbs as the particles do"
                .into(),
        ),
        ReferenceKind::Analytic if walled || absorbs => Some(format!(
            "\"analytic\" is the free transient: it knows no [boundary] wall on {key}'s axes \
             and no absorbing observe.first_passage target; use \"fokker_planck\", which \
             follows both"
        )),
        _ => None,
    }
}

/// Every histogram a run observes with a reference: the main one and the marginals, with
/// the key that asked for it.
fn views(plan: &Plan) -> Vec<(String, &HistogramSpec)> {
    let mut v = vec![("output.histogram".to_string(), &plan.output.histogram)];
    for (k, m) in plan.output.marginals.iter().enumerate() {
        v.push((format!("output.marginals[{k}]"), m));
    }
    v
}

/// Why the plan's reference cannot be made (none when it can, or none is asked for).
pub fn check(plan: &Plan) -> Vec<ScenarioIssue> {
    let Some(kind) = plan.output.reference else {
        return Vec::new();
    };
    let issue = |allowed: String| ScenarioIssue {
        key: "output.reference".into(),
        value: format!("\"{}\"", kind.name()),
        allowed,
    };
    if let References::ExactLaw { needs_mixture_init } = plan.dynamics.references() {
        return exact_law_issues(plan, kind, needs_mixture_init)
            .into_iter()
            .map(issue)
            .collect();
    }
    if let References::Underdamped(u) = plan.dynamics.references() {
        let dim = plan.particles.dim as usize;
        return views(plan)
            .into_iter()
            .filter_map(|(key, spec)| {
                let axes: Vec<usize> = spec.axes.iter().map(|&a| a as usize).collect();
                underdamped_issue(u, kind, dim, &axes)
                    .or_else(|| underdamped_walls_issue(plan, kind, dim, &axes))
                    .map(|why| issue(format!("{why} ({key} has axes {:?})", spec.axes)))
            })
            .collect();
    }
    let Some(model) = model(&plan.dynamics) else {
        return vec![issue(format!(
            "a reference for kind = langevin (any reference), sde written as expressions \
             (\"fokker_planck\", and \"boltzmann\" in 1D; a WGSL model has no CPU form), \
             gradient_flow (\"analytic\") or forward, reverse_sde and probability_flow \
             (\"analytic\"); dynamics.kind is {}",
            plan.dynamics.kind_name()
        ))];
    };
    let mut issues = Vec::new();
    if matches!(model, Model::Descent { .. })
        && (kind != ReferenceKind::Analytic
            || !matches!(
                plan.particles.init,
                Init::Gaussian { .. } | Init::Mixture(_)
            ))
    {
        issues.push(issue(
            "\"analytic\" with a gaussian or mixture init for kind = gradient_flow (the law \
             under x' = -A (x - c), exp(-A t) applied to each component); a grid reference \
             needs temperature > 0"
                .into(),
        ));
        return issues;
    }
    let dim = plan.particles.dim as usize;
    for (key, spec) in views(plan) {
        let axes: Vec<usize> = spec.axes.iter().map(|&a| a as usize).collect();
        let separate = match &model {
            Model::Langevin { potential, .. } | Model::Descent { potential } => {
                axis_potential(potential, dim, &axes).err()
            }
            Model::Sde { model } => sde_coupling(model, &axes),
        };
        if let Some(why) = separate {
            issues.push(issue(format!("{why} ({key} has axes {:?})", spec.axes)));
            continue;
        }
        if let Some(why) = boundary_issue(plan, kind, &key, spec) {
            issues.push(issue(why));
        }
        if let Init::Point { at } = &plan.particles.init {
            for (k, &a) in axes.iter().enumerate() {
                let [lo, hi] = spec.range[k];
                if !(lo..=hi).contains(&at[a]) {
                    issues.push(issue(format!(
                        "particles.init.at[{a}] = {} lies outside {key}.range [{lo}, {hi}]",
                        at[a]
                    )));
                }
            }
        }
        if let (Model::Sde { model }, ReferenceKind::Boltzmann) = (&model, kind) {
            if let Err(why) = sde_stationary(model, spec, &axes) {
                issues.push(issue(format!("{why} ({key} has axes {:?})", spec.axes)));
            }
        }
    }
    match (&model, kind) {
        (Model::Langevin { temperature, .. }, ReferenceKind::Boltzmann) => {
            match temperature.constant() {
                None => issues.push(issue(
                    "\"boltzmann\" needs a constant dynamics.temperature: under a schedule T(t) \
                     there is no stationary density; use \"fokker_planck\""
                        .into(),
                )),
                Some(t) if t.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) => {
                    issues.push(issue(
                        "\"boltzmann\" needs dynamics.temperature > 0 (exp(-U/T) is undefined \
                         at T = 0)"
                            .into(),
                    ))
                }
                Some(_) => {}
            }
            if let Model::Langevin { potential, .. } = &model {
                if potential.is_timed() {
                    issues.push(issue(
                        "\"boltzmann\" needs a potential that does not depend on t: U(x, t) \
                         has no stationary density; use \"fokker_planck\""
                            .into(),
                    ));
                }
            }
        }
        (
            Model::Langevin {
                potential,
                temperature,
            },
            ReferenceKind::Analytic,
        ) => {
            if !matches!(potential, Potential::Quadratic { .. }) {
                issues.push(issue(
                    "\"analytic\" exists only for a quadratic potential (the Ornstein–Uhlenbeck \
                     transient); use \"fokker_planck\" or \"boltzmann\""
                        .into(),
                ));
            }
            if temperature.constant().is_none() {
                issues.push(issue(
                    "\"analytic\" needs a constant dynamics.temperature: under a schedule T(t) \
                     the process is not the Ornstein–Uhlenbeck process of the closed form; use \
                     \"fokker_planck\""
                        .into(),
                ));
            }
            if matches!(
                plan.particles.init,
                Init::Uniform { .. } | Init::Samples { .. }
            ) {
                issues.push(issue(
                    "\"analytic\" needs particles.init of kind point, gaussian or mixture (a \
                     Gaussian stays Gaussian); use \"fokker_planck\""
                        .into(),
                ));
            }
        }
        (Model::Sde { .. }, ReferenceKind::Analytic) => issues.push(issue(
            "\"analytic\" has no closed form for kind = sde; use \"fokker_planck\" (or \
             \"boltzmann\" for the stationary density in 1D)"
                .into(),
        )),
        _ => {}
    }
    issues
}

/// The stationary density of an SDE on the 1D histogram `spec` (axis `axes[0]`), as bin
/// probabilities: with no flux through the box's walls, d/dx (D rho) = f rho, so
/// rho ∝ (1 / D) exp(∫ f / D). Integrated by the midpoint rule on cells 8 times finer than
/// the bins, ∫ f / D between neighbouring cell centres by Simpson's rule (f and D at the two
/// centres and the face between them), then summed onto the bins: second order in the cell
/// width, like the grid solver. Refused where it does not exist in closed form (2D, or f_A or
/// D depending on t) or where D is not positive and finite on the box.
fn sde_stationary(
    model: &SdeModel,
    spec: &HistogramSpec,
    axes: &[usize],
) -> Result<Vec<f64>, String> {
    if axes.len() != 1 {
        return Err(
            "\"boltzmann\" for kind = sde exists in 1D only (rho ∝ exp(∫ f/D) / D); a 2D \
             stationary density has no closed form in general; use \"fokker_planck\""
                .into(),
        );
    }
    if model.is_timed_on(axes) {
        return Err(
            "\"boltzmann\" for kind = sde needs a drift and diffusion that do not depend on t \
             (otherwise there is no stationary density); use \"fokker_planck\""
                .into(),
        );
    }
    let refine = 8;
    let fine = grid_of(spec, refine);
    let field = sde_field(model, axes);
    let n = fine.cells[0];
    let h = fine.width(0);
    let lo = fine.range[0][0];
    let mut scratch = Vec::new();
    let mut at = |x: f64| -> Result<(f64, f64), String> {
        let mut out = [0.0; 2];
        field(&[x], 0.0, &mut scratch, &mut out);
        let (f, d) = (out[0], out[1]);
        if !(d > 0.0 && d.is_finite() && f.is_finite()) {
            return Err(format!(
                "\"boltzmann\" for kind = sde needs D > 0 and finite f on the histogram's \
                 range; at x{} = {x}, f = {f} and D = {d}",
                axes[0]
            ));
        }
        Ok((f, d))
    };
    // log(D rho) at the centres, up to a constant.
    let mut log_q = vec![0.0; n];
    let mut d_centre = vec![0.0; n];
    let (f0, d0) = at(lo + 0.5 * h)?;
    d_centre[0] = d0;
    let mut g_prev = f0 / d0;
    for i in 1..n {
        let (ff, df) = at(lo + i as f64 * h)?;
        let (fc, dc) = at(lo + (i as f64 + 0.5) * h)?;
        let g = fc / dc;
        log_q[i] = log_q[i - 1] + h / 6.0 * (g_prev + 4.0 * ff / df + g);
        d_centre[i] = dc;
        g_prev = g;
    }
    let log_m: Vec<f64> = log_q
        .iter()
        .zip(&d_centre)
        .map(|(q, d)| q - d.ln())
        .collect();
    let top = log_m.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut m: Vec<f64> = log_m.iter().map(|v| (v - top).exp()).collect();
    let z: f64 = m.iter().sum();
    m.iter_mut().for_each(|v| *v /= z);
    Ok(restrict(&m, &fine, refine))
}

/// f_A and D of an SDE on the histogram axes `axes`, as the grid solver samples them (the
/// other coordinates at 0: [`SdeModel::couples`] says they are not read).
fn sde_field(model: &SdeModel, axes: &[usize]) -> FieldFn {
    let tape = model.coefficient_tape();
    let params = model.params();
    let dim = model.dim();
    let axes = axes.to_vec();
    Box::new(move |y, t, scratch, out| {
        let mut x = [0.0; MAX_DIM];
        for (k, &a) in axes.iter().enumerate() {
            x[a] = y[k];
        }
        let mut all = [0.0; MAX_DIM + 1];
        tape.eval_into(
            &Point::new(&x[..dim], t),
            &params,
            scratch,
            &mut all[..=dim],
        );
        for (k, &a) in axes.iter().enumerate() {
            out[k] = all[a];
        }
        out[axes.len()] = all[dim];
    })
}

/// Kinds with a closed-form law (src/dynamics/forward.rs and the reverse kinds) have it as
/// their "analytic" reference, and nothing else.
fn exact_law_issues(plan: &Plan, kind: ReferenceKind, needs_mixture_init: bool) -> Vec<String> {
    if kind != ReferenceKind::Analytic {
        return vec![format!(
            "\"analytic\" for kind = {} (the data law pushed through the process); \
             \"{}\" needs kind = langevin",
            plan.dynamics.kind_name(),
            kind.name()
        )];
    }
    if needs_mixture_init
        && !matches!(
            plan.particles.init,
            Init::Gaussian { .. } | Init::Mixture(_)
        )
    {
        return vec![format!(
            "\"analytic\" for kind = {} needs particles.init of kind gaussian or mixture \
             (a mixture stays a mixture under the process)",
            plan.dynamics.kind_name()
        )];
    }
    Vec::new()
}

/// Solver cells for bins: bins refined by the largest whole factor that keeps each axis at
/// or under the target (factor at least 1).
pub fn refinement(spec: &HistogramSpec) -> usize {
    let target = if spec.bins.len() == 1 {
        SOLVER_CELLS_1D
    } else {
        SOLVER_CELLS_2D
    };
    spec.bins
        .iter()
        .map(|&b| (target / b).max(1) as usize)
        .min()
        .unwrap_or(1)
}

/// The reference at one time, on the histogram's bins.
#[derive(Debug, Clone, PartialEq)]
pub struct ReferenceSnapshot {
    /// Probability of each bin (numpy order). Sums to 1, or, for the analytic law, to the
    /// probability of the range.
    pub probabilities: Vec<f64>,
    /// F = sum p U + T sum p log(p / vol) on the reference's own grid (the solver's cells for
    /// "fokker_planck", the bins otherwise). Under a temperature schedule or a potential that
    /// depends on t, U and T are taken at the snapshot's time (so F need not fall); NaN
    /// where there is no potential (kind = sde, diffusion dynamics).
    pub free_energy: f64,
    /// The grid's survival S(t) (mass not yet absorbed) when the run has absorbing targets;
    /// `probabilities` are then the law of the surviving mass (summing to 1 while S > 0),
    /// as the particle histogram holds the surviving particles only.
    pub survival: Option<f64>,
}

enum Track {
    Solver {
        fp: FokkerPlanck,
        refine: usize,
        /// For a point start, the exact law at t = 0 (all mass in the point's bin; the
        /// solver itself starts from the point spread over the nearest cell centres).
        start: Option<Vec<f64>>,
        /// Absorbing regions (the run's absorbing targets): the bin probabilities are then
        /// the law of the surviving mass, and the survival is reported.
        absorbs: bool,
    },
    Boltzmann(Vec<f64>),
    /// The closed-form law of diffusion dynamics, at any time.
    Diffusion {
        dynamics: DynamicsPlan,
        init: Init,
        data: Option<SampleTable>,
    },
    Analytic {
        /// (weight, initial Gaussian on the axes) per component.
        start: Vec<(f64, Gaussian)>,
        matrix: Vec<f64>,
        center: Vec<f64>,
    },
}

/// A reference for one histogram, advanced through increasing times.
pub struct Reference {
    pub kind: ReferenceKind,
    spec: HistogramSpec,
    temperature: f64,
    /// U_A at the bin centres.
    bin_potential: Vec<f64>,
    track: Track,
}

/// Whether U_A differs between the two ends of a periodic histogram axis (at t = 0, at the
/// bin centres of the other axis): relative 1e-9 is far above the round-off of evaluating a
/// periodic U at both ends and far below any tilt that matters.
fn tilted(plan: &Plan, spec: &HistogramSpec, u: &AxisPotential) -> bool {
    let bins = grid_of(spec, 1);
    (0..spec.axes.len()).any(|k| {
        let crate::scenario::boundary::Wall::Periodic { low, high } =
            plan.boundary.wall(spec.axes[k] as usize)
        else {
            return false;
        };
        bins.centres().iter().any(|c| {
            let (mut a, mut b) = (c.clone(), c.clone());
            a[k] = low;
            b[k] = high;
            let (ua, ub) = (u.value(&a), u.value(&b));
            (ua - ub).abs() > 1e-9 * (1.0 + ua.abs().max(ub.abs()))
        })
    })
}

/// The key of the histogram `spec` in the plan (`output.histogram` or
/// `output.marginals[k]`), for messages.
fn key_of(plan: &Plan, spec: &HistogramSpec) -> String {
    views(plan)
        .into_iter()
        .find(|(_, s)| *s == spec)
        .map_or_else(|| "output.histogram".into(), |(key, _)| key)
}

fn grid_of(spec: &HistogramSpec, refine: usize) -> Grid {
    Grid::new(
        spec.bins.iter().map(|&b| b as usize * refine).collect(),
        spec.range.clone(),
    )
}

impl Reference {
    /// The reference of `kind` for the histogram `spec` of `plan` (checked by [`check`]).
    pub fn new(
        plan: &Plan,
        kind: ReferenceKind,
        spec: &HistogramSpec,
        samples: Option<&SampleTable>,
        data: Option<&SampleTable>,
    ) -> Result<Reference, String> {
        if let References::ExactLaw { needs_mixture_init } = plan.dynamics.references() {
            if let Some(why) = exact_law_issues(plan, kind, needs_mixture_init)
                .into_iter()
                .next()
            {
                return Err(why);
            }
            return Ok(Reference {
                kind,
                spec: spec.clone(),
                // No potential: the free energy is left out.
                temperature: f64::NAN,
                bin_potential: vec![0.0; spec.total_bins()],
                track: Track::Diffusion {
                    dynamics: plan.dynamics.clone(),
                    init: plan.particles.init.clone(),
                    data: data.cloned(),
                },
            });
        }
        if let References::Underdamped(u) = plan.dynamics.references() {
            return Ok(Reference {
                kind,
                spec: spec.clone(),
                // The free energy is left out (phase space).
                temperature: f64::NAN,
                bin_potential: vec![0.0; spec.total_bins()],
                track: underdamped_track(plan, u, kind, spec, samples)?,
            });
        }
        let model = model(&plan.dynamics)
            .ok_or("a reference needs kind = langevin, sde or gradient_flow")?;
        let dim = plan.particles.dim as usize;
        let axes: Vec<usize> = spec.axes.iter().map(|&a| a as usize).collect();
        let solver = |coefficients: Coefficients| -> Result<Track, String> {
            let refine = refinement(spec);
            let grid = grid_of(spec, refine);
            let mass = law::initial_masses(&grid, &axes, &plan.particles.init, samples)?;
            let start = match &plan.particles.init {
                Init::Point { at } => {
                    let point: Vec<f64> = axes.iter().map(|&a| at[a]).collect();
                    Some(point_bins(spec, &point))
                }
                _ => None,
            };
            let mut fp = FokkerPlanck::with_coefficients(grid, coefficients, mass, SOLVER_DT);
            let (sides, regions) = grid_boundaries(plan, &key_of(plan, spec), spec)?;
            let absorbs = !regions.is_empty();
            if !plan.boundary.is_empty() {
                fp = fp.with_boundaries(sides)?;
                for (name, region) in regions {
                    fp = fp
                        .with_absorbing_region(region)
                        .map_err(|e| format!("{name}: {e}"))?;
                }
            }
            Ok(Track::Solver {
                fp,
                refine,
                start,
                absorbs,
            })
        };
        let (potential, schedule) = match model {
            Model::Sde { model } => {
                if let Some(why) = sde_coupling(model, &axes) {
                    return Err(why);
                }
                let track = match kind {
                    ReferenceKind::FokkerPlanck => solver(Coefficients::General {
                        field: sde_field(model, &axes),
                        timed: model.is_timed_on(&axes),
                        axis_scale: [1.0; 2],
                    })?,
                    ReferenceKind::Boltzmann => {
                        Track::Boltzmann(sde_stationary(model, spec, &axes)?)
                    }
                    ReferenceKind::Analytic => {
                        return Err(
                            "\"analytic\" has no closed form for kind = sde; use \"fokker_planck\""
                                .into(),
                        );
                    }
                };
                return Ok(Reference {
                    kind,
                    spec: spec.clone(),
                    // No potential: the free energy is left out.
                    temperature: f64::NAN,
                    bin_potential: vec![0.0; spec.total_bins()],
                    track,
                });
            }
            Model::Langevin {
                potential,
                temperature,
            } => (potential, temperature.clone()),
            Model::Descent { potential } => (potential, Temperature::Constant(0.0)),
        };
        let u = axis_potential(potential, dim, &axes)?;
        let bins = grid_of(spec, 1);
        // U at t = 0 and the constant T: what the Boltzmann and OU references (which need
        // both constant) take for their free energy.
        let bin_potential: Vec<f64> = bins.centres().iter().map(|y| u.value(y)).collect();
        let temperature = schedule.constant().unwrap_or(f64::NAN);
        if kind != ReferenceKind::FokkerPlanck && (temperature.is_nan() || potential.is_timed()) {
            return Err(format!(
                "\"{}\" needs a constant temperature and a potential that does not depend on \
                 t; use \"fokker_planck\"",
                kind.name()
            ));
        }
        let track = match kind {
            // A potential that is not periodic on a periodic axis (a tilted washboard
            // U = V(x) - F x) has a periodic force but no periodic U: the gradient flux's wrap
            // face would take U_first - U_last, so the grid takes f = -grad U, D = T as a
            // general drift there (docs/architecture.md, "Boundaries and rates").
            ReferenceKind::FokkerPlanck if tilted(plan, spec, &u) => {
                let timed = potential.is_timed() || schedule.constant().is_none();
                solver(Coefficients::general(
                    move |y, t, _, out| {
                        let g = u.gradient_at(y, t);
                        for (o, gk) in out.iter_mut().zip(&g) {
                            *o = -gk;
                        }
                        out[g.len()] = schedule.at(t).max(0.0);
                    },
                    timed,
                ))?
            }
            ReferenceKind::FokkerPlanck => solver(Coefficients::Gradient {
                potential: u.sampler(),
                potential_timed: potential.is_timed(),
                temperature_timed: schedule.constant().is_none(),
                // As the particles' step takes it (src/dynamics/langevin.rs).
                temperature: Box::new(move |t| schedule.at(t).max(0.0)),
            })?,
            ReferenceKind::Boltzmann => {
                // Midpoint quadrature on cells 8 times finer than the bins, then summed.
                let fine = grid_of(spec, 8);
                let cell_potential: Vec<f64> = fine.centres().iter().map(|y| u.value(y)).collect();
                let m = law::boltzmann_masses(&cell_potential, temperature);
                Track::Boltzmann(restrict(&m, &fine, 8))
            }
            ReferenceKind::Analytic => {
                let Potential::Quadratic { matrix, center } = potential else {
                    return Err("\"analytic\" needs a quadratic potential".into());
                };
                let n = axes.len();
                let block: Vec<f64> = (0..n * n)
                    .map(|k| matrix[axes[k / n]][axes[k % n]])
                    .collect();
                let pick = |v: &[f64]| axes.iter().map(|&a| v[a]).collect::<Vec<f64>>();
                let diag = |s: &[f64]| {
                    let mut c = vec![0.0; n * n];
                    for (k, &a) in axes.iter().enumerate() {
                        c[k * n + k] = s[a] * s[a];
                    }
                    c
                };
                let start = match &plan.particles.init {
                    Init::Point { at } => vec![(
                        1.0,
                        Gaussian {
                            mean: pick(at),
                            cov: vec![0.0; n * n],
                        },
                    )],
                    Init::Gaussian { mean, std } => vec![(
                        1.0,
                        Gaussian {
                            mean: pick(mean),
                            cov: diag(std),
                        },
                    )],
                    Init::Mixture(m) => (0..m.components())
                        .map(|k| {
                            (
                                m.weights[k],
                                Gaussian {
                                    mean: pick(&m.means[k]),
                                    cov: diag(&m.stds[k]),
                                },
                            )
                        })
                        .collect(),
                    _ => return Err("\"analytic\" needs a point, gaussian or mixture init".into()),
                };
                Track::Analytic {
                    start,
                    matrix: block,
                    center: pick(center),
                }
            }
        };
        Ok(Reference {
            kind,
            spec: spec.clone(),
            temperature,
            bin_potential,
            track,
        })
    }

    /// The grid's escape rate into the run's absorbing targets
    /// ([`FokkerPlanck::escape_rate`]: the lowest eigenvalue of the discretised generator
    /// with the targets' cells as sinks). None without an absorbing target or a grid, or
    /// when the coefficients depend on t (no single rate); Err where the solver has no
    /// rate for the grid (a general drift in 2D or on a periodic axis).
    pub fn escape_rate(&self) -> Option<Result<f64, String>> {
        match &self.track {
            Track::Solver { fp, absorbs, .. } if *absorbs && !fp.is_timed() => {
                Some(fp.escape_rate())
            }
            _ => None,
        }
    }

    /// U_A at the bin centres.
    pub fn bin_potential(&self) -> &[f64] {
        &self.bin_potential
    }

    pub fn temperature(&self) -> f64 {
        self.temperature
    }

    /// The reference at `time` (for the solver: not before a time already reached).
    pub fn at(&mut self, time: f64) -> ReferenceSnapshot {
        let bins = grid_of(&self.spec, 1);
        let on_bins = |p: Vec<f64>, u: &[f64], t: f64| {
            let total: f64 = p.iter().sum();
            let normalised: Vec<f64> = p.iter().map(|v| v / total.max(f64::MIN_POSITIVE)).collect();
            let free_energy = solver::free_energy(&normalised, u, t, bins.volume());
            ReferenceSnapshot {
                probabilities: p,
                free_energy,
                survival: None,
            }
        };
        match &mut self.track {
            Track::Solver {
                fp,
                refine,
                start,
                absorbs,
            } => {
                fp.advance_to(time);
                let survival = absorbs.then(|| fp.survival());
                let mut probabilities = match start {
                    Some(p) if time <= 0.0 => p.clone(),
                    _ => restrict(fp.mass(), fp.grid(), *refine),
                };
                if let Some(s) = survival.filter(|&s| s > 0.0 && time > 0.0) {
                    probabilities.iter_mut().for_each(|p| *p /= s);
                }
                ReferenceSnapshot {
                    probabilities,
                    free_energy: fp.free_energy(),
                    survival,
                }
            }
            Track::Boltzmann(p) => on_bins(p.clone(), &self.bin_potential, self.temperature),
            Track::Diffusion {
                dynamics,
                init,
                data,
            } => {
                let probabilities = dynamics
                    .exact_law(init, data.as_ref(), time)
                    .map(|law| {
                        law.bin_probabilities(&self.spec.axes, &self.spec.bins, &self.spec.range)
                    })
                    .unwrap_or_else(|| vec![f64::NAN; bins.len()]);
                ReferenceSnapshot {
                    probabilities,
                    free_energy: f64::NAN,
                    survival: None,
                }
            }
            Track::Analytic {
                start,
                matrix,
                center,
            } => {
                let mut p = vec![0.0; bins.len()];
                for (w, g0) in start.iter() {
                    let g = law::ou_transient(matrix, center, self.temperature, g0, time);
                    for (a, b) in p.iter_mut().zip(law::gaussian_bins(&bins, &g)) {
                        *a += w * b;
                    }
                }
                on_bins(p, &self.bin_potential, self.temperature)
            }
        }
    }
}

/// All mass in the bin holding `point` (numpy's rule: [lo, hi) except the last bin).
fn point_bins(spec: &HistogramSpec, point: &[f64]) -> Vec<f64> {
    let mut index = 0;
    for (k, &x) in point.iter().enumerate() {
        let [lo, hi] = spec.range[k];
        let n = spec.bins[k] as usize;
        let i = (((x - lo) / (hi - lo) * n as f64).floor().max(0.0) as usize).min(n - 1);
        index = index * n + i;
    }
    let mut p = vec![0.0; spec.total_bins()];
    p[index] = 1.0;
    p
}

/// Sums fine cells (each bin split `refine` times per axis) into bins.
pub fn restrict(fine: &[f64], grid: &Grid, refine: usize) -> Vec<f64> {
    if refine == 1 {
        return fine.to_vec();
    }
    let n0 = grid.cells[0] / refine;
    let n1f = grid.cells.get(1).copied().unwrap_or(1);
    let n1 = if grid.axes() == 2 { n1f / refine } else { 1 };
    let r1 = if grid.axes() == 2 { refine } else { 1 };
    let mut out = vec![0.0; n0 * n1];
    for (k, &m) in fine.iter().enumerate() {
        let (i, j) = (k / n1f, k % n1f);
        out[(i / refine) * n1 + j / r1] += m;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::resolve_str;
    use std::path::Path;

    fn plan(dynamics: &str, output: &str) -> Plan {
        let text = format!(
            "[particles]\ncount = 1000\ndim = 1\ninit = {{ kind = \"gaussian\", mean = [1.0], \
             std = 0.3 }}\n[dynamics]\n{dynamics}\ndt = 1e-3\nt_end = 1.0\n[output]\n\
             histogram = {{ bins = 40, range = [[-4.0, 4.0]] }}\n{output}\n"
        );
        match resolve_str(&text, "t.toml", Path::new(""), &[], None) {
            Ok(r) => r.plan,
            Err(e) => panic!("{e}"),
        }
    }

    fn underdamped(axes: &str, reference: &str) -> Result<Plan, String> {
        let text = format!(
            "[particles]\ncount = 1000\ndim = 1\ninit = {{ kind = \"gaussian\", mean = [1.0], \
             std = 0.3 }}\n[dynamics]\nkind = \"underdamped\"\npotential = {{ kind = \
             \"quadratic\", matrix = [[1.0]] }}\ntemperature = 0.5\nmass = 2.0\ndt = 1e-2\n\
             t_end = 1.0\n[output]\nhistogram = {{ axes = {axes}, bins = 40, range = \
             [[-4.0, 4.0], [-3.0, 3.0]] }}\nreference = \"{reference}\"\n"
        );
        resolve_str(&text, "t.toml", Path::new(""), &[], None)
            .map(|r| r.plan)
            .map_err(|e| e.to_string())
    }

    /// Underdamped references: Kramers' equation on (x, v) starts from the initial law
    /// (positions N(1, 0.3^2), velocities Maxwell N(0, T/m)), whose bin masses are exact
    /// normal masses (the solver's cells restricted to bins: 1e-12 covers the sums' round-off
    /// over 40 x 40 bins); Boltzmann x Maxwell of a harmonic U is a product of exact normal
    /// masses up to the midpoint rule's O(h^2) on cells 8 times finer than the bins (h = 0.025,
    /// U'' = 1, T = 0.5: relative error h^2 U''/(24 T) ~ 5e-5 per bin, so 1e-4 of the largest
    /// bin is a bound); "analytic" and axes other than a position and its own velocity are
    /// refused for "fokker_planck".
    #[test]
    fn underdamped_references_start_from_the_phase_space_law_and_end_in_boltzmann_times_maxwell() {
        let plan = underdamped("[0, 1]", "fokker_planck").expect("valid");
        let spec = &plan.output.histogram;
        let mut r = Reference::new(&plan, ReferenceKind::FokkerPlanck, spec, None, None)
            .expect("reference");
        let start = r.at(0.0).probabilities;
        let edges = |lo: f64, hi: f64, k: usize| lo + k as f64 * (hi - lo) / 40.0;
        let mut worst: f64 = 0.0;
        for i in 0..40 {
            let px = law::normal_mass(edges(-4.0, 4.0, i), edges(-4.0, 4.0, i + 1), 1.0, 0.3);
            for j in 0..40 {
                let pv = law::normal_mass(edges(-3.0, 3.0, j), edges(-3.0, 3.0, j + 1), 0.0, 0.5);
                worst = worst.max((start[i * 40 + j] - px * pv).abs());
            }
        }
        assert!(worst < 1e-12, "initial phase-space law off by {worst:e}");
        let plan = underdamped("[1, 0]", "boltzmann").expect("valid");
        let mut r = Reference::new(
            &plan,
            ReferenceKind::Boltzmann,
            &plan.output.histogram,
            None,
            None,
        )
        .expect("reference");
        let p = r.at(1.0).probabilities;
        // Axes [v, x]: v is the outer (slow) index. Var x = T/k = 0.5, var v = T/m = 0.25.
        let mut worst: f64 = 0.0;
        let mut largest: f64 = 0.0;
        for j in 0..40 {
            let pv = law::normal_mass(edges(-4.0, 4.0, j), edges(-4.0, 4.0, j + 1), 0.0, 0.5);
            for i in 0..40 {
                let px = law::normal_mass(
                    edges(-3.0, 3.0, i),
                    edges(-3.0, 3.0, i + 1),
                    0.0,
                    0.5f64.sqrt(),
                );
                worst = worst.max((p[j * 40 + i] - pv * px).abs());
                largest = largest.max(pv * px);
            }
        }
        assert!(
            worst < 1e-4 * largest,
            "Boltzmann x Maxwell off by {worst:e}"
        );
        for (axes, reference) in [("[1, 0]", "fokker_planck"), ("[0, 1]", "analytic")] {
            let e = underdamped(axes, reference).expect_err("refused");
            assert!(e.contains("output.reference"), "{e}");
        }
    }

    /// kind = sde with drift -x and D = 0.5 is the Langevin dynamics of U = x^2/2 at
    /// T = 0.5: the two references go through the general and the potential-difference
    /// fluxes, whose exponents agree exactly for a quadratic U, so they differ by round-off.
    /// Bound as in tests/reference_general.rs (its first test) for this grid: 2048 cells of
    /// h = 8/2048 on [-4, 4], P <= h |x|max / T; exponents off by at most
    /// dP = (2 * 4 eps Umax + 4 eps h |x|max) / T + 2 eps Pmax, rates by
    /// (T/h^2)(dP + 8 eps (1 + Pmax)), four per column, over t; plus each solver's solves,
    /// 10 eps (1 + 2 dt rho) per step, rho <= 2 (T/h^2 + |x|max/h).
    #[test]
    fn an_sde_reference_equals_the_langevin_reference_of_the_same_dynamics() {
        let sde = plan(
            "kind = \"sde\"\ndrift = [\"-x\"]\ndiffusion = \"0.5\"",
            "reference = \"fokker_planck\"",
        );
        let langevin = plan(
            "kind = \"langevin\"\npotential = { kind = \"quadratic\", matrix = [[1.0]] }\n\
             temperature = 0.5",
            "reference = \"fokker_planck\"",
        );
        let spec = &sde.output.histogram;
        let mut a = Reference::new(&sde, ReferenceKind::FokkerPlanck, spec, None, None).unwrap();
        let mut b =
            Reference::new(&langevin, ReferenceKind::FokkerPlanck, spec, None, None).unwrap();
        let eps = f64::EPSILON;
        let (t, h, x_max, dt) = (0.5, 8.0 / 2048.0, 4.0, SOLVER_DT);
        let p_max = h * x_max / t;
        let dp = (8.0 * eps * 0.5 * x_max * x_max + 4.0 * eps * h * x_max) / t + 2.0 * eps * p_max;
        let dr = t / (h * h) * (dp + 8.0 * eps * (1.0 + p_max));
        let rho = 2.0 * (t / (h * h) + x_max / h);
        for time in [0.25, 1.0] {
            let (pa, pb) = (a.at(time), b.at(time));
            let gap: f64 = pa
                .probabilities
                .iter()
                .zip(&pb.probabilities)
                .map(|(x, y)| (x - y).abs())
                .sum();
            let steps = (time / dt).round();
            let bound = time * 4.0 * dr + 2.0 * steps * 10.0 * eps * (1.0 + 2.0 * dt * rho);
            assert!(gap <= bound, "t = {time}: {gap} above {bound}");
            let total: f64 = pa.probabilities.iter().sum();
            assert!((total - 1.0).abs() < 1e-9, "{total}");
            // No potential, no free energy; the Langevin one has it.
            assert!(pa.free_energy.is_nan() && pb.free_energy.is_finite());
        }
    }

    /// The 1D stationary density of an SDE, exp(∫ f/D) / D: for f = -x, D = 0.5 it is
    /// N(0, 0.5). Simpson's rule integrates the linear f/D exactly, so only the midpoint rule
    /// for each fine cell's mass remains: with psi = log rho = -x^2, psi' = -2x, psi'' = -2,
    /// ∫_cell rho = h rho(x_i) (1 + e), |e| <= (h^2/24)(2 + max_cell psi'^2) e^{h max|psi'|/2}
    /// (h the fine width, bins / 8), and normalised the L1 gap is at most
    /// 2 sum p (e^eta - 1) / sum p e^-eta with eta = |e| / (1 - |e|) per cell; summing cells
    /// into bins only lowers it.
    #[test]
    fn the_stationary_density_of_a_1d_sde_by_quadrature() {
        let p = plan(
            "kind = \"sde\"\ndrift = [\"-x\"]\ndiffusion = \"0.5\"",
            "reference = \"boltzmann\"",
        );
        let spec = &p.output.histogram;
        let model = match p.dynamics.references() {
            References::Sde { model } => model.clone(),
            _ => panic!("an sde"),
        };
        let got = sde_stationary(&model, spec, &[0]).unwrap();
        let bins = grid_of(spec, 1);
        let exact = law::gaussian_bins(
            &bins,
            &Gaussian {
                mean: vec![0.0],
                cov: vec![0.5],
            },
        );
        let z: f64 = exact.iter().sum();
        let exact: Vec<f64> = exact.iter().map(|v| v / z).collect();
        let fine = grid_of(spec, 8);
        let h = fine.width(0);
        let (mut up, mut down) = (0.0, 0.0);
        for i in 0..fine.cells[0] {
            let edge = (fine.centre(0, i).abs() + h / 2.0).max(0.0);
            let psi1 = 2.0 * edge;
            let e = h * h / 24.0 * (2.0 + psi1 * psi1) * (h * psi1 / 2.0).exp();
            let eta = e / (1.0 - e);
            let (lo, hi) = (fine.centre(0, i) - h / 2.0, fine.centre(0, i) + h / 2.0);
            let mass = law::normal_mass(lo, hi, 0.0, 0.5f64.sqrt()) / z;
            up += mass * eta.exp_m1();
            down += mass * (-eta).exp();
        }
        let bound = 2.0 * up / down + 1e-13;
        let gap: f64 = got.iter().zip(&exact).map(|(a, b)| (a - b).abs()).sum();
        assert!(gap <= bound, "{gap} above {bound}");
        // Refusals: 2D, time, D not positive.
        let two = plan_2d_sde("\"0.5\"", "[\"-x\", \"-y\"]");
        let spec2 = &two.output.histogram;
        let m2 = match two.dynamics.references() {
            References::Sde { model } => model.clone(),
            _ => panic!("an sde"),
        };
        assert!(
            sde_stationary(&m2, spec2, &[0, 1])
                .unwrap_err()
                .contains("1D only")
        );
        let timed = plan(
            "kind = \"sde\"\ndrift = [\"-x*(1 + t)\"]\ndiffusion = \"0.5\"",
            "reference = \"fokker_planck\"",
        );
        let mt = match timed.dynamics.references() {
            References::Sde { model } => model.clone(),
            _ => panic!("an sde"),
        };
        assert!(
            sde_stationary(&mt, spec, &[0])
                .unwrap_err()
                .contains("depend on t")
        );
        let flat = plan(
            "kind = \"sde\"\ndrift = [\"-x\"]\ndiffusion = \"0.5*x^2\"",
            "reference = \"fokker_planck\"",
        );
        let mf = match flat.dynamics.references() {
            References::Sde { model } => model.clone(),
            _ => panic!("an sde"),
        };
        // D = 0.5 x^2 vanishes only at x = 0, a face of the fine grid here: the centres and
        // faces the quadrature reads are checked.
        assert!(
            sde_stationary(&mf, spec, &[0])
                .unwrap_err()
                .contains("D > 0")
        );
    }

    fn walled(extra: &str, histogram: &str) -> Plan {
        let text = format!(
            "[particles]\ncount = 1000\ndim = 2\ninit = {{ kind = \"point\", at = [0.0, 0.5] \
             }}\n[dynamics]\nkind = \"langevin\"\npotential = {{ expr = \"x^2/2 + y^2/2\" }}\n\
             dt = 1e-3\nsteps = 10\n[output]\nhistogram = {histogram}\n[boundary]\n\
             y = {{ kind = \"periodic\", low = 0.0, high = 2.0 }}\n{extra}"
        );
        match resolve_str(&text, "t.toml", Path::new(""), &[], None) {
            Ok(r) => r.plan,
            Err(e) => panic!("{e}"),
        }
    }

    /// The scenario's walls and absorbing targets as the solver's: a periodic axis whose
    /// range is its period, free axes free, a box and a half-space cut down to the
    /// histogram's axes (an unnamed axis unbounded), recording targets left out; refused when
    /// a target absorbs on an axis the histogram does not hold, or the range is not the
    /// period.
    #[test]
    fn walls_and_absorbing_targets_map_onto_the_histograms_axes() {
        let targets = "[[observe.first_passage]]\nname = \"a\"\nregion = { y = [1.0, 1.5] }\n\
             absorb = true\n[[observe.first_passage]]\nname = \"b\"\nregion = { normal = \
             [1.0, 0.0], offset = 1.0 }\nabsorb = true\n[[observe.first_passage]]\nname = \
             \"c\"\nregion = { x = [5.0, 6.0] }\n";
        let p = walled(
            targets,
            "{ axes = [0, 1], bins = [10, 10], range = [[-3.0, 3.0], [0.0, 2.0]] }",
        );
        let (sides, regions) =
            grid_boundaries(&p, "output.histogram", &p.output.histogram).unwrap();
        assert_eq!(
            sides,
            vec![
                boundary::AxisBoundary::Free,
                boundary::AxisBoundary::Periodic
            ]
        );
        assert_eq!(regions.len(), 2);
        let inf = f64::INFINITY;
        assert!(
            matches!(&regions[0].1, boundary::Region::Box(b) if *b == vec![[-inf, inf], [1.0, 1.5]])
        );
        assert!(
            matches!(&regions[1].1, boundary::Region::HalfSpace { normal, offset }
            if *normal == vec![1.0, 0.0] && *offset == 1.0)
        );
        // The x marginal alone: the half-space projects, the box on y cannot.
        let p = walled(targets, "{ axes = [0], bins = 10, range = [[-3.0, 3.0]] }");
        let e = grid_boundaries(&p, "output.histogram", &p.output.histogram).unwrap_err();
        assert!(
            e.contains("observe.first_passage[0]") && e.contains("axis y"),
            "{e}"
        );
        let p = walled("", "{ axes = [1], bins = 10, range = [[0.0, 2.5]] }");
        let e = grid_boundaries(&p, "output.histogram", &p.output.histogram).unwrap_err();
        assert!(e.contains("periodic") && e.contains("boundary.y"), "{e}");
    }

    fn plan_2d_sde(diffusion: &str, drift: &str) -> Plan {
        let text = format!(
            "[particles]\ncount = 1000\ndim = 2\ninit = {{ kind = \"point\", at = [0.0, 0.0] }}\n\
             [dynamics]\nkind = \"sde\"\ndrift = {drift}\ndiffusion = {diffusion}\ndt = 1e-3\n\
             t_end = 1.0\n[output]\nhistogram = {{ bins = [20, 20], range = [[-3.0, 3.0], \
             [-3.0, 3.0]] }}\n"
        );
        match resolve_str(&text, "t.toml", Path::new(""), &[], None) {
            Ok(r) => r.plan,
            Err(e) => panic!("{e}"),
        }
    }
}
