//! The WGSL Philox generator against Random123's known answers and the Rust twin.

mod common;

use fokker::gpu::Kernel;
use fokker::rng;
use fokker::shaders;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Case {
    counter: [u32; 4],
    key: [u32; 2],
    pad: [u32; 2],
}

/// The device's own multiply (native 64-bit where it has SHADER_INT64) or, with
/// `emulated`, the 16-bit-halves one: both must give every bit of Philox.
fn run_cases_on(cases: &[Case], emulated: bool) -> Vec<([u32; 4], [f32; 4])> {
    run_entry(cases, emulated, "main")
}

/// `entry` of shaders/philox_kat.wgsl over `cases`: (words, normals) per case.
fn run_entry(cases: &[Case], emulated: bool, entry: &str) -> Vec<([u32; 4], [f32; 4])> {
    let gpu = if emulated {
        common::gpu().emulating_int64()
    } else {
        common::gpu()
    };
    let kernel = Kernel::with_entry(&gpu, "philox kat", shaders::PHILOX_KAT, entry, &[], 64);
    let input = gpu.storage_with("cases", bytemuck::cast_slice(cases));
    let output = gpu.storage_buffer(
        "answers",
        (cases.len() * 32) as u64,
        wgpu::BufferUsages::empty(),
    );
    let bind = kernel.bind(&gpu, &[&input, &output]);
    let mut encoder = gpu.device.create_command_encoder(&Default::default());
    {
        let mut pass = encoder.begin_compute_pass(&Default::default());
        kernel.dispatch(&mut pass, &bind, (cases.len() as u32).div_ceil(64), 65535);
    }
    gpu.queue.submit([encoder.finish()]);
    let bytes = gpu
        .read_bytes(&output, 0, (cases.len() * 32) as u64)
        .expect("readback");
    let words: &[u32] = bytemuck::cast_slice(&bytes);
    words
        .chunks_exact(8)
        .map(|w| {
            let normals = [
                f32::from_bits(w[4]),
                f32::from_bits(w[5]),
                f32::from_bits(w[6]),
                f32::from_bits(w[7]),
            ];
            ([w[0], w[1], w[2], w[3]], normals)
        })
        .collect()
}

fn run_cases(cases: &[Case]) -> Vec<([u32; 4], [f32; 4])> {
    run_cases_on(cases, false)
}

#[test]
fn wgsl_philox_matches_random123_known_answers() {
    let cases = [
        Case {
            counter: [0; 4],
            key: [0; 2],
            pad: [0; 2],
        },
        Case {
            counter: [u32::MAX; 4],
            key: [u32::MAX; 2],
            pad: [0; 2],
        },
        Case {
            counter: [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
            key: [0xa4093822, 0x299f31d0],
            pad: [0; 2],
        },
    ];
    for emulated in [false, true] {
        known_answers(&run_cases_on(&cases, emulated));
    }
}

fn known_answers(answers: &[([u32; 4], [f32; 4])]) {
    assert_eq!(
        answers[0].0,
        [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]
    );
    assert_eq!(
        answers[1].0,
        [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]
    );
    assert_eq!(
        answers[2].0,
        [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]
    );
}

#[test]
fn wgsl_philox_and_normals_match_the_rust_twin() {
    let key = rng::key_from_seed(0xdead_beef_0123_4567);
    let cases: Vec<Case> = (0..4096u64)
        .map(|i| Case {
            counter: rng::counter(i * 7919 + (i << 33), (i * 31) as u32, (i % 4) as u32),
            key,
            pad: [0; 2],
        })
        .collect();
    // The native multiply (lavapipe has SHADER_INT64) and the emulated one: same bits.
    let native = run_cases_on(&cases, false);
    let emulated = run_cases_on(&cases, true);
    assert_eq!(native, emulated, "native and emulated mul_hi disagree");
    for (case, (words, normals)) in cases.iter().zip(&native) {
        let want = rng::philox4x32_10(case.counter, case.key);
        assert_eq!(*words, want, "counter {:?}", case.counter);
        let twin = rng::normals4(want);
        for (g, c) in normals.iter().zip(twin) {
            // f32 transcendentals: a few ulps of sqrt(-2 log u) ~ 1e-6 relative.
            assert!(
                (f64::from(*g) - c).abs() <= 2e-5 * (1.0 + c.abs()),
                "gpu {g} vs twin {c}"
            );
        }
    }
}

/// Box–Muller's angle 2 pi u, u = (w >> 8) 2^-24, is reduced to the nearest quarter turn by
/// integer arithmetic and the rest, |phi| <= pi / 4, goes to polynomials
/// (common/philox.wgsl, `turn_cos_sin`). Every quarter-turn edge (where the quarter read
/// from the integer changes and phi jumps from +pi/4 to -pi/4) and a spread of other angles,
/// against f64, with the radius fixed at sqrt(-2 ln 1/4) (u = 2^-2 exactly, so the driver's
/// log is of a power of two).
#[test]
fn box_muller_angles_are_accurate_across_every_quarter_turn() {
    let k_radius = (1u32 << 22) - 1; // unit_open_closed: (k + 1) 2^-24 = 1/4
    let mut angles: Vec<u32> = Vec::new();
    for edge in 0..=8u32 {
        // Multiples of 2^21 (k units of 2^-24): quarter turns and their midpoints.
        let k = edge << 21;
        for d in [-2i64, -1, 0, 1, 2] {
            let v = i64::from(k) + d;
            if (0..1 << 24).contains(&v) {
                angles.push(v as u32);
            }
        }
    }
    angles.extend((0..4096u32).map(|i| i.wrapping_mul(0x9E37_79B9) >> 8));
    let cases: Vec<Case> = angles
        .iter()
        .map(|&k| Case {
            counter: [k_radius << 8, k << 8, k_radius << 8, (k ^ 0x55_5555) << 8],
            key: [0; 2],
            pad: [0; 2],
        })
        .collect();
    let answers = run_entry(&cases, false, "main_normals");
    let r = (-2.0 * 0.25f64.ln()).sqrt();
    // Error budget in units of 2^-24 relative to r: the polynomials within 2 ulp of cos and
    // sin (Cephes' sinf/cosf on [-pi/4, pi/4]), phi's rounding 1, the driver's log of 1/4 and
    // sqrt 2, the product with r 1: 6, rounded up to 8.
    let bound = 8.0 * r * 2f64.powi(-24);
    for (case, (_, normals)) in cases.iter().zip(&answers) {
        for (pair, lane) in [(0usize, 1usize), (2, 3)] {
            let turn = f64::from(case.counter[lane] >> 8) * 2f64.powi(-24);
            let t = std::f64::consts::TAU * turn;
            let (c, s) = (r * t.cos(), r * t.sin());
            let (gc, gs) = (f64::from(normals[pair]), f64::from(normals[pair + 1]));
            assert!(
                (gc - c).abs() <= bound && (gs - s).abs() <= bound,
                "turn {turn}: gpu ({gc}, {gs}) vs f64 ({c}, {s}), bound {bound:e}"
            );
        }
    }
}

/// Kolmogorov–Smirnov distance of `values` from the standard normal CDF.
fn ks_normal(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len() as f64;
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let cdf = 0.5 * libm::erfc(-v / std::f64::consts::SQRT_2);
            (cdf - i as f64 / n).abs().max((i as f64 + 1.0) / n - cdf)
        })
        .fold(0.0, f64::max)
}

/// The normals the shader hands out are standard Gaussian: mean, variance and a KS test at
/// a level where a correct generator fails about once in a million runs.
#[test]
fn wgsl_normals_are_standard_gaussian() {
    let key = rng::key_from_seed(2024);
    let cases: Vec<Case> = (0..16384u64)
        .map(|i| Case {
            counter: rng::counter(i, 7, 0),
            key,
            pad: [0; 2],
        })
        .collect();
    let mut values: Vec<f64> = run_cases(&cases)
        .iter()
        .flat_map(|(_, n)| n.iter().map(|&v| f64::from(v)))
        .collect();
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    assert!(mean.abs() < 5.0 / n.sqrt(), "mean {mean}");
    assert!((var - 1.0).abs() < 5.0 * (2.0 / n).sqrt(), "variance {var}");
    // P(sqrt(n) D > 2.6) ~ 1e-6 (Kolmogorov distribution).
    let d = ks_normal(&mut values);
    assert!(d * n.sqrt() < 2.6, "KS distance {d} over {n} normals");
    // Lanes within a pair are uncorrelated (Box–Muller gives independent cos/sin parts).
    let answers = run_cases(&cases);
    let corr = answers
        .iter()
        .map(|(_, v)| f64::from(v[0]) * f64::from(v[1]))
        .sum::<f64>()
        / answers.len() as f64;
    assert!(
        corr.abs() < 5.0 / (answers.len() as f64).sqrt(),
        "pair correlation {corr}"
    );
}
