//! Survival and absorbed counts of a snapshot, reduced on the GPU from the per-particle tags
//! (shaders/passage_counts.wgsl): each chunk reads back 1 + targets words (absorbed, then the
//! particles that have not reached each target) instead of its whole tag array. The CPU twin
//! is [`PassageCounts::of`] over the tags.

use crate::error::Result;
use crate::gpu::timer::Work;
use crate::gpu::{Ensemble, Gpu, Kernel};
use crate::observe::first_passage::PassageCounts;
use crate::shaders;
use std::sync::Arc;

/// Particles each invocation counts before its atomic adds.
pub const ITEMS: u32 = 64;

/// The counting kernel bound to an ensemble's chunks (runs with walls, targets or basins).
pub struct PassageCountsGpu {
    kernel: Arc<Kernel>,
    /// Per chunk: its counts (1 + targets u32 words) and bind group.
    chunks: Vec<(wgpu::Buffer, wgpu::BindGroup, u32)>,
    targets: usize,
}

impl PassageCountsGpu {
    /// None for an ensemble without tags.
    pub fn new(
        gpu: &Gpu,
        ensemble: &Ensemble,
        targets: usize,
        workgroup_size: u32,
    ) -> Option<PassageCountsGpu> {
        if ensemble.tag_stride == 0 {
            return None;
        }
        let kernel = Kernel::new(
            gpu,
            "passage counts",
            shaders::PASSAGE_COUNTS,
            &[
                ("DIM", f64::from(ensemble.dim)),
                ("ITEMS", f64::from(ITEMS)),
                ("TAG_STRIDE", f64::from(ensemble.tag_stride)),
                ("TARGETS", targets as f64),
            ],
            workgroup_size,
        );
        let chunks = ensemble
            .chunks
            .iter()
            .map(|c| {
                let counts = gpu.storage_buffer(
                    "passage counts",
                    4 * (1 + targets as u64),
                    wgpu::BufferUsages::empty(),
                );
                let bind = kernel.bind(gpu, &[&c.tags, &c.uniform, &counts]);
                (counts, bind, c.count)
            })
            .collect();
        Some(PassageCountsGpu {
            kernel,
            chunks,
            targets,
        })
    }

    /// The counts over the ensemble's particles.
    pub fn observe(&self, gpu: &Gpu, ensemble: &Ensemble) -> Result<PassageCounts> {
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        for (counts, _, _) in &self.chunks {
            encoder.clear_buffer(counts, 0, None);
        }
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            for (_, bind, count) in &self.chunks {
                let invocations = count.div_ceil(ITEMS);
                self.kernel.dispatch(
                    &mut pass,
                    bind,
                    invocations.div_ceil(self.kernel.workgroup_size),
                    gpu.limits.max_compute_workgroups_per_dimension,
                );
            }
        }
        gpu.submit(encoder, Work::Observing);
        let mut out = PassageCounts {
            particles: ensemble.count,
            absorbed: 0,
            surviving: vec![0; self.targets],
        };
        for (counts, _, _) in &self.chunks {
            let bytes = gpu.read_bytes(counts, 0, 4 * (1 + self.targets as u64))?;
            let words: Vec<u32> = bytemuck::pod_collect_to_vec(&bytes);
            out.absorbed += u64::from(words[0]);
            for (s, w) in out.surviving.iter_mut().zip(&words[1..]) {
                *s += u64::from(*w);
            }
        }
        Ok(out)
    }
}
