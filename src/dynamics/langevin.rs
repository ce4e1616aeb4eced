//! Overdamped Langevin dynamics, Euler–Maruyama:
//!   x_{k+1} = x_k - grad U(x_k, t_k) dt_k + sqrt(2 T(t_k) dt_k) xi_k,
//! with a constant dt (t_k = k dt) or a step-size schedule dt_k (t_k = dt_0 + ... + dt_{k-1},
//! src/model/step_size.rs: decreasing-step Langevin Monte Carlo), U and T built in or
//! written as expressions. Toward a mixture's score, `potential = { kind = "mixture" }`
//! (U = -log p).
//! GPU pipeline (shaders/langevin.wgsl) and its f64 CPU twin [`langevin_cpu`].

use super::potential_params::{check_potential_shader, potential_shader};
use super::{
    Dynamics, NonfiniteCounter, ParseContext, ParseKind, References, Stepper, StepperContext,
    TwinContext, TwinState,
};
use crate::error::{Error, Result};
use crate::gpu::abi::LangevinStep as StepUniform;
use crate::gpu::{Ensemble, Gpu, Kernel};
use crate::model::{Potential, StepSize, Temperature};
use crate::rng::{self, NoiseStream};
use crate::scenario::data::SampleTable;
use crate::scenario::walk::{Issues, Section};
use crate::scenario::{expr_keys, keys};
use crate::shaders;
use bytemuck::Zeroable;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Steps per round of whole Philox blocks: 4 / gcd(dim, 4) (shaders/common/noise.wgsl).
pub fn round_steps(dim: u32) -> u32 {
    match dim % 4 {
        0 => 1,
        2 => 2,
        _ => 4,
    }
}

/// How a block of steps from `step0` splits into single steps up to a round boundary,
/// whole rounds, and single steps to the end: (head, rounds' steps, tail).
pub fn split_block(step0: u64, steps: u64, round: u64) -> (u64, u64, u64) {
    let head = ((round - step0 % round) % round).min(steps);
    let body = (steps - head) / round * round;
    (head, body, steps - head - body)
}

/// One of the two pipelines (whole rounds or single steps) with its step uniform and a
/// bind group per chunk.
struct Part {
    kernel: Arc<Kernel>,
    step: wgpu::Buffer,
    binds: Vec<wgpu::BindGroup>,
}

/// A composed Euler–Maruyama shader: its label, source, overrides beyond DIM, ROUND_STEPS
/// and SINGLE_STEPS, and its params array.
pub struct EulerShader<'a> {
    pub label: &'a str,
    pub source: &'a str,
    pub overrides: &'a [(&'a str, f64)],
    pub params: &'a [f32],
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
    key: [u32; 2],
    dim: u32,
    dt: f64,
    noise_scale: f32,
    /// Particles found NaN or Inf at the end of a dispatch.
    nonfinite: NonfiniteCounter,
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
        )
    }

    /// The kernels with step size `dt` over a run of `run_steps` steps: a constant takes
    /// the constant-dt pipeline (as [`LangevinGpu::new`]), a schedule the table
    /// (`DT_TABLE`).
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
    ) -> Result<LangevinGpu> {
        let shader = potential_shader(shaders::LANGEVIN, potential, Some(temperature))
            .map_err(|why| Error::Device(format!("the Langevin shader did not compose: {why}")))?;
        let table = dt.constant().is_none();
        let mut params = shader.params.clone();
        let base = params.len() as u32;
        if table {
            params.resize(params.len() + 3 * SCHEDULE_TABLE_STEPS as usize, 0.0);
        }
        let overrides = [
            ("DT_TABLE", if table { 1.0 } else { 0.0 }),
            ("POTENTIAL", f64::from(shader.kind)),
            ("NOISE", if temperature.is_zero() { 0.0 } else { 1.0 }),
            (
                "TEMPERATURE_EXPR",
                if shader.temperature_expr { 1.0 } else { 0.0 },
            ),
        ];
        let mut gpu_kernels = LangevinGpu::with_shader(
            gpu,
            ensemble,
            &EulerShader {
                label: "langevin",
                source: &shader.source,
                overrides: &overrides,
                params: &params,
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
        let nonfinite = NonfiniteCounter::new(gpu);
        let kernel = |single: bool| {
            let mut constants = vec![
                ("DIM", f64::from(ensemble.dim)),
                ("ROUND_STEPS", f64::from(round_steps(ensemble.dim))),
                ("SINGLE_STEPS", if single { 1.0 } else { 0.0 }),
            ];
            constants.extend_from_slice(shader.overrides);
            let label = format!(
                "{} {}",
                shader.label,
                if single { "steps" } else { "rounds" }
            );
            Kernel::new(gpu, &label, shader.source, &constants, workgroup_size)
        };
        let part = |kernel: Arc<Kernel>| {
            let step =
                gpu.uniform_with("langevin step", bytemuck::bytes_of(&StepUniform::zeroed()));
            let binds = ensemble
                .chunks
                .iter()
                .map(|c| {
                    kernel.bind(
                        gpu,
                        &[&c.state, &c.uniform, &step, &params, &nonfinite.buffer],
                    )
                })
                .collect();
            Part {
                kernel,
                step,
                binds,
            }
        };
        // Head and tail share the single-step pipeline (cached), each with its own uniform.
        LangevinGpu {
            parts: [part(kernel(true)), part(kernel(false)), part(kernel(true))],
            key: rng::key_from_seed(seed),
            dim: ensemble.dim,
            dt,
            noise_scale: noise_scale as f32,
            nonfinite,
            schedule: None,
            params,
        }
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
        let (head, body, tail) =
            split_block(step0, u64::from(steps), u64::from(round_steps(self.dim)));
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            let mut at = step0;
            for (part, n) in self.parts.iter().zip([head, body, tail]) {
                if n == 0 {
                    continue;
                }
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
                };
                // Staged writes land before this submit and after all earlier ones.
                gpu.queue
                    .write_buffer(&part.step, 0, bytemuck::bytes_of(&uniform));
                let particles = span.min(ensemble.chunks[chunk].count.saturating_sub(first));
                part.kernel.dispatch(
                    &mut pass,
                    &part.binds[chunk],
                    particles.div_ceil(part.kernel.workgroup_size),
                    gpu.limits.max_compute_workgroups_per_dimension,
                );
                at += n;
            }
        }
        gpu.queue.submit([encoder.finish()]);
        Ok(true)
    }

    fn take_nonfinite(&self, gpu: &Gpu) -> Result<u64> {
        self.nonfinite.take(gpu)
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
}

const KEYS: &[&str] = &["kind", "potential", "temperature", "dt", "t_end", "steps"];

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
        let (steps, t_end) = duration?;
        let plan = LangevinPlan {
            potential: potential?,
            temperature: temperature?,
            dt: dt?,
            steps,
            t_end,
        };
        // The generated shader must compile before anything is written.
        let base = shaders::LANGEVIN;
        if !check_potential_shader(issues, sec, base, &plan.potential, Some(&plan.temperature)) {
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

    fn references(&self) -> References<'_> {
        References::Langevin {
            potential: &self.potential,
            temperature: &self.temperature,
        }
    }

    fn stepper(&self, cx: &StepperContext<'_>) -> Result<Box<dyn Stepper>> {
        Ok(Box::new(LangevinGpu::scheduled(
            cx.gpu,
            cx.ensemble,
            &self.potential,
            &self.temperature,
            self.dt,
            self.steps,
            cx.seed,
            cx.workgroup_size,
        )?))
    }

    fn twin(&self, state: &mut TwinState, cx: &TwinContext<'_>) -> Result<()> {
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

    #[test]
    fn blocks_split_at_round_boundaries() {
        assert_eq!(split_block(0, 10, 4), (0, 8, 2));
        assert_eq!(split_block(3, 10, 4), (1, 8, 1));
        assert_eq!(split_block(3, 1, 4), (1, 0, 0));
        assert_eq!(split_block(5, 2, 4), (2, 0, 0));
        assert_eq!(split_block(7, 9, 1), (0, 9, 0));
        for dim in 1..=8 {
            // Whole rounds start where step * dim is a multiple of 4.
            let r = u64::from(round_steps(dim));
            assert_eq!(r * u64::from(dim) % 4, 0);
            assert!((1..r).all(|k| k * u64::from(dim) % 4 != 0));
        }
    }
}
