//! Dynamics: one file per kind, each with its GPU pipeline and its CPU twin, all driven by
//! [`crate::simulation::Simulation`] through the [`Stepper`] trait.

pub mod diffusion;
pub mod empirical;
pub mod gradient_flow;
pub mod image_target;
pub mod init;
pub mod kernel_flows;
pub mod kernel_sum;
pub mod langevin;
pub mod potential_params;

use crate::error::Result;
use crate::gpu::{Ensemble, Gpu};
use crate::scenario::data::SampleTable;
use crate::scenario::{DynamicsPlan, Plan};

/// A dynamics' GPU pipeline bound to an ensemble. The simulation advances the particles in
/// blocks of steps, each block in slices of particles submitted one after the other, so
/// particles must be independent within a block (dynamics whose steps couple the ensemble
/// say so with [`Stepper::max_fused`] = 1 and [`Stepper::min_slice`] = u32::MAX).
pub trait Stepper {
    /// Most steps one block may hold (the block is split further into dispatches as the
    /// dynamics needs).
    fn max_fused(&self) -> u32 {
        u32::MAX
    }

    /// Submissions cover a multiple of this many particles (or the rest of a chunk).
    fn min_slice(&self) -> u32 {
        16_384
    }

    /// Submits steps `step0 .. step0 + steps` for particles `first .. first + span` of chunk
    /// `chunk`; need not wait for the last submission. A stepper whose steps take many
    /// submissions (kernel sums over the whole ensemble) asks `stop` between them and, when
    /// it says yes, returns `Ok(false)` with the state as it was before the step: the step is
    /// then done again on resume. Otherwise `Ok(true)`.
    #[allow(clippy::too_many_arguments)]
    fn submit_slice(
        &mut self,
        gpu: &Gpu,
        ensemble: &Ensemble,
        chunk: usize,
        first: u32,
        span: u32,
        step0: u64,
        steps: u32,
        stop: &dyn Fn() -> bool,
    ) -> Result<bool>;

    /// Reads and clears the count of particles found NaN or Inf since the last call.
    fn take_nonfinite(&self, gpu: &Gpu) -> Result<u64>;

    /// Per-particle state besides the positions (heavy-ball velocities): checkpointed and
    /// restored with them.
    fn extra_state(&self) -> Option<&Ensemble> {
        None
    }
}

/// Builds the stepper of `plan.dynamics` for `ensemble`. `data` is the dynamics' data set
/// (an empirical score), loaded with the plan.
pub fn stepper(
    gpu: &Gpu,
    ensemble: &Ensemble,
    plan: &Plan,
    data: Option<&SampleTable>,
    workgroup_size: u32,
    chunk_particles: Option<u64>,
) -> Result<Box<dyn Stepper>> {
    Ok(match &plan.dynamics {
        DynamicsPlan::Langevin {
            potential,
            temperature,
            dt,
            ..
        } => Box::new(langevin::LangevinGpu::new(
            gpu,
            ensemble,
            potential,
            *temperature,
            *dt,
            plan.seed,
            workgroup_size,
        )),
        DynamicsPlan::GradientFlow {
            potential,
            dt,
            friction: None,
            ..
        } => Box::new(langevin::LangevinGpu::new(
            gpu,
            ensemble,
            potential,
            0.0,
            *dt,
            plan.seed,
            workgroup_size,
        )),
        DynamicsPlan::GradientFlow {
            potential,
            dt,
            friction: Some(friction),
            ..
        } => Box::new(gradient_flow::HeavyBallGpu::new(
            gpu,
            ensemble,
            potential,
            *dt,
            *friction,
            workgroup_size,
            chunk_particles,
        )?),
        DynamicsPlan::Forward { .. }
        | DynamicsPlan::ReverseSde { .. }
        | DynamicsPlan::ProbabilityFlow { .. } => Box::new(diffusion::DiffusionGpu::new(
            gpu,
            ensemble,
            &plan.dynamics,
            data,
            plan.seed,
            workgroup_size,
        )?),
        DynamicsPlan::SdFlow { .. }
        | DynamicsPlan::MmdFlow { .. }
        | DynamicsPlan::Svgd { .. }
        | DynamicsPlan::Interaction { .. } => {
            let targets = match plan.dynamics.kernel_target() {
                Some(target) => Some(kernel_flows::target_samples(target, data, plan.seed)?),
                None => None,
            };
            Box::new(kernel_flows::KernelFlowGpu::new(
                gpu,
                ensemble,
                &plan.dynamics,
                targets.as_ref(),
                plan.seed,
                workgroup_size,
            )?)
        }
    })
}

/// The 4-byte NaN/Inf particle counter the kernels bump by bit test (`x != x` would be
/// compiled away).
pub struct NonfiniteCounter {
    pub buffer: wgpu::Buffer,
}

impl NonfiniteCounter {
    pub fn new(gpu: &Gpu) -> Self {
        NonfiniteCounter {
            buffer: gpu.storage_buffer("nonfinite count", 4, wgpu::BufferUsages::empty()),
        }
    }

    pub fn take(&self, gpu: &Gpu) -> Result<u64> {
        let bytes = gpu.read_bytes(&self.buffer, 0, 4)?;
        let count = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        if count > 0 {
            gpu.queue.write_buffer(&self.buffer, 0, &[0; 4]);
        }
        Ok(u64::from(count))
    }
}
