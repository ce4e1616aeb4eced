//! The Gaussian-kernel weighted mean on the GPU against its f64 CPU twin.
//!
//! Tolerances: per query, from the twin's own weights (tests/common/kernel_bounds.rs).

mod common;

use common::kernel_bounds::kernel_sum_bounds;
use fokker::dynamics::kernel_sum::{KernelSum, KernelSumArgs, WINDOW_FLOATS, kernel_sum_cpu};
use fokker::gpu::Gpu;
use fokker::rng;

/// Per query of `case`: bounds on |gpu - twin| for each coordinate of the mean and for the
/// log (tests/common/kernel_bounds.rs).
fn bounds(case: &Case) -> (Vec<f64>, Vec<f64>) {
    let d = case.dim as usize;
    let rows = case.first as usize * d..(case.first + case.count) as usize * d;
    let scale = f64::from(case.scale);
    let queries: Vec<f64> = case.queries[rows]
        .iter()
        .map(|&v| scale * f64::from(v))
        .collect();
    let f64s = |v: &[f32]| v.iter().map(|&x| f64::from(x)).collect::<Vec<_>>();
    let sources = f64s(&case.sources);
    let payload = case.payload.as_deref().map(f64s);
    kernel_sum_bounds(d, &queries, &sources, payload.as_deref(), case.variance)
}

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

/// Asserts every output within its bound ([`bounds`]) and the rows outside left alone;
/// returns the largest error / bound of the means and of the logs.
fn compare(case: &Case, gpu: &(Vec<f32>, Vec<f32>)) -> (f64, f64) {
    let (mean, log) = case.twin();
    let (mean_bound, log_bound) = bounds(case);
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
    for (k, ((g, t), b)) in gpu_mean[o * d..]
        .iter()
        .zip(&mean)
        .zip(&mean_bound)
        .enumerate()
    {
        assert!(g.is_finite(), "non-finite mean {g}");
        let e = (f64::from(*g) - t).abs();
        assert!(
            e <= *b,
            "mean {k}: gpu {g} vs twin {t}: {e:e} > bound {b:e}"
        );
        worst_mean = worst_mean.max(e / b);
    }
    let mut worst_log = 0f64;
    for (k, ((g, t), b)) in gpu_log[o..].iter().zip(&log).zip(&log_bound).enumerate() {
        assert!(g.is_finite(), "non-finite log {g}");
        let e = (f64::from(*g) - t).abs();
        assert!(e <= *b, "log {k}: gpu {g} vs twin {t}: {e:e} > bound {b:e}");
        worst_log = worst_log.max(e / b);
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
        println!("dim {dim}: largest error / bound: mean {mean:.3}, log {log:.3}");
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
    println!("largest error / bound: mean {mean:.3}, log {log:.3}");
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
    let output = run_gpu(&gpu, &case);
    for i in 0..n {
        assert!(output.1[i].is_finite(), "query {i}: log {}", output.1[i]);
    }
    // Every query within its bound. Exponents d2 / (2 v) reach 1.25e7, where the bound on
    // the weights' rounding is large: a query whose bound is under half the distance from
    // its nearest source to the next one would show a wrong pick of the nearest source.
    compare(&case, &output);
    let (mean_bound, _) = bounds(&case);
    let mut compared = 0;
    for i in 0..n {
        let q = [
            f64::from(case.queries[2 * i]),
            f64::from(case.queries[2 * i + 1]),
        ];
        let mut near: Vec<(f64, [f64; 2])> = case
            .sources
            .chunks_exact(2)
            .map(|y| {
                let y = [f64::from(y[0]), f64::from(y[1])];
                ((q[0] - y[0]).powi(2) + (q[1] - y[1]).powi(2), y)
            })
            .collect();
        near.sort_by(|a, b| a.0.total_cmp(&b.0));
        let gap =
            ((near[0].1[0] - near[1].1[0]).powi(2) + (near[0].1[1] - near[1].1[1]).powi(2)).sqrt();
        if mean_bound[2 * i].max(mean_bound[2 * i + 1]) < 0.5 * gap {
            compared += 1;
        }
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
    // A plain f32 running sum was 1e-3..1e-2 off here: far outside SUM_ROUNDING.
    let (mean, log) = compare(&case, &run_gpu(&gpu, &case));
    println!("largest error / bound: mean {mean:.3}, log {log:.3}");
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
        let (mean_bound, log_bound) = bounds(&Case {
            dim,
            queries: query_data.clone(),
            first: 100 * k,
            count: 100,
            scale,
            sources: source_data.clone(),
            payload: None,
            variance,
            out_first: 100 * k,
        });
        for ((g, t), b) in gpu_mean[o * 2..(o + 100) * 2]
            .iter()
            .zip(&mean)
            .zip(&mean_bound)
        {
            assert!(
                (f64::from(*g) - t).abs() <= *b,
                "call {k}: {g} vs {t}, bound {b:e}"
            );
        }
        for ((g, t), b) in gpu_log[o..o + 100].iter().zip(&log).zip(&log_bound) {
            assert!(
                (f64::from(*g) - t).abs() <= *b,
                "call {k}: {g} vs {t}, bound {b:e}"
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

/// The pair sum of a pair potential written as an expression (KERNEL_USER: `user_pair`
/// generated into the kernel sum): scaled queries, row offsets and three windows of sources
/// (running sums carried between dispatches) against the f64 twin, with sources at distance
/// 0 from some queries, where W = k r has an infinite 2 W'(s) = k / r and the pair must add
/// nothing. Bound per coordinate, u = 2^-24: each c_ij = 2 W'(s_ij) within
/// 64 u (|c_gauss| (1 + a) + |c_cone|) (s within (dim + 2) u, the exponent a = s / (2 w^2)
/// and exp, sqrt and the divisions a few u each: a generous constant), times |q - y|, plus
/// the f32 sums: tiles of at most 256 terms summed in order (256 u of the sum of |terms|)
/// and tiles combined with Kahan compensation (2 u |sum|).
#[test]
fn pair_sums_of_an_expression_match_the_twin_across_windows() {
    use fokker::dynamics::kernel_sum::pair_sum_cpu;
    use fokker::model::expr::{PairPotential, TimeSource};
    let gpu = common::gpu();
    let (dim, k, eps, w) = (3u32, 0.3, 0.8, 0.9);
    let d = dim as usize;
    let pair = PairPotential::new(TimeSource {
        expr: "k*r + eps*exp(-r^2/(2*w^2))".into(),
        params: [("k", k), ("eps", eps), ("w", w)]
            .iter()
            .map(|(n, v)| (n.to_string(), *v))
            .collect(),
    })
    .expect("a valid pair potential");
    let kernel = KernelSum::with_pair(&gpu, dim, 64, &pair).expect("kernel");
    let (first, count, out_first, scale) = (5u32, 61u32, 3u32, 2.0f32);
    let queries = normals(70 * d, 21);
    // 12000 sources: three windows of 5461 rows; rows 0, 6000 and 11999 sit exactly on
    // scaled queries (2 q is exact in f32).
    let mut sources: Vec<f32> = normals(12000 * d, 22).iter().map(|v| 1.7 * v).collect();
    for (row, query) in [(0usize, 5usize), (6000, 20), (11999, 65)] {
        for c in 0..d {
            sources[row * d + c] = scale * queries[query * d + c];
        }
    }
    assert!(12000 * dim > 2 * WINDOW_FLOATS);
    let q_buf = gpu.storage_with("queries", bytemuck::cast_slice(&queries));
    let y_buf = gpu.storage_with("sources", bytemuck::cast_slice(&sources));
    let rows = out_first + count + 3;
    let (out_mean, out_log) = outputs(&gpu, dim, rows);
    let mut encoder = gpu.device.create_command_encoder(&Default::default());
    let args = KernelSumArgs {
        queries: &q_buf,
        query_first: first,
        query_count: count,
        query_scale: scale,
        sources: &y_buf,
        source_count: 12000,
        payload: None,
        variance: 1.0,
        out_mean: &out_mean,
        out_log: &out_log,
        out_first,
    };
    kernel
        .encode_pairs(&gpu, &mut encoder, &args)
        .expect("encode");
    gpu.queue.submit([encoder.finish()]);
    let got = read_f32(&gpu, &out_mean);
    gpu.check().expect("no device errors");
    let q: Vec<f64> = queries[first as usize * d..(first + count) as usize * d]
        .iter()
        .map(|&v| f64::from(scale) * f64::from(v))
        .collect();
    let y: Vec<f64> = sources.iter().map(|&v| f64::from(v)).collect();
    let twin = pair_sum_cpu(dim, &q, &y, &pair);
    let u = f64::from(f32::EPSILON) / 2.0;
    let o = out_first as usize * d;
    assert!(got[..o].iter().all(|&v| v == SENTINEL));
    assert!(got[o + count as usize * d..].iter().all(|&v| v == SENTINEL));
    let mut worst = 0.0f64;
    for (i, qi) in q.chunks_exact(d).enumerate() {
        let (mut abs_sum, mut term_err) = (vec![0.0; d], vec![0.0; d]);
        for yj in y.chunks_exact(d) {
            let s: f64 = qi.iter().zip(yj).map(|(a, b)| (a - b).powi(2)).sum();
            if s == 0.0 {
                continue;
            }
            let a = s / (2.0 * w * w);
            let (gauss, cone) = (eps / (w * w) * (-a).exp(), k / s.sqrt());
            for c in 0..d {
                let t = (qi[c] - yj[c]).abs();
                abs_sum[c] += (gauss + cone) * t;
                term_err[c] += 64.0 * u * (gauss * (1.0 + a) + cone) * t;
            }
        }
        for c in 0..d {
            let (g, t) = (f64::from(got[o + i * d + c]), twin[i * d + c]);
            let bound = term_err[c] + 256.0 * u * abs_sum[c] + 2.0 * u * t.abs();
            assert!(g.is_finite(), "query {i}: {g}");
            assert!(
                (g - t).abs() <= bound,
                "query {i} coordinate {c}: gpu {g} vs twin {t}, bound {bound:e}"
            );
            worst = worst.max((g - t).abs() / bound);
        }
    }
    println!("pair sum: largest error / bound {worst:.3}");
    // Without a pair potential there is no pair sum to record.
    let plain = KernelSum::new(&gpu, dim, 64).expect("kernel");
    let mut encoder = gpu.device.create_command_encoder(&Default::default());
    assert!(plain.encode_pairs(&gpu, &mut encoder, &args).is_err());
}
