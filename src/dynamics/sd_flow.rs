//! Score-difference flow, kernel form (seed 004; Weber, TMLR 2023). Each step:
//!
//! ```text
//! z = y + sigma eps                                  (proxy noise, Philox stream 2)
//! D_p(z) = sum_j K(z, x_j) x_j / sum_j K(z, x_j)     (target samples x_j)
//! D_q(z) = sum_k K(z, y_k) y_k / sum_k K(z, y_k)     (current clean particles y_k)
//! y <- y + eta (D_p(z) - D_q(z))                     (approximate variant: D_q(z) ~ y)
//! ```
//!
//! with K(a, b) = exp(-|a - b|^2 / (2 sigma^2)): an Euler step of the flow of the score
//! difference of the noised laws, (D_p - D_q) / sigma^2, applied to the clean particles.
//! GPU: shaders/sd_flow.wgsl around two calls of the shared kernel sum; CPU twin
//! [`sd_flow_cpu`].

use super::kernel_sum::{KernelSum, KernelSumArgs};
use super::{NonfiniteCounter, Stepper};
use crate::error::{Error, Result};
use crate::gpu::{Ensemble, Gpu, Kernel};
use crate::model::Mixture;
use crate::rng::{self, INIT_CHOICE_BLOCK, STREAM_PROXY, STREAM_TARGET};
use crate::scenario::data::SampleTable;
use crate::scenario::{DynamicsPlan, SigmaSchedule, Target};
use crate::shaders;
use std::sync::Arc;

#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
struct StepUniform {
    key: [u32; 2],
    block0: u32,
    lane0: u32,
    sigma: f32,
    eta: f32,
    _pad: [u32; 2],
}
const _: () = assert!(std::mem::size_of::<StepUniform>() == 32);

/// `count` samples of `mixture` from `seed`: row r takes its component from the first word
/// of block [`INIT_CHOICE_BLOCK`] and its normals from blocks 0.. of (r, stream
/// [`STREAM_TARGET`]), so a run's target is reproducible from its manifest.
pub fn mixture_samples(mixture: &Mixture, count: u64, seed: u64) -> SampleTable {
    let key = rng::key_from_seed(seed);
    let d = mixture.dim();
    let mut values = Vec::with_capacity(count as usize * d);
    for r in 0..count {
        let word = rng::philox4x32_10(rng::counter(r, INIT_CHOICE_BLOCK, STREAM_TARGET), key)[0];
        let u = rng::unit_closed_open(word);
        let mut acc = 0.0;
        let mut k = 0;
        while k + 1 < mixture.components() {
            acc += mixture.weights[k];
            if u < acc {
                break;
            }
            k += 1;
        }
        for c in 0..d {
            let z = rng::normal(key, r, STREAM_TARGET, c as u64);
            values.push((mixture.means[k][c] + mixture.stds[k][c] * z) as f32);
        }
    }
    SampleTable {
        rows: count as usize,
        dim: d,
        values,
    }
}

/// The target samples of a kernel flow: the loaded table, or samples of its mixture.
pub fn target_samples(
    target: &Target,
    data: Option<&SampleTable>,
    seed: u64,
) -> Result<SampleTable> {
    match target {
        Target::Samples { path, .. } => data.cloned().ok_or_else(|| Error::Data {
            path: path.clone(),
            reason: "the target samples were not loaded with the plan".into(),
        }),
        Target::Mixture { mixture, count } => Ok(mixture_samples(mixture, *count, seed)),
    }
}

/// SD flow bound to an ensemble held in one chunk (every step couples all particles).
pub struct SdFlowGpu {
    kernel: KernelSum,
    proxy_stage: Arc<Kernel>,
    update_stage: Arc<Kernel>,
    step: wgpu::Buffer,
    proxy_bind: wgpu::BindGroup,
    update_bind: wgpu::BindGroup,
    targets: wgpu::Buffer,
    target_rows: u32,
    proxy: wgpu::Buffer,
    denoised_p: wgpu::Buffer,
    denoised_q: wgpu::Buffer,
    logs: wgpu::Buffer,
    sigma: SigmaSchedule,
    steps: u64,
    eta: f64,
    approximate: bool,
    key: [u32; 2],
    dim: u32,
    nonfinite: NonfiniteCounter,
}

impl SdFlowGpu {
    pub fn new(
        gpu: &Gpu,
        ensemble: &Ensemble,
        dynamics: &DynamicsPlan,
        targets: &SampleTable,
        seed: u64,
        workgroup_size: u32,
    ) -> Result<Self> {
        let DynamicsPlan::SdFlow {
            sigma,
            eta,
            steps,
            approximate,
            ..
        } = dynamics
        else {
            return Err(Error::Usage(format!(
                "internal error: {} is not sd_flow",
                dynamics.kind_name()
            )));
        };
        let dim = ensemble.dim;
        let [chunk] = ensemble.chunks.as_slice() else {
            return Err(Error::Device(format!(
                "sd_flow couples every particle to the whole ensemble: {} particles of \
                 dimension {dim} must fit one storage binding of {}",
                ensemble.count, gpu.adapter.name
            )));
        };
        if targets.dim != dim as usize || targets.rows == 0 || targets.rows > u32::MAX as usize {
            return Err(Error::Usage(format!(
                "internal error: sd_flow needs 1 to 2^32 target rows of dimension {dim}, got {} x {}",
                targets.rows, targets.dim
            )));
        }
        let kernel = KernelSum::new(gpu, dim, workgroup_size.min(256))?;
        let stage = |s: u32| {
            Kernel::new(
                gpu,
                "sd_flow",
                shaders::SD_FLOW,
                &[
                    ("DIM", f64::from(dim)),
                    ("STAGE", f64::from(s)),
                    ("APPROX", if *approximate { 1.0 } else { 0.0 }),
                ],
                workgroup_size,
            )
        };
        let (proxy_stage, update_stage) = (stage(0), stage(1));
        let rows = u64::from(chunk.count) * u64::from(dim) * 4;
        let scratch =
            |label: &str, bytes: u64| gpu.storage_buffer(label, bytes, wgpu::BufferUsages::empty());
        let proxy = scratch("sd_flow proxy", rows);
        let denoised_p = scratch("sd_flow target denoiser", rows);
        let denoised_q = scratch("sd_flow source denoiser", rows);
        let logs = scratch("sd_flow log sums", u64::from(chunk.count) * 4);
        let step = gpu.uniform_with(
            "sd_flow step",
            bytemuck::bytes_of(&<StepUniform as bytemuck::Zeroable>::zeroed()),
        );
        let nonfinite = NonfiniteCounter::new(gpu);
        let bind = |k: &Kernel| {
            k.bind(
                gpu,
                &[
                    &chunk.state,
                    &chunk.uniform,
                    &step,
                    &proxy,
                    &denoised_p,
                    &denoised_q,
                    &nonfinite.buffer,
                ],
            )
        };
        let (proxy_bind, update_bind) = (bind(&proxy_stage), bind(&update_stage));
        let flow = SdFlowGpu {
            kernel,
            proxy_stage,
            update_stage,
            step,
            proxy_bind,
            update_bind,
            targets: gpu.storage_with("sd_flow targets", bytemuck::cast_slice(&targets.values)),
            target_rows: targets.rows as u32,
            proxy,
            denoised_p,
            denoised_q,
            logs,
            sigma: *sigma,
            steps: *steps,
            eta: *eta,
            approximate: *approximate,
            key: rng::key_from_seed(seed),
            dim,
            nonfinite,
        };
        gpu.check()?;
        Ok(flow)
    }

    /// Records one step (`step` is its index, which picks sigma and the proxy noise).
    fn encode_step(
        &self,
        gpu: &Gpu,
        encoder: &mut wgpu::CommandEncoder,
        ensemble: &Ensemble,
        step: u64,
    ) -> Result<()> {
        let chunk = &ensemble.chunks[0];
        let sigma = self.sigma.at(step, self.steps);
        let g = step * u64::from(self.dim);
        let uniform = StepUniform {
            key: self.key,
            block0: (g >> 2) as u32,
            lane0: (g & 3) as u32,
            sigma: sigma as f32,
            eta: self.eta as f32,
            _pad: [0; 2],
        };
        // One step per submission: the staged write lands before this step's commands.
        gpu.queue
            .write_buffer(&self.step, 0, bytemuck::bytes_of(&uniform));
        let groups = chunk.count.div_ceil(self.proxy_stage.workgroup_size);
        let max = gpu.limits.max_compute_workgroups_per_dimension;
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            self.proxy_stage
                .dispatch(&mut pass, &self.proxy_bind, groups, max);
        }
        let denoise = |encoder: &mut wgpu::CommandEncoder,
                       sources: &wgpu::Buffer,
                       rows: u32,
                       out: &wgpu::Buffer| {
            self.kernel.encode(
                gpu,
                encoder,
                &KernelSumArgs {
                    queries: &self.proxy,
                    query_first: 0,
                    query_count: chunk.count,
                    query_scale: 1.0,
                    sources,
                    source_count: rows,
                    payload: None,
                    variance: sigma * sigma,
                    out_mean: out,
                    out_log: &self.logs,
                    out_first: 0,
                },
            )
        };
        denoise(encoder, &self.targets, self.target_rows, &self.denoised_p)?;
        if !self.approximate {
            denoise(encoder, &chunk.state, chunk.count, &self.denoised_q)?;
        }
        let mut pass = encoder.begin_compute_pass(&Default::default());
        self.update_stage
            .dispatch(&mut pass, &self.update_bind, groups, max);
        Ok(())
    }
}

impl Stepper for SdFlowGpu {
    fn max_fused(&self) -> u32 {
        1
    }

    fn min_slice(&self) -> u32 {
        u32::MAX
    }

    fn submit_slice(
        &mut self,
        gpu: &Gpu,
        ensemble: &Ensemble,
        _chunk: usize,
        _first: u32,
        _span: u32,
        step0: u64,
        steps: u32,
    ) -> Result<()> {
        for s in 0..u64::from(steps) {
            let mut encoder = gpu.device.create_command_encoder(&Default::default());
            self.encode_step(gpu, &mut encoder, ensemble, step0 + s)?;
            gpu.queue.submit([encoder.finish()]);
        }
        Ok(())
    }

    fn take_nonfinite(&self, gpu: &Gpu) -> Result<u64> {
        self.nonfinite.take(gpu)
    }
}

/// Gaussian-kernel weighted means of `points` at each row of `z` (f64, log-sum-exp).
fn denoise_cpu(z: &[f64], points: &[f64], dim: usize, variance: f64) -> Vec<f64> {
    let mut out = Vec::with_capacity(z.len());
    let mut e = vec![0.0; points.len() / dim];
    for q in z.chunks_exact(dim) {
        for (ej, y) in e.iter_mut().zip(points.chunks_exact(dim)) {
            let d2: f64 = q.iter().zip(y).map(|(a, b)| (a - b).powi(2)).sum();
            *ej = -d2 / (2.0 * variance);
        }
        let top = e.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mut total = 0.0;
        let mut acc = vec![0.0; dim];
        for (ej, y) in e.iter().zip(points.chunks_exact(dim)) {
            let w = (ej - top).exp();
            total += w;
            for (a, v) in acc.iter_mut().zip(y) {
                *a += w * v;
            }
        }
        out.extend(acc.iter().map(|a| a / total));
    }
    out
}

/// CPU twin of one SD-flow step in f64, with the GPU's proxy noise: advances all particles
/// (`positions`, row-major, global indices from 0) through step `step` with proxy level
/// `sigma`.
#[allow(clippy::too_many_arguments)]
pub fn sd_flow_cpu(
    positions: &mut [f64],
    dim: u32,
    targets: &[f64],
    sigma: f64,
    eta: f64,
    approximate: bool,
    seed: u64,
    step: u64,
) {
    let d = dim as usize;
    let key = rng::key_from_seed(seed);
    let z: Vec<f64> = positions
        .chunks_exact(d)
        .enumerate()
        .flat_map(|(i, y)| {
            y.iter()
                .enumerate()
                .map(move |(c, v)| {
                    v + sigma * rng::normal(key, i as u64, STREAM_PROXY, step * d as u64 + c as u64)
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let dp = denoise_cpu(&z, targets, d, sigma * sigma);
    let dq = if approximate {
        positions.to_vec()
    } else {
        denoise_cpu(&z, positions, d, sigma * sigma)
    };
    for ((y, p), q) in positions.iter_mut().zip(&dp).zip(&dq) {
        *y += eta * (p - q);
    }
}
