//! Diffusion dynamics' shared pipeline: the forward noising SDE, the reverse-time SDE
//! and the probability-flow ODE, all as steps x <- A x + C s(x, t) + B xi whose
//! coefficients are computed here in f64 for every step ([`coefficients`]) and uploaded per
//! block. GPU pipeline: shaders/diffusion.wgsl; CPU twin: [`diffusion_cpu`].
//!
//! With a forward process dx = -f(t) x dt + g(t) dW, on the uniform reverse grid
//! t_n = t_end - n h (h = (t_end - t_min) / steps):
//! - forward, Euler–Maruyama: A = 1 - f(t) dt, B = g(t) sqrt(dt); exact: (A, B^2) the
//!   transition of the linear SDE from t to t + dt;
//! - reverse SDE: x <- x - [f(x, t) - g^2 s] h + g sqrt(h) xi, so A = 1 + f h, C = g^2 h,
//!   B = g sqrt(h);
//! - probability flow: x <- x - [f(x, t) - (1/2) g^2 s] h, so A = 1 + f h, C = g^2 h / 2;
//!   Heun averages this increment at (x, t) and at the predictor (p, t - h).
//!
//! Scores: a Gaussian mixture's closed form (fused steps, in the shader), or the exact
//! score of the noised empirical data set, s = (alpha E[x0 | x] - x) / s^2 with E[x0 | x]
//! the Gaussian-kernel weighted mean of the data at variance s^2 / alpha^2 around x / alpha
//! (src/dynamics/kernel_sum.rs, one step per dispatch).

use super::empirical::EmpiricalScore;
use super::{Dynamics, NonfiniteCounter, Stepper, StepperContext, TwinContext, TwinState};
use super::{ParseContext, StateMemory};
use crate::error::{Error, Result};
use crate::gpu::abi::{
    self, DIFFUSION_COEFF_VEC4S, DIFFUSION_COEFF_WINDOW, DIFFUSION_COMPONENT_VEC4S,
    DIFFUSION_MIXTURE_WINDOW, DiffusionStep as StepUniform,
};
use crate::gpu::timer::Work;
use crate::gpu::{Ensemble, Gpu, Kernel};
use crate::model::{Mixture, Process};
use crate::rng::{self, NoiseStream};
use crate::scenario::data::SampleTable;
use crate::scenario::keys;
use crate::scenario::range::{mixture_box, samples_box};
use crate::scenario::resolve::{MAX_STEPS, optional, required};
use crate::scenario::walk::{Issues, Section, choice, integer, number};
use crate::scenario::{Score, TimeGrid, reverse_time};
use crate::shaders;
use std::sync::Arc;
use toml::Value;

/// Steps of coefficients one upload holds: blocks are at most this long.
pub const TABLE_STEPS: u32 = 1024;
const _: () = assert!(TABLE_STEPS * DIFFUSION_COEFF_VEC4S == DIFFUSION_COEFF_WINDOW);

/// One step's coefficients, as the shader reads them (three vec4s).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepCoefficients {
    /// x <- a x + c s(x, t) + b xi.
    pub a: f64,
    pub b: f64,
    pub c: f64,
    /// The score's process time t: alpha(t), s^2(t).
    pub alpha: f64,
    pub s2: f64,
    /// Heun's corrector at t2 = t - h: a2, c2, alpha(t2), s^2(t2).
    pub a2: f64,
    pub c2: f64,
    pub alpha2: f64,
    pub s2_2: f64,
}

impl StepCoefficients {
    /// As the shader reads them, with A - 1 and A2 - 1 in place of A and A2: near t_min
    /// A - 1 is far below f32's resolution at 1, so the difference is taken here in f64
    /// (docs/architecture.md, "Host coefficients in f64").
    fn packed(&self) -> [f32; 12] {
        let f = |x: f64| x as f32;
        [
            f(self.a - 1.0),
            f(self.b),
            f(self.c),
            0.0,
            f(self.alpha),
            f(self.s2),
            0.0,
            0.0,
            f(self.a2 - 1.0),
            f(self.c2),
            f(self.alpha2),
            f(self.s2_2),
        ]
    }
}

/// What a diffusion kind is made of, as the shared stepper and twin see it.
pub struct Parts<'p> {
    pub process: &'p Process,
    pub score: Option<&'p Score>,
    pub noise: bool,
    pub heun: bool,
}

/// The diffusion kinds (`forward`, `reverse_sde`, `probability_flow`; src/dynamics/forward.rs
/// and its siblings): steps x <- A x + C s(x, t) + B xi driven by this file's pipeline.
pub trait Diffusion: Dynamics + Send + Sync {
    fn parts(&self) -> Parts<'_>;

    /// The coefficients of global step `n`, in f64.
    fn coefficients(&self, n: u64) -> StepCoefficients;

    /// The same dynamics, owned (the stepper keeps it to compute each block's coefficients).
    fn boxed(&self) -> Box<dyn Diffusion>;
}

/// Coefficients of a step that leaves x unchanged, to be filled in by a kind.
pub fn identity_coefficients() -> StepCoefficients {
    StepCoefficients {
        a: 1.0,
        b: 0.0,
        c: 0.0,
        alpha: 1.0,
        s2: 1.0,
        a2: 1.0,
        c2: 0.0,
        alpha2: 1.0,
        s2_2: 1.0,
    }
}

/// Floats per mixture component and time in the mixture table.
const COMPONENT_FLOATS: usize = 4 * DIFFUSION_COMPONENT_VEC4S as usize;

/// Bytes of mixture table one block may use: blocks are shortened for many components.
const MIXTURE_TABLE_BYTES: usize = 16 << 20;

/// Bytes of the mixture's uniform window (shaders/diffusion.wgsl `mixture_window`).
const MIXTURE_WINDOW_BYTES: usize = DIFFUSION_MIXTURE_WINDOW as usize * 16;

/// Steps of mixture table one block holds, and whether they are read from the uniform
/// window: as many steps as fit its 64 KiB, a multiple of four (a whole number of noise
/// rounds in any dimension) when at least four fit; the storage table (up to
/// MIXTURE_TABLE_BYTES) when not even one step fits.
fn mixture_steps(per_step: usize) -> (u32, bool) {
    let fit = MIXTURE_WINDOW_BYTES / per_step;
    match fit {
        0 => (
            (MIXTURE_TABLE_BYTES / per_step).clamp(1, TABLE_STEPS as usize) as u32,
            false,
        ),
        1..4 => (fit as u32, true),
        _ => ((fit & !3).min(TABLE_STEPS as usize) as u32, true),
    }
}

/// The mixture's score constants at process time t (alpha, s2), as shaders/diffusion.wgsl
/// reads them: per component alpha mu (8), 1 / (alpha^2 sigma^2 + s2) (8, zero-padded),
/// log w + (1/2) sum log of the inverse variances in base 2 (times log2 e: the shader sums
/// with exp2), and padding. Computed in f64.
fn mixture_constants(m: &Mixture, alpha: f64, s2: f64, out: &mut Vec<f32>) {
    for k in 0..m.components() {
        let mut mean = [0f32; 8];
        let mut inv = [0f32; 8];
        let mut log_norm = m.weights[k].ln();
        for (i, (&mu, &s)) in m.means[k].iter().zip(&m.stds[k]).enumerate() {
            let iv = 1.0 / (alpha * alpha * s * s + s2);
            mean[i] = (alpha * mu) as f32;
            inv[i] = iv as f32;
            log_norm += 0.5 * iv.ln();
        }
        out.extend(mean);
        out.extend(inv);
        out.extend([(log_norm * std::f64::consts::LOG2_E) as f32, 0.0, 0.0, 0.0]);
    }
}

/// One pipeline with its step uniform and a bind group per chunk.
struct Part {
    kernel: Arc<Kernel>,
    step: wgpu::Buffer,
    binds: Vec<wgpu::BindGroup>,
}

pub struct DiffusionGpu {
    dynamics: Box<dyn Diffusion>,
    /// The mixture of a closed-form score, its per-step table (the uniform window, or the
    /// storage table) and the steps it holds.
    mixture: Option<Mixture>,
    mixture_table: wgpu::Buffer,
    table_steps: u32,
    /// (first step, steps) of the block whose tables are on the device.
    uploaded: Option<(u64, u32)>,
    /// Fused: head, whole rounds, tail. Empirical score: the single-step update (Euler),
    /// or Heun's predictor and corrector.
    parts: Vec<Part>,
    coeffs: wgpu::Buffer,
    key: [u32; 2],
    dim: u32,
    noise: bool,
    empirical: Option<EmpiricalScore>,
    nonfinite: NonfiniteCounter,
}

impl DiffusionGpu {
    pub fn new(
        gpu: &Gpu,
        ensemble: &Ensemble,
        dynamics: &dyn Diffusion,
        data: Option<&SampleTable>,
        seed: u64,
        workgroup_size: u32,
    ) -> Result<Self> {
        let p = dynamics.parts();
        let dim = ensemble.dim;
        let empirical = match p.score {
            Some(Score::Samples { path, .. }) => {
                let table = data.ok_or_else(|| Error::Data {
                    path: path.clone(),
                    reason: "the data set was not loaded with the plan".into(),
                })?;
                Some(EmpiricalScore::new(gpu, ensemble, table, workgroup_size)?)
            }
            _ => None,
        };
        let mixture = match p.score {
            Some(Score::Mixture(m)) => Some(m.clone()),
            _ => None,
        };
        let components = mixture.as_ref().map_or(1, Mixture::components);
        let per_step = 2 * components * COMPONENT_FLOATS * 4;
        let (table_steps, window) = match mixture {
            Some(_) => mixture_steps(per_step),
            None => (TABLE_STEPS, true),
        };
        let mixture_table = gpu.storage_buffer(
            "mixture table",
            match mixture {
                Some(_) if !window => (table_steps as usize * per_step) as u64,
                _ => 16,
            },
            wgpu::BufferUsages::empty(),
        );
        if (gpu.limits.max_uniform_buffer_binding_size as usize) < MIXTURE_WINDOW_BYTES {
            return Err(Error::Device(format!(
                "adapter {} binds at most {} bytes of uniform memory; diffusion needs {MIXTURE_WINDOW_BYTES}",
                gpu.adapter.name, gpu.limits.max_uniform_buffer_binding_size
            )));
        }
        // Uniform bindings must cover the arrays the shader declares, used or not.
        let mixture_window = gpu.uniform_with("mixture window", &[0; MIXTURE_WINDOW_BYTES]);
        let coeffs = gpu.uniform_with(
            "diffusion coefficients",
            &vec![0; DIFFUSION_COEFF_WINDOW as usize * 16],
        );
        let nonfinite = NonfiniteCounter::new(gpu);
        let score_kind = match (p.score, &empirical) {
            (None, _) => abi::SCORE_NONE,
            (Some(_), None) => abi::SCORE_MIXTURE,
            (Some(_), Some(_)) => abi::SCORE_BUFFERS,
        };
        let round = super::blocks::round_steps(dim);
        let kernel = |single: bool, phase: u32| {
            Kernel::new(
                gpu,
                "diffusion",
                shaders::DIFFUSION,
                &[
                    ("DIM", f64::from(dim)),
                    ("ROUND_STEPS", f64::from(round)),
                    ("NOISE", if p.noise { 1.0 } else { 0.0 }),
                    ("SINGLE_STEPS", if single { 1.0 } else { 0.0 }),
                    ("SCORE", f64::from(score_kind)),
                    ("HEUN", if p.heun { 1.0 } else { 0.0 }),
                    ("PHASE", f64::from(phase)),
                    ("COMPONENTS", components as f64),
                    ("MIXTURE_UNIFORM", if window { 1.0 } else { 0.0 }),
                ],
                workgroup_size,
            )
        };
        // Placeholders bound where the variant reads no score buffers.
        let unused = || gpu.storage_buffer("unused", 16, wgpu::BufferUsages::empty());
        let scratch = empirical.as_ref().map(EmpiricalScore::buffers);
        let (mean1, pred, mean2) = match scratch {
            Some((a, b, c)) => (a.clone(), b.clone(), c.clone()),
            None => (unused(), unused(), unused()),
        };
        let part = |kernel: Arc<Kernel>| {
            let step = gpu.uniform_with(
                "diffusion step",
                bytemuck::bytes_of(&<StepUniform as bytemuck::Zeroable>::zeroed()),
            );
            let binds = ensemble
                .chunks
                .iter()
                .map(|c| {
                    kernel.bind(
                        gpu,
                        &[
                            &c.state,
                            &c.uniform,
                            &step,
                            &coeffs,
                            &mixture_table,
                            &nonfinite.buffer,
                            &mean1,
                            &pred,
                            &mean2,
                            &mixture_window,
                        ],
                    )
                })
                .collect();
            Part {
                kernel,
                step,
                binds,
            }
        };
        let parts = if empirical.is_some() {
            if p.heun {
                vec![part(kernel(true, 0)), part(kernel(true, 1))]
            } else {
                vec![part(kernel(true, 0))]
            }
        } else {
            vec![
                part(kernel(true, 0)),
                part(kernel(false, 0)),
                part(kernel(true, 0)),
            ]
        };
        Ok(DiffusionGpu {
            dynamics: dynamics.boxed(),
            mixture,
            mixture_table: if window {
                mixture_window
            } else {
                mixture_table
            },
            table_steps,
            uploaded: None,
            parts,
            coeffs,
            key: rng::key_from_seed(seed),
            dim,
            noise: p.noise,
            empirical,
            nonfinite,
        })
    }

    /// Writes the coefficient (and mixture) tables of steps `step0 .. step0 + steps`,
    /// unless they are already there (every slice of a block shares them).
    fn upload_tables(&mut self, gpu: &Gpu, step0: u64, steps: u32) {
        if self.uploaded == Some((step0, steps)) {
            return;
        }
        let all: Vec<StepCoefficients> = (0..u64::from(steps))
            .map(|s| self.dynamics.coefficients(step0 + s))
            .collect();
        let table: Vec<f32> = all.iter().flat_map(StepCoefficients::packed).collect();
        gpu.queue
            .write_buffer(&self.coeffs, 0, bytemuck::cast_slice(&table));
        if let Some(m) = &self.mixture {
            let mut constants = Vec::new();
            for c in &all {
                mixture_constants(m, c.alpha, c.s2, &mut constants);
                mixture_constants(m, c.alpha2, c.s2_2, &mut constants);
            }
            gpu.queue
                .write_buffer(&self.mixture_table, 0, bytemuck::cast_slice(&constants));
        }
        self.uploaded = Some((step0, steps));
    }

    fn uniform(&self, step0: u64, steps: u32, first: u32, span: u32, table0: u32) -> StepUniform {
        let (block0, block0_hi, lane0) = rng::noise_start(step0, self.dim);
        StepUniform {
            key: self.key,
            block0,
            lane0,
            steps,
            first,
            span,
            table0,
            aux_base: 0,
            block0_hi,
            _pad: [0; 2],
        }
    }

    fn dispatch(
        &self,
        gpu: &Gpu,
        encoder: &mut wgpu::CommandEncoder,
        part: &Part,
        chunk: usize,
        particles: u32,
    ) {
        let mut pass = encoder.begin_compute_pass(&Default::default());
        part.kernel.dispatch(
            &mut pass,
            &part.binds[chunk],
            particles.div_ceil(part.kernel.workgroup_size),
            gpu.limits.max_compute_workgroups_per_dimension,
        );
    }
}

impl Stepper for DiffusionGpu {
    fn max_fused(&self) -> u32 {
        // Kernel-sum steps are long: few per block so progress and signals stay prompt.
        if self.empirical.is_some() {
            16
        } else {
            self.table_steps
        }
    }

    fn min_slice(&self) -> u32 {
        // Kernel-sum steps cost M interactions per particle: smaller slices keep a
        // submission near the block target.
        if self.empirical.is_some() {
            1024
        } else {
            16_384
        }
    }

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
        let particles = span.min(ensemble.chunks[chunk].count.saturating_sub(first));
        if let Some(empirical) = &self.empirical {
            // One step at a time: score sums, then the update (Heun: predictor, sums at the
            // predictor, corrector).
            let mut encoder = gpu.device.create_command_encoder(&Default::default());
            for s in 0..steps {
                let n = step0 + u64::from(s);
                let c = self.dynamics.coefficients(n);
                // Entry s of the table: every step of the submission has its own.
                gpu.queue.write_buffer(
                    &self.coeffs,
                    u64::from(s) * 48,
                    bytemuck::cast_slice(&c.packed()),
                );
                let uniform = self.uniform(n, 1, first, span, s);
                let times = [(c.alpha, c.s2), (c.alpha2, c.s2_2)];
                for (phase, part) in self.parts.iter().enumerate() {
                    let (alpha, s2) = times[phase];
                    empirical.encode_means(
                        gpu,
                        &mut encoder,
                        ensemble,
                        chunk,
                        first,
                        particles,
                        alpha,
                        s2,
                        phase == 1,
                    )?;
                    write_step(gpu, &mut encoder, &part.step, &uniform);
                    self.dispatch(gpu, &mut encoder, part, chunk, particles);
                }
            }
            gpu.submit(encoder, Work::Stepping);
            return Ok(true);
        }
        self.upload_tables(gpu, step0, steps);
        // Without noise every step runs in the rounds part (nothing is drawn).
        let plan = if self.noise {
            let round = u64::from(super::blocks::round_steps(self.dim));
            super::blocks::dispatch_plan(step0, u64::from(steps), round, self.dim)
        } else if steps > 0 {
            vec![super::blocks::Segment::Rounds(u64::from(steps))]
        } else {
            Vec::new()
        };
        super::blocks::submit_plan(gpu, step0, &plan, |encoder, k, at, n| {
            let part = &self.parts[k];
            let uniform = self.uniform(at, n as u32, first, span, (at - step0) as u32);
            gpu.queue
                .write_buffer(&part.step, 0, bytemuck::bytes_of(&uniform));
            self.dispatch(gpu, encoder, part, chunk, particles);
        });
        Ok(true)
    }

    fn take_nonfinite(&self, gpu: &Gpu) -> Result<u64> {
        self.nonfinite.take(gpu)
    }
}

/// Copies `uniform` into `buffer` inside the encoder's order (several steps share one
/// submission, each with its own values).
fn write_step(
    gpu: &Gpu,
    encoder: &mut wgpu::CommandEncoder,
    buffer: &wgpu::Buffer,
    uniform: &StepUniform,
) {
    use wgpu::util::DeviceExt;
    let staging = gpu
        .device
        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("diffusion step staging"),
            contents: bytemuck::bytes_of(uniform),
            usage: wgpu::BufferUsages::COPY_SRC,
        });
    encoder.copy_buffer_to_buffer(&staging, 0, buffer, 0, staging.size());
}

/// The data law pushed to process time `t`, for reverse dynamics with `score`: a mixture
/// score's mixture through the process, or the data set's points as equal-weight components
/// of variance s(t)^2. The reverse dynamics reproduce it up to their discretisation and the
/// prior's mismatch at t_end.
pub fn data_law(
    process: &Process,
    score: &Score,
    data: Option<&SampleTable>,
    t: f64,
) -> Option<Mixture> {
    match score {
        Score::Mixture(m) => Some(process.marginal(m, t)),
        Score::Samples { .. } => {
            let table = data?;
            let (a, s) = (process.alpha(t), process.s2(t).sqrt());
            let rows = table.rows;
            Some(Mixture {
                weights: vec![1.0 / rows as f64; rows],
                means: table
                    .values
                    .chunks_exact(table.dim)
                    .map(|y| y.iter().map(|&v| a * f64::from(v)).collect())
                    .collect(),
                stds: vec![vec![s; table.dim]; rows],
            })
        }
    }
}

/// The keys `reverse_sde` and `probability_flow` share: a process, a score, and a time grid
/// from t_end down to t_min; `extra` is what the kind reads besides (the flow's integrator).
pub(crate) struct ReverseKeys<T> {
    pub process: Process,
    pub score: Score,
    pub data: Option<SampleTable>,
    pub extra: T,
    pub t_end: f64,
    pub t_min: f64,
    pub steps: u64,
    pub grid: TimeGrid,
}

/// Reads the shared keys of a reverse kind (`allowed_keys` are the kind's keys), and the
/// kind's own keys with `extra`, in the order their problems are reported.
pub(crate) fn reverse_keys<T>(
    issues: &mut Issues,
    sec: Section<'_>,
    cx: &ParseContext<'_>,
    allowed_keys: &[&str],
    extra: impl FnOnce(&mut Issues) -> Option<T>,
) -> Option<ReverseKeys<T>> {
    sec.check_keys(allowed_keys, issues);
    let process = keys::process(issues, sec);
    let score = keys::score(issues, sec, cx.dim, cx.base_dir);
    let extra = extra(issues);
    let t_end = optional(
        issues,
        sec,
        "t_end",
        || Some(1.0),
        |i, k, v| number(i, k, v, "a finite number > 0 (process time)", |x| x > 0.0),
    );
    let t_min = optional(
        issues,
        sec,
        "t_min",
        || Some(1e-3),
        |i, k, v| number(i, k, v, "a finite number > 0 (process time)", |x| x > 0.0),
    );
    let steps_allowed = format!("an integer from 1 to {MAX_STEPS}");
    let steps = required(issues, sec, "steps", &steps_allowed, |i, k, v| {
        integer(i, k, v, &steps_allowed, |n| n >= 1 && n as u64 <= MAX_STEPS)
    });
    let grid = optional(
        issues,
        sec,
        "grid",
        || Some(TimeGrid::Uniform),
        |i, k, v| {
            choice(i, k, v, &["uniform", "geometric"]).map(|s| match s {
                "geometric" => TimeGrid::Geometric,
                _ => TimeGrid::Uniform,
            })
        },
    );
    let (t_end, t_min, grid) = (t_end?, t_min?, grid?);
    if t_min >= t_end {
        issues.add(
            &sec.key("t_min"),
            Some(&Value::Float(t_min)),
            format!("a time below t_end = {t_end} (reverse dynamics run from t_end down to t_min)"),
        );
        return None;
    }
    let (process, (score, data), steps) = (process?, score?, steps? as u64);
    keys::check_process_horizon(issues, sec, &process, t_end)?;
    Some(ReverseKeys {
        process,
        score,
        data,
        extra: extra?,
        t_end,
        t_min,
        steps,
        grid,
    })
}

/// Process time after `step` of `steps` from `t_end` down to `t_min` on `grid`; exactly
/// t_min at the end.
pub fn reverse_time_at(t_end: f64, t_min: f64, steps: u64, grid: TimeGrid, step: u64) -> f64 {
    match grid {
        TimeGrid::Uniform => reverse_time(t_end, t_min, steps, step),
        TimeGrid::Geometric => {
            if step >= steps {
                t_min
            } else {
                t_end * (t_min / t_end).powf(step as f64 / steps as f64)
            }
        }
    }
}

/// Where reverse dynamics end: on the data (a mixture score's mixture, or the data set's
/// bounds).
pub(crate) fn data_box(score: &Score, data: Option<&SampleTable>, axis: usize) -> Option<[f64; 2]> {
    match score {
        Score::Mixture(m) => mixture_box(m, axis, 1.0),
        Score::Samples { .. } => samples_box(data?.column_bounds()?.get(axis)?),
    }
}

/// Device memory of an empirical score: the data set and scratch rows (two means, Heun's
/// predictor, log sums).
pub(crate) fn score_memory(score: &Score, dim: u64) -> StateMemory {
    match score {
        Score::Samples { rows, .. } => StateMemory {
            floats_per_particle: 3 * dim + 1,
            data_rows: *rows,
        },
        Score::Mixture(_) => StateMemory::default(),
    }
}

/// The data set file of an empirical score.
pub(crate) fn score_file(score: &Score) -> Option<(&std::path::Path, &str)> {
    match score {
        Score::Samples { path, sha256, .. } => Some((path, sha256)),
        Score::Mixture(_) => None,
    }
}

/// The GPU stepper of a diffusion kind.
pub(crate) fn diffusion_stepper(
    dynamics: &dyn Diffusion,
    cx: &StepperContext<'_>,
) -> Result<Box<dyn Stepper>> {
    let gpu = DiffusionGpu::new(
        cx.gpu,
        cx.ensemble,
        dynamics,
        cx.data,
        cx.seed,
        cx.workgroup_size,
    )?;
    Ok(Box::new(gpu))
}

/// The CPU twin of a diffusion kind over the whole ensemble.
pub(crate) fn diffusion_twin(
    dynamics: &dyn Diffusion,
    state: &mut TwinState,
    cx: &TwinContext<'_>,
) {
    diffusion_cpu(
        &mut state.positions,
        cx.dim,
        0,
        dynamics,
        cx.data,
        cx.seed,
        cx.step0,
        cx.steps,
    );
}

/// Why the diffusion kinds (forward, reverse_sde, probability_flow) take no `[boundary]`
/// or first-passage tables.
pub const DIFFUSION_BOUNDARY_REFUSAL: &str = "generative diffusion runs a noising process on \
     all of R^d and its reverse (probability_flow: the deterministic flow) from a Gaussian \
     prior, with a score that belongs to that unbounded process: a wall or a periodic wrap \
     would change the process the score describes";

/// The [`Dynamics`] methods `reverse_sde` and `probability_flow` share: a process, a score
/// and a time grid from t_end down to t_min (fields `process`, `score`, `t_end`, `t_min`,
/// `steps`, `grid`), on this file's pipeline.
macro_rules! reverse_dynamics {
    () => {
        fn steps(&self) -> u64 {
            self.steps
        }

        /// Refused, with the reason: [`crate::dynamics::diffusion::DIFFUSION_BOUNDARY_REFUSAL`].
        fn boundary_refusal(&self, _: &$crate::scenario::Boundary) -> Option<String> {
            Some($crate::dynamics::diffusion::DIFFUSION_BOUNDARY_REFUSAL.to_string())
        }

        /// The mean step (t_end - t_min) / steps, whatever the grid.
        fn time_per_step(&self) -> f64 {
            (self.t_end - self.t_min) / self.steps as f64
        }

        fn time_at(&self, step: u64) -> f64 {
            $crate::dynamics::diffusion::reverse_time_at(
                self.t_end, self.t_min, self.steps, self.grid, step,
            )
        }

        /// Reverse dynamics end on the data.
        fn final_box(
            &self,
            data: Option<&$crate::scenario::data::SampleTable>,
            axis: usize,
        ) -> Option<[f64; 2]> {
            $crate::dynamics::diffusion::data_box(&self.score, data, axis)
        }

        fn prior_process(&self) -> Option<&$crate::model::Process> {
            Some(&self.process)
        }

        fn state_memory(&self, dim: u64) -> $crate::dynamics::StateMemory {
            $crate::dynamics::diffusion::score_memory(&self.score, dim)
        }

        fn input_file(&self) -> Option<(&std::path::Path, &str)> {
            $crate::dynamics::diffusion::score_file(&self.score)
        }

        fn references(&self) -> $crate::dynamics::References<'_> {
            $crate::dynamics::References::ExactLaw {
                needs_mixture_init: false,
            }
        }

        /// The data law pushed to time t.
        fn exact_law(
            &self,
            _init: &$crate::scenario::Init,
            data: Option<&$crate::scenario::data::SampleTable>,
            t: f64,
        ) -> Option<$crate::model::Mixture> {
            $crate::dynamics::diffusion::data_law(&self.process, &self.score, data, t)
        }

        fn stepper(
            &self,
            cx: &$crate::dynamics::StepperContext<'_>,
        ) -> $crate::error::Result<Box<dyn $crate::dynamics::Stepper>> {
            $crate::dynamics::diffusion::diffusion_stepper(self, cx)
        }

        fn twin(
            &self,
            state: &mut $crate::dynamics::TwinState,
            cx: &$crate::dynamics::TwinContext<'_>,
        ) -> $crate::error::Result<()> {
            $crate::dynamics::diffusion::diffusion_twin(self, state, cx);
            Ok(())
        }
    };
}
pub(crate) use reverse_dynamics;

/// The score of the data law at process time t as the twin computes it, in f64.
fn score_cpu(
    process: &Process,
    score: &Score,
    data: Option<&SampleTable>,
    x: &[f64],
    t: f64,
) -> Vec<f64> {
    match score {
        Score::Mixture(m) => process.marginal(m, t).score(x),
        Score::Samples { .. } => {
            let table = data.expect("the twin is given the data set");
            let (alpha, s2) = (process.alpha(t), process.s2(t));
            let mean = super::empirical::posterior_mean_cpu(table, x, alpha, s2);
            mean.iter()
                .zip(x)
                .map(|(m, xi)| (alpha * m - xi) / s2)
                .collect()
        }
    }
}

/// CPU twin of shaders/diffusion.wgsl in f64: advances particles `first ..` (row-major
/// `positions`) through steps `step0 .. step0 + steps` of a diffusion `dynamics` with the
/// same Philox noise. `data` is the data set of an empirical score.
#[allow(clippy::too_many_arguments)]
pub fn diffusion_cpu(
    positions: &mut [f64],
    dim: u32,
    first: u64,
    dynamics: &dyn Diffusion,
    data: Option<&SampleTable>,
    seed: u64,
    step0: u64,
    steps: u64,
) {
    let p = dynamics.parts();
    let key = rng::key_from_seed(seed);
    let d = dim as usize;
    for (i, x) in positions.chunks_exact_mut(d).enumerate() {
        let mut noise = NoiseStream::new(key, first + i as u64, step0, dim);
        for n in step0..step0 + steps {
            let c = dynamics.coefficients(n);
            let s1 = match p.score {
                Some(score) => score_cpu(p.process, score, data, x, dynamics.time_at(n)),
                None => vec![0.0; d],
            };
            if p.heun {
                let pred: Vec<f64> = (0..d).map(|k| c.a * x[k] + c.c * s1[k]).collect();
                let score = p.score.expect("Heun has a score");
                let s2 = score_cpu(p.process, score, data, &pred, dynamics.time_at(n + 1));
                for k in 0..d {
                    let d1 = (c.a - 1.0) * x[k] + c.c * s1[k];
                    let d2 = (c.a2 - 1.0) * pred[k] + c.c2 * s2[k];
                    x[k] += 0.5 * (d1 + d2);
                }
            } else {
                for k in 0..d {
                    let xi = if p.noise { noise.next_normal() } else { 0.0 };
                    x[k] = c.a * x[k] + c.c * s1[k] + c.b * xi;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dynamics::forward::ForwardPlan;
    use crate::dynamics::probability_flow::ProbabilityFlowPlan;
    use crate::dynamics::reverse_sde::ReverseSdePlan;
    use crate::scenario::{FlowIntegrator, ForwardIntegrator, TimeGrid};

    fn vp() -> Process {
        Process::Vp {
            beta_min: 0.1,
            beta_max: 20.0,
        }
    }

    #[test]
    fn mixture_blocks_fit_the_uniform_window_in_whole_rounds() {
        let per_step = |k: usize| 2 * k * COMPONENT_FLOATS * 4;
        // Three components: 480 bytes a step, 136 steps in 64 KiB (a multiple of four).
        assert_eq!(mixture_steps(per_step(3)), (136, true));
        // One component: 160 bytes a step, 409 fit, 408 in whole rounds.
        assert_eq!(mixture_steps(per_step(1)), (408, true));
        // 150 components: 24 000 bytes a step, 2 fit, fewer than a round.
        assert_eq!(mixture_steps(per_step(150)), (2, true));
        // 409 fit one step; 410 do not and go to storage (16 MiB / 65 600 bytes = 255 steps).
        assert_eq!(mixture_steps(per_step(409)), (1, true));
        assert_eq!(mixture_steps(per_step(410)), (255, false));
    }

    #[test]
    fn reverse_grid_runs_from_t_end_to_t_min() {
        let d = ReverseSdePlan {
            process: vp(),
            score: Score::Mixture(Mixture {
                weights: vec![1.0],
                means: vec![vec![0.0]],
                stds: vec![vec![1.0]],
            }),
            t_end: 1.0,
            t_min: 1e-3,
            steps: 100,
            grid: crate::scenario::TimeGrid::Uniform,
        };
        assert_eq!(d.time_at(0), 1.0);
        assert_eq!(d.time_at(100), 1e-3);
        let c = d.coefficients(99);
        let h = (1.0 - 1e-3) / 100.0;
        assert!((c.c - vp().g2(d.time_at(99)) * h).abs() < 1e-12);
        assert!((c.b * c.b - c.c).abs() < 1e-12);
        assert!(c.a > 1.0);
    }

    #[test]
    fn geometric_grid_shrinks_its_steps_towards_t_min() {
        let d = ProbabilityFlowPlan {
            process: vp(),
            score: Score::Mixture(Mixture {
                weights: vec![1.0],
                means: vec![vec![0.0]],
                stds: vec![vec![1.0]],
            }),
            integrator: FlowIntegrator::Heun,
            t_end: 1.0,
            t_min: 1e-3,
            steps: 30,
            grid: crate::scenario::TimeGrid::Geometric,
        };
        assert_eq!(d.time_at(0), 1.0);
        assert_eq!(d.time_at(30), 1e-3);
        assert!((d.time_at(10) - 0.1).abs() < 1e-12);
        let h = |n| d.time_at(n) - d.time_at(n + 1);
        assert!((h(0) / h(10) - 10.0).abs() < 1e-9);
        // Coefficients follow the step: C = g^2 h / 2 at t.
        let c = d.coefficients(10);
        assert!((c.c - 0.5 * vp().g2(0.1) * h(10)).abs() < 1e-15);
    }

    /// The built-in linear vp schedule written as an expression.
    fn vp_expression() -> Process {
        let beta = crate::model::expr::TimeExpr::new(crate::model::expr::TimeSource {
            expr: "lo + t*(hi - lo)".into(),
            params: [("lo".to_string(), 0.1), ("hi".to_string(), 20.0)].into(),
        })
        .unwrap();
        Process::VpSchedule(crate::model::process::BetaSchedule::from(beta))
    }

    /// Every coefficient of every step of `with(vp())` and `with(vp_expression())` agree to
    /// `rel` relative (A - 1 and A2 - 1 as the shader receives them).
    fn assert_same_coefficients(with: &dyn Fn(Process) -> Box<dyn Diffusion>, rel: f64) {
        let (a, b) = (with(vp()), with(vp_expression()));
        for n in 0..a.steps() {
            let (x, y) = (a.coefficients(n), b.coefficients(n));
            let pairs = [
                ("A - 1", x.a - 1.0, y.a - 1.0),
                ("B", x.b, y.b),
                ("C", x.c, y.c),
                ("alpha", x.alpha, y.alpha),
                ("s2", x.s2, y.s2),
                ("A2 - 1", x.a2 - 1.0, y.a2 - 1.0),
                ("C2", x.c2, y.c2),
                ("alpha2", x.alpha2, y.alpha2),
                ("s2_2", x.s2_2, y.s2_2),
            ];
            for (name, u, v) in pairs {
                assert!(
                    (u - v).abs() <= rel * u.abs().max(v.abs()),
                    "step {n}: {name} {u:e} vs {v:e}"
                );
            }
        }
    }

    #[test]
    fn an_expression_beta_gives_the_built_in_coefficients() {
        let score = Score::Mixture(Mixture {
            weights: vec![1.0],
            means: vec![vec![0.0]],
            stds: vec![vec![1.0]],
        });
        for integrator in [ForwardIntegrator::EulerMaruyama, ForwardIntegrator::Exact] {
            assert_same_coefficients(
                &|process| {
                    Box::new(ForwardPlan {
                        process,
                        integrator,
                        dt: 0.01,
                        steps: 100,
                        t_end: 1.0,
                    })
                },
                1e-12,
            );
        }
        for grid in [TimeGrid::Uniform, TimeGrid::Geometric] {
            assert_same_coefficients(
                &|process| {
                    Box::new(ReverseSdePlan {
                        process,
                        score: score.clone(),
                        t_end: 1.0,
                        t_min: 1e-5,
                        steps: 100,
                        grid,
                    })
                },
                1e-12,
            );
            assert_same_coefficients(
                &|process| {
                    Box::new(ProbabilityFlowPlan {
                        process,
                        score: score.clone(),
                        integrator: FlowIntegrator::Heun,
                        t_end: 1.0,
                        t_min: 1e-5,
                        steps: 100,
                        grid,
                    })
                },
                1e-12,
            );
        }
    }

    /// Resolves a scenario with this `[dynamics]` table (prior init for reverse kinds).
    fn resolve(dynamics: &str) -> crate::error::Result<crate::scenario::Resolved> {
        let init = if dynamics.contains("\"forward\"") {
            "{ kind = \"point\", at = [0.0, 0.0] }"
        } else {
            "{ kind = \"prior\" }"
        };
        let text =
            format!("[particles]\ncount = 16\ndim = 2\ninit = {init}\n[dynamics]\n{dynamics}\n");
        crate::scenario::resolve_str(&text, "t.toml", std::path::Path::new(""), &[], None)
    }

    const SCORE: &str = "score = { kind = \"mixture\", weights = [1.0], means = [[0.0, 0.0]], \
                         stds = [1.0] }";

    #[test]
    fn an_expression_beta_is_read_and_checked_on_the_run() {
        let beta = r#"beta = { expr = "lo + t*(hi - lo)", params = { lo = 0.1, hi = 20.0 } }"#;
        for kind in ["reverse_sde", "probability_flow"] {
            let r = resolve(&format!(
                "kind = \"{kind}\"\nprocess = {{ kind = \"vp\", {beta} }}\n{SCORE}\nsteps = 4"
            ))
            .unwrap();
            let json = serde_json::to_value(&r.plan.dynamics).unwrap();
            assert_eq!(json["process"]["kind"], "vp");
            assert_eq!(json["process"]["beta"]["expr"], "lo + t*(hi - lo)");
            assert_eq!(r.plan.dynamics.prior_process(), Some(&vp_expression()));
        }
        // Negative past t = 0.5: refused for a run to t_end = 1, fine for t_end = 0.4.
        let falling = r#"process = { kind = "vp", beta = { expr = "1 - 2*t" } }"#;
        let e = resolve(&format!(
            "kind = \"forward\"\n{falling}\ndt = 0.1\nsteps = 10"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("dynamics.process.beta.expr"), "{e}");
        assert!(e.contains("on [0, t_end = 1]"), "{e}");
        assert!(
            resolve(&format!(
                "kind = \"forward\"\n{falling}\ndt = 0.1\nsteps = 4"
            ))
            .is_ok()
        );
        let e = resolve(&format!(
            "kind = \"reverse_sde\"\n{falling}\n{SCORE}\nt_end = 2.0\nsteps = 4"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("on [0, t_end = 2]"), "{e}");
        // Either the linear schedule's keys or the expression.
        let both = r#"process = { kind = "vp", beta_min = 0.1, beta = { expr = "1" } }"#;
        let e = resolve(&format!("kind = \"forward\"\n{both}\ndt = 0.1\nsteps = 4"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("dynamics.process.beta_min"), "{e}");
        let bad = r#"process = { kind = "vp", beta = { expr = "x*t" } }"#;
        let e = resolve(&format!("kind = \"forward\"\n{bad}\ndt = 0.1\nsteps = 4"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("dynamics.process.beta.expr"), "{e}");
    }

    #[test]
    fn exact_forward_coefficients_compose() {
        let d = ForwardPlan {
            process: vp(),
            integrator: ForwardIntegrator::Exact,
            dt: 0.01,
            steps: 100,
            t_end: 1.0,
        };
        // Product of A = alpha(1); accumulated variance = s^2(1).
        let (mut a, mut v) = (1.0, 0.0);
        for n in 0..100 {
            let c = d.coefficients(n);
            a *= c.a;
            v = c.a * c.a * v + c.b * c.b;
        }
        assert!((a - vp().alpha(1.0)).abs() < 1e-12);
        assert!((v - vp().s2(1.0)).abs() < 1e-12);
    }
}
