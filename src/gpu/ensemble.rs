//! Particle state on the GPU, split into chunks below the storage-binding limit so that
//! memory, not a binding, bounds the particle count.

pub use super::abi::ChunkUniform;
use super::context::Gpu;
use crate::error::{Error, Result};

/// More state buffers than this is a plan no device can hold (checked before allocation
/// by the run).
pub const MAX_CHUNKS: u64 = 65_536;

/// Chunk sizes are multiples of this, so chunk boundaries never split a workgroup.
const CHUNK_ALIGN: u64 = 256;

/// A contiguous range of particles in one storage buffer.
pub struct StateChunk {
    /// Global index of the first particle.
    pub base: u64,
    pub count: u32,
    pub state: wgpu::Buffer,
    pub uniform: wgpu::Buffer,
    /// Per-particle tags of a run with walls or first-passage targets (`tag_stride` u32
    /// words each, layout in src/gpu/abi.rs, `TAG_*`); one unused word otherwise, so kernels
    /// that may read tags always have a buffer to bind.
    pub tags: wgpu::Buffer,
}

/// Particles with global indices `first .. first + count`, `dim` f32 each, row-major.
pub struct Ensemble {
    pub dim: u32,
    pub first: u64,
    pub count: u64,
    pub chunks: Vec<StateChunk>,
    /// u32 words per particle in each chunk's `tags`; 0 when the run has none.
    pub tag_stride: u32,
}

/// Largest chunk (in particles) the adapter allows for `dim` coordinates, optionally
/// capped by `forced` (tests use a tiny cap to exercise chunking cheaply).
pub fn chunk_capacity(limits: &wgpu::Limits, dim: u32, forced: Option<u64>) -> u64 {
    let bytes = limits
        .max_storage_buffer_binding_size
        .min(limits.max_buffer_size);
    let by_limit = (bytes / (u64::from(dim) * 4) / CHUNK_ALIGN * CHUNK_ALIGN)
        .min(u64::from(u32::MAX) / CHUNK_ALIGN * CHUNK_ALIGN);
    forced.map_or(by_limit, |f| f.clamp(1, by_limit.max(1)))
}

/// (base, count) of each chunk covering `first .. first + count`.
pub fn split(first: u64, count: u64, capacity: u64) -> Vec<(u64, u32)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < count {
        let n = capacity.min(count - at);
        out.push((first + at, n as u32));
        at += n;
    }
    out
}

impl Ensemble {
    pub fn new(
        gpu: &Gpu,
        dim: u32,
        first: u64,
        count: u64,
        forced_chunk: Option<u64>,
    ) -> Result<Ensemble> {
        Self::with_words(gpu, dim, dim, first, count, forced_chunk)
    }

    /// [`Ensemble::new`] with chunks small enough that a per-particle array of `words`
    /// 32-bit words (the tags of a run with walls or targets, when wider than the
    /// positions) also fits one binding.
    pub fn with_words(
        gpu: &Gpu,
        dim: u32,
        words: u32,
        first: u64,
        count: u64,
        forced_chunk: Option<u64>,
    ) -> Result<Ensemble> {
        let capacity = chunk_capacity(&gpu.limits, dim.max(words), forced_chunk);
        if capacity == 0 {
            return Err(Error::Device(format!(
                "adapter {} cannot bind even one particle of dimension {dim}",
                gpu.adapter.name
            )));
        }
        let mut chunks = Vec::new();
        for (base, n) in split(first, count, capacity) {
            let uniform = ChunkUniform {
                base: [base as u32, (base >> 32) as u32],
                count: n,
                _pad: 0,
            };
            chunks.push(StateChunk {
                base,
                count: n,
                state: gpu.storage_buffer(
                    "state",
                    u64::from(n) * u64::from(dim) * 4,
                    wgpu::BufferUsages::empty(),
                ),
                uniform: gpu.uniform_with("chunk", bytemuck::bytes_of(&uniform)),
                tags: gpu.storage_buffer("no tags", 4, wgpu::BufferUsages::empty()),
            });
            // Stop at the first allocation the device refuses.
            gpu.check()?;
        }
        Ok(Ensemble {
            dim,
            first,
            count,
            chunks,
            tag_stride: 0,
        })
    }

    /// Gives every particle `stride` u32 tag words, each starting as `initial` (the same row
    /// for every particle), before any kernel binds them.
    pub fn attach_tags(&mut self, gpu: &Gpu, initial: &[u32]) -> Result<()> {
        let stride = initial.len();
        for c in &mut self.chunks {
            let rows: Vec<u32> = initial
                .iter()
                .copied()
                .cycle()
                .take(c.count as usize * stride)
                .collect();
            c.tags = gpu.storage_with("tags", bytemuck::cast_slice(&rows));
            gpu.check()?;
        }
        self.tag_stride = stride as u32;
        Ok(())
    }

    /// All tags, row-major (count x tag_stride); empty without tags.
    pub fn read_tags(&self, gpu: &Gpu) -> Result<Vec<u32>> {
        let s = u64::from(self.tag_stride);
        let mut out = Vec::with_capacity((self.count * s) as usize);
        if s == 0 {
            return Ok(out);
        }
        for c in &self.chunks {
            let bytes = gpu.read_bytes(&c.tags, 0, u64::from(c.count) * s * 4)?;
            // Copied word by word: a byte buffer need not be aligned for u32.
            out.extend(bytemuck::pod_collect_to_vec::<u8, u32>(&bytes));
        }
        Ok(out)
    }

    /// Overwrites all tags (row-major, count x tag_stride), as a checkpoint holds them.
    pub fn write_tags(&self, gpu: &Gpu, tags: &[u32]) {
        let s = self.tag_stride as usize;
        let mut at = 0;
        for c in &self.chunks {
            let n = c.count as usize * s;
            gpu.queue
                .write_buffer(&c.tags, 0, bytemuck::cast_slice(&tags[at..at + n]));
            at += n;
        }
    }

    /// All positions, row-major (count x dim).
    pub fn read_positions(&self, gpu: &Gpu) -> Result<Vec<f32>> {
        let mut out = Vec::with_capacity((self.count * u64::from(self.dim)) as usize);
        for c in &self.chunks {
            let bytes =
                gpu.read_bytes(&c.state, 0, u64::from(c.count) * u64::from(self.dim) * 4)?;
            out.extend_from_slice(bytemuck::cast_slice(&bytes));
        }
        Ok(out)
    }

    /// Overwrites all positions (row-major, count x dim).
    pub fn write_positions(&self, gpu: &Gpu, positions: &[f32]) {
        let d = self.dim as usize;
        let mut at = 0;
        for c in &self.chunks {
            let n = c.count as usize * d;
            gpu.queue
                .write_buffer(&c.state, 0, bytemuck::cast_slice(&positions[at..at + n]));
            at += n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_covers_the_range_in_order() {
        let parts = split(10, 1000, 256);
        assert_eq!(parts.len(), 4);
        assert_eq!(parts[0], (10, 256));
        assert_eq!(parts[3], (10 + 768, 232));
        assert!(split(0, 0, 256).is_empty());
    }

    #[test]
    fn capacity_respects_binding_limit() {
        let limits = wgpu::Limits {
            max_storage_buffer_binding_size: 128 << 20,
            ..Default::default()
        };
        let cap = chunk_capacity(&limits, 2, None);
        assert!(cap * 8 <= 128 << 20);
        assert_eq!(cap % 256, 0);
        assert_eq!(chunk_capacity(&limits, 2, Some(100)), 100);
    }
}
