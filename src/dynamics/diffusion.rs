//! Diffusion dynamics (DESIGN.md, Dynamics): the forward noising SDE, the reverse-time SDE
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
use super::{NonfiniteCounter, Stepper};
use crate::error::{Error, Result};
use crate::gpu::abi::{
    self, DIFFUSION_COEFF_VEC4S, DIFFUSION_COMPONENT_VEC4S, DiffusionStep as StepUniform,
};
use crate::gpu::{Ensemble, Gpu, Kernel};
use crate::model::{Mixture, Process};
use crate::rng::{self, NoiseStream};
use crate::scenario::data::SampleTable;
use crate::scenario::{DynamicsPlan, FlowIntegrator, ForwardIntegrator, Score};
use crate::shaders;
use std::sync::Arc;

/// Steps of coefficients one upload holds: blocks are at most this long.
pub const TABLE_STEPS: u32 = 1024;

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
    fn packed(&self) -> [f32; 12] {
        let f = |x: f64| x as f32;
        [
            f(self.a),
            f(self.b),
            f(self.c),
            0.0,
            f(self.alpha),
            f(self.s2),
            0.0,
            0.0,
            f(self.a2),
            f(self.c2),
            f(self.alpha2),
            f(self.s2_2),
        ]
    }
}

/// What the diffusion dynamics of a plan are made of.
struct Parts<'p> {
    process: &'p Process,
    score: Option<&'p Score>,
    noise: bool,
    heun: bool,
}

fn parts(dynamics: &DynamicsPlan) -> Option<Parts<'_>> {
    match dynamics {
        DynamicsPlan::Forward { process, .. } => Some(Parts {
            process,
            score: None,
            noise: true,
            heun: false,
        }),
        DynamicsPlan::ReverseSde { process, score, .. } => Some(Parts {
            process,
            score: Some(score),
            noise: true,
            heun: false,
        }),
        DynamicsPlan::ProbabilityFlow {
            process,
            score,
            integrator,
            ..
        } => Some(Parts {
            process,
            score: Some(score),
            noise: false,
            heun: *integrator == FlowIntegrator::Heun,
        }),
        _ => None,
    }
}

/// The coefficients of global step `n` of `dynamics` (a diffusion kind), in f64.
pub fn coefficients(dynamics: &DynamicsPlan, n: u64) -> StepCoefficients {
    let t = dynamics.time_at(n);
    let t2 = dynamics.time_at(n + 1);
    let mut c = StepCoefficients {
        a: 1.0,
        b: 0.0,
        c: 0.0,
        alpha: 1.0,
        s2: 1.0,
        a2: 1.0,
        c2: 0.0,
        alpha2: 1.0,
        s2_2: 1.0,
    };
    match dynamics {
        DynamicsPlan::Forward {
            process,
            integrator,
            dt,
            ..
        } => match integrator {
            ForwardIntegrator::EulerMaruyama => {
                c.a = 1.0 - process.drift(t) * dt;
                c.b = (process.g2(t) * dt).sqrt();
            }
            ForwardIntegrator::Exact => {
                let (a, v) = process.transition(t, t2);
                c.a = a;
                c.b = v.sqrt();
            }
        },
        DynamicsPlan::ReverseSde { process, .. } => {
            let h = t - t2;
            c.a = 1.0 + process.drift(t) * h;
            c.c = process.g2(t) * h;
            c.b = c.c.sqrt();
            c.alpha = process.alpha(t);
            c.s2 = process.s2(t);
        }
        DynamicsPlan::ProbabilityFlow { process, .. } => {
            let h = t - t2;
            c.a = 1.0 + process.drift(t) * h;
            c.c = 0.5 * process.g2(t) * h;
            c.alpha = process.alpha(t);
            c.s2 = process.s2(t);
            c.a2 = 1.0 + process.drift(t2) * h;
            c.c2 = 0.5 * process.g2(t2) * h;
            c.alpha2 = process.alpha(t2);
            c.s2_2 = process.s2(t2);
        }
        _ => {}
    }
    c
}

/// Floats per mixture component and time in the mixture table.
const COMPONENT_FLOATS: usize = 4 * DIFFUSION_COMPONENT_VEC4S as usize;

/// Bytes of mixture table one block may use: blocks are shortened for many components.
const MIXTURE_TABLE_BYTES: usize = 16 << 20;

/// The mixture's score constants at process time t (alpha, s2), as shaders/diffusion.wgsl
/// reads them: per component alpha mu (8), 1 / (alpha^2 sigma^2 + s2) (8, zero-padded),
/// log w + (1/2) sum log of the inverse variances, and padding. Computed in f64.
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
        out.extend([log_norm as f32, 0.0, 0.0, 0.0]);
    }
}

/// One pipeline with its step uniform and a bind group per chunk.
struct Part {
    kernel: Arc<Kernel>,
    step: wgpu::Buffer,
    binds: Vec<wgpu::BindGroup>,
}

pub struct DiffusionGpu {
    dynamics: DynamicsPlan,
    /// The mixture of a closed-form score, its per-step table and the steps it holds.
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
        dynamics: &DynamicsPlan,
        data: Option<&SampleTable>,
        seed: u64,
        workgroup_size: u32,
    ) -> Result<Self> {
        let Some(p) = parts(dynamics) else {
            return Err(Error::Usage(format!(
                "internal error: {} is not a diffusion dynamics",
                dynamics.kind_name()
            )));
        };
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
        let table_steps = match mixture {
            Some(_) => (MIXTURE_TABLE_BYTES / per_step).clamp(1, TABLE_STEPS as usize) as u32,
            None => TABLE_STEPS,
        };
        let mixture_table = gpu.storage_buffer(
            "mixture table",
            match mixture {
                Some(_) => (table_steps as usize * per_step) as u64,
                None => 16,
            },
            wgpu::BufferUsages::empty(),
        );
        let coeffs = gpu.storage_buffer(
            "diffusion coefficients",
            u64::from(TABLE_STEPS * DIFFUSION_COEFF_VEC4S) * 16,
            wgpu::BufferUsages::empty(),
        );
        let nonfinite = NonfiniteCounter::new(gpu);
        let score_kind = match (p.score, &empirical) {
            (None, _) => abi::SCORE_NONE,
            (Some(_), None) => abi::SCORE_MIXTURE,
            (Some(_), Some(_)) => abi::SCORE_BUFFERS,
        };
        let round = super::langevin::round_steps(dim);
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
            dynamics: dynamics.clone(),
            mixture,
            mixture_table,
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
            .map(|s| coefficients(&self.dynamics, step0 + s))
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
        let g = step0 * u64::from(self.dim);
        StepUniform {
            key: self.key,
            block0: (g >> 2) as u32,
            lane0: (g & 3) as u32,
            steps,
            first,
            span,
            table0,
            aux_base: 0,
            _pad: [0; 3],
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
                let c = coefficients(&self.dynamics, n);
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
            gpu.queue.submit([encoder.finish()]);
            return Ok(true);
        }
        self.upload_tables(gpu, step0, steps);
        let round = if self.noise {
            u64::from(super::langevin::round_steps(self.dim))
        } else {
            u64::from(steps).max(1)
        };
        let (head, body, tail) = super::langevin::split_block(step0, u64::from(steps), round);
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        let mut at = 0u64;
        for (part, n) in self.parts.iter().zip([head, body, tail]) {
            if n == 0 {
                continue;
            }
            let uniform = self.uniform(step0 + at, n as u32, first, span, at as u32);
            gpu.queue
                .write_buffer(&part.step, 0, bytemuck::bytes_of(&uniform));
            self.dispatch(gpu, &mut encoder, part, chunk, particles);
            at += n;
        }
        gpu.queue.submit([encoder.finish()]);
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

/// The exact law of the particles at process time `t` where it has a closed form, as a
/// Gaussian mixture: the forward process applied to a Gaussian or mixture initial law, and,
/// for reverse dynamics, the data law pushed to time t (a mixture score's mixture, or the
/// data set's points as equal-weight components of variance s(t)^2), which the reverse
/// dynamics reproduce up to their discretisation and the prior's mismatch at t_end.
pub fn exact_law(
    dynamics: &DynamicsPlan,
    init: &crate::scenario::Init,
    data: Option<&SampleTable>,
    t: f64,
) -> Option<Mixture> {
    use crate::scenario::Init;
    match dynamics {
        DynamicsPlan::Forward { process, .. } => {
            let start = match init {
                Init::Mixture(m) => m.clone(),
                Init::Gaussian { mean, std } => Mixture {
                    weights: vec![1.0],
                    means: vec![mean.clone()],
                    stds: vec![std.clone()],
                },
                _ => return None,
            };
            Some(process.marginal(&start, t))
        }
        DynamicsPlan::ReverseSde { process, score, .. }
        | DynamicsPlan::ProbabilityFlow { process, score, .. } => match score {
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
        },
        _ => None,
    }
}

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
    dynamics: &DynamicsPlan,
    data: Option<&SampleTable>,
    seed: u64,
    step0: u64,
    steps: u64,
) {
    let p = parts(dynamics).expect("a diffusion dynamics");
    let key = rng::key_from_seed(seed);
    let d = dim as usize;
    for (i, x) in positions.chunks_exact_mut(d).enumerate() {
        let mut noise = NoiseStream::new(key, first + i as u64, step0, dim);
        for n in step0..step0 + steps {
            let c = coefficients(dynamics, n);
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

    fn vp() -> Process {
        Process::Vp {
            beta_min: 0.1,
            beta_max: 20.0,
        }
    }

    #[test]
    fn reverse_grid_runs_from_t_end_to_t_min() {
        let d = DynamicsPlan::ReverseSde {
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
        let c = coefficients(&d, 99);
        let h = (1.0 - 1e-3) / 100.0;
        assert!((c.c - vp().g2(d.time_at(99)) * h).abs() < 1e-12);
        assert!((c.b * c.b - c.c).abs() < 1e-12);
        assert!(c.a > 1.0);
    }

    #[test]
    fn geometric_grid_shrinks_its_steps_towards_t_min() {
        let d = DynamicsPlan::ProbabilityFlow {
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
        let c = coefficients(&d, 10);
        assert!((c.c - 0.5 * vp().g2(0.1) * h(10)).abs() < 1e-15);
    }

    #[test]
    fn exact_forward_coefficients_compose() {
        let d = DynamicsPlan::Forward {
            process: vp(),
            integrator: ForwardIntegrator::Exact,
            dt: 0.01,
            steps: 100,
            t_end: 1.0,
        };
        // Product of A = alpha(1); accumulated variance = s^2(1).
        let (mut a, mut v) = (1.0, 0.0);
        for n in 0..100 {
            let c = coefficients(&d, n);
            a *= c.a;
            v = c.a * c.a * v + c.b * c.b;
        }
        assert!((a - vp().alpha(1.0)).abs() < 1e-12);
        assert!((v - vp().s2(1.0)).abs() < 1e-12);
    }
}
