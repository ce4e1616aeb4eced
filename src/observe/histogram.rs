//! Histograms of one or two axes: the GPU observer (shaders/histogram.wgsl) and its CPU twin.

use crate::error::Result;
use crate::gpu::abi::{HIST_TALLIES, HistUniform};
use crate::gpu::timer::Work;
use crate::gpu::{Ensemble, Gpu, Kernel};
use crate::scenario::HistogramSpec;
use crate::shaders;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Counts in numpy `histogram2d` order plus explicit tallies of what fell outside.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistogramCounts {
    pub counts: Vec<u64>,
    /// Finite particles outside the range on at least one axis.
    pub outside: u64,
    /// Particles with a NaN or Inf coordinate (counted nowhere else).
    pub nonfinite: u64,
    /// Per histogram axis: finite particles below / above the range on that axis.
    pub below: Vec<u64>,
    pub above: Vec<u64>,
}

impl HistogramCounts {
    fn zeros(spec: &HistogramSpec) -> Self {
        HistogramCounts {
            counts: vec![0; spec.total_bins()],
            outside: 0,
            nonfinite: 0,
            below: vec![0; spec.axes.len()],
            above: vec![0; spec.axes.len()],
        }
    }

    pub fn in_range(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// Tallies after the bins: outside, non-finite, then (below, above) per axis.
const TALLIES: usize = HIST_TALLIES as usize;

/// How a histogram dispatch counts: particles per invocation and whether each workgroup
/// first counts into its own copy of the bins in workgroup memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binning {
    pub items: u32,
    /// Private bins in this many tiles of the grid (each workgroup bins its particles once
    /// per tile into a copy of the tile's bins in workgroup memory: [`Binning::tile_bins`],
    /// two 16-bit bins a word, then the tallies); None: every particle adds to the global
    /// counts.
    pub private_tiles: Option<u32>,
    /// Copies of the global counts (bins and tallies), which the host sums: workgroups
    /// running at the same time should add to different ones (`order`). 1 with private
    /// bins.
    pub copies: u32,
    /// Which copy workgroup g adds to.
    pub order: CopyOrder,
}

/// Which copy of the global counts workgroup g of a dispatch of G workgroups adds to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyOrder {
    /// g % copies: workgroups adjacent in index, which a GPU runs side by side, add to
    /// different copies.
    Interleaved,
    /// g / ceil(G / copies): contiguous blocks of workgroups share a copy. lavapipe's
    /// worker threads each take one contiguous block of a dispatch's workgroups, so each
    /// copy is added to by one core and its cache lines stay in that core's cache; with
    /// interleaved copies every core cycled through all of them and the lines travelled at
    /// nearly every add (docs/architecture.md, "Histogram copies").
    Blocks,
}

/// Bytes the copies of the global counts may take together ([`Binning::global`]).
const COPIES_BYTES: usize = 1 << 20;
/// At most this many copies: on lavapipe 8 took a 1e6-particle snapshot of the 128 x 128
/// L2 grid from 15 to 12.5 ms, and the t = 0 one, every particle in one bin, from 20-25 to
/// 13.6 ms; 16 measured the same as 8.
const MAX_COPIES: usize = 8;

/// Workgroups of a global-bins dispatch on a software adapter
/// ([`Binning::software_global`]): a multiple of the copies, enough for each core's block
/// to hold several. On lavapipe, 1e6 particles of the L2 grid binned in 4.9–5.0 ms with 64
/// workgroups (245 particles an invocation), 4.9–5.4 ms with 8, 5.0–5.1 ms with 512, and
/// 6.1–6.4 ms with one particle an invocation (15 625 workgroups of 64).
const SOFTWARE_GLOBAL_GROUPS: u64 = 64;

/// Environment variable that picks the binning (`global`; `private` where the copy fits;
/// `tiled`: private in up to [`MAX_TILES`] tiles of the grid) instead of the adapter's
/// default, for measuring one against the other (benches/compare_observe.sh).
pub const BINNING_ENV: &str = "FOKKER_HISTOGRAM";

/// At most this many tiles for `FOKKER_HISTOGRAM=tiled`: each is one more pass over the
/// particles.
pub const MAX_TILES: u32 = 8;

impl Binning {
    /// Global atomics on one copy of the counts.
    pub const GLOBAL: Binning = Binning {
        items: 1,
        private_tiles: None,
        copies: 1,
        order: CopyOrder::Interleaved,
    };

    /// Global atomics, on as many copies of the counts as fit in [`COPIES_BYTES`] (at most
    /// [`MAX_COPIES`]). A bin that many particles reach (every particle starts in one bin
    /// when they start from a point) is a single word every core adds to: its cache line
    /// travels between them at each add. With copies, workgroups running at the same time
    /// mostly add to different ones.
    pub fn global(total_bins: usize) -> Binning {
        let copies = (COPIES_BYTES / ((total_bins + TALLIES) * 4)).clamp(1, MAX_COPIES);
        Binning {
            copies: copies as u32,
            ..Binning::GLOBAL
        }
    }

    /// Workgroups a dispatch should at least have to fill the device: a software adapter
    /// runs one per core at a time, a GPU needs thousands in flight.
    fn min_groups(software: bool) -> u64 {
        if software { 16 } else { 2048 }
    }

    /// Global bins on a software adapter: copies in blocks, and about
    /// [`SOFTWARE_GLOBAL_GROUPS`] workgroups, each invocation binning several particles.
    pub fn software_global(total_bins: usize, particles: u64, workgroup_size: u32) -> Binning {
        let wanted = particles.div_ceil(u64::from(workgroup_size) * SOFTWARE_GLOBAL_GROUPS);
        Binning {
            items: wanted.clamp(1, u64::from(u32::MAX)) as u32,
            order: CopyOrder::Blocks,
            ..Binning::global(total_bins)
        }
    }

    /// Private bins for `total_bins` bins where the copy fits in `storage` bytes of
    /// workgroup memory, else global. A private workgroup bins at most 2^16 - 1 particles
    /// (its 16-bit bins cannot wrap), and as many as the device's occupancy allows, so the
    /// copy's clearing and flushing are shared by many particles.
    pub fn private_if_fits(
        total_bins: usize,
        particles: u64,
        workgroup_size: u32,
        storage: u32,
        software: bool,
    ) -> Binning {
        Self::private_in_tiles(total_bins, particles, workgroup_size, storage, software, 1)
    }

    /// Private bins in as few tiles of the grid as fit `storage` bytes of workgroup memory,
    /// at most `max_tiles` (each tile is one more pass over the workgroup's particles);
    /// global where even that does not fit.
    pub fn private_in_tiles(
        total_bins: usize,
        particles: u64,
        workgroup_size: u32,
        storage: u32,
        software: bool,
        max_tiles: u32,
    ) -> Binning {
        let Some(tiles) = (1..=max_tiles.max(1))
            .find(|&t| Self::private_words(total_bins, t) * 4 <= storage as usize)
        else {
            return Binning::global(total_bins);
        };
        let cap = (u32::from(u16::MAX) / workgroup_size).max(1);
        let wanted = particles.div_ceil(u64::from(workgroup_size) * Self::min_groups(software));
        Binning {
            items: wanted.clamp(1, u64::from(cap)) as u32,
            private_tiles: Some(tiles),
            ..Binning::GLOBAL
        }
    }

    /// Bins of one tile of a grid of `total_bins` cut into `tiles` (even where there are
    /// several, so that tiles start on a word of the copy; the last tile may be shorter).
    pub fn tile_bins(total_bins: usize, tiles: u32) -> usize {
        match tiles {
            0 | 1 => total_bins,
            t => total_bins.div_ceil(t as usize).next_multiple_of(2),
        }
    }

    /// Words of a workgroup copy of one tile: two 16-bit bins a word, then the tallies.
    fn private_words(total_bins: usize, tiles: u32) -> usize {
        Self::tile_bins(total_bins, tiles).div_ceil(2) + TALLIES
    }

    /// The binning for `gpu`. On a GPU, private where it fits (workgroup-memory atomics
    /// spare the contended global bins; the standard privatisation, not measured here for
    /// want of a GPU), else global on interleaved copies; on a software adapter global
    /// atomics on copies in blocks, which measured faster there
    /// (benches/compare_observe.sh). `FOKKER_HISTOGRAM=global|private` overrides the
    /// first choice.
    fn for_gpu(gpu: &Gpu, total_bins: usize, particles: u64, workgroup_size: u32) -> Binning {
        let software = gpu.adapter.is_software();
        let storage = gpu.limits.max_compute_workgroup_storage_size;
        let private = match std::env::var(BINNING_ENV).as_deref() {
            Ok("global") => false,
            Ok("private") => true,
            Ok("tiled") => {
                return Binning::private_in_tiles(
                    total_bins,
                    particles,
                    workgroup_size,
                    storage,
                    software,
                    MAX_TILES,
                );
            }
            _ => !software,
        };
        if !private {
            return if software {
                Binning::software_global(total_bins, particles, workgroup_size)
            } else {
                Binning::global(total_bins)
            };
        }
        Binning::private_if_fits(total_bins, particles, workgroup_size, storage, software)
    }
}

pub struct HistogramGpu {
    kernel: Arc<Kernel>,
    binning: Binning,
    counts: wgpu::Buffer,
    binds: Vec<wgpu::BindGroup>,
    spec: HistogramSpec,
    _uniform: wgpu::Buffer,
}

impl HistogramGpu {
    /// `velocity`: the velocity ensemble (chunked like `ensemble`) that axes dim ..
    /// 2 dim - 1 read, for kinds that have one.
    pub fn new(
        gpu: &Gpu,
        ensemble: &Ensemble,
        velocity: Option<&Ensemble>,
        spec: &HistogramSpec,
        workgroup_size: u32,
    ) -> HistogramGpu {
        let largest = ensemble.chunks.iter().map(|c| u64::from(c.count)).max();
        let binning =
            Binning::for_gpu(gpu, spec.total_bins(), largest.unwrap_or(0), workgroup_size);
        Self::with_binning(gpu, ensemble, velocity, spec, workgroup_size, binning)
    }

    /// [`HistogramGpu::new`] with the binning given (tests hold both against the twin). A
    /// private `binning` must fit the device's workgroup memory and have items *
    /// workgroup_size < 2^16.
    pub fn with_binning(
        gpu: &Gpu,
        ensemble: &Ensemble,
        velocity: Option<&Ensemble>,
        spec: &HistogramSpec,
        workgroup_size: u32,
        binning: Binning,
    ) -> HistogramGpu {
        let n = spec.axes.len();
        let total = spec.total_bins();
        // The passes that cover the grid (rounding a tile up to even bins can leave fewer
        // than asked for).
        let tile_bins = Binning::tile_bins(total, binning.private_tiles.unwrap_or(1));
        let tiles = total.div_ceil(tile_bins.max(1)).max(1) as u32;
        let words = binning
            .private_tiles
            .map_or(1, |t| Binning::private_words(total, t));
        let source = shaders::HISTOGRAM.replace(
            "const PRIVATE_WORDS: u32 = 1u;",
            &format!("const PRIVATE_WORDS: u32 = {words}u;"),
        );
        let kernel = Kernel::new(
            gpu,
            "histogram",
            &source,
            &[
                ("DIM", f64::from(ensemble.dim)),
                ("TAG_STRIDE", f64::from(ensemble.tag_stride)),
                (
                    "PRIVATE",
                    f64::from(u8::from(binning.private_tiles.is_some())),
                ),
                ("TILES", f64::from(tiles)),
                ("TILE_BINS", tile_bins as f64),
                ("NAXES", n as f64),
                ("AXIS0", f64::from(spec.axes[0])),
                ("AXIS1", f64::from(spec.axes.get(1).copied().unwrap_or(0))),
                ("COPIES", f64::from(binning.copies)),
                (
                    "COPY_BLOCKS",
                    f64::from(u8::from(binning.order == CopyOrder::Blocks)),
                ),
            ],
            workgroup_size,
        );
        let pick = |v: &dyn Fn(usize) -> f64| [v(0) as f32, if n > 1 { v(1) as f32 } else { 0.0 }];
        let uniform = HistUniform {
            axes: [spec.axes[0], spec.axes.get(1).copied().unwrap_or(0)],
            bins: [spec.bins[0], spec.bins.get(1).copied().unwrap_or(1)],
            lo: pick(&|a| spec.range[a][0]),
            scale: pick(&|a| f64::from(spec.bins[a]) / (spec.range[a][1] - spec.range[a][0])),
            hi: pick(&|a| spec.range[a][1]),
            naxes: n as u32,
            items: binning.items,
        };
        let uniform = gpu.uniform_with("histogram", bytemuck::bytes_of(&uniform));
        let counts = gpu.storage_buffer(
            "histogram counts",
            ((spec.total_bins() + TALLIES) * 4 * binning.copies as usize) as u64,
            wgpu::BufferUsages::empty(),
        );
        let binds = ensemble
            .chunks
            .iter()
            .enumerate()
            .map(|(k, c)| {
                // Without velocities no axis reads them: the positions stand in the binding.
                let v = velocity.map_or(&c.state, |v| &v.chunks[k].state);
                kernel.bind(gpu, &[&c.state, &c.uniform, &uniform, &counts, v, &c.tags])
            })
            .collect();
        HistogramGpu {
            kernel,
            binning,
            counts,
            binds,
            spec: spec.clone(),
            _uniform: uniform,
        }
    }

    /// Bins every particle. The u32 bins are drained into u64 after each batch of chunks
    /// holding fewer than 2^32 particles, so no bin can wrap.
    pub fn observe(&self, gpu: &Gpu, ensemble: &Ensemble) -> Result<HistogramCounts> {
        let mut total = HistogramCounts::zeros(&self.spec);
        let bins = self.spec.total_bins();
        let mut start = 0;
        while start < ensemble.chunks.len() {
            let mut end = start;
            let mut batch: u64 = 0;
            while end < ensemble.chunks.len()
                && batch + u64::from(ensemble.chunks[end].count) <= u64::from(u32::MAX)
            {
                batch += u64::from(ensemble.chunks[end].count);
                end += 1;
            }
            let mut encoder = gpu.device.create_command_encoder(&Default::default());
            encoder.clear_buffer(&self.counts, 0, None);
            {
                let mut pass = encoder.begin_compute_pass(&Default::default());
                for i in start..end {
                    let c = &ensemble.chunks[i];
                    self.kernel.dispatch(
                        &mut pass,
                        &self.binds[i],
                        c.count
                            .div_ceil(self.kernel.workgroup_size * self.binning.items),
                        gpu.limits.max_compute_workgroups_per_dimension,
                    );
                }
            }
            gpu.submit(encoder, Work::Observing);
            let copies = self.binning.copies as usize;
            let bytes = gpu.read_bytes(&self.counts, 0, ((bins + TALLIES) * 4 * copies) as u64)?;
            // The copies' sum: each copy holds part of a batch of fewer than 2^32 particles,
            // so no word of the sum wraps either.
            let mut summed = vec![0u32; bins + TALLIES];
            for copy in bytemuck::cast_slice::<u8, u32>(&bytes).chunks_exact(bins + TALLIES) {
                for (s, w) in summed.iter_mut().zip(copy) {
                    *s += *w;
                }
            }
            let words: &[u32] = &summed;
            for (t, w) in total.counts.iter_mut().zip(words) {
                *t += u64::from(*w);
            }
            total.outside += u64::from(words[bins]);
            total.nonfinite += u64::from(words[bins + 1]);
            for a in 0..self.spec.axes.len() {
                total.below[a] += u64::from(words[bins + 2 + 2 * a]);
                total.above[a] += u64::from(words[bins + 3 + 2 * a]);
            }
            start = end;
        }
        Ok(total)
    }
}

/// CPU twin of shaders/histogram.wgsl: bins row-major `positions` (dim per row) in f64.
pub fn histogram_cpu(positions: &[f64], dim: u32, spec: &HistogramSpec) -> HistogramCounts {
    phase_histogram_cpu(positions, None, dim, spec)
}

/// CPU twin of shaders/histogram.wgsl with velocities: axes dim .. 2 dim - 1 read the
/// row-major `velocities` (same layout as the positions).
pub fn phase_histogram_cpu(
    positions: &[f64],
    velocities: Option<&[f64]>,
    dim: u32,
    spec: &HistogramSpec,
) -> HistogramCounts {
    let mut h = HistogramCounts::zeros(spec);
    let d = dim as usize;
    for (i, x) in positions.chunks_exact(d).enumerate() {
        let value = |axis: u32| {
            let axis = axis as usize;
            if axis < d {
                x[axis]
            } else {
                velocities.map_or(f64::NAN, |v| v[i * d + axis - d])
            }
        };
        if x.iter().any(|v| !v.is_finite()) || spec.axes.iter().any(|&a| !value(a).is_finite()) {
            h.nonfinite += 1;
            continue;
        }
        let mut flat = 0usize;
        let mut inside = true;
        for (a, &axis) in spec.axes.iter().enumerate() {
            let v = value(axis);
            let [lo, hi] = spec.range[a];
            let bins = spec.bins[a] as usize;
            let mut b = 0;
            if v < lo {
                h.below[a] += 1;
                inside = false;
            } else if v > hi {
                h.above[a] += 1;
                inside = false;
            } else {
                b = (((v - lo) * bins as f64 / (hi - lo)) as usize).min(bins - 1);
            }
            flat = flat * bins + b;
        }
        if inside {
            h.counts[flat] += 1;
        } else {
            h.outside += 1;
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::{Binning, CopyOrder, TALLIES};

    #[test]
    fn private_bins_only_where_the_copy_fits() {
        // 128 x 128 bins: 8192 words of pairs + the tallies = 32792 bytes > 32 KiB.
        assert_eq!(
            Binning::private_if_fits(128 * 128, 1 << 20, 64, 32768, true),
            Binning::global(128 * 128)
        );
        let b = Binning::private_if_fits(127 * 128, 1 << 20, 64, 32768, true);
        assert_eq!(b.private_tiles, Some(1));
        assert_eq!(Binning::private_words(127 * 128, 1), 127 * 64 + TALLIES);
    }

    #[test]
    fn tiles_are_the_fewest_that_fit_and_at_most_the_cap() {
        // 128 x 128: one copy is 24 bytes over 32 KiB, two tiles of 8192 bins fit.
        let b = Binning::private_in_tiles(128 * 128, 1 << 20, 64, 32768, true, 8);
        assert_eq!(b.private_tiles, Some(2));
        assert_eq!(Binning::tile_bins(128 * 128, 2), 8192);
        assert!(Binning::private_words(128 * 128, 2) * 4 <= 32768);
        // 256 x 256 needs five tiles (4 would be 16384 bins, 8198 words): allowed by 8, not
        // by 4.
        let b = Binning::private_in_tiles(256 * 256, 1 << 20, 64, 32768, true, 8);
        assert_eq!(b.private_tiles, Some(5));
        assert_eq!(
            Binning::private_in_tiles(256 * 256, 1 << 20, 64, 32768, true, 4),
            Binning::global(256 * 256)
        );
        // Odd tiles round up to even bins: 16 bins in 3 tiles of 6.
        assert_eq!(Binning::tile_bins(16, 3), 6);
        assert_eq!(Binning::tile_bins(15, 1), 15);
    }

    #[test]
    fn global_copies_fit_their_budget() {
        // 128 x 128 bins + tallies: 65.6 KB a copy, 15 would fit in 1 MiB: the cap, 8.
        assert_eq!(Binning::global(128 * 128).copies, 8);
        // 256 x 256: 262 KB a copy, 3 fit.
        assert_eq!(Binning::global(256 * 256).copies, 3);
        // 1024 x 1024: 4 MiB, one copy.
        assert_eq!(Binning::global(1024 * 1024).copies, 1);
        for bins in [1, 100, 128 * 128, 300 * 300, 1 << 22] {
            let b = Binning::global(bins);
            assert!(b.copies >= 1 && b.private_tiles.is_none());
            assert!(
                b.copies == 1 || b.copies as usize * (bins + TALLIES) * 4 <= super::COPIES_BYTES
            );
        }
    }

    #[test]
    fn software_global_bins_take_about_sixty_four_workgroups_in_blocks() {
        for wg in [1, 64, 256] {
            for particles in [1u64, 1000, 1_000_000, (1 << 24) + 1, u64::from(u32::MAX)] {
                let b = Binning::software_global(128 * 128, particles, wg);
                assert_eq!(
                    (b.order, b.copies, b.private_tiles),
                    (CopyOrder::Blocks, 8, None)
                );
                assert!(b.items >= 1);
                let groups = particles.div_ceil(u64::from(wg) * u64::from(b.items));
                assert!(groups <= super::SOFTWARE_GLOBAL_GROUPS, "{wg} {particles}");
                // Never fewer than 64 once there are particles enough for them.
                if particles >= u64::from(wg) * super::SOFTWARE_GLOBAL_GROUPS {
                    assert!(
                        groups > super::SOFTWARE_GLOBAL_GROUPS / 2,
                        "{wg} {particles}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_private_workgroup_bins_fewer_than_two_to_the_sixteen() {
        for wg in [1, 3, 64, 256, 1024] {
            for particles in [1, 1000, 1 << 24, 1 << 32] {
                for software in [true, false] {
                    let b = Binning::private_if_fits(100, particles, wg, 16384, software);
                    assert!(b.items >= 1);
                    assert!(
                        u64::from(b.items) * u64::from(wg) < 1 << 16,
                        "{wg} {particles}"
                    );
                }
            }
        }
        // A GPU keeps at least 2048 workgroups where the particles allow it.
        let b = Binning::private_if_fits(100, 1 << 24, 64, 16384, false);
        assert!((1u64 << 24).div_ceil(u64::from(b.items) * 64) >= 2048);
    }
}
