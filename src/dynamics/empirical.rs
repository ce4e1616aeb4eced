//! The exact score of a noised empirical data set for reverse diffusion: with data y_j and
//! the process marginal x_t = alpha x_0 + s eps,
//!   E[x0 | x] = sum_j w_j y_j / sum_j w_j,  w_j = exp(-|x - alpha y_j|^2 / (2 s^2))
//!            = the Gaussian-kernel weighted mean of the data around x / alpha at variance
//!              s^2 / alpha^2,
//! computed by the shared tiled kernel sum (src/dynamics/kernel_sum.rs) into scratch
//! buffers that shaders/diffusion.wgsl reads. CPU twin: [`posterior_mean_cpu`].

use super::kernel_sum::{KernelSum, KernelSumArgs};
use crate::error::{Error, Result};
use crate::gpu::{Ensemble, Gpu};
use crate::scenario::data::SampleTable;

pub struct EmpiricalScore {
    kernel: KernelSum,
    data: wgpu::Buffer,
    rows: u32,
    /// E[x0 | x] at the particles, Heun's predictor, E[x0 | x] at the predictor, and the
    /// log sums (unused): rows indexed like the largest chunk.
    mean1: wgpu::Buffer,
    pred: wgpu::Buffer,
    mean2: wgpu::Buffer,
    logs: wgpu::Buffer,
}

impl EmpiricalScore {
    pub fn new(
        gpu: &Gpu,
        ensemble: &Ensemble,
        table: &SampleTable,
        workgroup_size: u32,
    ) -> Result<Self> {
        let dim = ensemble.dim;
        let bytes = table.values.len() as u64 * 4;
        if bytes > gpu.limits.max_storage_buffer_binding_size || table.rows > u32::MAX as usize {
            return Err(Error::Device(format!(
                "the score's data set ({} rows, {bytes} bytes) is larger than one storage \
                 binding of {} ({} bytes)",
                table.rows, gpu.adapter.name, gpu.limits.max_storage_buffer_binding_size
            )));
        }
        let kernel = KernelSum::new(gpu, dim, workgroup_size.min(256))?;
        let rows = ensemble
            .chunks
            .iter()
            .map(|c| c.count)
            .max()
            .unwrap_or(0)
            .max(1);
        let scratch = |label: &str, per_row: u64| {
            gpu.storage_buffer(
                label,
                u64::from(rows) * per_row * 4,
                wgpu::BufferUsages::empty(),
            )
        };
        let score = EmpiricalScore {
            kernel,
            data: gpu.storage_with("score data", bytemuck::cast_slice(&table.values)),
            rows: table.rows as u32,
            mean1: scratch("posterior mean", u64::from(dim)),
            pred: scratch("heun predictor", u64::from(dim)),
            mean2: scratch("posterior mean at predictor", u64::from(dim)),
            logs: scratch("kernel log sums", 1),
        };
        gpu.check()?;
        Ok(score)
    }

    /// (E[x0|x] at the particles, predictor, E[x0|x] at the predictor).
    pub fn buffers(&self) -> (&wgpu::Buffer, &wgpu::Buffer, &wgpu::Buffer) {
        (&self.mean1, &self.pred, &self.mean2)
    }

    /// Records E[x0 | x] for particles `first .. first + count` of chunk `chunk` at process
    /// time with coefficients (alpha, s2): `at_predictor` false reads the particles and
    /// writes the first mean buffer, true reads Heun's predictor and writes the second.
    #[allow(clippy::too_many_arguments)]
    pub fn encode_means(
        &self,
        gpu: &Gpu,
        encoder: &mut wgpu::CommandEncoder,
        ensemble: &Ensemble,
        chunk: usize,
        first: u32,
        count: u32,
        alpha: f64,
        s2: f64,
        at_predictor: bool,
    ) -> Result<()> {
        let (queries, out_mean) = if at_predictor {
            (&self.pred, &self.mean2)
        } else {
            (&ensemble.chunks[chunk].state, &self.mean1)
        };
        self.kernel.encode(
            gpu,
            encoder,
            &KernelSumArgs {
                queries,
                query_first: first,
                query_count: count,
                query_scale: (1.0 / alpha) as f32,
                sources: &self.data,
                source_count: self.rows,
                payload: None,
                variance: s2 / (alpha * alpha),
                out_mean,
                out_log: &self.logs,
                out_first: first,
            },
        )
    }
}

/// E[x0 | x] over the data set in f64 for the process coefficients (alpha, s2), by a
/// log-sum-exp shift (the twin of the GPU path).
pub fn posterior_mean_cpu(table: &SampleTable, x: &[f64], alpha: f64, s2: f64) -> Vec<f64> {
    let d = table.dim;
    let logs: Vec<f64> = table
        .values
        .chunks_exact(d)
        .map(|y| {
            let r2: f64 = y
                .iter()
                .zip(x)
                .map(|(&yj, &xj)| (xj - alpha * f64::from(yj)).powi(2))
                .sum();
            -r2 / (2.0 * s2)
        })
        .collect();
    let m = logs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut total = 0.0;
    let mut mean = vec![0.0; d];
    for (l, y) in logs.iter().zip(table.values.chunks_exact(d)) {
        let w = (l - m).exp();
        total += w;
        for (acc, &yj) in mean.iter_mut().zip(y) {
            *acc += w * f64::from(yj);
        }
    }
    mean.iter().map(|v| v / total).collect()
}
