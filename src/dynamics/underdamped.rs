//! Underdamped (kinetic) Langevin dynamics
//!   dX = V dt,   M dV = -grad U(X, t) dt - gamma M V dt + sqrt(2 gamma M T) dW,
//! M = diag(mass), integrated by BAOAB (Leimkuhler & Matthews 2013): half kick, half drift,
//! the exact Ornstein–Uhlenbeck velocity step v <- c v + sqrt((1 - c^2) T / m) xi with
//! c = exp(-gamma dt), half drift, half kick. Its stationary law in a harmonic well has
//! position variance exactly T / k at any stable dt and end-of-step velocity variance
//! (T / m)(1 - omega^2 dt^2 / 4) (the velocity right after the O step is exactly
//! Maxwellian). The state is the positions plus a velocity ensemble (`Stepper::extra_state`,
//! checkpointed and written to velocities/ beside particles/), whose axes dim .. 2 dim - 1
//! histograms can read (phase space). The temperature is a number (no schedules).
//!
//! GPU pipeline shaders/underdamped.wgsl; f64 CPU twin [`underdamped_cpu`] with the same
//! Philox noise: stream 0 for the O steps (normal g = step * dim + coordinate, as the other
//! kinds), stream [`rng::STREAM_VELOCITY`] for the Maxwell–Boltzmann initial velocities.

use super::potential_params::{check_potential_shader, potential_shader};
use super::{
    Dynamics, NonfiniteCounter, ParseContext, ParseKind, References, StateMemory, Stepper,
    StepperContext, TwinContext, TwinState,
};
use crate::error::{Error, Result};
use crate::gpu::abi::UnderdampedStep as StepUniform;
use crate::gpu::timer::Work;
use crate::gpu::{Ensemble, Gpu, Kernel};
use crate::model::Potential;
use crate::rng::{self, NoiseStream};
use crate::scenario::boundary::Wall;
use crate::scenario::data::SampleTable;
use crate::scenario::keys;
use crate::scenario::range::SIGMAS;
use crate::scenario::resolve::optional;
use crate::scenario::walk::{Issues, Section, as_number, number};
use crate::shaders;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use toml::Value;

/// The initial velocities.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InitialVelocity {
    /// Maxwell–Boltzmann at the run's temperature: v_k ~ N(0, T / m_k).
    Maxwell,
    /// The same given velocity for every particle.
    Given(Vec<f64>),
}

/// `kind = "underdamped"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnderdampedPlan {
    pub potential: Potential,
    pub temperature: f64,
    /// Friction gamma >= 0 (per unit mass: the O step's c = exp(-gamma dt)).
    pub gamma: f64,
    /// Mass per axis (a scalar in the scenario is expanded to every axis).
    pub mass: Vec<f64>,
    pub initial_velocity: InitialVelocity,
    pub dt: f64,
    pub steps: u64,
    pub t_end: f64,
}

const KEYS: &[&str] = &[
    "kind",
    "potential",
    "temperature",
    "gamma",
    "mass",
    "initial_velocity",
    "dt",
    "t_end",
    "steps",
];

/// A positive number for every axis, or one per axis.
fn per_axis(
    issues: &mut Issues,
    key: &str,
    v: &Value,
    dim: Option<usize>,
    what: &str,
    ok: impl Fn(f64) -> bool,
) -> Option<Vec<f64>> {
    let allowed = match dim {
        Some(d) => format!("{what}: a number, or a list of {d} (one per axis)"),
        None => format!("{what}: a number, or one per axis"),
    };
    let values = match v {
        Value::Array(items) => items
            .iter()
            .map(|x| as_number(x).filter(|x| x.is_finite() && ok(*x)))
            .collect::<Option<Vec<f64>>>()
            .filter(|xs| dim.is_none_or(|d| xs.len() == d)),
        _ => as_number(v)
            .filter(|x| x.is_finite() && ok(*x))
            .and_then(|x| dim.map(|d| vec![x; d])),
    };
    if values.is_none() && dim.is_some() {
        issues.add(key, Some(v), allowed);
    }
    values
}

impl ParseKind for UnderdampedPlan {
    fn parse(
        issues: &mut Issues,
        sec: Section<'_>,
        cx: &ParseContext<'_>,
    ) -> Option<(Self, Option<SampleTable>)> {
        sec.check_keys(KEYS, issues);
        let potential = keys::potential(issues, sec, cx.dim, cx.base_dir);
        let temperature = keys::constant_temperature(
            issues,
            sec,
            "a finite number >= 0 (underdamped takes a constant temperature)",
        );
        let gamma = optional(
            issues,
            sec,
            "gamma",
            || Some(1.0),
            |i, k, v| {
                number(
                    i,
                    k,
                    v,
                    "a finite number >= 0 (friction: M dV = ... - gamma M V dt + ...)",
                    |x| x >= 0.0,
                )
            },
        );
        let mass = optional(
            issues,
            sec,
            "mass",
            || cx.dim.map(|d| vec![1.0; d]),
            |i, k, v| per_axis(i, k, v, cx.dim, "masses > 0", |x| x > 0.0),
        );
        let initial_velocity = optional(
            issues,
            sec,
            "initial_velocity",
            || Some(InitialVelocity::Maxwell),
            |i, k, v| match v {
                Value::String(s) if s == "maxwell" => Some(InitialVelocity::Maxwell),
                Value::Array(_) => {
                    per_axis(i, k, v, cx.dim, "velocities", |_| true).map(InitialVelocity::Given)
                }
                _ => {
                    i.add(
                        k,
                        Some(v),
                        "\"maxwell\" (Maxwell–Boltzmann at the temperature), or a list of one \
                         velocity per axis for every particle",
                    );
                    None
                }
            },
        );
        let dt = keys::positive_dt(issues, sec);
        let (steps, t_end) = keys::duration(issues, sec, dt)?;
        let plan = UnderdampedPlan {
            potential: potential?,
            temperature: temperature?,
            gamma: gamma?,
            mass: mass?,
            initial_velocity: initial_velocity?,
            dt: dt?,
            steps,
            t_end,
        };
        if !check_potential_shader(issues, sec, shaders::UNDERDAMPED, &plan.potential, None) {
            return None;
        }
        Some((plan, None))
    }
}

impl UnderdampedPlan {
    fn dim(&self) -> usize {
        self.mass.len()
    }

    /// The O step's c = exp(-gamma dt) and, per axis, its noise scale
    /// sqrt((1 - c^2) T / m) = sqrt(-expm1(-2 gamma dt) T / m), in f64.
    pub fn ou_coefficients(&self) -> (f64, Vec<f64>) {
        let c = (-self.gamma * self.dt).exp();
        let one_minus_c2 = -(-2.0 * self.gamma * self.dt).exp_m1();
        let scale = self
            .mass
            .iter()
            .map(|m| (one_minus_c2 * self.temperature / m).sqrt())
            .collect();
        (c, scale)
    }

    /// Per axis, the initial velocities' (scale, mean): (sqrt(T / m), 0) for
    /// Maxwell–Boltzmann, (0, v) when given.
    pub fn initial_velocity_law(&self) -> Vec<(f64, f64)> {
        match &self.initial_velocity {
            InitialVelocity::Maxwell => self
                .mass
                .iter()
                .map(|m| ((self.temperature / m).sqrt(), 0.0))
                .collect(),
            InitialVelocity::Given(v) => v.iter().map(|&v| (0.0, v)).collect(),
        }
    }
}

impl Dynamics for UnderdampedPlan {
    fn steps(&self) -> u64 {
        self.steps
    }

    fn time_per_step(&self) -> f64 {
        self.dt
    }

    /// The positions relax towards exp(-U / T) (the default range's box on axes < dim).
    fn potential(&self) -> Option<(&Potential, f64)> {
        Some((&self.potential, self.temperature))
    }

    fn references(&self) -> References<'_> {
        References::Underdamped(self)
    }

    fn velocity_axes(&self) -> bool {
        true
    }

    fn masses(&self) -> Option<&[f64]> {
        Some(&self.mass)
    }

    /// Velocity axis k = axis - dim: Maxwell–Boltzmann's ± 4 sqrt(T / m_k) joined with the
    /// given initial velocity ± 0.5 (± 0.5 alone at T = 0).
    fn velocity_box(&self, axis: usize) -> Option<[f64; 2]> {
        let k = axis.checked_sub(self.dim())?;
        let m = *self.mass.get(k)?;
        let half = SIGMAS * (self.temperature / m).sqrt();
        let (lo, hi) = match &self.initial_velocity {
            InitialVelocity::Maxwell => (-half, half),
            InitialVelocity::Given(v) => ((v[k] - 0.5).min(-half), (v[k] + 0.5).max(half)),
        };
        Some(if lo < hi { [lo, hi] } else { [-0.5, 0.5] })
    }

    fn boundary_refusal(&self, boundary: &crate::scenario::Boundary) -> Option<String> {
        let periodic = !boundary.periodic_axes().is_empty();
        let watched = !boundary.first_passage.is_empty() || !boundary.basins.is_empty();
        (periodic || watched).then(|| {
            "its stepper has reflecting walls only (a velocity flipped at each reflection), \
             no periodic wrap, first-passage targets or basins"
                .to_string()
        })
    }

    fn state_memory(&self, dim: u64) -> StateMemory {
        // The velocities.
        StateMemory {
            floats_per_particle: dim,
            data_rows: 0,
        }
    }

    fn stepper(&self, cx: &StepperContext<'_>) -> Result<Box<dyn Stepper>> {
        Ok(Box::new(UnderdampedGpu::new(cx, self)?))
    }

    fn twin(&self, state: &mut TwinState, cx: &TwinContext<'_>) -> Result<()> {
        if state.extra.len() != state.positions.len() {
            state.extra = initial_velocities_cpu(self, cx.seed, 0, state.positions.len());
        }
        underdamped_cpu(
            &mut state.positions,
            &mut state.extra,
            0,
            self,
            cx.seed,
            cx.step0,
            cx.steps,
        );
        Ok(())
    }
}

/// The initial velocities of particles `first ..` (`len` coordinates, row-major) as the
/// GPU draws them: mean + scale xi, xi normal c of stream [`rng::STREAM_VELOCITY`].
pub fn initial_velocities_cpu(
    plan: &UnderdampedPlan,
    seed: u64,
    first: u64,
    len: usize,
) -> Vec<f64> {
    let key = rng::key_from_seed(seed);
    let law = plan.initial_velocity_law();
    let d = plan.dim();
    (0..len)
        .map(|j| {
            let (p, c) = (first + (j / d) as u64, j % d);
            let (scale, mean) = law[c];
            mean + scale * rng::normal(key, p, rng::STREAM_VELOCITY, c as u64)
        })
        .collect()
}

/// CPU twin of shaders/underdamped.wgsl in f64: BAOAB steps `step0 .. step0 + steps` of
/// particles `first ..` (row-major positions and velocities) with the GPU's noise.
pub fn underdamped_cpu(
    positions: &mut [f64],
    velocities: &mut [f64],
    first: u64,
    plan: &UnderdampedPlan,
    seed: u64,
    step0: u64,
    steps: u64,
) {
    let key = rng::key_from_seed(seed);
    let d = plan.dim();
    let dt = plan.dt;
    let (c, s) = plan.ou_coefficients();
    let hm: Vec<f64> = plan.mass.iter().map(|m| 0.5 * dt / m).collect();
    for (i, (x, v)) in positions
        .chunks_exact_mut(d)
        .zip(velocities.chunks_exact_mut(d))
        .enumerate()
    {
        let mut noise = NoiseStream::new(key, first + i as u64, step0, d as u32);
        let mut g = plan.potential.gradient_at(x, step0 as f64 * dt);
        for k in step0..step0 + steps {
            for a in 0..d {
                v[a] -= hm[a] * g[a];
                x[a] += 0.5 * dt * v[a];
            }
            for a in 0..d {
                v[a] = c * v[a] + s[a] * noise.next_normal();
                x[a] += 0.5 * dt * v[a];
            }
            g = plan.potential.gradient_at(x, (k + 1) as f64 * dt);
            for a in 0..d {
                v[a] -= hm[a] * g[a];
            }
        }
    }
}

/// The BAOAB kernel bound to an ensemble and its velocities.
/// One pipeline (whole rounds or single steps) with its step uniform and a bind group per
/// chunk.
struct Part {
    kernel: Arc<Kernel>,
    step: wgpu::Buffer,
    binds: Vec<wgpu::BindGroup>,
}

pub struct UnderdampedGpu {
    /// Single steps (the partial round at the start of a block), whole rounds, single steps
    /// (the partial round at its end): common/noise.wgsl's layout, as the Langevin kernel.
    parts: [Part; 3],
    velocity: Ensemble,
    key: [u32; 2],
    dim: u32,
    dt: f64,
    ou_c: f32,
    nonfinite: NonfiniteCounter,
}

impl UnderdampedGpu {
    /// Allocates the velocities (chunked like the positions) and draws them.
    pub fn new(cx: &StepperContext<'_>, plan: &UnderdampedPlan) -> Result<Self> {
        let (gpu, ensemble) = (cx.gpu, cx.ensemble);
        let shader =
            potential_shader(shaders::UNDERDAMPED, &plan.potential, None).map_err(|why| {
                Error::Device(format!("the underdamped shader did not compose: {why}"))
            })?;
        let params = gpu.storage_with("potential params", bytemuck::cast_slice(&shader.params));
        let (c, scale) = plan.ou_coefficients();
        let law = plan.initial_velocity_law();
        // Reflecting walls per axis (low, high), 0 where there are none; their bit mask.
        let dim = ensemble.dim as usize;
        let walls: Vec<(f64, f64)> = (0..dim)
            .map(|k| match cx.boundary.wall(k) {
                Wall::Reflecting { low, high } => (low, high),
                _ => (0.0, 0.0),
            })
            .collect();
        let reflect: u32 = (0..dim)
            .filter(|&k| matches!(cx.boundary.wall(k), Wall::Reflecting { .. }))
            .map(|k| 1u32 << k)
            .sum();
        let coef: Vec<f32> = plan
            .mass
            .iter()
            .map(|m| 0.5 * plan.dt / m)
            .chain(scale)
            .chain(law.iter().map(|l| l.0))
            .chain(law.iter().map(|l| l.1))
            .chain(walls.iter().map(|w| w.0))
            .chain(walls.iter().map(|w| w.1))
            .map(|x| x as f32)
            .collect();
        let coef = gpu.storage_with("underdamped coefficients", bytemuck::cast_slice(&coef));
        let velocity = Ensemble::new(
            gpu,
            ensemble.dim,
            ensemble.first,
            ensemble.count,
            cx.chunk_particles,
        )?;
        let nonfinite = NonfiniteCounter::new(gpu);
        let round = super::blocks::round_steps(ensemble.dim);
        let kernel = |init: bool, single: bool| {
            Kernel::new(
                gpu,
                if init {
                    "underdamped initial velocities"
                } else {
                    "underdamped"
                },
                &shader.source,
                &[
                    ("DIM", f64::from(ensemble.dim)),
                    ("POTENTIAL", f64::from(shader.kind)),
                    ("INIT_VELOCITY", if init { 1.0 } else { 0.0 }),
                    ("ROUND_STEPS", f64::from(round)),
                    ("SINGLE_STEPS", if single { 1.0 } else { 0.0 }),
                    ("REFLECT_AXES", f64::from(reflect)),
                ],
                cx.workgroup_size,
            )
        };
        let uniform = || {
            gpu.uniform_with(
                "underdamped step",
                bytemuck::bytes_of(&<StepUniform as bytemuck::Zeroable>::zeroed()),
            )
        };
        let bind = |kernel: &Kernel, step: &wgpu::Buffer| -> Vec<wgpu::BindGroup> {
            ensemble
                .chunks
                .iter()
                .zip(&velocity.chunks)
                .map(|(x, v)| {
                    kernel.bind(
                        gpu,
                        &[
                            &x.state,
                            &x.uniform,
                            step,
                            &params,
                            &nonfinite.buffer,
                            &v.state,
                            &coef,
                        ],
                    )
                })
                .collect()
        };
        let key = rng::key_from_seed(cx.seed);
        // The initial velocities, one submission per chunk (each writes the uniform).
        let init = kernel(true, true);
        let step = uniform();
        for (chunk, group) in ensemble.chunks.iter().zip(bind(&init, &step)) {
            let uniform = StepUniform {
                key,
                first: 0,
                span: chunk.count,
                ..<StepUniform as bytemuck::Zeroable>::zeroed()
            };
            gpu.queue
                .write_buffer(&step, 0, bytemuck::bytes_of(&uniform));
            init.submit_once(gpu, &group, chunk.count, Work::Other);
        }
        let single = kernel(false, true);
        let rounds = kernel(false, false);
        let part = |kernel: &Arc<Kernel>| {
            let step = uniform();
            Part {
                kernel: kernel.clone(),
                binds: bind(kernel, &step),
                step,
            }
        };
        Ok(UnderdampedGpu {
            parts: [part(&single), part(&rounds), part(&single)],
            velocity,
            key,
            dim: ensemble.dim,
            dt: plan.dt,
            ou_c: c as f32,
            nonfinite,
        })
    }
}

impl Stepper for UnderdampedGpu {
    fn submit_slice(
        &mut self,
        gpu: &Gpu,
        ensemble: &Ensemble,
        chunk: usize,
        first: u32,
        span: u32,
        step0: u64,
        steps: u32,
        _stop: &dyn Fn() -> bool,
    ) -> Result<bool> {
        let round = u64::from(super::blocks::round_steps(self.dim));
        let plan = super::blocks::dispatch_plan(step0, u64::from(steps), round, self.dim);
        let particles = span.min(ensemble.chunks[chunk].count.saturating_sub(first));
        super::blocks::submit_plan(gpu, step0, &plan, |encoder, k, at, n| {
            let part = &self.parts[k];
            let (block0, block0_hi, lane0) = rng::noise_start(at, self.dim);
            let uniform = StepUniform {
                key: self.key,
                block0,
                lane0,
                steps: n as u32,
                dt: self.dt as f32,
                ou_c: self.ou_c,
                first,
                span,
                block0_hi,
                t0: (at as f64 * self.dt) as f32,
                _pad: [0; 1],
            };
            gpu.queue
                .write_buffer(&part.step, 0, bytemuck::bytes_of(&uniform));
            let mut pass = encoder.begin_compute_pass(&Default::default());
            part.kernel.dispatch(
                &mut pass,
                &part.binds[chunk],
                particles.div_ceil(part.kernel.workgroup_size),
                gpu.limits.max_compute_workgroups_per_dimension,
            );
        });
        Ok(true)
    }

    fn take_nonfinite(&self, gpu: &Gpu) -> Result<u64> {
        self.nonfinite.take(gpu)
    }

    fn extra_state(&self) -> Option<&Ensemble> {
        Some(&self.velocity)
    }
}
