//! The Gaussian-kernel weighted mean (src/dynamics/kernel_sum.rs) alone: N queries against
//! M sources, `--repeat` times in one submission. Prints one JSON line with kernel
//! interactions (query-source pairs) per second.
//!
//!     cargo bench --bench kernel -- --n 16384 --m 16384 --dim 2 --sigma 0.3 [--wg 64]

use fokker::dynamics::kernel_sum::{DEFAULT_WORKGROUP_SIZE, KernelSum, KernelSumArgs};
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

fn main() -> fokker::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let n: u32 = arg(&args, "--n", 16384);
    let m: u32 = arg(&args, "--m", 16384);
    let dim: u32 = arg(&args, "--dim", 2);
    let sigma: f64 = arg(&args, "--sigma", 0.3);
    let repeat: u32 = arg(&args, "--repeat", 3);
    let wg: u32 = arg(&args, "--wg", DEFAULT_WORKGROUP_SIZE);
    let adapter: AdapterChoice = arg(&args, "--adapter", AdapterChoice::Auto);

    let gpu = Gpu::open(&adapter)?;
    let d = dim as usize;
    let queries = gpu.storage_with("queries", bytemuck::cast_slice(&points(n as usize, d, 1)));
    let sources = gpu.storage_with("sources", bytemuck::cast_slice(&points(m as usize, d, 2)));
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
    println!(
        "{}",
        serde_json::json!({
            "impl": "fokker",
            "workload": "kernel_sum",
            "n": n, "m": m, "dim": dim, "sigma": sigma, "workgroup_size": wg,
            "seconds": (seconds * 1e4).round() / 1e4,
            "interactions_per_s": interactions / seconds,
            "interactions_per_cpu_s": cpu.map(|c| interactions / c),
            "adapter": format!("{} ({})", gpu.adapter.name, gpu.adapter.backend),
        })
    );
    Ok(())
}
