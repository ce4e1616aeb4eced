//! Overdamped Langevin dynamics, Euler–Maruyama:
//!   x_{k+1} = x_k - grad U(x_k, t_k) dt_k + sqrt(2 T(t_k) dt_k) xi_k,
//! with a constant dt (t_k = k dt) or a step-size schedule dt_k (t_k = dt_0 + ... + dt_{k-1},
//! src/model/step_size.rs: decreasing-step Langevin Monte Carlo), U and T built in or
//! written as expressions. Toward a mixture's score, `potential = { kind = "mixture" }`
//! (U = -log p).
//! GPU pipeline (shaders/langevin.wgsl) and its f64 CPU twin [`langevin_cpu`].
//!
//! `mala = true` (Metropolis-adjusted Langevin): that move is a proposal y, accepted with
//! probability min(1, alpha), alpha = exp(-(U(y) - U(x))/T) q(y -> x) / q(x -> y) for the
//! Gaussian proposal density q, so exp(-U/T) is stationary exactly at any dt. The proposal
//! uses the same normals as the plain step (stream 0, unchanged counters); step k's uniform
//! u is [`rng::mala_uniform`] (stream [`rng::STREAM_MALA`], its own draw index k). MALA needs a
//! constant T > 0 and a U that does not read t (the scenario refuses the rest: with a
//! schedule there is no one stationary law to adjust to), and U's value: built-ins and
//! expressions have it, a WGSL file must define `fn user_value(x: Point, t: f32) -> f32`
//! (taken not to read t) or the scenario is refused. CPU twin [`mala_cpu`].
//! Accepted proposals are counted on the GPU (64-bit) and read at every snapshot
//! ([`Stepper::accepted`]); a checkpoint carries the count since the last snapshot.

use super::blocks::{dispatch_plan, round_steps, submit_plan};
use super::potential_params::{
    check_potential_shader_with, potential_shader_with, wgsl_defines_value,
};
use super::{
    Dynamics, NonfiniteCounter, ParseContext, ParseKind, References, Stepper, StepperContext,
    TwinContext, TwinState,
};
use crate::error::{Error, Result};
use crate::gpu::abi::LangevinStep as StepUniform;
use crate::gpu::{Ensemble, Gpu, Kernel};
use crate::model::{Potential, StepSize, Temperature};
use crate::observe::first_passage;
use crate::rng::{self, NoiseStream};
use crate::scenario::Boundary;
use crate::scenario::data::SampleTable;
use crate::scenario::walk::{Issues, Section};
use crate::scenario::{expr_keys, keys};
use crate::shaders;
use bytemuck::Zeroable;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// One of the two pipelines (whole rounds or single steps) with its step uniform, and once
/// first dispatched, the pipeline and a bind group per chunk. Pipelines are compiled when a
/// block first needs them: a run whose blocks all start and end on round boundaries never
/// compiles the single-step variant (on lavapipe each costs a few hundred milliseconds of
/// start-up).
struct Part {
    single: bool,
    step: wgpu::Buffer,
    built: Option<Arc<Built>>,
}

/// A part's pipeline and its bind group per chunk.
struct Built {
    kernel: Arc<Kernel>,
    binds: Vec<wgpu::BindGroup>,
}

impl Part {
    /// The pipeline and bind groups, compiled and bound on first use (the pipeline itself is
    /// shared through the device's cache: head and tail compile once).
    fn built(
        &mut self,
        spec: &PipelineSpec,
        gpu: &Gpu,
        ensemble: &Ensemble,
        params: &wgpu::Buffer,
        nonfinite: &wgpu::Buffer,
    ) -> Arc<Built> {
        let step = &self.step;
        let single = self.single;
        self.built
            .get_or_insert_with(|| {
                let mut constants: Vec<(&str, f64)> = vec![
                    ("DIM", f64::from(ensemble.dim)),
                    ("ROUND_STEPS", f64::from(round_steps(ensemble.dim))),
                    ("SINGLE_STEPS", if single { 1.0 } else { 0.0 }),
                ];
                constants.extend(spec.overrides.iter().map(|(k, v)| (k.as_str(), *v)));
                let label = format!("{} {}", spec.label, if single { "steps" } else { "rounds" });
                let kernel = Kernel::with_entry(
                    gpu,
                    &label,
                    &spec.source,
                    spec.entry,
                    &constants,
                    spec.workgroup_size,
                );
                let binds = ensemble
                    .chunks
                    .iter()
                    .map(|c| {
                        let mut entries = vec![&c.state, &c.uniform, step, params, nonfinite];
                        if let Some(b) = &spec.bounds {
                            entries.extend([&c.tags, b]);
                        }
                        kernel.bind(gpu, &entries)
                    })
                    .collect();
                Arc::new(Built { kernel, binds })
            })
            .clone()
    }
}

/// Whether the Langevin kernel is Metropolis-adjusted, and how its chain keeps U and
/// grad U at its position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mala {
    Off,
    /// `carry`: take U and grad U over from each accepted proposal (true) or evaluate them
    /// at the chain's position at every step (false); None: carry (fewer values live through
    /// the fused loop; docs/architecture.md, "How llvmpipe spends a step").
    /// Both give the same bits (tests/mala_gpu.rs).
    On {
        carry: Option<bool>,
    },
}

/// What compiling and binding a [`Part`]'s pipeline needs besides the ensemble.
struct PipelineSpec {
    label: String,
    source: String,
    /// The shader's entry point (`main`, or `main_mala` for MALA).
    entry: &'static str,
    /// Overrides beyond DIM, ROUND_STEPS and SINGLE_STEPS.
    overrides: Vec<(String, f64)>,
    workgroup_size: u32,
    /// Walls and regions, for shaders with tags.
    bounds: Option<wgpu::Buffer>,
}

/// A composed Euler–Maruyama shader: its label, source, overrides beyond DIM, ROUND_STEPS
/// and SINGLE_STEPS, and its params array.
pub struct EulerShader<'a> {
    pub label: &'a str,
    pub source: &'a str,
    /// Entry point: `main`, or `main_mala` for the Metropolis-adjusted kernel.
    pub entry: &'static str,
    pub overrides: &'a [(&'a str, f64)],
    pub params: &'a [f32],
    /// The shader includes common/boundary.wgsl: each chunk's tags are bound at 5 and the
    /// walls and regions (`bounds`, `first_passage::spec_vec4s`) at 6.
    pub tags: bool,
    pub bounds: Vec<f32>,
    /// Counter words after the first four (basin transitions, `BASIN_COUNTERS`).
    pub counters: u64,
}

/// Steps whose (dt, t, noise scale) one block's table holds under a step-size schedule.
pub const SCHEDULE_TABLE_STEPS: u32 = 4096;

/// A step-size schedule's per-block table in the params array (after the model's params).
struct ScheduleTable {
    dt: StepSize,
    /// Steps of the whole run (the schedule's N).
    run_steps: u64,
    temperature: Temperature,
    params: wgpu::Buffer,
    /// Index of the table's first float in the params array.
    base: u32,
    /// (first step, steps) of the block whose table is on the device.
    uploaded: Option<(u64, u32)>,
}

/// The Langevin kernels bound to an ensemble's chunks.
pub struct LangevinGpu {
    /// Head (single steps), body (rounds), tail (single steps).
    parts: [Part; 3],
    spec: PipelineSpec,
    key: [u32; 2],
    dim: u32,
    dt: f64,
    noise_scale: f32,
    /// 1 / T for MALA's ratio (0 otherwise).
    inv_temperature: f32,
    mala: bool,
    /// Particles found NaN or Inf at the end of a dispatch ([0]); MALA's accepted proposals
    /// since the last snapshot ([1] low word, [2] high word); basin counters from
    /// `BASIN_COUNTERS` (`counter_words` of them).
    nonfinite: NonfiniteCounter,
    counter_words: u64,
    schedule: Option<ScheduleTable>,
    /// The params array (the model's, then a schedule's table).
    params: wgpu::Buffer,
}

impl LangevinGpu {
    pub fn new(
        gpu: &Gpu,
        ensemble: &Ensemble,
        potential: &Potential,
        temperature: &Temperature,
        dt: f64,
        seed: u64,
        workgroup_size: u32,
    ) -> Result<LangevinGpu> {
        Self::scheduled(
            gpu,
            ensemble,
            potential,
            temperature,
            StepSize::Constant(dt),
            1,
            seed,
            workgroup_size,
            Mala::Off,
            &Boundary::default(),
        )
    }

    /// The kernels with step size `dt` over a run of `run_steps` steps: a constant takes
    /// the constant-dt pipeline (as [`LangevinGpu::new`]), a schedule the table
    /// (`DT_TABLE`); Metropolis-adjusted when `mala` (the plan has checked that T is a
    /// constant > 0, dt a constant and that U has a value on the GPU).
    #[allow(clippy::too_many_arguments)]
    pub fn scheduled(
        gpu: &Gpu,
        ensemble: &Ensemble,
        potential: &Potential,
        temperature: &Temperature,
        dt: StepSize,
        run_steps: u64,
        seed: u64,
        workgroup_size: u32,
        mala: Mala,
        boundary: &Boundary,
    ) -> Result<LangevinGpu> {
        // MALA_CARRY matters only with MALA.
        let (mala, carry) = match mala {
            Mala::Off => (false, true),
            Mala::On { carry } => (true, carry.unwrap_or(true)),
        };
        let shader = potential_shader_with(shaders::LANGEVIN, potential, Some(temperature), mala)
            .map_err(|why| {
            Error::Device(format!("the Langevin shader did not compose: {why}"))
        })?;
        let table = dt.constant().is_none();
        let mut params = shader.params.clone();
        let base = params.len() as u32;
        if table {
            params.resize(params.len() + 3 * SCHEDULE_TABLE_STEPS as usize, 0.0);
        }
        // sqrt(2 T dt) when neither changes during the run.
        let noise_scale = temperature
            .constant()
            .zip(dt.constant())
            .map(|(t, dt)| (2.0 * t * dt).sqrt());
        // Walls and targets (common/boundary.wgsl).
        let mut overrides = first_passage::overrides(boundary, ensemble.tag_stride);
        overrides.extend([
            ("DT_TABLE", if table { 1.0 } else { 0.0 }),
            ("MALA", if mala { 1.0 } else { 0.0 }),
            ("MALA_CARRY", if carry { 1.0 } else { 0.0 }),
            (
                "REFLECT_ONCE",
                if first_passage::reflects_once(boundary, noise_scale) {
                    1.0
                } else {
                    0.0
                },
            ),
            ("POTENTIAL", f64::from(shader.kind)),
            ("NOISE", if temperature.is_zero() { 0.0 } else { 1.0 }),
            (
                "TEMPERATURE_EXPR",
                if shader.temperature_expr { 1.0 } else { 0.0 },
            ),
        ]);
        let mut gpu_kernels = LangevinGpu::with_shader(
            gpu,
            ensemble,
            &EulerShader {
                label: "langevin",
                source: &shader.source,
                entry: if mala { "main_mala" } else { "main" },
                overrides: &overrides,
                params: &params,
                tags: true,
                bounds: first_passage::spec_vec4s(boundary),
                counters: first_passage::basin_counter_words(boundary.basins.len()),
            },
            // Unused (DT_TABLE) under a step-size schedule.
            dt.constant().unwrap_or(0.0),
            // Unused (TEMPERATURE_EXPR) for a temperature schedule.
            (2.0 * temperature.constant().unwrap_or(0.0) * dt.constant().unwrap_or(0.0)).sqrt(),
            seed,
            workgroup_size,
        );
        if table {
            gpu_kernels.schedule = Some(ScheduleTable {
                dt,
                run_steps,
                temperature: temperature.clone(),
                params: gpu_kernels.params.clone(),
                base,
                uploaded: None,
            });
        }
        if mala {
            gpu_kernels.mala = true;
            gpu_kernels.inv_temperature = temperature.constant().map_or(0.0, |t| (1.0 / t) as f32);
        }
        Ok(gpu_kernels)
    }

    /// Writes (dt_k, t_k, sqrt(2 T(t_k) dt_k)) of steps `step0 .. step0 + steps`, computed
    /// in f64, unless they are already there (every slice of a block shares them).
    fn upload_schedule(&mut self, gpu: &Gpu, step0: u64, steps: u32) {
        let Some(s) = &mut self.schedule else {
            return;
        };
        if s.uploaded == Some((step0, steps)) {
            return;
        }
        let mut table = Vec::with_capacity(3 * steps as usize);
        for k in step0..step0 + u64::from(steps) {
            let (dt, t) = (s.dt.dt(k, s.run_steps), s.dt.time(k, s.run_steps));
            let scale = (2.0 * s.temperature.at(t).max(0.0) * dt).sqrt();
            table.extend([dt as f32, t as f32, scale as f32]);
        }
        gpu.queue.write_buffer(
            &s.params,
            u64::from(s.base) * 4,
            bytemuck::cast_slice(&table),
        );
        s.uploaded = Some((step0, steps));
    }

    /// The kernels of an Euler–Maruyama shader laid out like shaders/langevin.wgsl (step
    /// uniform, params array, non-finite counter; whole rounds and single steps), shared
    /// with the general SDE (shaders/sde.wgsl).
    pub fn with_shader(
        gpu: &Gpu,
        ensemble: &Ensemble,
        shader: &EulerShader<'_>,
        dt: f64,
        noise_scale: f64,
        seed: u64,
        workgroup_size: u32,
    ) -> LangevinGpu {
        let params = gpu.storage_with("model params", bytemuck::cast_slice(shader.params));
        let nonfinite = NonfiniteCounter::with_words(gpu, 4 + shader.counters);
        let bounds = shader
            .tags
            .then(|| gpu.uniform_with("bounds", bytemuck::cast_slice(&shader.bounds)));
        let part = |single: bool| Part {
            single,
            step: gpu.uniform_with("langevin step", bytemuck::bytes_of(&StepUniform::zeroed())),
            built: None,
        };
        // Head and tail share the single-step pipeline (cached), each with its own uniform.
        let mut kernels = LangevinGpu {
            parts: [part(true), part(false), part(true)],
            spec: PipelineSpec {
                label: shader.label.to_string(),
                entry: shader.entry,
                source: shader.source.to_string(),
                overrides: shader
                    .overrides
                    .iter()
                    .map(|(k, v)| (k.to_string(), *v))
                    .collect(),
                workgroup_size,
                bounds,
            },
            key: rng::key_from_seed(seed),
            dim: ensemble.dim,
            dt,
            noise_scale: noise_scale as f32,
            inv_temperature: 0.0,
            mala: false,
            nonfinite,
            counter_words: shader.counters,
            schedule: None,
            params,
        };
        // Whole rounds carry nearly every run: compiled now, so start-up counts it; the
        // single steps wait for a block that needs them.
        kernels.parts[1].built(
            &kernels.spec,
            gpu,
            ensemble,
            &kernels.params,
            &kernels.nonfinite.buffer,
        );
        kernels
    }
}

impl Stepper for LangevinGpu {
    fn max_fused(&self) -> u32 {
        match self.schedule {
            Some(_) => SCHEDULE_TABLE_STEPS,
            None => u32::MAX,
        }
    }

    /// At most three fused dispatches: head, whole rounds, tail.
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
        self.upload_schedule(gpu, step0, steps);
        let table0 = self.schedule.as_ref().map_or(0, |s| s.base);
        // MALA's rounds are quads of steps from a multiple of 4 (one Philox block of
        // uniforms each; 4 is a multiple of every round_steps).
        let round = if self.mala {
            4
        } else {
            u64::from(round_steps(self.dim))
        };
        let plan = dispatch_plan(step0, u64::from(steps), round, self.dim);
        submit_plan(gpu, step0, &plan, |encoder, k, at, n| {
            let built = self.parts[k].built(
                &self.spec,
                gpu,
                ensemble,
                &self.params,
                &self.nonfinite.buffer,
            );
            let (block0, block0_hi, lane0) = rng::noise_start(at, self.dim);
            let uniform = StepUniform {
                key: self.key,
                block0,
                lane0,
                steps: n as u32,
                dt: self.dt as f32,
                noise_scale: self.noise_scale,
                first,
                span,
                block0_hi,
                t0: (at as f64 * self.dt) as f32,
                table0: table0 + 3 * (at - step0) as u32,
                step0: at as u32,
                step0_hi: (at >> 32) as u32,
                inv_temperature: self.inv_temperature,
                _pad: [0; 1],
            };
            gpu.queue
                .write_buffer(&self.parts[k].step, 0, bytemuck::bytes_of(&uniform));
            let particles = span.min(ensemble.chunks[chunk].count.saturating_sub(first));
            let mut pass = encoder.begin_compute_pass(&Default::default());
            built.kernel.dispatch(
                &mut pass,
                &built.binds[chunk],
                particles.div_ceil(built.kernel.workgroup_size),
                gpu.limits.max_compute_workgroups_per_dimension,
            );
        });
        Ok(true)
    }

    fn take_nonfinite(&self, gpu: &Gpu) -> Result<u64> {
        self.nonfinite.take(gpu)
    }

    fn accepted(&self, gpu: &Gpu) -> Result<Option<u64>> {
        if !self.mala {
            return Ok(None);
        }
        let b = gpu.read_bytes(&self.nonfinite.buffer, 4, 8)?;
        let lo = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        let hi = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
        Ok(Some(u64::from(lo) | (u64::from(hi) << 32)))
    }

    fn counters(&self, gpu: &Gpu) -> Result<Vec<u64>> {
        self.nonfinite.basin_counters(gpu, self.counter_words)
    }

    fn set_counters(&self, gpu: &Gpu, values: &[u64]) {
        self.nonfinite
            .set_basin_counters(gpu, self.counter_words, values);
    }

    fn set_accepted(&self, gpu: &Gpu, count: u64) {
        if self.mala {
            let words = [count as u32, (count >> 32) as u32];
            gpu.queue
                .write_buffer(&self.nonfinite.buffer, 4, bytemuck::cast_slice(&words));
        }
    }
}

/// CPU twin of shaders/langevin.wgsl in f64: advances particles `first ..` (row-major
/// `positions`) through steps `step0 .. step0 + steps` with the same Philox noise.
#[allow(clippy::too_many_arguments)]
pub fn langevin_cpu(
    positions: &mut [f64],
    dim: u32,
    first: u64,
    potential: &Potential,
    temperature: &Temperature,
    dt: f64,
    seed: u64,
    step0: u64,
    steps: u64,
) {
    langevin_cpu_scheduled(
        positions,
        dim,
        first,
        potential,
        temperature,
        &StepSize::Constant(dt),
        1,
        seed,
        step0,
        steps,
    );
}

/// [`langevin_cpu`] with step size `dt` over a run of `run_steps` steps: step k has size
/// dt_k at time t_k (src/model/step_size.rs).
#[allow(clippy::too_many_arguments)]
pub fn langevin_cpu_scheduled(
    positions: &mut [f64],
    dim: u32,
    first: u64,
    potential: &Potential,
    temperature: &Temperature,
    dt: &StepSize,
    run_steps: u64,
    seed: u64,
    step0: u64,
    steps: u64,
) {
    let key = rng::key_from_seed(seed);
    let noise_free = temperature.is_zero();
    let d = dim as usize;
    for (i, x) in positions.chunks_exact_mut(d).enumerate() {
        let mut noise = NoiseStream::new(key, first + i as u64, step0, dim);
        for k in step0..step0 + steps {
            let (t, dt) = (dt.time(k, run_steps), dt.dt(k, run_steps));
            let g = potential.gradient_at(x, t);
            let scale = (2.0 * temperature.at(t).max(0.0) * dt).sqrt();
            for c in 0..d {
                let xi = if noise_free { 0.0 } else { noise.next_normal() };
                x[c] += -g[c] * dt + scale * xi;
            }
        }
    }
}

/// One MALA step in f64 (the twin of shaders/langevin.wgsl's `mala`).
#[derive(Debug, Clone, PartialEq)]
pub struct MalaStep {
    /// The proposal x - grad U(x) dt + sqrt(2 T dt) xi.
    pub proposal: Vec<f64>,
    /// log alpha in the textbook form: -(U(y) - U(x))/T
    /// - [|x - y + grad U(y) dt|^2 - |y - x + grad U(x) dt|^2] / (4 T dt).
    pub log_alpha: f64,
    /// log u of the step's uniform.
    pub log_u: f64,
    /// log u < log alpha (a NaN ratio rejects).
    pub accepted: bool,
}

/// MALA's step from `x` at time `t` on normals `xi` and uniform `u` (T > 0 constant).
pub fn mala_step(
    potential: &Potential,
    temperature: f64,
    dt: f64,
    x: &[f64],
    xi: &[f64],
    u: f64,
    t: f64,
) -> MalaStep {
    let scale = (2.0 * temperature * dt).sqrt();
    let gx = potential.gradient_at(x, t);
    let y: Vec<f64> = (0..x.len())
        .map(|c| x[c] - gx[c] * dt + scale * xi[c])
        .collect();
    let gy = potential.gradient_at(&y, t);
    let (mut back, mut forth) = (0.0, 0.0);
    for c in 0..x.len() {
        back += (x[c] - y[c] + gy[c] * dt).powi(2);
        forth += (y[c] - x[c] + gx[c] * dt).powi(2);
    }
    let du = potential.value_at(&y, t) - potential.value_at(x, t);
    let log_alpha = -du / temperature - (back - forth) / (4.0 * temperature * dt);
    let log_u = u.ln();
    MalaStep {
        proposal: y,
        log_alpha,
        log_u,
        accepted: log_u < log_alpha,
    }
}

/// CPU twin of shaders/langevin.wgsl with MALA = 1, in f64: advances particles `first ..`
/// through steps `step0 .. step0 + steps` with the same normals and uniforms; returns the
/// proposals accepted. A particle whose U or grad U is not finite where it stands becomes
/// NaN (as on the GPU, so that it reaches the non-finite count).
#[allow(clippy::too_many_arguments)]
pub fn mala_cpu(
    positions: &mut [f64],
    dim: u32,
    first: u64,
    potential: &Potential,
    temperature: f64,
    dt: f64,
    seed: u64,
    step0: u64,
    steps: u64,
) -> u64 {
    let key = rng::key_from_seed(seed);
    let d = dim as usize;
    let mut accepted = 0;
    for (i, x) in positions.chunks_exact_mut(d).enumerate() {
        let particle = first + i as u64;
        let mut noise = NoiseStream::new(key, particle, step0, dim);
        for k in step0..step0 + steps {
            let t = k as f64 * dt;
            let xi: Vec<f64> = (0..d).map(|_| noise.next_normal()).collect();
            let start_finite = potential.value_at(x, t).is_finite()
                && potential.gradient_at(x, t).iter().all(|g| g.is_finite());
            if !start_finite {
                x.fill(f64::NAN);
                break;
            }
            let u = rng::mala_uniform(key, particle, k);
            let step = mala_step(potential, temperature, dt, x, &xi, u, t);
            if step.accepted {
                x.copy_from_slice(&step.proposal);
                accepted += 1;
            }
        }
    }
    accepted
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// `kind = "langevin"`: overdamped Langevin in a potential at a temperature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LangevinPlan {
    pub potential: Potential,
    /// A number, or T(t) (annealing).
    pub temperature: Temperature,
    /// A number, or a schedule dt_k over the step index (a bare number in the plan JSON).
    pub dt: StepSize,
    /// Number of steps; t_end = steps * dt, or under a schedule the sum of the steps.
    pub steps: u64,
    pub t_end: f64,
    /// Metropolis-adjusted proposals (MALA). Left out of the JSON when false, so plans
    /// written before it (and their hashes) are unchanged.
    #[serde(default, skip_serializing_if = "is_false")]
    pub mala: bool,
}

const KEYS: &[&str] = &[
    "kind",
    "potential",
    "temperature",
    "dt",
    "t_end",
    "steps",
    "mala",
];

/// MALA's requirements, each refusal recorded with its key: a constant T > 0 (one
/// stationary law exp(-U/T) to adjust to; at T = 0 there is none), a U that does not read t,
/// and U's value on the GPU (a WGSL file must define `user_value`).
fn check_mala(
    issues: &mut Issues,
    sec: Section<'_>,
    potential: &Potential,
    temperature: &Temperature,
) {
    match temperature.constant() {
        Some(t) if t > 0.0 => {}
        Some(_) => issues.add(
            &sec.key("temperature"),
            sec.get("temperature"),
            "a temperature > 0 with mala = true (MALA samples exp(-U/T), which T = 0 does not \
             define)",
        ),
        None => issues.add(
            &sec.key("temperature"),
            sec.get("temperature"),
            "a constant temperature > 0 with mala = true (under a schedule there is no one \
             stationary law exp(-U/T) for the Metropolis step to keep)",
        ),
    }
    match potential {
        Potential::Wgsl(_) if !wgsl_defines_value(potential) => issues.add(
            &sec.key("potential.wgsl"),
            None,
            "with mala = true, a WGSL file that also defines fn user_value(x: Point, t: f32) -> \
             f32 returning U itself (MALA's acceptance ratio needs U, not only its gradient); \
             or write the potential as an expression",
        ),
        Potential::Expr(e) if e.is_timed() => issues.add(
            &sec.key("potential"),
            sec.get("potential"),
            "a potential that does not read t with mala = true (a U that moves has no \
             stationary law exp(-U/T) for the Metropolis step to keep)",
        ),
        _ => {}
    }
}

impl ParseKind for LangevinPlan {
    fn parse(
        issues: &mut Issues,
        sec: Section<'_>,
        cx: &ParseContext<'_>,
    ) -> Option<(Self, Option<SampleTable>)> {
        sec.check_keys(KEYS, issues);
        let potential = keys::potential(issues, sec, cx.dim, cx.base_dir);
        let dt = keys::langevin_dt(issues, sec);
        let duration = keys::step_size_duration(issues, sec, dt);
        let run = duration.zip(dt).map(|((steps, _), dt)| (steps, dt));
        let temperature = expr_keys::temperature(issues, sec, run);
        let mala = keys::flag(
            issues,
            sec,
            "mala",
            "true (Metropolis-adjusted proposals) or false",
        );
        if let (Some(true), Some(p), Some(t)) = (mala, &potential, &temperature) {
            check_mala(issues, sec, p, t);
        }
        if let (Some(true), Some(StepSize::Schedule(_))) = (mala, &dt) {
            issues.add(
                &sec.key("dt"),
                sec.get("dt"),
                "a constant dt with mala = true (MALA keeps exp(-U/T) exactly at any fixed dt; \
                 a step-size schedule is for plain Langevin Monte Carlo)",
            );
        }
        let (steps, t_end) = duration?;
        let plan = LangevinPlan {
            potential: potential?,
            temperature: temperature?,
            dt: dt?,
            steps,
            t_end,
            mala: mala?,
        };
        // The generated shader must compile before anything is written.
        let base = shaders::LANGEVIN;
        if !check_potential_shader_with(
            issues,
            sec,
            base,
            &plan.potential,
            Some(&plan.temperature),
            plan.mala,
        ) {
            return None;
        }
        Some((plan, None))
    }
}

impl Dynamics for LangevinPlan {
    fn steps(&self) -> u64 {
        self.steps
    }

    /// Under a step-size schedule the mean step t_N / N, so `output.every` (time units)
    /// becomes a period of round(every N / t_N) steps: snapshots are evenly spaced in steps,
    /// not in time (README, "Step-size schedules").
    fn time_per_step(&self) -> f64 {
        self.dt.mean(self.steps)
    }

    /// The sum of the steps taken.
    fn time_at(&self, step: u64) -> f64 {
        self.dt.time(step, self.steps)
    }

    /// With a temperature schedule, the hottest temperature of the run.
    fn potential(&self) -> Option<(&Potential, f64)> {
        Some((
            &self.potential,
            self.temperature.hottest(self.steps, &self.dt),
        ))
    }

    fn metropolis_adjusted(&self) -> bool {
        self.mala
    }

    /// Plain Langevin (any potential, temperature or step-size schedule) applies walls and
    /// targets after every step. MALA rejects a proposal outside the reflecting walls
    /// (exact Metropolis–Hastings for exp(-U/T) restricted to the box) and records targets
    /// and basins; it refuses periodic axes (below).
    fn boundary_refusal(&self, boundary: &crate::scenario::Boundary) -> Option<String> {
        (self.mala && !boundary.periodic_axes().is_empty()).then(|| {
            "mala = true takes reflecting walls but no periodic axis: its Metropolis ratio \
             would need the wrapped proposal's density, a sum over the periodic images, \
             and keeping only the nearest one is an approximation (use mala = false, or \
             reflecting walls)"
                .to_string()
        })
    }

    /// Plain Langevin's noise is sqrt(2 T(t)) per coordinate, the same everywhere: the
    /// bridge applies (with T(t) and dt_k of the step). MALA's moves are not Brownian
    /// increments (rejected ones stay put).
    fn bridge_refusal(&self) -> Option<String> {
        self.mala.then(|| {
            "mala = true: its moves are Metropolis-adjusted, not Brownian increments, so the \
             Brownian bridge does not describe the path between step ends"
                .to_string()
        })
    }

    fn references(&self) -> References<'_> {
        References::Langevin {
            potential: &self.potential,
            temperature: &self.temperature,
        }
    }

    fn stepper(&self, cx: &StepperContext<'_>) -> Result<Box<dyn Stepper>> {
        let mala = if self.mala {
            Mala::On {
                carry: cx.mala_carry,
            }
        } else {
            Mala::Off
        };
        Ok(Box::new(LangevinGpu::scheduled(
            cx.gpu,
            cx.ensemble,
            &self.potential,
            &self.temperature,
            self.dt,
            self.steps,
            cx.seed,
            cx.workgroup_size,
            mala,
            cx.boundary,
        )?))
    }

    fn twin(&self, state: &mut TwinState, cx: &TwinContext<'_>) -> Result<()> {
        if self.mala {
            mala_cpu(
                &mut state.positions,
                cx.dim,
                0,
                &self.potential,
                self.temperature.constant().unwrap_or(f64::NAN),
                self.dt.constant().unwrap_or(f64::NAN),
                cx.seed,
                cx.step0,
                cx.steps,
            );
            return Ok(());
        }
        langevin_cpu_scheduled(
            &mut state.positions,
            cx.dim,
            0,
            &self.potential,
            &self.temperature,
            &self.dt,
            self.steps,
            cx.seed,
            cx.step0,
            cx.steps,
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(mala: bool) -> LangevinPlan {
        LangevinPlan {
            potential: Potential::DoubleWell,
            temperature: Temperature::Constant(1.0),
            dt: StepSize::Constant(0.01),
            steps: 3,
            t_end: 0.03,
            mala,
        }
    }

    /// Plans without MALA serialise as before (so their hashes are unchanged), and a plan
    /// written before the key existed reads as mala = false.
    #[test]
    fn mala_is_left_out_of_the_json_when_false() {
        let off = serde_json::to_value(plan(false)).unwrap();
        assert!(off.get("mala").is_none(), "{off}");
        let on = serde_json::to_value(plan(true)).unwrap();
        assert_eq!(on["mala"], true);
        let old: LangevinPlan = serde_json::from_value(off).unwrap();
        assert_eq!(old, plan(false));
        assert_eq!(
            serde_json::from_value::<LangevinPlan>(on).unwrap(),
            plan(true)
        );
    }

    /// The shader's form of log alpha, (-(U(y) - U(x)) + s xi.h / 2 - dt |h|^2 / 4) / T with
    /// h = grad U(x) + grad U(y), is the textbook one the twin computes.
    #[test]
    fn the_shaders_log_alpha_is_the_textbook_one() {
        let (t, dt) = (0.7f64, 0.3);
        let s = (2.0 * t * dt).sqrt();
        let p = Potential::DoubleWell;
        for (x, xi) in [
            ([0.3, -1.2], [0.5, 1.1]),
            ([1.4, 0.2], [-2.0, 0.3]),
            ([-0.9, 0.0], [0.01, -0.7]),
        ] {
            let step = mala_step(&p, t, dt, &x, &xi, 0.5, 0.0);
            let y = &step.proposal;
            let (gx, gy) = (p.gradient(&x), p.gradient(y));
            let h: Vec<f64> = gx.iter().zip(&gy).map(|(a, b)| a + b).collect();
            let cross: f64 = xi.iter().zip(&h).map(|(a, b)| a * b).sum();
            let h2: f64 = h.iter().map(|v| v * v).sum();
            let shader = (-(p.value(y) - p.value(&x)) + 0.5 * s * cross - 0.25 * dt * h2) / t;
            assert!(
                (shader - step.log_alpha).abs() < 1e-12 * (1.0 + shader.abs()),
                "{shader} vs {}",
                step.log_alpha
            );
            assert_eq!(step.accepted, step.log_u < step.log_alpha);
        }
    }
}
