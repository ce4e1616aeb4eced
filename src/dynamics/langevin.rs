//! Overdamped Langevin dynamics, Euler–Maruyama:
//!   x_{k+1} = x_k - grad U(x_k) dt + sqrt(2 T dt) xi_k.
//! GPU pipeline (shaders/langevin.wgsl) and its f64 CPU twin [`langevin_cpu`].

use super::potential_params::gpu_potential_params;
use crate::error::Result;
use crate::gpu::{Ensemble, Gpu, Kernel};
use crate::model::Potential;
use crate::rng::{self, NoiseStream};
use crate::shaders;
use bytemuck::Zeroable;

#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
struct StepUniform {
    key: [u32; 2],
    block0: u32,
    lane0: u32,
    steps: u32,
    dt: f32,
    noise_scale: f32,
    _pad: u32,
}
const _: () = assert!(std::mem::size_of::<StepUniform>() == 32);

/// The Langevin kernel bound to an ensemble's chunks.
pub struct LangevinGpu {
    kernel: Kernel,
    step: wgpu::Buffer,
    binds: Vec<wgpu::BindGroup>,
    key: [u32; 2],
    dim: u32,
    dt: f32,
    noise_scale: f32,
    // Kept alive for the bind groups.
    _potential: wgpu::Buffer,
}

impl LangevinGpu {
    pub fn new(
        gpu: &Gpu,
        ensemble: &Ensemble,
        potential: &Potential,
        temperature: f64,
        dt: f64,
        seed: u64,
        workgroup_size: u32,
    ) -> LangevinGpu {
        let (kind, params) = gpu_potential_params(potential, ensemble.dim);
        let kernel = Kernel::new(
            gpu,
            "langevin",
            shaders::LANGEVIN,
            &[
                ("DIM", f64::from(ensemble.dim)),
                ("POTENTIAL", f64::from(kind)),
            ],
            workgroup_size,
        );
        let step = gpu.uniform_with("langevin step", bytemuck::bytes_of(&StepUniform::zeroed()));
        let potential = gpu.storage_with("potential params", bytemuck::cast_slice(&params));
        let binds = ensemble
            .chunks
            .iter()
            .map(|c| kernel.bind(gpu, &[&c.state, &c.uniform, &step, &potential]))
            .collect();
        LangevinGpu {
            kernel,
            step,
            binds,
            key: rng::key_from_seed(seed),
            dim: ensemble.dim,
            dt: dt as f32,
            noise_scale: (2.0 * temperature * dt).sqrt() as f32,
            _potential: potential,
        }
    }

    /// Submits steps `step0 .. step0 + steps` for every chunk as one fused dispatch per
    /// chunk. Does not wait.
    pub fn submit(&self, gpu: &Gpu, ensemble: &Ensemble, step0: u64, steps: u32) {
        let g = step0 * u64::from(self.dim);
        let uniform = StepUniform {
            key: self.key,
            block0: (g >> 2) as u32,
            lane0: (g & 3) as u32,
            steps,
            dt: self.dt,
            noise_scale: self.noise_scale,
            _pad: 0,
        };
        // Ordered before the submit below, after all earlier submits.
        gpu.queue
            .write_buffer(&self.step, 0, bytemuck::bytes_of(&uniform));
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            for (c, bind) in ensemble.chunks.iter().zip(&self.binds) {
                self.kernel.dispatch(
                    &mut pass,
                    bind,
                    c.count.div_ceil(self.kernel.workgroup_size),
                    gpu.limits.max_compute_workgroups_per_dimension,
                );
            }
        }
        gpu.queue.submit([encoder.finish()]);
    }

    /// Runs `steps` steps from `step0` and waits for them.
    pub fn advance(&self, gpu: &Gpu, ensemble: &Ensemble, step0: u64, steps: u32) -> Result<()> {
        self.submit(gpu, ensemble, step0, steps);
        gpu.wait()
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
    temperature: f64,
    dt: f64,
    seed: u64,
    step0: u64,
    steps: u64,
) {
    let key = rng::key_from_seed(seed);
    let scale = (2.0 * temperature * dt).sqrt();
    let d = dim as usize;
    for (i, x) in positions.chunks_exact_mut(d).enumerate() {
        let mut noise = NoiseStream::new(key, first + i as u64, step0, dim);
        for _ in 0..steps {
            let g = potential.gradient(x);
            for c in 0..d {
                let xi = if scale > 0.0 {
                    noise.next_normal()
                } else {
                    0.0
                };
                x[c] += -g[c] * dt + scale * xi;
            }
        }
    }
}
