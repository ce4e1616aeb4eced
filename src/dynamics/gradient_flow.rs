//! Gradient flow. Plain descent x += -grad U dt is Langevin at T = 0 (the Langevin pipeline
//! with its noise compiled out); the heavy ball x'' + friction x' + grad U = 0 (Polyak's heavy ball) is
//! this file's pipeline (shaders/heavy_ball.wgsl), semi-implicit Euler from rest:
//!   v_{k+1} = v_k - (friction v_k + grad U(x_k)) dt,   x_{k+1} = x_k + v_{k+1} dt,
//! with its f64 CPU twin [`heavy_ball_cpu`].

use super::langevin::{LangevinGpu, langevin_cpu};
use super::potential_params::{check_potential_shader, potential_shader};
use super::{
    Dynamics, NonfiniteCounter, ParseContext, ParseKind, References, StateMemory, Stepper,
    StepperContext, TwinContext, TwinState,
};
use crate::error::{Error, Result};
use crate::gpu::abi::HeavyBallStep as StepUniform;
use crate::gpu::timer::Work;
use crate::gpu::{Ensemble, Gpu, Kernel};
use crate::model::{Potential, Temperature};
use crate::scenario::data::SampleTable;
use crate::scenario::keys;
use crate::scenario::resolve::optional;
use crate::scenario::walk::{Issues, Section, number};
use crate::shaders;
use serde::{Deserialize, Serialize};
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
        let shader = potential_shader(shaders::HEAVY_BALL, potential, None).map_err(|why| {
            Error::Device(format!("the heavy-ball shader did not compose: {why}"))
        })?;
        let params = gpu.storage_with("potential params", bytemuck::cast_slice(&shader.params));
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
            &shader.source,
            &[
                ("DIM", f64::from(ensemble.dim)),
                ("POTENTIAL", f64::from(shader.kind)),
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
        step0: u64,
        steps: u32,
        _stop: &dyn Fn() -> bool,
    ) -> Result<bool> {
        let uniform = StepUniform {
            steps,
            dt: self.dt,
            friction: self.friction,
            first,
            span,
            t0: (step0 as f64 * f64::from(self.dt)) as f32,
            _pad: [0; 2],
        };
        gpu.queue
            .write_buffer(&self.step, 0, bytemuck::bytes_of(&uniform));
        let particles = span.min(ensemble.chunks[chunk].count.saturating_sub(first));
        self.kernel
            .submit_once(gpu, &self.binds[chunk], particles, Work::Stepping);
        Ok(true)
    }

    fn take_nonfinite(&self, gpu: &Gpu) -> Result<u64> {
        self.nonfinite.take(gpu)
    }

    fn extra_state(&self) -> Option<&Ensemble> {
        Some(&self.velocity)
    }
}

/// `kind = "gradient_flow"`: gradient descent x += -grad U dt (T = 0); with `friction` the
/// heavy ball x'' + friction x' + grad U = 0 by semi-implicit Euler from rest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GradientFlowPlan {
    pub potential: Potential,
    pub dt: f64,
    pub steps: u64,
    pub t_end: f64,
    pub friction: Option<f64>,
}

const KEYS: &[&str] = &["kind", "potential", "dt", "t_end", "steps", "friction"];

impl ParseKind for GradientFlowPlan {
    fn parse(
        issues: &mut Issues,
        sec: Section<'_>,
        cx: &ParseContext<'_>,
    ) -> Option<(Self, Option<SampleTable>)> {
        sec.check_keys(KEYS, issues);
        let potential = keys::potential(issues, sec, cx.dim, cx.base_dir);
        let friction = optional(
            issues,
            sec,
            "friction",
            || Some(None),
            |i, k, v| {
                number(
                    i,
                    k,
                    v,
                    "a finite number >= 0 (heavy ball: x'' + friction x' + grad U = 0)",
                    |x| x >= 0.0,
                )
                .map(Some)
            },
        );
        let dt = keys::positive_dt(issues, sec);
        let (steps, t_end) = keys::duration(issues, sec, dt)?;
        let plan = GradientFlowPlan {
            potential: potential?,
            dt: dt?,
            steps,
            t_end,
            friction: friction?,
        };
        let base = match plan.friction {
            None => shaders::LANGEVIN,
            Some(_) => shaders::HEAVY_BALL,
        };
        if !check_potential_shader(issues, sec, base, &plan.potential, None) {
            return None;
        }
        Some((plan, None))
    }
}

impl Dynamics for GradientFlowPlan {
    fn steps(&self) -> u64 {
        self.steps
    }

    fn time_per_step(&self) -> f64 {
        self.dt
    }

    /// T = 0 with or without friction: descent ends in the minima (which the initial box
    /// and the wells cover), and the free energy is the mean of U, the ensemble's loss.
    fn potential(&self) -> Option<(&Potential, f64)> {
        Some((&self.potential, 0.0))
    }

    fn state_memory(&self, dim: u64) -> StateMemory {
        match self.friction {
            // The velocities, dim floats per particle.
            Some(_) => StateMemory {
                floats_per_particle: dim,
                data_rows: 0,
            },
            None => StateMemory::default(),
        }
    }

    fn references(&self) -> References<'_> {
        match self.friction {
            // Plain descent is Langevin at T = 0: its analytic reference is exp(-A t).
            None => References::Descent {
                potential: &self.potential,
            },
            Some(_) => References::None,
        }
    }

    fn stepper(&self, cx: &StepperContext<'_>) -> Result<Box<dyn Stepper>> {
        Ok(match self.friction {
            None => Box::new(LangevinGpu::new(
                cx.gpu,
                cx.ensemble,
                &self.potential,
                &Temperature::Constant(0.0),
                self.dt,
                cx.seed,
                cx.workgroup_size,
            )?),
            Some(friction) => Box::new(HeavyBallGpu::new(
                cx.gpu,
                cx.ensemble,
                &self.potential,
                self.dt,
                friction,
                cx.workgroup_size,
                cx.chunk_particles,
            )?),
        })
    }

    fn twin(&self, state: &mut TwinState, cx: &TwinContext<'_>) -> Result<()> {
        match self.friction {
            None => langevin_cpu(
                &mut state.positions,
                cx.dim,
                0,
                &self.potential,
                &Temperature::Constant(0.0),
                self.dt,
                cx.seed,
                cx.step0,
                cx.steps,
            ),
            Some(friction) => {
                if state.extra.len() != state.positions.len() {
                    // From rest.
                    state.extra = vec![0.0; state.positions.len()];
                }
                heavy_ball_cpu(
                    &mut state.positions,
                    &mut state.extra,
                    cx.dim,
                    &self.potential,
                    self.dt,
                    friction,
                    cx.step0,
                    cx.steps,
                );
            }
        }
        Ok(())
    }
}

/// CPU twin of shaders/heavy_ball.wgsl in f64: `steps` steps of positions and velocities
/// (row-major, `dim` per particle).
#[allow(clippy::too_many_arguments)]
pub fn heavy_ball_cpu(
    positions: &mut [f64],
    velocities: &mut [f64],
    dim: u32,
    potential: &Potential,
    dt: f64,
    friction: f64,
    step0: u64,
    steps: u64,
) {
    let d = dim as usize;
    for (x, v) in positions
        .chunks_exact_mut(d)
        .zip(velocities.chunks_exact_mut(d))
    {
        for k in step0..step0 + steps {
            let g = potential.gradient_at(x, k as f64 * dt);
            for c in 0..d {
                v[c] -= (friction * v[c] + g[c]) * dt;
                x[c] += v[c] * dt;
            }
        }
    }
}
