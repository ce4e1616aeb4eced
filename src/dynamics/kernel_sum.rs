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
//!
//! A kernel sum made [`KernelSum::with_pair`] for a pair potential W written as an expression
//! also sums its forces ([`KernelSum::encode_pairs`], the shader's KERNEL_USER):
//!
//! ```text
//! out_mean[i] = sum_j c_ij (query_scale q_i - y_j),  c_ij = 2 W'(|query_scale q_i - y_j|^2)
//! ```
//!
//! with c_ij = 0 where the distance is 0 (the particle itself), so that it is the sum of
//! grad W(q_i - y_j) with no 0/0 or 0 * inf at r = 0. Twin: [`pair_sum_cpu`].

use crate::error::{Error, Result};
use crate::gpu::abi::{
    FIRST_WINDOW, KERNEL_GAUSSIAN, KERNEL_USER, KernelSumParams as Params, LAST_WINDOW,
};
use crate::gpu::{Gpu, Kernel};
use crate::model::expr::{PairPotential, Point};
use crate::shaders;
use std::sync::Arc;

/// Floats in one window of sources (64 KiB of uniform memory).
pub use crate::gpu::abi::WINDOW_FLOATS;
const WINDOW_BYTES: u64 = WINDOW_FLOATS as u64 * 4;

/// Queries each invocation carries (the shader's main loop pairs them).
pub const QUERIES_PER_INVOCATION: u32 = 4;

/// Invocations per workgroup that ran fastest on lavapipe (benches/kernel.rs).
pub const DEFAULT_WORKGROUP_SIZE: u32 = 64;

/// One weighted-mean computation. Buffers hold rows of `dim` f32, row-major.
#[derive(Clone, Copy)]
pub struct KernelSumArgs<'a> {
    /// Queries are rows `query_first .. query_first + query_count` of this buffer (e.g. a
    /// slice of an ensemble chunk).
    pub queries: &'a wgpu::Buffer,
    pub query_first: u32,
    pub query_count: u32,
    /// Multiplies every query before the distance is taken (x / alpha without a copy).
    pub query_scale: f32,
    /// Sources are rows `0 .. source_count`; at least one. Needs COPY_SRC usage.
    pub sources: &'a wgpu::Buffer,
    pub source_count: u32,
    /// Values averaged (rows `0 .. source_count`, COPY_SRC); `None` averages the sources.
    pub payload: Option<&'a wgpu::Buffer>,
    /// Kernel variance v > 0 (sigma^2 of the Gaussian kernel).
    pub variance: f64,
    /// Means go to rows `out_first .. out_first + query_count`.
    pub out_mean: &'a wgpu::Buffer,
    /// log sum_j w_ij goes to entries `out_first .. out_first + query_count`.
    pub out_log: &'a wgpu::Buffer,
    pub out_first: u32,
}

/// The kernel specialised for one dimension and workgroup size (both payload variants, and
/// the pair sum of a pair potential).
pub struct KernelSum {
    own_payload: Arc<Kernel>,
    source_payload: Arc<Kernel>,
    /// The pair-sum pipeline ([`KernelSum::with_pair`]).
    pair: Option<Arc<Kernel>>,
    /// The pair potential's params (one unused float without one).
    pair_params: wgpu::Buffer,
    dim: u32,
}

/// The kernel-sum source with `user_pair` generated for `pair` (params read from
/// `pair_params`), validated by naga: what the scenario reader checks and the pair-sum
/// pipeline is made from. Err: naga's report.
pub fn pair_shader(pair: &PairPotential) -> std::result::Result<String, String> {
    let source = shaders::with_user_functions(
        shaders::KERNEL_SUM,
        &[("user_pair", pair.wgsl("pair_params"))],
    )?;
    shaders::validate(&source)?;
    Ok(source)
}

/// A pair potential's params as the shader reads them (a storage binding cannot be empty).
fn pair_param_values(pair: Option<&PairPotential>) -> Vec<f32> {
    let mut p: Vec<f32> =
        pair.map_or_else(Vec::new, |w| w.params().iter().map(|&v| v as f32).collect());
    if p.is_empty() {
        p.push(0.0);
    }
    p
}

impl KernelSum {
    /// Pipelines for `dim` coordinates (1..=8); `workgroup_size` invocations per workgroup
    /// (a power of two up to 256; [`DEFAULT_WORKGROUP_SIZE`] unless tuning).
    pub fn new(gpu: &Gpu, dim: u32, workgroup_size: u32) -> Result<KernelSum> {
        Self::make(gpu, dim, workgroup_size, None, &[])
    }

    /// The sums of interacting particles: with `pair` as [`KernelSum::with_pair`], and every
    /// difference q_i - y_j taken as its minimum image on the axes k whose period
    /// `periods[k]` is positive (each component reduced to [-L/2, L/2]; 0 or absent: not
    /// periodic). The Gaussian means then average the images of the sources nearest each
    /// query.
    pub fn for_interaction(
        gpu: &Gpu,
        dim: u32,
        workgroup_size: u32,
        pair: Option<&PairPotential>,
        periods: &[f32],
    ) -> Result<KernelSum> {
        Self::make(gpu, dim, workgroup_size, pair, periods)
    }

    /// As [`KernelSum::new`], and the pair sum of `pair` ([`KernelSum::encode_pairs`]). The
    /// pipeline is keyed by the generated source, so params changed with `--set` reuse it;
    /// their values live in a buffer.
    pub fn with_pair(
        gpu: &Gpu,
        dim: u32,
        workgroup_size: u32,
        pair: &PairPotential,
    ) -> Result<KernelSum> {
        Self::make(gpu, dim, workgroup_size, Some(pair), &[])
    }

    fn make(
        gpu: &Gpu,
        dim: u32,
        workgroup_size: u32,
        pair: Option<&PairPotential>,
        periods: &[f32],
    ) -> Result<KernelSum> {
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
        if gpu.limits.max_uniform_buffer_binding_size < WINDOW_BYTES {
            return Err(Error::Device(format!(
                "adapter {} binds at most {} bytes of uniform memory; the kernel sum needs {WINDOW_BYTES}",
                gpu.adapter.name, gpu.limits.max_uniform_buffer_binding_size
            )));
        }
        const PERIOD_NAMES: [&str; 8] = [
            "PERIOD_0", "PERIOD_1", "PERIOD_2", "PERIOD_3", "PERIOD_4", "PERIOD_5", "PERIOD_6",
            "PERIOD_7",
        ];
        let mut image: Vec<(&str, f64)> = Vec::new();
        let mut mask = 0u32;
        for (k, &l) in periods.iter().enumerate().take(8) {
            if l > 0.0 {
                mask |= 1 << k;
                image.push((PERIOD_NAMES[k], f64::from(l)));
            }
        }
        if mask != 0 {
            image.push(("PERIODIC_AXES", f64::from(mask)));
        }
        let kernel = |source: &str, separate: bool, code: u32| {
            let mut constants = vec![
                ("DIM", f64::from(dim)),
                ("SEPARATE_PAYLOAD", if separate { 1.0 } else { 0.0 }),
                ("KERNEL", f64::from(code)),
            ];
            constants.extend(image.iter().copied());
            Kernel::new(gpu, "kernel_sum", source, &constants, workgroup_size)
        };
        let pair_kernel = match pair {
            Some(w) => {
                let source = pair_shader(w).map_err(|why| {
                    Error::Device(format!(
                        "the pair potential's shader did not compose: {why}"
                    ))
                })?;
                Some(kernel(&source, false, KERNEL_USER))
            }
            None => None,
        };
        Ok(KernelSum {
            own_payload: kernel(shaders::KERNEL_SUM, true, KERNEL_GAUSSIAN),
            source_payload: kernel(shaders::KERNEL_SUM, false, KERNEL_GAUSSIAN),
            pair: pair_kernel,
            pair_params: gpu.storage_with(
                "kernel_sum pair params",
                bytemuck::cast_slice(&pair_param_values(pair)),
            ),
            dim,
        })
    }

    pub fn dim(&self) -> u32 {
        self.dim
    }

    /// Sources per window: whole rows in 64 KiB.
    fn window_rows(&self) -> u32 {
        WINDOW_FLOATS / self.dim
    }

    /// Records the computation into `encoder`: copies of the sources (and payloads) into
    /// windows of uniform memory, then one dispatch per window. Every call owns its uniform
    /// buffers, written at creation, so any number of calls with different parameters can be
    /// recorded into one submission. Checks buffer sizes and parameters first; nothing is
    /// recorded on error. `query_count = 0` records nothing.
    pub fn encode(
        &self,
        gpu: &Gpu,
        encoder: &mut wgpu::CommandEncoder,
        args: &KernelSumArgs<'_>,
    ) -> Result<()> {
        self.check(args, true)?;
        let kernel = match args.payload {
            Some(_) => &self.own_payload,
            None => &self.source_payload,
        };
        self.record(gpu, encoder, args, kernel)
    }

    /// Records the pair sum of the kernel's pair potential (made [`KernelSum::with_pair`]):
    /// `out_mean` rows get sum_j 2 W'(s_ij) (q_i - y_j); `payload` must be None, `variance`
    /// is not read and `out_log` is not written. Otherwise as [`KernelSum::encode`].
    pub fn encode_pairs(
        &self,
        gpu: &Gpu,
        encoder: &mut wgpu::CommandEncoder,
        args: &KernelSumArgs<'_>,
    ) -> Result<()> {
        let Some(kernel) = &self.pair else {
            return Err(Error::Usage(
                "kernel_sum: a pair sum needs a kernel made with_pair".into(),
            ));
        };
        if args.payload.is_some() {
            return Err(Error::Usage("kernel_sum: a pair sum has no payload".into()));
        }
        self.check(args, false)?;
        self.record(gpu, encoder, args, kernel)
    }

    fn record(
        &self,
        gpu: &Gpu,
        encoder: &mut wgpu::CommandEncoder,
        args: &KernelSumArgs<'_>,
        kernel: &Kernel,
    ) -> Result<()> {
        if args.query_count == 0 {
            return Ok(());
        }
        let rows_per_window = self.window_rows();
        let windows = args.source_count.div_ceil(rows_per_window);
        let source_windows = self.stage(gpu, encoder, args.sources, args.source_count);
        let payload_windows = args
            .payload
            .map(|p| self.stage(gpu, encoder, p, args.source_count));
        let payload_windows = payload_windows.as_ref().unwrap_or(&source_windows);
        // Running sums carried between windows: shift, sum, compensation, 2 dim more.
        let running = gpu.storage_buffer(
            "kernel_sum running sums",
            if windows > 1 {
                u64::from(args.query_count) * (3 + 2 * u64::from(self.dim)) * 4
            } else {
                4
            },
            wgpu::BufferUsages::empty(),
        );
        let per_group = kernel.workgroup_size * QUERIES_PER_INVOCATION;
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("kernel_sum"),
            timestamp_writes: None,
        });
        for w in 0..windows {
            let first_row = w * rows_per_window;
            let mut flags = 0;
            if w == 0 {
                flags |= FIRST_WINDOW;
            }
            if w + 1 == windows {
                flags |= LAST_WINDOW;
            }
            let params = Params {
                first: args.query_first,
                count: args.query_count,
                rows: rows_per_window.min(args.source_count - first_row),
                out_first: args.out_first,
                query_scale: args.query_scale,
                c2: (std::f64::consts::LOG2_E / (2.0 * args.variance)) as f32,
                ce: (1.0 / (2.0 * args.variance)) as f32,
                flags,
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
                .map_err(|e| Error::Device(format!("kernel_sum: cannot write its uniform: {e}")))?
                .copy_from_slice(bytemuck::bytes_of(&params));
            uniform.unmap();
            let resources = [
                args.queries.as_entire_binding(),
                window_binding(&source_windows, w),
                window_binding(payload_windows, w),
                uniform.as_entire_binding(),
                running.as_entire_binding(),
                args.out_mean.as_entire_binding(),
                args.out_log.as_entire_binding(),
                self.pair_params.as_entire_binding(),
            ];
            let bind = kernel.bind_resources(gpu, Some("kernel_sum"), resources);
            kernel.dispatch(
                &mut pass,
                &bind,
                args.query_count.div_ceil(per_group),
                gpu.limits.max_compute_workgroups_per_dimension,
            );
        }
        Ok(())
    }

    /// Records copies of rows `0 .. rows` of `buffer` into windows of 64 KiB, each holding
    /// [`Self::window_rows`] whole rows, in a new uniform buffer.
    fn stage(
        &self,
        gpu: &Gpu,
        encoder: &mut wgpu::CommandEncoder,
        buffer: &wgpu::Buffer,
        rows: u32,
    ) -> wgpu::Buffer {
        let per_window = self.window_rows();
        let windows = rows.div_ceil(per_window);
        let row_bytes = u64::from(self.dim) * 4;
        let windowed = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("kernel_sum windows"),
            size: u64::from(windows) * WINDOW_BYTES,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        for w in 0..windows {
            let first = w * per_window;
            encoder.copy_buffer_to_buffer(
                buffer,
                u64::from(first) * row_bytes,
                &windowed,
                u64::from(w) * WINDOW_BYTES,
                u64::from(per_window.min(rows - first)) * row_bytes,
            );
        }
        windowed
    }

    /// Buffer sizes and parameters (the variance only where the kernel reads it).
    fn check(&self, a: &KernelSumArgs<'_>, variance: bool) -> Result<()> {
        let row = u64::from(self.dim) * 4;
        let fail = |what: String| Err(Error::Usage(format!("kernel_sum: {what}")));
        if variance && !(a.variance.is_finite() && a.variance >= 1e-36 && 2.0 * a.variance < 1e36) {
            return fail(format!(
                "variance = {:e}: must be in [1e-36, 5e35] (f32 exponents)",
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
            || u64::from(a.query_count) * (3 + 2 * u64::from(self.dim)) > u64::from(u32::MAX)
        {
            return fail("buffers beyond 2^32 floats cannot be indexed".into());
        }
        Ok(())
    }
}

/// Window `w` of a buffer made by [`KernelSum::stage`].
fn window_binding(buffer: &wgpu::Buffer, w: u32) -> wgpu::BindingResource<'_> {
    wgpu::BindingResource::Buffer(wgpu::BufferBinding {
        buffer,
        offset: u64::from(w) * WINDOW_BYTES,
        size: std::num::NonZeroU64::new(WINDOW_BYTES),
    })
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

/// CPU twin of the pair sum (shaders/kernel_sum.wgsl, KERNEL_USER) in f64: for each row q_i
/// of `queries`, sum_j 2 W'(|q_i - y_j|^2) (q_i - y_j) over the rows y_j of `sources`
/// (`dim` floats each, row-major), pairs at distance 0 left out.
pub fn pair_sum_cpu(dim: u32, queries: &[f64], sources: &[f64], pair: &PairPotential) -> Vec<f64> {
    let d = dim as usize;
    let params = pair.params();
    let (mut scratch, mut w) = (Vec::new(), [0.0; 2]);
    let mut out = vec![0.0; queries.len()];
    for (q, acc) in queries.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
        for y in sources.chunks_exact(d) {
            let s: f64 = q.iter().zip(y).map(|(a, b)| (a - b).powi(2)).sum();
            if s == 0.0 {
                continue;
            }
            // (W, 2 W'(s)), as PairPotential::at without its allocations.
            let at = Point { x: &[], t: 0.0, s };
            pair.tape().eval_into(&at, &params, &mut scratch, &mut w);
            let c = w[1];
            for ((a, qa), ya) in acc.iter_mut().zip(q).zip(y) {
                *a += c * (qa - ya);
            }
        }
    }
    out
}
