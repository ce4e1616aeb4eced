//! Gradient flow. Plain descent x += -grad U dt is Langevin at T = 0 (the Langevin pipeline
//! with its noise compiled out); the heavy ball x'' + friction x' + grad U = 0 (seed 002) is
//! this file's pipeline (shaders/heavy_ball.wgsl), semi-implicit Euler from rest:
//!   v_{k+1} = v_k - (friction v_k + grad U(x_k)) dt,   x_{k+1} = x_k + v_{k+1} dt,
//! with its f64 CPU twin [`heavy_ball_cpu`].

use super::potential_params::gpu_potential_params;
use super::{NonfiniteCounter, Stepper};
use crate::error::Result;
use crate::gpu::abi::HeavyBallStep as StepUniform;
use crate::gpu::{Ensemble, Gpu, Kernel};
use crate::model::Potential;
use crate::shaders;
use std::sync::Arc;

pub struct HeavyBallGpu {
    kernel: Arc<Kernel>,
    step: wgpu::Buffer,
    binds: Vec<wgpu::BindGroup>,
    velocity: Ensemble,
    dt: f32,
    friction: f32,
    nonfinite: NonfiniteCounter,
}

impl HeavyBallGpu {
    pub fn new(
        gpu: &Gpu,
        ensemble: &Ensemble,
        potential: &Potential,
        dt: f64,
        friction: f64,
        workgroup_size: u32,
        chunk_particles: Option<u64>,
    ) -> Result<Self> {
        let (kind, params) = gpu_potential_params(potential);
        let params = gpu.storage_with("potential params", bytemuck::cast_slice(&params));
        // Zero-initialised: the ball starts at rest. Same chunking as the positions.
        let velocity = Ensemble::new(
            gpu,
            ensemble.dim,
            ensemble.first,
            ensemble.count,
            chunk_particles,
        )?;
        let nonfinite = NonfiniteCounter::new(gpu);
        let kernel = Kernel::new(
            gpu,
            "heavy ball",
            shaders::HEAVY_BALL,
            &[
                ("DIM", f64::from(ensemble.dim)),
                ("POTENTIAL", f64::from(kind)),
            ],
            workgroup_size,
        );
        let step = gpu.uniform_with(
            "heavy ball step",
            bytemuck::bytes_of(&<StepUniform as bytemuck::Zeroable>::zeroed()),
        );
        let binds = ensemble
            .chunks
            .iter()
            .zip(&velocity.chunks)
            .map(|(c, v)| {
                kernel.bind(
                    gpu,
                    &[
                        &c.state,
                        &c.uniform,
                        &step,
                        &params,
                        &nonfinite.buffer,
                        &v.state,
                    ],
                )
            })
            .collect();
        Ok(HeavyBallGpu {
            kernel,
            step,
            binds,
            velocity,
            dt: dt as f32,
            friction: friction as f32,
            nonfinite,
        })
    }
}

impl Stepper for HeavyBallGpu {
    fn submit_slice(
        &mut self,
        gpu: &Gpu,
        ensemble: &Ensemble,
        chunk: usize,
        first: u32,
        span: u32,
        _step0: u64,
        steps: u32,
        _stop: &dyn Fn() -> bool,
    ) -> Result<bool> {
        let uniform = StepUniform {
            steps,
            dt: self.dt,
            friction: self.friction,
            first,
            span,
            _pad: [0; 3],
        };
        gpu.queue
            .write_buffer(&self.step, 0, bytemuck::bytes_of(&uniform));
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            let particles = span.min(ensemble.chunks[chunk].count.saturating_sub(first));
            self.kernel.dispatch(
                &mut pass,
                &self.binds[chunk],
                particles.div_ceil(self.kernel.workgroup_size),
                gpu.limits.max_compute_workgroups_per_dimension,
            );
        }
        gpu.queue.submit([encoder.finish()]);
        Ok(true)
    }

    fn take_nonfinite(&self, gpu: &Gpu) -> Result<u64> {
        self.nonfinite.take(gpu)
    }

    fn extra_state(&self) -> Option<&Ensemble> {
        Some(&self.velocity)
    }
}

/// CPU twin of shaders/heavy_ball.wgsl in f64: `steps` steps of positions and velocities
/// (row-major, `dim` per particle).
pub fn heavy_ball_cpu(
    positions: &mut [f64],
    velocities: &mut [f64],
    dim: u32,
    potential: &Potential,
    dt: f64,
    friction: f64,
    steps: u64,
) {
    let d = dim as usize;
    for (x, v) in positions
        .chunks_exact_mut(d)
        .zip(velocities.chunks_exact_mut(d))
    {
        for _ in 0..steps {
            let g = potential.gradient(x);
            for c in 0..d {
                v[c] -= (friction * v[c] + g[c]) * dt;
                x[c] += v[c] * dt;
            }
        }
    }
}
