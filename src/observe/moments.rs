//! Mean and covariance: the GPU reduction (shaders/moments.wgsl) and its CPU twin.

use crate::error::Result;
use crate::gpu::timer::Work;
use crate::gpu::{Ensemble, Gpu, Kernel};
use crate::shaders;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Particles each invocation sums before the workgroup reduction. Large, because on
/// lavapipe every workgroup barrier is a coroutine switch and the reduction has many; f32 sums
/// of 128 centred values stay far inside f32 precision.
pub const ITEMS: u32 = 128;

/// Sample mean and (population, divide-by-N) covariance of the finite particles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Moments {
    /// Finite particles the moments are over.
    pub count: u64,
    pub nonfinite: u64,
    pub mean: Vec<f64>,
    /// dim x dim, row-major.
    pub cov: Vec<f64>,
}

impl Moments {
    /// Pools the moments of disjoint parts of one ensemble: the mean weighted by counts and
    /// the covariance by the parallel-axis rule, in f64.
    pub fn pool(parts: &[&Moments]) -> Moments {
        let dim = parts[0].mean.len();
        let n: u64 = parts.iter().map(|p| p.count).sum();
        let nf = n.max(1) as f64;
        let mut mean = vec![0.0; dim];
        for p in parts.iter().filter(|p| p.count > 0) {
            for (m, v) in mean.iter_mut().zip(&p.mean) {
                *m += p.count as f64 * v / nf;
            }
        }
        let mut cov = vec![0.0; dim * dim];
        for p in parts.iter().filter(|p| p.count > 0) {
            let w = p.count as f64 / nf;
            for a in 0..dim {
                for b in 0..dim {
                    cov[a * dim + b] +=
                        w * (p.cov[a * dim + b] + (p.mean[a] - mean[a]) * (p.mean[b] - mean[b]));
                }
            }
        }
        if n == 0 {
            mean = vec![f64::NAN; dim];
            cov = vec![f64::NAN; dim * dim];
        }
        Moments {
            count: n,
            nonfinite: parts.iter().map(|p| p.nonfinite).sum(),
            mean,
            cov,
        }
    }

    /// From shifted sums: s1 = sum (x - c), s2 = upper triangle of sum (x - c)(x - c)^T.
    fn from_sums(
        dim: usize,
        count: u64,
        nonfinite: u64,
        center: &[f64],
        s1: &[f64],
        s2: &[f64],
    ) -> Moments {
        let n = count.max(1) as f64;
        let shift: Vec<f64> = s1.iter().map(|s| s / n).collect();
        let mut cov = vec![0.0; dim * dim];
        let mut k = 0;
        for a in 0..dim {
            for b in a..dim {
                let v = s2[k] / n - shift[a] * shift[b];
                cov[a * dim + b] = v;
                cov[b * dim + a] = v;
                k += 1;
            }
        }
        let (mean, cov) = if count == 0 {
            (vec![f64::NAN; dim], vec![f64::NAN; dim * dim])
        } else {
            (center.iter().zip(&shift).map(|(c, s)| c + s).collect(), cov)
        };
        Moments {
            count,
            nonfinite,
            mean,
            cov,
        }
    }
}

pub struct MomentsGpu {
    kernel: Arc<Kernel>,
    center: wgpu::Buffer,
    partials: Vec<(wgpu::Buffer, u32)>,
    binds: Vec<wgpu::BindGroup>,
    dim: usize,
}

fn row_len(dim: usize) -> usize {
    dim + dim * (dim + 1) / 2 + 1
}

impl MomentsGpu {
    /// `workgroup_size` must be a power of two no larger than 256 (the shader's scratch).
    pub fn new(gpu: &Gpu, ensemble: &Ensemble, workgroup_size: u32) -> MomentsGpu {
        let wg = workgroup_size.clamp(1, 256).next_power_of_two().min(256);
        let kernel = Kernel::new(
            gpu,
            "moments",
            shaders::MOMENTS,
            &[
                ("DIM", f64::from(ensemble.dim)),
                ("ITEMS", f64::from(ITEMS)),
                ("TAG_STRIDE", f64::from(ensemble.tag_stride)),
            ],
            wg,
        );
        let dim = ensemble.dim as usize;
        let center = gpu.uniform_with("moments center", &[0u8; 32]);
        let max = gpu.limits.max_compute_workgroups_per_dimension;
        let partials: Vec<(wgpu::Buffer, u32)> = ensemble
            .chunks
            .iter()
            .map(|c| {
                let groups = c.count.div_ceil(ITEMS * wg);
                let (x, y) = crate::gpu::kernel::grid(groups, max);
                let rows = x * y;
                (
                    gpu.storage_buffer(
                        "moment partials",
                        (rows as usize * row_len(dim) * 4) as u64,
                        wgpu::BufferUsages::empty(),
                    ),
                    groups,
                )
            })
            .collect();
        let binds = ensemble
            .chunks
            .iter()
            .zip(&partials)
            .map(|(c, (p, _))| kernel.bind(gpu, &[&c.state, &c.uniform, &center, p, &c.tags]))
            .collect();
        MomentsGpu {
            kernel,
            center,
            partials,
            binds,
            dim,
        }
    }

    /// Moments of all particles but the `absorbed` ones (which the kernel leaves out); sums
    /// are taken about `center` (a guess of the mean keeps f32 cancellation small) and
    /// combined on the host in f64.
    pub fn observe(
        &self,
        gpu: &Gpu,
        ensemble: &Ensemble,
        center: &[f64],
        absorbed: u64,
    ) -> Result<Moments> {
        let mut c = [0f32; 8];
        for (dst, src) in c.iter_mut().zip(center) {
            *dst = *src as f32;
        }
        // The sums are about the f32 center the shader actually used.
        let used: Vec<f64> = c[..self.dim].iter().map(|&v| f64::from(v)).collect();
        gpu.queue
            .write_buffer(&self.center, 0, bytemuck::cast_slice(&c));
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            for (bind, (_, groups)) in self.binds.iter().zip(&self.partials) {
                self.kernel.dispatch(
                    &mut pass,
                    bind,
                    *groups,
                    gpu.limits.max_compute_workgroups_per_dimension,
                );
            }
        }
        gpu.submit(encoder, Work::Observing);
        let len = row_len(self.dim);
        let mut s1 = vec![0.0; self.dim];
        let mut s2 = vec![0.0; len - self.dim - 1];
        let mut nonfinite = 0u64;
        for (buffer, groups) in &self.partials {
            let bytes = gpu.read_bytes(buffer, 0, (*groups as usize * len * 4) as u64)?;
            for row in bytemuck::cast_slice::<u8, f32>(&bytes).chunks_exact(len) {
                for (a, v) in s1.iter_mut().zip(row) {
                    *a += f64::from(*v);
                }
                for (a, v) in s2.iter_mut().zip(&row[self.dim..]) {
                    *a += f64::from(*v);
                }
                nonfinite += row[len - 1] as u64;
            }
        }
        Ok(Moments::from_sums(
            self.dim,
            ensemble.count - absorbed - nonfinite,
            nonfinite,
            &used,
            &s1,
            &s2,
        ))
    }
}

/// CPU twin of shaders/moments.wgsl in f64.
pub fn moments_cpu(positions: &[f64], dim: u32) -> Moments {
    let d = dim as usize;
    // Two passes: sums about the mean, so data far from 0 keep their covariance's digits.
    let finite = || {
        positions
            .chunks_exact(d)
            .filter(|x| x.iter().all(|v| v.is_finite()))
    };
    let rows = finite().count().max(1) as f64;
    let center: Vec<f64> = (0..d)
        .map(|a| finite().map(|x| x[a]).sum::<f64>() / rows)
        .collect();
    let mut s1 = vec![0.0; d];
    let mut s2 = vec![0.0; row_len(d) - d - 1];
    let (mut count, mut nonfinite) = (0u64, 0u64);
    for x in positions.chunks_exact(d) {
        if x.iter().any(|v| !v.is_finite()) {
            nonfinite += 1;
            continue;
        }
        count += 1;
        let mut k = 0;
        for a in 0..d {
            s1[a] += x[a] - center[a];
            for b in a..d {
                s2[k] += (x[a] - center[a]) * (x[b] - center[b]);
                k += 1;
            }
        }
    }
    Moments::from_sums(d, count, nonfinite, &center, &s1, &s2)
}
