//! Gaussian-kernel weighted means over a set of sources: the tiled GPU kernel
//! (shaders/kernel_sum.wgsl) and its f64 CPU twin [`kernel_sum_cpu`]. Shared by SD flow (both
//! denoisers), the empirical score of reverse diffusion, MMD flow, SVGD and the MMD diagnostic.
//!
//! For queries q_i, sources y_j (j < m), payloads p_j (default y_j) and a variance v:
//!
//! ```text
//! w_ij        = exp(-|query_scale q_i - y_j|^2 / (2 v))
//! out_mean[i] = sum_j w_ij p_j / sum_j w_ij        (dim floats per query)
//! out_log[i]  = log sum_j w_ij                     (one float per query)
//! ```
//!
//! `exp(out_log)` gives the unnormalised sums, e.g. an MMD gradient S_i (mean_i - x_i). Weights
//! are taken relative to the nearest source (log-sum-exp shift), so the mean is finite and
//! exact to f32 rounding however small v is and however far the query lies from the sources.

use crate::error::{Error, Result};
use crate::gpu::{Gpu, Kernel};
use crate::shaders;
use std::sync::Arc;

/// Sources per tile of workgroup memory (`TILE` in the shader).
pub const TILE: u32 = 256;

/// Queries each invocation carries (`QUERIES` in the shader): one load of a source from
/// workgroup memory serves this many exponentials.
pub const QUERIES_PER_INVOCATION: u32 = 2;

/// Invocations per workgroup that ran fastest on lavapipe (benches/kernel.rs).
pub const DEFAULT_WORKGROUP_SIZE: u32 = 64;

#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    first: u32,
    count: u32,
    m: u32,
    out_first: u32,
    query_scale: f32,
    /// log2(e) / (2 v).
    c2: f32,
    /// 1 / (2 v).
    ce: f32,
    _pad: u32,
}
const _: () = assert!(std::mem::size_of::<Params>() == 32);

/// One weighted-mean computation. Buffers hold rows of `dim` f32, row-major.
pub struct KernelSumArgs<'a> {
    /// Queries are rows `query_first .. query_first + query_count` of this buffer (e.g. a
    /// slice of an ensemble chunk).
    pub queries: &'a wgpu::Buffer,
    pub query_first: u32,
    pub query_count: u32,
    /// Multiplies every query before the distance is taken (x / alpha without a copy).
    pub query_scale: f32,
    /// Sources are rows `0 .. source_count`; at least one.
    pub sources: &'a wgpu::Buffer,
    pub source_count: u32,
    /// Values averaged (rows `0 .. source_count`); `None` averages the sources themselves.
    pub payload: Option<&'a wgpu::Buffer>,
    /// Kernel variance v > 0 (sigma^2 of the Gaussian kernel).
    pub variance: f64,
    /// Means go to rows `out_first .. out_first + query_count`.
    pub out_mean: &'a wgpu::Buffer,
    /// log sum_j w_ij goes to entries `out_first .. out_first + query_count`.
    pub out_log: &'a wgpu::Buffer,
    pub out_first: u32,
}

/// The kernel specialised for one dimension and workgroup size (both payload variants).
pub struct KernelSum {
    own_payload: Arc<Kernel>,
    source_payload: Arc<Kernel>,
    dim: u32,
}

impl KernelSum {
    /// Pipelines for `dim` coordinates (1..=8); `workgroup_size` invocations per workgroup
    /// (a power of two up to 256; [`DEFAULT_WORKGROUP_SIZE`] unless tuning).
    pub fn new(gpu: &Gpu, dim: u32, workgroup_size: u32) -> Result<KernelSum> {
        if !(1..=8).contains(&dim) {
            return Err(Error::Usage(format!(
                "kernel_sum: dim = {dim}: allowed are 1 to 8"
            )));
        }
        if !workgroup_size.is_power_of_two() || workgroup_size > 256 {
            return Err(Error::Usage(format!(
                "kernel_sum: workgroup size {workgroup_size}: allowed are powers of two up to 256"
            )));
        }
        let kernel = |separate: bool| {
            Kernel::new(
                gpu,
                "kernel_sum",
                shaders::KERNEL_SUM,
                &[
                    ("DIM", f64::from(dim)),
                    ("SEPARATE_PAYLOAD", if separate { 1.0 } else { 0.0 }),
                    ("QUERIES", f64::from(QUERIES_PER_INVOCATION)),
                ],
                workgroup_size,
            )
        };
        Ok(KernelSum {
            own_payload: kernel(true),
            source_payload: kernel(false),
            dim,
        })
    }

    pub fn dim(&self) -> u32 {
        self.dim
    }

    /// Records the computation into `encoder` (its own compute pass). Each call gets its own
    /// uniform buffer, written at creation, so any number of calls with different
    /// parameters can be recorded into one submission. Checks buffer sizes and parameters
    /// first; nothing is recorded on error. `query_count = 0` records nothing.
    pub fn encode(
        &self,
        gpu: &Gpu,
        encoder: &mut wgpu::CommandEncoder,
        args: &KernelSumArgs<'_>,
    ) -> Result<()> {
        self.check(args)?;
        if args.query_count == 0 {
            return Ok(());
        }
        let params = Params {
            first: args.query_first,
            count: args.query_count,
            m: args.source_count,
            out_first: args.out_first,
            query_scale: args.query_scale,
            c2: (std::f64::consts::LOG2_E / (2.0 * args.variance)) as f32,
            ce: (1.0 / (2.0 * args.variance)) as f32,
            _pad: 0,
        };
        let uniform = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("kernel_sum params"),
            size: std::mem::size_of::<Params>() as u64,
            usage: wgpu::BufferUsages::UNIFORM,
            mapped_at_creation: true,
        });
        uniform
            .slice(..)
            .get_mapped_range_mut()
            .expect("mapped at creation")
            .copy_from_slice(bytemuck::bytes_of(&params));
        uniform.unmap();
        let (kernel, payload) = match args.payload {
            Some(p) => (&self.own_payload, p),
            None => (&self.source_payload, args.sources),
        };
        let bind = kernel.bind(
            gpu,
            &[
                args.queries,
                args.sources,
                payload,
                &uniform,
                args.out_mean,
                args.out_log,
            ],
        );
        let per_group = kernel.workgroup_size * QUERIES_PER_INVOCATION;
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("kernel_sum"),
            timestamp_writes: None,
        });
        kernel.dispatch(
            &mut pass,
            &bind,
            args.query_count.div_ceil(per_group),
            gpu.limits.max_compute_workgroups_per_dimension,
        );
        Ok(())
    }

    fn check(&self, a: &KernelSumArgs<'_>) -> Result<()> {
        let row = u64::from(self.dim) * 4;
        let fail = |what: String| Err(Error::Usage(format!("kernel_sum: {what}")));
        if !(a.variance.is_finite() && a.variance > 0.0) {
            return fail(format!(
                "variance = {}: must be finite and positive",
                a.variance
            ));
        }
        if !(a.variance.sqrt() >= 1e-18 && (2.0 * a.variance) < f64::from(f32::MAX)) {
            return fail(format!(
                "variance = {:e}: outside what f32 exponents can express",
                a.variance
            ));
        }
        if !a.query_scale.is_finite() {
            return fail(format!("query_scale = {}: must be finite", a.query_scale));
        }
        if a.source_count == 0 {
            return fail("no sources: a weighted mean over nothing is 0/0".into());
        }
        let need = |name: &str, buffer: &wgpu::Buffer, bytes: u64| {
            if buffer.size() < bytes {
                fail(format!(
                    "{name} holds {} bytes, the call needs {bytes}",
                    buffer.size()
                ))
            } else {
                Ok(())
            }
        };
        let queries_end = u64::from(a.query_first) + u64::from(a.query_count);
        let out_end = u64::from(a.out_first) + u64::from(a.query_count);
        need("queries", a.queries, queries_end * row)?;
        need("sources", a.sources, u64::from(a.source_count) * row)?;
        if let Some(p) = a.payload {
            need("payload", p, u64::from(a.source_count) * row)?;
        }
        need("out_mean", a.out_mean, out_end * row)?;
        need("out_log", a.out_log, out_end * 4)?;
        if out_end * u64::from(self.dim) > u64::from(u32::MAX)
            || queries_end * u64::from(self.dim) > u64::from(u32::MAX)
            || u64::from(a.source_count) * u64::from(self.dim) > u64::from(u32::MAX)
        {
            return fail("buffers beyond 2^32 floats cannot be indexed".into());
        }
        Ok(())
    }
}

/// CPU twin of shaders/kernel_sum.wgsl in f64, inputs in binding order: rows
/// `first .. first + count` of `queries` scaled by `query_scale`, `m` rows of `sources`,
/// optional `payload`, the variance. Returns (means, count x dim row-major; log sums).
#[allow(clippy::too_many_arguments)]
pub fn kernel_sum_cpu(
    dim: u32,
    queries: &[f32],
    first: usize,
    count: usize,
    query_scale: f32,
    sources: &[f32],
    m: usize,
    payload: Option<&[f32]>,
    variance: f64,
) -> (Vec<f64>, Vec<f64>) {
    let d = dim as usize;
    let payload = payload.unwrap_or(sources);
    let scale = f64::from(query_scale);
    let mut means = vec![0.0; count * d];
    let mut logs = vec![0.0; count];
    let mut exponents = vec![0.0; m];
    for k in 0..count {
        let q: Vec<f64> = queries[(first + k) * d..(first + k + 1) * d]
            .iter()
            .map(|&v| scale * f64::from(v))
            .collect();
        for (j, e) in exponents.iter_mut().enumerate() {
            let y = &sources[j * d..(j + 1) * d];
            let d2: f64 = q
                .iter()
                .zip(y)
                .map(|(a, &b)| (a - f64::from(b)).powi(2))
                .sum();
            *e = -d2 / (2.0 * variance);
        }
        let top = exponents.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mut total = 0.0;
        let mean = &mut means[k * d..(k + 1) * d];
        for (j, e) in exponents.iter().enumerate() {
            let w = (e - top).exp();
            total += w;
            for (acc, &p) in mean.iter_mut().zip(&payload[j * d..(j + 1) * d]) {
                *acc += w * f64::from(p);
            }
        }
        for acc in mean.iter_mut() {
            *acc /= total;
        }
        logs[k] = top + total.ln();
    }
    (means, logs)
}
