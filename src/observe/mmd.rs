//! MMD^2 between the particles and a kernel flow's target samples (docs/architecture.md, "Kernel
//! sums"): the biased V-statistic
//!
//! ```text
//! MMD^2 = (1/N^2) sum_ii' k(x_i, x_i') + (1/M^2) sum_jj' k(y_j, y_j') - (2/(N M)) sum_ij k(x_i, y_j)
//! ```
//!
//! with the Gaussian kernel k(a, b) = exp(-|a - b|^2 / (2 h^2)) and h the median pairwise
//! distance of the target samples, fixed for the run. The row sums sum_j k(q_i, y_j) are the
//! `out_log` of the shared kernel sum (so the GPU work is two O(N^2 + N M) passes per
//! snapshot); the host adds exp(out_log) in f64. CPU twin: [`mmd2_cpu`].

use crate::dynamics::kernel_sum::{KernelSum, KernelSumArgs};
use crate::error::{Error, Result};
use crate::gpu::timer::Work;
use crate::gpu::{Ensemble, Gpu};
use crate::scenario::data::SampleTable;

/// Target rows the median pairwise distance is taken over (evenly spaced through the table),
/// so the bandwidth costs O(1) however many targets there are.
pub const MEDIAN_ROWS: usize = 1024;

/// Median of the pairwise distances between target rows (a deterministic, evenly spaced
/// subsample of at most [`MEDIAN_ROWS`] rows), in f64. Falls back to 1 when all rows
/// coincide, so the kernel is always defined.
pub fn median_bandwidth(targets: &SampleTable) -> f64 {
    let n = targets.rows.min(MEDIAN_ROWS);
    let rows: Vec<&[f32]> = (0..n)
        .map(|k| targets.row(k * targets.rows / n.max(1)))
        .collect();
    let mut distances = Vec::with_capacity(n * n.saturating_sub(1) / 2);
    for (a, ra) in rows.iter().enumerate() {
        for rb in &rows[a + 1..] {
            let d2: f64 = ra
                .iter()
                .zip(rb.iter())
                .map(|(&p, &q)| (f64::from(p) - f64::from(q)).powi(2))
                .sum();
            distances.push(d2.sqrt());
        }
    }
    if distances.is_empty() {
        return 1.0;
    }
    let mid = distances.len() / 2;
    let (_, median, _) = distances.select_nth_unstable_by(mid, f64::total_cmp);
    if *median > 0.0 && median.is_finite() {
        *median
    } else {
        1.0
    }
}

pub struct MmdGpu {
    kernel: KernelSum,
    targets: wgpu::Buffer,
    target_rows: u32,
    bandwidth: f64,
    /// (1/M^2) sum_jj' k(y_j, y_j'), fixed.
    target_term: f64,
    means: wgpu::Buffer,
    logs: wgpu::Buffer,
}

impl MmdGpu {
    /// Needs the ensemble in one chunk (as the coupled dynamics that use it do) and target
    /// rows of its dimension (the scenario checks both).
    pub fn new(gpu: &Gpu, ensemble: &Ensemble, targets: &SampleTable) -> Result<Self> {
        let dim = ensemble.dim;
        debug_assert!(targets.dim == dim as usize && targets.rows > 0);
        if ensemble.chunks.len() != 1 {
            return Err(Error::Device(format!(
                "the MMD diagnostic compares the whole ensemble with the target: {} particles \
                 of dimension {dim} must fit one storage binding of {}",
                ensemble.count, gpu.adapter.name
            )));
        }
        let kernel = KernelSum::new(gpu, dim, 64)?;
        let rows = targets.rows as u32;
        let most = ensemble.chunks[0].count.max(rows);
        let mmd = MmdGpu {
            kernel,
            targets: gpu.storage_with("mmd targets", bytemuck::cast_slice(&targets.values)),
            target_rows: rows,
            bandwidth: median_bandwidth(targets),
            target_term: 0.0,
            means: gpu.storage_buffer(
                "mmd means",
                u64::from(most) * u64::from(dim) * 4,
                wgpu::BufferUsages::empty(),
            ),
            logs: gpu.storage_buffer("mmd logs", u64::from(most) * 4, wgpu::BufferUsages::empty()),
        };
        let yy = mmd.row_sums(gpu, &mmd.targets, rows, &mmd.targets, rows)?;
        Ok(MmdGpu {
            target_term: yy / (f64::from(rows) * f64::from(rows)),
            ..mmd
        })
    }

    /// The kernel bandwidth h (median pairwise target distance).
    pub fn bandwidth(&self) -> f64 {
        self.bandwidth
    }

    /// sum_i sum_j k(q_i, s_j) over `n` query rows and `m` source rows.
    fn row_sums(
        &self,
        gpu: &Gpu,
        queries: &wgpu::Buffer,
        n: u32,
        sources: &wgpu::Buffer,
        m: u32,
    ) -> Result<f64> {
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        self.kernel.encode(
            gpu,
            &mut encoder,
            &KernelSumArgs {
                queries,
                query_first: 0,
                query_count: n,
                query_scale: 1.0,
                sources,
                source_count: m,
                payload: None,
                variance: self.bandwidth * self.bandwidth,
                out_mean: &self.means,
                out_log: &self.logs,
                out_first: 0,
            },
        )?;
        gpu.submit(encoder, Work::Observing);
        let bytes = gpu.read_bytes(&self.logs, 0, u64::from(n) * 4)?;
        Ok(bytemuck::cast_slice::<u8, f32>(&bytes)
            .iter()
            .map(|&l| f64::from(l).exp())
            .sum())
    }

    /// MMD^2 of the particles to the targets.
    pub fn observe(&self, gpu: &Gpu, ensemble: &Ensemble) -> Result<f64> {
        let chunk = &ensemble.chunks[0];
        let n = f64::from(chunk.count);
        let m = f64::from(self.target_rows);
        let xx = self.row_sums(gpu, &chunk.state, chunk.count, &chunk.state, chunk.count)?;
        let xy = self.row_sums(
            gpu,
            &chunk.state,
            chunk.count,
            &self.targets,
            self.target_rows,
        )?;
        Ok(xx / (n * n) + self.target_term - 2.0 * xy / (n * m))
    }
}

/// CPU twin in f64: the biased MMD^2 between rows of `x` and `y` with bandwidth `h`.
pub fn mmd2_cpu(x: &[f64], y: &[f64], dim: usize, h: f64) -> f64 {
    let k = |a: &[f64], b: &[f64]| {
        let d2: f64 = a.iter().zip(b).map(|(p, q)| (p - q).powi(2)).sum();
        (-d2 / (2.0 * h * h)).exp()
    };
    let mean_k = |a: &[f64], b: &[f64]| {
        let mut total = 0.0;
        for p in a.chunks_exact(dim) {
            for q in b.chunks_exact(dim) {
                total += k(p, q);
            }
        }
        total / ((a.len() / dim) as f64 * (b.len() / dim) as f64)
    };
    mean_k(x, x) + mean_k(y, y) - 2.0 * mean_k(x, y)
}
