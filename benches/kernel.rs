//! The Gaussian-kernel weighted mean (src/dynamics/kernel_sum.rs) alone: N queries against
//! M sources, `--repeat` times in one submission. Prints one JSON line with kernel
//! interactions (query-source pairs) per second and the f32 kernel's error against the f64
//! twin ([`kernel_sum_cpu`]) on the same inputs, for `--check` queries spread evenly over
//! the N (default 1024; 0 skips the check):
//! - `sum_rel_err_max`, `sum_rel_err_rms`: the kernel sum S = sum_j w_j, relative,
//!   |exp(log S_f32 - log S_f64) - 1|;
//! - `mean_rel_err_max`, `mean_rel_err_rms`: each coordinate of the weighted mean
//!   sum_j w_j y_j / S, relative to the weighted mean of |y_j| in that coordinate (the scale
//!   of the terms summed, so a mean near zero from cancelling terms does not divide by ~0).
//!
//!     cargo bench --bench kernel -- --n 16384 --m 16384 --dim 2 --sigma 0.3 [--wg 64] [--check 1024]

use fokker::dynamics::kernel_sum::{
    DEFAULT_WORKGROUP_SIZE, KernelSum, KernelSumArgs, kernel_sum_cpu,
};
use fokker::gpu::{AdapterChoice, Gpu};
use std::time::Instant;

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Deterministic points roughly N(0, 1): a sum of uniforms from an LCG.
fn points(count: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    (0..count * dim)
        .map(|_| {
            let mut v = 0.0f32;
            for _ in 0..4 {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                v += (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
            }
            v * 1.7
        })
        .collect()
}

/// CPU seconds this process (all threads: lavapipe's workers included) has used, where
/// /proc is readable: on a shared machine interactions per CPU second are steadier than
/// per wall second.
pub fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// (max, RMS) of `values`.
fn max_rms(values: &[f64]) -> (f64, f64) {
    let max = values.iter().copied().fold(0.0, f64::max);
    let rms = (values.iter().map(|v| v * v).sum::<f64>() / values.len().max(1) as f64).sqrt();
    (max, rms)
}

/// The f32 kernel's errors against the f64 twin at `check` queries spread evenly over the
/// `n` (see the module comment): (queries, sum max, sum RMS, mean max, mean RMS).
fn f32_errors(
    gpu: &Gpu,
    call: &KernelSumArgs,
    queries: &[f32],
    sources: &[f32],
    dim: usize,
    check: usize,
) -> fokker::Result<(usize, f64, f64, f64, f64)> {
    let n = call.query_count as usize;
    let floats = |bytes: Vec<u8>| -> Vec<f32> {
        bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    };
    let means = floats(gpu.read_bytes(call.out_mean, 0, (n * dim * 4) as u64)?);
    let logs = floats(gpu.read_bytes(call.out_log, 0, (n * 4) as u64)?);
    let m = call.source_count as usize;
    // The weighted mean of |y| per coordinate: the same sums with the payload |y|.
    let magnitudes: Vec<f32> = sources.iter().map(|v| v.abs()).collect();
    let (mut sum_err, mut mean_err) = (Vec::new(), Vec::new());
    let stride = n.div_ceil(check.min(n));
    for i in (0..n).step_by(stride) {
        let (mean, log) = kernel_sum_cpu(
            dim as u32,
            queries,
            i,
            1,
            call.query_scale,
            sources,
            m,
            None,
            call.variance,
        );
        sum_err.push((f64::from(logs[i]) - log[0]).exp_m1().abs());
        let (scale, _) = kernel_sum_cpu(
            dim as u32,
            queries,
            i,
            1,
            call.query_scale,
            sources,
            m,
            Some(&magnitudes),
            call.variance,
        );
        for k in 0..dim {
            mean_err.push((f64::from(means[i * dim + k]) - mean[k]).abs() / scale[k]);
        }
    }
    let (s_max, s_rms) = max_rms(&sum_err);
    let (m_max, m_rms) = max_rms(&mean_err);
    Ok((sum_err.len(), s_max, s_rms, m_max, m_rms))
}

fn main() -> fokker::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let n: u32 = arg(&args, "--n", 16384);
    let m: u32 = arg(&args, "--m", 16384);
    let dim: u32 = arg(&args, "--dim", 2);
    let sigma: f64 = arg(&args, "--sigma", 0.3);
    let repeat: u32 = arg(&args, "--repeat", 3);
    let wg: u32 = arg(&args, "--wg", DEFAULT_WORKGROUP_SIZE);
    let adapter: AdapterChoice = arg(&args, "--adapter", AdapterChoice::Auto);
    let check: usize = arg(&args, "--check", 1024);

    let gpu = Gpu::open(&adapter)?;
    let d = dim as usize;
    let (query_points, source_points) = (points(n as usize, d, 1), points(m as usize, d, 2));
    let queries = gpu.storage_with("queries", bytemuck::cast_slice(&query_points));
    let sources = gpu.storage_with("sources", bytemuck::cast_slice(&source_points));
    let out_mean = gpu.storage_buffer(
        "mean",
        u64::from(n) * u64::from(dim) * 4,
        wgpu::BufferUsages::empty(),
    );
    let out_log = gpu.storage_buffer("log", u64::from(n) * 4, wgpu::BufferUsages::empty());
    let kernel = KernelSum::new(&gpu, dim, wg)?;
    let call = KernelSumArgs {
        queries: &queries,
        query_first: 0,
        query_count: n,
        query_scale: 1.0,
        sources: &sources,
        source_count: m,
        payload: None,
        variance: sigma * sigma,
        out_mean: &out_mean,
        out_log: &out_log,
        out_first: 0,
    };
    // Warm-up: pipeline compilation and first-touch of the buffers.
    let warm = KernelSumArgs {
        query_count: n.min(256),
        source_count: m.min(256),
        ..call
    };
    let mut encoder = gpu.device.create_command_encoder(&Default::default());
    kernel.encode(&gpu, &mut encoder, &warm)?;
    gpu.queue.submit([encoder.finish()]);
    gpu.wait()?;

    let c0 = cpu_seconds();
    let t0 = Instant::now();
    for _ in 0..repeat {
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        kernel.encode(&gpu, &mut encoder, &call)?;
        gpu.queue.submit([encoder.finish()]);
        gpu.wait()?;
    }
    let seconds = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds().zip(c0).map(|(b, a)| b - a);
    let interactions = f64::from(repeat) * f64::from(n) * f64::from(m);
    let errors = if check > 0 {
        Some(f32_errors(
            &gpu,
            &call,
            &query_points,
            &source_points,
            d,
            check,
        )?)
    } else {
        None
    };
    let e = |f: fn(&(usize, f64, f64, f64, f64)) -> f64| errors.as_ref().map(f);
    println!(
        "{}",
        serde_json::json!({
            "impl": "fokker",
            "workload": "kernel_sum",
            "n": n, "m": m, "dim": dim, "sigma": sigma, "workgroup_size": wg,
            "seconds": (seconds * 1e4).round() / 1e4,
            "interactions_per_s": interactions / seconds,
            "interactions_per_cpu_s": cpu.map(|c| interactions / c),
            "check_queries": errors.as_ref().map(|e| e.0),
            "sum_rel_err_max": e(|e| e.1),
            "sum_rel_err_rms": e(|e| e.2),
            "mean_rel_err_max": e(|e| e.3),
            "mean_rel_err_rms": e(|e| e.4),
            "adapter": format!("{} ({})", gpu.adapter.name, gpu.adapter.backend),
        })
    );
    Ok(())
}
