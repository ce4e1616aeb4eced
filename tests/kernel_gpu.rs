//! The Gaussian-kernel weighted mean on the GPU against its f64 CPU twin.
//!
//! Error model behind the tolerances: the GPU works on the same f32 inputs in f32. Relative to
//! the twin, the weights carry the rounding of the squared distances, a relative error of
//! about (dim + 2) eps32 in the exponent d2 / (2 v), plus exp2's own error and the summation
//! error of tiles of 256 terms combined with compensation (a few 1e-7 relative). Where the
//! exponents d2 / (2 v) of the sources that matter are O(10), all of this stays below 1e-5 of
//! the payload scale; far queries with a tiny sigma have exponents of 1e7, and there only
//! the log-sum-exp shift keeps the result finite: they are compared where the nearest source
//! dominates by a margin larger than that rounding.

mod common;

use fokker::dynamics::kernel_sum::{KernelSum, KernelSumArgs, WINDOW_FLOATS, kernel_sum_cpu};
use fokker::gpu::Gpu;
use fokker::rng;

/// Deterministic standard normals (Philox, a test-only stream).
fn normals(count: usize, seed: u64) -> Vec<f32> {
    let key = rng::key_from_seed(seed);
    (0..count)
        .map(|g| rng::normal(key, 0, 77, g as u64) as f32)
        .collect()
}

struct Case {
    dim: u32,
    queries: Vec<f32>,
    first: u32,
    count: u32,
    scale: f32,
    sources: Vec<f32>,
    payload: Option<Vec<f32>>,
    variance: f64,
    out_first: u32,
}

impl Case {
    fn m(&self) -> u32 {
        self.sources.len() as u32 / self.dim
    }

    fn twin(&self) -> (Vec<f64>, Vec<f64>) {
        kernel_sum_cpu(
            self.dim,
            &self.queries,
            self.first as usize,
            self.count as usize,
            self.scale,
            &self.sources,
            self.m() as usize,
            self.payload.as_deref(),
            self.variance,
        )
    }
}

/// Output buffers pre-filled with a sentinel, so writes outside the asked rows show.
const SENTINEL: f32 = 7.25;

fn outputs(gpu: &Gpu, dim: u32, rows: u32) -> (wgpu::Buffer, wgpu::Buffer) {
    let mean = gpu.storage_with(
        "out mean",
        bytemuck::cast_slice(&vec![SENTINEL; (rows * dim) as usize]),
    );
    let log = gpu.storage_with(
        "out log",
        bytemuck::cast_slice(&vec![SENTINEL; rows as usize]),
    );
    (mean, log)
}

fn read_f32(gpu: &Gpu, buffer: &wgpu::Buffer) -> Vec<f32> {
    bytemuck::cast_slice(&gpu.read_bytes(buffer, 0, buffer.size()).expect("readback")).to_vec()
}

/// Runs the case on the GPU; returns the whole output buffers (means, logs).
fn run_gpu(gpu: &Gpu, case: &Case) -> (Vec<f32>, Vec<f32>) {
    let kernel = KernelSum::new(gpu, case.dim, 64).expect("kernel");
    let queries = gpu.storage_with("queries", bytemuck::cast_slice(&case.queries));
    let sources = gpu.storage_with("sources", bytemuck::cast_slice(&case.sources));
    let payload = case
        .payload
        .as_ref()
        .map(|p| gpu.storage_with("payload", bytemuck::cast_slice(p)));
    let rows = case.out_first + case.count + 3;
    let (out_mean, out_log) = outputs(gpu, case.dim, rows);
    let mut encoder = gpu.device.create_command_encoder(&Default::default());
    kernel
        .encode(
            gpu,
            &mut encoder,
            &KernelSumArgs {
                queries: &queries,
                query_first: case.first,
                query_count: case.count,
                query_scale: case.scale,
                sources: &sources,
                source_count: case.m(),
                payload: payload.as_ref(),
                variance: case.variance,
                out_mean: &out_mean,
                out_log: &out_log,
                out_first: case.out_first,
            },
        )
        .expect("encode");
    gpu.queue.submit([encoder.finish()]);
    (read_f32(gpu, &out_mean), read_f32(gpu, &out_log))
}

/// Largest |gpu - twin| over the case's rows (means relative to `scale`, logs relative to
/// max(1, |log|)); also asserts the rows outside were left alone.
fn compare(case: &Case, gpu: &(Vec<f32>, Vec<f32>)) -> (f64, f64) {
    let (mean, log) = case.twin();
    let d = case.dim as usize;
    let o = case.out_first as usize;
    let (gpu_mean, gpu_log) = gpu;
    assert!(gpu_mean[..o * d].iter().all(|&v| v == SENTINEL));
    assert!(
        gpu_mean[(o + case.count as usize) * d..]
            .iter()
            .all(|&v| v == SENTINEL)
    );
    assert!(gpu_log[..o].iter().all(|&v| v == SENTINEL));
    assert!(
        gpu_log[o + case.count as usize..]
            .iter()
            .all(|&v| v == SENTINEL)
    );
    let mut worst_mean = 0f64;
    for (g, t) in gpu_mean[o * d..].iter().zip(&mean) {
        assert!(g.is_finite(), "non-finite mean {g}");
        worst_mean = worst_mean.max((f64::from(*g) - t).abs());
    }
    let mut worst_log = 0f64;
    for (g, t) in gpu_log[o..].iter().zip(&log) {
        assert!(g.is_finite(), "non-finite log {g}");
        worst_log = worst_log.max((f64::from(*g) - t).abs() / t.abs().max(1.0));
    }
    (worst_mean, worst_log)
}

#[test]
fn matches_the_twin_in_every_dimension_across_windows_and_ragged_sizes() {
    let gpu = common::gpu();
    for dim in 1..=8u32 {
        // Two windows of uniform memory, the second ragged; query count not a multiple of
        // the 128 queries a workgroup takes.
        let m = WINDOW_FLOATS / dim + 37;
        let n = 333u32;
        let d = dim as usize;
        let case = Case {
            dim,
            queries: normals(n as usize * d, u64::from(dim)),
            first: 0,
            count: n,
            scale: 1.0,
            sources: normals(m as usize * d, 100 + u64::from(dim))
                .iter()
                .map(|v| v * 1.3 + 0.2)
                .collect(),
            payload: None,
            variance: 0.5,
            out_first: 0,
        };
        let (mean, log) = compare(&case, &run_gpu(&gpu, &case));
        // Observed: 1e-6 .. 2e-6.
        assert!(mean < 6e-6, "dim {dim}: mean off by {mean:e}");
        assert!(log < 2e-6, "dim {dim}: log off by {log:e}");
    }
}

#[test]
fn slices_scaled_queries_payloads_and_output_offsets() {
    let gpu = common::gpu();
    let dim = 3u32;
    let case = Case {
        dim,
        queries: normals(500 * 3, 5),
        first: 123,
        count: 277,
        // x / alpha with alpha = 0.8, as the empirical score of reverse diffusion asks.
        scale: 1.25,
        sources: normals(777 * 3, 6),
        payload: Some(normals(777 * 3, 7).iter().map(|v| 10.0 * v).collect()),
        variance: 0.3,
        out_first: 11,
    };
    let (mean, log) = compare(&case, &run_gpu(&gpu, &case));
    // Payloads are 10x larger, so is their error (observed 8e-6).
    assert!(mean < 3e-5, "mean off by {mean:e}");
    assert!(log < 2e-6, "log off by {log:e}");
}

#[test]
fn small_sigma_and_far_queries_stay_finite_and_pick_the_nearest_source() {
    let gpu = common::gpu();
    let dim = 2u32;
    let m = 500usize;
    let sources = normals(m * 2, 11);
    // Queries on circles of radius 0.5 .. 50 around the sources' centre.
    let n = 300usize;
    let u = normals(n * 2, 12);
    let mut queries = Vec::with_capacity(n * 2);
    for i in 0..n {
        let r = 0.5 + 49.5 * (i as f32 / n as f32);
        let (x, y) = (u[2 * i], u[2 * i + 1]);
        let norm = (x * x + y * y).sqrt().max(1e-3);
        queries.push(r * x / norm);
        queries.push(r * y / norm);
    }
    let case = Case {
        dim,
        queries,
        first: 0,
        count: n as u32,
        scale: 1.0,
        sources,
        payload: None,
        variance: 1e-4, // sigma = 0.01
        out_first: 0,
    };
    let (gpu_mean, gpu_log) = run_gpu(&gpu, &case);
    let (mean, log) = case.twin();
    let mut compared = 0;
    for i in 0..n {
        let g = [f64::from(gpu_mean[2 * i]), f64::from(gpu_mean[2 * i + 1])];
        assert!(g.iter().all(|v| v.is_finite()), "query {i}: mean {g:?}");
        assert!(gpu_log[i].is_finite(), "query {i}: log {}", gpu_log[i]);
        // Exponents are d2 / (2 v) ~ up to 1.25e7; f32 rounding moves them by ~4 eps32 of
        // that. Compare means where the nearest source wins by more than 50x that margin.
        let q = [
            f64::from(case.queries[2 * i]),
            f64::from(case.queries[2 * i + 1]),
        ];
        let mut e: Vec<f64> = case
            .sources
            .chunks_exact(2)
            .map(|y| {
                ((q[0] - f64::from(y[0])).powi(2) + (q[1] - f64::from(y[1])).powi(2))
                    / (2.0 * case.variance)
            })
            .collect();
        e.sort_by(f64::total_cmp);
        let rounding = 4.0 * f64::from(f32::EPSILON) * e[0];
        if e[1] - e[0] > 50.0 * rounding.max(1.0) {
            compared += 1;
            for k in 0..2 {
                assert!(
                    (g[k] - mean[2 * i + k]).abs() < 1e-5,
                    "query {i}: {g:?} vs {:?}",
                    &mean[2 * i..2 * i + 2]
                );
            }
        }
        let rel = (f64::from(gpu_log[i]) - log[i]).abs() / log[i].abs().max(1.0);
        assert!(rel < 1e-6, "query {i}: log {} vs {}", gpu_log[i], log[i]);
    }
    assert!(
        compared > n / 2,
        "only {compared} queries had a clear nearest source"
    );
}

#[test]
fn sixty_five_thousand_sources_with_a_small_sigma() {
    let gpu = common::gpu();
    // The S2 target: a ring of radius 2, radial std 0.1; queries near it; sigma = 0.05.
    let m = 65536usize;
    let z = normals(m * 2, 21);
    let mut sources = Vec::with_capacity(m * 2);
    for j in 0..m {
        let angle = std::f32::consts::TAU * j as f32 / m as f32 + 0.3 * z[2 * j];
        let r = 2.0 + 0.1 * z[2 * j + 1];
        sources.push(r * angle.cos());
        sources.push(r * angle.sin());
    }
    let n = 700usize;
    let queries: Vec<f32> = normals(n * 2, 22).iter().map(|v| 1.5 * v).collect();
    let case = Case {
        dim: 2,
        queries,
        first: 0,
        count: n as u32,
        scale: 1.0,
        sources,
        payload: None,
        variance: 0.0025,
        out_first: 0,
    };
    let (mean, log) = compare(&case, &run_gpu(&gpu, &case));
    // A plain f32 running sum was 1e-3..1e-2 off here; observed 8e-6.
    assert!(mean < 2.5e-5, "mean off by {mean:e}");
    assert!(log < 2e-6, "log off by {log:e}");
}

#[test]
fn calls_recorded_into_one_submission_keep_their_own_parameters() {
    let gpu = common::gpu();
    let dim = 2u32;
    let kernel = KernelSum::new(&gpu, dim, 64).expect("kernel");
    let query_data = normals(400 * 2, 31);
    let source_data = normals(300 * 2, 32);
    let queries = gpu.storage_with("queries", bytemuck::cast_slice(&query_data));
    let sources = gpu.storage_with("sources", bytemuck::cast_slice(&source_data));
    let (out_mean, out_log) = outputs(&gpu, dim, 400);
    let settings = [(0u32, 0.5f32, 0.01f64), (1, 1.0, 0.25), (2, 2.0, 4.0)];
    let mut encoder = gpu.device.create_command_encoder(&Default::default());
    for &(k, scale, variance) in &settings {
        kernel
            .encode(
                &gpu,
                &mut encoder,
                &KernelSumArgs {
                    queries: &queries,
                    query_first: 100 * k,
                    query_count: 100,
                    query_scale: scale,
                    sources: &sources,
                    source_count: 300,
                    payload: None,
                    variance,
                    out_mean: &out_mean,
                    out_log: &out_log,
                    out_first: 100 * k,
                },
            )
            .expect("encode");
    }
    gpu.queue.submit([encoder.finish()]);
    let gpu_mean = read_f32(&gpu, &out_mean);
    let gpu_log = read_f32(&gpu, &out_log);
    for &(k, scale, variance) in &settings {
        let (mean, log) = kernel_sum_cpu(
            dim,
            &query_data,
            100 * k as usize,
            100,
            scale,
            &source_data,
            300,
            None,
            variance,
        );
        let o = 100 * k as usize;
        for (g, t) in gpu_mean[o * 2..(o + 100) * 2].iter().zip(&mean) {
            assert!((f64::from(*g) - t).abs() < 1e-5, "call {k}: {g} vs {t}");
        }
        for (g, t) in gpu_log[o..o + 100].iter().zip(&log) {
            assert!(
                (f64::from(*g) - t).abs() < 2e-6 * t.abs().max(1.0),
                "call {k}: {g} vs {t}"
            );
        }
    }
}

#[test]
fn refuses_what_it_cannot_compute() {
    let gpu = common::gpu();
    assert!(KernelSum::new(&gpu, 0, 64).is_err());
    assert!(KernelSum::new(&gpu, 9, 64).is_err());
    assert!(KernelSum::new(&gpu, 2, 48).is_err());
    let kernel = KernelSum::new(&gpu, 2, 64).expect("kernel");
    let queries = gpu.storage_with("q", bytemuck::cast_slice(&[0f32; 20]));
    let sources = gpu.storage_with("y", bytemuck::cast_slice(&[0f32; 20]));
    let (out_mean, out_log) = outputs(&gpu, 2, 10);
    let good = KernelSumArgs {
        queries: &queries,
        query_first: 0,
        query_count: 10,
        query_scale: 1.0,
        sources: &sources,
        source_count: 10,
        payload: None,
        variance: 1.0,
        out_mean: &out_mean,
        out_log: &out_log,
        out_first: 0,
    };
    let mut encoder = gpu.device.create_command_encoder(&Default::default());
    assert!(kernel.encode(&gpu, &mut encoder, &good).is_ok());
    for bad in [
        KernelSumArgs {
            source_count: 0,
            ..good
        },
        KernelSumArgs {
            source_count: 11,
            ..good
        },
        KernelSumArgs {
            query_first: 1,
            ..good
        },
        KernelSumArgs {
            out_first: 1,
            ..good
        },
        KernelSumArgs {
            variance: 0.0,
            ..good
        },
        KernelSumArgs {
            variance: f64::NAN,
            ..good
        },
        KernelSumArgs {
            query_scale: f32::INFINITY,
            ..good
        },
    ] {
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        assert!(kernel.encode(&gpu, &mut encoder, &bad).is_err());
    }
    gpu.check().expect("no device errors");
}
